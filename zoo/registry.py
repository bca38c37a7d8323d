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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.arguments import check_overrides
from zoo.datasets.catalog import get_dataset
from zoo.errors import ArgumentError, UnknownModelError


@dataclass(frozen=True)
class Tolerance:
    """A bound with the reason it is what it is.

    For tensors, ``value`` is an absolute bound; an output named in ``relative`` may
    also move by that fraction of its Keras value (``|got - ref| <= value + r * |ref|``,
    numpy's ``allclose`` rule), for outputs such as softmax probabilities whose error
    scales with the value.
    """

    value: float
    reason: str
    relative: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphSpec:
    """One graph of a bundle.

    Attributes:
        name: file stem of the exported artifacts (``encoder`` -> ``encoder.tflite``).
        inputs: input names, in signature order.
        outputs: output names.
        build: derives the export graph from the trained model (``None``: the model itself).
            Its inputs keep their time axis ``None`` where lengths vary; the batch axis is
            fixed to 1 for TFLite (a ``None`` batch does not convert for stacked or
            bidirectional LSTMs) and left dynamic for ONNX.
        recurrent: what the graph's recurrence must become: ``"fused"`` (every LSTM is a
            fused op, no loop), ``"step"`` (a single cell step: no loop, no recurrent op) or
            ``"unrolled"`` (a fixed number of steps written out: no loop, no recurrent op).
        fusion: per format, what a ``"fused"`` graph whose layers cannot all fuse must
            become instead: ``{"fused_directions": {kind: n}, "loops": bool,
            "loop_reason": str}`` (a user's model, from :mod:`export.user.inspect`); None: every
            recurrent direction fuses.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    build: Callable[[Any], Any] | None = None
    recurrent: str = "fused"
    fusion: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self):
        if self.recurrent not in RECURRENT_FORMS:
            raise ValueError(f"graph {self.name!r}: recurrent must be one of "
                             f"{list(RECURRENT_FORMS)}; got {self.recurrent!r}")


# What a graph's recurrence must become (GraphSpec.recurrent).
RECURRENT_FORMS = ("fused", "step", "unrolled")


@dataclass(frozen=True)
class DataSpec:
    """Where a model's real data comes from: a dataset named, not imported.

    Attributes:
        dataset: a registered dataset's name (:mod:`zoo.datasets.catalog`).
        train / test: split names passed to the loader.
        calibration: split used for calibration (never the test split).
        extra: the optional dependency group that installs the data package; ``""``: the
            data is not a Python package but fetched by ``lstm-zoo fetch-data``. ``None``
            (the default): the registered dataset's.
        license: data license, repeated in the model card; ``None``: the registered
            dataset's.

    Raises:
        DataError: ``extra`` or ``license`` is left to a dataset that is not registered.
    """

    dataset: str
    train: str = "train"
    test: str = "test"
    calibration: str = "train"
    extra: str | None = None
    license: str | None = None

    def __post_init__(self):
        if self.extra is None or self.license is None:
            registered = get_dataset(self.dataset)
            if self.extra is None:
                object.__setattr__(self, "extra", registered.extra)
            if self.license is None:
                object.__setattr__(self, "license", registered.license)


@dataclass(frozen=True)
class ModelSpec:
    """Everything lstm-zoo knows about one registered model name."""

    name: str
    builder: Callable[..., Any]
    family: str
    task: str
    graphs: tuple[GraphSpec, ...]
    data: DataSpec
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    weights: tuple[str, ...] = ()
    # Tensor tolerance per precision (max abs diff vs Keras on every output).
    tensor_tolerance: Mapping[str, Tolerance] = field(default_factory=dict)
    # Allowed drop of the task's primary metric per precision.
    metric_drop: Mapping[str, Tolerance] = field(default_factory=dict)
    # Per-model data the task needs (class names, vocabularies), copied into bundles.
    meta: Mapping[str, Any] = field(default_factory=dict)
    # Training recipe (see zoo.train); None for tiny variants.
    recipe: Mapping[str, Any] | None = None
    tiny: bool = False
    # Model card text that is not measured.
    intended_use: str = ""
    limitations: tuple[str, ...] = ()
    # Formats and precisions this model's layers support (the parity matrix tests each).
    formats: tuple[str, ...] = ("tflite", "onnx")
    precisions: tuple[str, ...] = ("fp32", "dynamic")
    # Precisions the layers cannot take, each with the measured reason.
    precision_gaps: Mapping[str, str] = field(default_factory=dict)
    # (builder config, fraction of units removed) -> builder overrides of the smaller
    # architecture, for structured pruning (export.compression.structured); None: not supported.
    shrink: Callable[[Mapping[str, Any], float], dict[str, Any]] | None = None
    # A fine-tuned model directory (zoo.finetune): the registered model it derives from,
    # and the directory holding its weights.
    base: str | None = None
    weights_dir: str | None = None

    @property
    def default_weights(self) -> str | None:
        return self.weights[0] if self.weights else None

    def override_names(self) -> list[str]:
        return sorted(
            p.name
            for p in inspect.signature(self.builder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        )

    def config(self, **overrides: Any) -> dict[str, Any]:
        """Builder keyword arguments: the spec defaults with ``overrides`` applied.

        Raises:
            ArgumentError (a TypeError): an override the builder does not take (names the
                valid ones), or one of another type or outside its range
                (:mod:`zoo.arguments`).
        """
        valid = self.override_names()
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ArgumentError(
                f"{self.name}: unknown override(s) {unknown}; valid overrides are {valid}"
            )
        signature_defaults = {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        config = {**signature_defaults, **self.defaults, **overrides}
        check_overrides(self.name, self.builder, config, overrides)
        return config


def jsonable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Builder kwargs as JSON values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


# What a model whose recurrence is fused LSTM ops cannot take (measured, TF 2.21).
FUSED_LSTM_PRECISIONS = ("fp32", "dynamic", "float16", "int8")
FUSED_LSTM_GAPS = {
    "int16x8": "TFLite's 16x8 quantizer refuses the fused UNIDIRECTIONAL_SEQUENCE_LSTM op "
               "('Quantization to 16x8-bit not yet supported for op', TF 2.21); with a float "
               "fallback every LSTM stays float32 and the artifact is no smaller than fp32",
}

def loose_drops(drops: Mapping[str, Tolerance], bound: float, reason: str,
                precisions: tuple[str, ...] | None = None) -> dict[str, Tolerance]:
    """``drops`` with the metric drop of ``precisions`` (default: every one but fp32) set
    to ``bound``: for tiny variants, trained for seconds, whose tests check the mechanics
    (``reason`` says so) while the pretrained model's tests check the metric."""
    loose = [p for p in drops if p != "fp32"] if precisions is None else precisions
    return {**drops, **{p: Tolerance(bound, reason) for p in loose}}


def fewer_units(n: int, fraction: float) -> int:
    """Hidden units left when ``fraction`` of ``n`` are removed (at least one)."""
    return max(1, int(round(n * (1.0 - fraction))))


def shrink_units(config: Mapping[str, Any], fraction: float) -> dict[str, Any]:
    """``ModelSpec.shrink`` for builders whose ``units`` lists one size per recurrent layer."""
    return {"units": tuple(fewer_units(n, fraction) for n in config["units"])}


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
