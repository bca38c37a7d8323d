"""One bundle's runners shared by threads: ``python -m benchmarks.threads``.

Exports each model (fp32), then times predictions per second through one set of the
bundle's runners called from 1, 2 (the machine's cores) and 8 threads at once
(``task.predict`` of one test input per call, as a server's threads would), for:

- ``litert``: :class:`export.verification.runtime.LiteRTRunner` as shipped, one
  interpreter behind a lock;
- ``litert-per-thread``: the other way, an interpreter per thread (:func:`per_thread`);
- ``onnx``: one ONNX Runtime session, which runs concurrent calls itself;
- ``keras``: the reference Keras graphs (a tf.function each; TensorFlow on one intra-op
  thread, as the edge runtimes run).

Configs alternate in rounds, blocks of at least :data:`BLOCK_SECONDS` in a shuffled order
(:func:`benchmarks.measure.in_rounds`): a 2-core machine shared with others drifts, and a
ratio within a round compares the same moment. The threads are a pool warmed beforehand
(a server's threads live long: a per-thread interpreter is made on the thread's first
call, not timed). Also reported: the two LiteRT schemes' ratio in each round, whether
every thread's predictions are byte-identical to one thread's, and what the seven more
threads' interpreters cost in RSS.

Writes benchmarks/results/threads.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, save, stamp

MODELS = ("lstm_forecaster_co2", "bilstm_activity")
CONFIGS = ("litert", "litert-per-thread", "onnx", "keras")
THREADS = (2, 8)  # besides 1: as many as the machine's cores, and the 8
SAMPLES = 24  # a block is whole passes over them: a multiple of 8 shares evenly
# A block of 8 threads ends with its slowest thread: at 0.1 s (measure's blocks), 20 calls
# of bilstm_activity gave 8 threads two or three each.
BLOCK_SECONDS = 0.5


def per_thread():
    """The LiteRT runner class with an interpreter per thread (the scheme not shipped)."""
    from export.verification.runtime import LiteRTRunner, _Interpreter

    class PerThread(LiteRTRunner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._local = threading.local()
            self._local.interpreter = self._interpreter

        def _run(self, feeds):
            try:
                mine = self._local.interpreter
            except AttributeError:
                mine = self._local.interpreter = _Interpreter(self.path, self.threads)
            return mine(feeds)

    return PerThread


def graphs(bundle, config: str) -> dict:
    """The runners of ``config`` (a backend, or ``litert-per-thread``) at fp32."""
    if config != "litert-per-thread":
        return bundle.runners(config, "fp32")
    runner = per_thread()
    found = {a["graph"]: a for a in bundle.artifacts
             if a["format"] == "tflite" and a["precision"] == "fp32"}
    return {g: runner(bundle.path / a["file"], bundle.graph_inputs(g)) for g, a in found.items()}


class Pool:
    """``threads`` long-lived threads that run a block of calls split among ``n`` of them."""

    def __init__(self, threads: int):
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads)

    def run(self, n: int, work, calls: int) -> list:
        """``work(j)`` for ``j`` in ``range(calls)``, thread ``i`` of ``n`` taking every
        ``n``-th from ``i``; the results in ``j``'s order."""
        start = threading.Barrier(n)

        def part(i):
            start.wait()  # n distinct pool threads, started together
            return [work(j) for j in range(i, calls, n)]

        parts = [f.result() for f in [self._pool.submit(part, i) for i in range(n)]]
        out = [None] * calls
        for i, values in enumerate(parts):
            out[i::n] = values
        return out

    def close(self):
        self._pool.shutdown()


