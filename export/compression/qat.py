"""Quantization-aware training (QAT) for recurrent models, with tfmot's wrapper.

tfmot 0.8.1 refuses to quantize LSTM, GRU, Bidirectional and ConvLSTM2D (its registry
has no config that works for them under tf_keras). Here each layer with trainable weights
gets a :class:`QuantizeConfig` that fake-quantizes its weights on the grid TFLite's
full-int8 kernels use:

- recurrent layers (LSTM / GRU / ConvLSTM2D, alone or inside ``Bidirectional``): every
  gate's input and recurrent matrix on its own symmetric int8 scale, ``max|W_gate| / 127``
  (narrow range) -- the scales TFLite's int8 ``UNIDIRECTIONAL_SEQUENCE_LSTM`` holds, one per
  gate tensor;
- ``Dense`` / ``TimeDistributed(Dense)`` / our Luong attention: symmetric int8 per output
  channel, TFLite's ``FULLY_CONNECTED`` scheme;
- ``Embedding``: symmetric int8 per tensor.

Fine-tuning runs through the fake-quantized weights (straight-through gradients), the
weights are then *snapped* onto their int8 grid and copied into a model built by the
registered builder (the bundle rebuilds that architecture), which the ordinary full-int8
conversion (calibrated activations) turns into an int8 artifact with the fused LSTM op: the
snapped values quantize exactly.

Activations are calibrated, not trained: with tfmot's activation quantizer on the
recurrent outputs, the converter refuses dynamic and int8 ("We cannot duplicate the value
since it's not constant", TF 2.21; ``tests/test_qat.py`` guards it).

Example:
    >>> import zoo  # doctest: +SKIP
    >>> from export.compression.qat import quantize_aware
    >>> model = zoo.create_model("bilstm_activity", weights="DEFAULT")  # doctest: +SKIP
    >>> snapped, report = quantize_aware("bilstm_activity", model)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import tensorflow as tf

from zoo._keras import keras
from zoo.errors import UnsupportedError
from zoo.layers import LuongAttention

BITS = 8
RNN_TYPES = (keras.layers.LSTM, keras.layers.GRU, keras.layers.ConvLSTM2D)
GATES = {keras.layers.LSTM: 4, keras.layers.GRU: 3, keras.layers.ConvLSTM2D: 4}


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def fake_quant(w, blocks: int = 1, per_channel: bool = False, keep_zeros: bool = False):
    """``w`` rounded onto a symmetric int8 grid (straight-through gradient).

    Args:
        blocks: split the last axis into this many equal blocks (the gates of a
            recurrent kernel), each with its own scale ``max|block| / 127``.
        per_channel: one scale per last-axis channel instead (``blocks`` ignored).
        keep_zeros: zeros stay zero (a pruned kernel keeps its sparsity).
    """
    if keep_zeros:
        w = w * tf.stop_gradient(tf.cast(tf.not_equal(w, 0), w.dtype))
    # per channel: reduce over every axis but the last; per block: over the whole block
    axes = list(range(len(w.shape) - 1)) if per_channel else None
    out = []
    for part in [w] if per_channel else tf.split(w, blocks, axis=-1):
        bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(part), axis=axes), 1e-8))
        scale = bound / (2 ** (BITS - 1) - 1)
        # round(w / s) * s with the identity gradient (the straight-through estimator).
        snapped = tf.round(part / scale) * scale
        out.append(part + tf.stop_gradient(snapped - part))
    return out[0] if len(out) == 1 else tf.concat(out, axis=-1)


def _quantizer_class():
    tfmot = _tfmot()

    class WeightQuantizer(tfmot.quantization.keras.quantizers.Quantizer):
        """Stateless symmetric int8 weight quantizer (see :func:`fake_quant`)."""

        def __init__(self, blocks: int = 1, per_channel: bool = False,
                     keep_zeros: bool = False):
            self.blocks, self.per_channel, self.keep_zeros = blocks, per_channel, keep_zeros

        def build(self, tensor_shape, name, layer):
            return {}

        def __call__(self, inputs, training, weights, **kwargs):
            return fake_quant(inputs, self.blocks, self.per_channel, self.keep_zeros)

        def get_config(self):
            return {"blocks": self.blocks, "per_channel": self.per_channel,
                    "keep_zeros": self.keep_zeros}

        def __eq__(self, other):
            return type(self) is type(other) and self.get_config() == other.get_config()

        def __ne__(self, other):
            return not self == other

    return WeightQuantizer


def _targets(layer) -> list[tuple[Any, str, dict]]:
    """``[(object holding the weight, attribute, quantizer options)]`` for ``layer``.

    Raises:
        UnsupportedError: a layer with trainable weights and no rule.
    """
    inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
    if isinstance(inner, keras.layers.Bidirectional):
        rnns = [inner.forward_layer, inner.backward_layer]
    elif isinstance(inner, RNN_TYPES):
        rnns = [inner]
    else:
        rnns = []
    if rnns:
        targets = []
        for rnn in rnns:
            if type(rnn) not in GATES:
                raise UnsupportedError(
                    f"no QAT rule for layer {layer.name!r}: {type(rnn).__name__} inside "
                    f"{type(inner).__name__} (rules: {sorted(c.__name__ for c in GATES)})")
            for attr in ("kernel", "recurrent_kernel"):
                targets.append((rnn.cell, attr, {"blocks": GATES[type(rnn)]}))
        return targets
    if isinstance(inner, (keras.layers.Dense, LuongAttention)) or \
            type(inner) is keras.layers.Conv1D:  # (Conv1DTranspose's last axis is its input)
        # per output channel (the last axis), as TFLite's int8 FULLY_CONNECTED / CONV_2D
        return [(inner, "kernel", {"per_channel": True})]
    if isinstance(inner, keras.layers.Embedding):
        return [(inner, "embeddings", {})]
    raise UnsupportedError(
        f"no QAT rule for layer {layer.name!r} ({type(layer).__name__}); rules exist for "
        "LSTM, GRU, ConvLSTM2D, Bidirectional, Dense, TimeDistributed(Dense), Conv1D, "
        "Embedding and LuongAttention")


def _config_class():
    tfmot = _tfmot()
    WeightQuantizer = _quantizer_class()

    class WeightsQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Fake-quantizes the weights :func:`_targets` names; activations are calibrated
        at conversion (see the module docstring)."""

        def __init__(self, keep_zeros: bool = False):
            self.keep_zeros = keep_zeros

        def get_weights_and_quantizers(self, layer):
            return [(getattr(owner, attr),
                     WeightQuantizer(keep_zeros=self.keep_zeros, **options))
                    for owner, attr, options in _targets(layer)]

        def set_quantize_weights(self, layer, quantize_weights):
            for (owner, attr, _), value in zip(_targets(layer), quantize_weights, strict=True):
                setattr(owner, attr, value)

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {"keep_zeros": self.keep_zeros}

    return WeightsQuantizeConfig


