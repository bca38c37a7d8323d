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
