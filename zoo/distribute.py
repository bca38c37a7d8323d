"""Training on tf.distribute: one machine, or N workers configured by ``TF_CONFIG``.

``--strategy`` picks the engine; nothing here reimplements it:

- ``default``: no distribution (TensorFlow's default strategy).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over this machine's devices.
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy``; every worker runs the
  same command with its own ``TF_CONFIG``, e.g. for worker 1 of 2::

      TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                  "task": {"type": "worker", "index": 1}}'

  Gradients are all-reduced each step, so every worker ends with the same weights;
  worker 0 is the chief.

Multi-worker collectives must be configured before TensorFlow runs its first op, so
:func:`get_strategy` is called first thing by the training entry points.

A worker that never starts, or dies before the cluster forms, would leave the others
waiting forever (measured: worker 0 of 2 alone still waited after 10 minutes, and ignored
SIGTERM). :func:`get_strategy` gives the cluster ``$LSTM_ZOO_CLUSTER_TIMEOUT`` seconds
(default 300) to form, through TensorFlow's coordination service (every task registers at a
barrier), and raises a :class:`~zoo.errors.WorkerLostError` saying who was missing.

A worker killed mid-training (measured: SIGKILL of worker 1 of 2 in its second epoch)
breaks the next all-reduce: the survivor's collective fails within seconds (4.6 s) with
TensorFlow's ``UnavailableError`` ("Connection reset by peer" from ``/job:worker/
replica:0/task:1``). :func:`worker_faults` turns that into a
:class:`~zoo.errors.WorkerLostError` naming the dead worker; nothing is published (the
weights file is written only after training), and a fine-tuning run keeps its
checkpoints to resume from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from zoo.errors import ConfigError, WorkerLostError

STRATEGIES = ("default", "mirrored", "multiworker")
# Seconds every worker of a multi-worker run has to start and join: workers are started by
# hand or by a scheduler, on other machines, so the wait is a setting.
CLUSTER_TIMEOUT_ENV = "LSTM_ZOO_CLUSTER_TIMEOUT"
CLUSTER_TIMEOUT = 300.0
# At most a week: TensorFlow takes the wait in milliseconds (0 would mean forever; a
# value past its integer range is refused by protobuf with a traceback).
MAX_CLUSTER_TIMEOUT = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster: ``workers`` addresses and its ``index``."""

    workers: tuple[str, ...] = ()
    index: int = 0

    @property
    def size(self) -> int:
        return max(len(self.workers), 1)

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def parse_tf_config(text: str | None) -> Cluster:
    """Validates a ``TF_CONFIG`` JSON string for multi-worker training.

    Raises:
        ConfigError: absent, not JSON, or not a worker cluster this process belongs to.
    """
    expected = ('expected e.g. {"cluster": {"worker": ["host0:port", "host1:port"]}, '
                '"task": {"type": "worker", "index": 0}}')
    if not text:
        raise ConfigError(f"--strategy multiworker needs TF_CONFIG in the environment; "
                          f"{expected}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e}); {expected}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object; got {type(config).__name__}; "
                          f"{expected}")
    cluster, task = config.get("cluster"), config.get("task")
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers:
        raise ConfigError(f"TF_CONFIG has no cluster.worker list; {expected}")
    other = sorted(set(cluster) - {"worker"})
    if other:
        raise ConfigError(f"TF_CONFIG cluster has job(s) {other}; multiworker training uses "
                          "'worker' only")
    for address in workers:
        host, sep, port = str(address).rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"TF_CONFIG worker address {address!r} is not host:port")
    if len(set(workers)) != len(workers):
        raise ConfigError(f"TF_CONFIG lists a worker address twice: {workers}")
    if not isinstance(task, dict) or task.get("type") != "worker":
        raise ConfigError(f"TF_CONFIG task must be {{'type': 'worker', 'index': i}}; got "
                          f"{task!r}")
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG task index {index!r} is not in 0..{len(workers) - 1}")
    return Cluster(tuple(str(w) for w in workers), index)


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; expected one of {list(STRATEGIES)}")


def get_strategy(name: str = "default") -> tuple[Any, Cluster]:
    """The tf.distribute strategy called ``name`` and this process's :class:`Cluster`.

    Raises:
        ConfigError: an unknown name, or a missing / malformed ``TF_CONFIG`` for
            ``multiworker``.
    """
    check_strategy(name)
    if name == "multiworker":
        cluster = parse_tf_config(os.environ.get("TF_CONFIG"))
    else:
        cluster = Cluster()
    from zoo._keras import tf

    if name == "multiworker":
        timeout = cluster_timeout()
        _join_deadline(tf, timeout)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(), cluster
        except tf.errors.DeadlineExceededError as e:
            raise _not_formed(e, cluster, timeout) from None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(), cluster
    return tf.distribute.get_strategy(), cluster