def wrap(model, keep_zeros: bool = False):
    """A clone of ``model`` whose layers with trainable weights are wrapped in tfmot's
    ``QuantizeWrapperV2`` with :class:`WeightsQuantizeConfig`, starting from ``model``'s
    weights. Returns ``(clone, {layer name: (wrapper, the layer's variables in
    get_weights order)})`` (once called, the wrapper replaces the quantized weight
    attributes with tensors, and the layer stops listing those variables).

    Raises:
        UnsupportedError: a layer with trainable weights that has no QAT rule.
    """
    tfmot = _tfmot()
    config_cls = _config_class()
    for layer in model.layers:
        if layer.trainable_weights:
            _targets(layer)  # refuse before any work, naming the layer
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    wrapped: dict[str, Any] = {}

    def add(layer):
        if not layer.trainable_weights:
            return layer
        wrapper = tfmot.quantization.keras.QuantizeWrapperV2(
            layer, config_cls(keep_zeros=keep_zeros))
        wrapped[layer.name] = (wrapper, list(layer.weights))
        return wrapper

    return keras.models.clone_model(plain, clone_function=add), wrapped


def snap_into(fresh, wrapped: dict) -> None:
    """Copies each wrapped layer's weights, snapped onto their int8 grid, into ``fresh``
    (a model with the original architecture)."""
    for name, (wrapper, variables) in wrapped.items():
        # The wrapper keeps the quantized variables in :func:`_targets` order, as
        # (variable, quantizer, quantizer variables).
        quantized = [entry[0] for entry in wrapper._weight_vars]
        snapped = {id(v): fake_quant(v, **options).numpy()
                   for v, (_, _, options) in zip(quantized, _targets(wrapper.layer),
                                                 strict=True)}
        fresh.get_layer(name).set_weights([snapped.get(id(w), w.numpy()) for w in variables])


def quantize_aware(name, model, *, epochs: int | None = None, limit: int | None = None,
                   keep_zeros: bool = False, data=None, verbose: int = 0) -> tuple[Any, dict]:
    """Fine-tunes ``model`` with int8 fake-quantized weights on its training data.

    Args:
        name: the registered model name, or a spec (its recipe's ``finetune.qat`` -- else
            ``finetune`` -- gives epochs and learning rate; its task trains).
        model: the trained Keras model (left untouched).
        epochs / limit: override the fine-tuning epochs / training samples (tests).
        keep_zeros: keep pruned weights at zero.
        data: the model's training data, if already loaded (default: the spec's training
            split; a user model's comes here).

    Returns:
        ``(model with the original architecture and int8-snapped weights, report)``.

    Raises:
        UnsupportedError: a layer without a QAT rule (named in the message).
    """
    from export.compression.recipes import (
        resolve_spec,
        schedule_of,
        stage_recipe,
        training_data,
    )
    from zoo.tasks import get_task
    from zoo.train import seed_everything

    spec = resolve_spec(name)
    recipe = stage_recipe(spec, "qat", epochs, limit)
    clone, wrapped = wrap(model, keep_zeros=keep_zeros)
    seed_everything(recipe.get("seed", 0))
    data = training_data(spec, data)
    start = time.time()
    get_task(spec.task).fit(clone, data, recipe, spec, verbose, adapt=False)
    fresh = keras.models.clone_model(model)
    fresh.set_weights(model.get_weights())  # non-trainable state (e.g. Normalization)
    snap_into(fresh, wrapped)
    report = {"fine_tune": schedule_of(recipe),
              "layers": sorted(wrapped), "bits": BITS, "keep_zeros": keep_zeros,
              "seconds": round(time.time() - start, 1),
              "max_levels_per_gate": _max_levels(fresh, wrapped)}
    return fresh, report


def _max_levels(model, wrapped: dict) -> int:
    """The most distinct values any quantized block holds (<= 255 once snapped)."""
    most = 0
    for name in wrapped:
        layer = model.get_layer(name)
        for owner, attr, options in _targets(layer):
            w = getattr(owner, attr).numpy()
            if options.get("per_channel"):
                blocks = [w[..., j] for j in range(w.shape[-1])]
            else:
                blocks = np.split(w, options.get("blocks", 1), axis=-1)
            most = max(most, *(len(np.unique(b)) for b in blocks))
    return most
