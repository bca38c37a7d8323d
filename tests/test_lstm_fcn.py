"""LSTM-FCN (zoo/models/lstm_fcn.py): an LSTM branch and a fully convolutional branch,
side by side over the same normalised series, joined before the softmax; the LSTM fuses in
both formats and the convolutions export as plain ops beside it. What every family shares
(spec complete, a step of training, fp32 export) is tests/test_families.py's."""

import json

import numpy as np
import pytest

import zoo
from zoo._keras import keras
from zoo.errors import ArgumentError

NAME = "lstm_fcn_activity_tiny"


def inbound(model, layer_name: str) -> list[str]:
    """The names of the layers whose outputs ``layer_name`` reads."""
    node = model.get_layer(layer_name)._inbound_nodes[0]
    return [layer.name for layer in np.atleast_1d(node.inbound_layers)]


def test_two_branches_read_the_normalised_series_and_meet_before_the_softmax():
    model = zoo.create_model(NAME)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("LSTM") == 1 and kinds.count("Conv1D") == 3
    assert kinds.count("BatchNormalization") == 3
    # the convolutions see the (normalised) series itself, not the LSTM's output, and the
    # LSTM reads it over time (no dimension shuffle): both take (B, T, channels)
    assert inbound(model, "conv_0") == ["normalize"] == inbound(model, "lstm")
    assert model.get_layer("lstm").input_shape == (None, None, 6)
    assert inbound(model, "conv_1") == ["relu_0"] and inbound(model, "conv_2") == ["relu_1"]
    assert inbound(model, "average_over_time") == ["relu_2"]
    # the LSTM's last state (8 -> 4 units in the tiny variant) beside the pooled filters
    assert inbound(model, "lstm_and_fcn") == ["lstm", "average_over_time"]
    assert model.get_layer("lstm_and_fcn").output_shape == (None, 4 + 8)
    assert inbound(model, "probs") == ["lstm_and_fcn"]
    full = zoo.get_spec("lstm_fcn_activity").config()
    assert (full["units"], tuple(full["filters"]), tuple(full["kernel_sizes"])) == \
        (8, (128, 256, 128), (8, 5, 3))


def test_each_branch_changes_the_prediction():
    """Neither branch is dead weight: zeroing either's features moves the probabilities."""
    model = zoo.create_model(NAME)
    x = np.random.default_rng(0).normal(size=(2, 30, 6)).astype(np.float32)
    head = model.get_layer("probs")
    features = keras.Model(model.input, model.get_layer("lstm_and_fcn").output)(x).numpy()
    probs = head(features).numpy()
    np.testing.assert_allclose(probs, model(x).numpy(), atol=1e-6)
    for part in (slice(0, 4), slice(4, None)):  # LSTM units, then pooled filters
        cut = features.copy()
        cut[:, part] = 0
        assert np.abs(head(cut).numpy() - probs).max() > 1e-4


def test_builder_refuses_blocks_without_a_kernel_and_unknown_overrides():
    with pytest.raises(ValueError, match="one entry per convolution block"):
        zoo.create_model(NAME, filters=(8, 8), kernel_sizes=(3,))
    with pytest.raises(ArgumentError, match="valid overrides are"):
        zoo.create_model(NAME, filter=(8,))
    with pytest.raises(ArgumentError, match="units must be an int"):
        zoo.create_model(NAME, units=(4,))


def test_structured_pruning_removes_lstm_units_and_keeps_the_filters():
    from export.compression.structured import shrink

    spec = zoo.get_spec(NAME)
    model = zoo.create_model(NAME)
    small, overrides, report = shrink(NAME, model, 0.5, spec.config())
    assert overrides == {"units": 2} and report["units"] == {"lstm:h": [4, 2]}
    assert small.get_layer("lstm_and_fcn").output_shape == (None, 2 + 8)
    assert [small.get_layer(f"conv_{i}").filters for i in range(3)] == [8, 16, 8]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The tiny variant trained with its recipe (3 epochs on the 40 training series) and
    exported at fp32 and dynamic range to both formats."""
    from export import export_model
    from zoo.train import train

    out = tmp_path_factory.mktemp("lstm_fcn")
    meta = train(NAME, out_dir=out / "weights", verbose=0)
    report = export_model(NAME, out / "bundle", weights=out / "weights" / meta["file"],
                          precisions="fp32,dynamic")
    return out / "bundle", report


def test_tiny_trains_and_exports_with_parity(bundle):
    _, report = bundle
    assert report["passed"], report["failures"]
    assert {(r["format"], r["precision"]) for r in report["results"]} == {
        (f, p) for f in ("tflite", "onnx") for p in ("fp32", "dynamic")}
    for r in report["results"]:
        if r["precision"] == "fp32":
            assert r["tensor_max_abs"] <= 1e-5 and r["disagreements"] == 0


def test_the_lstm_fuses_and_the_convolutions_stay_convolutions(bundle):
    out, _ = bundle
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["artifacts"]) == 4
    for a in manifest["artifacts"]:
        assert a["all_fused"] and not a["loops"] and a["as_expected"], a["file"]
        assert a["fused_directions"]["LSTM"] == 1
        if a["format"] == "tflite":
            assert a["ops"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 1 and a["ops"]["CONV_2D"] == 3
            assert "WHILE" not in a["ops"]
        else:
            lstm = "LSTM" if a["precision"] == "fp32" else "DynamicQuantizeLSTM"
            assert a["ops"][lstm] == 1 and a["ops"]["Conv"] == 3
            assert "Loop" not in a["ops"] and "Scan" not in a["ops"]
