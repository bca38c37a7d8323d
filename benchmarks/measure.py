"""One measurement in a fresh process: ``python -m benchmarks.measure '<json>'``.

The JSON names a bundle, a backend (keras, litert, onnx, torch, torch-onnx, and the
OpenVINO peers openvino-static and openvino-dynamic), a precision
and a thread count; the process prints one JSON line with latency statistics and memory.
LiteRT and ONNX Runtime measurements never import TensorFlow.

With ``"configs"`` (a list of ``[backend, precision, bundle]``) instead, the process loads
all of them and times them interleaved (:func:`interleaved`): the ratios between them are
then measured under the same machine conditions, which separate processes minutes apart
are not (a cloud machine's speed drifted 1.5x within one benchmark run, measured).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WARMUP = 20
MIN_RUNS = 20  # a measurement stops short of its runs after its time budget, not before these


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    # VmHWM belongs to this process image; getrusage's ru_maxrss would report the
    # parent's peak, which a forked child inherits.
    return _status_mb("VmHWM")


def timed(fn, runs: int, budget: float = float("inf")) -> dict[str, float]:
    """Median and p90 of ``runs`` calls after up to :data:`WARMUP` untimed ones (fewer,
    at least two, once they take a quarter of ``budget``); stops after ``budget`` seconds
    of timed calls once :data:`MIN_RUNS` have run (``runs`` says how many did)."""
    end = time.perf_counter() + budget / 4
    for i in range(min(WARMUP, runs)):
        fn()
        if i >= 1 and time.perf_counter() > end:
            break
    times = []
    end = time.perf_counter() + budget
    for i in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e6)
        if i + 1 >= MIN_RUNS and t > end:
            break
    return {"median_us": float(np.median(times)), "p90_us": float(np.percentile(times, 90)),
            "runs": len(times)}


def outputs_and_time(fn, inputs, timing: int) -> tuple[np.ndarray, float]:
    """All outputs, and the mean seconds per call over the first ``timing`` inputs
    (after one warm-up pass over them)."""
    for x in inputs[:timing]:
        fn(x)
    start = time.perf_counter()
    for x in inputs[:timing]:
        fn(x)
    per_call = (time.perf_counter() - start) / max(1, min(timing, len(inputs)))
    return np.concatenate([fn(x) for x in inputs]), per_call


def sample_inputs(manifest: dict, count: int):
    """Real held-out inputs for the model's task (imports neither TensorFlow nor Keras)."""
    from zoo import datasets
    from zoo.tasks import get_task

    data = datasets.load(manifest["data"]["dataset"], manifest["data"]["test"])
    return list(get_task(manifest["task"]).inputs(data)[:count])


def graphs_for(args, bundle):
    backend, threads = args["backend"], args["threads"]
    if backend == "keras":
        from zoo._keras import tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return bundle.runners("keras")
    if backend in ("litert", "onnx"):
        return bundle.runners(backend, args["precision"], threads=threads)
    if backend.startswith("openvino-"):  # a peer runtime of the benchmark only
        from benchmarks import openvino_peer

        return openvino_peer.graphs(bundle, backend, threads)
    from benchmarks import torch_peer

    return torch_peer.graphs(bundle, backend, threads, Path(args["workdir"]))


# A config's block in a round: whole passes over the samples, at least this long. After
# 0.1 s of other work (a numpy loop), a block of 4 calls of handwriting_ctc's ORT dynamic
# graph took 885 µs a call against 614 µs back to back, and a block of 140 calls 625
# against 598 µs (one-off script, 1 thread, medians of 15): short blocks time a cold
# cache, and penalize the faster config more, since the slower one's block is longer.
BLOCK_SECONDS = 0.1
MIN_ROUNDS = 10


