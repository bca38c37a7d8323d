"""Arguments checked before any work, and a terminal that says only what a user can act on
(issue 32, items 3 and 7)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*argv, env=None):
    """``python -m export.cli ARGV`` in a fresh process (this checkout first on the path)."""
    return subprocess.run([sys.executable, "-m", "export.cli", *argv], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("argv", [("list",), ("list", "g2p"), ("info", "seq2seq_g2p")])
def test_list_and_info_do_not_import_tensorflow(argv):
    code = ("import sys; from export.cli import main; main(" + repr(list(argv)) + "); "
            "print([m for m in ('tensorflow', 'tf_keras', 'onnxruntime', 'ai_edge_litert') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, timeout=60).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_tensorflow_imports_quietly_unless_debugging():
    """The import prints absl's preamble, oneDNN's notice and the CUDA probe (measured, TF
    2.21 on a machine without a GPU); LSTM_ZOO_DEBUG=1 shows them. A line that is not one
    of those still reaches stderr."""
    code = ("import sys; from zoo._keras import keras, tf; "
            "print('before', file=sys.stderr, flush=True); keras.layers; "
            "tf.zeros((1,)) + 1; print('kept', file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k != "LSTM_ZOO_DEBUG"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=ROOT, env=env, check=True, timeout=120).stderr
    assert quiet.split() == ["before", "kept"], quiet
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**env, "LSTM_ZOO_DEBUG": "1"}, check=True,
                          timeout=120).stderr
    assert "absl::InitializeLog" in loud or "cuInit" in loud or "oneDNN" in loud, loud


def test_noise_filter_keeps_other_lines():
    from zoo._keras import _NOISE

    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written "
             "to STDERR",
             "I0000 00:00:1796615636.325367   13062 port.cc:153] oneDNN custom operations "
             "are on.",
             "E0000 00:00:1796615742.232161   14548 cuda_platform.cc:52] failed call to "
             "cuInit: INTERNAL"]
    assert all(_NOISE.match(line) for line in noise)
    kept = ["E0000 00:00:1796615742.232161   14548 op_kernel.cc:1830] OP_REQUIRES failed",
            "Traceback (most recent call last):", "DeprecationWarning: np.bool"]
    assert not any(_NOISE.match(line) for line in kept)


# --- the command line: --version, list PATTERN, the parity table, ONNX Runtime's advice ---

def run(capsys, *argv):
    from export.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_version(capsys):
    from export.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"lstm-zoo {__import__('zoo').__version__}"


def test_list_matches_a_part_of_a_name_or_a_glob(capsys):
    code, out, _ = run(capsys, "list", "g2p")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == [
        "seq2seq_g2p", "seq2seq_g2p_tiny"]
    code, out, _ = run(capsys, "list", "bilstm_a*")
    assert code == 0 and {line.split()[0] for line in out.splitlines()} == {
        "bilstm_activity", "bilstm_activity_tiny"}
    code, out, err = run(capsys, "list", "nothing_like_it")
    assert code == 2 and out == "" and err.startswith("error: no registered model matches")


def parity_row(fmt, precision, checks, max_abs=1e-3):
    return {"format": fmt, "precision": precision, "backend": "onnx", "size_bytes": 2048,
            "tensor_max_abs": max_abs, "metrics": {"mase": 0.5}, "per_sample_ms": 0.1,
            "checks": checks, "passed": all(c["passed"] for c in checks)}


def test_table_shows_each_rows_tolerance_and_why_a_row_has_none():
    import io

    from export.cli import print_table

    plain = {"check": "tensor max_abs", "value": 2e-6, "limit": 1e-4, "passed": True}
    relative = {"check": "tensor max(|diff| - 1e-06*|forecast|)", "value": 3e-5,
                "limit": 1e-4, "passed": True}
    drop = {"check": "mase drop", "value": 0.004, "limit": 0.05, "passed": True}
    parity = {"reference": {"metrics": {"mase": 0.5}}, "results": [
        parity_row("tflite", "fp32", [plain, drop], 2e-6),
        parity_row("onnx", "fp32", [relative, drop], 1.4e2),
        parity_row("onnx", "dynamic", [drop], 1.4e2)]}
    out = io.StringIO()
    print_table(parity, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[5:7] == ["max|diff|", "tolerance"]
    assert lines[2].split()[4:6] == ["2.00e-06", "1.0e-04"]
    assert lines[3].split()[4:6] == ["1.40e+02", "1.0e-04*"]
    assert lines[4].split()[4:6] == ["1.40e+02", "none"]
    assert lines[5] == "onnx/fp32: * the bound is on max(|diff| - 1e-06*|forecast|) = 3.00e-05"
    assert lines[6] == ("onnx/dynamic: no tensor bound at this precision; judged on mase drop "
                        "0.004 (limit 0.05)")


def test_onnx_runtimes_quantization_advice_is_dropped(capsys):
    import logging

    run(capsys, "list", "g2p")  # main installs the filter
    root = logging.getLogger()

    def record(message, path):
        return logging.LogRecord("root", logging.WARNING, path, 1, message, None, None)

    ort = "/x/site-packages/onnxruntime/quantization/quantize.py"
    assert not root.filter(record("Please consider to run pre-processing before "
                                  "quantization. Refer to example: ...", ort))
    assert root.filter(record("Please consider something else", "/x/elsewhere.py"))
    assert root.filter(record("Quantization failed", ort))


# --- builder overrides: each builder's annotations, and ranges by argument name ---

@pytest.mark.parametrize("name, overrides, match", [
    ("bilstm_activity", {"num_classes": 0}, "num_classes must be an int >= 2"),
    ("bilstm_activity", {"num_classes": 3.0}, "num_classes must be an int >= 2"),
    ("bilstm_activity", {"num_classes": True}, "num_classes must be an int >= 2"),
    ("bilstm_activity", {"units": -1}, "units must be a non-empty sequence of ints >= 1"),
    ("bilstm_activity", {"units": 64}, r"one per layer \(e.g. \(64,\)"),
    ("bilstm_activity", {"units": None}, "got None"),
    ("bilstm_activity", {"units": "abc"}, "got 'abc'"),
    ("bilstm_activity", {"units": ()}, "non-empty"),
    ("bilstm_activity", {"units": (64, 0)}, "got \\(64, 0\\)"),
    ("bilstm_activity", {"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    ("bilstm_activity", {"dropout": float("nan")}, "dropout must be a number"),
    ("bilstm_activity", {"cell": "rnn"}, r"cell must be one of \['lstm', 'gru', 'peephole'\]"),
    ("char_lm", {"units": 256}, "units must be a non-empty sequence"),  # annotated `tuple`
    ("bilstm_text", {"mask": 1}, "mask must be True or False"),
    ("lstm_forecaster", {"season": 0}, "season must be an int >= 1 or None"),
    ("seq2seq_g2p", {"encoder_units": "128"}, "encoder_units must be an int >= 1"),
    ("convlstm_nextframe", {"kernel": 0}, "kernel must be an int >= 1"),
])
def test_overrides_are_checked_against_the_builders_declaration(name, overrides, match):
    from zoo import get_spec
    from zoo.errors import ArgumentError

    with pytest.raises(ArgumentError, match=match) as e:
        get_spec(name).config(**overrides)
    assert str(e.value).startswith(f"{name}: ")
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)


def test_every_builders_defaults_and_valid_overrides_pass():
    from zoo import get_spec, list_models
    from zoo.arguments import check_overrides

    for name in list_models():
        spec = get_spec(name)
        config = spec.config()
        check_overrides(name, spec.builder, config, config)  # the declarations fit the defaults
    config = get_spec("lstm_forecaster").config(season=None, units=[32, 32], dropout=0.0)
    assert config["season"] is None and config["units"] == [32, 32]


def test_create_model_refuses_before_building():
    import zoo
    from zoo.errors import ArgumentError

    with pytest.raises(ArgumentError, match=r"weights must be None, 'DEFAULT'.*got 123 \(int\)"):
        zoo.create_model("bilstm_activity", weights=123)
    with pytest.raises(ArgumentError, match="num_classes must be an int >= 2"):
        zoo.create_model("bilstm_activity", num_classes=0)


@pytest.mark.parametrize("argv, match", [
    (("export", "bilstm_activity_tiny", "--weights", "none", "--set", "units=64"),
     "bilstm_activity_tiny: units must be a non-empty sequence of ints >= 1"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--set", "num_classes=1"),
     "num_classes must be an int >= 2"),
    (("export", "bilstm_activity_tiny", "--weights", "none", "--limit", "-5"),
     "limit must be a positive number of samples; got -5"),
    (("verify", "/nonexistent/bundle", "--limit", "-38"),
     "limit must be a positive number of test samples (an int >= 1); got -38"),
    (("verify", "/nonexistent/bundle", "--limit", "0"), "got 0"),
])
def test_cli_refuses_bad_arguments_in_one_line(capsys, tmp_path, argv, match):
    code, _, err = run(capsys, *argv, *(["--out", str(tmp_path / "b")] if argv[0] == "export"
                                       else []))
    said = [line for line in err.splitlines() if not line.startswith("[lstm-zoo] ")]
    assert code == 2 and len(said) == 1 and said[0].startswith("error: ") and match in said[0]


@pytest.mark.parametrize("limit", [0, -38, True, 2.5, "3"])
def test_verify_bundle_refuses_a_limit_below_one(limit):
    from export.pipeline import verify_bundle
    from zoo.errors import ArgumentError

    with pytest.raises(ArgumentError, match="limit must be a positive number"):
        verify_bundle("/nonexistent/bundle", limit=limit)


# --- bundles: load_bundle's path and predict's inputs, checked before any artifact loads ---

def fake_bundle(name, monkeypatch):
    """A Bundle of ``name``'s task and meta whose runners must never be asked for."""
    from export.verification.runtime import Bundle
    from zoo import get_spec

    spec = get_spec(name)
    bundle = Bundle.__new__(Bundle)
    bundle.manifest = {"model": name, "task": spec.task, "meta": dict(spec.meta)}
    monkeypatch.setattr(Bundle, "runners", lambda *a, **k: pytest.fail("runners were loaded"))
    return bundle


