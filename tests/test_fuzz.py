"""Property-based tests (issue 32, item 6): random command lines, random inputs to every
task, and a corpus of corrupt bundles. The only allowed outcomes are success with the right
output or a typed error (exit 2 and one ``error:`` line at the command line); never a
traceback, never a raw built-in exception, never a hang, never "verified".

Hypothesis runs derandomized (the same examples on every run, so CI never flakes on a new
draw; ``HYPOTHESIS_SEED=N`` is not read, set ``FUZZ_EXAMPLES`` to draw more). One bundle of
the tiny classifier (``random_bundle``, tests/conftest.py) serves every test: it is copied
before it is corrupted, and no test exports a model. Where a command would start real work
(build and train a model, load a dataset, fetch data), a stub stops it with
:class:`Reached`: the arguments were all accepted, which is an allowed outcome too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.errors import ArtifactError, ZooError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))  # 0: each test's own (small) count


def fuzz(examples: int):
    """Hypothesis settings of one test: ``examples`` draws (``FUZZ_EXAMPLES`` overrides),
    the same on every run, no deadline (a first call imports TensorFlow), and function
    fixtures allowed (each example cleans up what it makes)."""
    return settings(max_examples=EXAMPLES or examples, deadline=None, derandomize=True,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


class Hang(BaseException):  # not an Exception: no `except Exception` in the code swallows it
    """A call that did not return within its time."""


class Reached(Exception):
    """Raised by a stub where a command would start real work: its arguments passed."""


@contextlib.contextmanager
def within(seconds: float):
    """Raises :class:`Hang` in the block after ``seconds`` (SIGALRM: pytest runs tests in
    the main thread, under xdist too)."""
    def hang(signum, frame):
        raise Hang(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(call, seconds: float = 60.0):
    """``("ok", value)`` or ``("typed", error)`` for a :class:`ZooError`; anything else (a
    raw built-in exception) propagates and fails the test, as does a :class:`Hang`."""
    with within(seconds):
        try:
            return "ok", call()
        except ZooError as e:
            return "typed", e


# --- the command line ---------------------------------------------------------------------

def _parser_options():
    """``{subcommand: [(flag, choices or None, takes a value)]}`` from the real parser."""
    import argparse

    from export.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {}
    for name, p in sub.choices.items():
        options[name] = [(a.option_strings[-1], a.choices, a.nargs != 0)
                         for a in p._actions if a.option_strings and a.dest != "help"]
    return options


OPTIONS = _parser_options()
MODELS = ["bilstm_activity_tiny", "seq2seq_g2p_tiny", "char_lm_tiny", "bilstm_activity",
          "no_such_model", "*", "", "-", "../x", "bilstm_activity_tiny\n"]
JUNK = ["", "-1", "0", "1", "2", "-38", "3.5", "nan", "inf", "-inf", "1e309", "abc", "None",
        "True", "[1]", "(64,)", "units=64", "units=-1", "num_classes=1", "dropout=1.0",
        "=", "x=", "{", "\x00", "é", "a" * 300, "fp32", "int8", "auto", "tflite", "onnx",
        "fp32,fp32", "tflite,tfjs", "litert", "keras", "onnx,", ",", "polynomial", "0.5",
        "1.0", "-0.5", "2", "accuracy", "mse", "mae", "top5", "zoo", "ZOO", "x y", "--",
        "--out", "-h"]


@pytest.fixture(scope="module")
def places(random_bundle, tmp_path_factory):
    """Paths the command lines draw from: the bundle, files good and bad, and paths that
    are not what they claim."""
    root = tmp_path_factory.mktemp("places")
    seq = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    np.save(root / "good.npy", seq)
    np.savetxt(root / "good.csv", seq, delimiter=",")
    np.save(root / "wide.npy", np.zeros((20, 7), np.float32))
    np.save(root / "nan.npy", np.full((20, 6), np.nan, np.float32))
    np.save(root / "words.npy", np.array(["a", "b"]))
    (root / "junk.npy").write_bytes(b"\x93NUMPY junk")
    (root / "junk.csv").write_text("a,b\n1,\n,,x\n")
    (root / "empty.csv").write_text("")
    (root / "words.txt").write_text("zoo\ncat\n")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "model.keras").write_bytes(b"PK\x03\x04 not a zip")
    (root / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n junk")
    (root / "data.npz").write_bytes(b"PK junk")
    (root / "data.tsv").write_text("zoo\tZ UW1\n")
    (root / "data.jsonl").write_text('{"text": 1}\n')
    (root / "dir").mkdir()
    (root / "dangling").symlink_to(root / "nowhere")
    return {"root": root, "bundle": random_bundle,
            "paths": [str(random_bundle), str(random_bundle / "manifest.json"),
                      *(str(p) for p in sorted(root.iterdir())), str(root / "missing.npy"),
                      "/proc/x", "/sys/x", "/dev/null", "/", "", "."]}


# values a flag plausibly takes (drawn three times in four; junk the fourth)
PLAUSIBLE = {
    "--precision": ["fp32", "dynamic", "int8", "float16", "int16x8", "auto", "fp32,int8",
                    "fp16", "FP32", ""],
    "--formats": ["tflite", "onnx", "tflite,onnx", "tfjs", "onnx,onnx", ""],
    "--weights": ["none", "DEFAULT", "basicmotions", "x.weights.h5", "http://x/y.h5"],
    "--limit": ["1", "8", "0", "-5", "2.5", "100000000000"],
    "--epochs": ["1", "0", "-3"], "--head-epochs": ["1", "0", "-3"],
    "--max-drop": ["0.005", "-1", "nan", "2"], "--prune": ["0.5", "1.0", "-0.1", "nan"],
    "--structured": ["0.5", "0", "1"], "--cluster": ["1", "8", "-2"],
    "--finetune-epochs": ["1", "0", "-1"], "--set": ["units=(8,)", "units=64", "num_classes=1",
                                                     "nope=1", "units", "dropout=2"],
    "--beam": ["4", "0", "-1"], "--length": ["10", "0", "-5", "100000000"],
    "--temperature": ["1", "0", "-1", "nan", "inf"], "--top-k": ["0", "5", "-1"],
    "--seed": ["0", "-1"], "--strategy": ["default", "mirrored", "multiworker", "x"],
    "--learning-rate": ["0.001", "0", "-1", "nan"], "--batch-size": ["8", "0", "-1"],
    "--patience": ["1", "0", "-1"], "--val-fraction": ["0.2", "0", "1", "-0.5"],
    "--unfreeze-factor": ["0.1", "0", "-1"], "--metric": ["accuracy", "mse", "bleu"],
}


@st.composite
def argvs(draw, places, fresh: Path) -> list[str]:
    """A command line of a real subcommand, its flags with plausible or junk values, now
    and then a stray token."""
    command = draw(st.sampled_from(sorted(OPTIONS)))
    paths = places["paths"]
    junk = st.one_of(st.sampled_from(JUNK), st.sampled_from(paths),
                     st.text(max_size=12), st.integers(-10**12, 10**12).map(str),
                     st.floats(allow_nan=True).map(repr))
    if draw(st.integers(0, 2)) == 0:  # a command that works, then flags changed or added
        argv = _template(command, places, fresh)
        chosen = draw(st.lists(st.sampled_from(OPTIONS[command]), min_size=1, max_size=2)
                      if OPTIONS[command] else st.just([]))
        return argv + _values(draw, chosen, places, fresh, junk)
    argv = [command]
    if command in ("info", "train", "finetune", "export", "generate"):
        argv.append(draw(st.sampled_from(MODELS * 2 + paths)))
    elif command in ("verify", "predict"):
        argv.append(draw(st.sampled_from([str(places["bundle"])] * len(paths) + paths)))
    elif command in ("inspect",):
        argv.append(draw(st.sampled_from(paths)))
    elif command == "list" and draw(st.booleans()):
        argv.append(draw(st.sampled_from(MODELS + JUNK)))
    flags = OPTIONS[command]
    chosen = draw(st.lists(st.sampled_from(flags), max_size=4)) if flags else []
    for required in ("--out", "--input", "--data"):  # mostly given: the command runs on
        if (required in (f for f, _, _ in flags) and not draw(st.integers(0, 4)) == 0
                and command != "generate"):
            chosen.append(next(f for f in flags if f[0] == required))
    argv += _values(draw, chosen, places, fresh, junk)
    if draw(st.integers(0, 9)) == 0:  # a stray token somewhere
        argv.insert(draw(st.integers(0, len(argv))), draw(junk))
    return argv


def _template(command: str, places, fresh: Path) -> list[str]:
    good, bundle = str(places["root"] / "good.npy"), str(places["bundle"])
    return {"export": ["export", "bilstm_activity_tiny", "--weights", "none", "--precision",
                       "fp32", "--out", str(fresh)],
            "predict": ["predict", bundle, "--input", good],
            "verify": ["verify", bundle, "--limit", "2"],
            "train": ["train", "bilstm_activity_tiny", "--epochs", "1", "--out", str(fresh)],
            "finetune": ["finetune", "bilstm_activity_tiny", "--data",
                         str(places["root"] / "data.npz"), "--out", str(fresh)],
            "generate": ["generate", "char_lm_tiny", "--length", "5"],
            "list": ["list", "g2p"], "info": ["info", "bilstm_activity"],
            "inspect": ["inspect", str(places["root"] / "model.keras")],
            "fetch-data": ["fetch-data"]}[command]


def _values(draw, chosen, places, fresh: Path, junk) -> list[str]:
    paths = places["paths"]
    good = str(places["root"] / "good.npy")
    argv = []
    for flag, choices, takes in chosen:
        argv.append(flag)
        if not takes:
            continue
        if draw(st.integers(0, 3)) == 0:
            argv.append(draw(junk))
        elif flag == "--out":  # mostly a fresh path: an export gets as far as it can
            argv.append(draw(st.sampled_from([str(fresh)] * 3 + [str(fresh) + ".npy"] * 2
                                             + paths)))
        elif flag == "--input":
            argv.append(draw(st.sampled_from([good] * 4 + paths + JUNK[:12])))
        elif choices:
            argv.append(draw(st.sampled_from(list(choices))))
        elif flag in PLAUSIBLE:
            argv.append(draw(st.sampled_from(PLAUSIBLE[flag])))
        else:
            argv.append(draw(st.sampled_from(paths)))
    return argv


@pytest.fixture
def stubbed(monkeypatch):
    """Where a command would start real work, :class:`Reached` instead: a dataset loaded
    for an export's or verify's parity (after the model is built and weights loaded),
    training (after the recipe is settled), fetching."""
    import export.cli
    import export.pipeline
    import zoo.finetune
    import zoo.train

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(export.pipeline, "_evaluation_data", reached)
    monkeypatch.setattr(zoo.train, "seed_everything", reached)
    monkeypatch.setattr(zoo.finetune, "seed_everything", reached)
    monkeypatch.setattr(export.cli, "cmd_fetch_data", reached)


def run_cli(argv: list[str]) -> tuple[object, str, str]:
    """``(exit code or "reached", stdout, stderr)`` of ``main(argv)`` in this process."""
    from export.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), within(120):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: usage errors, --help, --version
            code = e.code
        except Reached:
            code = "reached"
    return code, out.getvalue(), err.getvalue()


def check_cli(argv, code, out, err, places):
    said = f"argv={argv!r}\nexit={code!r}\nstdout={out[-2000:]}\nstderr={err[-2000:]}"
    assert "Traceback" not in err, said
    errors = [line for line in err.splitlines() if "error:" in line]
    if code == 2:
        assert len(errors) == 1, said
        extra = [line for line in err.splitlines() if line and "error:" not in line
                 and not line.startswith(("[lstm-zoo] ", "usage:", " "))]
        assert not extra, said  # nothing but progress, argparse's usage and the error
    elif code in (0, "reached"):
        assert not errors, said
        if code == 0 and out.startswith("usage: "):  # -h anywhere: the help, and nothing run
            return
    else:
        pytest.fail(f"exit {code!r} is neither 0 nor 2 (nothing here can fail parity)\n{said}")
    if code == 0 and argv[0] == "list":
        from zoo import list_models

        assert out and all(line.split()[0] in list_models() for line in out.splitlines()), said
    if code == 0 and argv[0] == "predict":
        classes = json.loads((places["bundle"] / "manifest.json").read_text())["meta"]["classes"]
        assert sorted(c.split()[0] for c in out.splitlines()[0].split(", ")) == sorted(classes), \
            said


_fresh = itertools.count()


@fuzz(150)
@given(data=st.data())
def test_random_command_lines_exit_0_or_2_with_one_error_line(places, stubbed, data):
    fresh = places["root"] / f"fresh{next(_fresh)}" / "b"
    argv = data.draw(argvs(places, fresh), label="argv")
    code, out, err = run_cli(argv)
    if os.environ.get("FUZZ_LOG"):  # what the draws reached: FUZZ_LOG=file
        with open(os.environ["FUZZ_LOG"], "a") as log:
            log.write(json.dumps([code, argv, (err.strip().splitlines() or [""])[-1][:150]])
                      + "\n")
    check_cli(argv, code, out, err, places)


# --- inputs to every task -----------------------------------------------------------------

def task_metas():
    """``{task name: meta}``: each registered task with the meta of a tiny model of it (a
    user model's: one (time, 6) input, agreement)."""
    import zoo
    from zoo.tasks import TASKS

    metas = {}
    for name in zoo.list_models("*_tiny"):
        spec = zoo.get_spec(name)
        metas.setdefault(spec.task, dict(spec.meta))
    metas["user"] = {"inputs": ["x"], "outputs": ["y"], "input_shapes": {"x": [None, 20, 6]},
                     "metric": "agreement", "softmax": True}
    assert set(metas) == set(TASKS), set(TASKS) - set(metas)
    return metas


METAS = task_metas()

# arrays of many shapes and dtypes, nested lists, strings, and things that are neither
_dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int8, np.int64, np.uint8,
                           np.bool_, np.complex64, np.str_, np.object_])


