"""Variable-length text in exported graphs: masking vs fixed padding vs each text at its own
length. ``python -m benchmarks.text_padding``.

``bilstm_text`` trains on padded batches with the padding masked. On a device a review can
reach the graph three ways, each converted to TFLite and ONNX (fp32) from the shipped
weights and run on LiteRT and ONNX Runtime, one thread, batch 1:

- ``exact`` (what the pipeline exports): the graph without the mask, fed each review at
  its own length (the time axis is dynamic);
- ``masked``: the trained graph with its mask, fed each review padded with id 0 to 256;
- ``pad_post`` / ``pad_pre``: the graph without the mask, fed 256 ids, zeros after or
  before the review: the fixed-shape graph a runtime without dynamic shapes needs.

For each: the recurrent ops the converters produced (fused LSTM or a loop), the accuracy
on the test reviews, the largest probability difference from Keras' masked model on the
unpadded review (the reference), and the mean time per review.

Writes benchmarks/results/text_padding.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.measure import outputs_and_time
from benchmarks.run import RESULTS, save, stamp

WIDTH = 256
VARIANTS = ("exact", "masked", "pad_post", "pad_pre")
RECURRENT_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "WHILE",
                 "LSTM", "Loop", "Scan")


def feeds(ids: list[np.ndarray], variant: str) -> list[np.ndarray]:
    """Each review's ids as the variant feeds them, shape (1, T)."""
    out = []
    for x in ids:
        if variant == "exact":
            out.append(x[None])
            continue
        row = np.zeros((1, WIDTH), np.int32)
        if variant == "pad_pre":
            row[0, WIDTH - len(x):] = x
        else:
            row[0, : len(x)] = x
        out.append(row)
    return out


def run(name: str = "bilstm_text", weights="DEFAULT", limit: int | None = None,
        timing: int = 200) -> dict:
    from export.conversion import onnx as onnx_export
    from export.conversion import tflite
    from export.conversion.graphs import input_infos
    from export.verification.runtime import LiteRTRunner, ORTRunner
    from zoo import create_model, datasets
    from zoo._keras import tf
    from zoo.models.bilstm_text import unmasked
    from zoo.registry import get_spec
    from zoo.tasks import get_task

    try:  # the Keras reference is not timed; TensorFlow's pool is fixed once it started
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass
    spec, task = get_spec(name), get_task("text")
    test = datasets.load(spec.data.dataset, spec.data.test)
    texts, labels = list(test.texts[:limit]), np.asarray(test.y[:limit])
    index = task.index(spec.meta)
    ids = [task.encode(t, spec.meta, index) for t in texts]
    masked = create_model(name, weights=weights)
    reference = np.concatenate([masked(x).numpy() for x in feeds(ids, "exact")])
    graphs = {"masked": masked, "exact": unmasked(masked)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            graph = graphs["masked" if variant == "masked" else "exact"]
            inputs = feeds(ids, variant)
            for fmt, convert, runner_cls in (("tflite", tflite.convert, LiteRTRunner),
                                             ("onnx", onnx_export.convert, ORTRunner)):
                path = Path(tmp) / f"{variant}.{fmt}"
                row = {"variant": variant, "format": fmt}
                try:
                    path.write_bytes(convert(graph, "fp32"))
                except Exception as e:  # a converter refusal is a result here
                    rows.append({**row, "error": str(e).splitlines()[0][:300]})
                    continue
                counts = (tflite.op_counts if fmt == "tflite" else onnx_export.op_counts)(path)
                runner = runner_cls(path, [i.to_json() for i in input_infos(graph)])
                if fmt == "tflite":
                    def call(x, r=runner._interpreter):
                        r.interpreter.reset_all_variables()
                        return r.runner(tokens=x)["probs"]
                else:
                    def call(x, r=runner):
                        return r.session.run(["probs"], {"tokens": x})[0]
                try:
                    probs, seconds = outputs_and_time(call, inputs, timing)
                except Exception as e:  # e.g. a runtime that cannot run the graph
                    rows.append({**row, "error": f"run failed: {str(e).splitlines()[0][:300]}"})
                    continue
                rows.append({
                    **row,
                    "recurrent_ops": {k: v for k, v in counts.items() if k in RECURRENT_OPS},
                    "size_kb": path.stat().st_size / 1024,
                    "accuracy": float(np.mean(probs.argmax(-1) == labels)),
                    "max_diff_vs_masked_keras": float(np.abs(probs - reference).max()),
                    "ms_per_review": seconds * 1e3,
                })
    return {"model": name, "reviews": len(texts),
            "weights": "shipped weights" if weights == "DEFAULT" else
                       "random weights" if weights is None else str(weights),
            "timed_reviews": min(timing, len(texts)),
            "mean_tokens": float(np.mean([len(x) for x in ids])), "width": WIDTH,
            "keras_accuracy": float(np.mean(reference.argmax(-1) == labels)), "rows": rows}


def markdown(results: dict) -> str:
    r0 = results["result"]
    lines = [f"Measured {results['date']} on {results['machine']}, one thread, batch 1: "
             f"`{r0['model']}` ({r0['weights']}) on {r0['reviews']} test reviews "
             f"({r0['mean_tokens']:.0f} words on average; fixed shapes pad to "
             f"{r0['width']}); time per review over the first {r0['timed_reviews']}. Keras "
             f"(masked model, unpadded review): accuracy {r0['keras_accuracy']:.4f}.", "",
             "| variant | format | recurrent ops | KB | accuracy | max diff vs Keras | "
             "ms/review |", "|---|---|---|---|---|---|---|"]
    for r in r0["rows"]:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['format']} | refused: {r['error']} | | | | |")
            continue
        ops = ", ".join(f"{k}x{v}" for k, v in r["recurrent_ops"].items()) or "none"
        lines.append(f"| {r['variant']} | {r['format']} | {ops} | {r['size_kb']:.0f} | "
                     f"{r['accuracy']:.4f} | {r['max_diff_vs_masked_keras']:.2e} | "
                     f"{r['ms_per_review']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.text_padding", description=__doc__)
    p.add_argument("--model", default="bilstm_text")
    p.add_argument("--limit", type=int, default=None, help="test reviews (default: all)")
    p.add_argument("--timing", type=int, default=200, help="reviews timed per variant")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.text_padding", argv if argv is not None else sys.argv[1:]),
               "result": run(args.model, limit=args.limit, timing=args.timing)}
    text = markdown(results)
    save(results, text, args.out, "text_padding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
