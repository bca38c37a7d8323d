"""The parity matrix on aarch64 kernels: ``python -m benchmarks.aarch64_matrix``.

Every shipped model exported at every precision its spec offers (fp32 and dynamic, and
int8 / float16 where offered), then ``verify_bundle(..., arch="aarch64")``
(:mod:`export.verification.arch`): each artifact re-run on the aarch64 builds of the same
runtimes under qemu-user (a Neoverse N1), on the feeds the x86 run had, and held to the
limits the x86 run is held to. The emulated processes are shared by all the models
(:func:`export.verification.arch.shared_emulation`). ``--limit N`` verifies on the first N
test samples (the reference's calibration and random feeds besides), as CI's matrix does
(tests/test_parity_matrix.py, ``REVERIFY``); without it, the whole test split.

Per cell: pass / fail, max |diff| from Keras on x86 and on aarch64 (``tensor_max_abs``),
the max |diff| between the two runs of the same artifact, the task metric on both, the
feeds run and the seconds. Needs root and an aarch64 root (built on first use, about 2
minutes). Writes benchmarks/results/aarch64.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import RESULTS, save, stamp

# Tasks whose test samples stream through a step graph, one call per frame or symbol: 16
# char_lm windows made 4,598 step feeds per artifact group, minutes each under emulation
STREAMED_TASKS = ("lm", "kws")


def run_model(name: str, work: Path, limit: int | None,
              tensor_samples: int | None = None, streamed_samples: int | None = None,
              precisions: list[str] | None = None) -> dict:
    import zoo
    from export import export_model
    from export.pipeline import verify_bundle

    spec = zoo.get_spec(name)
    precisions = [p for p in spec.precisions if not precisions or p in precisions]
    if streamed_samples is not None and spec.task in STREAMED_TASKS:
        limit = tensor_samples = streamed_samples
    print(f"[aarch64] exporting {name} at {', '.join(precisions)}", file=sys.stderr,
          flush=True)
    start = time.perf_counter()
    export_model(name, work / name, precisions=precisions)
    export_seconds = time.perf_counter() - start
    print(f"[aarch64] verifying {name} on aarch64", file=sys.stderr, flush=True)
    start = time.perf_counter()
    report = verify_bundle(work / name, limit=limit, arch="aarch64",
                           tensor_samples=tensor_samples)
    seconds = time.perf_counter() - start
    host = {(r["format"], r["precision"]): r for r in report["results"]}
    metric = next(iter(report["reference"]["metrics"]), None)
    cells = []
    for r in report["arch_results"]:
        x86 = host[(r["format"], r["precision"])]
        tensor = next((c for c in r["checks"] if c["check"].startswith("tensor")), None)
        cells.append({
            "format": r["format"], "precision": r["precision"], "passed": r["passed"],
            "x86_passed": x86["passed"],
            "tensor_max_abs_x86": x86.get("tensor_max_abs"),
            "tensor_max_abs_aarch64": r.get("tensor_max_abs"),
            "tensor_check": tensor and tensor["check"],
            "tolerance": tensor and tensor["limit"],
            "max_abs_vs_x86": r["max_abs_vs_host"],
            "metric": metric,
            "metric_x86": (x86.get("metrics") or {}).get(metric),
            "metric_aarch64": (r.get("metrics") or {}).get(metric),
            "emulated_feeds": r["emulated_feeds"], "one_by_one": r["one_by_one"],
            "failed_checks": [c for c in r["checks"] if not c["passed"]]})
    return {"model": name, "precisions": precisions, "limit": limit,
            "tensor_samples": tensor_samples,
            "test_samples": report["test_samples"], "export_seconds": export_seconds,
            "verify_seconds": seconds, "passed": report["passed"],
            "failures": report["failures"], "runtimes": report["arch_runtimes"]["aarch64"],
            "cells": cells}


def markdown(results: dict) -> str:
    limit = results["limit"]
    lines = [f"Measured {results['date']} on {results['machine']}: `{results['command']}`. "
             "Every shipped model at every precision its spec offers, each artifact run on "
             "the aarch64 builds of the same runtimes under qemu-user (Neoverse N1) on the "
             "feeds of the x86 run: "
             + (f"the first {limit} test samples" if limit else "the whole test split")
             + (f", tensor parity on the first {results['tensor_samples']} real inputs"
                if results.get("tensor_samples") else ", tensor parity on the task's real "
                "inputs (calibration samples up to 200)") + " and random feeds"
             + "".join(f" ({', '.join(ms)}: {n} samples and {n} tensor inputs, as they stream "
                       "each sample through a step graph, one call per symbol or frame)"
                       for n, ms in _other_limits(results).items())
             + ", held to the x86 limits. max |diff| vs Keras is the largest of any output "
             "on any feed; limit: the cell's tensor check's (on the max |diff|, or, marked *, "
             "on a relative or per-output measure of it; none: an int8 or dynamic cell's "
             "metric drop is judged instead); vs x86 is between the two runs of the same "
             "artifact. Verify s: the x86 checks and the aarch64 run of every cell of the "
             f"model (emulated processes shared by all models; root build "
             f"{results.get('root_build_seconds', '?')} s, not included).", "",
             "| model | format | precision | aarch64 | max\\|diff\\| vs Keras x86 | "
             "aarch64 | limit | vs x86 | metric x86 | aarch64 | feeds | verify s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    beyond, later = [], []
    for m in sorted(results["models"], key=lambda m: m["model"]):
        if "measured" in m:
            later.append((m["measured"]["date"], m["measured"]["command"], m["model"]))
        if "error" in m:
            lines.append(f"| {m['model']} | not verified: {m['error']} |||||||||||")
            continue
        for i, c in enumerate(m["cells"]):
            lines.append(
                f"| {m['model'] if i == 0 else ''} | {c['format']} | {c['precision']} | "
                f"{'PASS' if c['passed'] else 'FAIL'} | {_e(c['tensor_max_abs_x86'])} | "
                f"{_e(c['tensor_max_abs_aarch64'])} | {_limit(c)} | "
                f"{_e(c['max_abs_vs_x86'])} | {_f(c['metric_x86'])} | "
                f"{_f(c['metric_aarch64'])} | {c['emulated_feeds']} | "
                + (f"{m['verify_seconds']:.0f}" if i == 0 else "") + " |")
            if not c["passed"] and c["x86_passed"]:
                beyond.append(f"- {m['model']} {c['format']}/{c['precision']}: " + "; ".join(
                    f"{k['check']} = {k['value']:.3g} (limit {k['limit']})"
                    for k in c["failed_checks"]))
    seconds = [m["verify_seconds"] for m in results["models"] if "verify_seconds" in m]
    if seconds:
        lines += ["", f"Verify seconds per model: median {sorted(seconds)[len(seconds) // 2]:.0f}, "
                  f"max {max(seconds):.0f}, total {sum(seconds):.0f} for {len(seconds)} models."]
    lines += ["", "Beyond the x86 limits on aarch64 only: " + ("none." if not beyond else "")]
    lines += beyond
    runs: dict = {}
    for date, command, model in later:
        runs.setdefault((date, command), []).append(model)
    if runs:
        lines += ["", "Measured in a later run:", ""]
        lines += [f"- {', '.join(models)}: {date}, `{command}`"
                  for (date, command), models in runs.items()]
    return "\n".join(lines) + "\n"


def _other_limits(results: dict) -> dict[int, list[str]]:
    """``{limit: [model, ...]}`` of the models verified on another limit than the run's."""
    out: dict[int, list[str]] = {}
    for m in results["models"]:
        if m.get("limit") not in (None, results["limit"]):
            out.setdefault(m["limit"], []).append(m["model"])
    return out


