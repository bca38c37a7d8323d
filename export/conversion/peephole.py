"""Peephole LSTMs (:class:`zoo.layers.PeepholeLSTMCell`) exported as fused LSTM ops.

A ``keras.layers.RNN`` over a custom cell converts to a loop: measured (TF 2.21, tf2onnx
1.17), a ``Bidirectional(RNN(PeepholeLSTMCell))`` became two WHILE ops in TFLite and two
Loop ops in ONNX. Yet both formats' LSTM ops have peephole inputs with the cell's equations
(TFLite: ``cell_to_input``, ``cell_to_forget``, ``cell_to_output``, inputs 9-11 of the fused
op; ONNX: input 7, ``P``, gates ordered i, o, f). So the converters convert a *plain twin*
(each peephole RNN replaced by a ``keras.layers.LSTM`` with the same kernel, recurrent kernel
and bias, which the converters fuse) and write the peephole vectors into the fused ops.

Each fused op is matched to its Keras layer and direction by its weights (the forget gate's
input and recurrent matrices, dequantized), not by op order, which no converter promises.

Precisions (measured on ``bipeephole_activity`` trained with its recipe; the figures are in
``zoo/models/bilstm_activity.py``). Patched artifacts differ from Keras by quantization alone:
with the peepholes cleared again, every one was 0.18 to 0.28 off on the test series.

- TFLite fp32 and float16: float32 peephole vectors (fp16 weights are dequantized to float32
  before the op, so the op computes in float32 either way).
- TFLite dynamic: the hybrid kernel reads peepholes as int8 with one scale
  (``GetTensorData<int8_t>(cell_to_input_weights)``, ``GetTensorScale``, TFLite
  ``lstm_eval.cc``); an op the converter left float32 (it did so for the first layer, whose
  input matrices have 64 x 6 = 384 elements) takes float32 peepholes.
- TFLite int8: the float graph is patched *before* calibration
  (:func:`patch_before_calibration`), so the calibrator records the ranges of the peephole
  LSTM and the quantizer quantizes the peepholes itself (int16 with a scale, measured).
- ONNX: ``P`` is written into the float graph before ORT quantizes it; its dynamic quantizer
  keeps ``P`` on ``DynamicQuantizeLSTM``.
- int16x8 stays refused, as for any fused LSTM: TFLite's 16x8 quantizer refuses the op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.conversion.tflite_edit import add_tensor
from zoo._keras import keras
from zoo.errors import ExportError, UnsupportedError
from zoo.layers import PeepholeLSTMCell

# A fused op's weights match a direction's when the dequantized forget-gate matrices differ
# from the Keras ones by at most this fraction of their largest magnitude: int8 rounding moves
# a weight by half a step, 1/254 of the range (0.4 %); float16 by 4.9e-4 relative; float32 not
# at all. Two different layers' random or trained matrices differ by tens of percent.
MATCH_TOLERANCE = 0.02


@dataclass(frozen=True)
class Direction:
    """One direction of a peephole RNN: where it is and the weights to find and write."""

    name: str  # e.g. "bipeephole_0/backward"
    kernel: np.ndarray  # (input, 4 units), Keras gate order i, f, c, o
    recurrent_kernel: np.ndarray  # (units, 4 units)
    peepholes: np.ndarray  # (3, units): input, forget, output gate

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]

    def forget_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """Input and recurrent forget-gate matrices as (units, input) / (units, units)."""
        n = self.units
        return self.kernel[:, n:2 * n].T, self.recurrent_kernel[:, n:2 * n].T


def _is_peephole_rnn(layer) -> bool:
    return isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, PeepholeLSTMCell)


def has_peepholes(model) -> bool:
    """Whether any layer of ``model`` (or of a nested model) runs a peephole cell."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            layer = layer.forward_layer
        if isinstance(layer, keras.Model):
            if has_peepholes(layer):
                return True
        elif isinstance(layer, keras.layers.RNN):
            cells = getattr(layer.cell, "cells", [layer.cell])  # StackedRNNCells
            if any(isinstance(c, PeepholeLSTMCell) for c in cells):
                return True
    return False


def directions(model, prefix: str = "") -> list[Direction]:
    """Every peephole direction of ``model``, with its weights as NumPy arrays."""
    found = []
    for layer in model.layers:
        name = prefix + layer.name
        if isinstance(layer, keras.Model):
            found += directions(layer, name + "/")
        elif isinstance(layer, keras.layers.Bidirectional) and _is_peephole_rnn(
                layer.forward_layer):
            found += [_direction(f"{name}/forward", layer.forward_layer),
                      _direction(f"{name}/backward", layer.backward_layer)]
        elif _is_peephole_rnn(layer):
            found.append(_direction(name, layer))
    return found


