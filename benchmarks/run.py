"""Runs the benchmark matrix and writes benchmarks/results/ (JSON + markdown).

For each pretrained model: export + verify a bundle at the default precisions (timed:
the export target), then one bundle per other precision the spec supports; measure in
separate processes Keras tf.function, LiteRT and ONNX Runtime at each precision, and the
PyTorch peer (eager, and torch.onnx.export -> ONNX Runtime), at 1 thread and at all
threads; then time the LiteRT, ORT and peer configs interleaved in one process at 1
thread, where the target ratios come from, and Keras against the best of them in two
processes taking turns (best / Keras). The "best artifact" is the fastest of every
format and precision measured, not only the default export's.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import BLOCK_SECONDS, MIN_RUNS

RESULTS = Path(__file__).parent / "results"
# The page the summary section is written into, between the markers, and RESULTS as
# linked from that page.
SUMMARY_PAGE = Path(__file__).parents[1] / "docs" / "benchmarks.md"
SUMMARY_LINKS = "../benchmarks/results"
MARK_START, MARK_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
TARGETS = {
    "best_vs_torch_onnx": 0.8,  # best artifact latency <= 0.8 x PyTorch -> ORT
    "litert_vs_onnx_fp32": 1.5,  # LiteRT fp32 <= 1.5 x ORT fp32
    "best_vs_keras": 1 / 15,  # exported artifact <= 1/15 of Keras tf.function
    "export_seconds": 30.0,  # full export + verification of one model
}


SAMPLES = 20  # the measured samples cycle through the first SAMPLES test inputs
SAMPLE_MEANS = {  # what one timed sample is, per task (task.predict on one test input)
    "classification": "one classifier call",
    "text": "tokenizing and one classifier call",
    "seq2seq": "a whole greedy decode: the encoder once, the decoder step per output token",
    "ctc": "one recognizer call and greedy CTC decoding on the host",
    "kws": "the whole window in one call, and the same frames streamed through the step "
           "graph one call per frame",
    "forecast": "one forecaster call",
    "anomaly": "one window through the autoencoder",
    "nextframe": "one call predicting every future frame",
    "lm": "a window scored in one call, and the same window streamed through the step "
          "graph one call per symbol",
}


BACKENDS = {"tflite": "litert", "onnx": "onnx"}
ORDER = ("fp32", "dynamic", "float16", "int8", "int16x8")  # table order; others after


def configs(artifacts, peer: bool) -> list[tuple[str, str]]:
    """Keras, then every (runtime, precision) the bundle holds, then the PyTorch peer."""
    held = {(BACKENDS[a["format"]], a["precision"]) for a in artifacts}
    rank = {p: i for i, p in enumerate(ORDER)}
    rows = [("keras", "fp32"), *sorted(held, key=lambda k: (k[0] != "litert",
                                                             rank.get(k[1], len(ORDER)), k[1]))]
    if peer:
        rows += [("torch", "fp32"), ("torch-onnx", "fp32")]
    return rows


def _in_process(args: dict) -> dict:
    """``python -m benchmarks.measure`` on ``args`` in a fresh process at ``args["threads"]``
    threads: its JSON line, or ``{"error": <its last stderr line>}``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": str(args["threads"])}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.measure", json.dumps(args)],
                          capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[1])
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(bundle: Path, backend: str, precision: str, threads: int, runs: int,
            workdir: Path, budget: float = 5.0) -> dict:
    """One measurement in its own process: ``runs`` timed calls, fewer (at least
    ``benchmarks.measure.MIN_RUNS``) where they would take more than ``budget`` seconds
    (a whole generated sample in Keras, say); the JSON says how many ran."""
    args = {"bundle": str(bundle), "backend": backend, "precision": precision,
            "threads": threads, "runs": runs, "workdir": str(workdir), "samples": SAMPLES,
            "budget_seconds": budget}
    return _in_process(args)


def measure_interleaved(configs: list[tuple[str, str, Path]], threads: int, workdir: Path,
                        budget: float = 15.0) -> dict:
    """The configs timed in rounds in one process (:func:`benchmarks.measure.interleaved`):
    per config its median µs, and per-round ratios against ORT fp32 and the PyTorch
    peer's ORT graph. Keras is not among them: with TensorFlow running in the process,
    LiteRT and ORT ran 1.6x slower than alone (lstm_autoencoder: 584 vs 369 µs), and a
    50 ms pause after each Keras call did not change that (measured); the PyTorch peer
    eager did not slow them (handwriting_rows: within 3 %)."""
    args = {"configs": [[b, p, str(path)] for b, p, path in configs], "threads": threads,
            "workdir": str(workdir), "samples": SAMPLES, "budget_seconds": budget,
            "references": list(REFERENCES)}
    return _in_process(args)


