"""Structured pruning: remove whole hidden units of LSTM/GRU layers.

Magnitude pruning zeroes weights but keeps every matrix its size, so no runtime gets
faster. Removing a hidden unit instead shrinks every matrix the unit touches: its
columns in the four (LSTM) or three (GRU) gate blocks of the input and recurrent
kernels and bias, its row of the recurrent kernel, and the rows (or columns) of every
layer that reads the unit: the next recurrent layer, a Dense head, attention, and the
Dense layers that compute an initial state for it.

How it works:
1. The model's spec says which builder arguments hold the recurrent widths
   (``ModelSpec.shrink``); the builder builds the smaller architecture, so the result
   is an ordinary registered model that ``lstm-zoo verify`` can rebuild from its config.
2. Every tensor's last axis is traced through the graph as *segments*: runs of features
   owned by one "unit space" (an RNN direction's hidden units, a Dense layer's outputs,
   or a fixed space such as the input). Concatenate and Bidirectional join segments;
   a Dense that computes an RNN's initial state shares that RNN's space.
3. Each shrunk space keeps its most important units: the L2 norm of all weights that
   feed the unit (every gate) plus its outgoing recurrent row (recurrent spaces), or of
   the Dense column (Dense spaces). The other units are removed from every weight that
   touches the space, so the small model computes what the big one would with those
   units silenced; fine-tuning then recovers the accuracy.

Example:
    >>> import zoo  # doctest: +SKIP
    >>> from export.compression.structured import shrink
    >>> model = zoo.create_model("bilstm_activity", weights="DEFAULT")  # doctest: +SKIP
    >>> small, overrides, report = shrink("bilstm_activity", model, 0.5)  # doctest: +SKIP
    >>> overrides  # doctest: +SKIP
    {'units': (32, 32)}
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from zoo._keras import keras
from zoo.errors import UnsupportedError
from zoo.layers import EncoderSummary, LuongAttention

RNN = (keras.layers.LSTM, keras.layers.GRU)
GATES = {keras.layers.LSTM: 4, keras.layers.GRU: 3}
# Layers that pass their first input's features through unchanged.
PASS_THROUGH = (keras.layers.Activation, keras.layers.Dropout, keras.layers.Normalization,
                keras.layers.Softmax, keras.layers.LayerNormalization, EncoderSummary,
                keras.layers.BatchNormalization, keras.layers.GlobalAveragePooling1D,
                keras.layers.GlobalMaxPooling1D, keras.layers.GaussianNoise)

Segments = list[tuple[str, int]]  # (space id, size) runs along the last axis


def check_fraction(fraction) -> float:
    """``fraction`` as a float in (0, 1).

    Raises:
        UnsupportedError: outside (0, 1) or not a number.
    """
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise UnsupportedError(
            "structured pruning fraction must be a number in (0, 1) (the fraction of hidden "
            f"units removed); got {fraction!r}") from None
    if not 0 < value < 1:
        raise UnsupportedError(f"structured pruning fraction must be in (0, 1) (the fraction "
                               f"of hidden units removed); got {value}")
    return value


class _Trace:
    """Segments of every layer output and the unit spaces they refer to."""

    def __init__(self, model):
        self.model = model
        self.outputs: dict[str, list[Segments]] = {}  # layer name -> segments per output
        self.inputs: dict[str, list[Segments]] = {}  # layer name -> segments per input
        self.size: dict[str, int] = {}  # space -> size
        self.alias: dict[str, str] = {}  # Dense space -> the RNN space it initialises
        self.owner: dict[str, tuple[Any, str]] = {}  # space -> (layer, role)
        if isinstance(model, keras.Sequential):  # a chain: each layer reads the last one
            ins = [self._space("input:fixed", int(model.inputs[0].shape[-1] or 0), None,
                               "fixed")]
            for layer in model.layers:
                self.inputs[layer.name] = ins
                self.outputs[layer.name] = self._trace(layer, ins)
                ins = self.outputs[layer.name][:1]
            return
        config = {c["name"]: c for c in model.get_config()["layers"]}
        for layer in model.layers:
            nodes = config[layer.name]["inbound_nodes"]
            if len(nodes) > 1:
                raise UnsupportedError(f"structured pruning: layer {layer.name!r} is shared "
                                       "(called more than once); not supported")
            ins = [self.outputs[n][t] for n, _, t, _ in (nodes[0] if nodes else [])]
            self.inputs[layer.name] = ins
            self.outputs[layer.name] = self._trace(layer, ins)

    def _space(self, name: str, size: int, layer, role: str) -> Segments:
        self.size[name] = size
        self.owner[name] = (layer, role)
        return [(name, size)]

    def _trace(self, layer, ins: list[Segments]) -> list[Segments]:
        name = layer.name
        if isinstance(layer, keras.layers.InputLayer):
            return [self._space(f"{name}:fixed", int(layer.output.shape[-1] or 0), layer,
                                "fixed")]
        if isinstance(layer, keras.layers.Embedding):
            return [self._space(f"{name}:fixed", layer.output_dim, layer, "fixed")]
        if type(layer) is keras.layers.Conv1D:  # its filters are kept (not Conv1DTranspose)
            return [self._space(f"{name}:fixed", layer.filters, layer, "fixed")]
        if isinstance(layer, keras.layers.Dense):
            return [self._space(f"{name}:out", layer.units, layer, "dense")]
        if isinstance(layer, RNN):
            own = self._space(f"{name}:h", layer.units, layer, "rnn")
            for state in ins[1:]:  # initial states live in the RNN's hidden space
                self._tie(state, own[0][0], layer)
            return [own] * (1 + (len(layer.states) if layer.return_state else 0))
        if isinstance(layer, keras.layers.Bidirectional):
            if not isinstance(layer.forward_layer, RNN) or layer.return_state or \
                    layer.merge_mode != "concat" or len(ins) != 1:
                raise UnsupportedError(
                    f"structured pruning: Bidirectional layer {name!r} must wrap an LSTM or "
                    "GRU, merge by 'concat' and take no initial state")
            n = layer.forward_layer.units
            return [self._space(f"{name}:forward", n, layer.forward_layer, "rnn")
                    + self._space(f"{name}:backward", n, layer.backward_layer, "rnn")]
        if isinstance(layer, keras.layers.Concatenate):
            if layer.axis not in (-1, len(layer.output.shape) - 1):
                raise UnsupportedError(f"structured pruning: Concatenate {name!r} must join "
                                       f"the feature axis; got axis={layer.axis}")
            return [[s for segs in ins for s in segs]]
        if isinstance(layer, LuongAttention):
            return [ins[1]]  # context vectors are weighted sums of the memory
        if isinstance(layer, PASS_THROUGH):
            return [ins[0]]
        raise UnsupportedError(
            f"structured pruning: no rule for layer {name!r} ({type(layer).__name__}); "
            "supported: LSTM, GRU, Bidirectional, Dense, Embedding, Conv1D, Concatenate, "
            f"LuongAttention and {[c.__name__ for c in PASS_THROUGH]}")

    def _tie(self, state: Segments, space: str, layer) -> None:
        if len(state) != 1 or self.owner.get(state[0][0], (None, ""))[1] != "dense":
            raise UnsupportedError(
                f"structured pruning: the initial state of {layer.name!r} must come straight "
                f"from a Dense layer; got features {state}")
        self.alias[state[0][0]] = space

    def canonical(self, space: str) -> str:
        return self.alias.get(space, space)


def _importance(trace: _Trace, space: str) -> np.ndarray:
    layer, role = trace.owner[space]
    if role == "dense":
        kernel = layer.kernel.numpy()
        return np.sqrt((kernel ** 2).sum(axis=0))
    gates = GATES[type(layer)]
    n = layer.units
    score = np.zeros(n)
    for w in (layer.cell.kernel, layer.cell.recurrent_kernel):
        cols = w.numpy().reshape(w.shape[0], gates, n)
        score += (cols ** 2).sum(axis=(0, 1))
    score += (layer.cell.recurrent_kernel.numpy() ** 2).sum(axis=1)  # outgoing row
    return np.sqrt(score)


def _indices(trace: _Trace, kept: dict[str, np.ndarray], segments: Segments) -> np.ndarray:
    """Indices into an axis of the big model laid out as ``segments``."""
    out, offset = [], 0
    for space, size in segments:
        out.append(offset + kept[trace.canonical(space)])
        offset += size
    return np.concatenate(out) if out else np.arange(0)


def _gates(keep: np.ndarray, n: int, gates: int) -> np.ndarray:
    return np.concatenate([g * n + keep for g in range(gates)])


def _rnn_weights(rnn, in_idx, keep) -> list[np.ndarray]:
    gates = GATES[type(rnn)]
    cols = _gates(keep, rnn.units, gates)
    kernel, recurrent, *bias = (w.numpy() for w in rnn.cell.weights)
    out = [kernel[in_idx][:, cols], recurrent[keep][:, cols]]
    return out + [b[..., cols] for b in bias]


def _sliced_weights(trace: _Trace, kept: dict[str, np.ndarray], layer) -> list[np.ndarray]:
    ins = trace.inputs[layer.name]
    weights = [w.numpy() for w in layer.weights]
    if isinstance(layer, keras.layers.Dense):
        rows = _indices(trace, kept, ins[0])
        cols = kept[trace.canonical(f"{layer.name}:out")]
        return [weights[0][rows][:, cols]] + ([weights[1][cols]] if layer.use_bias else [])
    if isinstance(layer, RNN):
        return _rnn_weights(layer, _indices(trace, kept, ins[0]),
                            kept[f"{layer.name}:h"])
    if isinstance(layer, keras.layers.Bidirectional):
        rows = _indices(trace, kept, ins[0])
        return (_rnn_weights(layer.forward_layer, rows, kept[f"{layer.name}:forward"])
                + _rnn_weights(layer.backward_layer, rows, kept[f"{layer.name}:backward"]))
    if isinstance(layer, LuongAttention):
        return [weights[0][_indices(trace, kept, ins[0])][:, _indices(trace, kept, ins[1])]]
    if type(layer) is keras.layers.Conv1D:  # kernel (width, in, filters)
        return [weights[0][:, _indices(trace, kept, ins[0])]] + weights[1:]
    if isinstance(layer, (keras.layers.Normalization, keras.layers.LayerNormalization,
                          keras.layers.BatchNormalization)):
        idx = _indices(trace, kept, ins[0])  # per-feature statistics / scales
        return [w[..., idx] if w.ndim else w for w in weights]
    return weights


def shrink(name: str, model, fraction: float, config: dict[str, Any]
           ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Removes ``fraction`` of the hidden units of every recurrent layer of ``model``.

    Args:
        name: registered model name, or a spec; a registered spec's ``shrink`` maps
            (builder config, fraction) to the builder arguments of the smaller
            architecture; a user model's (``family == "user"``) is rebuilt from its own
            config with ``round(units * (1 - fraction))`` (at least 1) in every recurrent
            layer, and the overrides name the layers.
        model: a model built by that builder (left untouched).
        config: the builder config ``model`` was built with (unused for a user model).
        fraction: fraction of hidden units to remove, in (0, 1).

    Returns:
        ``(smaller model, builder overrides, report)``; the report lists each unit space
        with its size before and after.

    Raises:
        UnsupportedError: the fraction is outside (0, 1), the model declares no
            ``shrink``, or a layer has no slicing rule.
    """
    from export.compression.recipes import resolve_spec

    fraction = check_fraction(fraction)
    spec = resolve_spec(name)
    name = spec.name
    if spec.family == "user":  # no builder: the model's own config, with fewer units
        overrides, small = _smaller_config(model, fraction)
    elif spec.shrink is None:
        raise UnsupportedError(f"{name} does not declare which builder arguments hold its "
                               "recurrent widths (ModelSpec.shrink), so it cannot be "
                               "structurally pruned")
    else:
        overrides = spec.shrink(config, fraction)
        small = spec.builder(**{**config, **overrides})
    trace = _Trace(model)
    small_sizes = _Trace(small).size
    kept: dict[str, np.ndarray] = {}
    for space, size in trace.size.items():
        if trace.owner[space][1] == "fixed":  # inputs and embeddings are never shrunk
            kept[space] = np.arange(size)
            continue
        if space in trace.alias:
            continue
        new = small_sizes.get(space)
        if new is None:
            raise UnsupportedError(f"structured pruning: the smaller {name} has no unit "
                                   f"space {space!r}; the builder changed its layers")
        if new == size:
            kept[space] = np.arange(size)
        else:  # the most important units, in their original order
            kept[space] = np.sort(np.argsort(-_importance(trace, space), kind="stable")[:new])
    for space in trace.alias:
        if small_sizes[space] != len(kept[trace.canonical(space)]):
            raise UnsupportedError(f"structured pruning: {space!r} initialises "
                                   f"{trace.canonical(space)!r} but the smaller builder gave "
                                   "them different sizes")
    for layer in model.layers:
        if layer.weights:
            small.get_layer(layer.name).set_weights(_sliced_weights(trace, kept, layer))
    report = {"fraction": fraction, "overrides": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in overrides.items()},
              "units": {trace.canonical(s): [size, int(len(kept[trace.canonical(s)]))]
                        for s, size in trace.size.items() if s not in trace.alias
                        and trace.owner[s][1] == "rnn"},
              "params": [int(model.count_params()), int(small.count_params())]}
    return small, overrides, report


def _smaller_config(model, fraction: float) -> tuple[dict[str, int], Any]:
    """A user model rebuilt from its config with fewer units in every LSTM and GRU layer
    (also inside Bidirectional), and ``{layer name: new units}``."""
    config = json.loads(model.to_json())
    overrides: dict[str, int] = {}

    def smaller(entry: dict, name: str) -> None:
        units = entry["config"]["units"]
        entry["config"]["units"] = overrides[name] = max(1, round(units * (1 - fraction)))

    for entry in config["config"]["layers"]:
        name = entry["config"]["name"]
        if entry["class_name"] in ("LSTM", "GRU"):
            smaller(entry, name)
        elif entry["class_name"] == "Bidirectional":
            for part in ("layer", "backward_layer"):
                if part in entry["config"] and \
                        entry["config"][part]["class_name"] in ("LSTM", "GRU"):
                    smaller(entry["config"][part], name)
    if not overrides:
        raise UnsupportedError("structured pruning removes units of LSTM and GRU layers; "
                               "this model has none")
    return overrides, keras.models.model_from_json(json.dumps(config))