def _array(shape, dtype, fill):
    if dtype is np.object_:
        return np.full(shape, fill, dtype=object)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN or 1e30 as an int: any value
        return np.full(shape, fill).astype(dtype)


_arrays = st.builds(_array,
    st.lists(st.integers(0, 7), max_size=4).map(tuple), _dtypes,
    st.sampled_from([0.0, 1.5, -3.0, np.nan, np.inf, 1e30, 7]))
_texts = st.one_of(st.text(max_size=50), st.sampled_from(["", " ", "zoo", "ZOO", "a" * 41,
                                                          "hello world", "\x00", "é", "<b>"]))
INPUTS = st.one_of(
    _arrays, _texts, st.none(), st.booleans(), st.integers(), st.floats(),
    st.binary(max_size=20), st.dictionaries(st.text(max_size=3), _arrays, max_size=2),
    st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none()),
             max_size=30),
    st.lists(st.lists(st.floats(width=32), min_size=6, max_size=6), max_size=25))


@fuzz(60)
@pytest.mark.parametrize("task_name", sorted(METAS))
@given(x=INPUTS)
def test_check_input_takes_or_refuses_with_a_typed_error(task_name, x):
    from zoo.tasks import get_task

    meta = METAS[task_name]
    task = get_task(task_name).for_meta(meta)
    outcome(lambda: task.check_input(x, meta, "inputs[0]"), seconds=20)


