"""The bad-input catalogue (tests/bad_inputs/catalogue.py): every case gives its typed
error with its message, never a traceback or a raw built-in exception (issue 32, item 6).

The command-line cases run ``export.cli.main`` in this process; the bundle cases copy the
tiny classifier's bundle (``random_bundle``, tests/conftest.py); no case exports a model.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo import errors

sys.path.insert(0, str(Path(__file__).parent))  # tests/bad_inputs, run from any folder
from bad_inputs.catalogue import CASES  # noqa: E402

TARGET = 300  # issue 32: at least this many distinct bad inputs


def test_the_catalogue_holds_enough_distinct_cases():
    keys = [c.key() for c in CASES]
    assert len(set(keys)) == len(keys), [k for k in keys if keys.count(k) > 1]
    assert len(CASES) >= TARGET, len(CASES)


def _task(name):
    import zoo
    from zoo.tasks import get_task

    if name == "user":
        meta = {"inputs": ["a", "b"], "outputs": ["y"], "metric": "agreement",
                "input_shapes": {"a": [None, 20, 6], "b": [None, 20, 6]}}
    else:
        spec = next(zoo.get_spec(n) for n in zoo.list_models("*_tiny")
                    if zoo.get_spec(n).task == name)
        meta = dict(spec.meta)
    return get_task(name).for_meta(meta), meta


def _source(source: str, folder: Path) -> str:
    name, sep, content = source.partition(":")
    if not sep or "." not in name or "/" in name:
        return source
    path = folder / name
    path.write_bytes(content.encode("latin-1"))
    return str(path)


@pytest.fixture(scope="module")
def places(random_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    np.save(root / "good.npy", np.zeros((20, 6), np.float32))
    return {"bundle": str(random_bundle), "good": str(root / "good.npy")}


def _cli(case, places, tmp_path, capsys):
    from export.cli import main

    argv = [a.format(tmp=tmp_path, **places) for a in case.value]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    said = f"argv={argv}\nstdout={out[-1500:]}\nstderr={err[-1500:]}"
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, said
    prefix = "lstm-zoo" if case.error == "usage" else "error: "
    assert lines[0].startswith(prefix) and re.search(case.match, lines[0]), said


def _manifest(case, random_bundle, tmp_path):
    from export.verification.runtime import load_bundle

    root = tmp_path / "b"
    shutil.copytree(random_bundle, root)
    manifest = json.loads((root / "manifest.json").read_text())
    (*keys, last), value = case.value
    target = manifest
    for k in keys:
        target = target[k]
    target[last] = value
    (root / "manifest.json").write_text(json.dumps(manifest))
    return load_bundle(root).task


@pytest.mark.parametrize("case", CASES, ids=[f"{c.where}-{i}" for i, c in enumerate(CASES)])
def test_a_bad_input_gives_its_typed_error(case, places, random_bundle, tmp_path, capsys,
                                          monkeypatch):
    if case.where == "cli":
        return _cli(case, places, tmp_path, capsys)
    if case.where == "check_input":
        task, meta = _task(case.target)
        call = lambda: task.check_input(case.value, meta, "inputs[0]")  # noqa: E731
    elif case.where == "parse_input":
        task, meta = _task(case.target)
        call = lambda: task.parse_inputs(_source(case.value, tmp_path), meta)  # noqa: E731
    elif case.where == "predict":
        from export.verification.runtime import Bundle
        from zoo import get_spec

        spec = get_spec(case.target)
        bundle = Bundle.__new__(Bundle)
        bundle.manifest = {"model": spec.name, "task": spec.task, "meta": dict(spec.meta)}
        monkeypatch.setattr(Bundle, "runners", lambda *a, **k: pytest.fail("runners loaded"))
        call = lambda: bundle.predict(case.value)  # noqa: E731
    elif case.where == "decoding":
        task, meta = _task(case.target)
        call = lambda: task.decoding_options(meta, *case.value)  # noqa: E731
    elif case.where == "config":
        from zoo import get_spec

        call = lambda: get_spec(case.target).config(**case.value)  # noqa: E731
    else:
        call = lambda: _manifest(case, random_bundle, tmp_path)  # noqa: E731
    error = getattr(errors, case.error, None) or getattr(__builtins__, case.error, None) \
        or {"TypeError": TypeError}[case.error]
    with pytest.raises(Exception) as raised:
        call()
    assert isinstance(raised.value, error) and isinstance(raised.value, (errors.ZooError,
                                                                         TypeError)), \
        f"{case}: raised {type(raised.value).__name__}: {raised.value}"
    assert re.search(case.match, str(raised.value)), f"{case}: said {raised.value}"
