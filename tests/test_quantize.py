"""Post-training precisions, calibration, and precision="auto" on the tiny variants."""

import json

import numpy as np
import pytest

from export import export_model, load_bundle
from export.pipeline import verify_bundle
from zoo.errors import DataError, ShapeError, UnsupportedError

BILSTM = "bilstm_activity_tiny"
G2P = "seq2seq_g2p_tiny"


@pytest.fixture(scope="module")
def quantized(tiny_weights, tmp_path_factory):
    """The tiny classifier at float16 and int8 in both formats (int8 calibrated)."""
    out = tmp_path_factory.mktemp("quantized") / "b"
    report = export_model(BILSTM, out, weights=tiny_weights[BILSTM],
                          precisions="fp32,float16,int8")
    return report, out


def test_every_post_training_precision_passes_parity(quantized):
    report, out = quantized
    assert report["passed"], report["failures"]
    cells = {(r["format"], r["precision"]) for r in report["results"]}
    # float16 has no ONNX form (FORMAT_GAPS): it is produced for TFLite only
    assert cells == {("tflite", "fp32"), ("onnx", "fp32"), ("tflite", "float16"),
                     ("tflite", "int8"), ("onnx", "int8")}
    by = {(r["format"], r["precision"]): r for r in report["results"]}
    assert by["tflite", "float16"]["tensor_max_abs"] <= 1e-3
    assert 0 < by["tflite", "int8"]["tensor_max_abs"]  # really quantized, not a float copy
    assert verify_bundle(out)["passed"]


