"""Fine-tuning on tf.distribute (two real worker processes on 127.0.0.1) and resuming a run
that was killed mid-epoch."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from export.cli import main
from zoo.datasets import basicmotions
from zoo.distribute import Cluster, get_strategy, parse_tf_config
from zoo.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# Workers exchange gradients over gRPC; a peer that dies would leave the other waiting.
TIMEOUT = 300


@pytest.fixture(scope="module")
def task(tmp_path_factory, tiny_weights):
    """Three of BasicMotions' activities as the user's data, and the parent weights."""
    directory = tmp_path_factory.mktemp("task")
    data = basicmotions.load("train")
    names = np.array(data.classes)[data.y]
    keep = np.isin(names, ("Running", "Standing", "Walking"))
    np.savez(directory / "train.npz", x=data.x[keep], y=names[keep])
    return directory / "train.npz", tiny_weights["bilstm_activity_tiny"]


def finetune_command(task, out, *extra):
    data, weights = task
    return [sys.executable, "-m", "export.cli", "finetune", "bilstm_activity_tiny", "--data",
            str(data), "--out", str(out), "--weights", str(weights), *extra]


def environment(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def weights_of(model_dir):
    import h5py

    arrays = {}
    with h5py.File(model_dir / "finetuned.weights.h5") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if hasattr(obj, "shape") else None)
    return arrays


def test_two_workers_finish_with_identical_weights_and_a_falling_loss(task, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for i in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            finetune_command(task, tmp_path / f"worker{i}", "--strategy", "multiworker",
                             "--head-epochs", "3", "--epochs", "4"),
            cwd=ROOT, env=environment(TF_CONFIG=json.dumps(config)), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-2000:]
    metas = [json.loads((tmp_path / f"worker{i}" / "finetuned.json").read_text())
             for i in range(2)]
    assert [m["training"]["worker"] for m in metas] == [0, 1]
    assert all(m["training"]["workers"] == 2 and m["training"]["strategy"] == "multiworker"
               for m in metas)
    a, b = weights_of(tmp_path / "worker0"), weights_of(tmp_path / "worker1")
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:  # all-reduced gradients: the replicas never diverge
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    for meta in metas:
        losses = [v for phase in meta["phases"] for v in phase["history"]["loss"]]
        assert losses[-1] < losses[0], losses
    assert metas[0]["phases"] == metas[1]["phases"]  # same (all-reduced) metrics


def test_killed_run_resumes_to_the_uninterrupted_result(task, tmp_path):
    settings = ("--head-epochs", "4", "--epochs", "12", "--patience", "100")
    done = subprocess.run(finetune_command(task, tmp_path / "a", *settings), cwd=ROOT,
                          env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    killed = subprocess.Popen(finetune_command(task, tmp_path / "b", *settings), cwd=ROOT,
                              env=environment(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    tracker = tmp_path / ".b.partial" / "state" / "unfrozen.tracker.json"
    epochs = 0
    deadline = time.monotonic() + TIMEOUT
    while killed.poll() is None and time.monotonic() < deadline:
        try:
            epochs = len(json.loads(tracker.read_text())["history"]["val_loss"])
        except (OSError, ValueError, KeyError):
            epochs = 0
        if epochs >= 5:
            killed.send_signal(signal.SIGKILL)  # wherever it is in its 6th epoch
            break
        time.sleep(0.005)
    killed.wait(timeout=TIMEOUT)
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (tmp_path / "b").exists() and (tmp_path / ".b.partial").is_dir()

    resumed = subprocess.run(finetune_command(task, tmp_path / "b", *settings), cwd=ROOT,
                             env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "resuming the interrupted run" in resumed.stdout
    assert "phase 'head' was finished by the interrupted run" in resumed.stdout
    assert "resumed after epoch" in resumed.stdout
    assert not (tmp_path / ".b.partial").exists()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        p.name for p in (tmp_path / "a").iterdir())
    a, b = [json.loads((tmp_path / d / "finetuned.json").read_text()) for d in "ab"]
    assert b["training"]["resumed"] and not a["training"]["resumed"]
    # Batches are keyed by step and BackupAndRestore brings back the optimizer: the resumed
    # run is the uninterrupted one, to the bit (the tiny model has no dropout, whose masks
    # would not be replayed).
    assert a["phases"] == b["phases"] and a["metrics"] == b["metrics"]
    wa, wb = weights_of(tmp_path / "a"), weights_of(tmp_path / "b")
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_a_partial_run_with_other_settings_is_discarded(task, tmp_path):
    partial = tmp_path / ".m.partial" / "state"
    partial.mkdir(parents=True)
    (partial / "fingerprint.json").write_text('{"other": 1}')
    code = main(finetune_command(task, tmp_path / "m", "--head-epochs", "1", "--epochs", "1")[3:])
    assert code == 0 and (tmp_path / "m" / "finetuned.json").is_file()
    assert not (tmp_path / ".m.partial").exists()


def test_mirrored_strategy_in_process(task, tmp_path):
    from zoo.finetune import finetune

    data, weights = task
    meta = finetune("bilstm_activity_tiny", data, tmp_path / "m", weights=weights,
                    strategy="mirrored", head_epochs=1, epochs=2, verbose=0)
    assert meta["training"]["strategy"] == "mirrored" and meta["training"]["workers"] == 1


GOOD = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker",
                                                                         "index": 1}}


@pytest.mark.parametrize("text, match", [
    (None, "needs TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"cluster": {}}', "no cluster.worker list"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     r"job\(s\) \['ps'\]"),
    ('{"cluster": {"worker": ["a:1"], "chief": ["c:3"]}, "task": {"type": "worker", '
     '"index": 0}}', r"job\(s\) \['chief'\]"),
    ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}',
     "not host:port"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "twice"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "task must be"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     r"index 1 is not in 0..0"),
])
def test_malformed_tf_config(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_tf_config(text)


def test_tf_config_and_strategy_names():
    assert parse_tf_config(json.dumps(GOOD)) == Cluster(("127.0.0.1:1", "127.0.0.1:2"), 1)
    assert not parse_tf_config(json.dumps(GOOD)).is_chief
    with pytest.raises(ConfigError, match=r"unknown strategy 'horovod'; expected one of"):
        get_strategy("horovod")


@pytest.mark.parametrize("extra, env, match", [
    (("--strategy", "horovod"), {}, "unknown strategy 'horovod'"),
    (("--strategy", "multiworker"), {"TF_CONFIG": "{oops"}, "TF_CONFIG is not valid JSON"),
    (("--strategy", "multiworker"), {}, "needs TF_CONFIG"),
])
def test_cli_refuses_bad_strategies_without_a_traceback(task, tmp_path, monkeypatch, capsys,
                                                        extra, env, match):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(finetune_command(task, tmp_path / "m", *extra)[3:])
    _, err = capsys.readouterr()
    assert code == 2 and match in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("index", [0, 1])
def test_a_worker_whose_peer_never_starts_gives_up_and_names_it(task, tmp_path, index):
    # without the join deadline this process waits forever (and ignores SIGTERM)
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    started = time.monotonic()
    run = subprocess.run(finetune_command(task, tmp_path / "m", "--strategy", "multiworker"),
                         cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                         env=environment(TF_CONFIG=json.dumps(config),
                                         LSTM_ZOO_CLUSTER_TIMEOUT="4"))
    assert time.monotonic() - started < 120
    # TensorFlow's own log lines of the failed barrier follow ours on stderr
    last = next(line for line in run.stderr.splitlines() if "cluster did not form" in line)
    missing = (f"worker 1 ({workers[1]}) did not join" if index == 0
               else f"worker 0 ({workers[0]}), which forms the cluster, did not answer")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"this is worker {index} of 2): the cluster did not form within 4 s: {missing}" \
        in last, last
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("value, expected", [
    (None, 300.0), ("12.5", 12.5), ("604800", 604800.0), ("0", None), ("1e-4", None),
    ("-3", None), ("soon", None), ("inf", None), ("nan", None), ("1e20", None)])
def test_cluster_timeout_setting(monkeypatch, value, expected):
    from zoo.distribute import CLUSTER_TIMEOUT_ENV, cluster_timeout

    if value is None:
        monkeypatch.delenv(CLUSTER_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(CLUSTER_TIMEOUT_ENV, value)
    if expected is None:
        with pytest.raises(ConfigError, match=f"number of seconds from 1 to 604800; got "
                                              f"'{value}'"):
            cluster_timeout()
    else:
        assert cluster_timeout() == expected


def test_two_workers_train_a_recipe_to_the_same_weights(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for i in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "export.cli", "train", "bilstm_activity_tiny", "--out",
             str(tmp_path / f"worker{i}"), "--strategy", "multiworker"],
            cwd=ROOT, env=environment(TF_CONFIG=json.dumps(config)), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-2000:]
    metas = [json.loads(next((tmp_path / f"worker{i}").glob("*.json")).read_text())
             for i in range(2)]
    assert metas[0]["sha256"] == metas[1]["sha256"]  # the same weights file, to the byte
    assert [m["training"]["worker"] for m in metas] == [0, 1]
    assert metas[0]["recipe"]["batches"] == "keyed by step"
    assert (tmp_path / "worker0" / "logs" / "bilstm_activity_tiny.basicmotions").is_dir()


def test_train_mirrored_in_process_and_its_logs(tmp_path):
    from zoo.train import train

    meta = train("seq2seq_g2p_tiny", out_dir=tmp_path, strategy="mirrored", epochs=1,
                 limit=256, verbose=0)
    assert meta["training"]["strategy"] == "mirrored"
    events = list((tmp_path / "logs" / "seq2seq_g2p_tiny.cmudict" / "train").glob("events.*"))
    assert events and events[0].stat().st_size > 0


def test_multiworker_seq2seq_training_is_refused_with_the_reason(capsys, tmp_path):
    code = main(["train", "seq2seq_g2p_tiny", "--out", str(tmp_path), "--strategy",
                 "multiworker"])
    _, err = capsys.readouterr()
    assert code == 2 and "keras Sequence" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_a_cluster_that_did_not_form_names_the_late_workers_only():
    from zoo.distribute import _not_formed

    # TensorFlow 2.21's barrier message: the first task to arrive, then the late ones
    text = ("Barrier timed out. Id: [Init]Wait_for_all_tasks_to_register::0. # of tasks that "
            "reached the barrier: 2/3.\nThe first task at the barrier: "
            "/job:worker/replica:0/task:1. Some timed out task names:\n"
            "/job:worker/replica:0/task:2\n")
    cluster = Cluster(("h0:1", "h1:2", "h2:3"), 0)
    lost = _not_formed(RuntimeError(text), cluster, 5)
    assert "worker 2 (h2:3) did not join" in str(lost) and "worker 1" not in str(lost)
    assert lost.worker == 2
    assert "a worker did not join" in str(_not_formed(RuntimeError("Deadline Exceeded"),
                                                       cluster, 5))
    late = _not_formed(RuntimeError("Deadline Exceeded"), Cluster(("h0:1", "h1:2"), 1), 5)
    assert "worker 0 (h0:1), which forms the cluster, did not answer" in str(late)
    assert late.worker == 0
