"""The export graphs of a trained model, as named-tensor callables.

Every backend (Keras here; LiteRT and ONNX Runtime in :mod:`export.verification.runtime`) exposes
a graph as ``graph(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]``, so task
code (greedy decoding, classification) is written once and runs on any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from zoo._keras import tf


def graph_models(spec, model) -> dict:
    """Builds the Keras model of each graph the spec exports, keyed by graph name."""
    graphs = {}
    for g in spec.graphs:
        graph = g.build(model) if g.build else model
        if tuple(graph.input_names) != g.inputs or tuple(graph.output_names) != g.outputs:
            raise ValueError(
                f"{spec.name}/{g.name}: graph has inputs {graph.input_names} and outputs "
                f"{graph.output_names}; the spec declares {list(g.inputs)} -> {list(g.outputs)}"
            )
        graphs[g.name] = graph
    return graphs


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


class KerasGraph:
    """Runs a Keras graph model in inference mode through one traced tf.function."""

    backend = "keras"

    def __init__(self, model):
        self.model = model
        self.input_names = tuple(model.input_names)
        self.output_names = tuple(model.output_names)
        self._fn = serving_function(model, batch=None)

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self._fn(*(feeds[n] for n in self.input_names))
        return {k: v.numpy() for k, v in outs.items()}


def keras_graphs(spec, model) -> dict[str, KerasGraph]:
    return {name: KerasGraph(m) for name, m in graph_models(spec, model).items()}
