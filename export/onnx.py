"""Keras graph -> .onnx with tf2onnx (opset 17), and ORT dynamic quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path

from export.graphs import signature
from zoo.errors import ExportError

OPSET = 17
ONNX_PRECISIONS = ("fp32", "dynamic")


def convert(model, precision: str) -> bytes:
    """Converts a Keras graph model; the batch axis stays dynamic (ORT runs any batch)."""
    import tf2onnx

    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature(model, None),
                                              opset=OPSET)
    except Exception as e:  # tf2onnx raises many types
        raise ExportError(f"ONNX conversion of {model.name} failed: {e}") from e
    expected = list(model.output_names)
    got = [o.name for o in proto.graph.output]
    if got != expected:
        raise ExportError(f"tf2onnx named the outputs {got}; expected {expected}")
    if precision == "fp32":
        return proto.SerializeToString()
    if precision == "dynamic":
        return _quantize_dynamic(proto)
    raise ExportError(f"ONNX precision {precision!r} is not one of {ONNX_PRECISIONS}")


def _quantize_dynamic(proto) -> bytes:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(proto, str(src))
        # Dynamic QInt8: int8 weights, activations quantized per call. LSTM becomes
        # DynamicQuantizeLSTM; MatMul becomes MatMulInteger (+ scale).
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return dst.read_bytes()


def op_counts(path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}

    def visit(graph):
        for node in graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    visit(attr.g)

    visit(onnx.load(str(path)).graph)
    return dict(sorted(counts.items()))


def recurrent_directions(path) -> dict[str, int]:
    """Fused recurrent directions: an LSTM op with direction=bidirectional counts 2."""
    import onnx

    counts = {"LSTM": 0, "GRU": 0, "other": 0}
    kinds = {"LSTM": "LSTM", "DynamicQuantizeLSTM": "LSTM", "GRU": "GRU", "RNN": "other"}
    for node in onnx.load(str(path)).graph.node:
        if node.op_type in kinds:
            direction = next((a.s.decode() for a in node.attribute if a.name == "direction"),
                             "forward")
            counts[kinds[node.op_type]] += 2 if direction == "bidirectional" else 1
    return counts


LOOP_OPS = ("Loop", "Scan")
