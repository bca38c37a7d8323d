"""Parity: exported artifacts against Keras, on tensors and on the task metric.

Tensor parity compares, on every backend, the outputs for graph inputs that Keras saw
while running the task on real data (a fixed-seed sample of at most
:data:`MAX_RECORDED_FEEDS` per graph; for seq2seq, decoder steps along Keras' own greedy
path), plus fixed-seed random inputs drawn from each graph's signature: those the
backend's own task pass meets again are compared there, the others are replayed. Task
parity runs the task end to end on each backend on the real test split and compares the
metric and each prediction with Keras. Limits come from the spec, with their reasons.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

MIN_TENSOR_SAMPLES = 200
RANDOM_FEEDS = 16
# batch-1 feeds kept per graph (a batched call gives one per row): bounds memory and replay
# time for step graphs, called once per frame or token (seq2seq: ~8 per word)
MAX_RECORDED_FEEDS = 4000
LATENCY_RUNS = 50
REFERENCE_BATCH = 64


class Recorder:
    """Wraps a graph callable and keeps batch-1 copies of the feeds it was called with: a
    batched call counts as one feed per row. Keeps the first ``limit`` feeds, or with a
    ``seed``, a uniform sample of ``limit`` of all the feeds it saw (reservoir sampling:
    the late steps of a long stream are as likely to be kept as the early ones). With
    ``outputs``, keeps each kept feed's output row too (``self.outputs``, in step with
    ``self.feeds``): the reference outputs, without running the graph again."""

    def __init__(self, graph, limit: int = MAX_RECORDED_FEEDS, seed: int | None = None,
                 outputs: bool = False):
        self.graph, self.limit, self.feeds, self.seen = graph, limit, [], 0
        self.outputs: list | None = [] if outputs else None
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __call__(self, feeds):
        rows = {len(v) for v in feeds.values()}
        if len(rows) != 1:
            raise ValueError(f"feeds of one call must share their batch axis; got "
                             f"{ {k: np.shape(v) for k, v in feeds.items()} }")
        rows = rows.pop()
        result = self.graph(feeds)
        for i in range(rows):
            if len(self.feeds) < self.limit:
                slot = len(self.feeds)
                self.feeds.append(None)
                if self.outputs is not None:
                    self.outputs.append(None)
            elif self._rng is not None:
                slot = int(self._rng.integers(0, self.seen + 1))
            else:
                break
            if slot < self.limit:
                self.feeds[slot] = {k: np.array(v[i : i + 1]) for k, v in feeds.items()}
                if self.outputs is not None:
                    self.outputs[slot] = {k: np.array(np.asarray(v)[i : i + 1])
                                          for k, v in result.items()}
            self.seen += 1
        return result


def batched_outputs(graph, feeds: list[dict], batch: int) -> list[dict]:
    """``[graph(f) for f in feeds]`` for batch-1 feeds, computed ``batch`` feeds of one
    shape at a time (Keras runs any batch; a call costs milliseconds whatever its size)."""
    out: list = [None] * len(feeds)
    groups: dict = {}
    for i, f in enumerate(feeds):
        groups.setdefault(tuple((k, v.shape, v.dtype.str) for k, v in sorted(f.items())),
                          []).append(i)
    for members in groups.values():
        for start in range(0, len(members), batch):
            chunk = members[start : start + batch]
            result = graph({k: np.concatenate([feeds[i][k] for i in chunk])
                            for k in feeds[chunk[0]]})
            for row, i in enumerate(chunk):
                out[i] = {k: np.asarray(v)[row : row + 1] for k, v in result.items()}
    return out


def random_feeds(graph_model, count: int, seed: int = 0,
                 lengths: list[int] | None = None) -> list[dict[str, np.ndarray]]:
    """Fixed-seed inputs for a graph: N(0,1) floats, uniform ids for integer inputs; time
    axes of 3-15 steps, or of ``lengths`` in turn (a graph that takes only some lengths)."""
    from export.conversion.graphs import input_infos, int_input_ranges

    rng = np.random.default_rng(seed)
    ranges = int_input_ranges(graph_model)
    feeds = []
    for k in range(count):
        # varied lengths exercise the dynamic time axis
        time_len = lengths[k % len(lengths)] if lengths else 3 + k % 13
        feed = {}
        for info in input_infos(graph_model):
            shape = [1] + [time_len if d is None else d for d in info.shape[1:]]
            if info.name in ranges:  # ids
                feed[info.name] = rng.integers(0, ranges[info.name], shape).astype(info.dtype)
            else:
                feed[info.name] = rng.standard_normal(shape).astype(info.dtype)
        feeds.append(feed)
    return feeds


def diff_stats(ref: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], acc: dict,
               relative: Mapping[str, float] | None = None) -> None:
    """Accumulates per-output |got - ref|: max, sum, count, and the max excess over a
    relative allowance, ``|got - ref| - relative[name] * |ref|`` (the quantity an
    allclose-style bound compares with its absolute part)."""
    relative = relative or {}
    for name, r in ref.items():
        r = np.asarray(r, np.float64)
        d = np.abs(np.asarray(got[name], np.float64) - r)
        entry = acc.setdefault(name, {"max_abs": 0.0, "sum_abs": 0.0, "count": 0,
                                      "max_excess": -np.inf})
        entry["max_abs"] = max(entry["max_abs"], float(d.max(initial=0.0)))
        excess = d - relative.get(name, 0.0) * np.abs(r)
        entry["max_excess"] = max(entry["max_excess"], float(excess.max(initial=0.0)))
        entry["sum_abs"] += float(d.sum())
        entry["count"] += d.size


def finish_stats(acc: dict, relative: Mapping[str, float] | None = None) -> dict:
    out = {}
    for name, e in acc.items():
        out[name] = {"max_abs": e["max_abs"], "mean_abs": e["sum_abs"] / max(e["count"], 1)}
        if name in (relative or {}):
            out[name]["relative"] = relative[name]
            out[name]["max_excess"] = e["max_excess"]
    return out


def latency_ms(graph, feed, runs: int = LATENCY_RUNS) -> dict[str, float]:
    graph(feed)  # warm-up (allocation, resize)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        graph(feed)
        times.append((time.perf_counter() - t) * 1e3)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}


class Reference:
    """Keras' run of the task, with the graph feeds it produced, to compare against."""

    def __init__(self, spec, graph_models, task, test_data, tensor_inputs, progress=None):
        from zoo.graphs import KerasGraph

        self.graph_models = graph_models
        self.graphs = {n: KerasGraph(m) for n, m in self.graph_models.items()}
        self.test_inputs = task.inputs(test_data)
        # One batched Keras pass over the test split gives the predictions, and records
        # the graph feeds to replay with their outputs: a fixed-seed sample of every graph
        # call (a streamed step graph is called once per frame: 34k times for the keyword
        # spotter, 80 s at batch 1 in Keras, 2 s batched), replayed at batch 1. The tensor
        # inputs begin with the test inputs (all of them, or the first N); those that
        # follow (calibration samples, crops) get a pass of their own, inputs of one shape
        # batched together (crops of varied lengths do not stack).
        recorders = {n: Recorder(g, seed=0, outputs=True) for n, g in self.graphs.items()}
        shared = _shared_prefix(tensor_inputs, self.test_inputs)

        def predict(graphs, inputs, counter=progress):
            return task.predict(graphs, inputs, spec.meta, counter, batch_size=REFERENCE_BATCH)

        if 0 < shared < len(self.test_inputs):
            first = predict(recorders, self.test_inputs[:shared])
            rest = predict(self.graphs, self.test_inputs[shared:])
            self.predictions = (np.concatenate([first, rest]) if isinstance(rest, np.ndarray)
                                else [*first, *rest])
        else:
            self.predictions = predict(recorders if shared else self.graphs, self.test_inputs)
        self.metrics = task.score(self.predictions, test_data, spec.meta)
        by_shape: dict = {}
        for x in tensor_inputs[shared:]:
            by_shape.setdefault(() if isinstance(x, str) else np.shape(x), []).append(x)
        for group in by_shape.values():
            predict(recorders, group, None)
        self.tensor_samples = len(tensor_inputs)
        # latency is timed on the first test input's first call (a whole series; a stream's
        # first frame), taken at batch 1: the batched pass may begin with another input
        firsts = {n: Recorder(g, limit=1) for n, g in self.graphs.items()}
        task.predict(firsts, self.test_inputs[:1], spec.meta)
        self.latency_feeds = {n: r.feeds[0] for n, r in firsts.items() if r.feeds}
        lengths = task.feed_lengths(spec.meta)
        self.feeds, self.outputs = {}, {}
        for n, m in self.graph_models.items():
            extra = random_feeds(m, RANDOM_FEEDS, lengths=lengths)
            self.feeds[n] = recorders[n].feeds + extra
            self.outputs[n] = recorders[n].outputs + batched_outputs(self.graphs[n], extra,
                                                                     REFERENCE_BATCH)


