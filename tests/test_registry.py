from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.errors import UnknownModelError, WeightsError

PRETRAINED = Path(zoo.__file__).parent / "pretrained"


def test_list_models_shows_both_families():
    names = zoo.list_models()
    assert {"bilstm_activity", "bilstm_activity_tiny", "seq2seq_g2p", "seq2seq_g2p_tiny"} <= set(
        names)
    assert zoo.list_models("seq2seq*") == ["seq2seq_g2p", "seq2seq_g2p_tiny"]
    # the shipped weights' metadata files name exactly the models listed as pretrained
    shipped = {p.name.split(".")[0] for p in PRETRAINED.glob("*.json")
               if p.name.count(".") == 2}  # NAME.TAG.json (not a dataset's side file)
    assert set(zoo.list_models(pretrained=True)) == shipped
    assert len(shipped) >= 17


def test_unknown_override_lists_valid_names():
    with pytest.raises(TypeError) as e:
        zoo.create_model("bilstm_activity_tiny", unitz=(4,))
    assert "unitz" in str(e.value) and "units" in str(e.value) and "num_classes" in str(e.value)


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="did you mean.*bilstm_activity"):
        zoo.get_spec("bilstm_activty")


def test_overrides_change_the_model():
    model = zoo.create_model("bilstm_activity_tiny", num_classes=3, num_features=2)
    assert model.output_shape == (None, 3)
    assert model.input_shape == (None, None, 2)


def test_register_refuses_positional_builders():
    from zoo.registry import DataSpec, ModelSpec, register_model

    with pytest.raises(TypeError, match="keyword-only"):
        register_model(ModelSpec(name="bad_model", builder=lambda units: None, family="x",
                                 task="classification", graphs=(), data=DataSpec("basicmotions")))


def test_register_refuses_a_precision_without_a_metric_limit():
    from dataclasses import replace

    spec = replace(zoo.get_spec("char_lm_tiny"), name="unbounded_lm",
                   precisions=("fp32", "dynamic", "int8"))
    with pytest.raises(ValueError, match=r"precisions \['int8'\] with no metric_drop"):
        zoo.registry.register_model(spec)
    assert "unbounded_lm" not in zoo.list_models()


def test_tiny_has_no_pretrained_weights():
    with pytest.raises(WeightsError, match="no pretrained weights"):
        zoo.create_model("bilstm_activity_tiny", weights="DEFAULT")


def test_weights_sha_mismatch_is_refused(tiny_weights, tmp_path):
    import json
    import shutil

    src = tiny_weights["bilstm_activity_tiny"]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    meta = json.loads(src.with_name(src.name.replace(".weights.h5", ".json")).read_text())
    meta["sha256"] = "0" * 64
    dst.with_name(dst.name.replace(".weights.h5", ".json")).write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="sha256"):
        zoo.create_model("bilstm_activity_tiny", weights=dst)


def test_weights_path_round_trip(tiny_weights):
    model = zoo.create_model("bilstm_activity_tiny", weights=tiny_weights["bilstm_activity_tiny"])
    assert np.abs(model.get_layer("normalize").mean.numpy()).sum() > 0  # adapted, not default


def test_weights_of_another_model_are_refused(tiny_weights):
    with pytest.raises(WeightsError, match="holds weights of"):
        zoo.create_model("seq2seq_g2p_tiny", weights=tiny_weights["bilstm_activity_tiny"])


def test_every_tolerance_has_a_reason():
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        for tol in [*spec.tensor_tolerance.values(), *spec.metric_drop.values()]:
            assert len(tol.reason) > 20, (name, tol)
