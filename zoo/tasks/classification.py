"""Sequence classification (``classification``) and text classification (``text``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo._keras import keras, tf
from zoo.augment import (
    augment_shift,
    batch_dataset,
    epoch_keyed_dataset,
    sensor_augment,
    shift_images,
)
from zoo.errors import ShapeError
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import check_encodable, length_batches, parity_pool, read_text_source
from zoo.tasks.fitting import (
    BatchSequence,
    adam,
    adapt_normalization,
    head,
    plain_batches,
    run_fit,
)


@register_task
@dataclass(frozen=True)
class Classification(Task):
    """Sequence classification; metric: accuracy."""

    name: str = "classification"
    metric: str = "accuracy"
    higher_is_better: bool = True

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, dtype=np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["classifier"]
        probs = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], dtype=np.float32)
            probs.append(graph({"sequence": batch})["probs"])
            if progress:
                progress(len(probs[-1]))
        return np.concatenate(probs)

    def score(self, predictions, data, meta) -> dict[str, float]:
        labels = np.argmax(predictions, axis=-1)
        return {"accuracy": float(np.mean(labels == np.asarray(data.y)))}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> np.ndarray | list:
        """At least ``minimum`` real inputs for tensor parity.

        The test series, then the ``extra`` (calibration) series, then random real
        crops (length 50-100 % of a series) of both, which also exercise the dynamic
        time axis. Crops of unequal length are returned as a list.
        """
        pool = [*np.asarray(test.x, np.float32), *np.asarray(extra.x, np.float32)]
        out = list(pool)
        rng = np.random.default_rng(seed)
        while len(out) < minimum:
            x = pool[int(rng.integers(len(pool)))]
            length = int(rng.integers(len(x) // 2, len(x) + 1))
            start = int(rng.integers(0, len(x) - length + 1))
            out.append(x[start : start + length])
        return out

    def compare(self, a, b) -> dict[str, Any]:
        """How far two backends' predictions are from each other."""
        la, lb = np.argmax(a, -1), np.argmax(b, -1)
        return {"disagreements": int(np.sum(la != lb))}

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Reads a (T, C) sequence from a ``.npy`` or ``.csv`` file."""
        path = Path(source)
        if not path.is_file():
            raise ShapeError(f"input file {source!r} does not exist; expected a .npy or .csv "
                             f"file of shape (time, {len(meta['channels'])})")
        try:
            if path.suffix.lower() == ".npy":
                x = np.load(path, allow_pickle=False)
            elif path.suffix.lower() == ".csv":
                x = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
            else:
                raise ShapeError(f"{source}: expected a .npy or .csv file, got {path.suffix!r}")
        except ShapeError:
            raise
        except Exception as e:  # numpy raises several types for malformed files
            raise ShapeError(f"{source}: cannot read numbers from it ({e})") from None
        return self.check_sequence(x, meta, source)

    def check_sequence(self, x, meta, where="input") -> np.ndarray:
        channels = len(meta["channels"])
        x = np.asarray(x)
        if x.ndim == 3 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 2 or x.shape[1] != channels or x.shape[0] < 1:
            raise ShapeError(f"{where}: expected shape (time, {channels}) with time >= 1, "
                             f"got {x.shape}")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise ShapeError(f"{where}: expected real numbers, got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            bad = int(np.sum(~np.isfinite(x)))
            raise ShapeError(f"{where}: {bad} value(s) are NaN or infinite; expected finite")
        return x.astype(np.float32)[None]

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """One sequence (T, C) as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return self.check_sequence(x, meta, where)[0]

    def format(self, prediction, meta) -> str:
        order = np.argsort(prediction)[::-1]
        return ", ".join(f"{meta['classes'][i]} {prediction[i]:.3f}" for i in order)

    # Batches can be keyed by step, so multi-worker training shards them exactly.
    step_keyed = True

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Sparse cross-entropy; the recipe's ``augment`` says how batches are drawn:
        ``{"shift": pixels}`` for images read row by row, ``"none"`` for data augmented
        already (spoken digits: every window a new draw), absent: sensor-style crops, gain
        and jitter. ``batches: "keyed by step"``: shardable across workers."""
        x, y = head(recipe, np.asarray(data.x, np.float32), np.asarray(data.y))
        if adapt:  # from scratch; fine-tuning keeps the trained normalisation
            adapt_normalization(model, x, recipe.get("normalize", "channel"))
        rng = np.random.default_rng(recipe.get("seed", 0))
        batch = recipe["batch_size"]
        steps = math.ceil(len(x) / batch)
        augment = recipe.get("augment", {})
        shift = augment_shift(augment)
        if recipe.get("batches") == "keyed by step":
            batches = batch_dataset(x, y, batch, (recipe.get("seed", 0), 0), 0, steps, augment)
        elif shift:
            batches = shifted_batches(x, y, batch, rng, shift)
        elif augment == "none":
            batches = plain_batches(x, y, batch, rng)
        else:
            batches = augmented_batches(x, y, batch, rng)
        model.compile(optimizer=adam(recipe, steps), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return run_fit(model, batches, recipe, verbose, callbacks, steps=steps)

    finetune_head = ("probs",)

    def finetune_data(self, spec, parent, config, data, test, alphabet):
        """The user's labelled sequences (and test file), the builder config for them and
        the model directory's meta (classes, channel names)."""
        from zoo.userdata import check_fits, load_sequences

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
            # weights and every later layer transfer (zoo.tasks.transfer).
            config = {**config, "num_features": features}
        config = {**config, "num_classes": len(full.classes)}
        meta = {**dict(spec.meta), "classes": list(full.classes),
                "channels": list(full.channels)}
        return full, held_out, config, meta

    def phase_batches(self, model, train, val, meta, *, strategy, learning_rate, batch, key,
                      first_epoch, augment=None):
        steps = math.ceil(len(train.x) / batch)
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        data = batch_dataset(train.x, train.y, batch, key, first_epoch * steps, steps, augment)
        return model, data, steps, (val.x, val.y)


