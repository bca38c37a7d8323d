"""Does fine-tuning pay? ``python -m benchmarks.transfer``.

Moves the pretrained ``bilstm_activity`` (BasicMotions IMU, 6 channels) to a small real
target task, JapaneseVowels speaker identification (12 LPC channels, 9 speakers), with
``zoo.finetune`` and compares it with the same architecture trained from scratch on the
same data budget: the same training series, held-out split, early-stopping rule and
augmentation, only the initial weights differ. Arms: ``finetuned`` (the default
recipe: head phase, then every layer at 0.1x the learning rate), ``finetuned_full_lr``
(the same, unfrozen at the head's learning rate, which is also scratch's) and
``scratch``. For each budget (utterances per speaker)
and seed, both arms are scored on the official 370-utterance TEST split, which neither
sees. Utterances (7-29 frames) are resampled to 29 frames, the equal-length form that
batch training takes. Writes benchmarks/results/transfer.{json,md}; the model card of
``bilstm_activity`` shows the table.
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

import numpy as np

from benchmarks.run import RESULTS
from export.cards import transfer_markdown

MODEL = "bilstm_activity"
# arm -> zoo.finetune keyword arguments
ARMS = {"finetuned": {}, "finetuned_full_lr": {"unfreeze_factor": 1.0},
        "scratch": {"from_scratch": True}}
LENGTH = 29  # the longest utterance in either split


def write_task(directory: Path, per_class: int, seed: int) -> tuple[Path, Path]:
    """NPZ files of ``per_class`` training utterances per speaker (seeded draw from the
    official TRAIN split) and of the whole official TEST split."""
    from zoo.datasets import japanese_vowels as jv

    train, test = jv.load("train"), jv.load("test")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(train.y == c), per_class, replace=False)
                          for c in range(len(train.classes))])
    names = np.array(train.classes)
    train_path, test_path = directory / "train.npz", directory / "test.npz"
    np.savez(train_path, x=jv.resample([train.x[i] for i in idx], LENGTH),
             y=names[train.y[idx]], channels=np.array(jv.CHANNELS))
    np.savez(test_path, x=jv.resample(test.x, LENGTH), y=names[test.y],
             channels=np.array(jv.CHANNELS))
    return train_path, test_path


def run(budgets, seeds) -> dict:
    from zoo.finetune import finetune

    runs = []
    for per_class in budgets:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                train_path, test_path = write_task(tmp, per_class, seed)
                for arm, kwargs in ARMS.items():
                    start = time.perf_counter()
                    meta = finetune(MODEL, train_path, tmp / arm, test=test_path, seed=seed,
                                    verbose=0, **kwargs)
                    runs.append({
                        "per_class": per_class, "seed": seed, "arm": arm,
                        "test_accuracy": meta["metrics"]["test"]["accuracy"],
                        "val_accuracy": meta["metrics"]["val"]["accuracy"],
                        "epochs": [p["epochs_run"] for p in meta["phases"]],
                        "seconds": round(time.perf_counter() - start, 1)})
                    print(f"[transfer] {per_class}/speaker seed {seed} {arm}: test accuracy "
                          f"{runs[-1]['test_accuracy']:.4f}", file=sys.stderr, flush=True)
    summary = []
    for per_class in budgets:
        row = {"per_class": per_class, "train_series": per_class * 9}
        for arm in ARMS:
            acc = [r["test_accuracy"] for r in runs
                   if r["per_class"] == per_class and r["arm"] == arm]
            row[arm] = {"mean": float(np.mean(acc)), "std": float(np.std(acc)),
                        "runs": acc}
        row["gain"] = {arm: row[arm]["mean"] - row["scratch"]["mean"] for arm in ARMS
                       if arm != "scratch"}
        summary.append(row)
    return {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "model": MODEL, "target": "JapaneseVowels speaker identification (sktime), "
            "official TEST split (370 utterances)",
            "command": "python -m benchmarks.transfer", "seeds": list(seeds),
            "arms": ARMS, "summary": summary, "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transfer", description=__doc__)
    p.add_argument("--budgets", default="5,15", help="utterances per speaker")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    result = run([int(b) for b in args.budgets.split(",")],
                 [int(s) for s in args.seeds.split(",")])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "transfer.md").write_text(transfer_markdown(result))
    print(transfer_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
