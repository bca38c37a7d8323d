"""Transfer learning: a pretrained model fine-tuned on the user's own labelled data.

``finetune(NAME, DATA, OUT)`` loads the pretrained model, gives it a new head for the
data's classes, trains the head with the backbone frozen, then unfreezes everything at a
lower learning rate; both phases stop early on the held-out loss and restore their best
epoch. The result is a model directory that every command takes in place of a zoo name::

    lstm-zoo finetune bilstm_activity --data my.npz --out my_model
    lstm-zoo export my_model --out my_bundle

A model directory holds ``finetuned.weights.h5`` and ``finetuned.json``: the builder
config, the class and channel names, the parent weights' sha256, the data file's path and
sha256 and the exact train / held-out split, the measured metrics and the training
history; beside them TensorBoard logs (``logs/``) and ``training_curve.svg``. Its
evaluation split (for ``export`` parity) is the ``--test`` file if one was given, else the
held-out split that early stopping used (recorded as such).

Training runs on any tf.distribute strategy (:mod:`zoo.distribute`) and survives a kill:
the same call again resumes from the checkpoints in ``.OUT.partial``
(:mod:`zoo.resumable`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from zoo._keras import keras, tf
from zoo.distribute import check_strategy, get_strategy, worker_faults
from zoo.errors import DataError, UnsupportedError
from zoo.graphs import keras_graphs
from zoo.model_dir import (  # noqa: F401  (the model directory's names, as they were here)
    DATASET_PREFIX,
    MAX_SOURCE,
    METADATA,
    TAG,
    derived_spec,
    is_model_dir,
    load_split,
    model_dir_spec,
)
from zoo.registry import build_model, get_spec, jsonable_config
from zoo.resumable import RunState, run_phase
from zoo.tasks import TASKS, get_task
from zoo.tasks.fitting import adapt_normalization
from zoo.train import count_params, seed_everything
from zoo.weights import WEIGHTS_SUFFIX, save_weights_atomic, sha256_of

LOGS = "logs"  # TensorBoard event files, one run per phase
CURVE = "training_curve.svg"
DEFAULTS = {"head_epochs": 30, "epochs": 100, "learning_rate": 2e-3, "unfreeze_factor": 0.1,
            "patience": 15, "val_fraction": 0.2, "batch_size": 8, "seed": 0}


def finetune(
    name: str,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = "DEFAULT",
    test: str | os.PathLike | None = None,
    head_epochs: int = DEFAULTS["head_epochs"],
    epochs: int = DEFAULTS["epochs"],
    learning_rate: float = DEFAULTS["learning_rate"],
    unfreeze_factor: float = DEFAULTS["unfreeze_factor"],
    patience: int = DEFAULTS["patience"],
    val_fraction: float = DEFAULTS["val_fraction"],
    batch_size: int = DEFAULTS["batch_size"],
    seed: int = DEFAULTS["seed"],
    from_scratch: bool = False,
    alphabet: str | None = None,
    strategy: str = "default",
    verbose: int = 1,
) -> dict[str, Any]:
    """Fine-tunes ``name`` on labelled sequences in ``data``; writes a model directory.

    Args:
        name: a registered classifier with pretrained weights (or a model directory, to
            fine-tune a fine-tuned model again).
        data: ``.npz`` or long-form ``.csv``; for a keyword spotter, also a folder of WAV
            files per label; for a text classifier, a ``.tsv`` of text and label; for a
            seq2seq model, a ``.tsv`` of source and target symbols (:mod:`zoo.userdata`).
        out: model directory to create (must not exist; written atomically).
        weights: the parent weights (``"DEFAULT"``, a tag or a path).
        test: optional labelled file to report the metric on (never trained on).
        head_epochs / epochs: most epochs of the frozen-backbone phase and of the
            unfrozen phase (each stops after ``patience`` epochs without a lower
            held-out loss and restores its best epoch).
        learning_rate: of the head phase; the unfrozen phase uses it times
            ``unfreeze_factor``.
        val_fraction: share of each class held out for early stopping.
        alphabet: CTC recognisers: the output symbols (default: the parent's, plus any
            new characters of the data's transcripts).
        from_scratch: the same architecture, data, split and stopping rule, but random
            initial weights trained in one phase at ``learning_rate``: the baseline that
            shows what the pretrained weights are worth.
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"`` (``TF_CONFIG``
            names this worker; :mod:`zoo.distribute`).

    Returns:
        The metadata written to ``out/finetuned.json``.

    Raises:
        DataError, ShapeError: data that cannot train this model (:mod:`zoo.userdata`).
        UnsupportedError: a model whose task has no head to replace yet.
        ConfigError: an unknown strategy, a missing or malformed ``TF_CONFIG``.

    A run that stops (a crash, a kill, Ctrl-C) keeps its checkpoints in
    ``.OUT.partial`` beside ``out``; the same call again resumes from them.
    """
    spec, out = _check_request(name, out, strategy, head_epochs, epochs, learning_rate,
                               unfreeze_factor, patience, batch_size)
    # First, before TensorFlow runs an op: multi-worker collectives are set up here.
    distribution, cluster = get_strategy(strategy)
    parent, config = build_model(spec.name, None if from_scratch else weights)
    task = get_task(spec.task)
    full, held_out, config, meta = task.finetune_data(spec, parent, config, data, test,
                                                      alphabet)
    train_idx, val_idx = task.finetune_split(full, val_fraction, seed)
    train_set, val_set = full.subset(train_idx), full.subset(val_idx)

    model, transferred = _new_model(spec, task, parent, config, meta, train_set,
                                    distribution, from_scratch, seed)
    settings = {"head_epochs": head_epochs, "epochs": epochs, "learning_rate": learning_rate,
                "unfreeze_factor": unfreeze_factor, "patience": patience,
                "batch_size": batch_size, "val_fraction": val_fraction, "seed": seed}
    state = _run_state(spec, out, full, held_out, settings, weights=weights,
                       from_scratch=from_scratch, strategy=strategy, alphabet=alphabet,
                       cluster=cluster, verbose=verbose)
    return _run(state, out, cluster, spec, model=model, config=config, meta=meta, full=full,
                held_out=held_out, train_set=train_set, val_set=val_set,
                split=(train_idx, val_idx), task=task, transferred=transferred,
                weights=weights, from_scratch=from_scratch, settings=settings,
                distribution=distribution, strategy=strategy, verbose=verbose)


def _run(state, out, cluster, spec, *, strategy, **run) -> dict[str, Any]:
    """Trains and describes the model in ``state``'s staging folder, then publishes it as
    ``out``; a run that stops keeps its checkpoints there (and says so)."""
    try:
        with worker_faults(cluster, f"its checkpoints are kept in {state.staging}: the same "
                                    "command resumes from them"):
            metadata = _train_and_describe(spec, state=state, **run)
        metadata["training"].update({"strategy": strategy, "workers": cluster.size,
                                     "worker": cluster.index, "resumed": state.resumed})
        _write_model(run["model"], metadata, state.staging, run["full"])
        state.publish(out)
    except BaseException:
        if state.staging.exists():
            print(f"[lstm-zoo] fine-tuning stopped; its checkpoints are kept in "
                  f"{state.staging}: rerun the same command to resume, or delete that "
                  "directory", file=sys.stderr, flush=True)
        raise
    return metadata


def _new_model(spec, task, parent, config, meta, train_set, distribution, from_scratch,
               seed):
    """The model to train, built for the new data in ``distribution``'s scope, with the
    parent's weights where the task keeps them; ``(model, transferred layers)``."""
    seed_everything(seed)
    with distribution.scope():
        model = spec.builder(**config)
    transferred = {} if from_scratch else task.transfer(spec, parent, model, meta)
    if "normalize" in [layer.name for layer in model.layers] and "normalize" not in transferred:
        # The backbone was trained on normalised inputs: normalise the new data likewise,
        # with the new data's own statistics.
        base = get_spec(spec.base) if spec.base else spec
        adapt_normalization(model, task.normalization_sample(train_set),
                            (base.recipe or {}).get("normalize", "channel"))
    return model, transferred