def cluster_timeout() -> float:
    """``$LSTM_ZOO_CLUSTER_TIMEOUT`` (seconds for the cluster to form), else 300.

    Raises:
        ConfigError: a value that is not a number of seconds from 1 to 7 days.
    """
    text = os.environ.get(CLUSTER_TIMEOUT_ENV)
    if text is None:
        return CLUSTER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 1 <= seconds <= MAX_CLUSTER_TIMEOUT:
        raise ConfigError(f"{CLUSTER_TIMEOUT_ENV} must be a number of seconds from 1 to "
                          f"{MAX_CLUSTER_TIMEOUT:g}; got {text!r}")
    return seconds


def _join_deadline(tf, seconds: float) -> None:
    """Configures TensorFlow's coordination service as MultiWorkerMirroredStrategy does for
    a cluster of workers (worker 0 leads; :func:`parse_tf_config` admits no other job),
    with every task registering at a barrier that times out after ``seconds``; the
    strategy keeps a service configured before it. The barrier flag has no public
    setter: it is set on the context's config (``tests/test_distributed.py`` fails if
    that stops bounding the wait)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2 as pb
    from tensorflow.python.eager import context

    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    context.context().configure_coordination_service(
        service_type="standalone", service_leader="/job:worker/replica:0/task:0",
        cluster_register_timeout_in_ms=int(seconds * 1000),
        coordinated_jobs=[pb.CoordinatedJob(name="worker", num_tasks=spec.num_tasks("worker"))])
    context.context().coordination_service.cluster_register_with_barrier = True


def _not_formed(error: BaseException, cluster: Cluster, seconds: float) -> WorkerLostError:
    """The error of a cluster that did not form: the leader's barrier names the tasks that
    never registered; another worker only knows the leader did not answer."""
    # the barrier's message names the first task to arrive, then the ones that timed out
    _, _, late = str(error).partition("timed out task names:")
    missing = sorted({int(t) for t in re.findall(r"/job:worker/replica:\d+/task:(\d+)", late)
                      if int(t) < cluster.size} - {cluster.index})
    if cluster.index == 0:
        what = (", ".join(f"worker {i} ({cluster.workers[i]})" for i in missing)
                if missing else "a worker") + " did not join"
    else:
        what = f"worker 0 ({cluster.workers[0]}), which forms the cluster, did not answer"
    return WorkerLostError(
        f"multi-worker training (this is worker {cluster.index} of {cluster.size}): the "
        f"cluster did not form within {seconds:g} s: {what}; start every worker with the "
        f"same command and its own TF_CONFIG (or give them longer: {CLUSTER_TIMEOUT_ENV})",
        missing[0] if len(missing) == 1 else (0 if cluster.index else None))


# TensorFlow's errors when a collective's peer is gone (by class name: this module imports
# no TensorFlow before get_strategy).
_PEER_ERRORS = ("UnavailableError", "AbortedError", "DeadlineExceededError", "CancelledError")


def lost_worker(error: BaseException, cluster: Cluster) -> WorkerLostError | None:
    """The :class:`~zoo.errors.WorkerLostError` that ``error`` (raised by a multi-worker
    step) means, or ``None`` when it is not a lost peer."""
    if cluster.size < 2 or type(error).__name__ not in _PEER_ERRORS \
            or not type(error).__module__.startswith("tensorflow"):
        return None
    text = str(error)
    if not re.search(r"Collective ops is aborted|[Cc]onnection|peer|[Ss]ocket closed|"
                     r"unavailable|check alive|[Dd]eadline", text):
        return None
    tasks = {int(t) for t in re.findall(r"/job:worker/replica:\d+/task:(\d+)", text)}
    tasks.discard(cluster.index)
    worker = min(tasks) if len(tasks) == 1 and min(tasks) < cluster.size else None
    reason = re.search(r"Collective ops is aborted by: ([^\n]+)", text)
    reason = (reason[1] if reason else text.strip().splitlines()[0]).strip()[:200]
    who = (f"worker {worker} ({cluster.workers[worker]})" if worker is not None
           else "a peer worker")
    return WorkerLostError(
        f"multi-worker training (this is worker {cluster.index} of {cluster.size}) lost "
        f"{who}: {reason}; every worker must run to the end: restart all {cluster.size} "
        "workers with the same command", worker)


@contextlib.contextmanager
def worker_faults(cluster: Cluster, note: str = ""):
    """Turns a multi-worker step that failed because a peer died into a
    :class:`~zoo.errors.WorkerLostError` (``note`` appended: what was kept)."""
    try:
        yield
    except Exception as e:
        lost = lost_worker(e, cluster)
        if lost is None:
            raise
        if note:
            lost.args = (f"{lost.args[0]} ({note})",)
        raise lost from None
