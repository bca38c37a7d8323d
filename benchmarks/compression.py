"""Compression targets, measured in one run: ``python -m benchmarks.compression``.

For each pretrained model, exports (and verifies) in one process:
  - the baseline bundle (fp32 + dynamic),
  - 50 % structured unit pruning (fp32 + dynamic), fine-tuned,
  - 80 % magnitude pruning + dynamic-range int8 (fine-tuned), sized with gzip,
  - ``precision="auto"`` with a 0.5 pt budget,
  - QAT + full int8 against post-training int8 of the baseline, with a control: the same
    fine-tuning in float (``prune=0``, a no-op mask) followed by post-training int8, so
    that a gain is QAT's and not the extra epochs',
then measures batch-1 latency of the baseline and the structured bundle in separate
processes (1 thread, LiteRT and ONNX Runtime) and checks the targets of issue 3 as ratios
within this run. Writes benchmarks/results/compression.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import RESULTS, measure

# target -> (comparison, limit): "<=" the value must not exceed the limit, ">=" reach it.
TARGETS = {
    "pruned80_dynamic_gzip_vs_fp32": ("<=", 0.12),
    "pruned80_metric_drop": ("<=", 0.01),
    "structured50_speedup": (">=", 1.6),
    "structured50_metric_drop": ("<=", 0.01),
    "auto_size_vs_fp32": ("<=", 0.28),
    "auto_metric_drop": ("<=", 0.005),
    # the issue asks for QAT's int8 drop below post-training int8's on at least one model
    "qat_int8_gain_vs_ptq": (">", 0.0),
}
BACKENDS = {"tflite": "litert", "onnx": "onnx"}


def _export(name: str, out: Path, **kwargs) -> tuple[dict, Path, float]:
    """Exports; a bundle that fails its checks is still measured (from ``<out>.failed``)."""
    from export import export_model
    from zoo.errors import ParityError

    print(f"[compression] {name}: {kwargs or 'baseline'}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        parity = export_model(name, out, **kwargs)
        path = out
    except ParityError:
        path = out.with_name(out.name + ".failed")
        parity = json.loads((path / "parity.json").read_text())
    return parity, path, time.perf_counter() - start


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _size(manifest: dict, fmt: str, precision: str, key: str = "size") -> int | None:
    sizes = [a[key] for a in manifest["artifacts"]
             if a["format"] == fmt and a["precision"] == precision]
    return sum(sizes) if sizes else None


def _drop(task, baseline: dict, parity: dict, fmt: str, precision: str) -> float | None:
    """Metric drop of an artifact against the *uncompressed* Keras model."""
    sign = 1 if task.higher_is_better else -1
    for r in parity["results"]:
        if r["format"] == fmt and r["precision"] == precision:
            return sign * (baseline[task.metric] - r["metrics"][task.metric])
    return None


def run_model(name: str, runs: int, work: Path, formats: tuple[str, ...] = tuple(BACKENDS),
              **options) -> dict:
    """Measures one model in ``formats`` (a subset of :data:`BACKENDS`' keys). ``options``
    go to every export (the tests pass random ``weights=None`` and a short
    ``finetune_epochs`` for a tiny model)."""
    from export.compression.prune import schedule_of, stage_recipe
    from zoo import get_spec
    from zoo.tasks import get_task

    unknown = sorted(set(formats) - set(BACKENDS))
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {tuple(BACKENDS)}; got "
                         f"{tuple(formats)}" + (f" (unknown: {unknown})" if unknown else ""))
    options["formats"] = tuple(formats)
    spec = get_spec(name)
    task = get_task(spec.task)
    base, base_dir, base_s = _export(name, work / "baseline", precisions="fp32,dynamic,int8",
                                     **options)
    structured, structured_dir, structured_s = _export(
        name, work / "structured50", structured=0.5, precisions="fp32,dynamic", **options)
    pruned, pruned_dir, pruned_s = _export(name, work / "pruned80", prune=0.8,
                                           precisions="dynamic", **options)
    auto, auto_dir, auto_s = _export(name, work / "auto", precisions="auto", max_drop=0.005,
                                     **options)
    qat, _, qat_s = _export(name, work / "qat", qat=True, precisions="int8", **options)
    control, _, control_s = _export(name, work / "float_finetune", prune=0.0,
                                    precisions="int8", **options)
    keras_metrics = base["reference"]["metrics"]
    base_manifest = _manifest(base_dir)
    record: dict = {"task_metric": task.metric, "baseline_metrics": keras_metrics,
                    "seconds": {"baseline": base_s, "structured50": structured_s,
                                "pruned80": pruned_s, "auto": auto_s, "qat": qat_s,
                                "float_finetune": control_s},
                    "structured50": _manifest(structured_dir)["compression"]["structured"],
                    "formats": {}}
    record["pruned80_keras"] = pruned["compression"]
    record["schedules"] = {stage: schedule_of(stage_recipe(spec, stage))
                           for stage in ("structured", "prune", "qat")}
    record["qat_keras"] = qat["compression"]
    record["float_finetune_keras"] = control["compression"]
    for fmt in formats:
        backend = BACKENDS[fmt]
        fp32 = _size(base_manifest, fmt, "fp32")
        entry: dict = {"fp32_bytes": fp32, "latency_us": {}}
        gz = _size(_manifest(pruned_dir), fmt, "dynamic", "gzip_size")
        entry["pruned80_dynamic_gzip_bytes"] = gz
        entry["pruned80_dynamic_gzip_vs_fp32"] = gz / fp32
        entry["pruned80_metric_drop"] = _drop(task, keras_metrics, pruned, fmt, "dynamic")
        for precision in ("fp32", "dynamic"):
            for label, path in (("baseline", base_dir), ("structured50", structured_dir)):
                m = measure(path, backend, precision, 1, runs, work)
                entry["latency_us"][f"{label}/{precision}"] = (
                    m["sample"]["median_us"] if "sample" in m else m)
        lat = entry["latency_us"]
        entry["structured50_speedup"] = lat["baseline/fp32"] / lat["structured50/fp32"]
        entry["structured50_speedup_dynamic"] = (lat["baseline/dynamic"]
                                                 / lat["structured50/dynamic"])
        entry["structured50_metric_drop"] = max(
            _drop(task, keras_metrics, structured, fmt, p) for p in ("fp32", "dynamic"))
        entry["structured50_bytes"] = _size(_manifest(structured_dir), fmt, "fp32")
        chosen = auto["auto"][fmt]["chosen"]
        entry["auto_chosen"] = chosen
        entry["auto_size_vs_fp32"] = (None if chosen is None
                                      else _size(_manifest(auto_dir), fmt, chosen) / fp32)
        entry["auto_metric_drop"] = (None if chosen is None
                                     else _drop(task, keras_metrics, auto, fmt, chosen))
        entry["ptq_int8_metric_drop"] = _drop(task, keras_metrics, base, fmt, "int8")
        entry["qat_int8_metric_drop"] = _drop(task, keras_metrics, qat, fmt, "int8")
        entry["float_finetune_int8_metric_drop"] = _drop(task, keras_metrics, control, fmt,
                                                         "int8")
        entry["qat_int8_gain_vs_ptq"] = _minus(entry["ptq_int8_metric_drop"],
                                               entry["qat_int8_metric_drop"])
        entry["qat_int8_gain_vs_float_finetune"] = _minus(
            entry["float_finetune_int8_metric_drop"], entry["qat_int8_metric_drop"])
        record["formats"][fmt] = entry
    return record


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def check_targets(results: dict) -> list[dict]:
    checks = []
    for name, m in results["models"].items():
        for fmt, entry in m["formats"].items():
            for key, (op, limit) in TARGETS.items():
                value = entry.get(key)
                if value is None:
                    continue
                met = {"<=": value <= limit + 1e-12, ">=": value >= limit,
                       ">": value > limit}[op]
                checks.append({"model": name, "format": fmt, "target": key, "value": value,
                               "op": op, "limit": limit, "met": bool(met)})
    return checks


def markdown(results: dict) -> str:
    lines = [f"Measured {results['created']} on {results['machine']['cpus']} CPUs, batch 1, "
             f"1 thread, median of {results['runs']} runs per latency, each in its own "
             "process; metric drops are against the uncompressed Keras model.", ""]
    for name, m in results["models"].items():
        s = m["structured50"]
        units = ", ".join(f"{k} {a}->{b}" for k, (a, b) in s["units"].items())
        lines += [f"### {name}", "", f"Measured {m.get('measured', results['created'])}.", "",
                  f"50 % structured: {units}; parameters {s['params'][0]:,} -> "
                  f"{s['params'][1]:,}.", "",
                  "| format | latency fp32 base -> 50 % structured µs | speedup | dynamic "
                  "speedup | structured drop | 80 % pruned + dynamic, gzip KB (x fp32) | "
                  "pruned drop | auto | auto size x fp32 | auto drop |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for fmt, e in m["formats"].items():
            lat = e["latency_us"]
            lines.append(
                f"| {fmt} | {lat['baseline/fp32']:.0f} -> {lat['structured50/fp32']:.0f} | "
                f"{e['structured50_speedup']:.2f}x | {e['structured50_speedup_dynamic']:.2f}x "
                f"| {e['structured50_metric_drop']:+.4f} | "
                f"{e['pruned80_dynamic_gzip_bytes'] / 1024:.0f} "
                f"({e['pruned80_dynamic_gzip_vs_fp32']:.3f}) | "
                f"{e['pruned80_metric_drop']:+.4f} | {e['auto_chosen']} | "
                f"{_fmt(e['auto_size_vs_fp32'], '.3f')} | {_fmt(e['auto_metric_drop'], '+.4f')} |")
        # Each int8 drop splits into the Keras model's own change (fine-tuning) and the
        # conversion's loss against that Keras model.
        keras_drop = {"ptq": 0.0, "float_finetune": m["float_finetune_keras"]["metric_drop"],
                      "qat": m["qat_keras"]["metric_drop"]}
        sched = m.get("schedules", {})
        lines += ["", "int8 drop against the uncompressed Keras model (Keras model's own "
                  "change + conversion loss); fine-tuning: float control "
                  f"{sched.get('prune')}, QAT {sched.get('qat')}:", "",
                  "| format | post-training int8 | float fine-tune, then int8 | QAT, then int8 |",
                  "|---|---|---|---|"]
        for fmt, e in m["formats"].items():
            cells = []
            for key in ("ptq", "float_finetune", "qat"):
                total = e[f"{key}_int8_metric_drop"]
                cells.append("" if total is None else f"{total:+.4f} ({keras_drop[key]:+.4f} "
                             f"{total - keras_drop[key]:+.4f})")
            lines.append(f"| {fmt} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["| model | format | target | value | limit | met |", "|---|---|---|---|---|---|"]
    lines += [f"| {c['model']} | {c['format']} | {c['target']} | {c['value']:.3f} | "
              f"{c['op']} {c['limit']} | {'yes' if c['met'] else 'NO'} |"
              for c in results["targets"]]
    return "\n".join(lines) + "\n"


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def main(argv=None) -> int:
    from zoo import list_models
    from zoo.weights import atomic_write_bytes

    p = argparse.ArgumentParser(prog="python -m benchmarks.compression",
                                description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(list_models(pretrained=True)))
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--formats", default=",".join(BACKENDS),
                   help="comma-separated subset of %(default)s (with --update, a model's "
                        "record is replaced whole: formats left out are dropped from it)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true",
                   help="only re-render compression.md from <out>/compression.json")
    p.add_argument("--update", action="store_true",
                   help="keep the other models' records in <out>/compression.json and "
                        "re-measure only --models (each model's ratios come from one run)")
    args = p.parse_args(argv)
    formats = tuple(dict.fromkeys(f.strip() for f in args.formats.split(",") if f.strip()))
    if not formats or set(formats) - set(BACKENDS):
        p.error(f"--formats: expected a comma-separated subset of {','.join(BACKENDS)}; got "
                f"{args.formats!r}")
    if args.render:
        results = json.loads((args.out / "compression.json").read_text())
    else:
        import os

        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        previous = args.out / "compression.json"
        kept = (json.loads(previous.read_text())["models"]
                if args.update and previous.is_file() else {})
        results = {"created": now,
                   "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                   "runs": args.runs, "models": kept}
        with tempfile.TemporaryDirectory(prefix="lstm-zoo-compression-") as tmp:
            for name in [m for m in args.models.split(",") if m]:
                work = Path(tmp) / name
                work.mkdir()
                results["models"][name] = {**run_model(name, args.runs, work, formats),
                                           "measured": now}
        results["targets"] = check_targets(results)
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out / "compression.json",
                           (json.dumps(results, indent=2, default=str) + "\n").encode())
    text = markdown(results)
    atomic_write_bytes(args.out / "compression.md", text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