@pytest.mark.parametrize("path", [None, 123, ["out/b"]])
def test_load_bundle_takes_a_path(path):
    from export.verification.runtime import load_bundle
    from zoo.errors import ArgumentError

    with pytest.raises(ArgumentError, match="load_bundle takes a bundle directory"):
        load_bundle(path)


@pytest.mark.parametrize("name, inputs, error, match", [
    ("seq2seq_g2p", "zoo", "ArgumentError", r"got a str: for one, pass \['zoo'\]"),
    ("seq2seq_g2p", [], "ArgumentError", "inputs is empty"),
    ("seq2seq_g2p", None, "ArgumentError", "got NoneType"),
    ("seq2seq_g2p", 5, "ArgumentError", "got int"),
    ("seq2seq_g2p", [123], "ShapeError", r"inputs\[0\]: expected a word \(str\), got int"),
    ("seq2seq_g2p", ["ok", "x" * 41], "ShapeError",
     r"inputs\[1\]: a word of 41 characters; the model takes at most 40"),
    ("bilstm_activity", ["hello"], "ShapeError",
     r"inputs\[0\]: expected shape \(time, 6\) with time >= 1, got \(\)"),
    ("bilstm_activity", b"\x00", "ArgumentError", "got a bytes"),
    ("lstm_forecaster_co2", [list(range(1_000_001))], "ShapeError",
     "a series may have at most 1,000,000"),
])
def test_predict_refuses_bad_inputs_before_loading_artifacts(monkeypatch, name, inputs, error,
                                                            match):
    from zoo import errors

    bundle = fake_bundle(name, monkeypatch)
    with pytest.raises(getattr(errors, error), match=match):
        bundle.predict(inputs)