_contents = st.one_of(
    st.binary(max_size=200), st.text(max_size=200).map(str.encode),
    st.builds(lambda a: _npy_bytes(a), _arrays),
    st.builds(lambda a, cut: _npz_bytes(a)[:cut], _arrays, st.integers(1, 10**4)),
    st.sampled_from([b"1,2,3\n4,5,6\n", b"x\n1\n2\n", b"\xef\xbb\xbf1\n", b"[[0, 0, 1]]",
                     b'{"points": [[0, 0, 1]]}', b"RIFF\x00\x00\x00\x00WAVEfmt ", b"",
                     b"nan\n" * 40, b"1e999\n" * 40]))
_suffixes = st.sampled_from([".npy", ".csv", ".json", ".txt", ".wav", ".npz", ".tsv", ""])


def _npz_bytes(a) -> bytes:  # the array named as a user model's input ("x"), compressed
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=a, other=a)
    return buffer.getvalue()


def _npy_bytes(a) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, a, allow_pickle=True)  # an object array: a pickle inside
    return buffer.getvalue()


@fuzz(40)
@pytest.mark.parametrize("task_name", sorted(METAS))
@given(content=_contents, suffix=_suffixes, as_text=st.booleans())
def test_parse_input_reads_or_refuses_with_a_typed_error(task_name, content, suffix, as_text):
    """A file of random content and suffix (or its content as the text itself)."""
    from zoo.tasks import get_task

    meta = METAS[task_name]
    task = get_task(task_name).for_meta(meta)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(content)
        source = content.decode("utf-8", "replace") if as_text else str(path)
        kind, value = outcome(lambda: task.parse_inputs(source, meta), seconds=20)
        if kind == "ok":  # what parse_inputs returns, check_input takes
            assert isinstance(value, list) and value, value
            for item in value:
                outcome(lambda item=item: task.check_input(item, meta), seconds=20)