def run_model(name: str, *, weights="DEFAULT", bundle: Path | None = None,
              configs=CONFIGS, threads=THREADS, budget: float = 60.0, rounds: int = 200,
              samples: int = SAMPLES) -> dict:
    """Times ``configs`` from 1 thread and from each of ``threads`` (see the module's
    docstring); exports ``name`` unless given its ``bundle``."""
    from benchmarks.measure import in_rounds, rss_mb, sample_inputs
    from export import export_model
    from export.verification.runtime import load_bundle

    most = max(threads)  # the pool's threads
    with tempfile.TemporaryDirectory() as tmp:
        if bundle is None:
            bundle = Path(tmp) / name
            export_model(name, bundle, weights=weights, precisions="fp32")
        b = load_bundle(bundle)
        if "keras" in configs:
            from zoo._keras import tf

            try:  # TensorFlow's pool is fixed once it started
                tf.config.threading.set_intra_op_parallelism_threads(1)
            except RuntimeError:
                pass
        task, meta = b.task, b.meta
        inputs = sample_inputs(b.manifest, samples)
        systems = {c: graphs(b, c) for c in configs}
        pool = Pool(most)
        try:
            def block(config, n, calls):
                g = systems[config]
                return pool.run(n, lambda j: task.predict(g, [inputs[j % len(inputs)]], meta),
                                calls)

            reference = {c: block(c, 1, len(inputs)) for c in configs}
            rss_one = rss_mb()
            identical = {c: all(np.asarray(a).tobytes() == np.asarray(z).tobytes()
                                for a, z in zip(reference[c], block(c, most, len(inputs)),
                                                strict=True))
                         for c in configs}  # also makes every pool thread's interpreters
            rss_most = rss_mb()

            cores: dict[str, list[float]] = {}  # the process's CPU seconds per second

            def run_block(key, calls):
                config, n = key.rsplit("/", 1)
                cpu, start = time.process_time(), time.perf_counter()
                block(config, int(n), calls)
                wall = time.perf_counter() - start
                cores.setdefault(key, []).append((time.process_time() - cpu) / wall)
                return wall / calls * 1e6

            keys = [f"{c}/{n}" for c in configs for n in (1, *threads)]
            per_call = {k: run_block(k, len(inputs)) / 1e6 for k in keys}  # after warm-up
            timed = in_rounds(run_block, per_call, len(inputs),
                              {"budget_seconds": budget, "rounds": rounds,
                               "block_seconds": BLOCK_SECONDS,
                               "references": [f"{c}/1" for c in configs] +
                               [f"litert/{n}" for n in (1, *threads)]})
        finally:
            pool.close()
    rows = []
    for c in configs:
        us = {n: timed["median_us"][f"{c}/{n}"] for n in (1, *threads)}
        # a speed-up is one thread's time per prediction over n threads': per round
        ratios = {n: timed["ratios"][f"{c}/1"][f"{c}/{n}"] for n in threads}
        rows.append({"config": c, "per_s": {n: 1e6 / t for n, t in us.items()},
                     "cores": {n: float(np.median(cores[f"{c}/{n}"])) for n in us},
                     "speedup": {n: {"median": 1 / r["median"], "q25": 1 / r["q75"],
                                     "q75": 1 / r["q25"]} for n, r in ratios.items()},
                     "identical": identical[c]})
    if {"litert", "litert-per-thread"} <= set(configs):  # the two schemes, round by round
        lock = {n: timed["ratios"][f"litert/{n}"][f"litert-per-thread/{n}"]
                for n in (1, *threads)}
        rows[configs.index("litert-per-thread")]["vs_lock"] = {
            n: {"median": 1 / r["median"], "q25": 1 / r["q75"], "q75": 1 / r["q25"]}
            for n, r in lock.items()}
    return {"model": name, "threads": list(threads), "samples": len(inputs),
            "rounds": timed["rounds"], "calls_per_block": timed["calls_per_block"],
            "rss_mb_one_thread": rss_one, "rss_mb_most_threads": rss_most, "rows": rows}


def markdown(results: dict) -> str:
    lines = [f"Measured {results['date']} on {results['machine']}: `{results['command']}`. "
             "Predictions per second through one bundle's fp32 runners, one test input per "
             "call, from 1 thread and from n at once; speed-up: n threads' throughput over "
             "1 thread's, the median (quartiles) of the per-round ratios; cores used: the "
             "process's CPU seconds per second meanwhile (at most the cores the machine gave "
             "it: LiteRT and ONNX Runtime compute without holding Python's lock)."]
    for m in results["models"]:
        ns, most = m["threads"], max(m["threads"])
        lines += ["", f"### {m['model']}", "",
                  f"{m['rounds']} rounds over {m['samples']} test inputs. RSS "
                  f"{m['rss_mb_one_thread']:.1f} MB with every config warmed on one thread, "
                  f"{m['rss_mb_most_threads']:.1f} MB once {most} threads had run each (their "
                  "interpreters made).", "",
                  "| config | 1 thread /s | " + " | ".join(
                      f"{n} threads /s | speed-up | cores used" for n in ns) +
                  " | answers identical |",
                  "|---|---|" + "---|---|---|" * len(ns) + "---|"]
        for r in m["rows"]:
            per_s = {int(n): v for n, v in r["per_s"].items()}  # JSON keys are strings
            up = {int(n): v for n, v in r["speedup"].items()}
            used = {int(n): v for n, v in r["cores"].items()}
            cells = [f"{per_s[n]:,.0f} | {up[n]['median']:.2f}x ({up[n]['q25']:.2f}-"
                     f"{up[n]['q75']:.2f}) | {used[n]:.2f}" for n in ns]
            lines.append(f"| {r['config']} | {per_s[1]:,.0f} | " + " | ".join(cells) +
                         f" | {'yes' if r['identical'] else 'NO'} |")
        vs = next((r["vs_lock"] for r in m["rows"] if "vs_lock" in r), None)
        if vs:
            lines += ["", "litert-per-thread over litert (the lock), throughput in the same "
                      "round: " + ", ".join(
                          f"{n} thread{'s' * (int(n) > 1)} {v['median']:.2f}x ({v['q25']:.2f}-"
                          f"{v['q75']:.2f})" for n, v in vs.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--budget", type=float, default=60.0, help="seconds of rounds per model")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.threads", argv),
               "models": [run_model(m, configs=args.configs.split(","), budget=args.budget)
                          for m in args.models.split(",")]}
    save(results, markdown(results), args.out, "threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
