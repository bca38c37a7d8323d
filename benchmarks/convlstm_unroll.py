"""ConvLSTM in exported graphs: the converters' loop vs the unrolled graph.
``python -m benchmarks.convlstm_unroll``.

Neither TFLite nor ONNX has a ConvLSTM op. ``convlstm_nextframe`` can reach a device two
ways, each converted to TFLite and ONNX from the same weights and run on LiteRT and ONNX
Runtime, one thread, batch 1:

- ``loop``: the Keras model as it is: each ``ConvLSTM2D`` becomes a WHILE loop (TFLite) or
  a Loop (ONNX) whose body runs the cell's eight convolutions per step;
- ``unrolled`` (what the pipeline exports): the same variables written out over the fixed
  10 + 10 steps (:func:`zoo.models.convlstm_nextframe.unrolled_graph`): two convolutions
  per step, the input convolutions hoisted out of the recurrence.

For each: conversion time, loop ops, size, the largest difference from Keras over the
clips, the per-pixel MSE on them, the mean time per clip; and whether full int8 converts
(calibrating a graph with a loop crashes TFLite's calibrator, so the pipeline refuses it).

Writes benchmarks/results/convlstm_unroll.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import outputs_and_time
from benchmarks.run import RESULTS, save, stamp

FORMS = ("loop", "unrolled")
LOOP_OPS = ("WHILE", "CALL_ONCE", "Loop", "Scan")


def run(name: str = "convlstm_nextframe", weights="DEFAULT", limit: int | None = 64,
        timing: int = 32, single_thread: bool = True) -> dict:
    from export.conversion import onnx as onnx_export
    from export.conversion import tflite
    from export.conversion.graphs import input_infos
    from export.verification.runtime import LiteRTRunner, ORTRunner
    from zoo import create_model, datasets
    from zoo._keras import tf
    from zoo.errors import UnsupportedError
    from zoo.models.convlstm_nextframe import unrolled_graph
    from zoo.registry import get_spec

    if single_thread:  # Keras on one thread too (tests keep their process's setting)
        try:  # TensorFlow's pool is fixed once it started
            tf.config.threading.set_intra_op_parallelism_threads(1)
        except RuntimeError:
            pass
    spec = get_spec(name)
    test = datasets.load(spec.data.dataset, spec.data.test)
    test = test.head(limit) if limit else test
    x, y = np.asarray(test.x, np.float32), np.asarray(test.y, np.float32)
    inputs = [x[i : i + 1] for i in range(len(x))]
    model = create_model(name, weights=weights)
    graphs = {"loop": model, "unrolled": unrolled_graph(model)}
    reference = np.concatenate([model(c, training=False).numpy() for c in inputs])
    keras_fn = tf.function(lambda a: model(a, training=False))
    _, keras_seconds = outputs_and_time(lambda c: keras_fn(c).numpy(), inputs, timing)
    calibration = [{"frames": c} for c in np.asarray(
        datasets.load(spec.data.dataset, spec.data.calibration).x[:16], np.float32)[:, None]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for form in FORMS:
            graph = graphs[form]
            for fmt, convert, runner_cls in (("tflite", tflite.convert, LiteRTRunner),
                                             ("onnx", onnx_export.convert, ORTRunner)):
                path = Path(tmp) / f"{form}.{fmt}"
                row = {"form": form, "format": fmt}
                start = time.perf_counter()
                try:
                    path.write_bytes(convert(graph, "fp32"))
                except Exception as e:  # a converter refusal is a result here
                    rows.append({**row, "error": str(e).splitlines()[0][:300]})
                    continue
                row["convert_s"] = time.perf_counter() - start
                counts = (tflite.op_counts if fmt == "tflite" else onnx_export.op_counts)(path)
                runner = runner_cls(path, [i.to_json() for i in input_infos(graph)])
                out, seconds = outputs_and_time(
                    lambda c, r=runner: r({"frames": c})["future"], inputs, timing)
                row.update({
                    "loops": {k: v for k, v in counts.items() if k in LOOP_OPS},
                    "convolutions": counts.get("CONV_2D", 0) + counts.get("Conv", 0),
                    "ops": sum(counts.values()),
                    "size_kb": path.stat().st_size / 1024,
                    "max_diff_vs_keras": float(np.abs(out - reference).max()),
                    "mse": float(np.mean(np.square(out.astype(np.float64) - y))),
                    "ms_per_clip": seconds * 1e3,
                })
                if fmt == "tflite":
                    try:
                        tflite.convert(graph, "int8", calibration)
                        row["int8"] = "converts"
                    except UnsupportedError as e:
                        row["int8"] = f"refused: {str(e).splitlines()[0][:200]}"
                rows.append(row)
    return {"model": name, "clips": len(inputs), "timed_clips": min(timing, len(inputs)),
            "weights": "shipped weights" if weights == "DEFAULT" else
                       "random weights" if weights is None else str(weights),
            "keras_ms_per_clip": keras_seconds * 1e3,
            "keras_mse": float(np.mean(np.square(reference.astype(np.float64) - y))),
            "rows": rows}


def markdown(results: dict) -> str:
    r0 = results["result"]
    lines = [f"Measured {results['date']} on {results['machine']}, one thread, batch 1: "
             f"`{r0['model']}` ({r0['weights']}) on {r0['clips']} test clips; time per clip "
             f"over the first {r0['timed_clips']}. Keras tf.function (the loop): "
             f"{r0['keras_ms_per_clip']:.2f} ms per clip, MSE {r0['keras_mse']:.5f}. "
             f"Command: `{results['command'].strip()}`.", "",
             "| form | format | loops | convolutions | ops | KB | convert s | max diff vs "
             "Keras | MSE | ms/clip | full int8 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in r0["rows"]:
        if "error" in r:
            lines.append(f"| {r['form']} | {r['format']} | refused: {r['error']} "
                         "| | | | | | | | |")
            continue
        loops = ", ".join(f"{k}x{v}" for k, v in r["loops"].items()) or "none"
        lines.append(f"| {r['form']} | {r['format']} | {loops} | {r['convolutions']} | "
                     f"{r['ops']} | {r['size_kb']:.0f} | {r['convert_s']:.1f} | "
                     f"{r['max_diff_vs_keras']:.2e} | {r['mse']:.5f} | {r['ms_per_clip']:.2f} "
                     f"| {r.get('int8', '')} |")
    lines += ["", "Convolutions and ops are counted in the main graph: TFLite's op list does not "
              "reach into WHILE bodies (the loop runs the cell's eight convolutions per step "
              "there); ONNX's counts include the Loop bodies' nodes."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.convlstm_unroll", description=__doc__)
    p.add_argument("--model", default="convlstm_nextframe")
    p.add_argument("--limit", type=int, default=64, help="test clips (default 64)")
    p.add_argument("--timing", type=int, default=32, help="clips timed per form and format")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.convlstm_unroll", argv if argv is not None else sys.argv[1:]),
               "result": run(args.model, limit=args.limit, timing=args.timing)}
    save(results, markdown(results), args.out, "convlstm_unroll")
    return 0


if __name__ == "__main__":
    sys.exit(main())