def test_a_word_of_the_longest_length_is_taken():
    from zoo import get_spec
    from zoo.tasks import get_task
    from zoo.tasks.seq2seq import MAX_SOURCE

    meta = get_spec("seq2seq_g2p").meta
    assert get_task("seq2seq").check_input("a" * MAX_SOURCE, meta) == "a" * MAX_SOURCE


def test_an_artifact_with_other_inputs_than_the_manifest_names_the_file(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from export.verification.runtime import ORTRunner
    from zoo.errors import ArtifactError

    x = helper.make_tensor_value_info("graphemes", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["graphemes"], ["y"])], "g", [x], [y])
    path = tmp_path / "classifier.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    listed = [{"name": "sequence", "shape": [1, 3], "dtype": "float32"}]
    with pytest.raises(ArtifactError, match=f"{path} takes inputs \\['graphemes'\\]; the "
                                            "manifest lists \\['sequence'\\]"):
        ORTRunner(path, listed)
    assert ORTRunner(path, [{**listed[0], "name": "graphemes"}]).input_names == ("graphemes",)


# --- files: a data file that is not UTF-8 is named; a recording too long is not read ---

def test_data_files_that_are_not_utf8_are_named(tmp_path):
    from zoo.errors import DataError
    from zoo.userdata import load_sequences, load_transcribed

    csv = tmp_path / "walks.csv"
    csv.write_bytes("id,label,x\n1,caf\xe9,0.5\n".encode("latin-1"))
    with pytest.raises(DataError, match=f"{csv}: not UTF-8 text"):
        load_sequences(csv)
    jsonl = tmp_path / "strokes.jsonl"
    jsonl.write_bytes('{"text": "caf\xe9", "points": [[0, 0, 1]]}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=f"{jsonl}: not UTF-8 text"):
        load_transcribed(jsonl)


def test_a_recording_longer_than_the_model_takes_names_the_bound(tmp_path):
    import wave

    from zoo.audio import read_wav
    from zoo.errors import ShapeError

    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000 * 3)
    with pytest.raises(ShapeError, match=r"3.00 s of audio; this model takes at most 2 s"):
        read_wav(path, rate=8000, max_seconds=2.0)
    assert len(read_wav(path, rate=8000, max_seconds=3.0)) == 24000
