"""Loaders for the real offline data the pretrained weights were trained on.

Each dataset is shipped inside a package (docs/data.md); the loaders find the file
inside the installed package and parse it, so nothing is downloaded. When the package is
missing, :class:`~zoo.errors.MissingExtraError` names the extra to install. Each loader
registers itself by name (:func:`register_dataset`, :mod:`zoo.datasets.catalog`);
importing this package registers them all.
"""

import importlib as _importlib
import pkgutil as _pkgutil

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

# Every loader module registers its datasets on import, in name order: a new dataset is its
# module alone (no list to extend).
for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Dataset", "Fetch", "fetches", "first", "get_dataset", "list_datasets", "load",
           "package_file", "register_dataset", "register_dataset_prefix"]
