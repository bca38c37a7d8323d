"""Parity matrix: every shipped model x format x precision its spec supports.

Each cell is checked twice: in the export's own verification on the whole real test split,
and in an independent re-verification of the bundle from disk (`verify_bundle`: the Keras
reference rebuilt from the bundle's weights, fusion read from the artifacts) on the first
REVERIFY test samples (an anomaly detector keeps its threshold windows besides), with
tensor parity on those and the task's other parity inputs (most tasks: calibration samples
up to 200). The re-verification repeats the export's own computation, so it is cut short
to keep the suite's time (it doubled the shipped models' share); metric drops on 16
samples are not compared (one sample moves a classifier's accuracy by 6 points), the
tensors and fp32's identical answers are.

The same cells on aarch64 (test_cell_on_aarch64): each model's bundle re-verified once more
with ``arch="aarch64"`` (its artifacts on the aarch64 builds of the same runtimes, under
qemu-user) on the first REVERIFY test samples (STREAMED for a model that streams its
samples through a step graph, and for the ConvLSTM: FEW_SAMPLES), tensor parity on as many
real inputs (not up to 200: emulation runs a 100-step LSTM in about 0.4 s) and the random
feeds, held to the x86 limits. Runs where the aarch64 root is built (.ci/run builds it);
skipped elsewhere.
`python -m benchmarks.aarch64_matrix` runs the same matrix and writes its figures.
"""

import json

import numpy as np
import pytest
from conftest import aarch64_root_or_skip, per_model

import zoo
from benchmarks import torch_peer
from benchmarks.aarch64_matrix import STREAMED_TASKS
from export.compression.quantize import FORMAT_PRECISIONS
from export.pipeline import verify_bundle
from export.verification.report import compatibility_markdown, compatibility_rows

pytestmark = pytest.mark.pretrained

CELLS = [per_model(name, fmt, precision)
         for name in zoo.list_models(pretrained=True)
         for fmt in zoo.get_spec(name).formats
         for precision in zoo.get_spec(name).precisions
         if precision in FORMAT_PRECISIONS[fmt]]

REVERIFY = 16
_reverified = {}


def reverified(name, out):
    if name not in _reverified:
        _reverified[name] = verify_bundle(out, limit=REVERIFY)
    return _reverified[name]


@pytest.mark.parametrize("name, fmt, precision", CELLS)
def test_cell(pretrained_export, name, fmt, precision):
    spec = zoo.get_spec(name)
    report, out = pretrained_export(name)
    again = reverified(name, out)
    assert again["test_samples"] < report["test_samples"]
    for source in (report, again):
        cell = next(r for r in source["results"]
                    if r["format"] == fmt and r["precision"] == precision)
        tol = spec.tensor_tolerance.get(precision)
        if tol is not None:
            assert cell["tensor_excess"] <= tol.value, tol.reason
        if precision == "fp32":
            assert cell["disagreements"] == 0
        if source is report:
            assert cell["passed"], cell["checks"]
            assert cell["metric_drop"] <= spec.metric_drop[precision].value + 1e-12
        else:  # all but the metric drop, which 16 samples do not measure
            assert all(c["passed"] for c in cell["checks"] if "drop" not in c["check"]), \
                cell["checks"]
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [r for r in compatibility_rows(manifest)
            if (r["format"], r["precision"]) == (fmt, precision)]
    assert rows and all(r["verdict"] != "NOT fused" and not r["flex"] and (
        not r["fallbacks"] or r["loop_reason"]) for r in rows)


_on_aarch64 = {}


# A model whose samples stream through a step graph (one call per frame or symbol) is
# verified on STREAMED samples: 16 of char_lm's windows made 4,598 step feeds per artifact
# group, minutes each under emulation
STREAMED = 4
# and so is the ConvLSTM: 16 clips (10 frames of 64x64 each through its cells, every
# precision) took 350 s of one worker in the full suite, against 65 s for its x86 cells
FEW_SAMPLES = ("convlstm_nextframe",)


def on_aarch64(name, out):
    if name not in _on_aarch64:
        few = zoo.get_spec(name).task in STREAMED_TASKS or name in FEW_SAMPLES
        n = STREAMED if few else REVERIFY
        _on_aarch64[name] = verify_bundle(out, limit=n, tensor_samples=n, arch="aarch64")
    return _on_aarch64[name]


