"""Graph preparation for a user's model: what it needs before it converts well.

A padding mask (``Masking``, ``Embedding(mask_zero=True)``) turns every recurrent layer
it reaches into a loop in TFLite and ONNX (measured: :mod:`export.inspect`). Where the
mask only marks padding at one end of each sample, the model without the mask, fed each
sample at its own length, computes the same outputs (the way ``bilstm_text`` is
exported): :func:`unmask` builds that model, :mod:`zoo.tasks.user` trims each sample, and
the export checks the claim on the user's samples against the ORIGINAL masked model
before converting (:func:`check_unmasked`).
"""

from __future__ import annotations

import numpy as np

from zoo._keras import keras
from zoo.errors import ParityError, UnsupportedError
from zoo.tasks.user import SAME_VALUES, sample_span


def mask_source(model) -> dict | None:
    """The padding mask a model makes from one of its inputs (``{"input", "kind",
    "value", "layer"}``), or None.

    Raises:
        UnsupportedError: a mask made inside the model (not straight from an input), or
            more than one mask.
    """
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Masking):
            kind, value = "value", float(layer.mask_value)
        elif isinstance(layer, keras.layers.Embedding) and layer.mask_zero:
            kind, value = "zero", 0.0
        else:
            continue
        sources = [n.inbound_layers for n in layer._inbound_nodes]
        inputs = [s for s in sources if isinstance(s, keras.layers.InputLayer)]
        if len(sources) != 1 or len(inputs) != 1:
            raise UnsupportedError(
                f"layer {layer.name!r} makes a padding mask from a computed tensor; lstm-zoo "
                "exports masks made straight from a model input (Masking or "
                "Embedding(mask_zero=True) on the input)")
        found.append({"input": inputs[0].name, "kind": kind, "value": value,
                      "layer": layer.name})
    if len(found) > 1:
        raise UnsupportedError(f"{len(found)} padding masks ({[f['layer'] for f in found]}); "
                               "lstm-zoo exports models with one")
    return found[0] if found else None


def unmask(model, mask: dict):
    """The model without its mask: Embedding(mask_zero=False), Masking as an identity
    (same names, same weights)."""
    config = model.get_config()
    for entry in config["layers"]:
        if entry["config"].get("name") != mask["layer"]:
            continue
        if entry["class_name"] == "Embedding":
            entry["config"]["mask_zero"] = False
        else:  # Masking: an identity of the same name (it has no weights)
            entry["class_name"] = "Activation"
            entry["config"] = {"name": mask["layer"], "activation": "linear",
                               "trainable": False, "dtype": entry["config"].get("dtype")}
    cls = keras.Sequential if isinstance(model, keras.Sequential) else keras.Model
    twin = cls.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def check_unmasked(name: str, unmasked_outputs: dict, original: dict, x: dict,
                   mask: dict) -> float:
    """That the unmasked model on trimmed samples computed the masked model's outputs.

    Raises:
        UnsupportedError: a sample whose mask is not padding at one end (a masked step
            between real ones), or all padding.
        ParityError: the outputs differ by more than :data:`SAME_VALUES` (a layer after
            the mask that sees the padded steps, e.g. a sequence output).
    """
    for i, sample in enumerate(x[mask["input"]]):
        sample_span(sample, mask, f"sample {i}")  # raises where trimming is not exact
    worst = max(float(np.max(np.abs(np.asarray(unmasked_outputs[k], np.float64) - v),
                             initial=0.0)) for k, v in original.items())
    if worst > SAME_VALUES:
        raise ParityError(
            f"{name}: without its mask, fed each sample at its own length, the model differs "
            f"from the masked model by {worst:.3g} (limit {SAME_VALUES}): a layer after the "
            f"mask sees the padded steps (a sequence output?); nothing was exported")
    return worst


# ---------------------------------------------------------------------------------------
# Streaming: a stateful model as a whole-sequence graph and a one-step graph

RECURRENT = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)
# Layers that act on each time step alone, so a step graph may apply them to one step.
PER_STEP = (keras.layers.InputLayer, keras.layers.Dense, keras.layers.Dropout,
            keras.layers.GaussianNoise, keras.layers.GaussianDropout,
            keras.layers.AlphaDropout, keras.layers.Activation,
            keras.layers.LayerNormalization, keras.layers.BatchNormalization,
            keras.layers.TimeDistributed, keras.layers.Rescaling,
            keras.layers.Normalization)
