"""Keras graph -> .onnx with tf2onnx (opset 17), and ORT dynamic quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path

from export.conversion.graphs import conversion_source, signature
from export.conversion.onnx_simplify import simplify_recurrent
from zoo.errors import ExportError

OPSET = 17


def convert(model, precision: str, calibration: list[dict] | None = None) -> bytes:
    """Converts a Keras graph model; the batch axis stays dynamic (ORT runs any batch).

    Args:
        model: a Keras graph model.
        precision: "fp32", "dynamic" (ORT dynamic QInt8) or "int8" (static QDQ).
        calibration: graph feeds for "int8".
    """
    import onnx

    from export.compression.quantize import FORMAT_PRECISIONS

    if precision not in FORMAT_PRECISIONS["onnx"]:
        raise ExportError(f"ONNX precision {precision!r} is not one of "
                          f"{FORMAT_PRECISIONS['onnx']}")

    from export.conversion import peephole

    # Peephole LSTMs: convert the plain-LSTM twin, which fuses, and write the peepholes
    # into its LSTM ops (before any quantization, which keeps them).
    peepholes = peephole.has_peepholes(model)
    source = (conversion_source(model, "plain-twin", lambda: peephole.plain_twin(model))
              if peepholes else model)

    def from_keras():
        try:
            return tf2onnx_from_keras(source, input_signature=signature(source, None),
                                      opset=OPSET)[0].SerializeToString()
        except Exception as e:  # tf2onnx raises many types
            raise ExportError(f"ONNX conversion of {model.name} failed: {e}") from e

    # the float graph once per model (and weights); each precision starts from a copy
    proto = onnx.ModelProto.FromString(conversion_source(source, "onnx-fp32", from_keras))
    if peepholes:
        peephole.patch_onnx(proto, model)
    simplify_recurrent(proto.graph)
    expected = list(model.output_names)
    got = [o.name for o in proto.graph.output]
    if got != expected:
        raise ExportError(f"tf2onnx named the outputs {got}; expected {expected}")
    if precision == "fp32":
        return proto.SerializeToString()
    if precision == "dynamic":
        return _quantize_dynamic(proto)
    if not calibration:
        raise ExportError(f"ONNX {precision} needs calibration feeds; got none")
    return _quantize_static(proto, calibration)


def tf2onnx_from_keras(*args, **kwargs):
    """``tf2onnx.convert.from_keras`` (one place, so tests can count conversions)."""
    import tf2onnx

    return tf2onnx.convert.from_keras(*args, **kwargs)


# Dynamically quantized weights take 7 bits, not 8 (ORT's ``reduce_range``). ORT multiplies
# uint8 activations by int8 weights; x86 CPUs without VNNI add the products in pairs into
# int16, which saturates with full-range weights. Measured on this AVX2 machine with
# lstm_forecaster_co2: MASE 0.395 fp32, 0.418 with 8-bit weights (failing its 0.02 limit),
# 0.3945 with 7 bits (and 0.919 per channel at 8 bits). Artifacts must give the same answers
# on every CPU they may run on, so dynamic quantization (also of the int8 path's LSTMs) uses
# 7 bits; the file size is unchanged. The static QDQ int8 weights keep 8 bits, per channel:
# their parity passes on this non-VNNI machine, and they were not measured at 7.
REDUCE_RANGE = True


def _quantize_dynamic(proto) -> bytes:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(proto, str(src))
        # Dynamic QInt8: int8 weights, activations quantized per call. LSTM becomes
        # DynamicQuantizeLSTM; MatMul becomes MatMulInteger (+ scale). Conv is left to
        # weight_only_conv: ORT's dynamic ConvInteger ran convlstm_nextframe 3.9x slower
        # than fp32 (28.9 ms against 7.3 ms a clip, 1 thread, interleaved medians).
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                         reduce_range=REDUCE_RANGE,
                         op_types_to_quantize=[op for op in IntegerOpsRegistry if op != "Conv"])
        quantized = onnx.load(str(dst))
        convs = sum(n.op_type == "Conv" for n in quantized.graph.node)
        if convs and not weight_only_conv(quantized.graph):
            raise ExportError(f"ONNX dynamic: none of the graph's {convs} Conv ops has "
                              "constant float weights to store as int8")
        return quantized.SerializeToString()


WEIGHT_ONLY = "/weight_only/"  # infix of the names weight_only_conv adds


def weight_only_conv(graph) -> int:
    """Stores each float Conv's constant weights as int8, one symmetric scale per output
    channel, restored by ``Cast`` + ``Mul``; returns how many weights it replaced. The
    graph's own nodes only (the exported graphs have no loops or branches).

    ONNX Runtime constant-folds that pair when it loads the graph with its graph
    optimizations on (the default, and ``ORTRunner``'s), and then lays the float weights
    out for its NCHWc convolution, so the convolution runs at fp32 speed from a file with
    a quarter of the weight bytes (convlstm_nextframe: 225 KB against 509 KB fp32, 7.27 ms
    against 7.30 ms a clip). ``DequantizeLinear`` would say the same, but ORT keeps it
    unfolded for its QDQ fusions and runs it on every call, where the convolution then
    misses the NCHWc layout (9.5 ms). 8 bits, not ``REDUCE_RANGE``'s 7: the products are
    float, so nothing saturates.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    fed = {i.name for i in graph.input}  # an initializer a caller may override: kept
    initializers = {i.name: i for i in graph.initializer if i.name not in fed}
    taken = set(initializers) | fed | {o for n in graph.node for o in n.output}
    replaced: set[str] = set()
    restore = []
    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in initializers:
            continue
        name = node.input[1]
        if name in replaced:  # shared by unrolled steps: converted once
            continue
        init = initializers[name]
        q_name, scale_name, float_name = (f"{name}{WEIGHT_ONLY}{part}"
                                          for part in ("int8", "scale", "float"))
        if init.data_type != TensorProto.FLOAT or {q_name, scale_name, float_name} & taken:
            continue
        w = numpy_helper.to_array(init)
        channels = w.reshape(w.shape[0], -1)
        largest = np.abs(channels).max(axis=1) if channels.size else np.zeros(w.shape[0])
        scale = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
        scale = scale.reshape(-1, *[1] * (w.ndim - 1))
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        graph.initializer.remove(init)
        graph.initializer.extend([numpy_helper.from_array(q, q_name),
                                  numpy_helper.from_array(scale, scale_name)])
        restore += [helper.make_node("Cast", [q_name], [float_name], to=TensorProto.FLOAT,
                                     name=f"{name}{WEIGHT_ONLY}cast"),
                    helper.make_node("Mul", [float_name, scale_name], [name],
                                     name=f"{name}{WEIGHT_ONLY}rescale")]
        replaced.add(name)
    if restore:  # they read initializers only, so they go first (topological order)
        nodes = restore + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)
    return len(replaced)