def _run_state(spec, out: Path, full, held_out, settings, *, weights, from_scratch, strategy,
               alphabet, cluster, verbose) -> RunState:
    """The run's staging folder and what identifies the run in it (a rerun with the same
    request resumes there)."""
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    # Everything goes to a hidden sibling renamed into place last, so a failed run leaves
    # no model directory. It also holds the training checkpoints: rerunning the same
    # command after a crash or a kill resumes from them (zoo.resumable).
    staging = out.absolute().parent / f".{out.name}.partial"
    return RunState(staging, {
        "model": spec.name, "data": full.source["sha256"],
        "test": None if held_out is None else held_out.source["sha256"],
        "parent": None if from_scratch else _parent_record(spec, weights)["sha256"],
        "from_scratch": from_scratch, "settings": settings, "strategy": strategy,
        "alphabet": alphabet,
        "workers": cluster.size, "worker": cluster.index}, verbose)


def _check_request(name, out, strategy, *settings):
    """The model's spec and the output path, once the request is checked (before anything
    is loaded)."""
    check_strategy(strategy)
    spec = get_spec(str(name))
    task = get_task(spec.task)
    if not task.finetune_head:
        tunable = sorted(name for name, t in TASKS.items() if t.finetune_head)
        raise UnsupportedError(f"fine-tuning supports tasks {tunable}; {spec.name} is a "
                               f"{spec.task} model")
    if task.padded_batches and strategy == "multiworker":
        raise UnsupportedError(
            f"multi-worker fine-tuning of {spec.task} models is not supported yet (their "
            "padded batches are not sharded and tested across workers); use --strategy "
            "default or mirrored")
    _check_settings(*settings)
    out = Path(out)
    if out.exists():
        raise DataError(f"output directory {out} already exists; choose a new path")
    return spec, out


