"""Hoists a repeated input's projection out of TFLite's fused LSTM.

A decoder LSTM fed ``RepeatVector(z)`` (the LSTM autoencoders) receives the same vector at
every step, yet TFLite's float and hybrid LSTM kernels multiply it by the four input
weight matrices again at every step (``lstm_eval``: one matrix x vector per gate and
step). The product does not depend on the step, so it can be computed once, before the
op, and added as the gates' bias: ``W_g z + b_g`` for gate g. :func:`hoist_repeated_inputs`
rewrites the flatbuffer so: one RESHAPE of z and one FULLY_CONNECTED per gate (reading
the op's own weight tensors, so float16 weights stay float16 in the file) compute the new
biases, and the LSTM op reads a constant zero input of width 1 through zero weights. The
TILE that repeated z, now unused, is removed.

The zero input of width 1 keeps the op's signature: LiteRT's kernels require an input
and input weights. Batch 1 only (a bias is one vector per op), which is what the TFLite
artifacts are (``export.verification.runtime.LiteRTRunner``). LSTMs with int8 weights are
left alone: dynamic range (the hybrid kernel, whose int8 products are cheap; the rewrite made it
slower) and full int8 (integer kernel, int32 biases with their own scales).
"""

from __future__ import annotations

import numpy as np

from export.conversion.tflite_edit import add_tensor

_LSTM = 44  # UNIDIRECTIONAL_SEQUENCE_LSTM
_TILE, _RESHAPE, _FULLY_CONNECTED = 69, 22, 9
_GATES = (1, 2, 3, 4)  # input-to-{input, forget, cell, output} weights
_BIASES = (12, 13, 14, 15)
MARK = "/hoisted/"  # in the names of the tensors the rewrite adds


def hoist_repeated_inputs(flatbuffer: bytes) -> tuple[bytes, int]:
    """Returns the rewritten flatbuffer and how many LSTM ops it rewrote (``flatbuffer``
    itself when none qualifies)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    rewritten = 0
    for graph in model.subgraphs:
        k, here = 0, 0
        while k < len(graph.operators):
            op = graph.operators[k]
            added = 0
            if codes[op.opcodeIndex] == _LSTM:
                added = _hoist(model, graph, codes, k)
                here += bool(added)
            k += 1 + added
        if here:
            _remove_dead(graph)
        rewritten += here
    if not rewritten:
        return flatbuffer, 0
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), rewritten


def _hoist(model, graph, codes, k: int) -> int:
    """Rewrites LSTM op ``k`` if its input is a repeated vector; returns the number of ops
    inserted before it (0: left alone)."""
    from ai_edge_litert import schema_py_generated as schema

    op = graph.operators[k]
    tensors = graph.tensors
    x = op.inputs[0]
    if tensors[x].type != schema.TensorType.FLOAT32 or len(tensors[x].shape) != 3:
        return 0
    if any(op.inputs[i] < 0 for i in _GATES + _BIASES) or getattr(
            op.builtinOptions, "timeMajor", False):
        return 0
    # layer-norm LSTMs (inputs 20-23) normalize W x + W_h h before adding the bias:
    # a projection moved into the bias would skip the normalization
    if any(i >= 0 for i in list(op.inputs)[20:24]):
        return 0
    # float weights only: with int8 ones (dynamic range) the hybrid kernel's per-step
    # int8 products are cheap, and the rewrite measured 1.04-1.40x slower (lstm_autoencoder)
    if any(tensors[op.inputs[i]].type != schema.TensorType.FLOAT32 for i in _GATES + _BIASES):
        return 0
    tile = _producer(graph, x)
    if tile is None or codes[tile.opcodeIndex] != _TILE:
        return 0
    z, multiples = tile.inputs
    repeats = _constant(model, graph, multiples)
    batch, steps, width = (int(d) for d in tensors[x].shape)
    if (batch != 1 or repeats is None or list(repeats) != [1, steps, 1]
            or [int(d) for d in tensors[z].shape] != [1, 1, width]):
        return 0

    name = tensors[op.outputs[0]].name.decode()
    flat = add_tensor(model, graph, f"{name}{MARK}z", [width], schema.TensorType.FLOAT32)
    shape = add_tensor(model, graph, f"{name}{MARK}z_shape", [1], schema.TensorType.INT32,
                       np.array([width], np.int32))
    new_ops = [_operator(model, codes, _RESHAPE, [z, shape], [flat], schema)]
    for gate, bias in zip(_GATES, _BIASES, strict=True):
        weights = op.inputs[gate]
        cells = int(tensors[weights].shape[0])
        out = add_tensor(model, graph, f"{name}{MARK}bias{gate}", [cells],
                         schema.TensorType.FLOAT32)
        options = schema.FullyConnectedOptionsT()
        options.keepNumDims = True  # (width,) in, (cells,) out: a bias vector
        new_ops.append(_operator(model, codes, _FULLY_CONNECTED,
                                 [flat, weights, op.inputs[bias]], [out], schema, options))
        op.inputs[bias] = out
        op.inputs[gate] = add_tensor(model, graph, f"{name}{MARK}w{gate}", [cells, 1],
                                     schema.TensorType.FLOAT32,
                                     np.zeros((cells, 1), np.float32))
    op.inputs[0] = add_tensor(model, graph, f"{name}{MARK}x", [1, steps, 1],
                              schema.TensorType.FLOAT32, np.zeros((1, steps, 1), np.float32))
    graph.operators[k:k] = new_ops
    return len(new_ops)


def _producer(graph, tensor: int):
    for op in graph.operators:
        if tensor in op.outputs:
            return op
    return None


def _constant(model, graph, tensor: int):
    from ai_edge_litert import schema_py_generated as schema

    t = graph.tensors[tensor]
    data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
    if data is None or t.type != schema.TensorType.INT32:
        return None
    return np.frombuffer(bytes(bytearray(data)), np.int32)


def _operator(model, codes, code: int, inputs, outputs, schema, options=None):
    if code not in codes:
        opcode = schema.OperatorCodeT()
        opcode.builtinCode = opcode.deprecatedBuiltinCode = code
        opcode.version = 5 if code == _FULLY_CONNECTED else 1  # 5: keep_num_dims
        model.operatorCodes.append(opcode)
        codes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = codes.index(code)
    op.inputs, op.outputs = list(inputs), list(outputs)
    if options is not None:
        op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        op.builtinOptions = options
    return op


def _remove_dead(graph) -> None:
    """Drops every operator of a rewritten subgraph that has outputs and none of them is
    read (by an op or as a graph output): the TILE the rewrite bypassed, and whatever fed
    only it. An op without outputs may act by side effect (a variable's assignment) and
    stays."""
    while True:
        read = set(graph.outputs if graph.outputs is not None else [])
        for op in graph.operators:
            read.update(i for i in (op.inputs if op.inputs is not None else []) if i >= 0)
        dead = [op for op in graph.operators if op.outputs is not None and len(op.outputs)
                and not any(o in read for o in op.outputs)]
        if not dead:
            return
        graph.operators = [op for op in graph.operators if op not in dead]
