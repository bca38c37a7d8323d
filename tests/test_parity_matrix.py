"""Parity matrix: every shipped model x format x precision its spec supports.

Each cell is checked twice: in the export's own verification and in an independent
re-verification of the bundle from disk (`verify_bundle`), on the real test split.
"""

import json

import pytest
from conftest import per_model

import zoo
from export.pipeline import verify_bundle
from export.quantize import FORMAT_PRECISIONS
from export.report import compatibility_markdown, compatibility_rows

pytestmark = pytest.mark.pretrained

CELLS = [per_model(name, fmt, precision)
         for name in zoo.list_models(pretrained=True)
         for fmt in zoo.get_spec(name).formats
         for precision in zoo.get_spec(name).precisions
         if precision in FORMAT_PRECISIONS[fmt]]

_reverified = {}


def reverified(name, out):
    if name not in _reverified:
        _reverified[name] = verify_bundle(out)
    return _reverified[name]


@pytest.mark.parametrize("name, fmt, precision", CELLS)
def test_cell(pretrained_export, name, fmt, precision):
    spec = zoo.get_spec(name)
    report, out = pretrained_export(name)
    again = reverified(name, out)
    for source in (report, again):
        cell = next(r for r in source["results"]
                    if r["format"] == fmt and r["precision"] == precision)
        assert cell["passed"], cell["checks"]
        tol = spec.tensor_tolerance.get(precision)
        if tol is not None:
            assert cell["tensor_excess"] <= tol.value, tol.reason
        assert cell["metric_drop"] <= spec.metric_drop[precision].value + 1e-12
        if precision == "fp32":
            assert cell["disagreements"] == 0
    first = next(r for r in report["results"] if (r["format"], r["precision"]) == (fmt, precision))
    second = next(r for r in again["results"] if (r["format"], r["precision"]) == (fmt, precision))
    assert first["metrics"] == second["metrics"]  # same artifacts, same data, same answers
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [r for r in compatibility_rows(manifest)
            if (r["format"], r["precision"]) == (fmt, precision)]
    assert rows and all(r["verdict"] != "NOT fused" and not r["flex"] and (
        not r["fallbacks"] or r["loop_reason"]) for r in rows)


# Rows the generated compatibility table must hold, per model (each checked on the worker
# that exported it).
TABLE_ROWS = {
    "bilstm_activity": ["| bilstm_activity | classifier | tflite | fp32 | "
                        "UNIDIRECTIONAL_SEQUENCE_LSTM×4 |"],
    "seq2seq_g2p": ["| seq2seq_g2p | encoder | onnx | dynamic | DynamicQuantizeLSTM×1 |",
                    "step graph, no loop"],
    "bigru_activity": ["| bigru_activity | classifier | tflite | fp32 | none | WHILE×4 | none "
                       "| loop: TFLite has no fused GRU op",
                       "| bigru_activity | classifier | onnx | fp32 | GRU×2 |"],
    "bipeephole_activity": ["| bipeephole_activity | classifier | tflite | int8 | "
                            "UNIDIRECTIONAL_SEQUENCE_LSTM×4 | none | none | fused |",
                            "| bipeephole_activity | classifier | onnx | fp32 | LSTM×2 | none "
                            "| none | fused |"],
    "convlstm_nextframe": ["| convlstm_nextframe | nextframe | tflite | int8 | none | none | "
                           "none | unrolled, no loop |",
                           "| convlstm_nextframe | nextframe | onnx | fp32 | none | none | none "
                           "| unrolled, no loop |"],
}


@pytest.mark.parametrize("name", [per_model(n) for n in TABLE_ROWS])
def test_compatibility_table_names_the_fused_ops(pretrained_export, name):
    manifest = json.loads((pretrained_export(name)[1] / "manifest.json").read_text())
    table = compatibility_markdown([manifest])
    for row in TABLE_ROWS[name]:
        assert row in table
    assert "NOT fused" not in table