def test_int8_artifacts_hold_quantized_lstms(quantized):
    _, out = quantized
    manifest = json.loads((out / "manifest.json").read_text())
    by = {(a["format"], a["precision"]): a for a in manifest["artifacts"]}
    tfl = by["tflite", "int8"]
    assert tfl["ops"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 4 and tfl["all_fused"]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / tfl["file"]))
    lstm_inputs = [t for op in interpreter._get_ops_details()
                   if op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM" for t in op["inputs"]]
    dtypes = {interpreter._get_tensor_details(t, 0)["dtype"] for t in lstm_inputs if t >= 0}
    assert np.int8 in dtypes  # int8 weights and activations inside the fused op
    onnx_int8 = by["onnx", "int8"]
    assert onnx_int8["ops"].get("QuantizeLinear", 0) > 0  # static QDQ around the head
    assert onnx_int8["ops"].get("DynamicQuantizeLSTM") == 2  # LSTMs: ORT's static pass skips
    import onnx

    graph = onnx.load(str(out / onnx_int8["file"])).graph
    init = {t.name: t for t in graph.initializer}
    for node in (n for n in graph.node if n.op_type == "DynamicQuantizeLSTM"):
        w, r = node.input[1], node.input[2]  # input and recurrent weights
        assert init[w].data_type == init[r].data_type == onnx.TensorProto.INT8
    assert manifest["calibration"]["source"] == "basicmotions train split"
    assert manifest["calibration"]["samples"] == 40


def test_seq2seq_int8_calibrates_every_graph(tiny_weights, tmp_path):
    report = export_model(G2P, tmp_path / "g", weights=tiny_weights[G2P],
                          precisions="int8", limit=60)
    assert report["passed"], report["failures"]
    manifest = load_bundle(tmp_path / "g").manifest
    feeds = manifest["calibration"]["feeds"]
    assert feeds["encoder"] == 200 and feeds["decoder_step"] > 200  # one per decoded phoneme


def test_auto_picks_the_smallest_within_budget(tiny_weights, tmp_path):
    out = tmp_path / "auto"
    report = export_model(BILSTM, out, weights=tiny_weights[BILSTM], precisions="auto",
                          max_drop=0.06)
    assert report["passed"]
    for fmt in ("tflite", "onnx"):
        record = report["auto"][fmt]
        chosen = record["chosen"]
        tried = [t for t in record["tried"] if "metric_drop" in t]
        sizes = [t["size_bytes"] for t in tried]
        assert sizes == sorted(sizes)  # smallest first
        assert tried[-1]["precision"] == chosen and tried[-1]["metric_drop"] <= 0.06
        assert all(t["metric_drop"] > 0.06 for t in tried[:-1])
        others = [t for t in record["tried"] if t["status"].startswith("not tried")]
        assert all(t["size_bytes"] >= tried[-1]["size_bytes"] for t in others)
        assert {t["precision"] for t in record["tried"]} == (
            {"fp32", "dynamic", "float16", "int8"} if fmt == "tflite"
            else {"fp32", "dynamic", "int8"})
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.tf*") if p.is_file()) + \
        sorted(str(p.relative_to(out)) for p in out.rglob("*.onnx"))
    assert files == [f"{report['auto']['tflite']['chosen']}/classifier.tflite",
                     f"{report['auto']['onnx']['chosen']}/classifier.onnx"]
    again = verify_bundle(out)
    assert again["passed"]
    assert all(c["limit"] == 0.06 for r in again["results"] for c in r["checks"]
               if c["check"].endswith("drop"))


def test_auto_with_no_budget_to_spare_falls_back_to_fp32(tiny_weights, tmp_path, monkeypatch):
    """When no quantized artifact meets the budget, auto ends at fp32 (whose checks
    require Keras' exact predictions), having tried every smaller artifact first."""
    import export.verification.verify as verify

    real = verify.check_backend

    def pessimistic(spec, task, reference, test, runners, precision, progress=None,
                    metric_drop=None):
        result = real(spec, task, reference, test, runners, precision, progress, metric_drop)
        if precision != "fp32":  # pretend every quantized artifact lost 10 points
            result["metric_drop"] = 0.1
            for c in result["checks"]:
                if c["check"].endswith("drop"):
                    c.update(value=0.1, passed=False)
        return result

    monkeypatch.setattr("export.pipeline.check_backend", pessimistic)
    report = export_model(BILSTM, tmp_path / "a", weights=tiny_weights[BILSTM],
                          formats="onnx", precisions="auto", max_drop=0.01)
    record = report["auto"]["onnx"]
    assert record["chosen"] == "fp32"
    statuses = [(t["precision"], t["status"].split(":")[0]) for t in record["tried"]]
    position = statuses.index(("fp32", "chosen"))
    assert all(status == "rejected" for _, status in statuses[:position])
    assert all(status == "not tried" for _, status in statuses[position + 1:])
    assert {p for p, _ in statuses} == {"fp32", "dynamic", "int8"}


def test_int16x8_is_refused_for_fused_lstms(tiny_weights, tmp_path):
    with pytest.raises(UnsupportedError, match="UNIDIRECTIONAL_SEQUENCE_LSTM"):
        export_model(BILSTM, tmp_path / "b", weights=tiny_weights[BILSTM],
                     precisions="int16x8")
    assert list(tmp_path.iterdir()) == []


def test_the_converter_really_refuses_int16x8_on_a_fused_lstm(tiny_weights):
    """The spec's gap is the converter's behaviour, not a guess: asked directly, it refuses."""
    import zoo
    from export.compression.quantize import calibration_feeds
    from export.conversion import tflite
    from zoo import datasets
    from zoo.graphs import graph_models
    from zoo.tasks import get_task

    spec = zoo.get_spec(BILSTM)
    model = zoo.create_model(BILSTM, weights=tiny_weights[BILSTM])
    graphs = graph_models(spec, model)
    task = get_task(spec.task)
    feeds = calibration_feeds(spec, task, graphs, task.inputs(datasets.load("basicmotions",
                                                                            "train")))
    with pytest.raises(UnsupportedError, match="16x8-bit not yet supported"):
        tflite.convert(graphs["classifier"], "int16x8", feeds["classifier"])


def test_int8_of_a_while_graph_is_refused_before_calibration():
    """Calibrating a WHILE graph kills the process (SIGSEGV); we refuse it first."""
    from export.conversion import tflite
    from zoo._keras import keras

    inputs = keras.Input((None, 3), name="x")
    gru = keras.Model(inputs, keras.layers.GRU(4, name="gru")(inputs), name="gru_model")
    feeds = [{"x": np.ones((1, 5, 3), np.float32)}] * 4
    with pytest.raises(UnsupportedError, match="loops.*WHILE"):
        tflite.convert(gru, "int8", feeds)


def test_precision_no_requested_format_has(tiny_weights, tmp_path):
    with pytest.raises(UnsupportedError, match="float16.*none of the formats.*float16 LSTM"):
        export_model(BILSTM, tmp_path / "b", weights=tiny_weights[BILSTM], formats="onnx",
                     precisions="float16")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"precisions": "auto", "max_drop": 1.5}, UnsupportedError, r"max_drop must be in \[0, 1\)"),
    ({"precisions": "fp32", "max_drop": 0.01}, UnsupportedError,
     "applies to precisions='auto' only"),
    ({"precisions": "auto,fp32"}, UnsupportedError, "cannot be combined"),
    ({"precisions": "int8", "calibration": [np.zeros((20, 6), np.float32)] * 3}, DataError,
     "at least 16 samples.*got 3"),
    ({"precisions": "int8", "calibration": [np.zeros((20, 4), np.float32)] * 20}, ShapeError,
     r"calibration sample 0: expected shape \(time, 6\).*got \(20, 4\)"),
    ({"precisions": "int8", "calibration": [np.full((20, 6), np.nan, np.float32)] * 20},
     ShapeError, "calibration sample 0.*NaN"),
])
def test_bad_quantization_input(tiny_weights, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export_model(BILSTM, tmp_path / "b", weights=tiny_weights[BILSTM], **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_user_calibration_samples(tiny_weights, tmp_path):
    from zoo import datasets

    own = list(datasets.load("basicmotions", "test").x[:20])  # e.g. the user's own recordings
    report = export_model(BILSTM, tmp_path / "b", weights=tiny_weights[BILSTM],
                          formats="tflite", precisions="int8", calibration=own)
    assert report["passed"]
    calibration = load_bundle(tmp_path / "b").manifest["calibration"]
    assert calibration == {"source": "user samples", "samples": 20, "feeds": {"classifier": 20}}


def test_seq2seq_user_calibration_rejects_bad_words(tiny_weights, tmp_path):
    with pytest.raises(ShapeError, match="calibration sample 1: word 'x!y'"):
        export_model(G2P, tmp_path / "g", weights=tiny_weights[G2P], precisions="int8",
                     calibration=["hello", "x!y", *["word"] * 20])