def _limit(c: dict) -> str:
    if c.get("tolerance") is None:
        return "none"
    return _e(c["tolerance"]) + ("" if c.get("tensor_check") == "tensor max_abs" else "*")


def _e(v) -> str:
    return "" if v is None else f"{v:.2e}"


def _f(v) -> str:
    return "" if v is None else f"{v:.4f}"


def main(argv=None) -> int:
    import json

    from export.verification import arch
    from zoo import list_models

    p = argparse.ArgumentParser(prog="python -m benchmarks.aarch64_matrix",
                                description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(list_models(pretrained=True)))
    p.add_argument("--limit", type=int, default=None,
                   help="verify on the first N test samples (default: the whole split)")
    p.add_argument("--tensor-samples", type=int, default=None,
                   help="at most N real inputs for tensor parity (default: the task's)")
    p.add_argument("--streamed-samples", type=int, default=None,
                   help="--limit and --tensor-samples for the models whose samples stream "
                        f"through a step graph ({', '.join(STREAMED_TASKS)} tasks)")
    p.add_argument("--precisions", default=None,
                   help="only these of each spec's precisions (comma-separated)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true",
                   help="only re-render <out>/aarch64.md from <out>/aarch64.json")
    p.add_argument("--update", action="store_true",
                   help="replace only these models' entries of <out>/aarch64.json (each "
                        "entry keeps the date and command it was measured with)")
    args = p.parse_args(argv)
    if args.render:
        results = json.loads((args.out / "aarch64.json").read_text())
        save(results, markdown(results), args.out, "aarch64")
        return 0
    previous = json.loads((args.out / "aarch64.json").read_text()) if args.update else None
    arch.preflight()
    start = time.perf_counter()
    root = arch.ensure_root()
    state = arch.root_state(root) or {}
    run = stamp("benchmarks.aarch64_matrix", argv)
    results = previous or {**run, "limit": args.limit,
               "tensor_samples": args.tensor_samples,
               "streamed_samples": args.streamed_samples,
               "root_build_seconds": state.get("build_seconds"),
               "root_ready_seconds": round(time.perf_counter() - start, 1), "models": []}
    with tempfile.TemporaryDirectory(prefix="lstm-zoo-aarch64-") as tmp, \
            arch.shared_emulation():
        for name in [m for m in args.models.split(",") if m]:
            try:
                entry = run_model(name, Path(tmp), args.limit, args.tensor_samples,
                                  args.streamed_samples,
                                  args.precisions and args.precisions.split(","))
            except Exception as e:  # one model's failure is reported, the run goes on
                print(f"[aarch64] {name} failed: {type(e).__name__}: {e}", file=sys.stderr,
                      flush=True)
                entry = {"model": name, "error": f"{type(e).__name__}: {e}"}
            if previous is not None:
                entry["measured"] = {k: run[k] for k in ("date", "command")}
            results["models"] = [m for m in results["models"] if m["model"] != name] + [entry]
            save(results, markdown(results), args.out, "aarch64")  # kept as it goes
    return 0


if __name__ == "__main__":
    sys.exit(main())
