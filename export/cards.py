"""Model cards generated from weights metadata, the spec, and benchmark results.

Nothing here is written by hand: architecture and data come from the spec, measured
metrics from the weights' metadata, per-format numbers from the benchmarks' results. The
figures a card shows of those ship inside the package (:data:`FIGURES`, package data: an
installed lstm-zoo has no benchmarks/ folder), written by ``python -m benchmarks``,
``python -m benchmarks.transfer`` and ``python -m benchmarks.g2p_decoding`` from their
results (:func:`card_figures`).
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.registry import get_spec
from zoo.tasks import get_task
from zoo.weights import pretrained_path, read_metadata

FIGURES = Path(__file__).resolve().parent / "card_figures.json"


def load_benchmarks(path: Path = FIGURES) -> dict | None:
    """The shipped card figures (:func:`card_figures`), or None where there are none."""
    return json.loads(path.read_text()) if path.is_file() else None


def card_figures(bench: dict | None, transfer: dict | None,
                 decoding: dict | None = None) -> dict:
    """What :func:`card_markdown` reads of the benchmark results ``bench`` (``latest.json``
    of ``python -m benchmarks``), ``transfer`` (``transfer.json``) and ``decoding``
    (``g2p_decoding.json``): per model, its task metric, export time and the 1-thread rows
    it tabulates; each transfer experiment but its individual runs; per decoded model, its
    Keras rows and how many transcriptions each other fp32 backend gave unlike Keras."""
    models = {}
    for name, m in (bench or {}).get("models", {}).items():
        metric = m["task_metric"]
        models[name] = {"task_metric": metric, "export_seconds": m["export_seconds"], "rows": [
            {"backend": r["backend"], "precision": r["precision"], "threads": r["threads"],
             "size_bytes": r["size_bytes"], "sample": {"median_us": r["sample"]["median_us"]},
             "metrics": {metric: r["metrics"][metric]}, "metric_drop": r["metric_drop"]}
            for r in m["rows"]
            if r["threads"] == 1 and "sample" in r and r["metrics"] is not None]}
    return {"created": (bench or {}).get("created"), "models": models,
            "transfer": {name: {k: v for k, v in e.items() if k != "runs"}
                         for name, e in (transfer or {}).get("experiments", {}).items()},
            "decoding": {m["model"]: _decoding_figures(decoding, m)
                         for m in (decoding or {}).get("models", [])}}


def _decoding_figures(results: dict, model: dict) -> dict:
    unlike: dict[str, int] = {}
    for r in model["rows"]:
        if r["backend"] != "keras":
            unlike[r["backend"]] = unlike.get(r["backend"], 0) + r["disagreements_with_keras"]
    return {"created": results["date"], "machine": results["machine"],
            "command": results["command"], "test_words": model["test_words"],
            "rows": [{k: r[k] for k in ("decoder", "per", "word_accuracy", "ms_per_word")}
                     for r in model["rows"] if r["backend"] == "keras"],
            "unlike_keras": unlike}


def card_markdown(name: str, bench: dict | None = None) -> str:
    """The model card of ``name`` as markdown; ``bench``: the figures of
    :func:`card_figures` (``None``: a card without measured exports)."""
    spec = get_spec(name)
    lines = [f"# {name}", "", spec.description, "",
             f"- family: `{spec.family}`, task: `{spec.task}`",
             f"- builder config: `{spec.config()}`",
             "- exported graphs: " + "; ".join(
                 f"`{g.name}`({', '.join(g.inputs)}) → {', '.join(g.outputs)}"
                 for g in spec.graphs),
             f"- data: `{spec.data.dataset}` (train split `{spec.data.train}`, test split "
             f"`{spec.data.test}`, " + (f"install with `pip install 'lstm-zoo[{spec.data.extra}]'`)"
                                        if spec.data.extra else
                                        "fetched once with `lstm-zoo fetch-data`)"),
             f"- data license: {spec.data.license}", ""]
    for tag in spec.weights:
        meta = read_metadata(pretrained_path(name, tag))
        if not meta:
            lines += [f"## Weights `{tag}`", "", f"Not trained yet: `lstm-zoo train {name}`.", ""]
            continue
        metrics = ", ".join(f"{k} = {v:.4f}" for k, v in meta["metrics"][spec.data.test].items())
        lines += [f"## Weights `{tag}`", "",
                  f"- file: `{meta['file']}` ({meta['params']:,} parameters), sha256 "
                  f"`{meta['sha256']}`",
                  f"- measured on {meta['split']['test_samples']} {spec.data.test} samples "
                  f"(Keras): {metrics}",
                  f"- recipe: `{meta['recipe']['command']}` — {meta['recipe']['epochs']} epochs, "
                  f"{meta['training']['seconds']:.0f} s on {meta['training']['machine']}; "
                  f"re-running it must reproduce within "
                  f"{meta['recipe'].get('reproduce_tolerance', {})}",
                  *_target_lines(meta["recipe"].get("target", {}),
                                 meta["metrics"][spec.data.test],
                                 getattr(get_task(spec.task), "baseline", "the baseline")),
                  f"- weights license: {meta['license']['weights']}", ""]
    model = (bench or {}).get("models", {}).get(name)
    if model:
        metric = model["task_metric"]
        lines += ["## Exported (batch 1, 1 thread)", "",
                  f"From `python -m benchmarks` ({bench['created']}); export + verification "
                  f"took {model['export_seconds']:.1f} s.", "",
                  f"| backend | precision | size KB | median µs / sample | {metric} | drop |",
                  "|---|---|---|---|---|---|"]
        for r in model["rows"]:
            if r["threads"] != 1 or "sample" not in r or r["metrics"] is None:
                continue
            size = "" if r["size_bytes"] is None else f"{r['size_bytes'] / 1024:.0f}"
            lines.append(f"| {r['backend']} | {r['precision']} | {size} | "
                         f"{r['sample']['median_us']:.0f} | {r['metrics'][metric]:.4f} | "
                         f"{r['metric_drop']:+.4f} |")
        lines.append("")
    else:
        lines += ["## Exported", "", "No benchmark results found; run `python -m benchmarks`.",
                  ""]
    transfer = (bench or {}).get("transfer", {}).get(name)
    if transfer:
        lines += ["## Fine-tuned to another task (measured)", "", transfer_markdown(transfer)]
    decoding = (bench or {}).get("decoding", {}).get(name)
    if decoding:
        lines += ["## Decoding (measured)", "", decoding_markdown(decoding)]
    if spec.intended_use:
        lines += ["## Intended use", "", spec.intended_use, ""]
    if spec.limitations:
        lines += ["## Limitations", "", *[f"- {item}" for item in spec.limitations], ""]

    metric = get_task(spec.task).metric  # "accuracy", "cer", "per", "mase"
    lines += ["## Tolerances", "",
              *[f"- tensor, {p}: max |diff| ≤ {t.value}"
                + "".join(f" + {r:g}·|{n}|" for n, r in t.relative.items())
                + f" — {t.reason}" for p, t in spec.tensor_tolerance.items()],
              *[f"- {metric} drop, {p}: ≤ {t.value} — {t.reason}"
                for p, t in spec.metric_drop.items()], ""]
    lines += ["## Precisions", "",
              f"Exported and verified at: {', '.join(spec.precisions)}.",
              *[f"- not {p}: {reason}" for p, reason in spec.precision_gaps.items()], ""]
    return "\n".join(lines)


def transfer_markdown(result: dict) -> str:
    """The table of ``python -m benchmarks.transfer``: each arm's test metric per budget."""
    arms = result["arms"]
    metric = result.get("metric", "accuracy")
    better = "lower" if metric in ("cer", "per", "mase") else "higher"
    lines = [f"Measured {result['created']} ({result['machine']}): `{result['command']}`. "
             f"`{result['model']}` fine-tuned to {result['target']} against the same "
             f"architecture from scratch; same series, split, stopping rule and augmentation; "
             f"test {metric} ({better} is better), mean ± std over seeds {result['seeds']}.",
             "",
             f"| {result['unit']} | train series | " + " | ".join(arms) + " | " +
             " | ".join(f"{arm} − scratch" for arm in arms if arm != "scratch") + " |",
             "|---" * (2 + len(arms) + len(arms) - 1) + "|"]
    for row in result["summary"]:
        lines.append(f"| {row['per_class']} | {row['train_series']} | " + " | ".join(
            f"{row[arm]['mean']:.3f} ± {row[arm]['std']:.3f}" for arm in arms) + " | " +
            " | ".join(f"{gain:+.3f}" for gain in row["gain"].values()) + " |")
    return "\n".join(lines) + "\n"


