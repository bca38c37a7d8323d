"""The peptide classifier against its baselines on both splits: ``python -m benchmarks.amp_splits``.

For the homology split (cd-hit clusters at 40 % identity, what the shipped ``amp_bilstm``
weights use) and the random split (what AMP Scanner vr.2 reports, 91.0 %), each row is
the test accuracy of:

- ``amp_bilstm``: the shipped recipe (``lstm-zoo train amp_bilstm``), trained from scratch
  on that split's training side (the homology row is the shipped weights' own figure when
  they were trained with this recipe);
- ``kmer_logreg``: residue 1-3-mer counts (L2-normalised) into a logistic regression whose
  C is chosen by 5-fold cross-validation on the training side only (scikit-learn);
- ``majority``: always answering the training side's majority class.

Writes benchmarks/results/amp_splits.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS

SPLITS = {"homology": ("train", "test"), "random": ("random_train", "random_test")}


def kmer_accuracy(train, test) -> tuple[float, float]:
    """Test accuracy of the k-mer logistic regression, and the C it chose."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    model = make_pipeline(
        CountVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False), Normalizer(),
        LogisticRegressionCV(Cs=[0.1, 0.3, 1, 3, 10, 30], cv=5, max_iter=5000))
    model.fit(list(train.texts), train.y)
    return (float(np.mean(model.predict(list(test.texts)) == test.y)),
            float(model[-1].C_[0]))


def model_accuracy(train, test) -> tuple[float, float]:
    """Test accuracy of amp_bilstm trained with its recipe on ``train``, and the seconds."""
    from zoo import get_spec
    from zoo.graphs import keras_graphs
    from zoo.tasks import get_task
    from zoo.train import seed_everything

    spec = get_spec("amp_bilstm")
    task = get_task(spec.task)
    seed_everything(spec.recipe["seed"])
    model = spec.builder(**spec.config())
    start = time.perf_counter()
    task.fit(model, train, dict(spec.recipe), spec, verbose=0)
    seconds = time.perf_counter() - start
    predictions = task.predict(keras_graphs(spec, model), task.inputs(test), spec.meta,
                               batch_size=256)
    return task.score(predictions, test, spec.meta)["accuracy"], seconds


def main(argv=None) -> int:
    from zoo.datasets import peptides

    p = argparse.ArgumentParser(prog="python -m benchmarks.amp_splits", description=__doc__)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    rows = {}
    for split, (train_name, test_name) in SPLITS.items():
        train, test = peptides.load(train_name), peptides.load(test_name)
        majority = int(np.bincount(train.y).argmax())
        kmer, c = kmer_accuracy(train, test)
        model, seconds = model_accuracy(train, test)
        rows[split] = {"train": len(train.texts), "test": len(test.texts),
                       "amp_bilstm": model, "train_seconds": round(seconds, 1),
                       "kmer_logreg": kmer, "kmer_C": c,
                       "majority": float(np.mean(test.y == majority))}
        print(f"[amp_splits] {split}: {rows[split]}", file=sys.stderr, flush=True)
    result = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {platform.python_version()}",
              "command": "python -m benchmarks.amp_splits", "splits": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "amp_splits.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Measured {result['created']} ({result['machine']}): `{result['command']}`; "
             "test accuracy.", "",
             "| split | train / test peptides | amp_bilstm | k-mer (1-3) logistic regression "
             "| always-majority |", "|---|---|---|---|---|"]
    for split, r in rows.items():
        lines.append(f"| {split} | {r['train']} / {r['test']} | {r['amp_bilstm']:.3f} | "
                     f"{r['kmer_logreg']:.3f} (C = {r['kmer_C']:g}) | {r['majority']:.3f} |")
    (args.out / "amp_splits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