def interleaved(args) -> dict:
    """Times several configs of one model in rounds, in one process (:func:`in_rounds`),
    after a warm-up pass of every config over every sample. A ratio taken within a round
    compares the same samples at the same moment, so a machine that slows down for a
    while moves both sides of it.
    """
    from export.verification.runtime import Bundle

    threads = args["threads"]
    bundles: dict[str, Bundle] = {}
    systems = {}
    for backend, precision, path in args["configs"]:
        bundle = bundles.setdefault(path, Bundle(path, check_files=False))
        systems[f"{backend}/{precision}"] = (bundle, graphs_for(
            {"backend": backend, "precision": precision, "threads": threads,
             "workdir": args["workdir"]}, bundle))
    first = next(iter(bundles.values()))
    inputs = sample_inputs(first.manifest, args["samples"])

    def run_block(key, calls):
        return block_us(*systems[key], inputs, calls)

    per_call = {}
    for key in systems:  # warm up on every sample, then time a pass over them
        run_block(key, len(inputs))
        per_call[key] = run_block(key, len(inputs)) / 1e6
    return {"threads": threads, **in_rounds(run_block, per_call, len(inputs), args)}


def block_us(bundle, graphs, inputs, calls: int) -> float:
    """Mean µs per call of ``calls`` task calls through ``graphs``, one sample each,
    cycling through ``inputs`` from the first."""
    start = time.perf_counter()
    for j in range(calls):
        bundle.task.predict(graphs, [inputs[j % len(inputs)]], bundle.meta)
    return (time.perf_counter() - start) / calls * 1e6


def in_rounds(run_block, per_call: dict[str, float], samples: int, args: dict) -> dict:
    """Times configs in rounds and summarizes them (:func:`summarize`).

    ``run_block(key, calls)`` runs ``calls`` calls through config ``key``, cycling through
    the ``samples`` test samples from the first, and returns its mean µs per call;
    ``per_call`` holds each config's seconds per call from a timed pass, in the order the
    results list them. A config's block is whole passes over the samples (so every config
    averages the same samples), as many as it needs to run :data:`BLOCK_SECONDS` (or
    ``args["block_seconds"]``); each round runs every config's block, in an order shuffled
    per round (no config always runs first); rounds go on for ``args["budget_seconds"]``,
    at least :data:`MIN_ROUNDS` and at most ``args["rounds"]``.
    """
    block = float(args.get("block_seconds", BLOCK_SECONDS))
    calls = {k: samples * max(1, int(np.ceil(block / (t * samples))))
             for k, t in per_call.items()}
    rng = np.random.default_rng(0)
    budget = float(args.get("budget_seconds", 15.0))
    max_rounds = int(args.get("rounds", 200))
    rounds: list[dict[str, float]] = []
    end = time.perf_counter() + budget
    while len(rounds) < max_rounds and (len(rounds) < MIN_ROUNDS or time.perf_counter() < end):
        rounds.append({str(k): run_block(str(k), calls[str(k)])
                       for k in rng.permutation(list(per_call))})
    return {**summarize(rounds, list(per_call), args.get("references", [])),
            "calls_per_block": calls}


def summarize(rounds: list[dict[str, float]], keys, references) -> dict:
    """Per config (in the order of ``keys``) the median of its per-round times; against
    each reference config the median and quartiles of the per-round ratios."""
    table = {k: np.array([r[k] for r in rounds]) for k in keys}
    ratios = {}
    for ref in references:
        if ref not in table:
            continue
        ratios[ref] = {}
        for key, t in table.items():
            q25, q50, q75 = np.percentile(t / table[ref], [25, 50, 75])
            ratios[ref][key] = {"median": float(q50), "q25": float(q25), "q75": float(q75)}
    return {"rounds": len(rounds),
            "median_us": {k: float(np.median(t)) for k, t in table.items()},
            "ratios": ratios}


