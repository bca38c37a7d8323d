"""UCI optical digits (scikit-learn's ``load_digits``), scaled to MNIST's frame.

1,797 8x8 images (pixel counts 0-16 over 4x4 blocks) of digits written by 43 people
other than MNIST's writers (Alpaydin & Kaynak, UCI). :func:`to_mnist_frame` turns each
into a 28x28 image of 0-255 values laid out as MNIST's are (the digit in the central
20x20, a 4-pixel empty border), so a model trained on MNIST rows reads them directly.
The file ships inside scikit-learn (``pip install 'lstm-zoo[digits]'``) and is parsed
here without importing it. Used as a real, different-writers target for transfer
learning (``benchmarks/transfer.py``). License: UCI, CC BY 4.0.
"""

from __future__ import annotations

import gzip
from functools import cache

import numpy as np

from zoo.datasets.basicmotions import SequenceData
from zoo.errors import DataError

LICENSE = "UCI Machine Learning Repository (Alpaydin, Kaynak 1998): CC BY 4.0"
CLASSES = tuple(str(d) for d in range(10))


@cache
def load() -> SequenceData:
    """All 1,797 images as ``x`` (N, 28, 28) float32 in 0-255 (MNIST's frame), ``y`` digits.

    Example:
        >>> from zoo.datasets import optdigits
        >>> optdigits.load().x.shape
        (1797, 28, 28)
    """
    from zoo.datasets.catalog import package_file

    path = package_file("sklearn", "datasets/data/digits.csv.gz", "digits")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 65:
        raise DataError(f"{path}: expected rows of 64 pixels + label, got {table.shape}")
    x = to_mnist_frame(table[:, :-1].reshape(-1, 8, 8))
    y = table[:, -1].astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return SequenceData(x=x, y=y, classes=CLASSES)


def to_mnist_frame(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) counts 0-16 -> (N, 28, 28) values 0-255: bilinear resize to 20x20 (pixel
    centres aligned), 4 empty pixels on every side."""
    src = (np.arange(8) + 0.5) / 8
    dst = (np.arange(20) + 0.5) / 20
    rows = np.stack([np.stack([np.interp(dst, src, img[:, c]) for c in range(8)], -1)
                     for img in images])
    full = np.stack([np.stack([np.interp(dst, src, img[r]) for r in range(20)])
                     for img in rows])
    out = np.zeros((len(images), 28, 28), np.float32)
    out[:, 4:24, 4:24] = full * (255.0 / 16.0)
    return out
