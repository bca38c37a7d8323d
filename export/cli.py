"""The ``lstm-zoo`` command.

Every :class:`zoo.errors.ZooError` (and an unknown override's TypeError) becomes a
one-line ``error:`` message and exit code 2; a failed parity check exits 1.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import sys
from pathlib import Path

from export.progress import Progress
from zoo.errors import UnsupportedError

EXIT_PARITY = 1
EXIT_USAGE = 2


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"override {pair!r} must look like NAME=VALUE")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def cmd_fetch_data(args) -> int:
    from zoo.datasets import fetches

    for fetch in fetches():  # the registered datasets' (zoo.datasets.catalog)
        print(fetch.run(getattr(args, fetch.dest) if fetch.dest else None))
    return 0


def cmd_list(args) -> int:
    from zoo import get_spec, list_models
    from zoo.errors import UnknownModelError

    # a glob, or else a part of the name: `lstm-zoo list g2p`
    glob = any(c in args.pattern for c in "*?[")
    names = list_models(args.pattern if glob else f"*{args.pattern}*")
    if not names:
        raise UnknownModelError(f"no registered model matches {args.pattern!r} (a glob such as "
                                "'bilstm*', or a part of a name; `lstm-zoo list` shows all)")
    for name in names:
        spec = get_spec(name)
        tags = ",".join(spec.weights) or "-"
        print(f"{name:24s} {spec.task:15s} weights={tags:14s} {spec.description}")
    return 0


def cmd_info(args) -> int:
    from export.cards import card_markdown, load_benchmarks

    print(card_markdown(args.name, load_benchmarks()))
    return 0


def cmd_train(args) -> int:
    from zoo.train import train

    meta = train(args.name, out_dir=args.out, epochs=args.epochs, limit=args.limit,
                 strategy=args.strategy)
    print(f"wrote {Path(args.out) / meta['file']}  sha256={meta['sha256']}  (TensorBoard "
          f"logs: {meta['training']['logs']})")
    for split, metrics in meta["metrics"].items():
        print(f"measured on {split}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    ok = True
    for metric, r in meta["reproduction"].items():
        ok &= r["within"]
        print(f"reproduces shipped {metric}: {r['now']:.4f} vs {r['shipped']:.4f} "
              f"(tolerance {r['tolerance']}): {'yes' if r['within'] else 'NO'}")
    return 0 if ok else EXIT_PARITY


# Fine-tuning settings on the command line; their defaults are zoo.finetune.DEFAULTS.
FINETUNE_SETTINGS = {
    "head_epochs": (int, "most epochs with the backbone frozen (default 30)"),
    "epochs": (int, "most epochs with every layer trainable (default 100)"),
    "learning_rate": (float, "of the head phase (default 0.002)"),
    "unfreeze_factor": (float, "unfrozen phase learning rate = this x the head's (default 0.1)"),
    "patience": (int, "epochs without a lower held-out loss before a phase stops (default 15)"),
    "val_fraction": (float, "share of each class held out for early stopping (default 0.2)"),
    "batch_size": (int, "training batch size (default 8)"),
    "seed": (int, "seed of the split, the augmentation and new weights (default 0)"),
}


def cmd_finetune(args) -> int:
    from zoo.finetune import finetune

    settings = {k: getattr(args, k) for k in FINETUNE_SETTINGS if getattr(args, k) is not None}
    meta = finetune(args.name, args.data, args.out, weights=args.weights, test=args.test,
                    from_scratch=args.from_scratch, strategy=args.strategy, verbose=1,
                    alphabet=args.alphabet, **settings)
    for phase in meta["phases"]:
        print(f"phase {phase['phase']}: {phase['epochs_run']} epochs at lr "
              f"{phase['learning_rate']:g}, best epoch {phase['best_epoch']} (held-out loss "
              f"{phase['best_val_loss']:.4f})")
    for split, metrics in meta["metrics"].items():
        print(f"measured on {split}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    print(f"model directory: {args.out}  (use it in place of a model name: lstm-zoo export "
          f"{args.out} --out BUNDLE)")
    return 0


def print_table(parity: dict, out=None) -> None:
    """The parity table: per artifact its max |diff| from Keras beside the bound it is held
    to (``tolerance``), the metrics, the time per sample and the verdict. Under it, a note
    for each row whose bound is not that plain number: no tensor bound at its precision
    (judged on the checks it has), or a bound on |diff| less a relative allowance."""
    out = out or sys.stdout  # looked up per call: a redirected stdout (tests, a wrapper)
    ref = parity["reference"]["metrics"]
    metric_names = list(ref)
    head = (f"{'format':7s} {'precision':9s} {'backend':7s} {'size KB':>8s} "
            f"{'max|diff|':>10s} {'tolerance':>10s} " + " ".join(f"{m:>13s}" for m in metric_names)
            + f" {'ms/sample':>9s}  parity")
    print(head, file=out)
    print(f"{'keras':7s} {'fp32':9s} {'keras':7s} {'':>8s} {'':>10s} {'':>10s} "
          + " ".join(f"{ref[m]:13.4f}" for m in metric_names), file=out)
    notes = []
    for r in parity["results"]:
        tolerance, note = _tolerance(r)
        if note:
            notes.append(f"{r['format']}/{r['precision']}: {note}")
        print(f"{r['format']:7s} {r['precision']:9s} {r['backend']:7s} "
              f"{r['size_bytes'] / 1024:8.1f} {r['tensor_max_abs']:10.2e} {tolerance:>10s} "
              + " ".join(f"{r['metrics'][m]:13.4f}" for m in metric_names)
              + f" {r['per_sample_ms']:9.3f}  {'PASS' if r['passed'] else 'FAIL'}", file=out)
    for note in notes:
        print(note, file=out)


def _tolerance(row: dict) -> tuple[str, str | None]:
    """A parity row's tensor bound as the table shows it, and the note it needs (None)."""
    checks = row.get("checks", [])
    tensor = next((c for c in checks if c["check"].startswith("tensor ")), None)
    if tensor is None:
        judged = "; ".join(f"{c['check']} {c['value']:.4g} (limit {c['limit']:g})"
                           for c in checks) or "no checks recorded"
        return "none", f"no tensor bound at this precision; judged on {judged}"
    if tensor["check"] == "tensor max_abs":
        return f"{tensor['limit']:.1e}", None
    return (f"{tensor['limit']:.1e}*", f"* the bound is on {tensor['check'][len('tensor '):]}"
            f" = {tensor['value']:.2e}")