def _write_model(model, metadata: dict, staging: Path, full) -> None:
    """The weights, their metadata and the training curve, into the staging folder."""
    weights_path = staging / f"{TAG}{WEIGHTS_SUFFIX}"
    save_weights_atomic(model, weights_path)
    metadata["file"] = weights_path.name
    metadata["sha256"] = sha256_of(weights_path)
    (staging / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    (staging / CURVE).write_text(curve_svg(metadata["phases"], f"{metadata['model']} on "
                                           f"{Path(full.source['path']).name}"))


def _train_and_describe(spec, *, model, config, meta, full, held_out, train_set, val_set,
                        split, task, transferred, weights, from_scratch, state, settings,
                        distribution, verbose) -> dict[str, Any]:
    """Runs the phases (TensorBoard logs under ``logs/<phase>``), measures the metrics
    and returns the model directory's metadata."""
    s = settings
    phases = []
    start = time.time()
    # the augmentation of the parent's recipe: image shifts for models that read images;
    # none for log-mel windows (the spotter's recipe augments audio before the front end,
    # which a user's recordings do not go through)
    base = get_spec(spec.base) if spec.base else spec
    augment = (base.recipe or {}).get("augment")

    def phase(name, index, epochs, learning_rate, trainable):
        return run_phase(state, distribution, model, name, index=index, train=train_set,
                         val=val_set, epochs=epochs, learning_rate=learning_rate,
                         trainable=trainable, batch=s["batch_size"], seed=s["seed"],
                         patience=s["patience"], verbose=verbose,
                         log_dir=state.staging / LOGS, task=task, meta=meta, augment=augment)

    if from_scratch:
        phases.append(phase("scratch", 0, s["epochs"], s["learning_rate"], None))
    else:
        # The head phase trains the new head and any layer with fresh weights in it.
        new = (*task.finetune_head, *(k for k, v in transferred.items() if v != "all"))
        phases.append(phase("head", 0, s["head_epochs"], s["learning_rate"], new))
        phases.append(phase("unfrozen", 1, s["epochs"],
                            s["learning_rate"] * s["unfreeze_factor"], None))
    seconds = time.time() - start

    derived = derived_spec(spec, config, meta)
    graphs = keras_graphs(derived, model)
    metrics = {"val": task.score(task.predict(graphs, task.inputs(val_set), derived.meta,
                                              batch_size=64), val_set, derived.meta)}
    if held_out is not None:
        metrics["test"] = task.score(task.predict(graphs, task.inputs(held_out), derived.meta,
                                                  batch_size=64), held_out, derived.meta)
    parent_record = None if from_scratch else _parent_record(spec, weights)
    return {
        "model": spec.base or spec.name,
        "kind": "finetuned",
        "tag": TAG,
        "params": count_params(model),
        "config": jsonable_config(config),
        "meta": meta,
        "parent": parent_record,
        "from_scratch": from_scratch,
        "transferred_layers": transferred,
        "data": {"train": full.source,
                 "split": {"seed": s["seed"], "val_fraction": s["val_fraction"],
                           "train": split[0].tolist(), "val": split[1].tolist()},
                 "test": None if held_out is None else held_out.source,
                 "evaluation": "test" if held_out is not None else "val"},
        "metrics": metrics,
        "phases": phases,
        "settings": {k: v for k, v in s.items() if k not in ("val_fraction", "seed")},
        "logs": {"tensorboard": LOGS, "curve": CURVE},
        "training": {"seconds": round(seconds, 1), "tensorflow": tf.__version__,
                     "tf_keras": keras.__version__},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _parent_record(spec, weights) -> dict[str, str]:
    from zoo.weights import resolve

    record = resolve(spec, weights)
    return {"model": spec.base or spec.name, "weights": str(weights),
            "file": record.path.name, "sha256": sha256_of(record.path)}


def _check_settings(head_epochs, epochs, learning_rate, unfreeze_factor, patience, batch):
    for what, value in (("head_epochs", head_epochs), ("epochs", epochs),
                        ("patience", patience), ("batch_size", batch)):
        if not isinstance(value, int) or value < 1:
            raise DataError(f"{what} must be a positive integer; got {value!r}")
    for what, value in (("learning_rate", learning_rate), ("unfreeze_factor", unfreeze_factor)):
        if not value > 0:
            raise DataError(f"{what} must be > 0; got {value!r}")


def curve_svg(phases: list[dict], title: str, width: int = 640, height: int = 320) -> str:
    """The training curve as a standalone SVG (no plotting library needed): training and
    held-out loss per epoch across the phases, a dashed line where a phase begins and a
    dot on each phase's restored best epoch."""
    train = [v for p in phases for v in p["history"]["loss"]]
    val = [v for p in phases for v in p["history"]["val_loss"]]
    left, right, top, bottom = 56, 16, 28, 36
    top_loss = max(max(train), max(val)) * 1.05 or 1.0
    n = max(len(train), 2)

    def xy(i, v):
        return (left + (width - left - right) * i / (n - 1),
                top + (height - top - bottom) * (1 - v / top_loss))

    def line(values, colour):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in
                                                          enumerate(values)))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="16">{escape(title)}: loss per epoch (blue training, '
             'orange held-out)</text>',
             f'<text x="4" y="{top + 4}">{top_loss:.3g}</text>',
             f'<text x="4" y="{height - bottom}">0</text>',
             f'<text x="{width - right - 60}" y="{height - 8}">epoch {n}</text>',
             line(train, "#1f77b4"), line(val, "#ff7f0e")]
    offset = 0
    for p in phases:
        x, _ = xy(offset, 0)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" '
                     'stroke="grey" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="{top + 12}">{escape(p["phase"])}</text>')
        bx, by = xy(offset + p["best_epoch"] - 1, p["best_val_loss"])
        parts.append(f'<circle cx="{bx:.1f}" cy="{by:.1f}" r="3.5" fill="#ff7f0e"/>')
        offset += p["epochs_run"]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
