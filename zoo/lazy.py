"""Package attributes imported on first use (a module ``__getattr__``, PEP 562): the
packages whose names pull in TensorFlow (``zoo.layers``, ``export``) stay cheap to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping


def lazy_attributes(package: str, table: Mapping[str, str]):
    """A module ``__getattr__`` for ``package``: each name of ``table`` is looked up in the
    module ``table[name]`` when first asked for.

    Example:
        >>> getattr_ = lazy_attributes("demo", {"sqrt": "math"})
        >>> getattr_("sqrt")(4.0)
        2.0
    """
    def __getattr__(name: str):
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