@pytest.mark.parametrize("name, fmt, precision", CELLS)
def test_cell_on_aarch64(pretrained_export, aarch64_emulation, name, fmt, precision):
    """The cell on aarch64 kernels passes the x86 limits (but the metric drop, which
    REVERIFY samples do not measure), and fp32 gives the same answers as Keras."""
    aarch64_root_or_skip()
    spec = zoo.get_spec(name)
    report = on_aarch64(name, pretrained_export(name)[1])
    cell = next(r for r in report["arch_results"]
                if r["format"] == fmt and r["precision"] == precision)
    assert all(c["passed"] for c in cell["checks"] if "drop" not in c["check"]), cell["checks"]
    tol = spec.tensor_tolerance.get(precision)
    if tol is not None:
        assert cell["tensor_excess"] <= tol.value, tol.reason
    if precision == "fp32":
        assert cell["disagreements"] == 0


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


CONV_MODELS = ["convlstm_nextframe", "handwriting_ctc", "speech_ctc"]


@pytest.mark.parametrize("name", [per_model(n) for n in CONV_MODELS])
def test_onnx_dynamic_keeps_convolutions_float(pretrained_export, name):
    """ORT's dynamic ConvInteger ran convlstm_nextframe ~4x slower than fp32, so "dynamic"
    stores Conv weights as int8 restored to float at load (export.conversion.onnx.weight_only_conv):
    every Conv stays a float Conv, and the file is no larger than fp32's."""
    import onnx

    out = pretrained_export(name)[1]
    manifest = json.loads((out / "manifest.json").read_text())
    onnx_artifacts = {a["precision"]: a for a in manifest["artifacts"] if a["format"] == "onnx"}
    fp32, dynamic = onnx_artifacts["fp32"], onnx_artifacts["dynamic"]
    assert fp32["ops"].get("Conv", 0) > 0
    assert dynamic["ops"].get("Conv") == fp32["ops"]["Conv"]
    assert "ConvInteger" not in dynamic["ops"]
    assert dynamic["size"] < fp32["size"]
    # every Conv's weights: Mul(Cast(int8 initializer), scale)
    graph = onnx.load(str(out / dynamic["file"])).graph
    producers = {o: n for n in graph.node for o in n.output}
    int8 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    for conv in (n for n in graph.node if n.op_type == "Conv"):
        rescale = producers[conv.input[1]]
        cast = producers[rescale.input[0]]
        assert (rescale.op_type, cast.op_type) == ("Mul", "Cast") and cast.input[0] in int8


PEERS = [per_model(name) for name in zoo.list_models(pretrained=True)
         if zoo.get_spec(name).family in torch_peer.PEER_FAMILIES]
PEER_SAMPLES, PEER_CALLS = 3, 40


@pytest.mark.parametrize("name", PEERS)
def test_torch_peer_is_the_same_function(pretrained_export, tmp_path, name):
    """The benchmark's PyTorch peer of each shipped model (eager, and through
    ``torch.onnx.export`` on ORT) computes what the model's verified ONNX fp32 artifact
    computes, graph by graph on the feeds real test samples produce, within the model's
    fp32 tensor tolerance; so the latency it is compared on is the same network's."""
    pytest.importorskip("torch")
    from export.verification.runtime import load_bundle
    from export.verification.verify import Recorder
    from zoo import datasets

    spec = zoo.get_spec(name)
    bundle = load_bundle(pretrained_export(name)[1])
    torch_peer.save_inputs(bundle, tmp_path)
    inputs = list(bundle.task.inputs(datasets.load(spec.data.dataset, spec.data.test))
                  [:PEER_SAMPLES])
    # the first PEER_CALLS feeds of each graph, and the ONNX outputs they gave
    recorders = {n: Recorder(g, limit=PEER_CALLS, outputs=True)
                 for n, g in bundle.runners("onnx", "fp32").items()}
    reference = bundle.task.predict(recorders, inputs, bundle.meta)
    assert all(r.feeds for r in recorders.values())
    tol = spec.tensor_tolerance["fp32"]
    for backend in ("torch", "torch-onnx"):
        peer = torch_peer.graphs(bundle, backend, 1, tmp_path)
        for graph_name, recorder in recorders.items():
            for feed, expected in zip(recorder.feeds, recorder.outputs, strict=True):
                got = peer[graph_name](feed)
                for key, value in expected.items():
                    np.testing.assert_allclose(got[key], value, atol=tol.value,
                                               rtol=tol.relative.get(key, 0.0),
                                               err_msg=f"{backend} {graph_name}:{key}")
        if spec.task in ("seq2seq", "ctc"):  # transcripts: the same strings
            assert bundle.task.predict(peer, inputs, bundle.meta) == reference


def test_forecast_peer_floors_the_variance_as_the_model_does():
    from zoo.models.lstm_forecaster import EPSILON

    assert torch_peer.FORECAST_VARIANCE_FLOOR == EPSILON
