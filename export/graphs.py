"""Facts about a Keras export graph that the converters and checks need."""

from __future__ import annotations

from dataclasses import dataclass

from zoo._keras import keras, tf


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]  # batch axis included (None = dynamic)
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def input_infos(model) -> list[TensorInfo]:
    return [
        TensorInfo(name, (None, *t.shape[1:]), t.dtype.name)
        for t, name in zip(model.inputs, model.input_names, strict=True)
    ]


def output_infos(model) -> list[TensorInfo]:
    return [
        TensorInfo(name, (None, *t.shape[1:]), t.dtype.name)
        for t, name in zip(model.outputs, model.output_names, strict=True)
    ]


def signature(model, batch: int | None) -> list[tf.TensorSpec]:
    """Input TensorSpecs with the batch axis set to ``batch`` (1 for TFLite)."""
    return [tf.TensorSpec((batch, *i.shape[1:]), i.dtype, name=i.name) for i in input_infos(model)]


def serving_function(model, batch: int | None):
    """A tf.function over the graph's inputs returning a dict keyed by output name."""
    names = list(model.output_names)

    @tf.function(input_signature=signature(model, batch))
    def serve(*args):
        outs = model(list(args) if len(args) > 1 else args[0], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return dict(zip(names, outs, strict=True))

    return serve


def recurrent_directions(model) -> dict[str, int]:
    """Counts recurrent directions by cell type: a Bidirectional LSTM counts 2 LSTM."""
    counts = {"LSTM": 0, "GRU": 0, "other": 0}

    def visit(layer, factor=1):
        if isinstance(layer, keras.layers.Bidirectional):
            visit(layer.forward_layer, 2 * factor)
        elif isinstance(layer, keras.layers.LSTM):
            counts["LSTM"] += factor
        elif isinstance(layer, keras.layers.GRU):
            counts["GRU"] += factor
        elif isinstance(layer, keras.layers.RNN):
            counts["other"] += factor
        elif isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub, factor)

    for layer in model.layers:
        visit(layer)
    return counts


def int_input_ranges(model) -> dict[str, int]:
    """For integer inputs feeding an Embedding, the vocabulary size (for random feeds)."""
    ranges = {}
    for t, name in zip(model.inputs, model.input_names, strict=True):
        if not t.dtype.is_integer:
            continue
        layer = model.get_layer(name)
        ranges[name] = 2
        for node in layer._outbound_nodes:  # the layers that consume this input
            if isinstance(node.outbound_layer, keras.layers.Embedding):
                ranges[name] = int(node.outbound_layer.input_dim)
    return ranges
