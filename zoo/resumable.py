"""Training phases that survive being killed, on any tf.distribute strategy.

A run stages everything in one directory (``.NAME.partial`` beside its output). Each
phase trains with Keras' ``BackupAndRestore`` (model, optimizer and epoch, saved every
epoch) and a :class:`PhaseTracker` that keeps the phase's history and best epoch on disk
beside it; a finished phase leaves its final weights and record. Rerunning the same
command finds the staging directory, skips finished phases, and continues the
interrupted one from its last saved epoch. Training batches are a function of
``(seed, phase, epoch, step)`` (:func:`zoo.augment.augmented_batch`), not of a random
stream, so the resumed epochs see exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zoo._keras import keras, tf
from zoo.augment import batch_dataset
from zoo.weights import atomic_write_bytes

STATE = "state"  # inside the staging directory; removed before the run is published


def save_arrays(model, path: Path) -> None:
    """The model's weights as plain arrays (``.npz``, written atomically): readable under
    any strategy, where Keras' h5 loading fails for multi-worker variables (TF 2.21)."""
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    atomic_write_bytes(path, buffer.getvalue())


def load_arrays(model, path: Path) -> None:
    with np.load(path) as f:
        model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])


class RunState:
    """The staging directory of a run and what its finished phases left there.

    A staging directory made by a run with another ``fingerprint`` (other data or
    settings) is discarded, with a notice, rather than resumed.
    """

    def __init__(self, staging: Path, fingerprint: dict[str, Any], verbose: int = 1):
        self.staging, self.state = staging, staging / STATE
        self.resumed = False
        stamp = self.state / "fingerprint.json"
        if staging.exists():
            try:
                same = json.loads(stamp.read_text()) == fingerprint
            except (OSError, json.JSONDecodeError):
                same = False
            if same:
                self.resumed = True
                if verbose:
                    print(f"[lstm-zoo] resuming the interrupted run in {staging}", flush=True)
            else:
                if verbose:
                    print(f"[lstm-zoo] discarding {staging}: left by a run with other data or "
                          "settings", flush=True)
                shutil.rmtree(staging)
        if not self.resumed:
            self.state.mkdir(parents=True)
            atomic_write_bytes(stamp, json.dumps(fingerprint, sort_keys=True).encode())

    def finished(self, phase: str) -> dict | None:
        path = self.state / f"{phase}.done.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def finish(self, phase: str, model, record: dict) -> None:
        save_arrays(model, self.state / f"{phase}.final.npz")
        atomic_write_bytes(self.state / f"{phase}.done.json", json.dumps(record).encode())

    def restore_finished(self, phase: str, model) -> None:
        load_arrays(model, self.state / f"{phase}.final.npz")

    def publish(self, out: Path) -> None:
        """Removes the resume state and renames the staging directory to ``out``."""
        shutil.rmtree(self.state)
        os.replace(self.staging, out)


class PhaseTracker(keras.callbacks.Callback):
    """Early stopping on ``val_loss`` that restores the best epoch's weights at the end
    (also when the phase ran to its last epoch), with its history and best epoch kept
    on disk every epoch so that a resumed phase carries on where it stopped.

    It must come before ``BackupAndRestore`` in the callback list: it saves first, so a
    kill between the two saves leaves it one epoch ahead of the backup, and
    :meth:`on_epoch_begin` drops that epoch again when training resumes before it.
    """

    def __init__(self, state_dir: Path, phase: str, patience: int):
        super().__init__()
        self.path = state_dir / f"{phase}.tracker.json"
        self.best_path = state_dir / f"{phase}.best.npz"
        self.patience = patience
        self.history: dict[str, list[float]] = {}
        self.best, self.best_epoch = math.inf, -1
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            self.history, self.best, self.best_epoch = (saved["history"], saved["best"],
                                                        saved["best_epoch"])

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("val_loss", []))

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs_run > epoch:  # killed after our save, before the backup's
            self.history = {k: v[:epoch] for k, v in self.history.items()}
            losses = self.history.get("val_loss", [])
            self.best_epoch = int(np.argmin(losses)) if losses else -1
            self.best = losses[self.best_epoch] if losses else math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))
        loss = float(logs["val_loss"])
        if loss < self.best:
            self.best, self.best_epoch = loss, epoch
            save_arrays(self.model, self.best_path)
        elif epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True
        atomic_write_bytes(self.path, json.dumps(
            {"history": self.history, "best": self.best, "best_epoch": self.best_epoch}).encode())

    def on_train_end(self, logs=None):
        if self.best_path.is_file():
            load_arrays(self.model, self.best_path)


