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
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from zoo._keras import keras, tf
from zoo.distribute import check_strategy, get_strategy
from zoo.errors import DataError, ShapeError, UnsupportedError
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
from zoo.tasks import get_task
from zoo.tasks.fitting import adapt_normalization
from zoo.train import count_params, seed_everything
from zoo.userdata import (
    check_classes,
    check_fits,
    load_pairs,
    load_sequences,
    load_texts,
    load_transcribed,
    random_split,
    stratified_split,
)
from zoo.weights import WEIGHTS_SUFFIX, save_weights_atomic, sha256_of

LOGS = "logs"  # TensorBoard event files, one run per phase
CURVE = "training_curve.svg"
# Layers replaced for a new label set, per task (everything else is transferred).
HEADS = {"classification": ("probs",), "kws": ("probs",), "ctc": ("logits",),
         "text": ("probs",), "peptide": ("probs",),
         "seq2seq": ("target_embedding", "projection")}
# Tasks trained on padded batches of varying shape: multi-worker sharding is untested.
PADDED_TASKS = ("ctc", "text", "peptide", "seq2seq")
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
    base = get_spec(spec.base) if spec.base else spec
    head = HEADS[spec.task]
    full, held_out, config, meta, (train_idx, val_idx) = _task_data(
        spec, parent, config, data, test, alphabet, val_fraction, seed)
    train_set, val_set = full.subset(train_idx), full.subset(val_idx)

    seed_everything(seed)
    with distribution.scope():
        model = spec.builder(**config)
    transferred = {} if from_scratch else _transferred(spec, parent, model, head, meta)
    if "normalize" in [layer.name for layer in model.layers] and "normalize" not in transferred:
        # The backbone was trained on normalised inputs: normalise the new data likewise,
        # with the new data's own statistics.
        points = (np.concatenate(train_set.x)[None] if spec.task == "ctc" else train_set.x)
        adapt_normalization(model, points, (base.recipe or {}).get("normalize", "channel"))
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    # Everything goes to a hidden sibling renamed into place last, so a failed run leaves
    # no model directory. It also holds the training checkpoints: rerunning the same
    # command after a crash or a kill resumes from them (zoo.resumable).
    staging = out.absolute().parent / f".{out.name}.partial"
    settings = {"head_epochs": head_epochs, "epochs": epochs, "learning_rate": learning_rate,
                "unfreeze_factor": unfreeze_factor, "patience": patience,
                "batch_size": batch_size, "val_fraction": val_fraction, "seed": seed}
    state = RunState(staging, {
        "model": spec.name, "data": full.source["sha256"],
        "test": None if held_out is None else held_out.source["sha256"],
        "parent": None if from_scratch else _parent_record(spec, weights)["sha256"],
        "from_scratch": from_scratch, "settings": settings, "strategy": strategy,
        "alphabet": alphabet,
        "workers": cluster.size, "worker": cluster.index}, verbose)
    try:
        metadata = _train_and_describe(
            spec, model=model, config=config, meta=meta, full=full, held_out=held_out,
            train_set=train_set, val_set=val_set, split=(train_idx, val_idx), head=head,
            transferred=transferred, weights=weights, from_scratch=from_scratch,
            state=state, settings=settings, distribution=distribution, verbose=verbose)
        metadata["training"].update({"strategy": strategy, "workers": cluster.size,
                                     "worker": cluster.index, "resumed": state.resumed})
        _write_model(model, metadata, staging, full)
        state.publish(out)
    except BaseException:
        if staging.exists():
            print(f"[lstm-zoo] fine-tuning stopped; its checkpoints are kept in {staging}: "
                  "rerun the same command to resume, or delete that directory",
                  file=sys.stderr, flush=True)
        raise
    return metadata


def _check_request(name, out, strategy, *settings):
    """The model's spec and the output path, once the request is checked (before anything
    is loaded)."""
    check_strategy(strategy)
    spec = get_spec(str(name))
    if spec.task not in HEADS:
        raise UnsupportedError(f"fine-tuning supports tasks {sorted(HEADS)}; {spec.name} is "
                               f"a {spec.task} model")
    if spec.task in PADDED_TASKS and strategy == "multiworker":
        raise UnsupportedError(
            f"multi-worker fine-tuning of {spec.task} models is not supported yet (their "
            "padded batches are not sharded and tested across workers); use --strategy "
            "default or mirrored")
    _check_settings(*settings)
    out = Path(out)
    if out.exists():
        raise DataError(f"output directory {out} already exists; choose a new path")
    return spec, out