def decoding_markdown(figures: dict) -> str:
    """The Keras table of ``python -m benchmarks.g2p_decoding``: each decoder's PER, word
    accuracy and time, and whether the other fp32 backends transcribed alike."""
    lines = [f"Measured {figures['created']} ({figures['machine']}): `{figures['command']}`, "
             f"{figures['test_words']:,} held-out words, Keras fp32; decoding runs on the "
             "host (zoo.decoding) over the encoder and decoder_step graphs.", "",
             "| decoder | PER | word accuracy | ms/word |", "|---|---|---|---|"]
    for r in figures["rows"]:
        lines.append(f"| {r['decoder']} | {100 * r['per']:.2f} % | "
                     f"{100 * r['word_accuracy']:.2f} % | {r['ms_per_word']:.1f} |")
    if figures["unlike_keras"]:
        lines += ["", "Transcriptions unlike Keras', every decoder and word: " + ", ".join(
            f"{backend} fp32 {n}" for backend, n in figures["unlike_keras"].items()) + "."]
    return "\n".join(lines) + "\n"


def _target_lines(target, metrics, baseline: str) -> list[str]:
    """The recipe's targets, each with the measured value and whether it is met; a
    ``naive_*`` metric beside it is the ``baseline`` on the same test samples."""
    import operator

    ops = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}
    lines = []
    for metric, (op, bound) in target.items():
        value = metrics.get(metric)
        if value is None:
            continue
        verdict = "met" if ops[op](value, bound) else "NOT met"
        naive = metrics.get(f"naive_{metric}")
        baseline_text = ""
        if naive is not None:  # the margin is positive when the model is better
            margin = value - naive if op in (">", ">=") else naive - value
            baseline_text = f"; {baseline} scores {naive:.4f}, so the margin is {margin:+.4f}"
        lines.append(f"- target: {metric} {op} {bound} — {verdict} ({value:.4f})"
                     f"{baseline_text}")
    return lines

