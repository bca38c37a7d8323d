"""BasicMotions (UEA archive): smartwatch accelerometer + gyroscope, 4 activities; the
archive's official split, 40 series to train and 40 to test.

80 series (40 TRAIN, 40 TEST, the official split) x 100 steps (10 s at 10 Hz) x 6
channels. The ``.ts`` file ships in sktime (``pip install 'lstm-zoo[basicmotions]'``);
it is parsed here directly, which is faster than importing sktime.
License: UEA & UCR time series archive, research use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from zoo.constants import BASICMOTIONS_CHANNELS as CHANNELS  # noqa: F401  (the data's channels)
from zoo.datasets.catalog import package_file, register_dataset
from zoo.errors import DataError

LICENSE = "UEA & UCR time series classification archive: research use"
SPLITS = {"train": "TRAIN", "test": "TEST"}


@dataclass(frozen=True)
class SequenceData:
    """Labelled multivariate sequences: ``x`` (N, T, C) float32, ``y`` (N,) int64."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]


def parse_ts(text: str, *, ragged: bool = False
             ) -> tuple[np.ndarray | list[np.ndarray], list[str], tuple[str, ...]]:
    """Parses a multivariate ``.ts`` file: (N, T, C) values, labels, classes.

    With ``ragged``, series may differ in length and the values are a list of (T_i, C)
    arrays; otherwise unequal series raise :class:`DataError`."""
    classes: tuple[str, ...] = ()
    rows: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                parts = line.split()
                classes = tuple(parts[2:]) if parts[1].lower() == "true" else ()
            elif low == "@data":
                in_data = True
            continue
        *dims, label = line.split(":")
        try:
            rows.append(np.array([[float(v) for v in d.split(",")] for d in dims]))
        except ValueError as e:
            raise DataError(f"line {lineno}: cannot parse values ({e})") from None
        labels.append(label)
    if not rows:
        raise DataError("no @data rows found")
    if ragged:
        return [r.T.astype(np.float32) for r in rows], labels, classes
    if len({r.shape for r in rows}) != 1:
        raise DataError(f"series of unequal shape: {sorted({r.shape for r in rows})}")
    return np.stack(rows).transpose(0, 2, 1).astype(np.float32), labels, classes


@register_dataset("basicmotions", license=LICENSE, extra="basicmotions")
@cache
def load(split: str) -> SequenceData:
    """Loads the official ``"train"`` or ``"test"`` split.

    Example:
        >>> from zoo.datasets import basicmotions
        >>> basicmotions.load("test").x.shape
        (40, 100, 6)
    """
    if split not in SPLITS:
        raise DataError(f"BasicMotions has splits {sorted(SPLITS)}; got {split!r}")
    path = package_file(
        "sktime", f"datasets/data/BasicMotions/BasicMotions_{SPLITS[split]}.ts", "basicmotions"
    )
    x, labels, classes = parse_ts(path.read_text())
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return SequenceData(x=x, y=y, classes=classes)