def _calibration(path: str | None):
    """Calibration samples from a .npy of sequences (N, T, C) or a text file of words."""
    if path is None:
        return None
    from zoo.errors import DataError

    source = Path(path)
    if not source.is_file():
        raise DataError(f"calibration file {path!r} does not exist; expected a .npy array of "
                        "sequences (N, time, channels) or a .txt file with one word per line")
    if source.suffix.lower() == ".npy":
        import numpy as np

        try:
            return list(np.load(source, allow_pickle=False))
        except ValueError as e:
            raise DataError(f"{path}: cannot read a numeric array ({e})") from None
    return [w for w in source.read_text().split() if w]


def export_config(args):
    """The CLI's export flags as one :class:`export.config.ExportConfig`."""
    from export.config import ExportConfig

    return ExportConfig(formats=args.formats, precisions=args.precision,
                        max_drop=args.max_drop, calibration=_calibration(args.calibration),
                        prune=args.prune, schedule=args.schedule, cluster=args.cluster,
                        structured=args.structured, qat=args.qat,
                        finetune_epochs=args.finetune_epochs, limit=args.limit)


USER_ONLY = ("samples", "labels", "metric", "model_name", "train", "loss", "learning_rate",
             "batch_size")
ZOO_ONLY = {"weights": "DEFAULT", "set": None, "calibration": None}