@register_task
@dataclass(frozen=True)
class TextClassification(Classification):
    """Text classification over word ids; metric: accuracy.

    Inputs are texts; :meth:`encode` turns one into ids with the tokenizer and vocabulary
    in ``meta`` (:mod:`zoo.datasets.reviews`), the same on every backend. The graph
    ``classifier`` takes ``tokens (B, T)`` int32; a batch holds texts of one length only,
    so nothing is padded.
    """

    name: str = "text"
    step_keyed = False

    def inputs(self, data) -> list[str]:
        return list(data.texts)

    @staticmethod
    def index(meta) -> dict[str, int]:
        from zoo.datasets.reviews import word_index

        return word_index(meta["vocab"])

    def encode(self, text: str, meta, index=None) -> np.ndarray:
        """Token ids (T,) of ``text``; a :class:`ShapeError` for a text without words."""
        from zoo.datasets.reviews import encode

        return encode(text, self.index(meta) if index is None else index,
                      meta["tokenizer"]["max_tokens"])

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["classifier"]
        index = self.index(meta)
        ids = [self.encode(t, meta, index) for t in inputs]
        out: list[np.ndarray | None] = [None] * len(ids)
        for chunk in length_batches([len(x) for x in ids], batch_size):
            probs = graph({"tokens": np.stack([ids[i] for i in chunk])})["probs"]
            for i, p in zip(chunk, probs, strict=True):
                out[i] = p
            if progress:
                progress(len(chunk))
        return np.stack(out) if out else np.zeros((0, len(meta["classes"])), np.float32)

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[str]:
        """The test texts, then the ``extra`` (calibration) ones, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    def check_input(self, text, meta, where="input") -> str:
        """One text as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return check_encodable(self, text, "a text", meta, where)

    def parse_input(self, source: str, meta) -> str:
        """The text of a ``.txt`` file or the text itself (see :func:`read_text_source`)."""
        text, where = read_text_source(source)
        return self.check_input(text, meta, where)

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Sparse cross-entropy over batches of texts of similar length (:func:`text_batches`),
        redrawn every epoch."""
        index = self.index(spec.meta)
        texts, y = head(recipe, list(data.texts), np.asarray(data.y))
        ids = [self.encode(t, spec.meta, index) for t in texts]
        seed = recipe.get("seed", 0)
        train_seq = BatchSequence(
            lambda epoch: text_batches(ids, y, recipe["batch_size"],
                                       np.random.default_rng(seed + epoch)),
            epochs=recipe["epochs"])
        model.compile(optimizer=adam(recipe, len(train_seq)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return run_fit(model, train_seq, recipe, verbose, callbacks, shuffle=False)

    padded_batches = True

    def finetune_data(self, spec, parent, config, data, test, alphabet):
        """The user's labelled texts (and test file), the builder config for their classes
        and the model directory's meta: the parent's tokenizer and vocabulary (its word
        vectors transfer; words outside it are the unknown id), the new classes."""
        from zoo.userdata import check_classes, load_texts

        full = load_texts(data)
        check_classes(full.y, full.classes, str(data))
        held_out = None if test is None else load_texts(test, classes=full.classes)
        config = {**config, "num_classes": len(full.classes)}
        meta = {**dict(spec.meta), "classes": list(full.classes)}
        # every text the encoder takes (a peptide's residues), before training starts
        for path, texts in ((data, full.texts), (test, [] if held_out is None else
                                                 held_out.texts)):
            for row, text in enumerate(texts, 2):
                self.check_input(text, meta, f"{path}, line {row}")
        return full, held_out, config, meta

    def phase_batches(self, model, train, val, meta, *, strategy, learning_rate, batch, key,
                      first_epoch, augment=None):
        words = self.index(meta)
        ids = [self.encode(t, meta, words) for t in train.texts]
        val_ids = [self.encode(t, meta, words) for t in val.texts]
        steps = math.ceil(len(ids) / batch)
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        y = np.asarray(train.y, np.int64)
        signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int64))
        data = epoch_keyed_dataset(lambda rng: text_batches(ids, y, batch, rng), signature,
                                   key, first_epoch * steps, steps)
        val_batches = text_batches(val_ids, val.y, 64, np.random.default_rng(0))
        return model, data, steps, BatchSequence(lambda _: val_batches)



def augmented_batches(x: np.ndarray, y: np.ndarray, batch: int, rng):
    """Endless shuffled training batches with sensor-style augmentation: a random crop of
    70-100 % of the series (the time axis is dynamic), per-channel gain and additive
    jitter. One pass over the data is ``ceil(len(x) / batch)`` batches.

    One random stream: the shipped classifier weights were trained on exactly this
    sequence (the recipe reproduces them bit for bit). Fine-tuning, which must resume
    mid-run, uses batches keyed by step instead (:func:`zoo.augment.augmented_batch`).
    """
    steps = math.ceil(len(x) / batch)
    scale = x.std(axis=(0, 1))
    while True:
        order = rng.permutation(len(x))
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            yield sensor_augment(x, idx, rng, scale), y[idx]


def shifted_batches(x: np.ndarray, y: np.ndarray, batch: int, rng, shift: int):
    """Endless shuffled batches of images (N, rows, cols) moved by up to ``shift`` pixels
    in each direction (zero fill): the augmentation for digits read row by row, where a
    crop of the time axis would cut strokes off."""
    while True:
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            dy, dx = rng.integers(0, 2 * shift + 1, (2, len(idx)))
            yield shift_images(x[idx], dy, dx, shift), y[idx]


def text_batches(ids: list[np.ndarray], y: np.ndarray, batch_size: int, rng) -> list:
    """One epoch of (tokens, labels) batches of texts of similar length, each padded with
    id 0 (masked) to its longest text; the batch order is shuffled.

    Lengths get uniform noise of +-10 % before sorting, so a text meets other neighbours
    every epoch.
    """
    lengths = np.array([len(x) for x in ids], np.float64)
    order = np.argsort(lengths * rng.uniform(0.9, 1.1, len(ids)), kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    for k in rng.permutation(len(chunks)):
        idx = chunks[k]
        width = max(len(ids[i]) for i in idx)
        tokens = np.zeros((len(idx), width), np.int32)
        for r, i in enumerate(idx):
            tokens[r, : len(ids[i])] = ids[i]
        batches.append((tokens, np.asarray(y)[idx]))
    return batches