def saved_epochs(backup_dir: Path) -> int:
    """Epochs that ``BackupAndRestore`` in ``backup_dir`` has completed (0: none): where a
    resumed ``fit`` starts, so that its batches can start there too."""
    latest = tf.train.latest_checkpoint(str(backup_dir / "chief"))
    if latest is None:
        return 0
    epoch = tf.train.load_checkpoint(latest).get_tensor(
        "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")
    return int(epoch) + 1


def epoch_keyed_dataset(make_epoch, signature, key: tuple[int, ...], first_step: int,
                        steps: int):
    """A ``DatasetCreator`` of the batches ``make_epoch(rng)`` lists for an epoch, keyed
    like :func:`zoo.augment.augmented_batch`: epoch ``e``'s batches come from a generator
    seeded by ``(key, e)``, so a resumed phase replays them exactly; worker ``w`` of ``n``
    input pipelines takes rows ``w::n`` of every array of every batch."""

    def rows(value, w, n):
        if isinstance(value, tuple):
            return tuple(rows(v, w, n) for v in value)
        return value[w::n]

    def dataset_fn(context):
        w, n = context.input_pipeline_id, context.num_input_pipelines

        def batches():
            step, cached = first_step, (None, None)
            while True:
                epoch, i = divmod(step, steps)
                if cached[0] != epoch:
                    cached = (epoch, make_epoch(np.random.default_rng([*key, epoch])))
                yield rows(cached[1][i], w, n)
                step += 1

        return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)

    return keras.utils.experimental.DatasetCreator(dataset_fn)


def ctc_batch_dataset(data, meta, batch: int, stride: int, key: tuple[int, ...],
                      first_step: int, steps: int):
    """CTC training batches (:func:`zoo.tasks.ctc_recognition.ctc_batches`) as an
    :func:`epoch_keyed_dataset`."""
    from zoo.tasks.ctc_recognition import ctc_batches

    channels = data.x[0].shape[1]
    signature = (tf.TensorSpec((None, None, channels), tf.float32),
                 (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32),
                  tf.TensorSpec((None,), tf.int32)))
    return epoch_keyed_dataset(lambda rng: ctc_batches(data, meta, batch, stride, rng),
                               signature, key, first_step, steps)


def text_batch_dataset(ids: list, y: np.ndarray, batch: int, key: tuple[int, ...],
                       first_step: int, steps: int):
    """Padded text batches (:func:`zoo.tasks.classification.text_batches`) as an
    :func:`epoch_keyed_dataset`."""
    from zoo.tasks.classification import text_batches

    signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int64))
    y = np.asarray(y, np.int64)
    return epoch_keyed_dataset(lambda rng: text_batches(ids, y, batch, rng), signature, key,
                               first_step, steps)


def seq2seq_batch_dataset(data, meta, batch: int, key: tuple[int, ...], first_step: int,
                          steps: int):
    """Teacher-forcing batches (:func:`zoo.tasks.seq2seq.seq2seq_batches`) as an
    :func:`epoch_keyed_dataset`."""
    from zoo.tasks.seq2seq import seq2seq_batches

    ids = tf.TensorSpec((None, None), tf.int32)
    signature = ((ids, ids), ids, tf.TensorSpec((None, None), tf.float32))
    return epoch_keyed_dataset(lambda rng: list(seq2seq_batches(data, meta, batch, rng)),
                               signature, key, first_step, steps)