def _is_user_model(name: str) -> bool:
    """A file (or a SavedModel folder) is a user's model; a registered name or a
    fine-tuned model directory (``lstm-zoo finetune``) is a zoo model."""
    path = Path(name)
    return path.is_file() or (path.is_dir() and (path / "saved_model.pb").is_file()) or \
        path.suffix.lower() in (".keras", ".h5", ".hdf5")


def _export_user_model(args, cfg):
    from export.user.pipeline import export_keras

    given = [k for k, default in ZOO_ONLY.items() if getattr(args, k) != default]
    if given:
        raise UnsupportedError(
            f"{', '.join('--' + k.replace('_', '-') for k in given)}: for registered models; "
            f"{args.name} is a model file (it calibrates on --samples)")
    if args.samples is None:
        raise UnsupportedError(f"{args.name} is a model file: give --samples FILE (.npy, or "
                               ".npz with one array per input; at least 16) for parity and "
                               "calibration")
    return export_keras(args.name, args.out, cfg, samples=args.samples, labels=args.labels,
                        metric=args.metric, name=args.model_name, train=args.train,
                        loss=args.loss, learning_rate=args.learning_rate,
                        batch_size=args.batch_size, progress=Progress())


def cmd_export(args) -> int:
    from export.pipeline import export_model
    from zoo.errors import ParityError

    weights = None if args.weights == "none" else args.weights
    try:
        if _is_user_model(args.name):
            parity = _export_user_model(args, export_config(args))
        else:
            given = [k for k in USER_ONLY if getattr(args, k) is not None]
            if given:
                raise UnsupportedError(
                    f"{', '.join('--' + k.replace('_', '-') for k in given)}: for a model file; "
                    f"{args.name!r} is not a file (a registered name; `lstm-zoo list`)")
            parity = export_model(args.name, args.out, export_config(args), weights=weights,
                                  overrides=_overrides(args.set), progress=Progress())
    except ParityError as e:
        failed = Path(str(args.out) + ".failed") / "parity.json"
        if failed.is_file():
            print_table(json.loads(failed.read_text()))
        print(f"error: {e}", file=sys.stderr)
        return EXIT_PARITY
    print_table(parity)
    if "compression" in parity:
        c, metric = parity["compression"], next(iter(parity["reference"]["metrics"]))
        print(f"compression: Keras {metric} {c['baseline_metrics'][metric]:.4f} -> "
              f"{c['metrics'][metric]:.4f} (drop {c['metric_drop']:+.4f})")
    for fmt, record in parity.get("auto", {}).items():
        print(f"auto ({fmt}, max drop {record['max_drop']}): chose {record['chosen']}; "
              + "; ".join(f"{t['precision']} {t['status'].split(':')[0]}"
                          + (f" (drop {t['metric_drop']:+.4f})" if "metric_drop" in t else "")
                          for t in record["tried"]))
    print(f"bundle: {args.out}  (manifest.json, parity.json)")
    return 0


def cmd_inspect(args) -> int:
    from export.user.inspect import inspect_model, render

    print(render(inspect_model(args.model)))
    return 0


def cmd_verify(args) -> int:
    from export.pipeline import verify_bundle

    parity = verify_bundle(args.bundle, progress=Progress(), limit=args.limit)
    print_table(parity)
    if not parity["passed"]:
        print("error: parity failed: " + "; ".join(parity["failures"]), file=sys.stderr)
        return EXIT_PARITY
    print(f"verified: {args.bundle}")
    return 0


def _precision(bundle, args) -> str:
    """``--precision``, or by default fp32 where the bundle has it, else its one precision
    for the backend (a ``--precision auto`` bundle keeps one per format)."""
    from export.verification.runtime import FORMAT_OF_BACKEND

    if args.precision is not None or args.backend not in FORMAT_OF_BACKEND:
        return args.precision or "fp32"
    have = bundle.precisions(FORMAT_OF_BACKEND[args.backend])
    return "fp32" if "fp32" in have or len(have) != 1 else have[0]