def _shared_prefix(tensor_inputs, test_inputs) -> int:
    """How many of the first tensor inputs are the first test inputs."""
    def same(a, b) -> bool:
        if isinstance(a, str) or isinstance(b, str):
            return isinstance(a, str) and isinstance(b, str) and a == b
        if isinstance(a, Mapping) or isinstance(b, Mapping):  # a sample of several inputs
            return isinstance(a, Mapping) and isinstance(b, Mapping) and a.keys() == \
                b.keys() and all(same(a[k], b[k]) for k in a)
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))

    n = 0
    while n < min(len(tensor_inputs), len(test_inputs)) and \
            same(tensor_inputs[n], test_inputs[n]):
        n += 1
    return n


def _feed_key(feeds) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(feeds):
        v = np.ascontiguousarray(feeds[name])
        digest.update(f"{name}|{v.dtype.str}|{v.shape}|".encode())
        digest.update(v.data)
    return digest.digest()


class _Comparing:
    """A runner that, when called with one of the reference's recorded feeds (the same
    bytes), compares its output with the reference output there: replaying the feed
    would compute the same. ``compared`` holds the indices done; ``seconds`` the time
    spent comparing (kept out of the task pass's per-sample time)."""

    def __init__(self, runner, feeds: list[dict], outputs: list[dict], relative):
        # ``graph``, as other wrappers name what they wrap (tasks look through it)
        self.graph, self.outputs, self.relative = runner, outputs, relative
        self.acc: dict = {}
        self.compared: set[int] = set()
        self.seconds = 0.0
        self._calls = self._hits = 0
        self._index: dict[bytes, list[int]] = {}
        for i, f in enumerate(feeds):
            self._index.setdefault(_feed_key(f), []).append(i)

    def __call__(self, feeds):
        out = self.graph(feeds)
        if self._index:
            start = time.perf_counter()
            self._calls += 1
            found = self._index.pop(_feed_key(feeds), ())
            self._hits += bool(found)
            for i in found:
                diff_stats(self.outputs[i], out, self.acc, self.relative)
                self.compared.add(i)
            if self._calls >= 256 and self._hits * 16 < self._calls:
                # a graph fed the backend's own states (a decoder or stream step) seldom
                # meets a recorded feed: stop hashing its ~10,000 calls; replay instead
                self._index = {}
            self.seconds += time.perf_counter() - start
        return out


