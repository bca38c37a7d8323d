"""Graph preparation for a user's model: what it needs before it converts well.

A padding mask (``Masking``, ``Embedding(mask_zero=True)``) turns every recurrent layer
it reaches into a loop in TFLite and ONNX (measured: :mod:`export.inspect`). Where the
mask only marks padding at one end of each sample, the model without the mask, fed each
sample at its own length, computes the same outputs (the way ``bilstm_text`` is
exported): :func:`unmask` builds that model, :mod:`zoo.user_task` trims each sample, and
the export checks the claim on the user's samples against the ORIGINAL masked model
before converting (:func:`check_unmasked`).
"""

from __future__ import annotations

import numpy as np

from zoo._keras import keras
from zoo.errors import ParityError, UnsupportedError
from zoo.user_task import SAME_VALUES, sample_span


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
