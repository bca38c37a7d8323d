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


def run_phase(state: RunState, strategy, model, phase: str, *, index: int, train, val,
              epochs: int, learning_rate: float, trainable, batch: int, seed: int,
              patience: int, verbose: int, log_dir: Path | None = None,
              task, meta, augment=None) -> dict:
    """Trains one phase (or restores it, if a previous run finished it); returns its record:
    epochs run, best epoch, best held-out loss, per-epoch history.

    The ``task`` (:mod:`zoo.tasks`) compiles the model and makes the phase's batches from
    ``train`` and ``val`` (:meth:`~zoo.tasks.base.Task.phase_batches`; ``meta``: the model
    directory's classes, alphabet or vocabularies)."""
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
    fitted, data, steps, validation = task.phase_batches(
        model, train, val, meta, strategy=strategy, learning_rate=learning_rate, batch=batch,
        key=(seed, index), first_epoch=start, augment=augment)
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
