"""JapaneseVowels (UCI, via the UEA archive): 9 male speakers saying /ae/.

640 utterances (270 TRAIN: 30 per speaker; 370 TEST: 24-88 per speaker, the official
split) of 12 LPC cepstrum coefficients per frame, 7-29 frames long; the task is to name
the speaker. The ``.ts`` files ship in sktime (``pip install 'lstm-zoo[basicmotions]'``).
Used as a small real target task for transfer learning (``benchmarks/transfer.py``).
License: UCI Machine Learning Repository, CC BY 4.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from zoo.datasets.basicmotions import parse_ts
from zoo.errors import DataError

LICENSE = "UCI Machine Learning Repository (Kudo, Toyama, Shimbo 1999): CC BY 4.0"
CHANNELS = tuple(f"lpc_{i}" for i in range(1, 13))
SPLITS = {"train": "TRAIN", "test": "TEST"}


@dataclass(frozen=True)
class Utterances:
    """``x``: one (T_i, 12) float32 array per utterance; ``y`` (N,) int64 speaker index."""

    x: list[np.ndarray]
    y: np.ndarray
    classes: tuple[str, ...]


@cache
def load(split: str) -> Utterances:
    """Loads the official ``"train"`` or ``"test"`` split, at the recorded lengths.

    Example:
        >>> from zoo.datasets import japanese_vowels
        >>> data = japanese_vowels.load("train")
        >>> len(data.x), data.x[0].shape[1], len(data.classes)
        (270, 12, 9)
    """
    from zoo.datasets.catalog import package_file

    if split not in SPLITS:
        raise DataError(f"JapaneseVowels has splits {sorted(SPLITS)}; got {split!r}")
    path = package_file(
        "sktime", f"datasets/data/JapaneseVowels/JapaneseVowels_{SPLITS[split]}.ts",
        "basicmotions")
    x, labels, classes = parse_ts(path.read_text(), ragged=True)
    index = {c: i for i, c in enumerate(classes)}
    return Utterances(x=x, y=np.array([index[v] for v in labels], np.int64), classes=classes)


def resample(series: list[np.ndarray], length: int) -> np.ndarray:
    """Linear interpolation of each (T_i, C) series onto ``length`` evenly spaced frames:
    (N, length, C), the equal-length form that batch training takes."""
    out = np.empty((len(series), length, series[0].shape[1]), np.float32)
    grid = np.linspace(0.0, 1.0, length)
    for n, s in enumerate(series):
        src = np.linspace(0.0, 1.0, len(s))
        out[n] = np.stack([np.interp(grid, src, s[:, c]) for c in range(s.shape[1])], -1)
    return out