def _task_data(spec, parent, config, data, test, alphabet, val_fraction, seed):
    """The task's data (:mod:`zoo.userdata`): ``(full, held_out, config, meta, (train
    indices, validation indices))``; a split stratified by label where there are labels."""
    if spec.task == "ctc":
        full, held_out, config, meta = _ctc_data(spec, parent, config, data, test, alphabet)
        return full, held_out, config, meta, random_split(len(full.texts), val_fraction, seed)
    if _is_text(spec):
        full, held_out, config, meta = _text_data(spec, config, data, test)
    elif spec.task == "seq2seq":
        full, held_out, config, meta = _seq2seq_data(spec, config, data, test)
        return full, held_out, config, meta, random_split(len(full.words), val_fraction, seed)
    else:
        full, held_out, config, meta = _classification_data(spec, parent, config, data, test)
    return full, held_out, config, meta, stratified_split(full.y, val_fraction, seed)


def _transferred(spec, parent, model, head, meta) -> dict:
    """Copies the parent's weights into ``model`` where the task keeps them; what was
    copied, by layer."""
    if spec.task == "seq2seq":  # the parent's target symbols keep their ids
        transferred = _transfer(parent, model, head)
        transferred.update(_transfer_symbol_prefix(parent, model, head))
        return transferred
    if spec.task == "ctc":  # same input channels and units: keep the parent's statistics
        transferred = _transfer(parent, model, head, keep_normalization=True)
        transferred["logits"] = _transfer_symbols(parent, model, parent_meta(spec)["alphabet"],
                                                  meta["alphabet"])
        return transferred
    return _transfer(parent, model, head)


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
                        split, head, transferred, weights, from_scratch, state, settings,
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
                         log_dir=state.staging / LOGS, augment=augment,
                         ctc_meta=meta if spec.task == "ctc" else None,
                         text_meta=meta if _is_text(spec) else None,
                         text_task=spec.task,
                         seq2seq_meta=meta if spec.task == "seq2seq" else None)

    if from_scratch:
        phases.append(phase("scratch", 0, s["epochs"], s["learning_rate"], None))
    else:
        # The head phase trains the new head and any layer with fresh weights in it.
        new = (*head, *(k for k, v in transferred.items() if v != "all"))
        phases.append(phase("head", 0, s["head_epochs"], s["learning_rate"], new))
        phases.append(phase("unfrozen", 1, s["epochs"],
                            s["learning_rate"] * s["unfreeze_factor"], None))
    seconds = time.time() - start

    task = get_task(spec.task)
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


def _classification_data(spec, parent, config, data, test):
    """The user's labelled sequences (and test file), the builder config for them and the
    model directory's meta (classes, channel names)."""
    full = load_sequences(data)
    check_fits(full, str(data))
    features = full.x.shape[2]
    held_out = None if test is None else load_sequences(test, classes=full.classes)
    if held_out is not None:
        check_fits(held_out, str(test), min_per_class=0, features=features)
    if features != int(parent.input_shape[-1]):
        if "num_features" not in spec.override_names():
            raise ShapeError(f"{data}: the data has {features} features per step; "
                             f"{spec.name} takes {int(parent.input_shape[-1])}")
        # A new input width: the first layer's input weights start fresh, its recurrent
        # weights and every later layer transfer (see _transfer).
        config = {**config, "num_features": features}
    config = {**config, "num_classes": len(full.classes)}
    meta = {**dict(parent_meta(spec)), "classes": list(full.classes),
            "channels": list(full.channels)}
    return full, held_out, config, meta


def _text_data(spec, config, data, test):
    """The user's labelled texts (and test file), the builder config for their classes and
    the model directory's meta: the parent's tokenizer and vocabulary (its word vectors
    transfer; words outside it are the unknown id), the new classes."""
    full = load_texts(data)
    check_classes(full.y, full.classes, str(data))
    held_out = None if test is None else load_texts(test, classes=full.classes)
    config = {**config, "num_classes": len(full.classes)}
    meta = {**dict(parent_meta(spec)), "classes": list(full.classes)}
    task = get_task(spec.task)  # every text the task's encoder takes (a peptide's residues)
    for path, texts in ((data, full.texts), (test, [] if held_out is None else held_out.texts)):
        for row, text in enumerate(texts, 2):
            task.check_input(text, meta, f"{path}, line {row}")
    return full, held_out, config, meta


def _is_text(spec) -> bool:
    """Whether the model classifies texts (word ids, or a peptide's residue ids)."""
    from zoo.tasks import TextClassification

    return isinstance(get_task(spec.task), TextClassification)


