"""Bundle export of the tiny variants: fused ops, parity on LiteRT and ORT, atomicity."""

import json
import shutil

import numpy as np
import pytest

from export import export_model, load_bundle
from export.pipeline import verify_bundle
from zoo.errors import ArtifactError, ExportError, ShapeError, UnsupportedError


@pytest.mark.parametrize("name", ["bilstm_activity_tiny", "seq2seq_g2p_tiny"])
def test_bundle_passes_parity(tiny_bundles, name):
    bundles, reports = tiny_bundles
    report = reports[name]
    assert report["passed"], report["failures"]
    combos = {(r["format"], r["precision"]) for r in report["results"]}
    assert combos == {(f, p) for f in ("tflite", "onnx") for p in ("fp32", "dynamic")}
    assert report["tensor_samples"] >= 150
    for r in report["results"]:
        if r["precision"] == "fp32":
            assert r["tensor_max_abs"] <= 1e-5
            assert r["disagreements"] == 0
            assert r["metrics"] == report["reference"]["metrics"]
    saved = json.loads((bundles[name] / "parity.json").read_text())
    assert saved["passed"] and len(saved["results"]) == 4


def test_manifest_records_fused_lstms(tiny_bundles):
    bundles, _ = tiny_bundles
    manifest = json.loads((bundles["bilstm_activity_tiny"] / "manifest.json").read_text())
    tflite_fp32 = next(a for a in manifest["artifacts"]
                       if a["format"] == "tflite" and a["precision"] == "fp32")
    # 2 bidirectional layers = 4 directions, each its own fused op
    assert tflite_fp32["ops"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 4
    assert tflite_fp32["all_fused"] and not tflite_fp32["loops"]
    onnx_fp32 = next(a for a in manifest["artifacts"]
                     if a["format"] == "onnx" and a["precision"] == "fp32")
    assert onnx_fp32["ops"]["LSTM"] == 2 and onnx_fp32["fused_directions"]["LSTM"] == 4
    onnx_dyn = next(a for a in manifest["artifacts"]
                    if a["format"] == "onnx" and a["precision"] == "dynamic")
    assert onnx_dyn["ops"].get("DynamicQuantizeLSTM") == 2
    for key in ("tensorflow", "tf-keras", "tf2onnx", "onnxruntime", "ai-edge-litert"):
        assert manifest["tools"][key] != "not installed"
    for a in manifest["artifacts"]:
        assert a["size"] == (bundles["bilstm_activity_tiny"] / a["file"]).stat().st_size


def test_seq2seq_graphs(tiny_bundles):
    bundles, _ = tiny_bundles
    manifest = json.loads((bundles["seq2seq_g2p_tiny"] / "manifest.json").read_text())
    by = {(a["graph"], a["format"], a["precision"]): a for a in manifest["artifacts"]}
    enc = by[("encoder", "tflite", "fp32")]
    assert enc["ops"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 2 and enc["all_fused"]
    step = by[("decoder_step", "tflite", "fp32")]
    assert "WHILE" not in step["ops"] and step["all_fused"]
    assert by[("encoder", "onnx", "fp32")]["fused_directions"]["LSTM"] == 2


@pytest.fixture(scope="module")
def g2p(tiny_bundles):
    """The tiny G2P bundle and its fp32 graphs on each backend, loaded once (Keras' take
    seconds)."""
    bundles, _ = tiny_bundles
    bundle = load_bundle(bundles["seq2seq_g2p_tiny"])
    return bundle, {b: bundle.runners(b, "fp32") for b in ("keras", "litert", "onnx")}


def test_g2p_decodes_identically_on_all_backends(g2p):
    bundle, graphs = g2p
    words = ["hello", "world", "zoo", "phoneme", "o'brien"]
    keras = bundle.task.predict(graphs["keras"], words, bundle.meta)
    assert bundle.task.predict(graphs["litert"], words, bundle.meta) == keras
    assert bundle.task.predict(graphs["onnx"], words, bundle.meta) == keras


def test_g2p_beam_search_n_best_lists_agree_on_all_backends(g2p):
    """Beam search's n-best lists on the fp32 artifacts are Keras' (same sequences, same
    order, scores within float32 rounding summed over the steps); width 1 is greedy; the
    task's beam prediction is the best of the list."""
    from zoo.decoding import beam_decode, greedy_decode
    from zoo.tasks.seq2seq import LENGTH_PENALTY

    bundle, graphs = g2p
    task, meta = bundle.task, bundle.meta
    words = ["hello", "zoo", "o'brien"]
    sources = [task.encode(w, meta) for w in words]
    # 8 symbols at most: the tiny model barely ends a word, and each hypothesis is a call
    limits = {"bos": meta["bos"], "eos": meta["eos"], "max_len": 8}
    lists = {backend: [beam_decode(graphs[backend], source, beam_width=3, n_best=3, **limits)
                       for source in sources] for backend in graphs}
    for source, best in zip(sources, lists["keras"], strict=True):
        scores = [score for _, score in best]
        assert len(best) == 3 and scores == sorted(scores, reverse=True)
        width1 = beam_decode(graphs["keras"], source, beam_width=1, **limits)
        assert [symbols for symbols, _ in width1] == greedy_decode(graphs["keras"], source,
                                                                   **limits)
    for backend in ("litert", "onnx"):
        for ours, reference in zip(lists[backend], lists["keras"], strict=True):
            assert [s for s, _ in ours] == [s for s, _ in reference], backend
            # each step's probabilities agree within 5e-4 relative (TENSOR_TOLERANCE);
            # the sums of their logs differed by <= 6.8e-7 (measured, 4 x 22 steps)
            np.testing.assert_allclose([p for _, p in ours], [p for _, p in reference],
                                       rtol=0, atol=1e-5)
    vocab = meta["target_vocab"]
    short = {**meta, "beam_width": 3, "max_output_len": 8}  # ranked with LENGTH_PENALTY
    assert task.predict(graphs["onnx"], words, short) == [
        tuple(vocab[t] for t in beam_decode(graphs["keras"], source, beam_width=3,
                                            length_penalty=LENGTH_PENALTY, **limits)[0][0])
        for source in sources]


def test_litert_runner_is_stateless_across_calls(tiny_bundles):
    """Regression: the fused LSTM's state tensors persist between invocations unless reset."""
    bundles, _ = tiny_bundles
    bundle = load_bundle(bundles["bilstm_activity_tiny"])
    lite = bundle.runners("litert")["classifier"]
    keras = bundle.runners("keras")["classifier"]
    from zoo.datasets import basicmotions

    x = basicmotions.load("test").x
    for i in (0, 11, 22):  # same shape each time: no reallocation in between
        feed = {"sequence": x[i : i + 1]}
        np.testing.assert_allclose(lite(feed)["probs"], keras(feed)["probs"], atol=1e-5)


def test_verify_reruns_parity(tiny_bundles):
    bundles, _ = tiny_bundles
    report = verify_bundle(bundles["bilstm_activity_tiny"])
    assert report["passed"], report["failures"]


def test_verify_detects_truncated_artifacts(tiny_bundles, tmp_path):
    bundles, _ = tiny_bundles
    for suffix in ("tflite", "onnx"):
        copy = tmp_path / suffix
        shutil.copytree(bundles["bilstm_activity_tiny"], copy)
        artifact = copy / "fp32" / f"classifier.{suffix}"
        artifact.write_bytes(artifact.read_bytes()[:500])
        with pytest.raises(ArtifactError, match="truncated"):
            verify_bundle(copy)


def test_truncated_file_that_matches_its_manifest_fails_to_load(tiny_bundles, tmp_path):
    """Even if the manifest is rewritten to match, the runtime refuses the file clearly."""
    bundles, _ = tiny_bundles
    from export.verification.runtime import LiteRTRunner, ORTRunner

    manifest = json.loads((bundles["bilstm_activity_tiny"] / "manifest.json").read_text())
    inputs = manifest["graphs"][0]["inputs"]
    for suffix, runner in (("tflite", LiteRTRunner), ("onnx", ORTRunner)):
        src = bundles["bilstm_activity_tiny"] / "fp32" / f"classifier.{suffix}"
        bad = tmp_path / f"bad.{suffix}"
        bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
        with pytest.raises(ArtifactError, match="cannot load"):
            runner(bad, inputs)


def test_existing_output_dir_is_refused(tiny_weights, tmp_path):
    with pytest.raises(ExportError, match="already exists"):
        export_model("bilstm_activity_tiny", tmp_path, weights=tiny_weights["bilstm_activity_tiny"])


def test_unwritable_parent_is_refused(tiny_weights, tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("root ignores directory permissions")
        with pytest.raises(ExportError, match="cannot write"):
            export_model("bilstm_activity_tiny", locked / "b",
                         weights=tiny_weights["bilstm_activity_tiny"])
    finally:
        locked.chmod(0o700)


def test_missing_parents_are_created(tiny_weights, tmp_path):
    out = tmp_path / "new" / "nested" / "bundle"
    report = export_model("bilstm_activity_tiny", out, weights=tiny_weights["bilstm_activity_tiny"],
                          formats="onnx", precisions="fp32")
    assert report["passed"] and (out / "manifest.json").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["bundle"]  # no temporary left behind


def test_output_under_a_file_is_refused(tiny_weights, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError, match="is not a directory"):
        export_model("bilstm_activity_tiny", blocker / "b",
                     weights=tiny_weights["bilstm_activity_tiny"])


@pytest.mark.parametrize("kwargs, match", [
    ({"formats": "tflite,coreml"}, "coreml"),
    ({"precisions": "fp32,int4"}, "int4"),
    ({"formats": ""}, "format"),
])
def test_unknown_format_or_precision(tiny_weights, tmp_path, kwargs, match):
    with pytest.raises(UnsupportedError, match=match):
        export_model("bilstm_activity_tiny", tmp_path / "b",
                     weights=tiny_weights["bilstm_activity_tiny"], **kwargs)
    assert not (tmp_path / "b").exists()


def test_failed_export_leaves_no_bundle(tiny_weights, tmp_path, monkeypatch):
    import export.pipeline as pipeline

    def broken(model, precision, calibration=None):
        raise ExportError("simulated converter crash")

    monkeypatch.setitem(pipeline.CONVERTERS, "onnx", broken)
    with pytest.raises(ExportError, match="simulated"):
        export_model("bilstm_activity_tiny", tmp_path / "b",
                     weights=tiny_weights["bilstm_activity_tiny"])
    assert list(tmp_path.iterdir()) == []


def test_parity_failure_is_kept_aside(tiny_weights, tmp_path, monkeypatch):
    import export.pipeline as pipeline
    from zoo.errors import ParityError

    real = pipeline.CONVERTERS["onnx"]

    def perturbed(model, precision, calibration=None):
        weights = model.get_weights()
        model.set_weights([w + 0.05 for w in weights])
        try:
            return real(model, precision, calibration)
        finally:
            model.set_weights(weights)

    monkeypatch.setitem(pipeline.CONVERTERS, "onnx", perturbed)
    with pytest.raises(ParityError, match="onnx/fp32"):
        export_model("bilstm_activity_tiny", tmp_path / "b",
                     weights=tiny_weights["bilstm_activity_tiny"], precisions="fp32")
    assert not (tmp_path / "b").exists()
    assert (tmp_path / "b.failed" / "parity.json").is_file()


def test_runner_input_checks(tiny_bundles):
    bundles, _ = tiny_bundles
    bundle = load_bundle(bundles["bilstm_activity_tiny"])
    for backend in ("litert", "onnx"):
        run = bundle.runners(backend)["classifier"]
        with pytest.raises(ShapeError, match="expected inputs"):
            run({"x": np.zeros((1, 5, 6), np.float32)})
        with pytest.raises(ShapeError, match=r"expected \(\?, \?, 6\)"):
            run({"sequence": np.zeros((1, 5, 4), np.float32)})
        with pytest.raises(ShapeError, match="NaN"):
            run({"sequence": np.full((1, 5, 6), np.nan, np.float32)})
    with pytest.raises(UnsupportedError, match="int8"):
        bundle.runners("onnx", "int8")


def test_export_of_an_in_memory_model_verifies_from_disk(tiny_weights, tmp_path):
    import zoo

    model = zoo.create_model("bilstm_activity_tiny", weights=tiny_weights["bilstm_activity_tiny"])
    out = tmp_path / "b"
    export_model("bilstm_activity_tiny", out, model=model, formats="onnx", precisions="fp32")
    assert load_bundle(out).manifest["reference"]["weights"] == "in-memory model"
    assert verify_bundle(out)["passed"]


def test_bad_override_creates_nothing(tmp_path):
    with pytest.raises(TypeError, match="unitz"):
        export_model("bilstm_activity_tiny", tmp_path / "x" / "y", weights=None,
                     overrides={"unitz": 3})
    assert list(tmp_path.iterdir()) == []


def test_precision_the_spec_does_not_declare(tiny_weights, tmp_path, monkeypatch):
    from dataclasses import replace

    import zoo
    from zoo import registry

    spec = zoo.get_spec("bilstm_activity_tiny")
    monkeypatch.setitem(registry._REGISTRY, spec.name, replace(spec, precisions=("fp32",)))
    with pytest.raises(UnsupportedError, match=r"does not support precision 'dynamic'"):
        export_model(spec.name, tmp_path / "b", weights=tiny_weights[spec.name],
                     precisions="fp32,dynamic")
    assert not (tmp_path / "b").exists()


def test_litert_runner_calls_the_signature_directly_and_matches_it(tiny_bundles):
    """The LiteRT runner sets, invokes and reads a signature's tensors itself, resizing
    only when an input's shape changes; across changing and repeated shapes (and a
    multi-input step graph) it returns what LiteRT's signature runner returns."""
    from export.verification.runtime import load_bundle

    rng = np.random.default_rng(0)
    for name, graph in (("bilstm_activity_tiny", "classifier"),
                        ("seq2seq_g2p_tiny", "encoder"), ("seq2seq_g2p_tiny", "decoder_step")):
        bundle = load_bundle(tiny_bundles[0][name])
        runner = bundle.runners("litert", "fp32")[graph]
        one = runner._interpreter
        assert one.direct is not None  # ai-edge-litert 2.3's signature runner fields
        for length in (20, 35, 35, 20, 1):
            feeds = {}
            for i in runner.inputs:  # batch 1, every free axis `length` long
                shape = [1 if a == 0 else length if d is None else d
                         for a, d in enumerate(i["shape"])]
                x = (rng.integers(1, 5, size=shape) if i["dtype"].startswith("int")
                     else rng.standard_normal(shape))
                feeds[i["name"]] = x.astype(i["dtype"])
            got = runner(feeds)
            one.interpreter.reset_all_variables()
            want = one.runner(**runner._check(feeds))
            assert set(got) == set(want) == set(runner.output_names)
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