REFERENCES = ("onnx/fp32", "torch-onnx/fp32")  # what interleaved ratios divide by


def measure_paired(configs: list[tuple[str, str, Path]], threads: int, workdir: Path,
                   budget: float = 15.0, reference: str = "keras/fp32") -> dict:
    """The configs timed in rounds, each in a process of its own, in lockstep
    (:func:`benchmarks.measure.in_rounds`): each process loads its graphs and warms up
    (:func:`benchmarks.measure.serve`), then every round has each run its block (whole
    passes over the same samples) in turn, in a shuffled order, while the others wait on
    their pipe. Ratios divide by ``reference``.

    This is how Keras is compared: it cannot share a process with the runtimes
    (:func:`measure_interleaved`), and medians of two processes run minutes apart moved
    the best / Keras ratio of one model from 0.039 to 0.071 between two benchmark runs
    (bigru_activity, 2026-12-01 and 12-02). Returns ``{"error": ...}`` if a process
    fails; every process has ended when it returns."""
    from benchmarks import measure as m

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": str(threads)}
    workers = {}
    for backend, precision, path in configs:
        args = {"serve": True, "bundle": str(path), "backend": backend,
                "precision": precision, "threads": threads, "workdir": str(workdir),
                "samples": SAMPLES}
        workers[f"{backend}/{precision}"] = {
            "cmd": [sys.executable, "-m", "benchmarks.measure", json.dumps(args)], "env": env}
    result = m.paired(workers, workdir, budget, references=[reference])
    return result if "error" in result else {"threads": threads, **result}


def run(models: list[str], runs: int, out: Path = RESULTS, budget: float = 5.0) -> dict:
    from zoo import get_spec

    for name in models:  # an unknown name fails now, not after an hour of measuring
        get_spec(name)
    threads_all = os.cpu_count() or 1
    results = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": threads_all, "platform": platform.platform(),
                           "cpu": _cpu_model(), "python": platform.python_version()},
               "runs_per_measurement": runs, "budget_seconds": budget, "models": {}}

    with tempfile.TemporaryDirectory(prefix="lstm-zoo-bench-") as tmp:
        for name in models:
            try:
                results["models"][name] = _bench_model(name, Path(tmp) / name, runs, budget,
                                                       threads_all, results)
            except Exception as e:  # one model's failure is reported, the run goes on
                print(f"[bench] {name} failed: {type(e).__name__}: {e}", file=sys.stderr,
                      flush=True)
                results.setdefault("failed", {})[name] = f"{type(e).__name__}: {e}"
    results["targets"] = check_targets(results)
    write(results, out)
    return results


def merge(previous: dict, fresh: dict) -> dict:
    """``previous`` results with the models measured in ``fresh`` replaced (their entries,
    manifests and failures), the machine peaks pooled, and a ``merged`` record of when
    which models were measured again (the ratios of a model come from one run, so a
    model's row never mixes two runs)."""
    names = set(fresh["models"]) | set(fresh.get("failed", {}))
    out = {**previous, "models": {**previous["models"], **fresh["models"]},
           "manifests": [m for m in previous.get("manifests", []) if m["model"] not in names]
           + fresh.get("manifests", [])}
    failed = {k: v for k, v in previous.get("failed", {}).items() if k not in names}
    failed.update(fresh.get("failed", {}))
    for name in fresh.get("failed", {}):
        out["models"].pop(name, None)
    if failed:
        out["failed"] = failed
    else:
        out.pop("failed", None)
    peaks = previous.get("peaks", {"gemm_gflops": [], "bandwidth_gbs": {}})
    more = fresh.get("peaks", {"gemm_gflops": [], "bandwidth_gbs": {}})
    out["peaks"] = {"gemm_gflops": peaks["gemm_gflops"] + more["gemm_gflops"],
                    "bandwidth_gbs": {**peaks["bandwidth_gbs"], **more["bandwidth_gbs"]}}
    out["merged"] = [*previous.get("merged", []),
                     {"created": fresh["created"], "models": sorted(names),
                      "machine": fresh["machine"],
                      "runs_per_measurement": fresh.get("runs_per_measurement"),
                      "budget_seconds": fresh.get("budget_seconds")}]
    out["targets"] = check_targets(out)
    return out