def cmd_predict(args) -> int:
    import io

    import numpy as np

    from export.verification.runtime import load_bundle
    from zoo.errors import ExportError, UnsupportedError
    from zoo.weights import atomic_write_bytes

    bundle = load_bundle(args.bundle)
    task = bundle.task
    meta = bundle.meta
    if args.beam is not None or args.lexicon is not None:
        meta = task.decoding_options(meta, 16 if args.beam is None else args.beam,
                                     args.lexicon)
    if args.out is not None and Path(args.out).suffix.lower() != ".npy":
        raise UnsupportedError(f"--out writes a .npy file; got {args.out!r}")
    item = task.parse_input(args.input, meta)
    precision = _precision(bundle, args)
    runners = bundle.runners(args.backend, precision)
    prediction = task.predict(runners, [item if isinstance(item, str) else item[0]], meta)[0]
    if args.out is not None and (not isinstance(prediction, np.ndarray)
                                 or not np.issubdtype(prediction.dtype, np.number)):
        raise UnsupportedError(f"--out writes an array prediction (frames, a forecast); "
                               f"{bundle.model_name}'s {task.name} prediction is a "
                               f"{type(prediction).__name__}")
    print(task.format(prediction, meta))
    files = ", ".join(sorted(Path(r.path).name for r in runners.values() if hasattr(r, "path")))
    Progress().say(f"answered by {args.backend} at {precision}"
                   + (f" ({files})" if files else " (the bundle's Keras weights)"))
    if args.out is not None:
        buffer = io.BytesIO()
        np.save(buffer, prediction, allow_pickle=False)
        try:
            atomic_write_bytes(Path(args.out), buffer.getvalue())
        except OSError as e:
            raise ExportError(f"cannot write {args.out}: {e}") from None
        print(f"wrote {args.out} ({prediction.dtype}, shape {prediction.shape})")
    return 0


def cmd_generate(args) -> int:
    """Samples from a character language model: a bundle directory (its artifacts on
    ``--backend``) or a registered name (Keras, its shipped weights)."""
    from zoo.errors import UnsupportedError
    from zoo.generate import check_options, generate
    from zoo.registry import get_spec
    from zoo.tasks import get_task

    bundle = None
    if Path(args.model).is_dir() and (Path(args.model) / "manifest.json").is_file():
        from export.verification.runtime import load_bundle

        bundle = load_bundle(args.model)
        task, meta, name = bundle.task, bundle.meta, bundle.model_name
    else:
        if args.backend not in (None, "keras"):
            raise UnsupportedError(f"--backend {args.backend} needs an exported bundle "
                                   f"directory; {args.model!r} is a model name (run on Keras)")
        spec = get_spec(args.model)
        task, meta, name = get_task(spec.task), spec.meta, spec.name
    if task.name != "lm":
        raise UnsupportedError(f"generate is for language models; {name} is a {task.name} "
                               "model")
    # the options first: a bad one costs no model loading
    check_options(args.length, args.temperature, args.top_k, len(meta["chars"]) + 1)
    if args.out is not None:
        check_generate_out(Path(args.out), meta)
    if bundle is not None:
        graphs = bundle.runners(args.backend or "litert", args.precision)
    else:
        from zoo import create_model
        from zoo.graphs import keras_graphs

        graphs = keras_graphs(spec, create_model(args.model, weights="DEFAULT"))
    text = generate(graphs, meta, length=args.length, prompt=args.prompt,
                    temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    print(text)
    if args.out is not None:
        write_generated(args.prompt + text, Path(args.out), meta)
    return 0


GENERATE_SUFFIXES = {"text": (".txt",), "chorales": (".mid", ".midi", ".musicxml", ".xml",
                                                     ".txt")}


def check_generate_out(out: Path, meta) -> None:
    """An ``--out`` whose suffix the model's output can be written as, in an existing
    folder; else a :class:`~zoo.errors.ShapeError`."""
    from zoo.errors import ShapeError

    kind = meta.get("music", "text")
    if kind not in GENERATE_SUFFIXES:
        raise ShapeError(f"--out: this model's music format {kind!r} cannot be written; "
                         f"known: {sorted(k for k in GENERATE_SUFFIXES if k != 'text')}")
    if out.suffix.lower() not in GENERATE_SUFFIXES[kind]:
        raise ShapeError(f"--out {out}: {'music' if kind != 'text' else 'text'} is written "
                         f"as {', '.join(GENERATE_SUFFIXES[kind])}; got suffix "
                         f"{out.suffix!r}")
    if out.is_dir() or not out.parent.is_dir():
        raise ShapeError(f"--out {out}: expected a file in an existing folder")
    if kind == "chorales" and out.suffix.lower() != ".txt":
        from zoo.datasets import chorales

        chorales.require_music21()  # MissingExtraError now, not after sampling


def write_generated(text: str, out: Path, meta) -> None:
    """The prompt and generated text as a ``.txt`` file or, for a music model, as MIDI or
    MusicXML (:func:`zoo.datasets.chorales.write`); written atomically."""
    from zoo.errors import ExportError
    from zoo.weights import atomic_write_bytes

    try:
        if out.suffix.lower() == ".txt":
            atomic_write_bytes(out, text.encode("utf-8"))
            print(f"wrote {out} ({len(text)} characters)")
            return
        from zoo.datasets import chorales

        frames, skipped = chorales.write(text, out)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e}") from None
    print(f"wrote {out} ({frames} sixteenth-note frames of four voices"
          + (f"; {skipped} malformed lines skipped" if skipped else "") + ")")


