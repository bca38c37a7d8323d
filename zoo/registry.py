"""Model registry: builders plus the data that export and verification need.

A family registers each model name with :func:`register_model`. The spec it gives is
data, not code paths in the pipeline: which graphs to export (and how to derive them
from the trained model), the task that turns graph outputs into predictions and a
metric, where calibration and test data come from, and the tolerances with reasons.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import ArgumentError, UnknownModelError
from zoo.specs import (  # noqa: F401  (a spec's names, where families and users import them)
    FUSED_LSTM_GAPS,
    FUSED_LSTM_PRECISIONS,
    RECURRENT_FORMS,
    DataSpec,
    GraphSpec,
    ModelSpec,
    Tolerance,
    fewer_units,
    fused_lstm,
    jsonable_config,
    loose_drops,
    shrink_units,
)

_REGISTRY: dict[str, ModelSpec] = {}
_RESOLVERS: list[Callable[[str], ModelSpec | None]] = []
_FAMILY_LOADERS: list[Callable[[], None]] = []


def register_model(spec: ModelSpec) -> ModelSpec:
    """Adds ``spec`` to the registry under ``spec.name``.

    Builders must be keyword-only so a misspelled argument fails instead of being
    silently ignored.
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    params = inspect.signature(spec.builder).parameters.values()
    positional = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    if positional:
        raise TypeError(f"builder of {spec.name!r} must be keyword-only; got {positional}")
    # without a limit, verification would pass a precision whatever it measured
    unbounded = [p for p in spec.precisions if p not in spec.metric_drop]
    if unbounded:
        raise ValueError(f"{spec.name!r} offers precisions {unbounded} with no metric_drop "
                         "limit; give each precision it supports a Tolerance")
    _REGISTRY[spec.name] = spec
    return spec


def register_family_loader(load: Callable[[], None]) -> None:
    """Adds ``load``, called before every lookup, which imports the modules that register
    models (``import zoo`` adds the import of :mod:`zoo.models`, so a family is imported
    on the first lookup and the registry never imports the families that import it)."""
    _FAMILY_LOADERS.append(load)


def tiny_variant(spec: ModelSpec, **changes: Any) -> ModelSpec:
    """Registers the tiny variant of ``spec`` that the default test run uses (STYLE.md):
    ``<name>_tiny``, "Tiny variant of <name> for tests.", no shipped weights, with
    ``changes`` (``defaults``, ``recipe``, ``metric_drop``, ... or another ``name``) applied
    as :func:`dataclasses.replace` applies them.

    Example:
        >>> from zoo import get_spec
        >>> spec = get_spec("char_lm_tiny")
        >>> spec.tiny, spec.weights, spec.description
        (True, (), 'Tiny variant of char_lm for tests.')
    """
    from dataclasses import replace

    return register_model(replace(spec, **{
        "name": f"{spec.name}_tiny", "description": f"Tiny variant of {spec.name} for tests.",
        "weights": (), "tiny": True, **changes}))


def _load_families() -> None:
    for load in _FAMILY_LOADERS:
        load()


def list_models(pattern: str = "*", *, pretrained: bool | None = None) -> list[str]:
    """Registered model names matching a glob ``pattern``.

    Example:
        >>> from zoo import list_models
        >>> "bilstm_activity" in list_models("bilstm*")
        True
    """
    _load_families()
    names = sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))
    if pretrained is not None:
        names = [n for n in names if bool(_REGISTRY[n].weights) == pretrained]
    return names


def register_spec_resolver(resolve: Callable[[str], ModelSpec | None]) -> None:
    """Adds ``resolve``, which :func:`get_spec` asks for a name that is not registered: it
    returns a spec (a fine-tuned model directory's, :mod:`zoo.model_dir`) or ``None``.
    Resolvers are registered by the modules that know the names, so the registry never
    imports them."""
    _RESOLVERS.append(resolve)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``.

    Raises:
        UnknownModelError: ``name`` is not registered (the message lists close names).

    ``name`` may also be a fine-tuned model directory (:mod:`zoo.model_dir`).
    """
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        for resolve in _RESOLVERS:
            spec = resolve(name)
            if spec is not None:
                return spec
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (registered: {sorted(_REGISTRY)})"
        ) from None


def create_model(name: str, weights: str | Path | None = None, **overrides: Any):
    """Builds a registered model, optionally loading weights.

    Args:
        name: a registered model name (see :func:`list_models`).
        weights: ``None`` for random initialisation, ``"DEFAULT"`` for the model's
            shipped pretrained weights, a weights tag such as ``"basicmotions"``, or a
            path to a ``.weights.h5`` file (its ``.json`` metadata, if beside it, must match
            its sha256).
        **overrides: builder keyword arguments.

    Returns:
        A functional tf_keras model with named inputs and outputs.

    Raises:
        UnknownModelError, ArgumentError (an unknown override, or one the builder's
        declaration refuses; ``weights`` neither None, a str nor a path), WeightsError.

    Example:
        >>> from zoo import create_model
        >>> model = create_model("bilstm_activity_tiny")
        >>> model.output_names
        ['probs']
    """
    return build_model(name, weights, **overrides)[0]


def build_model(name: str, weights: str | Path | None = None, **overrides: Any):
    """:func:`create_model`, also returning the builder config the model was built with
    (the weights' recorded config with ``overrides`` applied)."""
    from zoo import weights as weights_mod

    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ArgumentError(f"weights must be None, 'DEFAULT', a weights tag or a path; got "
                            f"{weights!r} ({type(weights).__name__})")
    spec = get_spec(name)
    config = spec.config(**overrides)  # bad overrides fail before any file is read
    if weights is None:
        return spec.builder(**config), config
    record = weights_mod.resolve(spec, weights)
    config = spec.config(**{**record.config, **overrides})
    model = spec.builder(**config)
    weights_mod.load_into(model, record)
    return model, config