def serve(args) -> int:
    """One config kept loaded for :func:`benchmarks.run.measure_paired`.

    After a warm-up pass over the samples and a timed one, prints ``{"ready": µs per
    call}``; then for each line ``{"calls": n}`` on stdin runs ``n`` calls through the
    task, cycling through the samples from the first, and prints ``{"us": mean µs per
    call}``. An empty line or the end of stdin ends it.
    """
    from export.verification.runtime import Bundle

    bundle = Bundle(args["bundle"], check_files=False)
    inputs = sample_inputs(bundle.manifest, args["samples"])
    graphs = graphs_for(args, bundle)

    block_us(bundle, graphs, inputs, len(inputs))
    print(json.dumps({"ready": block_us(bundle, graphs, inputs, len(inputs)),
                      "samples": len(inputs)}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        print(json.dumps({"us": block_us(bundle, graphs, inputs, json.loads(line)["calls"])}),
              flush=True)
    return 0


def main(argv: list[str]) -> int:
    args = json.loads(argv[0])
    if args.get("serve"):
        return serve(args)
    if "configs" in args:
        print(json.dumps(interleaved(args)))
        return 0
    from export.verification.runtime import Bundle

    bundle = Bundle(args["bundle"], check_files=False)
    task = bundle.task
    inputs = sample_inputs(bundle.manifest, args["samples"])
    baseline = rss_mb()
    graphs = graphs_for(args, bundle)
    loaded = rss_mb()
    runs = args.get("runs", 200)
    budget = float(args.get("budget_seconds", float("inf")))
    # end to end: one sample through the task (classifier call; or a whole greedy decode)
    k = {"i": 0}

    def one_sample():
        task.predict(graphs, [inputs[k["i"] % len(inputs)]], bundle.meta)
        k["i"] += 1

    result = {"sample": timed(one_sample, runs, budget)}
    # per graph, on the feed that the first sample produces
    feeds = {}

    class Capture:
        def __init__(self, name, graph):
            self.name, self.graph = name, graph

        def __call__(self, feed):
            feeds.setdefault(self.name, feed)
            return self.graph(feed)

    task.predict({n: Capture(n, g) for n, g in graphs.items()}, inputs[:1], bundle.meta)
    result["graphs"] = {n: timed(lambda n=n: graphs[n](feeds[n]), runs, budget)
                        for n in graphs}
    if args["backend"] in ("torch", "torch-onnx"):
        from benchmarks import torch_peer

        result["peer_max_abs_vs_bundle_keras"] = torch_peer.max_abs_vs_reference(
            bundle, graphs, feeds)
    result["rss_mb"] = {"after_imports": baseline, "after_load": loaded, "peak": peak_rss_mb()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))



def child_pids() -> set[int]:
    """This process's child processes, zombies included (Linux /proc): what a harness that
    starts workers must leave empty when it returns (tests check it)."""
    import os

    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == os.getpid():
            out.add(int(stat.parent.name))
    return out


def paired(workers: dict[str, dict], workdir: Path, budget: float = 15.0,
           references: list[str] | None = None, rounds: int | None = None) -> dict:
    """Times worker processes in rounds, in lockstep (:func:`in_rounds`): each worker
    (``{key: {"cmd": argv, "env": environment or None}}``) loads its model and warms up,
    prints ``{"ready": µs per call, "samples": n[, "runtime": ...]}``, then for each
    ``{"calls": n}`` line on its stdin runs that block and prints ``{"us": µs per call}``
    (:func:`serve`'s protocol); every round has each run its block in turn, in a shuffled
    order, while the others wait on their pipe. Ratios divide by each of ``references``
    (default the first key). Returns ``{"error": ...}`` if a worker fails; every worker has
    ended when it returns."""
    procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def reply(key):
        proc, log = procs[key]
        while True:
            line = proc.stdout.readline()
            if not line:
                lines = log.read_text(errors="replace").strip().splitlines()
                raise RuntimeError(f"{key}: " + (lines[-1] if lines else "exited"))
            if line.startswith("{"):
                return json.loads(line)

    try:
        for key, w in workers.items():
            log = Path(workdir) / f"paired_{key.replace('/', '_')}.stderr"
            with open(log, "w") as err:
                procs[key] = (subprocess.Popen(
                    w["cmd"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                    text=True, env=w.get("env"), cwd=Path(__file__).parents[1]), log)
        ready = {key: reply(key) for key in procs}
        per_call = {key: r["ready"] / 1e6 for key, r in ready.items()}

        def run_block(key, calls):
            proc = procs[key][0]
            proc.stdin.write(json.dumps({"calls": calls}) + "\n")
            proc.stdin.flush()
            return reply(key)["us"]

        samples = min(r["samples"] for r in ready.values())  # the same samples
        options = {"budget_seconds": budget,
                   "references": list(references or [next(iter(workers))])}
        if rounds is not None:
            options["rounds"] = rounds
        return {"processes": len(procs), "samples": samples,
                "runtimes": {k: r.get("runtime") for k, r in ready.items()},
                **in_rounds(run_block, per_call, samples, options)}
    except (RuntimeError, OSError, ValueError) as e:
        return {"error": str(e)}
    finally:
        for proc, _ in procs.values():
            try:
                proc.stdin.close()  # end of stdin ends serve()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
