"""Builder arguments checked against what the builder declares, before anything is built.

A builder's annotations give each argument's type (``int``, ``float``, ``bool``, ``str``, a
``Literal`` of choices, ``Sequence[int]``: one value per layer, ``X | None``); :data:`RANGES`
gives the range of an argument by its name, the same in every family, and every other
integer is a size or a count (at least 1). A family declares nothing else: an override
that breaks a rule between arguments (``window`` a multiple of ``patch``) is the
builder's own check.

Example:
    >>> from zoo import create_model
    >>> from zoo.errors import ArgumentError
    >>> try:
    ...     create_model("bilstm_activity_tiny", units=64)
    ... except ArgumentError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    bilstm_activity_tiny: units must be a non-empty sequence of ints >= 1, ...; got 64
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from types import NoneType, UnionType
from typing import Any

from zoo.errors import ArgumentError


@dataclass(frozen=True)
class Range:
    """``low <= value`` (and ``value < high`` when given), with why when it is not obvious."""

    low: float
    high: float | None = None
    why: str = ""

    def holds(self, value) -> bool:
        return self.low <= value and (self.high is None or value < self.high)

    def __str__(self) -> str:
        bound = f">= {self.low:g}" if self.high is None else f"in [{self.low:g}, {self.high:g})"
        return bound + (f" ({self.why})" if self.why else "")


# Ranges by argument name, in every family; any other int (or int of a sequence) is a size
# or a count: at least 1.
RANGES: Mapping[str, Range] = {
    "num_classes": Range(2, why="one class is nothing to classify"),
    "dropout": Range(0.0, 1.0, why="a rate; 1 would drop every value"),
}
COUNT = Range(1)


def check_overrides(model: str, builder: Callable[..., Any], config: Mapping[str, Any],
                    names) -> None:
    """Checks ``config[name]`` for each of ``names`` against ``builder``'s annotation and
    :data:`RANGES`; an :class:`~zoo.errors.ArgumentError` names the model, the argument,
    what it takes and what it got."""
    hints = typing.get_type_hints(builder)
    for name in names:
        if name in hints:
            problem = _problem(hints[name], name, config[name])
            if problem:
                raise ArgumentError(f"{model}: {name} must be {problem}; got {config[name]!r}"
                                    + _kind(config[name]))


def check_count(value, name: str, what: str) -> int:
    """``value`` if it is an int >= 1 (``what`` it counts, for the message), else an
    :class:`~zoo.errors.ArgumentError`.

    Example:
        >>> check_count(5, "limit", "test samples")
        5
    """
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ArgumentError(f"{name} must be a positive number of {what} (an int >= 1); got "
                        f"{value!r}" + _kind(value))


def _kind(value) -> str:
    plain = isinstance(value, (int, float, str, list, tuple, NoneType))  # its repr says it
    return "" if plain else f" ({type(value).__name__})"


def _problem(hint, name: str, value) -> str | None:
    """What ``value`` should have been, or None when it is fine."""
    if typing.get_origin(hint) in (typing.Union, UnionType):
        options = [h for h in typing.get_args(hint) if h is not NoneType]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        problem = _problem(options[0], name, value) if len(options) == 1 else None
        return problem and f"{problem} or None"
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        return None if value in choices else f"one of {list(choices)}"
    if hint is bool:
        return None if isinstance(value, bool) else "True or False"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    rule = RANGES.get(name, COUNT)
    if hint is int:
        ok = isinstance(value, Integral) and not isinstance(value, bool) and rule.holds(value)
        return None if ok else f"an int {rule}"
    if hint is float:
        ok = (isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
              and rule.holds(value))
        return None if ok else f"a number {rule}"
    if hint is tuple or typing.get_origin(hint) in (tuple, Sequence):
        ok = (isinstance(value, (list, tuple)) and len(value) > 0
              and all(isinstance(v, Integral) and not isinstance(v, bool) and rule.holds(v)
                      for v in value))
        return None if ok else (f"a non-empty sequence of ints {rule}, one per layer "
                                "(e.g. (64,) or (64, 64))")
    return None  # an annotation this module does not read: the builder checks it
