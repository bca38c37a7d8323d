"""Facts about a Keras export graph that the converters and checks need."""

from __future__ import annotations

import weakref

from zoo._keras import keras
from zoo.graphs import TensorInfo, input_infos, output_infos, serving_function, signature
from zoo.layers import PeepholeLSTMCell

__all__ = ["TensorInfo", "conversion_source", "input_infos", "int_input_ranges", "output_infos",
           "recurrent_directions", "serving_function", "signature"]


def recurrent_directions(model) -> dict[str, int]:
    """Counts recurrent directions by cell type: a Bidirectional LSTM counts 2 LSTM (and
    so does a Bidirectional peephole RNN, exported as fused LSTM ops)."""
    counts = {"LSTM": 0, "GRU": 0, "other": 0}

    def visit(layer, factor=1):
        if isinstance(layer, keras.layers.Bidirectional):
            visit(layer.forward_layer, 2 * factor)
        elif isinstance(layer, keras.layers.LSTM):
            counts["LSTM"] += factor
        elif isinstance(layer, keras.layers.GRU):
            counts["GRU"] += factor
        elif isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, PeepholeLSTMCell):
            counts["LSTM"] += factor  # exported as fused LSTM ops (export.conversion.peephole)
        elif isinstance(layer, keras.layers.RNN):
            counts["other"] += factor
        elif isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub, factor)

    for layer in model.layers:
        visit(layer)
    return counts


def int_input_ranges(model) -> dict[str, int]:
    """Inputs that take ids, with the vocabulary size for random feeds: integer inputs
    (2 where no Embedding reads them) and inputs of any dtype that feed an Embedding (a
    user's ``keras.Input((None,))`` of ids is float32)."""
    ranges = {}
    for t, name in zip(model.inputs, model.input_names, strict=True):
        layer = t._keras_history.layer  # the InputLayer (a Sequential does not list it)
        if t.dtype.is_integer:
            ranges[name] = 2
        for node in layer._outbound_nodes:  # the layers that consume this input
            if isinstance(node.outbound_layer, keras.layers.Embedding):
                ranges[name] = int(node.outbound_layer.input_dim)
    return ranges


_CONVERSION_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def conversion_source(model, kind: str, make):
    """``make()``, computed once per (model, ``kind``) while the model's weights stay the
    same: a graph converted at several precisions is traced and serialised once per
    format (each TFLite conversion traced and saved the model anew: 9.5 s of a tiny
    classifier's 13 s per precision, measured). Keyed on the model object and a digest
    of its variables (trainable or not), so a model trained or pruned in between converts
    afresh. What is not a variable is not in the digest: a layer's constants (a
    ``Normalization`` given its mean and variance), a changed activation, values a
    ``Lambda`` captures; change those on a new model, not in place. The value lives as
    long as the model (or until the weights change)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha1()
    for w in model.weights:
        digest.update(np.ascontiguousarray(w.numpy()).tobytes())
    slot = _CONVERSION_SOURCES.setdefault(model, {})  # kind -> (weights digest, value)
    if slot.get(kind, (None,))[0] != digest.hexdigest():
        slot[kind] = (digest.hexdigest(), make())
    return slot[kind][1]
