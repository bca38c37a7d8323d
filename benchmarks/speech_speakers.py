"""The speech models on held-out voices, speaker by speaker:
``python -m benchmarks.speech_speakers [--weights-dir DIR --label L]``.

Exports ``kws_lstm`` and ``speech_ctc`` (fp32) with the given weights (default: the shipped
ones; ``--weights-dir`` takes ``<model>.asterisk.weights.h5`` files from a folder, to put a
previous or a candidate set beside them), then runs every held-out split on Keras, LiteRT
and ONNX Runtime and scores each group of it separately:

- ``kws_lstm``: digit accuracy per held-out speaker (the asterisk ones, by language, and the
  FSDD one), false accepts on the held-out speakers' other words, on noise-only windows and
  on running speech (the held-out codec2 sentences), and the task's own streamed accuracy.
- ``speech_ctc``: CER and strings right per held-out speaker and language.

The FSDD splits need the FSDD folder (:func:`zoo.datasets.voices.fsdd_dir`); without it
they are left out and the result says why. Writes
``benchmarks/results/speech_speakers[-LABEL].{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, save, stamp

BACKENDS = ("keras", "litert", "onnx")
MODELS = ("kws_lstm", "speech_ctc")


def _subset(data, keep: np.ndarray):
    keep = np.flatnonzero(keep)
    if hasattr(data, "texts"):
        return type(data)([data.x[i] for i in keep], [data.texts[i] for i in keep],
                          [data.faces[i] for i in keep])
    return type(data)(data.x[keep], data.y[keep], data.classes)


def kws_groups(splits: dict) -> list[tuple[str, object]]:
    """(group, data) for every scored group of the keyword spotter's held-out splits."""
    from zoo.datasets import spoken_digits as sd

    groups = []
    _, _, names = sd.test_windows()
    who = np.array([n.split("/")[0] for n in names])
    kind = np.array([n.split("/")[1] if "/" in n else "noise" for n in names])
    test = splits["test"]
    for s in sd.TEST_SPEAKERS:
        groups.append((f"{s} digits", _subset(test, (who == s) & (kind == "digits"))))
    groups.append(("asterisk held-out other words", _subset(test, kind == "other")))
    groups.append(("noise only", _subset(test, who == "noise")))
    if "test_fsdd" in splits:
        groups.append(("fsdd_theo digits", splits["test_fsdd"]))
    groups.append(("codec2 held-out sentences", splits["test_speech"]))
    return groups


def kws_row(task, predictions, data, meta) -> dict:
    scores = task.score(predictions, data, meta)
    labels = np.argmax(np.asarray(predictions)[:, 1], axis=-1)
    keyword = np.array([not c.startswith("_") for c in meta["classes"]])
    truth = np.asarray(data.y)
    if keyword[truth].all():
        return {"windows": len(truth), "accuracy": scores["accuracy"],
                "right": int(np.sum(labels == truth))}
    return {"windows": len(truth), "false_accepts": float(np.mean(keyword[labels])),
            "accepted": int(np.sum(keyword[labels]))}


def ctc_row(task, predictions, data, meta) -> dict:
    scores = task.score(predictions, data, meta)
    return {"strings": len(data.texts), "cer": scores["cer"],
            "right": int(round(scores["word_accuracy"] * len(data.texts)))}


def run_model(name: str, weights, skipped: dict) -> dict:
    from export import export_model
    from export.verification.runtime import load_bundle
    from zoo import datasets
    from zoo.datasets import voices
    from zoo.registry import get_spec
    from zoo.tasks import get_task

    spec = get_spec(name)
    task = get_task(spec.task)
    wanted = ["test", "test_speech", "test_fsdd"] if name == "kws_lstm" else ["test", "test_fsdd"]
    if voices.fsdd_missing():
        wanted.remove("test_fsdd")
        skipped["test_fsdd"] = voices.fsdd_missing()
    splits = {s: datasets.load(spec.data.dataset, s) for s in wanted}
    if name == "kws_lstm":
        groups = [("all (the task's test split)", splits["test"]), *kws_groups(splits)]
        row = kws_row
    else:
        groups = [("all (the task's test split)", splits["test"])]
        for split in wanted:
            data = splits[split]
            for s in dict.fromkeys(data.faces):
                groups.append((s, _subset(data, np.array(data.faces) == s)))
        row = ctc_row
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        export_model(name, Path(tmp) / name, weights=weights, precisions=("fp32",))
        bundle = load_bundle(Path(tmp) / name)
        for backend in BACKENDS:
            graphs = bundle.runners(backend, "fp32")
            for group, data in groups:
                predictions = task.predict(graphs, task.inputs(data), bundle.meta)
                if group.startswith("all"):  # the task's own scores of the whole split
                    r = {"windows" if name == "kws_lstm" else "strings": len(data.x),
                         **task.score(predictions, data, bundle.meta)}
                    if "cer" in r:
                        r["right"] = int(round(r["word_accuracy"] * len(data.x)))
                else:
                    r = row(task, predictions, data, bundle.meta)
                results.append({"group": group, "backend": backend, **r})
    return {"model": name, "weights": str(weights), "rows": results}


def markdown(results: dict) -> str:
    lines = [f"# Speech models on held-out voices ({results['label']})", "",
             f"Weights: {results['weights']}. fp32 artifacts, every backend. "
             "Generated by `python -m benchmarks.speech_speakers`.", ""]
    for skipped, why in results["skipped"].items():
        lines += [f"Left out: `{skipped}`: {why}", ""]
    for model in results["models"]:
        lines += [f"## {model['model']}", "",
                  "| group | backend | n | accuracy / CER | right / accepted |",
                  "|---|---|---|---|---|"]
        for r in model["rows"]:
            n = r.get("windows", r.get("strings"))
            if "digit_accuracy" in r:
                value = (f"{100 * r['accuracy']:.1f} % (digits {100 * r['digit_accuracy']:.1f} "
                         f"%, false accepts {100 * r['false_accepts']:.1f} %)")
                count = f"{int(round(r['accuracy'] * n))} right"
            elif "cer" in r:
                value, count = f"CER {100 * r['cer']:.1f} %", f"{r['right']} right"
            elif "accuracy" in r and "false_accepts" not in r:
                value, count = f"{100 * r['accuracy']:.1f} %", f"{r['right']} right"
            else:
                value = f"false accepts {100 * r['false_accepts']:.1f} %"
                count = f"{r['accepted']} accepted"
            lines.append(f"| {r['group']} | {r['backend']} | {n} | {value} | {count} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="folder of <model>.asterisk.weights.h5 files (default: shipped)")
    parser.add_argument("--label", default="shipped", help="names the result files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args(argv)
    skipped: dict = {}
    models = []
    for name in args.models:
        weights = "DEFAULT"
        if args.weights_dir:
            weights = args.weights_dir / f"{name}.asterisk.weights.h5"
            if not weights.is_file():
                print(f"error: {weights}: no such file", file=sys.stderr)
                return 2
        models.append(run_model(name, weights, skipped))
        print(f"{name}: done", file=sys.stderr)
    results = {**stamp("benchmarks.speech_speakers", argv), "label": args.label,
               "weights": str(args.weights_dir or "shipped"), "skipped": skipped,
               "models": models}
    stem = "speech_speakers" + ("" if args.label == "shipped" else f"-{args.label}")
    save(results, markdown(results), args.out, stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
