"""The lstm-zoo command: exit codes and one-line errors, never a traceback."""

import re

import numpy as np
import pytest

from export.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_list_and_info(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "bilstm_activity" in out and "seq2seq_g2p" in out
    code, out, _ = run(capsys, "info", "seq2seq_g2p")
    assert code == 0 and "decoder_step" in out
    for section in ("## Weights `cmudict`", "per = 0.0721", "## Intended use", "## Limitations",
                    "## Tolerances", "BSD"):
        assert section in out
    code, out, _ = run(capsys, "info", "bilstm_activity_tiny")
    assert code == 0 and "No benchmark results found" in out  # tiny models are not benchmarked


@pytest.mark.parametrize("argv, match", [
    (("info", "nope"), "unknown model"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--set", "unitz=3", "--out", "X"),
     "unknown override"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--formats", "tfjs", "--out", "X"),
     "tfjs"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--precision", "int3", "--out", "X"),
     "int3"),
    (("verify", "/nonexistent/bundle"), "not a bundle"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--precision", "int16x8", "--out",
      "X"), "UNIDIRECTIONAL_SEQUENCE_LSTM"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--precision", "int8",
      "--calibration", "/nonexistent.npy", "--out", "X"), "calibration file"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--max-drop", "0.01", "--out", "X"),
     "auto"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--qat", "--out", "X"),
     "request precision int8"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--qat", "--cluster", "8",
      "--precision", "int8", "--out", "X"), "qat cannot follow cluster"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--structured", "1.0", "--out",
      "X"), "(0, 1)"),
])
def test_bad_input_exits_2(capsys, tmp_path, argv, match):
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and match in err and err.strip().splitlines()[-1].startswith("error:")


def test_predict_sequence_and_bad_inputs(capsys, tiny_bundles, tmp_path):
    bundles, _ = tiny_bundles
    bundle = str(bundles["bilstm_activity_tiny"])
    from zoo.datasets import basicmotions

    good = tmp_path / "walk.npy"
    np.save(good, basicmotions.load("test").x[25])
    csv = tmp_path / "walk.csv"
    np.savetxt(csv, basicmotions.load("test").x[25], delimiter=",")
    code, out, err = run(capsys, "predict", bundle, "--input", str(good))
    assert code == 0 and "Walking" in out
    assert "[lstm-zoo] answered by litert at fp32 (classifier.tflite)" in err
    code, out_csv, err = run(capsys, "predict", bundle, "--input", str(csv), "--backend", "onnx")
    assert code == 0 and out_csv.split()[0] == out.split()[0]
    assert "[lstm-zoo] answered by onnx at fp32 (classifier.onnx)" in err

    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((50, 6), np.nan))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((50, 4)))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    strings = tmp_path / "s.npy"
    np.save(strings, np.array([["a"] * 6] * 3))
    for path, match in ((nan, "NaN"), (wrong, r"\(time, 6\)"), (text, ".npy or .csv"),
                        (tmp_path / "missing.npy", "does not exist"), (strings, "real numbers")):
        code, _, err = run(capsys, "predict", bundle, "--input", str(path))
        assert code == 2 and err.strip().splitlines()[-1].startswith("error:"), err
        assert __import__("re").search(match, err), err


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_an_artifact_with_other_inputs_names_the_file(tiny_bundles, fmt):
    """A manifest whose artifact is another graph's (here the classifier's file listed with
    the G2P encoder's inputs) is refused when the artifact loads, naming the file."""
    from export.verification.runtime import LiteRTRunner, ORTRunner, load_bundle
    from zoo.errors import ArtifactError

    bundles, _ = tiny_bundles
    classifier = load_bundle(bundles["bilstm_activity_tiny"])
    file = next(a["file"] for a in classifier.artifacts
                if a["format"] == fmt and a["precision"] == "fp32")
    runner = LiteRTRunner if fmt == "tflite" else ORTRunner
    encoder = load_bundle(bundles["seq2seq_g2p_tiny"]).graph_inputs("encoder")
    with pytest.raises(ArtifactError, match=rf"{file} takes inputs \['sequence'\]; the "
                                            r"manifest lists \['graphemes'\]"):
        runner(classifier.path / file, encoder)