def _direction(name: str, rnn) -> Direction:
    cell = rnn.cell
    return Direction(name, cell.kernel.numpy(), cell.recurrent_kernel.numpy(),
                     np.stack([p.numpy() for p in cell.peephole_weights()]))


def plain_twin(model):
    """``model`` with each peephole RNN replaced by a ``keras.layers.LSTM`` holding the same
    kernel, recurrent kernel and bias (every other layer and weight copied as is).

    Raises:
        UnsupportedError: a peephole cell the fused LSTM ops cannot compute (other
            activations, unrolled, or inside ``StackedRNNCells``).
    """
    pairs = []

    def clone(layer):
        if isinstance(layer, keras.layers.Bidirectional) and _is_peephole_rnn(
                layer.forward_layer):
            new = keras.layers.Bidirectional(
                _plain_lstm(layer.forward_layer), backward_layer=_plain_lstm(
                    layer.backward_layer), merge_mode=layer.merge_mode, name=layer.name)
        elif _is_peephole_rnn(layer):
            new = _plain_lstm(layer)
        elif isinstance(layer, keras.Model) and has_peepholes(layer):
            return plain_twin(layer)  # weights copied there
        else:
            new = layer.__class__.from_config(layer.get_config())
        pairs.append((layer, new))
        return new

    twin = keras.models.clone_model(model, clone_function=clone)
    for old, new in pairs:
        peepholes = {id(v) for v in _peephole_variables(old)}
        new.set_weights([w.numpy() for w in old.weights if id(w) not in peepholes])
    if has_peepholes(twin):
        raise UnsupportedError(
            f"{model.name}: a peephole cell is not the cell of a keras.layers.RNN (or of a "
            "Bidirectional one), e.g. inside StackedRNNCells: only those export as fused "
            "LSTM ops")
    return twin


def _peephole_variables(layer):
    if isinstance(layer, keras.layers.Bidirectional):
        return [*_peephole_variables(layer.forward_layer),
                *_peephole_variables(layer.backward_layer)]
    if _is_peephole_rnn(layer):
        return list(layer.cell.peephole_weights())
    return []


def _plain_lstm(rnn):
    cell = rnn.cell
    activations = (keras.activations.serialize(cell.activation),
                   keras.activations.serialize(cell.recurrent_activation))
    if activations != ("tanh", "sigmoid") or rnn.unroll:
        raise UnsupportedError(
            f"peephole RNN {rnn.name!r}: the fused LSTM ops compute sigmoid gates and tanh "
            f"cells over a sequence; got activation={activations[0]!r}, "
            f"recurrent_activation={activations[1]!r}, unroll={rnn.unroll}")
    return keras.layers.LSTM(
        cell.units, activation="tanh", recurrent_activation="sigmoid", use_bias=cell.use_bias,
        return_sequences=rnn.return_sequences, return_state=rnn.return_state,
        go_backwards=rnn.go_backwards, stateful=rnn.stateful, time_major=rnn.time_major,
        name=rnn.name)


def _match(found: list[tuple[np.ndarray, np.ndarray]], dirs: list[Direction], fmt: str,
           op_names: list[str]) -> dict[int, Direction]:
    """Op index -> the direction whose forget-gate matrices it holds (each used once)."""
    matches: dict[int, Direction] = {}
    for k, (w, r) in enumerate(found):
        hits = []
        for d in dirs:
            kw, kr = d.forget_matrices()
            if w.shape != kw.shape or r.shape != kr.shape:
                continue
            err = max(np.abs(w - kw).max() / max(np.abs(kw).max(), 1e-12),
                      np.abs(r - kr).max() / max(np.abs(kr).max(), 1e-12))
            if err <= MATCH_TOLERANCE:
                hits.append(d)
        if len(hits) > 1:
            raise ExportError(f"{fmt}: fused LSTM op {op_names[k]!r} matches the weights of "
                              f"several peephole directions {[d.name for d in hits]}")
        if hits:
            matches[k] = hits[0]
    used = [d.name for d in matches.values()]
    missing = [d.name for d in dirs if d.name not in used]
    twice = sorted({n for n in used if used.count(n) > 1})
    if missing or twice:
        raise ExportError(
            f"{fmt}: cannot map every peephole direction to one fused LSTM op: "
            + (f"no op holds the weights of {missing} (were they fused? a loop, a mask or "
               "return_state keep an LSTM out of the fused op)" if missing else
               f"several ops hold the weights of {twice}")
            + f"; fused LSTM ops found: {len(found)}")
    return matches


