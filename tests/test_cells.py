"""Cell options of the classifier family: GRU (ONNX's fused GRU op; TFLite's WHILE loop,
accepted and said so) and stacking depth."""

import json

import pytest

import zoo
from export import export_model
from export.verification.report import compatibility_rows
from zoo.errors import UnsupportedError


def test_cell_and_depth_are_builder_options():
    gru = zoo.create_model("bilstm_activity_tiny", cell="gru", units=(8, 8, 8))
    assert [layer.name for layer in gru.layers if layer.name.startswith("bi")] == \
        ["bigru_0", "bigru_1", "bigru_2"]
    with pytest.raises(ValueError,
                       match=r"bilstm_activity_tiny: cell must be one of "
                             r"\['lstm', 'gru', 'peephole'\]; got 'rnn'"):
        zoo.create_model("bilstm_activity_tiny", cell="rnn")
    assert zoo.get_spec("bigru_activity").config()["cell"] == "gru"


def test_gru_exports_fused_on_onnx_and_as_a_declared_loop_on_tflite(tmp_path):
    from zoo.train import train

    meta = train("bigru_activity_tiny", out_dir=tmp_path, verbose=0)
    out = tmp_path / "bundle"
    report = export_model("bigru_activity_tiny", out, weights=tmp_path / meta["file"],
                          precisions=("fp32",))
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    by_format = {a["format"]: a for a in manifest["artifacts"]}
    onnx, tflite = by_format["onnx"], by_format["tflite"]
    assert onnx["all_fused"] and onnx["fused_directions"]["GRU"] == 4 and not onnx["loops"]
    assert not tflite["all_fused"] and tflite["as_expected"]
    assert tflite["loops"] == {"WHILE": 4} and "no fused GRU op" in tflite["loop_reason"]
    verdicts = {r["format"]: r["verdict"] for r in compatibility_rows(manifest)}
    assert verdicts == {"onnx": "fused", "tflite": "loop: " + tflite["loop_reason"]}
    # the loop is accepted only for GRUs: the same check refuses an LSTM that loops
    from export.conversion.fusion import fusion_report

    path = out / tflite["file"]
    lstm = fusion_report("tflite", path, {"LSTM": 4, "GRU": 0, "other": 0}, "fused")
    assert not lstm["as_expected"] and lstm["loop_reason"] is None
    # full int8 needs calibration, which crashes on loops: refused, with the reason
    with pytest.raises(UnsupportedError, match="int8"):
        export_model("bigru_activity_tiny", tmp_path / "int8", weights=tmp_path / meta["file"],
                     precisions=("int8",))
    assert not (tmp_path / "int8").exists()