@fuzz(40)
@given(x=INPUTS)
def test_the_bundle_predicts_or_refuses_with_a_typed_error(random_bundle, x):
    """The real bundle on both runtimes: an input its task takes gives one probability row
    per input on each backend, the same row."""
    from export.verification.runtime import load_bundle

    bundle = load_bundle(random_bundle)
    inputs = x if isinstance(x, (list, tuple, np.ndarray, str, bytes)) else [x]
    answers = {}
    for backend in ("litert", "onnx"):
        answers[backend] = outcome(lambda b=backend: bundle.predict(inputs, backend=b))
    kinds = {kind for kind, _ in answers.values()}
    assert len(kinds) == 1, answers  # both take it or both refuse it
    if kinds == {"ok"}:
        litert, onnx = answers["litert"][1], answers["onnx"][1]
        assert litert.shape == (len(inputs), len(bundle.meta["classes"]))
        np.testing.assert_allclose(litert, onnx, atol=1e-4)
        np.testing.assert_allclose(litert.sum(-1), 1.0, atol=1e-4)


# --- corrupt bundles ----------------------------------------------------------------------

FILES = ("manifest.json", "fp32/classifier.onnx", "fp32/classifier.tflite",
         "reference.weights.h5")


def _rehash(root: Path, name: str) -> None:
    """The manifest made to agree with ``name``'s new content (as a forger would)."""
    m = json.loads((root / "manifest.json").read_text())
    data = (root / name).read_bytes()
    for entry in [*m["artifacts"], m["reference"], *m.get("files", ())]:
        if entry["file"] == name:
            entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (root / "manifest.json").write_text(json.dumps(m))


