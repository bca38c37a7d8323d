"""What a model is, as data: its graphs, its data, its tolerances with their reasons, and
its spec (:class:`ModelSpec`), which a family registers (:func:`zoo.registry.register_model`).

Nothing here imports TensorFlow, a family or a dataset loader: ``lstm-zoo list`` reads a
spec as the export pipeline does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zoo.arguments import check_overrides
from zoo.datasets.catalog import get_dataset
from zoo.errors import ArgumentError


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
    # The page of the checkout's docs/ that says more about the family ("speech.md"), which
    # docs/models.md links (export.cards); "": none. Tiny and other variants made with
    # dataclasses.replace keep their spec's.
    docs: str = ""
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


def fused_lstm(precisions: tuple[str, ...] = FUSED_LSTM_PRECISIONS,
               **gaps: str) -> dict[str, Any]:
    """The :class:`ModelSpec` fields of a family whose recurrence is Keras LSTMs exported
    as fused ops: its ``precisions`` (default :data:`FUSED_LSTM_PRECISIONS`), the fused
    op's gaps (:data:`FUSED_LSTM_GAPS`) plus the family's own measured ones (``gaps``, by
    precision), and structured pruning by units (:func:`shrink_units`).

    Example:
        >>> sorted(fused_lstm(("fp32", "dynamic"), int8="measured: ...")["precision_gaps"])
        ['int16x8', 'int8']
    """
    return {"precisions": tuple(precisions), "precision_gaps": {**FUSED_LSTM_GAPS, **gaps},
            "shrink": shrink_units}
