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