def build_parser() -> argparse.ArgumentParser:
    from zoo import __version__
    from zoo.datasets import fetches

    p = argparse.ArgumentParser(prog="lstm-zoo", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("fetch-data", help="fetch, once, the data no installed package holds: "
                                          + "; ".join(f.help for f in fetches()))
    for fetch in fetches():
        if fetch.option:
            s.add_argument(fetch.option, default=None, help=fetch.option_help)
    s.set_defaults(fn=cmd_fetch_data)
    s = sub.add_parser("list", help="registered models")
    s.add_argument("pattern", nargs="?", default="*",
                   help="a glob, e.g. 'bilstm*', or a part of a name, e.g. g2p")
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("info", help="a model's card: spec, data, measured metrics, exports")
    s.add_argument("name")
    s.set_defaults(fn=cmd_info)
    s = sub.add_parser("train", help="reproduce a model's pretrained weights with its recipe")
    s.add_argument("name")
    s.add_argument("--out", default="lstm-zoo-weights",
                   help="output directory (maintainers: zoo/pretrained refreshes the shipped "
                        "weights)")
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--limit", type=int, default=None, help="at most N training samples")
    s.add_argument("--strategy", default="default",
                   help="tf.distribute strategy: default (reproduces the shipped weights), "
                        "mirrored, or multiworker (every worker runs this command with its "
                        "own TF_CONFIG)")
    s.set_defaults(fn=cmd_train)
    s = sub.add_parser("finetune", help="fine-tune a pretrained model on your own labelled "
                                        "data; writes a model directory")
    s.add_argument("name", help="a pretrained classifier, CTC recogniser or seq2seq model, "
                                "or a fine-tuned model directory")
    s.add_argument("--data", required=True,
                   help="classifiers: .npz (x: (N, T, C), y: (N,) labels[, channels]) or "
                        "long-form .csv (id, label, feature columns); keyword spotters: also a "
                        "folder with one subfolder of .wav files per label; text classifiers: "
                        ".tsv (text, label); CTC recognisers: .jsonl ({text, points} per "
                        "line) or .npz (points, lengths, texts); seq2seq models: .tsv "
                        "(source, target symbols separated by spaces)")
    s.add_argument("--out", required=True, help="model directory to create (must not exist)")
    s.add_argument("--test", default=None, help="labelled file to report the metric on "
                                                 "(never trained on)")
    s.add_argument("--alphabet", default=None,
                   help="CTC recognisers: the output symbols, e.g. 0123456789 (default: the "
                        "parent's, plus new characters of the transcripts)")
    s.add_argument("--weights", default="DEFAULT",
                   help="parent weights: DEFAULT, a tag, a .weights.h5 path or URL")
    s.add_argument("--from-scratch", action="store_true",
                   help="same architecture, data and stopping rule, random initial weights "
                        "(the baseline fine-tuning should beat)")
    s.add_argument("--strategy", default="default",
                   help="tf.distribute strategy: default, mirrored, or multiworker (every "
                        "worker runs this command with its own TF_CONFIG)")
    for key, (kind, help_) in FINETUNE_SETTINGS.items():
        s.add_argument("--" + key.replace("_", "-"), type=kind, default=None, help=help_)
    s.set_defaults(fn=cmd_finetune)
    s = sub.add_parser("export", help="export a registered model, or your own .keras / .h5 "
                                      "model, to a verified LiteRT/ONNX bundle")
    s.add_argument("name", help="a registered name, or the path of your model (.keras from "
                                "tf_keras or Keras 3, .h5)")
    s.add_argument("--samples", default=None, metavar="FILE",
                   help="your model: .npy (one input) or .npz (one array per input name), "
                        "at least 16 samples: parity and calibration data")
    s.add_argument("--labels", default=None, metavar="FILE",
                   help="your model: .npy of the samples' labels, for --metric")
    s.add_argument("--metric", default=None,
                   help="your model: accuracy, top5, mse, mae, f1 or auc, measured per "
                        "artifact (needs --labels; without it, agreement with the model's "
                        "own fp32 outputs)")
    s.add_argument("--model-name", default=None,
                   help="your model: its name in the bundle (default: the file's stem)")
    s.add_argument("--out", required=True, help="bundle directory to create (must not exist)")
    s.add_argument("--formats", default=None, help="comma-separated (default: all supported)")
    s.add_argument("--precision", default=None,
                   help="comma-separated subset of fp32,dynamic,float16,int8,int16x8 "
                        "(default: fp32,dynamic), or 'auto': per format the smallest artifact "
                        "within --max-drop")
    s.add_argument("--max-drop", type=float, default=None,
                   help="metric budget of --precision auto, in metric units (default 0.005)")
    s.add_argument("--calibration", default=None, metavar="FILE",
                   help="int8/int16x8 calibration samples: .npy (N, time, channels) or a .txt "
                        "of words (default: the model's calibration split)")
    s.add_argument("--prune", type=float, default=None, metavar="SPARSITY",
                   help="magnitude-prune to this sparsity in [0, 1), fine-tuning on the "
                        "model's training data")
    s.add_argument("--schedule", default="polynomial", choices=("polynomial", "constant"),
                   help="pruning schedule (default polynomial)")
    s.add_argument("--structured", type=float, default=None, metavar="FRACTION",
                   help="remove this fraction of every LSTM/GRU layer's hidden units (0, 1) "
                        "and fine-tune the smaller model (runs faster; before --prune)")
    s.add_argument("--cluster", type=int, default=None, metavar="N",
                   help="cluster each kernel into N weight values (>= 2)")
    s.add_argument("--qat", action="store_true",
                   help="quantization-aware fine-tuning of the weights for the int8 "
                        "artifacts (needs int8 or auto in --precision; after --prune)")
    s.add_argument("--finetune-epochs", type=int, default=None,
                   help="fine-tuning epochs for --structured/--prune/--cluster/--qat (default: "
                        "the recipe's; your model: 3)")
    s.add_argument("--train", default=None, metavar="FILE",
                   help="your model: .npz of training data (x and y, or one array per input "
                        "and output name) for --structured/--prune/--cluster/--qat")
    s.add_argument("--loss", default=None,
                   help="your model: the Keras loss to fine-tune with, by name (default: the "
                        "one it was compiled with)")
    s.add_argument("--learning-rate", type=float, default=None,
                   help="your model: fine-tuning learning rate (default 1e-4)")
    s.add_argument("--batch-size", type=int, default=None,
                   help="your model: fine-tuning batch size (default 32)")
    s.add_argument("--weights", default="DEFAULT",
                   help="DEFAULT, a weights tag, a .weights.h5 path or URL, or 'none'")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="builder override")
    s.add_argument("--limit", type=int, default=None, help="verify on the first N test samples")
    s.set_defaults(fn=cmd_export)
    s = sub.add_parser("inspect", help="what each layer of your model becomes in TFLite and "
                                       "ONNX, before converting")
    s.add_argument("model", help="a .keras (tf_keras or Keras 3) or .h5 model file")
    s.set_defaults(fn=cmd_inspect)
    s = sub.add_parser("verify", help="re-run a bundle's parity checks from disk")
    s.add_argument("bundle")
    s.add_argument("--limit", type=int, default=None)
    s.set_defaults(fn=cmd_verify)
    s = sub.add_parser("predict", help="run a bundle on a .npy/.csv sequence, a stroke file "
                                       "or a word")
    s.add_argument("bundle")
    s.add_argument("--input", required=True,
                   help="a .npy/.csv sequence; for handwriting a .npy/.json stroke file; a "
                        "word for G2P")
    s.add_argument("--backend", default="litert", choices=("litert", "onnx", "keras"))
    s.add_argument("--precision", default=None,
                   help="default: fp32, or the one precision a --precision auto bundle "
                        "kept for the backend's format")
    s.add_argument("--beam", type=int, default=None, metavar="WIDTH",
                   help="CTC models: prefix beam search of this width (default: greedy)")
    s.add_argument("--lexicon", default=None, metavar="FILE",
                   help="CTC models: only words of this file (one per line); implies --beam "
                        "16 unless given")
    s.add_argument("--out", default=None, metavar="FILE.npy",
                   help="also write the prediction array (predicted frames, a forecast) to "
                        "this .npy file")
    s.set_defaults(fn=cmd_predict)
    s = sub.add_parser("generate", help="sample text from a character language model")
    s.add_argument("model", help="a bundle directory, or a registered name (runs on Keras "
                                 "with its shipped weights)")
    s.add_argument("--length", type=int, default=300, help="characters to generate")
    s.add_argument("--prompt", default="", help="text to continue")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="> 0; below 1 the likely characters get likelier")
    s.add_argument("--top-k", type=int, default=0, help="sample among the K likeliest "
                                                        "characters (0: all)")
    s.add_argument("--seed", type=int, default=0, help="the same seed gives the same text "
                                                       "on every fp32 backend")
    s.add_argument("--backend", default=None, choices=("litert", "onnx", "keras"),
                   help="for a bundle (default litert)")
    s.add_argument("--precision", default="fp32")
    s.add_argument("--out", default=None, metavar="FILE",
                   help="also write the prompt and sample: .txt, or for a music model "
                        ".mid / .midi (MIDI) or .musicxml / .xml (MusicXML)")
    s.set_defaults(fn=cmd_generate)
    return p


class _QuantizationAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to pre-process a model before quantizing it, logged as a
    root WARNING on every dynamic or int8 ONNX export: it addresses whoever calls the
    quantizer, not a user of lstm-zoo, whose artifact is measured against Keras either way
    (the parity table). ``LSTM_ZOO_DEBUG=1`` keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and "onnxruntime" in record.pathname
                    and str(record.msg).startswith("Please consider"))


_ADVICE = _QuantizationAdvice()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from zoo.errors import ZooError

    if not os.environ.get("LSTM_ZOO_DEBUG") and _ADVICE not in logging.getLogger().filters:
        logging.getLogger().addFilter(_ADVICE)

    try:
        return args.fn(args)
    except (ZooError, TypeError, ValueError) as e:
        # TypeError: an unknown builder override; ValueError: a malformed NAME=VALUE.
        if os.environ.get("LSTM_ZOO_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # exports leave nothing; a fine-tuning run keeps its checkpoints to resume from
        print("error: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
