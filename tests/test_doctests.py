"""The ``>>>`` examples in zoo/ and export/ docstrings run, and say what they print.

Examples marked ``# doctest: +SKIP`` (an export to a folder, a trained file) are shown,
not run; every other one is checked here, so an example that drifts from the code fails.
"""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    info.name for package in ("zoo", "export")
    for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")
) + ["zoo", "export"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_the_examples_are_found():
    """The walk finds the modules with examples (a harness that ran none would pass)."""
    attempted = {name: doctest.testmod(importlib.import_module(name), optionflags=FLAGS,
                                       report=False).attempted
                 for name in ("zoo", "zoo.tasks.user", "export.config", "export.user.inspect")}
    assert all(attempted.values()), attempted


def test_a_wrong_example_fails(tmp_path, monkeypatch):
    (tmp_path / "drifted.py").write_text('def f():\n    """\n    >>> 1 + 1\n    3\n    """\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    result = doctest.testmod(importlib.import_module("drifted"), report=False)
    assert result.failed == 1