CORRUPTIONS = dict(how=st.sampled_from(["truncate", "flip", "zero"]), at=st.floats(0, 1),
                   bit=st.integers(0, 7))


def corrupt(root: Path, name: str, how: str, at: float, bit: int) -> str:
    path = root / name
    data = bytearray(path.read_bytes())
    offset = min(int(at * len(data)), len(data) - 1)
    if how == "truncate":
        del data[offset:]
    elif how == "flip":
        data[offset] ^= 1 << bit
    elif how == "zero":
        data[offset:] = bytes(len(data) - offset)
    path.write_bytes(bytes(data))
    return f"{how} {name} at byte {offset} of {path.stat().st_size}"


@fuzz(60)
@given(name=st.sampled_from(FILES), **CORRUPTIONS)
def test_a_corrupt_bundle_is_refused_by_load_bundle(random_bundle, name, how, at, bit):
    """Any change to an artifact or the weights is caught by its size or sha256; a change
    to the manifest by its JSON, schema or the files' sha256, or else it changed a value
    that nothing checks (a free-form record: the model's description, a date) and the
    bundle still loads and answers as before."""
    from export.verification.runtime import load_bundle

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "b"
        shutil.copytree(random_bundle, root)
        what = corrupt(root, name, how, at, bit)
        kind, value = outcome(lambda: load_bundle(root))
        if name != "manifest.json":
            assert kind == "typed" and isinstance(value, ArtifactError), what
            return
        if kind == "ok":  # the flip left valid JSON off every check
            x = [np.zeros((20, 6), np.float32)]
            np.testing.assert_array_equal(value.predict(x, backend="onnx"),
                                          load_bundle(random_bundle).predict(x, backend="onnx"))