def run_phase(state: RunState, strategy, model, phase: str, *, index: int, train, val,
              epochs: int, learning_rate: float, trainable, batch: int, seed: int,
              patience: int, verbose: int, log_dir: Path | None = None,
              augment=None, ctc_meta: dict | None = None,
              text_meta: dict | None = None, seq2seq_meta: dict | None = None,
              text_task: str = "text") -> dict:
    """Trains one phase (or restores it, if a previous run finished it); returns its record:
    epochs run, best epoch, best held-out loss, per-epoch history.

    With ``ctc_meta`` (the recogniser's alphabet), the model is a CTC recogniser trained
    with :class:`zoo.tasks.ctc_recognition.CTCTrainer` on transcribed sequences; with
    ``text_meta`` (the tokenizer and vocabulary), a text classifier (of ``text_task``) on
    padded, masked batches of word ids;
    with ``seq2seq_meta`` (the vocabularies), an encoder-decoder on teacher-forcing batches;
    otherwise a sequence classifier."""
    done = state.finished(phase)
    if done is not None:
        state.restore_finished(phase, model)
        if verbose:
            print(f"[lstm-zoo] phase {phase!r} was finished by the interrupted run", flush=True)
        return done
    for layer in model.layers:
        layer.trainable = trainable is None or layer.name in trainable
    backup = state.state / f"{phase}.backup"
    start = saved_epochs(backup)
    fitted, data, steps, validation = _phase_batches(
        strategy, model, train, val, learning_rate, batch, seed, index, start, augment,
        ctc_meta, text_meta, seq2seq_meta, text_task)
    tracker = PhaseTracker(state.state, phase, patience)
    if verbose:
        print(f"[lstm-zoo] phase {phase!r}: up to {epochs} epochs at lr {learning_rate:g} "
              f"({'all layers' if trainable is None else ', '.join(trainable)})"
              + (f", resumed after epoch {start}" if start else ""), flush=True)
    callbacks = [tracker, keras.callbacks.BackupAndRestore(str(backup))]
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(log_dir / phase)))
    if start < epochs and not (tracker.epochs_run and tracker.epochs_run - 1
                               - tracker.best_epoch >= patience):
        fitted.fit(data, steps_per_epoch=steps, epochs=epochs, validation_data=validation,
                   callbacks=callbacks,
                   # progress bars on a terminal, one line per epoch in a log file
                   verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0)
    else:  # the interrupted run had already reached the end of this phase
        tracker.set_model(fitted)
        tracker.on_train_end()
    for layer in model.layers:
        layer.trainable = True
    record = {"phase": phase, "learning_rate": learning_rate,
              "epochs_run": tracker.epochs_run, "best_epoch": tracker.best_epoch + 1,
              "best_val_loss": tracker.best, "history": tracker.history}
    state.finish(phase, model, record)
    return record


def _phase_batches(strategy, model, train, val, learning_rate, batch, seed, index, start,
                   augment, ctc_meta, text_meta, seq2seq_meta, text_task="text"):
    """The compiled model to fit (a CTC trainer around a recogniser), the phase's batches
    keyed by step from ``start`` epochs in, the steps per epoch and the validation data."""
    if seq2seq_meta is not None:
        from zoo.tasks.fitting import BatchSequence
        from zoo.tasks.seq2seq import seq2seq_batches

        steps = len(list(seq2seq_batches(train, seq2seq_meta, batch, np.random.default_rng(0))))
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          weighted_metrics=["accuracy"])
        fitted = model
        data = seq2seq_batch_dataset(train, seq2seq_meta, batch, (seed, index), start * steps,
                                     steps)
        val_batches = list(seq2seq_batches(val, seq2seq_meta, 64, np.random.default_rng(0)))
        validation = BatchSequence(lambda _: val_batches)
    elif text_meta is not None:
        from zoo.tasks import get_task
        from zoo.tasks.classification import text_batches
        from zoo.tasks.fitting import BatchSequence

        task = get_task(text_task)
        words = task.index(text_meta)
        ids = [task.encode(t, text_meta, words) for t in train.texts]
        val_ids = [task.encode(t, text_meta, words) for t in val.texts]
        steps = math.ceil(len(ids) / batch)
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        fitted = model
        data = text_batch_dataset(ids, train.y, batch, (seed, index), start * steps, steps)
        val_batches = text_batches(val_ids, val.y, 64, np.random.default_rng(0))
        validation = BatchSequence(lambda _: val_batches)
    elif ctc_meta is not None:
        from zoo.tasks.ctc_recognition import CTCTrainer, ctc_batches, frame_stride
        from zoo.tasks.fitting import BatchSequence

        stride = frame_stride(model)
        with strategy.scope():
            fitted = CTCTrainer(model)
            fitted.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0))
        # ctc_batches sorts by length within chunks of 20 batches: the count can differ
        steps = len(ctc_batches(train, ctc_meta, batch, stride, np.random.default_rng(0)))
        data = ctc_batch_dataset(train, ctc_meta, batch, stride, (seed, index),
                                 start * steps, steps)
        val_batches = ctc_batches(val, ctc_meta, 64, stride, np.random.default_rng(0))
        validation = BatchSequence(lambda _: val_batches)
    else:
        steps = math.ceil(len(train.x) / batch)
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        fitted = model
        data = batch_dataset(train.x, train.y, batch, (seed, index), start * steps, steps,
                             augment)
        validation = (val.x, val.y)
    return fitted, data, steps, validation
