"""Model families. Importing this package registers every family: each module here is
imported in name order, so a new family is its module alone (no list to extend)."""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
