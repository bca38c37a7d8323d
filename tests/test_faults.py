"""Faults (issue 32, item 5): a full disk during an export, a worker killed in
multi-worker training, a corrupt data cache. Each gives a typed error naming the file or
the worker, or a clean re-fetch; nothing that looks complete is left half-written."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from export.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["export", "bilstm_activity_tiny", "--weights", "none", "--formats", "tflite,onnx",
        "--precision", "fp32"]


@pytest.fixture
def small_disk(tmp_path):
    """A 40 KiB tmpfs (root only): smaller than the tiny bundle's reference weights."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the fault-injection tests below "
                    "cover the same paths without it)")
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _one_error_line(capsys) -> str:
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(lines) == 1, err[-2000:]
    return lines[0]


def test_export_to_a_full_disk_names_the_file_and_leaves_nothing(small_disk, capsys):
    code = main([*TINY, "--out", str(small_disk / "b")])
    line = _one_error_line(capsys)
    assert code == 2
    assert f"cannot write {small_disk / 'b' / 'reference.weights.h5'}" in line, line
    assert "no space left on device (ENOSPC)" in line and "choose another --out" in line
    assert os.listdir(small_disk) == []  # no bundle, no .b.partial-*, no lock


def test_a_full_temporary_folder_is_named_with_tmpdir(small_disk, tmp_path, monkeypatch,
                                                      capsys):
    # the TFLite converter stages a SavedModel in the temporary folder (tempfile's)
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    code = main([*TINY, "--out", str(tmp_path / "out" / "b")])
    line = _one_error_line(capsys)
    assert code == 2 and "no space left on device (ENOSPC)" in line, line
    assert f"cannot write {small_disk}/" in line and "point TMPDIR elsewhere" in line, line
    # nothing of the export's (TensorFlow's autograph keeps its generated modules there)
    assert [n for n in os.listdir(small_disk) if not n.startswith("__autograph")] == []
    assert not (tmp_path / "out").exists()


def test_enospc_injected_at_a_bundle_write(tmp_path, monkeypatch, capsys):
    """Without root: the write of an artifact fails as a full disk fails it."""
    suffix, shown = ".onnx", "fp32/classifier.onnx"
    write_bytes, write_text = Path.write_bytes, Path.write_text

    def full(write):
        def fail_some(self, data, *args, **kwargs):
            if self.suffix == suffix:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write(self, data, *args, **kwargs)
        return fail_some

    monkeypatch.setattr(Path, "write_bytes", full(write_bytes))
    monkeypatch.setattr(Path, "write_text", full(write_text))
    code = main([*TINY[:4], "--formats", "onnx", "--precision", "fp32", "--out",
                 str(tmp_path / "b")])
    line = _one_error_line(capsys)
    assert code == 2 and f"cannot write {tmp_path / 'b' / shown}: no space" in line, line
    assert os.listdir(tmp_path) == []


def test_the_disk_full_error_names_the_bundle_file_and_the_folder_to_free():
    from export.output import bundle_path, disk_full_error, is_disk_full

    assert bundle_path(Path("/d/.b.partial-12-ab09/.x.h5.tmp/x.h5")) == Path("/d/b/x.h5")
    assert bundle_path(Path("/d/b.partial/x")) == Path("/d/b.partial/x")
    h5py_said = RuntimeError("file write failed, errno = 28, error message = 'No space left "
                             "on device'")
    assert is_disk_full(h5py_said) and is_disk_full(OSError(errno.EDQUOT, "quota"))
    assert not is_disk_full(OSError(errno.EACCES, "denied")) and not is_disk_full(
        RuntimeError("errno = 280"))
    quota = disk_full_error("/srv/b", OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert "disk quota exceeded (EDQUOT)" in str(quota)


# --- a worker killed in multi-worker training ---------------------------------------------


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_a_killed_worker_is_named_by_the_survivor_which_does_not_hang():
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    started = time.monotonic()
    for i in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(config),
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "tests/faults/worker.py")],
                                      cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # worker 1 has done an all-reduced epoch
            line = procs[1].stdout.readline()
            if line.startswith("epoch") or not line:
                break
        assert line.startswith("epoch"), "worker 1 never trained"
        procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        out, _ = procs[0].communicate(timeout=60)
        waited = time.monotonic() - killed
        print(f"worker 1 trained at {killed - started:.1f} s; worker 0 ended {waited:.1f} s "
              "after its kill")
    finally:
        for p in procs:
            p.kill()
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert procs[0].returncode == 2 and len(errors) == 1, out[-2000:]
    assert f"lost worker 1 ({workers[1]})" in errors[0], errors[0]
    assert "restart all 2 workers" in errors[0] and "no weights were written" in errors[0]
    assert waited < 45, waited


def test_a_lost_peer_error_is_recognised_from_tensorflows_message():
    from zoo._keras import tf
    from zoo.distribute import Cluster, lost_worker

    cluster = Cluster(("h0:1", "h1:2", "h2:3"), 0)
    said = ("Graph execution error:\n\nCollective ops is aborted by: recvmsg:Connection "
            "reset by peer\nAdditional GRPC error information from remote target "
            "/job:worker/replica:0/task:2 while calling /tensorflow.WorkerService/RecvBuf")
    lost = lost_worker(tf.errors.UnavailableError(None, None, said), cluster)
    assert lost.worker == 2 and "lost worker 2 (h2:3): recvmsg:Connection reset by peer" \
        in str(lost)
    assert lost_worker(tf.errors.UnavailableError(None, None, said), Cluster()) is None
    assert lost_worker(ValueError(said), cluster) is None