def forged(random_bundle, name, how, at, bit):
    """The manifest rewritten to the corrupt file's size and sha256: loading the artifact
    (or the weights) and running it gives a typed error, or an answer (a flipped weight
    changes the numbers: verify's parity is what catches it, tested below)."""
    from export.verification.runtime import load_bundle

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "b"
        shutil.copytree(random_bundle, root)
        corrupt(root, name, how, at, bit)
        _rehash(root, name)
        backend = {".onnx": "onnx", ".tflite": "litert", ".h5": "keras"}[Path(name).suffix]
        bundle = load_bundle(root)
        kind, value = outcome(lambda: bundle.predict([np.zeros((20, 6), np.float32)],
                                                     backend=backend))
        if kind == "ok":
            assert value.shape == (1, 4)


@fuzz(40)
@given(name=st.sampled_from(FILES[1:3]), **CORRUPTIONS)
def test_a_forged_corrupt_artifact_is_a_typed_error_or_runs(random_bundle, name, how, at,
                                                           bit):
    forged(random_bundle, name, how, at, bit)


@pytest.fixture(scope="module")
def keras_model(random_bundle):
    from export.verification.runtime import load_bundle

    return load_bundle(random_bundle).keras_model()


@fuzz(40)
@given(**CORRUPTIONS)
def test_forged_corrupt_weights_are_a_typed_error_or_load(random_bundle, keras_model, how, at,
                                                         bit):
    """What ``Bundle.keras_model`` does with the weights (their links checked, then loaded
    into the model its builder made), on a model built once: a second a build."""
    from export.verification.runtime import _self_contained_h5
    from zoo.weights import WeightsRecord, load_into

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.weights.h5"
        shutil.copy(random_bundle / path.name, path)
        corrupt(Path(folder), path.name, how, at, bit)
        outcome(lambda: (_self_contained_h5(path), load_into(keras_model, WeightsRecord(path))))


def _swap(root, a, b):
    (root / a).rename(root / "swap")
    (root / b).rename(root / a)
    (root / "swap").rename(root / b)