def test_predict_word(capsys, tiny_bundles):
    bundles, _ = tiny_bundles
    bundle = str(bundles["seq2seq_g2p_tiny"])
    code, out, _ = run(capsys, "predict", bundle, "--input", "hello")
    assert code == 0 and out.strip()
    code, _, err = run(capsys, "predict", bundle, "--input", "h3llo")
    assert code == 2 and "outside the model's alphabet" in err
    code, _, err = run(capsys, "predict", bundle, "--input", "  ")
    assert code == 2 and "empty" in err


def test_predict_word_with_beam_search(capsys, tiny_bundles):
    """G2P takes --beam W (W = 1 is greedy); a width outside 1..64, a non-number or a
    lexicon gives one error line and exit 2."""
    bundles, _ = tiny_bundles
    bundle = str(bundles["seq2seq_g2p_tiny"])
    _, greedy, _ = run(capsys, "predict", bundle, "--input", "hello", "--backend", "onnx")
    code, out, err = run(capsys, "predict", bundle, "--input", "hello", "--backend", "onnx",
                         "--beam", "1")
    assert code == 0 and out == greedy, err
    code, out, err = run(capsys, "predict", bundle, "--input", "hello", "--beam", "3")
    assert code == 0 and out.strip(), err
    for width, match in (("0", "beam width must be in 1..64 for a seq2seq model; got 0"),
                         ("-1", "got -1"), ("100000", r"1\.\.64 .*got 100000"),
                         ("abc", "invalid int value: 'abc'")):
        try:
            code = main(["predict", bundle, "--input", "hello", "--beam", width])
        except SystemExit as e:  # argparse's own refusal
            code = e.code
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "error:" in line]
        assert code == 2 and "Traceback" not in err and len(lines) == 1, err
        assert re.search(match, lines[0]), err
    code, _, err = run(capsys, "predict", bundle, "--input", "hello", "--lexicon", "w.txt")
    assert code == 2 and "--lexicon is for CTC recognisers" in err


def test_export_auto_with_calibration_file(capsys, tiny_weights, tmp_path):
    from zoo.datasets import basicmotions

    samples = tmp_path / "own.npy"
    np.save(samples, basicmotions.load("train").x[:20])
    code, out, err = run(capsys, "export", "bilstm_activity_tiny", "--weights",
                         str(tiny_weights["bilstm_activity_tiny"]), "--formats", "tflite",
                         "--precision", "auto", "--max-drop", "0.1", "--calibration",
                         str(samples), "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert "auto (tflite, max drop 0.1): chose " in out
    manifest = __import__("json").loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["calibration"]["source"] == "user samples"


@pytest.mark.parametrize("name", ["lstm_forecaster_co2", "handwriting_ctc",
                                  "convlstm_nextframe"])
def test_input_readers_take_upper_case_suffixes(tmp_path, name):
    """A file named ``X.NPY`` (as some tools and file systems write it) reads like ``x.npy``."""
    from zoo import get_spec
    from zoo.tasks import get_task

    spec = get_spec(name)
    task, meta = get_task(spec.task), spec.meta
    if spec.task == "forecast":
        x = np.linspace(0.0, 1.0, meta["window"] + 5)
    elif spec.task == "ctc":
        x = np.zeros((30, len(meta["channels"])), np.float32)
        x[:, 0] = np.linspace(0, 1, 30)
        if "pen_up" in meta["channels"]:
            x[-1, meta["channels"].index("pen_up")] = 1
    else:
        x = np.zeros((meta["observed"], meta["size"], meta["size"]), np.float32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()  # apart: on a case-insensitive file system X.NPY is x.npy
    lower, upper = tmp_path / "a" / "x.npy", tmp_path / "b" / "X.NPY"
    np.save(lower, x)
    upper.write_bytes(lower.read_bytes())
    np.testing.assert_array_equal(task.parse_input(str(upper), meta),
                                  task.parse_input(str(lower), meta))


def test_calibration_file_takes_an_upper_case_suffix(tmp_path):
    from export.cli import _calibration

    x = np.zeros((3, 5, 2), np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "X.NPY").write_bytes((tmp_path / "x.npy").read_bytes())
    got = _calibration(str(tmp_path / "X.NPY"))
    assert len(got) == 3 and got[0].shape == (5, 2)  # an array, not words of a text file


def test_a_reader_that_leaves_is_no_error():
    """``lstm-zoo list | head -1``: the pipe closes early; exit 141 (SIGPIPE's), no
    traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "export.cli", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
