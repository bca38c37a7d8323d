"""Helpers for rewriting a converted TFLite flatbuffer (its unpacked ``schema.ModelT``)."""

from __future__ import annotations

import numpy as np


def add_tensor(model, graph, name: str, shape, dtype: int, values=None,
               quantization=None) -> int:
    """Appends a tensor to ``graph`` with a buffer of its own in ``model``; returns its
    index. ``values`` (any array; its bytes are stored as they are) make it a constant;
    without them the buffer is empty (an activation). ``dtype`` is a ``schema.TensorType``
    and must match ``values``' dtype; ``quantization`` a ``schema.QuantizationParametersT``.
    """
    from ai_edge_litert import schema_py_generated as schema

    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.type = name.encode(), list(shape), dtype
    tensor.quantization = quantization
    buffer = schema.BufferT()
    if values is not None:
        buffer.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1
