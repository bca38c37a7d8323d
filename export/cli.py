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
import platform
import signal
import sys
from pathlib import Path

from export.cli_parser import FINETUNE_SETTINGS
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
    (judged on the checks it has), or a bound on |diff| less a relative allowance. Rows
    run on another CPU's emulated kernels (``verify --arch``) follow, their backend named
    with the CPU, each with a line for its max |diff| from the host's run."""
    out = out or sys.stdout  # looked up per call: a redirected stdout (tests, a wrapper)
    ref = parity["reference"]["metrics"]
    metric_names = list(ref)
    rows = [*parity["results"], *parity.get("arch_results", ())]
    width = max([7, *(len(_backend(r)) for r in rows)])
    head = (f"{'format':7s} {'precision':9s} {'backend':{width}s} {'size KB':>8s} "
            f"{'max|diff|':>10s} {'tolerance':>10s} " + " ".join(f"{m:>13s}" for m in metric_names)
            + f" {'ms/sample':>9s}  parity")
    print(head, file=out)
    print(f"{'keras':7s} {'fp32':9s} {'keras':{width}s} {'':>8s} {'':>10s} {'':>10s} "
          + " ".join(f"{ref[m]:13.4f}" for m in metric_names), file=out)
    notes = []
    for r in rows:
        tolerance, note = _tolerance(r)
        where = f"{r['format']}/{r['precision']}" + (f" on {r['arch']}" if "arch" in r else "")
        if note:
            notes.append(f"{where}: {note}")
        # emulated rows: no time (the kernels are emulated), the |diff| from the host's run
        timing = ("  emulated" if r["per_sample_ms"] is None else f"{r['per_sample_ms']:9.3f}")
        print(f"{r['format']:7s} {r['precision']:9s} {_backend(r):{width}s} "
              f"{r['size_bytes'] / 1024:8.1f} {r['tensor_max_abs']:10.2e} {tolerance:>10s} "
              + " ".join(f"{r['metrics'][m]:13.4f}" for m in metric_names)
              + f" {timing}  {'PASS' if r['passed'] else 'FAIL'}", file=out)
    for note in notes:
        print(note, file=out)
    for r in parity.get("arch_results", ()):
        print(f"{r['format']}/{r['precision']} on {r['arch']}: max|diff| from the "
              f"{platform.machine()} run of the same artifact {r['max_abs_vs_host']:.2e} "
              f"({r['emulated_feeds']} feeds)", file=out)


def _backend(row: dict) -> str:
    return row["backend"] + (f"@{row['arch']}" if "arch" in row else "")


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
             "batch_size", "unroll")
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
                        batch_size=args.batch_size, unroll=args.unroll or "auto",
                        progress=Progress())


def cmd_export(args) -> int:
    from export.output import check_out_dir

    check_out_dir(Path(args.out))  # before TensorFlow is imported (8 s): checked again
    from export.pipeline import export_model  # when the export claims the path
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
    if args.arch is not None:  # what emulation lacks, before TensorFlow is imported (6 s)
        from export.verification.arch import preflight

        preflight()
    from export.pipeline import verify_bundle

    parity = verify_bundle(args.bundle, progress=Progress(), limit=args.limit, arch=args.arch)
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
    items = task.parse_inputs(args.input, meta)
    precision = _precision(bundle, args)
    runners = bundle.runners(args.backend, precision)
    predictions = task.predict(runners, items, meta)
    if args.out is not None and not all(isinstance(p, np.ndarray)
                                        and np.issubdtype(p.dtype, np.number)
                                        for p in predictions):
        raise UnsupportedError(f"--out writes an array prediction (frames, a forecast); "
                               f"{bundle.model_name}'s {task.name} prediction is a "
                               f"{type(predictions[0]).__name__}")
    for i, p in enumerate(predictions):  # a batch file: one block per sample
        print((f"[{i}] " if len(predictions) > 1 else "") + task.format(p, meta))
    prediction = predictions[0] if len(predictions) == 1 else np.stack(predictions) \
        if args.out is not None else None
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
    from export.cli_parser import build_parser as parser

    return parser({"fetch-data": cmd_fetch_data, "list": cmd_list, "info": cmd_info,
                   "train": cmd_train, "finetune": cmd_finetune, "export": cmd_export,
                   "inspect": cmd_inspect, "verify": cmd_verify, "predict": cmd_predict,
                   "generate": cmd_generate}, __doc__.splitlines()[0])


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
        code = args.fn(args)
        sys.stdout.flush()  # here, where a reader that left (BrokenPipeError) is caught
        return code
    except (ZooError, TypeError, ValueError) as e:
        # TypeError: an unknown builder override; ValueError: a malformed NAME=VALUE.
        if os.environ.get("LSTM_ZOO_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `lstm-zoo list | head`: the reader left; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt as e:
        # exports leave nothing (SIGTERM too: export.output.Terminated); a fine-tuning run
        # keeps its checkpoints to resume from
        signum = getattr(e, "signum", signal.SIGINT)
        what = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
        print(f"error: {what}; no output was written", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
