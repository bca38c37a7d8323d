"""Graph preparation for a user's model: what it needs before it converts well.

A padding mask (``Masking``, ``Embedding(mask_zero=True)``) turns every recurrent layer
it reaches into a loop in TFLite and ONNX (measured: :mod:`export.user.inspect`). Where the
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
PER_STEP = (keras.layers.InputLayer, keras.layers.Dense, keras.layers.Embedding,
            keras.layers.Dropout,
            keras.layers.GaussianNoise, keras.layers.GaussianDropout,
            keras.layers.AlphaDropout, keras.layers.Activation,
            keras.layers.LayerNormalization, keras.layers.BatchNormalization,
            keras.layers.TimeDistributed, keras.layers.Rescaling,
            keras.layers.Normalization)
STEP_GRAPH = "step"
ENCODER_GRAPH = "encoder"


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


PER_STEP_MERGES = (keras.layers.Concatenate, keras.layers.Add, keras.layers.Multiply,
                   keras.layers.Average, keras.layers.Subtract)


def _own_nodes(model, layer) -> list:
    """The model's own calls of ``layer`` (a step graph built before calls it again)."""
    return [n for i, n in enumerate(layer._inbound_nodes)
            if f"{layer.name}_ib-{i}" in model._network_nodes]


def _flat(tensors) -> list:
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _state_keys(layer) -> list[str]:
    return [f"{layer.name}_{k}" for k in
            (("h", "c") if isinstance(layer, keras.layers.LSTM) else ("h",))]


def step_model(model, stream_input: str | None = None):
    """One time step of the part of ``model`` that ``stream_input`` (default: the first
    input) feeds: ``(that input (B, 1, ...), states) -> (the model's output at this step,
    next states)``. Every recurrent layer it reaches becomes its cell (copied weights)
    with its state as inputs ``<layer>_h`` (``_c``) and outputs ``<layer>_h_next`` ...; the
    other layers on the way are the model's own, applied to the one step.

    Raises:
        UnsupportedError: a layer on the way that mixes time steps (convolution, pooling,
            attention, a bidirectional or backwards recurrent layer), or that also reads a
            tensor the step does not have (an encoder's outputs other than its states).
    """
    stream_input = stream_input or model.input_names[0]
    source = next(t for t, n in zip(model.inputs, model.input_names, strict=True)
                  if n == stream_input)
    x_in = keras.Input((1, *source.shape[2:]), name=stream_input, dtype=source.dtype)
    new = {id(source): x_in}
    states_in, states_out = [], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or isinstance(layer, keras.Model):
            continue
        for node in _own_nodes(model, layer):
            inputs = _flat(node.input_tensors)
            if id(inputs[0]) not in new:
                continue  # not on the stream's way (an encoder)
            if isinstance(layer, RECURRENT):
                outs = _cell_step(layer, new[id(inputs[0])], states_in, states_out)
            else:
                missing = [t for t in inputs if id(t) not in new]
                if missing:
                    raise UnsupportedError(
                        f"layer {layer.name!r} reads a tensor the one-step graph does not "
                        "have (attention over an encoder's outputs?): the step graph carries "
                        "only recurrent states")
                if not isinstance(layer, (*PER_STEP, *PER_STEP_MERGES)):
                    raise UnsupportedError(
                        f"layer {layer.name!r} ({type(layer).__name__}) mixes time steps: a "
                        "streamed model exports recurrent layers (LSTM, GRU, SimpleRNN) and "
                        "layers that act on each step alone")
                got = layer([new[id(t)] for t in inputs] if len(inputs) > 1
                            else new[id(inputs[0])])
                outs = _flat(got)
            for t, n in zip(_flat(node.output_tensors), outs, strict=True):
                new[id(t)] = n
    output = model.outputs[0]
    if id(output) not in new:
        raise UnsupportedError(f"the model's output {model.output_names[0]!r} does not "
                               f"depend on {stream_input!r} step by step")
    y = new[id(output)]
    if y._keras_history.layer.name != model.output_names[0]:
        y = keras.layers.Activation("linear", name=model.output_names[0])(y)
    return keras.Model([x_in, *states_in], [y, *states_out], name=STEP_GRAPH)


def _cell_step(layer, x, states_in: list, states_out: list) -> list:
    """A recurrent layer as one step of its cell; its outputs as the layer's node has
    them (the sequence or last output, then the states if it returns them)."""
    if getattr(layer, "go_backwards", False):
        raise UnsupportedError(f"layer {layer.name!r} runs backwards: it cannot stream")
    names = _state_keys(layer)
    inputs = [keras.Input((layer.units,), name=n) for n in names]
    cell = type(layer.cell).from_config({**layer.cell.get_config(),
                                         "name": f"{layer.name}_cell"})
    flat = keras.layers.Reshape(tuple(x.shape[2:]), name=f"{layer.name}_step_in")(x)
    out, next_states = cell(flat, inputs if len(inputs) > 1 else inputs[0])
    cell.set_weights(layer.cell.get_weights())
    next_states = [keras.layers.Activation("linear", name=f"{n}_next")(s)
                   for n, s in zip(names, _flat(next_states), strict=True)]
    states_in += inputs
    states_out += next_states
    y = keras.layers.Reshape((1, layer.units), name=f"{layer.name}_step_out")(out) \
        if layer.return_sequences else out
    return [y, *next_states] if layer.return_state else [y]


def _initial_state_nodes(model) -> list:
    return [(layer, node) for layer in model.layers if isinstance(layer, RECURRENT)
            for node in _own_nodes(model, layer) if len(_flat(node.input_tensors)) > 1]


def has_initial_state(model) -> bool:
    """A recurrent layer called with ``initial_state`` (an encoder-decoder)."""
    return bool(_initial_state_nodes(model))


def decoder_input(model) -> str:
    """The model input that reaches the recurrent layers given an initial state.

    Raises:
        UnsupportedError: they read no single model input step by step.
    """
    names = set()
    for _, node in _initial_state_nodes(model):
        t = _flat(node.input_tensors)[0]
        while not isinstance(t._keras_history.layer, keras.layers.InputLayer):
            inbound = _flat(t._keras_history.layer._inbound_nodes[
                t._keras_history.node_index].input_tensors)
            if len(inbound) != 1:
                raise UnsupportedError(f"the decoder's input passes {t._keras_history.layer.name!r}"
                                       ", which merges tensors: lstm-zoo streams a decoder "
                                       "that reads one input")
            t = inbound[0]
        names.add(t._keras_history.layer.name)
    if len(names) != 1:
        raise UnsupportedError(f"the layers with an initial state read inputs {sorted(names)};"
                               " lstm-zoo exports a decoder that reads one input")
    (name,) = names
    return name


def encoder_model(model, stream_input: str):
    """The part of a model that sets the initial states of the recurrent layers the
    decoder input ``stream_input`` reaches: ``(the other inputs) -> <layer>_h, <layer>_c``
    (named as the step graph's state inputs); None when no such layer has an initial
    state."""
    outputs = []
    for layer, node in _initial_state_nodes(model):
        for key, t in zip(_state_keys(layer), _flat(node.input_tensors)[1:], strict=True):
            outputs.append(keras.layers.Activation("linear", name=key)(t))
    if not outputs:
        return None
    others = [t for t, n in zip(model.inputs, model.input_names, strict=True)
              if n != stream_input]
    try:
        return keras.Model(others, outputs, name="encoder")
    except ValueError as e:
        raise UnsupportedError(f"the initial states are not computed from the inputs other "
                               f"than {stream_input!r} alone: {e}") from None
