"""What an export is asked to do, validated once: :class:`ExportConfig`.

The CLI builds one from its flags; :func:`export.export_model` and
:func:`export.export_keras` take one (or the same names as keywords). Checks that need
no model run when the config is made; :meth:`ExportConfig.for_spec` checks it against a
model's supported formats and precisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from export.compression.quantize import PRECISIONS, check_precisions
from zoo.errors import UnsupportedError

FORMATS = ("tflite", "onnx")
AUTO = "auto"
# What an export produces when no precision is asked for: exact and cheap to verify.
DEFAULT_PRECISIONS = ("fp32", "dynamic")
# The drop `--precision auto` accepts when none is given: half a point of the metric.
DEFAULT_MAX_DROP = 0.005
SCHEDULES = ("polynomial", "constant")


def parse_choices(value: str | Sequence[str], valid: Sequence[str], what: str) -> tuple[str, ...]:
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    items = [v for v in items if v]
    bad = [v for v in items if v not in valid]
    if bad or not items:
        raise UnsupportedError(f"unknown {what} {bad or items}; expected a comma-separated "
                               f"subset of {list(valid)}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class ExportConfig:
    """The options of one export (every field optional).

    Attributes:
        formats: subset of ``("tflite", "onnx")`` (None: all the model supports).
        precisions: subset of :data:`export.compression.quantize.PRECISIONS` (None: fp32
            and dynamic, those the model supports), or ``"auto"``: per format, the smallest artifact
            whose task metric drops by at most ``max_drop``.
        max_drop: metric budget of ``"auto"`` in the metric's units (0.005 = half a point
            of accuracy; default :data:`DEFAULT_MAX_DROP`).
        calibration: task inputs to calibrate int8 / int16x8 on (at least 16).
        prune / schedule / cluster / structured / qat: compression before converting
            (:mod:`export.compression.prune`, :mod:`export.compression.structured`,
            :mod:`export.compression.qat`).
        finetune_epochs / finetune_limit: the fine-tuning the compression does.
        limit: verify on at most this many test samples (tests; default all).

    Raises:
        UnsupportedError: an unknown format or precision, ``"auto"`` mixed with others, a
            ``max_drop`` out of [0, 1) or without ``"auto"``, compression arguments out
            of range.

    Example:
        >>> from export.config import ExportConfig
        >>> ExportConfig(formats="onnx", precisions="fp32,dynamic").precisions
        ('fp32', 'dynamic')
        >>> ExportConfig(precisions="auto").max_drop
        0.005
    """

    formats: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    max_drop: float | None = None
    calibration: Sequence | None = None
    prune: float | None = None
    schedule: str = "polynomial"
    cluster: int | None = None
    structured: float | None = None
    qat: bool = False
    finetune_epochs: int | None = None
    finetune_limit: int | None = None
    limit: int | None = None

    def __post_init__(self):
        put = object.__setattr__  # frozen: normalise once, here
        if self.formats is not None:
            put(self, "formats", parse_choices(self.formats, FORMATS, "format(s)"))
        if self.precisions is not None:
            put(self, "precisions", parse_choices(self.precisions, (*PRECISIONS, AUTO),
                                                  "precision(s)"))
            if AUTO in self.precisions and len(self.precisions) > 1:
                raise UnsupportedError("'auto' chooses the precision itself; it cannot be "
                                       f"combined with others (got {list(self.precisions)})")
        if self.auto:
            max_drop = DEFAULT_MAX_DROP if self.max_drop is None else float(self.max_drop)
            if not 0 <= max_drop < 1:
                raise UnsupportedError(f"max_drop must be in [0, 1) (metric units, 0.005 = "
                                       f"half a point); got {max_drop}")
            put(self, "max_drop", max_drop)
        elif self.max_drop is not None:
            raise UnsupportedError("max_drop applies to precisions='auto' only; got "
                                   f"precisions={self.precisions!r}")
        if self.compressing:
            from export.compression.prune import check_args

            prune, cluster, structured = check_args(self.prune, self.cluster, self.schedule,
                                                    self.structured, self.qat)
            put(self, "prune", prune)
            put(self, "cluster", cluster)
            put(self, "structured", structured)
        if self.limit is not None and int(self.limit) < 1:
            raise UnsupportedError(f"limit must be a positive number of samples; got "
                                   f"{self.limit}")

    @classmethod
    def of(cls, config: ExportConfig | None = None, **options: Any) -> ExportConfig:
        """``config`` with ``options`` applied (keywords as the API's callers pass them).

        Raises:
            TypeError: an option that is not a field (names the valid ones).
        """
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise TypeError(f"unknown export option(s) {unknown}; valid options are {valid}")
        return cls(**options) if config is None else replace(config, **options)

    @property
    def auto(self) -> bool:
        return self.precisions == (AUTO,)

    @property
    def compressing(self) -> bool:
        return (self.prune is not None or self.cluster is not None
                or self.structured is not None or self.qat)

    def for_spec(self, spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The formats and precisions to produce for ``spec``'s model.

        Raises:
            UnsupportedError: a format or precision the model (or a format) cannot take,
                or ``qat`` without int8.
        """
        fmts = spec.formats if self.formats is None else self.formats
        if set(fmts) - set(spec.formats):
            raise UnsupportedError(f"{spec.name} does not support format "
                                   f"{sorted(set(fmts) - set(spec.formats))}; it supports "
                                   f"{list(spec.formats)}")
        if self.auto:
            precs = tuple(spec.precisions)
        else:
            precs = self.precisions or tuple(p for p in DEFAULT_PRECISIONS
                                             if p in spec.precisions)
            check_precisions(spec, fmts, precs)
        if self.qat and "int8" not in precs:
            gap = spec.precision_gaps.get("int8")
            raise UnsupportedError(
                "qat trains the weights for int8 artifacts; " + (
                    f"{spec.name} cannot take int8: {gap}" if "int8" not in spec.precisions
                    else f"request precision int8 (or auto); got {list(precs)}"))
        return tuple(fmts), tuple(precs)