def check_backend(spec, task, reference: Reference, test_data, runners, precision,
                  progress: Callable[[int], None] | None = None,
                  metric_drop=None) -> dict[str, Any]:
    """Parity of one backend at one precision against the Keras reference.

    ``metric_drop`` (a Tolerance) replaces the spec's limit for this precision (the
    budget of ``precision="auto"``).
    """
    tol = spec.tensor_tolerance.get(precision)
    relative = tol.relative if tol is not None else {}
    # The task pass meets most recorded feeds again (the test inputs themselves, not the
    # states a stream carries, which are the backend's own): those are compared there,
    # and only the others are replayed.
    comparing = {n: _Comparing(r, reference.feeds.get(n, []), reference.outputs.get(n, []),
                               relative) for n, r in runners.items()}
    latency_feeds = {n: reference.latency_feeds.get(n, reference.feeds[n][0]) for n in runners}
    for n, runner in runners.items():  # warm-up: allocation and resizing stay out of the timing
        runner(latency_feeds[n])
    start = time.perf_counter()
    predictions = task.predict(comparing, reference.test_inputs, spec.meta, progress)
    elapsed = time.perf_counter() - start - sum(c.seconds for c in comparing.values())
    per_sample_ms = elapsed * 1e3 / max(len(reference.test_inputs), 1)
    tensors = {}
    for name, feeds in reference.feeds.items():
        c = comparing[name]
        for i, (feed, ref_out) in enumerate(zip(feeds, reference.outputs[name], strict=True)):
            if i not in c.compared:
                diff_stats(ref_out, runners[name](feed), c.acc, relative)
        tensors[name] = finish_stats(c.acc, relative)
    metrics = task.score(predictions, test_data, spec.meta)
    sign = 1 if task.higher_is_better else -1
    drop = sign * (reference.metrics[task.metric] - metrics[task.metric])
    checks = []
    worst = max(s["max_abs"] for g in tensors.values() for s in g.values())
    # What the absolute bound is compared with: |diff| itself, or for outputs with a
    # relative allowance, |diff| - relative * |ref|.
    excess = max(s.get("max_excess", s["max_abs"]) for g in tensors.values()
                 for s in g.values())
    if tol is not None:
        what = ("tensor max_abs" if not relative else
                "tensor max(|diff| - " + ", ".join(f"{r:g}*|{n}|" for n, r in
                                                   relative.items()) + ")")
        checks.append({"check": what, "value": excess, "limit": tol.value,
                       "reason": tol.reason, "passed": bool(excess <= tol.value)})
    drop_tol = metric_drop or spec.metric_drop.get(precision)
    if drop_tol is not None:
        checks.append({"check": f"{task.metric} drop", "value": drop, "limit": drop_tol.value,
                       "reason": drop_tol.reason, "passed": bool(drop <= drop_tol.value + 1e-12)})
    checks += task.checks(metrics, precision)
    agreement = task.compare(reference.predictions, predictions)
    if precision == "fp32":
        checks.append({"check": "predictions identical to Keras",
                       "value": agreement["disagreements"], "limit": 0,
                       "reason": "fp32 artifacts compute the same function as Keras",
                       "passed": agreement["disagreements"] == 0})
    latency = {n: latency_ms(runners[n], latency_feeds[n]) for n in runners}
    return {
        "tensors": tensors,
        "tensor_max_abs": worst,
        "tensor_excess": excess,
        "metrics": metrics,
        "metric_drop": drop,
        **agreement,
        "latency_ms": latency,
        "per_sample_ms": per_sample_ms,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }
