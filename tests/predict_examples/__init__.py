"""What ``lstm-zoo predict`` (or ``generate``) must give with each shipped model's bundle,
run by tests/test_pretrained.py::test_cli_predicts_with_the_pretrained_bundle.

One module of this package per family registers its example with :func:`example`, by the
models' names or by a prefix of them; a model with none gets :func:`default` (a sequence
classifier's). Every module of the package is imported here, so a new family's example is
one new file and nothing else is edited. An example is ``(name, out, tmp_path, capsys) ->
None``: the model's name, its exported bundle, a fresh folder and pytest's ``capsys``; it
asserts. Its functions are not named ``test_*`` and its files not ``test_*.py``: pytest
does not collect them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo import datasets

Example = Callable[[str, Path, Path, pytest.CaptureFixture], None]


class Registry:
    """Examples by exact model name and by name prefix; :meth:`resolve` takes the exact
    name, else the longest matching prefix, else the default."""

    def __init__(self, default: Example):
        self.default = default
        self.names: dict[str, Example] = {}
        self.prefixes: dict[str, Example] = {}

    def example(self, *names: str, prefix: str | None = None) -> Callable[[Example], Example]:
        """Decorator: registers an example for ``names`` and/or the models whose names start
        with ``prefix``. A name or prefix registered twice raises ``ValueError`` (nothing
        of that registration is kept)."""
        if not names and prefix is None:
            raise ValueError("an example needs a model name or a prefix")

        def register(fn: Example) -> Example:
            taken = sorted({n for n in names if n in self.names or names.count(n) > 1})
            if prefix is not None and prefix in self.prefixes:
                taken.append(f"prefix {prefix}")
            if taken:
                raise ValueError(f"{fn.__module__}.{fn.__qualname__}: an example is "
                                 f"registered already for {', '.join(taken)}")
            self.names.update(dict.fromkeys(names, fn))
            if prefix is not None:
                self.prefixes[prefix] = fn
            return fn

        return register

    def resolve(self, name: str) -> Example:
        if name in self.names:
            return self.names[name]
        matching = [p for p in self.prefixes if name.startswith(p)]
        return self.prefixes[max(matching, key=len)] if matching else self.default


def default(name, out, tmp_path, capsys):
    """A sequence classifier: the first correctly classified test series of each class,
    saved as .npy, is predicted as its class through the CLI."""
    spec = zoo.get_spec(name)
    test = datasets.load(spec.data.dataset, spec.data.test)
    # the first correctly classified series of each class
    probs = zoo.create_model(name, weights="DEFAULT").predict(np.asarray(test.x), verbose=0)
    right = np.flatnonzero(probs.argmax(-1) == test.y)
    for i in [right[test.y[right] == c][0] for c in range(len(test.classes))]:
        path = tmp_path / f"s{i}.npy"
        np.save(path, test.x[i])
        assert main(["predict", str(out), "--input", str(path)]) == 0
        assert capsys.readouterr().out.split()[0] == test.classes[test.y[i]]


REGISTRY = Registry(default)
example = REGISTRY.example
resolve = REGISTRY.resolve


def check(name: str, out: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Runs model ``name``'s example on its bundle ``out``."""
    resolve(name)(name, out, tmp_path, capsys)


# every family's module registers its examples as it is imported
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