def _quantize_static(proto, calibration: list[dict]) -> bytes:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, qdq, dst = (Path(tmp) / f for f in ("fp32.onnx", "qdq.onnx", "int8.onnx"))
        onnx.save(proto, str(src))
        # QDQ with QUInt8 activations and per-channel QInt8 weights: the format ORT's
        # CPU provider fuses into integer kernels.
        try:
            quantize_static(str(src), str(qdq), Feeds(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True)
            # ORT's static quantizer leaves LSTM ops float (and their weights fp32, the
            # bulk of the model: QDQ bilstm_activity was 552 KB vs 540 KB fp32); its
            # dynamic quantizer makes them DynamicQuantizeLSTM with int8 weights (167 KB).
            if any(n.op_type == "LSTM" for n in proto.graph.node):
                quantize_dynamic(str(qdq), str(dst), weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["LSTM"], reduce_range=REDUCE_RANGE)
            else:
                dst = qdq
        except Exception as e:  # ORT raises many types
            raise ExportError(f"ORT static quantization failed: {e}") from e
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


def weight_sparsity(path) -> dict:
    """Zeros among the weight initializers of an .onnx file (rank >= 2, >= 16 elements;
    ORT quantizes weights symmetrically, so a quantized zero is 0)."""
    import onnx
    from onnx import numpy_helper

    from export.conversion.tflite import sparsity_of

    arrays = [(a, 0) for a in (numpy_helper.to_array(t)
                               for t in onnx.load(str(path)).graph.initializer
                               if not t.name.endswith(f"{WEIGHT_ONLY}scale"))
              if a.ndim >= 2 and a.dtype.kind in "fi"]
    return sparsity_of(arrays)


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