STEP_GRAPH = "step"


def is_stateful(model) -> bool:
    return any(getattr(layer, "stateful", False) for layer in model.layers)


def stateless(model):
    """The same model with ``stateful=False`` and a free batch axis: the whole-sequence
    graph, which starts every sample from zero state (what a stateful model computes
    after ``reset_states()``)."""
    config = model.get_config()
    for entry in config["layers"]:
        cfg = entry["config"]
        if "stateful" in cfg:
            cfg["stateful"] = False
        for key in ("batch_input_shape", "batch_shape"):
            if cfg.get(key):
                cfg[key] = [None, *cfg[key][1:]]
    cls = keras.Sequential if isinstance(model, keras.Sequential) else keras.Model
    twin = cls.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def _chain(model) -> list:
    """The model's layers as one chain, input to output.

    Raises:
        UnsupportedError: a branch, a merge, a nested model, a layer that mixes time steps,
            a bidirectional or backwards recurrent layer (none can stream).
    """
    layers = list(model.layers)
    for layer in layers:
        # the model's own calls of the layer (a step graph built before calls it again)
        inbound = [n for i, n in enumerate(layer._inbound_nodes)
                   if f"{layer.name}_ib-{i}" in model._network_nodes]
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if len(inbound) != 1 or isinstance(inbound[0].inbound_layers, list):
            raise UnsupportedError(f"layer {layer.name!r} merges or is shared: a streaming "
                                   "(stateful) model exports as a chain of layers")
        if isinstance(layer, RECURRENT):
            if layer.go_backwards:
                raise UnsupportedError(f"layer {layer.name!r} runs backwards: it cannot "
                                       "stream")
        elif not isinstance(layer, PER_STEP):
            raise UnsupportedError(
                f"layer {layer.name!r} ({type(layer).__name__}) mixes time steps or is not "
                "one a step graph applies to a single step: a streaming (stateful) model "
                "exports recurrent layers (LSTM, GRU, SimpleRNN) and per-step layers")
    recurrent = [layer for layer in layers if isinstance(layer, RECURRENT)]
    for layer in recurrent[:-1]:
        if not layer.return_sequences:
            raise UnsupportedError(f"layer {layer.name!r} returns its last step only and "
                                   "feeds more recurrent layers: it cannot stream")
    return layers


def step_model(model):
    """One time step of a chain model: ``(x (B, 1, C), states) -> (outputs at this step,
    next states)``. Recurrent layers become their cells (copied weights); the per-step
    layers are the model's own."""
    chain = _chain(model)
    info = model.inputs[0]
    x_in = keras.Input((1, *info.shape[2:]), name=model.input_names[0], dtype=info.dtype)
    x, states_in, states_out = x_in, [], []
    for layer in chain:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, RECURRENT):
            x = layer(x)
            continue
        names = [f"{layer.name}_{k}" for k in
                 (("h", "c") if isinstance(layer, keras.layers.LSTM) else ("h",))]
        inputs = [keras.Input((layer.units,), name=n) for n in names]
        cell = type(layer.cell).from_config({**layer.cell.get_config(),
                                             "name": f"{layer.name}_cell"})
        flat = keras.layers.Reshape(tuple(x.shape[2:]), name=f"{layer.name}_step_in")(x)
        out, new = cell(flat, inputs if len(inputs) > 1 else inputs[0])
        cell.set_weights(layer.cell.get_weights())
        new = new if isinstance(new, (list, tuple)) else [new]
        states_in += inputs
        states_out += [keras.layers.Activation("linear", name=f"{n}_next")(s)
                       for n, s in zip(names, new, strict=True)]
        x = keras.layers.Reshape((1, layer.units), name=f"{layer.name}_step_out")(out) \
            if layer.return_sequences else out
    y = x if x._keras_history.layer.name == model.output_names[0] else \
        keras.layers.Activation("linear", name=model.output_names[0])(x)
    return keras.Model([x_in, *states_in], [y, *states_out], name=STEP_GRAPH)