def _seq2seq_data(spec, config, data, test):
    """The user's source -> target pairs (and test file), the builder config for the new
    target vocabulary and the model directory's meta: the parent's target vocabulary
    first (its symbols keep their ids and weights), then the new symbols, sorted."""
    parent = parent_meta(spec)
    limits = {"alphabet": parent["source_vocab"][2:], "max_source": MAX_SOURCE,
              "max_target": parent["max_output_len"] - 2}
    full = load_pairs(data, **limits)
    vocab = list(parent["target_vocab"])
    vocab += [s for s in full.symbols if s not in vocab]
    # A test symbol the model cannot emit is not refused: scoring compares symbol strings,
    # and the error rate counts it as the miss it is.
    held_out = None if test is None else load_pairs(test, **limits)
    config = {**config, "target_vocab": len(vocab)}
    return full, held_out, config, {**parent, "target_vocab": vocab}


def _transfer_symbol_prefix(parent, model, layers) -> dict[str, str]:
    """The target symbols the parent knew keep their weights: the first rows of the
    target embedding, the first columns of the projection (the vocabulary extends the
    parent's); new symbols keep their fresh initialisation."""
    done = {}
    for name in layers:
        source, target = parent.get_layer(name).get_weights(), model.get_layer(name).get_weights()
        old = source[0].shape[0 if name == "target_embedding" else -1]
        out = []
        for s, t in zip(source, target, strict=True):
            t = t.copy()
            if name == "target_embedding":
                t[:old] = s
            else:  # projection kernel (units, V) and bias (V,)
                t[..., :old] = s
            out.append(t)
        model.get_layer(name).set_weights(out)
        new = target[0].shape[0 if name == "target_embedding" else -1] - old
        done[name] = f"partial: {old} symbols from the parent, {new} new"
    return done


def _ctc_data(spec, parent, config, data, test, alphabet):
    """The user's transcribed sequences (and test file), the builder config for the
    alphabet and the model directory's meta (alphabet).

    The alphabet is ``alphabet`` if given (every transcript must stay within it), else the
    parent's symbols followed by any new characters the data uses (sorted), so a few
    words of a new style or writer do not cost the model the letters they happen to lack.
    """
    channels = int(parent.input_shape[-1])
    inherited_meta = parent_meta(spec)
    audio = inherited_meta if "sample_rate" in inherited_meta else None  # lines name WAVs
    if alphabet is not None:
        if not alphabet or len(set(alphabet)) != len(alphabet):
            raise DataError(f"alphabet must be non-empty characters without repeats; got "
                            f"{alphabet!r}")
        full = load_transcribed(data, channels=channels, alphabet=alphabet, audio=audio)
    else:
        full = load_transcribed(data, channels=channels, audio=audio)
        inherited = inherited_meta["alphabet"]
        alphabet = inherited + "".join(sorted(set(full.alphabet) - set(inherited)))
        full = replace(full, alphabet=alphabet)
    held_out = None
    if test is not None:
        held_out = load_transcribed(test, channels=channels, alphabet=alphabet, audio=audio)
    config = {**config, "alphabet_size": len(alphabet)}
    return full, held_out, config, {**inherited_meta, "alphabet": alphabet}


def parent_meta(spec) -> dict:
    return dict(spec.meta)


def _transfer_symbols(parent, model, parent_alphabet: str, alphabet: str) -> str:
    """The new output layer starts from the parent's columns for the blank and for every
    symbol both alphabets share; other symbols keep their fresh initialisation."""
    kernel, bias = parent.get_layer("logits").get_weights()
    new_kernel, new_bias = model.get_layer("logits").get_weights()
    pairs = [(0, 0)] + [(i + 1, parent_alphabet.index(ch) + 1)
                        for i, ch in enumerate(alphabet) if ch in parent_alphabet]
    for new, old in pairs:
        new_kernel[:, new], new_bias[new] = kernel[:, old], bias[old]
    model.get_layer("logits").set_weights([new_kernel, new_bias])
    return (f"partial: the blank and {len(pairs) - 1} of {len(alphabet)} symbols from the "
            "parent")


def _transfer(parent, model, head, keep_normalization: bool = False) -> dict[str, str]:
    """Copies weights from ``parent`` into ``model`` layer by layer (by name), except the
    ``head`` layers and (unless ``keep_normalization``) the normalisation (adapted to the
    new data instead). A weight whose shape changed (the first layer's input kernel, for
    data with another number of features) keeps its fresh initialisation.

    Returns:
        ``{layer: "all" | "partial: kept fresh <weights>"}`` for the layers copied.
    """
    done = {}
    for layer in model.layers:
        if layer.name in head or not layer.weights or (
                layer.name == "normalize" and not keep_normalization):
            continue
        source = parent.get_layer(layer.name).get_weights()
        target = layer.get_weights()
        fresh = [w.name for w, s, t in zip(layer.weights, source, target, strict=True)
                 if s.shape != t.shape]
        layer.set_weights([s if s.shape == t.shape else t
                           for s, t in zip(source, target, strict=True)])
        done[layer.name] = "all" if not fresh else "partial: kept fresh " + ", ".join(fresh)
    return done


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