# ----------------------------------------------------------------------------- TFLite

_UNIDIRECTIONAL_LSTM = 44  # BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
_OTHER_LSTMS = {16: "LSTM", 52: "BIDIRECTIONAL_SEQUENCE_LSTM"}
_DEQUANTIZE = 6
# Inputs of the fused op (TFLite lstm_shared.h)
_INPUT, _INPUT_TO_FORGET, _RECURRENT_TO_FORGET, _CELL_TO = 0, 2, 6, (9, 10, 11)


def patch_tflite(flatbuffer: bytes, model) -> bytes:
    """Writes the peephole vectors of ``model`` into the fused ops of ``flatbuffer`` (the
    conversion of :func:`plain_twin`): float32 in float ops, int8 with a scale in hybrid
    (dynamic-range) ops.

    Raises:
        ExportError: a peephole direction maps to no fused op or to several, an op already
            has peepholes, or its weights are of a kind the patch does not know (full-integer
            graphs are patched before calibration instead,
            :func:`patch_before_calibration`).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    dirs = directions(model)
    tfl = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in tfl.operatorCodes]
    ops, found = [], []
    for graph in tfl.subgraphs:
        producers = {o: op for op in graph.operators for o in op.outputs}
        for op in graph.operators:
            code = codes[op.opcodeIndex]
            if code in _OTHER_LSTMS:
                raise ExportError(f"tflite: unexpected {_OTHER_LSTMS[code]} op: the converter "
                                  "writes Keras LSTMs as UNIDIRECTIONAL_SEQUENCE_LSTM")
            if code != _UNIDIRECTIONAL_LSTM:
                continue
            ops.append((graph, op))
            found.append(tuple(_tflite_array(tfl, graph, producers, op.inputs[i], codes)
                               for i in (_INPUT_TO_FORGET, _RECURRENT_TO_FORGET)))
    names = [_name(g.tensors[op.outputs[0]].name) for g, op in ops]
    for k, d in _match(found, dirs, "tflite", names).items():
        graph, op = ops[k]
        if any(op.inputs[i] != -1 for i in _CELL_TO):
            raise ExportError(f"tflite: fused LSTM op {names[k]!r} already has peephole "
                              "weights")
        input_type = graph.tensors[op.inputs[_INPUT]].type
        weight_type = graph.tensors[op.inputs[_INPUT_TO_FORGET]].type
        if input_type != schema.TensorType.FLOAT32 or weight_type not in (
                schema.TensorType.FLOAT32, schema.TensorType.INT8):
            raise ExportError(
                f"tflite: fused LSTM op {names[k]!r} takes {_type_name(input_type)} input and "
                f"{_type_name(weight_type)} weights; peepholes are written into float32 and "
                "hybrid (int8 weights) ops, full-integer graphs before calibration")
        for gate, i in enumerate(_CELL_TO):
            op.inputs[i] = _peephole_tensor(tfl, graph, d.peepholes[gate],
                                            f"{d.name}/{_GATES[gate]}_gate_peephole",
                                            int8=weight_type == schema.TensorType.INT8)
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(tfl.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_GATES = ("input", "forget", "output")


def _name(raw) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _type_name(t: int) -> str:
    from ai_edge_litert import schema_py_generated as schema

    return next(k for k, v in vars(schema.TensorType).items() if v == t)


def _tflite_array(tfl, graph, producers, index: int, codes) -> np.ndarray:
    """A constant input of an op as float (dequantized; float16 traced through DEQUANTIZE)."""
    from ai_edge_litert import schema_py_generated as schema

    t = graph.tensors[index]
    data = tfl.buffers[t.buffer].data
    if data is None and index in producers and codes[producers[index].opcodeIndex] == \
            _DEQUANTIZE:
        return _tflite_array(tfl, graph, producers, producers[index].inputs[0], codes)
    dtypes = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16,
              schema.TensorType.INT8: np.int8, schema.TensorType.INT16: np.int16}
    if data is None or t.type not in dtypes:
        raise ExportError(f"tflite: LSTM weight tensor {_name(t.name)!r} is not a constant of "
                          f"a known type ({_type_name(t.type)})")
    a = np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtypes[t.type]).reshape(t.shape)
    q = t.quantization
    if q is None or q.scale is None or t.type in (schema.TensorType.FLOAT32,
                                                  schema.TensorType.FLOAT16):
        return a.astype(np.float32)
    scale, zero = np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.float32)
    if scale.size > 1:  # per channel
        shape = [1] * a.ndim
        shape[q.quantizedDimension] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (a.astype(np.float32) - zero) * scale


def _peephole_tensor(tfl, graph, values: np.ndarray, name: str, int8: bool) -> int:
    from ai_edge_litert import schema_py_generated as schema

    if not int8:
        return add_tensor(tfl, graph, name, [values.size], schema.TensorType.FLOAT32,
                          values.astype(np.float32))
    # symmetric, one scale: what the hybrid kernel reads (GetTensorScale)
    scale = float(np.abs(values).max()) / 127 or 1.0
    quantization = schema.QuantizationParametersT()
    quantization.scale, quantization.zeroPoint = [scale], [0]
    return add_tensor(tfl, graph, name, [values.size], schema.TensorType.INT8,
                      np.clip(np.round(values / scale), -127, 127).astype(np.int8),
                      quantization)


def patch_before_calibration(converter, model):
    """Makes ``converter`` (of the plain twin) patch the float graph before it calibrates
    and quantizes it, so ranges and peephole quantization are the peephole model's.

    TFLite's converter has no public hook between conversion and calibration; this wraps
    its ``_quantize(float flatbuffer, ...)`` (TF 2.21 ``lite.py``), and fails loudly if a
    TensorFlow version no longer has it rather than calibrating the model without peepholes.
    """
    quantize = getattr(converter, "_quantize", None)
    if quantize is None:
        raise ExportError("this TensorFlow's TFLite converter has no _quantize step to patch "
                          "peepholes into before calibration; int8 of a peephole LSTM needs it")

    def patched(result, *args, **kwargs):
        patched.calls += 1
        return quantize(patch_tflite(result, model), *args, **kwargs)

    patched.calls = 0
    converter._quantize = patched
    return converter


def check_calibration_patched(converter) -> None:
    """After ``converter.convert()``: the wrapped ``_quantize`` step ran, so the int8
    artifact was calibrated and quantized with its peepholes. A converter that skipped it
    (TF 2.21 does with its StableHLO quantizer) would ship them silently dropped."""
    if getattr(getattr(converter, "_quantize", None), "calls", 0) < 1:
        raise ExportError("the TFLite converter did not run its _quantize step, which writes "
                          "the peepholes in before calibration: the int8 artifact would lack "
                          "them, so it is not written")


# ----------------------------------------------------------------------------- ONNX


def patch_onnx(proto, model):
    """Writes the peephole vectors of ``model`` into input ``P`` of the LSTM ops of
    ``proto`` (a float32 ONNX conversion of :func:`plain_twin`), in place; returns it.

    Raises:
        ExportError: a peephole direction maps to no LSTM op (direction) or to several,
            an op already has ``P``, or an op's weights are not constants.
    """
    from onnx import numpy_helper

    dirs = directions(model)
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        value = [a.t for a in node.attribute if a.name == "value"]
        if node.op_type == "Constant" and value:
            consts[node.output[0]] = numpy_helper.to_array(value[0])
    nodes, found, slots = [], [], []
    for node in proto.graph.node:
        if node.op_type != "LSTM":
            continue
        if node.input[1] not in consts or node.input[2] not in consts:
            raise ExportError(f"onnx: the weights of LSTM op {node.name!r} are not constants")
        w, r = consts[node.input[1]], consts[node.input[2]]  # (dirs, 4n, in), gates i o f c
        n = r.shape[2]
        nodes.append(node)
        for d in range(w.shape[0]):
            found.append((w[d, 2 * n:3 * n], r[d, 2 * n:3 * n]))
            slots.append((len(nodes) - 1, d))
    names = [f"{nodes[k].name}[{d}]" for k, d in slots]
    peepholes: dict[int, dict[int, Direction]] = {}
    for j, direction in _match(found, dirs, "onnx", names).items():
        k, d = slots[j]
        peepholes.setdefault(k, {})[d] = direction
    for k, by_slot in peepholes.items():
        node = nodes[k]
        if len(node.input) > 7 and node.input[7]:
            raise ExportError(f"onnx: LSTM op {node.name!r} already has peephole weights")
        count = consts[node.input[1]].shape[0]
        if len(by_slot) != count:  # one direction of a bidirectional op is not a peephole's
            raise ExportError(f"onnx: LSTM op {node.name!r} has {count} directions, of which "
                              f"only {sorted(by_slot)} belong to peephole layers")
        # ONNX orders P as input, output, forget gate
        p = np.stack([by_slot[d].peepholes[[0, 2, 1]].reshape(-1) for d in range(count)])
        name = f"{node.name}_peepholes"
        proto.graph.initializer.append(numpy_helper.from_array(p.astype(np.float32), name))
        while len(node.input) < 7:
            node.input.append("")
        if len(node.input) == 7:
            node.input.append(name)
        else:
            node.input[7] = name
    return proto
