"""Magnitude pruning and weight clustering with tfmot, including the layers it refuses.

tfmot 0.8.1 prunes Dense, Embedding, LSTM and GRU, and refuses ``Bidirectional``,
``TimeDistributed``, ``ConvLSTM2D`` and custom layers such as our Luong attention. An
*adapter* is a subclass of the refused layer that also implements tfmot's
``PrunableLayer`` (``get_prunable_weights``) or ``ClusterableLayer``
(``get_clusterable_weights``); a clone of the model swaps each refused layer for its
adapter (same config, same weights, same variable order), so tfmot wraps it like any
supported layer. After fine-tuning, the weights are copied back into a model built by
the registered builder: the exported graphs are exactly those of an unpruned model, so
every LSTM stays a fused op.

Example:
    >>> import zoo  # doctest: +SKIP
    >>> from export.compression.prune import compress
    >>> model = zoo.create_model("bilstm_activity", weights="DEFAULT")  # doctest: +SKIP
    >>> pruned, report = compress("bilstm_activity", model, prune=0.8)  # doctest: +SKIP
    >>> report["keras_sparsity"] >= 0.79  # doctest: +SKIP
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from export.compression.recipes import resolve_spec, schedule_of, stage_recipe, training_data
from export.conversion.tflite import MIN_WEIGHT_ELEMENTS, sparsity_of
from zoo._keras import keras
from zoo.errors import UnsupportedError
from zoo.layers import LuongAttention

SCHEDULES = ("polynomial", "constant")


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _rnn_kernels(rnn) -> list:
    cell = rnn.cell
    return [cell.kernel, cell.recurrent_kernel]


# Refused layer class -> the weights an adapter offers for pruning / clustering.
PRUNE_ADAPTERS: dict[type, Callable[[Any], list]] = {
    keras.layers.Bidirectional: lambda layer: [
        w for rnn in (layer.forward_layer, layer.backward_layer) for w in _rnn_kernels(rnn)],
    keras.layers.TimeDistributed: lambda layer: [layer.layer.kernel],
    keras.layers.ConvLSTM2D: _rnn_kernels,
    LuongAttention: lambda layer: [layer.kernel],
}
CLUSTER_ADAPTERS: dict[type, Callable[[Any], list]] = {
    LuongAttention: lambda layer: [("kernel", layer.kernel)],
}
# Layers neither tfmot nor an adapter can cluster, and why.
CLUSTER_GAPS = {
    keras.layers.ConvLSTM2D: "tfmot's RNN clustering wrapper only knows LSTM/GRU/SimpleRNN "
                             "cells, not ConvLSTM2DCell",
    keras.layers.TimeDistributed: "tfmot clustering swaps weights by attribute on the wrapped "
                                  "layer, and TimeDistributed holds them on its inner layer",
}


def _adapter(layer, technique: str):
    """The adapter instance for a refused layer, or ``None`` if tfmot takes it as is."""
    tfmot = _tfmot()
    table = PRUNE_ADAPTERS if technique == "prune" else CLUSTER_ADAPTERS
    base = next((cls for cls in table if type(layer) is cls), None)
    if base is None:
        return None
    weights_of = table[base]
    if technique == "prune":
        mixin, method = tfmot.sparsity.keras.PrunableLayer, "get_prunable_weights"
    else:
        mixin, method = tfmot.clustering.keras.ClusterableLayer, "get_clusterable_weights"
    cls = type(f"{'Prunable' if technique == 'prune' else 'Clusterable'}{base.__name__}",
               (base, mixin), {method: lambda self: weights_of(self)})
    return cls.from_config(layer.get_config())


def _supported(layer, technique: str) -> bool:
    if technique == "prune":
        from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import (
            PruneRegistry,
        )

        return PruneRegistry.supports(layer)
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (
        ClusteringRegistry,
    )

    return ClusteringRegistry.supports(layer)


def wrap(model, technique: str, wrap_layer: Callable[[Any], Any]):
    """Clones ``model``; each layer with trainable weights is adapted if tfmot refuses it
    and passed to ``wrap_layer``. Returns ``(clone, {layer name: wrapped layer})``.

    Raises:
        UnsupportedError: a layer with weights that neither tfmot nor an adapter takes.
    """
    gaps = CLUSTER_GAPS if technique == "cluster" else {}
    adapters = PRUNE_ADAPTERS if technique == "prune" else CLUSTER_ADAPTERS

    def adapt(layer):
        if not layer.trainable_weights:
            return layer.__class__.from_config(layer.get_config())
        if type(layer) in gaps:
            raise UnsupportedError(f"cannot {technique} layer {layer.name!r} "
                                   f"({type(layer).__name__}): {gaps[type(layer)]}")
        adapted = _adapter(layer, technique)
        if adapted is None:
            adapted = layer.__class__.from_config(layer.get_config())
            if not _supported(adapted, technique):
                raise UnsupportedError(
                    f"cannot {technique} layer {layer.name!r} ({type(layer).__name__}): tfmot "
                    "does not support it and lstm-zoo has no adapter for it (adapters: "
                    f"{sorted(c.__name__ for c in adapters)})")
        return adapted

    # Two clones: the first swaps in adapters (same config, so the same variables in the
    # same order: the weights copy over as one list); the second wraps those very layer
    # objects, as tfmot does, so the wrappers start from the trained weights.
    adapted = keras.models.clone_model(model, clone_function=adapt)
    adapted.set_weights(model.get_weights())
    wrapped: dict[str, Any] = {}

    def add(layer):
        if not layer.trainable_weights:
            return layer
        wrapped[layer.name] = wrap_layer(layer)
        return wrapped[layer.name]

    return keras.models.clone_model(adapted, clone_function=add), wrapped


def unwrap_into(fresh, wrapped: dict, model_clone) -> None:
    """Copies the (pruned / clustered) weights of ``model_clone`` into ``fresh``, a model
    with the original architecture."""
    by_wrapper = {id(w): w.layer for w in wrapped.values()}
    for layer in model_clone.layers:
        inner = by_wrapper.get(id(layer), layer)
        if inner.weights:
            fresh.get_layer(inner.name).set_weights(inner.get_weights())


def _kernels(model) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights
            if w.shape.rank >= 2 and np.prod(w.shape) >= MIN_WEIGHT_ELEMENTS]


def keras_sparsity(model) -> float:
    """Fraction of zeros among the kernels (rank >= 2, >= 16 elements) of a Keras model."""
    return sparsity_of([(k, 0) for k in _kernels(model)])["sparsity"]


def check_args(prune, cluster, schedule: str, structured=None, qat: bool = False
               ) -> tuple[float | None, int | None, float | None]:
    """Validated ``(sparsity, cluster count, structured fraction)``.

    Raises:
        UnsupportedError: none given, sparsity outside [0, 1), fewer than 2 clusters,
            a structured fraction outside (0, 1), an unknown schedule, or QAT with
            clustering.
    """
    from export.compression.structured import check_fraction

    if prune is None and cluster is None and structured is None and not qat:
        raise UnsupportedError("compression needs prune=SPARSITY, structured=FRACTION, "
                               "cluster=COUNT and/or qat=True")
    if qat and cluster is not None:
        raise UnsupportedError(
            "qat cannot follow cluster: training through int8 fake-quantization moves every "
            "weight off its cluster centroid (tfmot's cluster-preserving QAT only knows its "
            "built-in layers); use cluster or qat")
    if structured is not None:
        structured = check_fraction(structured)
    if prune is not None:
        prune = float(prune)
        if not 0 <= prune < 1:
            raise UnsupportedError(f"sparsity must be in [0, 1) (the fraction of weights set "
                                   f"to zero); got {prune}")
    if cluster is not None:
        if isinstance(cluster, bool) or int(cluster) != cluster or cluster < 2:
            raise UnsupportedError(f"cluster count must be an integer >= 2; got {cluster!r}")
        cluster = int(cluster)
    if schedule not in SCHEDULES:
        raise UnsupportedError(f"unknown pruning schedule {schedule!r}; expected one of "
                               f"{list(SCHEDULES)}")
    return prune, cluster, structured


def compress(name, model, *, prune: float | None = None,
             schedule: str = "polynomial", cluster: int | None = None,
             structured: float | None = None, qat: bool = False, config: dict | None = None,
             epochs: int | None = None, limit: int | None = None,
             data=None, verbose: int = 0) -> tuple[Any, dict]:
    """Shrinks, prunes, clusters and/or QAT-trains ``model`` while fine-tuning it on its
    own training data (in that order).

    Args:
        name: the registered model name, or a spec (its task trains, its recipe gives each
            stage's epochs and learning rate: :func:`stage_recipe`).
        model: the trained Keras model (left untouched).
        structured: fraction of the hidden units of every recurrent layer to remove
            (:mod:`export.compression.structured`), then fine-tune the smaller model; needs
            ``config``, the builder config ``model`` was built with. The report's
            ``structured.overrides`` build the smaller architecture.
        prune: target sparsity in [0, 1) (fraction of each kernel set to zero).
        schedule: "polynomial" (sparsity ramps up from 0 over the first 70 % of the
            fine-tuning steps) or "constant" (target sparsity from the first step).
        cluster: number of weight clusters per kernel (>= 2), applied after pruning;
            clustering keeps zeros at zero (sparsity-preserving).
        qat: last, fine-tune with int8 fake-quantized weights (:mod:`export.compression.qat`),
            keeping pruned zeros at zero; the weights come back snapped to int8.
        epochs / limit: override the fine-tuning epochs / training samples (tests).
        data: the training data (default: the spec's training split; a user model's spec
            has none, so its data comes here).

    Returns:
        ``(compressed model with the original architecture, report)``.

    Raises:
        UnsupportedError: bad sparsity, cluster count or schedule, or a layer that
            cannot be compressed (with the reason).
    """
    from zoo.tasks import get_task
    from zoo.train import seed_everything

    spec = resolve_spec(name)
    fit = get_task(spec.task).fit
    prune, cluster, structured = check_args(prune, cluster, schedule, structured, qat)
    recipe = stage_recipe(spec, "prune", epochs, limit)
    seed_everything(recipe.get("seed", 0))  # the same pruned weights on every run
    data = training_data(spec, data)
    report: dict[str, Any] = {"fine_tune_data": f"{spec.data.dataset} {spec.data.train} split"
                              if spec.data.train else f"{spec.data.dataset}"}
    current = model
    start = time.time()
    if structured is not None:
        from export.compression.structured import shrink

        if config is None and spec.family != "user":  # a user model's is its own
            raise UnsupportedError("structured pruning needs the builder config the model "
                                   "was built with (config=)")
        current, _, report["structured"] = shrink(spec, current, structured, config)
        # A smaller architecture has more to relearn than a masked one: the recipe may
        # give it its own schedule (finetune.structured).
        shrunk = stage_recipe(spec, "structured", epochs, limit)
        report["structured"]["fine_tune"] = schedule_of(shrunk)
        fit(current, data, shrunk, spec, verbose, adapt=False)
    if prune is not None:
        current, report["prune"] = _prune_stage(spec, fit, current, data, recipe, prune,
                                                schedule, verbose)
    if cluster is not None:
        clustering = stage_recipe(spec, "cluster", epochs, limit)
        current, report["cluster"] = _cluster_stage(spec, fit, current, data, clustering,
                                                    cluster, prune is not None, verbose)
    if qat:
        from export.compression.qat import quantize_aware

        current, report["qat"] = quantize_aware(spec, current, epochs=epochs, limit=limit,
                                                keep_zeros=prune is not None, data=data,
                                                verbose=verbose)
    report["seconds"] = round(time.time() - start, 1)
    report["keras_sparsity"] = keras_sparsity(current)
    report["unique_values_per_kernel"] = _max_unique(current)
    return current, report


def _prune_stage(spec, fit, model, data, recipe, sparsity: float, schedule: str, verbose):
    """Magnitude pruning to ``sparsity`` while fine-tuning with ``fit`` (the task's); the
    last step's masks applied to the weights of a model of the original architecture."""
    tfmot = _tfmot()
    steps = _steps_per_epoch(spec, data, recipe) * recipe["epochs"]
    if schedule == "polynomial":
        sched = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
            end_step=max(1, int(0.7 * steps)), frequency=max(1, steps // 20))
    else:
        sched = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    clone, wrapped = wrap(model, "prune", lambda layer: tfmot.sparsity.keras
                          .prune_low_magnitude(layer, pruning_schedule=sched))
    fit(clone, data, recipe, spec, verbose, adapt=False,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    for w in wrapped.values():  # the last step's masks, applied to the weights
        for weight, mask, _ in w.pruning_vars:
            weight.assign(weight * mask)
    return _rebuilt(spec, model, wrapped, clone), {
        "target": sparsity, "schedule": schedule, "steps": steps, "layers": sorted(wrapped),
        "fine_tune": schedule_of(recipe)}


def _cluster_stage(spec, fit, model, data, recipe, clusters: int, keep_zeros: bool,
                   verbose):
    """Weight clustering (k-means++ centroids; zeros kept at zero after pruning) while
    fine-tuning with ``fit``, at half the recipe's rate unless the recipe sets the stage's
    own."""
    tfmot = _tfmot()
    clone, wrapped = wrap(model, "cluster", lambda layer: tfmot.clustering.keras
                          .cluster_weights(layer, number_of_clusters=clusters,
                                           cluster_centroids_init=tfmot.clustering.keras
                                           .CentroidInitialization.KMEANS_PLUS_PLUS,
                                           preserve_sparsity=keep_zeros))
    if "learning_rate" not in (spec.recipe or {}).get("finetune", {}).get("cluster", {}):
        recipe = {**recipe, "learning_rate": recipe["learning_rate"] / 2}  # centroids move
    fit(clone, data, recipe, spec, verbose, adapt=False)
    stripped = tfmot.clustering.keras.strip_clustering(clone)
    return _copy_by_name(spec, model, stripped), {
        "clusters": clusters, "layers": sorted(wrapped), "fine_tune": schedule_of(recipe)}


def _steps_per_epoch(spec, data, recipe) -> int:
    import math

    from zoo.tasks import get_task

    n = get_task(spec.task).split_size(data)
    n = min(n, recipe.get("limit") or n)
    return max(1, math.ceil(n / recipe["batch_size"]))


def _rebuilt(spec, original, wrapped, clone):
    fresh = keras.models.clone_model(original)
    unwrap_into(fresh, wrapped, clone)
    return fresh


def _copy_by_name(spec, original, stripped):
    fresh = keras.models.clone_model(original)
    for layer in stripped.layers:
        if layer.weights:
            fresh.get_layer(layer.name).set_weights(layer.get_weights())
    return fresh


def _max_unique(model) -> int:
    return max((len(np.unique(k)) for k in _kernels(model)), default=0)