@pytest.mark.parametrize("a, b, forged", [
    ("fp32/classifier.onnx", "fp32/classifier.tflite", False),
    ("fp32/classifier.onnx", "fp32/classifier.tflite", True),
    ("fp32/classifier.onnx", "reference.weights.h5", True),
    ("fp32/classifier.tflite", "reference.weights.h5", True),
    ("manifest.json", "parity.json", False),
    ("manifest.json", "reference.weights.h5", False),
])
def test_swapped_files_are_refused(random_bundle, tmp_path, capsys, a, b, forged):
    """Two files swapped (and, forged, the manifest made to agree): load_bundle or the
    runtime that opens the file refuses it, and verify says one error line."""
    from export.cli import main
    from export.verification.runtime import load_bundle

    root = tmp_path / "b"
    shutil.copytree(random_bundle, root)
    _swap(root, a, b)
    if forged:
        _rehash(root, a)
        _rehash(root, b)
    with pytest.raises(ArtifactError):
        with within(60):
            bundle = load_bundle(root)
            for backend in ("onnx", "litert", "keras"):
                bundle.runners(backend)
    with within(120):
        code = main(["verify", str(root)])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and "verified" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err


@pytest.mark.parametrize("file", [
    "fp32//classifier.onnx", "fp32/classifier.onnx/", "/fp32/classifier.onnx",
    "fp32\\classifier.onnx", "fp32/classifier.onnx\x00.txt", "FP32/classifier.onnx",
    "fp32/../fp32/classifier.onnx", "~/classifier.onnx", "manifest.json", ".", "fp32",
    "fp32/classifier.onnx " , "file:///etc/passwd", "/dev/zero", "%2e%2e/x", "a" * 5000,
])
def test_path_tricks_in_the_manifest_are_refused(random_bundle, tmp_path, file):
    from export.verification.runtime import load_bundle

    root = tmp_path / "b"
    shutil.copytree(random_bundle, root)
    m = json.loads((root / "manifest.json").read_text())
    m["artifacts"][0]["file"] = file
    (root / "manifest.json").write_text(json.dumps(m))
    with within(30), pytest.raises(ArtifactError):
        load_bundle(root)


@pytest.mark.parametrize("trick", ["fifo", "dir", "device", "loop"])
def test_a_listed_file_that_is_no_regular_file_is_refused_without_hanging(random_bundle,
                                                                          tmp_path, trick):
    """A FIFO would block a reader forever; a folder, a device and a symlink loop are not
    files either."""
    from export.verification.runtime import load_bundle

    root = tmp_path / "b"
    shutil.copytree(random_bundle, root)
    target = root / "fp32" / "classifier.onnx"
    target.unlink()
    if trick == "fifo":
        os.mkfifo(target)
    elif trick == "dir":
        target.mkdir()
    elif trick == "device":
        target.symlink_to("/dev/zero")
    else:
        target.symlink_to(target)
    with within(30), pytest.raises(ArtifactError):
        load_bundle(root)
    if trick == "fifo":  # the manifest itself a FIFO
        (root / "manifest.json").unlink()
        os.mkfifo(root / "manifest.json")
        with within(30), pytest.raises(ArtifactError, match="no manifest.json"):
            load_bundle(root)


def test_verify_of_a_forged_artifact_fails_parity_not_verified(random_bundle, tmp_path,
                                                               capsys, monkeypatch):
    """A weight of the ONNX artifact changed and the manifest forged to agree: the bundle
    loads and runs, and verify (the real one, 8 samples) says parity failed (exit 1)."""
    import onnx
    from onnx import numpy_helper

    from export.cli import main

    root = tmp_path / "b"
    shutil.copytree(random_bundle, root)
    path = root / "fp32" / "classifier.onnx"
    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    weights = numpy_helper.to_array(init).copy()
    weights.flat[: weights.size // 2] *= -3.0
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    onnx.save(model, str(path))
    _rehash(root, "fp32/classifier.onnx")
    with within(300):
        code = main(["verify", str(root), "--limit", "8"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err and "verified" not in out, (out, err)
    assert err.strip().splitlines()[-1].startswith("error: parity failed: onnx/fp32")
