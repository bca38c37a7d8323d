"""100,000 predictions in one process: ``python -m benchmarks.soak``.

Exports the smallest shipped model (``lstm_forecaster_co2``, fp32), then per backend, in
a fresh process (``--worker``: LiteRT and ONNX Runtime without TensorFlow imported),
calls ``Bundle.predict`` with one test input at a time, cycling through the test inputs,
as a long-running service would. RSS is read after a warm-up and at checkpoints; the
growth is the last reading over the one after the warm-up (the target: within 5 %).

Writes benchmarks/results/soak.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import RESULTS, save, stamp

MODEL = "lstm_forecaster_co2"
BACKENDS = ("litert", "onnx", "keras")
CALLS = 100_000
WARMUP = 1_000  # calls before the reference reading: the runners made, caches filled
CHECKPOINTS = 10  # readings after the warm-up, evenly spaced
LIMIT_PERCENT = 5.0


def soak(bundle: Path, backend: str, calls: int, warmup: int) -> dict:
    """``calls`` predictions of one input each through one bundle, in this process; RSS
    (MB) after ``warmup`` more calls before them and at :data:`CHECKPOINTS` points."""
    from benchmarks.measure import rss_mb, sample_inputs
    from export.verification.runtime import load_bundle

    b = load_bundle(bundle)
    inputs = sample_inputs(b.manifest, 10_000)
    for j in range(warmup):
        b.predict([inputs[j % len(inputs)]], backend=backend)
    start_mb = rss_mb()
    readings = []
    every = max(1, calls // CHECKPOINTS)
    start = time.perf_counter()
    for j in range(calls):
        b.predict([inputs[(warmup + j) % len(inputs)]], backend=backend)
        if (j + 1) % every == 0 or j + 1 == calls:
            readings.append([j + 1, rss_mb()])
    seconds = time.perf_counter() - start
    end_mb = readings[-1][1]
    return {"backend": backend, "calls": calls, "warmup": warmup, "inputs": len(inputs),
            "rss_mb_after_warmup": start_mb, "rss_mb_end": end_mb,
            "growth_percent": 100 * (end_mb - start_mb) / start_mb,
            "us_per_call": seconds / calls * 1e6, "readings": readings,
            "tensorflow_imported": "tensorflow" in sys.modules}


def in_process(bundle: Path, backend: str, calls: int, warmup: int) -> dict:
    """:func:`soak` in a fresh Python process (its RSS is the backend's alone)."""
    args = {"bundle": str(bundle), "backend": backend, "calls": calls, "warmup": warmup}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--worker", json.dumps(args)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["exited"]
        return {"backend": backend, "error": tail[0]}
    return json.loads(lines[-1])


def run(model: str = MODEL, *, weights="DEFAULT", bundle: Path | None = None,
        backends=BACKENDS, calls: int = CALLS, warmup: int = WARMUP) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if bundle is None:
            from export import export_model

            bundle = Path(tmp) / model
            export_model(model, bundle, weights=weights, precisions="fp32")
        rows = [in_process(bundle, b, calls, warmup) for b in backends]
    return {"model": model, "limit_percent": LIMIT_PERCENT, "rows": rows}


def markdown(results: dict) -> str:
    r0 = results["result"]
    lines = [f"Measured {results['date']} on {results['machine']}: `{results['command']}`. "
             f"`Bundle.predict` of one test input per call on `{r0['model']}` (fp32), each "
             "backend in a fresh process; RSS after the warm-up calls and after the last "
             f"call (target: within {r0['limit_percent']:g} %).", "",
             "| backend | calls | warm-up | RSS after warm-up MB | RSS at the end MB | growth | "
             "µs/call | RSS at each tenth MB |", "|---|---|---|---|---|---|---|---|"]
    for r in r0["rows"]:
        if "error" in r:
            lines.append(f"| {r['backend']} | error: {r['error']} | | | | | | |")
            continue
        trace = " ".join(f"{mb:.1f}" for _, mb in r["readings"])
        lines.append(f"| {r['backend']} | {r['calls']:,} | {r['warmup']:,} | "
                     f"{r['rss_mb_after_warmup']:.1f} | {r['rss_mb_end']:.1f} | "
                     f"{r['growth_percent']:+.2f} % | {r['us_per_call']:.0f} | {trace} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        args = json.loads(argv[1])
        print(json.dumps(soak(Path(args["bundle"]), args["backend"], args["calls"],
                              args["warmup"])))
        return 0
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    p.add_argument("--model", default=MODEL)
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--calls", type=int, default=CALLS)
    p.add_argument("--warmup", type=int, default=WARMUP)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.soak", argv),
               "result": run(args.model, backends=args.backends.split(","), calls=args.calls,
                             warmup=args.warmup)}
    save(results, markdown(results), args.out, "soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