def _bench_model(name: str, work: Path, runs: int, budget: float, threads_all: int,
                 results: dict) -> dict:
    """Exports ``name`` into ``work`` and measures it; adds its manifest and the machine
    peaks measured for it to ``results``; returns its entry."""
    from benchmarks import torch_peer
    from benchmarks.roofline import measure_peaks, roofline, sample_cost
    from export import export_model, load_bundle
    from zoo import datasets, get_spec
    from zoo.errors import UnsupportedError, ZooError
    from zoo.graphs import graph_models

    work.mkdir()
    bundle_dir = work / "bundle"
    print(f"[bench] exporting {name}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    parity = export_model(name, bundle_dir)  # the default precisions: what the target times
    export_seconds = time.perf_counter() - start
    bundle = load_bundle(bundle_dir)
    results.setdefault("manifests", []).append(bundle.manifest)
    spec = get_spec(name)
    # every other precision the spec supports, each in a bundle of its own (not timed in
    # the export target)
    more = [p for p in spec.precisions if p not in {a["precision"] for a in bundle.artifacts}]
    where = {(a["format"], a["precision"]): bundle_dir for a in bundle.artifacts}
    artifacts, results_rows = list(bundle.artifacts), list(parity["results"])
    more_seconds, more_failed = None, {}
    for precision in more:  # one at a time: a precision that fails costs only itself
        print(f"[bench] exporting {name} at {precision}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        more_dir = work / f"bundle_{precision}"
        try:
            more_parity = export_model(name, more_dir, precisions=precision)
        except ZooError as e:  # ParityError, UnsupportedError, ExportError: reported
            print(f"[bench] {name} {precision} failed: {e}", file=sys.stderr, flush=True)
            more_failed[precision] = f"{type(e).__name__}: {e}"
            continue
        finally:
            more_seconds = (more_seconds or 0.0) + time.perf_counter() - start
        more_bundle = load_bundle(more_dir)
        artifacts += more_bundle.artifacts
        results_rows += more_parity["results"]
        where.update({(a["format"], a["precision"]): more_dir for a in more_bundle.artifacts})
        results["manifests"].append(more_bundle.manifest)
    peer = spec.family in torch_peer.PEER_FAMILIES and _has_torch()
    if peer:
        torch_peer.save_inputs(bundle, work)
    sizes = {(a["format"], a["precision"]): 0 for a in artifacts}
    for a in artifacts:
        sizes[(a["format"], a["precision"])] += a["size"]
    metrics = {(r["backend"], r["precision"]): r for r in results_rows}
    # the work per sample first: a layer the FLOP count does not know leaves the roofline
    # out, not the model's measurements
    inputs = list(bundle.task.inputs(datasets.load(spec.data.dataset,
                                                   spec.data.test))[:SAMPLES])
    try:
        cost = sample_cost(spec, graph_models(spec, bundle.keras_model()), bundle.task,
                           inputs, bundle.meta)
    except UnsupportedError as e:
        print(f"[bench] {name}: no roofline ({e})", file=sys.stderr, flush=True)
        cost = None
    formats = {runtime: fmt for fmt, runtime in BACKENDS.items()}
    rows = []
    for threads in sorted({1, threads_all}):
        for backend, precision in configs(artifacts, peer):
            print(f"[bench] {name} {backend} {precision} threads={threads}",
                  file=sys.stderr, flush=True)
            fmt = formats.get(backend)
            m = measure(where.get((fmt, precision), bundle_dir), backend, precision, threads,
                        runs, work, budget)
            r = metrics.get((backend, precision), {})
            rows.append({"backend": backend, "precision": precision, "threads": threads,
                         "size_bytes": sizes.get((fmt, precision)),
                         "metrics": r.get("metrics", parity["reference"]["metrics"]
                                          if backend == "keras" else None),
                         "metric_drop": r.get("metric_drop", 0.0 if backend == "keras"
                                              else None),
                         **m})
    if cost is not None:
        peaks = measure_peaks([int(cost["bytes"] / cost["calls_per_sample"])])
        results.setdefault("peaks", {"gemm_gflops": [], "bandwidth_gbs": {}})
        results["peaks"]["gemm_gflops"].append(peaks["gemm_gflops"])
        results["peaks"]["bandwidth_gbs"].update(peaks["bandwidth_gbs"])
        for row in rows:
            if row["threads"] == 1 and "sample" in row:
                row["roofline"] = roofline(cost, peaks, row["sample"]["median_us"])
    print(f"[bench] {name} interleaved, 1 thread", file=sys.stderr, flush=True)
    measured = {(r["backend"], r["precision"]) for r in rows if "sample" in r}
    together = measure_interleaved(  # what ran alone: one failing config would stop it
        [(backend, precision, where.get((formats.get(backend), precision), bundle_dir))
         for backend, precision in configs(artifacts, peer)
         if backend != "keras" and (backend, precision) in measured], 1, work, 5 * budget)
    paired = None
    best = _best_interleaved(together)
    if best and ("keras", "fp32") in measured:
        print(f"[bench] {name} keras and {best} paired, 1 thread", file=sys.stderr,
              flush=True)
        backend, precision = best.split("/")
        paired = measure_paired([("keras", "fp32", bundle_dir),
                                 (backend, precision, where[(formats[backend], precision)])],
                                1, work, 5 * budget)
    return {
        "task": spec.task,
        "step_graphs": [g.name for g in spec.graphs if g.recurrent == "step"],
        "cost_per_sample": cost,
        "task_metric": bundle.task.metric,
        "export_seconds": export_seconds,
        "more_precisions": [p for p in more if p not in more_failed],
        "more_precisions_export_seconds": more_seconds,
        "more_precisions_failed": more_failed,
        "rows": rows,
        "interleaved": together,
        "keras_paired": paired,
        "ratios": ratios(rows, together, paired),
    }


def _cpu_model() -> str:
    """The processor's name (``/proc/cpuinfo``), or the platform's guess elsewhere: the same
    cloud machine type has come with different processors, twice as fast apart."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _median(rows, backend, precision, threads):
    for r in rows:
        if (r["backend"], r["precision"], r["threads"]) == (backend, precision, threads) \
                and "sample" in r:
            return r["sample"]["median_us"]
    return None


def ratios(rows, interleaved: dict | None = None, paired: dict | None = None) -> dict:
    """The target ratios per thread count. At 1 thread, from the interleaved measurement
    when there is one (each the median of per-round ratios, with its quartiles in
    ``spread``), best / Keras from the paired one (:func:`measure_paired`) when there is
    one; otherwise from the separate processes' medians."""
    out = {}
    for threads in sorted({r["threads"] for r in rows}):
        base = {b: _median(rows, b, "fp32", threads) for b in ("keras", "onnx", "torch-onnx")}
        ours = {(r["backend"], r["precision"]): r["sample"]["median_us"] for r in rows
                if r["threads"] == threads and r["backend"] in ("litert", "onnx")
                and "sample" in r}
        best_key = min(ours, key=ours.get) if ours else None
        entry = {"best_artifact": "/".join(best_key) if best_key else None,
                 "source": "separate processes"}
        if best_key:
            best = ours[best_key]
            lite = ours.get(("litert", "fp32"))
            entry["litert_vs_onnx_fp32"] = lite / base["onnx"] if lite and base["onnx"] else None
            entry["best_vs_keras"] = best / base["keras"] if base["keras"] else None
            entry["best_vs_torch_onnx"] = best / base["torch-onnx"] if base["torch-onnx"] else None
        if threads == 1 and interleaved and interleaved.get("ratios", {}).get("onnx/fp32"):
            entry = _interleaved_ratios(interleaved, rows, paired)
        out[str(threads)] = entry
    return out


def _best_interleaved(together: dict) -> str | None:
    """The fastest LiteRT or ORT config of the interleaved rounds (``"onnx/dynamic"``)."""
    vs = together.get("ratios", {}).get("onnx/fp32", {})
    ours = {k: v["median"] for k, v in vs.items() if k.split("/")[0] in ("litert", "onnx")}
    return min(ours, key=ours.get) if ours else None


def _interleaved_ratios(together: dict, rows=(), paired: dict | None = None) -> dict:
    """Best artifact, LiteRT / ORT and best / PyTorch->ORT from the interleaved rounds;
    best / Keras from the paired rounds (Keras in a process of its own) when they ran,
    else from the separate processes' medians."""
    vs = together["ratios"]
    best = _best_interleaved(together)
    entry = {"best_artifact": best, "source": f"interleaved, {together['rounds']} rounds",
             "spread": {}}
    for target, ref, key in (("litert_vs_onnx_fp32", "onnx/fp32", "litert/fp32"),
                             ("best_vs_torch_onnx", "torch-onnx/fp32", best)):
        r = vs.get(ref, {}).get(key)
        entry[target] = r and r["median"]
        if r:
            entry["spread"][target] = [r["q25"], r["q75"]]
    r = ((paired or {}).get("ratios", {}).get("keras/fp32", {})).get(best)
    if r:
        entry["best_vs_keras"] = r["median"]
        entry["spread"]["best_vs_keras"] = [r["q25"], r["q75"]]
        entry["keras_source"] = f"paired processes, {paired['rounds']} rounds"
        return entry
    keras = _median(rows, "keras", "fp32", 1)
    alone = _median(rows, *best.split("/"), 1)
    entry["best_vs_keras"] = alone / keras if keras and alone else None
    entry["keras_source"] = "separate processes"
    return entry


def check_targets(results) -> list[dict]:
    """Each target's value against its limit. A best / Keras check also carries
    ``float_floor`` where the roofline was measured: the fraction of the fp32 roof Keras
    itself reaches, which is the lowest ratio a float artifact can have (it cannot run
    above the roof); a limit under it needs an integer kernel that many times faster than
    the fp32 roof (``roofs_needed``)."""
    checks = []
    for name, m in results["models"].items():
        r1 = m["ratios"]["1"]
        for key, limit in TARGETS.items():
            value = m["export_seconds"] if key == "export_seconds" else r1.get(key)
            if value is None:
                continue
            check = {"model": name, "target": key, "value": value, "limit": limit,
                     "met": value <= limit}
            keras = next((r for r in m.get("rows", []) if "roofline" in r
                          and (r["backend"], r["threads"]) == ("keras", 1)), None)
            if key == "best_vs_keras" and keras is not None:
                floor = keras["roofline"]["fraction_of_roof"]
                check["float_floor"] = floor
                check["roofs_needed"] = floor / limit
            checks.append(check)
    return checks


def _floor_note(check: dict) -> str:
    """Why a best / Keras limit is out of a float artifact's reach, when it is."""
    if check.get("float_floor", 0.0) <= check["limit"]:
        return ""
    return (f"Keras runs at {check['float_floor'] * 100:.0f} % of the measured fp32 roof: "
            f"a float artifact doing Keras' work goes no lower than "
            f"{check['float_floor']:.2f}; the limit needs {check['roofs_needed']:.1f}x that roof")


def markdown(results) -> str:
    cpu = results["machine"].get("cpu")
    lines = [f"Measured {results['created']} on {results['machine']['cpus']} CPUs "
             f"({cpu + ', ' if cpu else ''}{results['machine']['platform']}), batch 1, "
             f"median of "
             f"{results['runs_per_measurement']} runs (fewer, at least "
             f"{MIN_RUNS}, where a timed loop, the sample's or a graph's, would take over "
             f"{results.get('budget_seconds', 5):.0f} s: the `runs` column); every "
             "measurement in its own process. Then a model's LiteRT, ORT and PyTorch "
             "backends at 1 thread are timed interleaved in one process (its table after "
             "the model's); the target ratios come from that, but for best / Keras: Keras "
             "and the best artifact, each in a process of its own, timed in lockstep rounds "
             "(the targets' source column says where a ratio came from).", ""]
    for record in results.get("merged", []):
        machine = record["machine"]
        lines += [f"Measured again {record['created']} (`--merge`) on {machine['cpus']} CPUs "
                  f"({machine.get('cpu') or '?'}, {machine['platform']}), median of "
                  f"{record.get('runs_per_measurement')} runs, budget "
                  f"{record.get('budget_seconds')} s: {', '.join(record['models'])}.", ""]
    for name, m in results["models"].items():
        metric = m["task_metric"]
        more = m.get("more_precisions")
        lines += [f"### {name}", "",
                  f"Export + verification at the default precisions: "
                  f"{m['export_seconds']:.1f} s"
                  + (f" (then {', '.join(more)}: {m['more_precisions_export_seconds']:.1f} s)"
                     if more else "") + "".join(
                      f"; {p} not exported: {why}"
                      for p, why in m.get("more_precisions_failed", {}).items())
                  + ". Latency is one test sample end to end, "
                  f"as the task runs it ({SAMPLE_MEANS.get(m.get('task'), 'one graph call')}).", "",
                  f"| backend | precision | threads | median µs | p90 µs | runs | x ORT fp32 "
                  f"| size KB | peak RSS MB | {metric} | drop |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in m["rows"]:
            if "sample" not in r:
                lines.append(f"| {r['backend']} | {r['precision']} | {r['threads']} | "
                             f"error: {r.get('error', '?')} ||||||||")
                continue
            base = _median(m["rows"], "onnx", "fp32", r["threads"])
            metric_value = (r["metrics"] or {}).get(metric)
            size = None if r["size_bytes"] is None else r["size_bytes"] / 1024
            vs_ort = r["sample"]["median_us"] / base if base else None
            lines.append(
                f"| {r['backend']} | {r['precision']} | {r['threads']} | "
                f"{r['sample']['median_us']:.0f} | {r['sample']['p90_us']:.0f} | "
                f"{r['sample']['runs']} | {_fmt(vs_ort, '.2f')} | {_fmt(size, '.0f')} | "
                f"{r['rss_mb']['peak']:.0f} | {_fmt(metric_value, '.4f')} | "
                f"{_fmt(r['metric_drop'], '+.4f')} |")
        together = m.get("interleaved") or {}
        if together.get("median_us"):
            vs = together["ratios"].get("onnx/fp32", {})
            lines += ["", f"Interleaved, 1 thread ({together['rounds']} rounds in one "
                      "process; in each round every backend, in a shuffled order, runs whole "
                      f"passes over the same test samples for at least {BLOCK_SECONDS} s; "
                      "ratio = median of the per-round ratios to ORT fp32, quartiles in "
                      "brackets):", "",
                      "| backend | median µs | x ORT fp32 |", "|---|---|---|"]
            lines += [f"| {k} | {us:.0f} | " + (
                f"{vs[k]['median']:.2f} ({vs[k]['q25']:.2f}–{vs[k]['q75']:.2f})"
                if k in vs else "") + " |" for k, us in together["median_us"].items()]
        elif together.get("error"):
            lines += ["", f"Interleaved measurement failed: {together['error']}"]
        paired = m.get("keras_paired") or {}
        if paired.get("median_us"):
            (best, vs), = [(k, v) for k, v in paired["ratios"]["keras/fp32"].items()
                           if k != "keras/fp32"]
            lines += ["", f"Keras and {best} paired, 1 thread ({paired['rounds']} rounds, "
                      "each in its own process, run in turn, as above): Keras "
                      f"{paired['median_us']['keras/fp32']:.0f} µs, {best} "
                      f"{paired['median_us'][best]:.0f} µs; per-round ratio "
                      f"{vs['median']:.4f} ({vs['q25']:.4f}–{vs['q75']:.4f})."]
        elif paired.get("error"):
            lines += ["", f"Paired Keras measurement failed: {paired['error']}"]
        for graph in m.get("step_graphs", ["decoder_step"]):
            step = [r for r in m["rows"] if graph in r.get("graphs", {})]
            if step:
                lines += ["", f"One call of the step graph `{graph}` (one frame or token, "
                          "state in and out) through the bundle's runner, its input checks "
                          "included (`python -m benchmarks.streaming` times the bare "
                          "interpreter call):", ""]
                lines += [f"- {r['backend']} {r['precision']} ×{r['threads']}: "
                          f"{r['graphs'][graph]['median_us']:.1f} µs" for r in step]
        cost = m.get("cost_per_sample")
        if cost:
            gemm = max(results["peaks"]["gemm_gflops"])
            lines += ["", f"Roofline, 1 thread: {cost['flops'] / 1e6:.2f} MFLOP and "
                      f"{cost['bytes'] / 1e6:.2f} MB (fp32 weights + I/O) per sample "
                      f"({cost['calls_per_sample']:.1f} graph calls); measured fp32 GEMM peak "
                      f"{gemm:.0f} GFLOP/s; bandwidth measured at the per-call working set. "
                      "Dynamic-range artifacts read int8 weights (4x fewer bytes), so they "
                      "can pass the fp32 memory roof; int8 artifacts also multiply in int8, "
                      "whose GEMM peak is above the fp32 one, so they can pass the compute "
                      "roof.", "",
                      "| backend | precision | GFLOP/s | FLOP/byte | GB/s used for roof | "
                      "roof GFLOP/s | of roof |",
                      "|---|---|---|---|---|---|---|"]
            lines += [f"| {r['backend']} | {r['precision']} | {r['roofline']['gflops']:.2f} | "
                      f"{r['roofline']['intensity_flop_per_byte']:.2f} | "
                      f"{r['roofline']['bandwidth_gbs']:.1f} | "
                      f"{r['roofline']['roof_gflops']:.1f} | "
                      f"{100 * r['roofline']['fraction_of_roof']:.1f} % |"
                      for r in m["rows"] if "roofline" in r]
        peer = [r for r in m["rows"] if "peer_max_abs_vs_bundle_keras" in r]
        if peer:
            lines += ["", f"PyTorch peer max |diff| vs our verified ONNX fp32: "
                      f"{max(r['peer_max_abs_vs_bundle_keras'] for r in peer):.1e} "
                      "(same weights, same function)."]
        lines.append("")
    for name, error in results.get("failed", {}).items():
        lines += [f"### {name}", "", f"Not measured: {error}", ""]
    from export.verification.report import compatibility_markdown

    lines += ["![latency](benchmarks/results/latency.png)",
              "![size vs drop](benchmarks/results/size_vs_drop.png)", ""]
    lines += ["### What each recurrent layer became", "",
              compatibility_markdown(results.get("manifests", [])), ""]
    k3 = results.get("keras3")
    if k3:
        ops = ", ".join(f"{k}×{v}" for k, v in k3.get("ops", {}).items())
        ran = (f"runs on LiteRT: {k3['median_us']:.0f} µs median" if k3.get("runs_on_litert")
               else f"does not run on LiteRT ({k3.get('error') or k3.get('export_failed')})")
        lines += ["### Keras 3's own export (same architecture and weights)", "",
                  f"`python -m benchmarks.keras3_peer`: Keras {k3.get('keras', '?')} "
                  f"`model.export(format=\"litert\")` of {k3['model']} gives "
                  f"{k3.get('size_bytes', 0) / 1024:.0f} KB with ops {ops}; it {ran}.", ""]
    lines += ["### Targets (1 thread)", "",
              "| model | target | value | quartiles | source | limit | met | note |",
              "|---|---|---|---|---|---|---|---|"]
    for c in results["targets"]:
        r1 = results["models"][c["model"]]["ratios"]["1"]
        q = r1.get("spread", {}).get(c["target"])
        lines.append(f"| {c['model']} | {c['target']} | {c['value']:.3f} | "
                     f"{f'{q[0]:.3f}–{q[1]:.3f}' if q else ''} | "
                     f"{_source(c['target'], r1)} | "
                     f"{c['limit']:.3f} | {'yes' if c['met'] else 'NO'} | {_floor_note(c)} |")
    return "\n".join(lines) + "\n"


def _source(target: str, r1: dict) -> str:
    """Where a target's value was measured."""
    if target == "export_seconds":
        return ""
    if target == "best_vs_keras" and "spread" in r1:
        return r1.get("keras_source", "separate processes")
    return r1.get("source", "")


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def stamp(module: str, argv) -> dict:
    """When, on what, and with which command a stand-alone benchmark was measured."""
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "command": f"python -m {module} " + " ".join(argv or sys.argv[1:])}


def save(results: dict, text: str, out: Path, stem: str) -> None:
    """Writes a stand-alone benchmark's ``stem.json`` and ``stem.md`` into ``out``
    (atomically) and prints the markdown."""
    from zoo.weights import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{stem}.json", (json.dumps(results, indent=2) + "\n").encode())
    atomic_write_bytes(out / f"{stem}.md", text.encode())
    print(text)


def write(results, out: Path) -> None:
    from zoo.weights import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    if (out / "keras3.json").is_file():
        results["keras3"] = json.loads((out / "keras3.json").read_text())
    atomic_write_bytes(out / "latest.json", (json.dumps(results, indent=2) + "\n").encode())
    text = markdown(results)
    atomic_write_bytes(out / "latest.md", text.encode())
    from export.cards import card_markdown

    figures = write_card_figures(out)
    for name in results["models"]:
        atomic_write_bytes(out / "cards" / f"{name}.md", card_markdown(name, figures).encode())
    from benchmarks.plots import plot

    plot(results, out)
    # the docs show the project's own results only, not a run written elsewhere
    if out.resolve() == RESULTS.resolve() and SUMMARY_PAGE.is_file() \
            and MARK_START in SUMMARY_PAGE.read_text():
        page = SUMMARY_PAGE.read_text()
        head, rest = page.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        atomic_write_bytes(SUMMARY_PAGE, (head + MARK_START + "\n" + summary_markdown(results)
                                          + MARK_END + tail).encode())


def write_card_figures(out: Path) -> dict:
    """The card figures of the results in ``out`` (``latest.json``, ``transfer.json``,
    ``g2p_decoding.json``); for the project's own results, also written to
    :data:`export.cards.FIGURES`, which ships in the package for ``lstm-zoo info``."""
    from export.cards import FIGURES, card_figures
    from zoo.weights import atomic_write_bytes

    read = [json.loads(p.read_text()) if p.is_file() else None
            for p in (out / "latest.json", out / "transfer.json", out / "g2p_decoding.json")]
    figures = card_figures(*read)
    if out.resolve() == RESULTS.resolve():
        atomic_write_bytes(FIGURES, (json.dumps(figures, indent=1) + "\n").encode())
    return figures


def _best(m: dict, threads: int = 1) -> dict | None:
    key = m["ratios"][str(threads)].get("best_artifact")
    return next((r for r in m["rows"] if r["threads"] == threads and "sample" in r
                 and f"{r['backend']}/{r['precision']}" == key), None)


def summary_markdown(results: dict) -> str:
    """The section of docs/benchmarks.md: one row per model at 1 thread, the targets, and
    where the full report is."""
    cpu = results["machine"].get("cpu")
    lines = [f"Measured {results['created']} on {results['machine']['cpus']} CPUs"
             f"{' (' + cpu + ')' if cpu else ''}, batch 1, 1 thread, median µs per test "
             "sample end to end (each model's report says what a sample is): a model's "
             "LiteRT, ORT and PyTorch backends timed interleaved in one process (round by "
             "round, each running whole passes over the same samples for at least "
             f"{BLOCK_SECONDS} s), Keras and the best artifact in two processes taking turns "
             "the same way; the ratios "
             "below are medians of per-round ratios, with their quartiles in brackets. "
             "Full tables (each backend in "
             "its own "
             "process, all threads, p90, peak RSS, every precision, step graphs, roofline, "
             "what each recurrent layer became): "
             f"[benchmarks/results/latest.md]({SUMMARY_LINKS}/latest.md).", "",
             *[line for record in results.get("merged", []) for line in (
                 f"Measured again {record['created']} on {record['machine']['cpus']} CPUs "
                 f"({record['machine'].get('cpu') or '?'}): {', '.join(record['models'])}; "
                 "compare their microseconds with the other rows' only as ratios.", "")],
             "| model | Keras | LiteRT fp32 | ORT fp32 | PyTorch→ORT | best artifact | its µs "
             "| its KB | its metric drop | export + verify s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in results["models"].items():
        together = (m.get("interleaved") or {}).get("median_us")
        med = {b: (together or {}).get(f"{b}/fp32") or _median(m["rows"], b, "fp32", 1)
               for b in ("keras", "litert", "onnx", "torch-onnx")}
        best = _best(m)
        size = best and best.get("size_bytes")
        best_us = best and (together.get(f"{best['backend']}/{best['precision']}")
                            if together else best["sample"]["median_us"])
        lines.append(
            f"| {name} | " + " | ".join(_fmt(med[b], ".0f") for b in med) + " | "
            + (f"{best['backend']} {best['precision']} | {best_us:.0f} | "
               f"{_fmt(size and size / 1024, '.0f')} | "
               f"{_fmt(best['metric_drop'], '+.4f')} {m['task_metric']}" if best
               else "| | ") + f" | {m['export_seconds']:.1f} |")
    for name, error in results.get("failed", {}).items():
        lines.append(f"| {name} | not measured: {error} |||||||||")
    names = list(TARGETS)
    lines += ["", "Targets at 1 thread (value / limit; ✗ where missed, — where there is no "
              "peer):", "", "| model | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    by_model: dict = {}
    for c in results["targets"]:
        by_model.setdefault(c["model"], {})[c["target"]] = c
    for name, checks in by_model.items():
        spread = results["models"][name]["ratios"]["1"].get("spread", {})
        cells = [_ratio(checks[t]['value'])
                 + (f" ({_ratio(spread[t][0])}–{_ratio(spread[t][1])})" if t in spread else "")
                 + f" / {_ratio(checks[t]['limit'])}{'' if checks[t]['met'] else ' ✗'}"
                 if t in checks else "—" for t in names]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    met = sum(c["met"] for c in results["targets"])
    lines += ["", f"{met} of {len(results['targets'])} target checks met."]
    notes = [f"- {c['model']} {c['target']}: {_floor_note(c)} (roofline in its report)."
             for c in results["targets"] if not c["met"] and _floor_note(c)]
    lines += ["", "Missed where the roofline bounds the reachable ratio:", "", *notes] \
        if notes else []
    lines += ["", f"![latency]({SUMMARY_LINKS}/latency.png)",
              f"![size vs drop]({SUMMARY_LINKS}/size_vs_drop.png)", ""]
    return "\n".join(lines) + "\n"


def _ratio(value: float) -> str:
    """Two decimals, three below 0.1: at two, 0.0701 against 1/15 read "0.07 / 0.07 ✗"."""
    return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"


def main(argv=None) -> int:
    from zoo import list_models

    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(list_models(pretrained=True)))
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--budget", type=float, default=5.0,
                   help="seconds one measurement may take before it stops short of --runs")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--merge", action="store_true",
                   help="measure only --models and replace their entries in "
                        "<out>/latest.json (the other models keep theirs)")
    p.add_argument("--render", action="store_true",
                   help="only re-render markdown, cards and docs/benchmarks.md from "
                        "<out>/latest.json")
    args = p.parse_args(argv)
    if args.render:
        results = json.loads((args.out / "latest.json").read_text())
        results["targets"] = check_targets(results)  # derived: follows TARGETS and its notes
        write(results, args.out)
    elif args.merge:
        previous = json.loads((args.out / "latest.json").read_text())
        with tempfile.TemporaryDirectory(prefix="lstm-zoo-bench-merge-") as tmp:
            fresh = run([m for m in args.models.split(",") if m], args.runs, Path(tmp),
                        args.budget)
        if fresh["machine"] != previous["machine"]:
            print(f"[bench] note: merged into results measured on another machine "
                  f"({previous['machine']} against {fresh['machine']}); the report says so",
                  file=sys.stderr)
        results = merge(previous, fresh)
        write(results, args.out)
    else:
        results = run([m for m in args.models.split(",") if m], args.runs, args.out,
                      args.budget)
    print(markdown(results))
    return 0
