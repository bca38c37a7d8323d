"""Loaders for the real offline data the pretrained weights were trained on.

Each dataset is shipped inside a package (docs/data.md); the loaders find the file
inside the installed package and parse it, so nothing is downloaded. When the package is
missing, :class:`~zoo.errors.MissingExtraError` names the extra to install. Each loader
registers itself by name (:func:`register_dataset`, :mod:`zoo.datasets.catalog`);
importing this package registers them all.
"""

from zoo.datasets import (  # noqa: F401  (each registers its datasets on import)
    basicmotions,
    chorales,
    cmudict,
    digit_strings,
    ecg,
    hershey_strokes,
    mnist_rows,
    moving_mnist,
    peptides,
    reviews,
    series,
    shakespeare,
    spoken_digits,
    ucr_anomaly,
)
from zoo.datasets.catalog import (
    Dataset,
    Fetch,
    fetches,
    first,
    get_dataset,
    list_datasets,
    load,
    package_file,
    register_dataset,
    register_dataset_prefix,
)

__all__ = ["Dataset", "Fetch", "fetches", "first", "get_dataset", "list_datasets", "load",
           "package_file", "register_dataset", "register_dataset_prefix"]
