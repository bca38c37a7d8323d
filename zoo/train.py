"""Training recipes: ``lstm-zoo train NAME`` reproduces the shipped weights.

A recipe is data on the spec (epochs, batch size, learning rate, seed, target); the
code here is one function per task. After training, the task metric is measured on
the real test split with the same graphs that get exported, and the weights are
written with their metadata (sha256, params, dataset, split, metrics, license,
recipe, builder config).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo import datasets
from zoo._keras import keras, tf
from zoo.augment import augment_shift, batch_dataset, sensor_augment, shift_images
from zoo.errors import DataError, UnsupportedError
from zoo.graphs import graph_models, keras_graphs
from zoo.registry import get_spec, jsonable_config
from zoo.tasks import get_task
from zoo.weights import (
    WEIGHTS_SUFFIX,
    atomic_write_bytes,
    pretrained_path,
    read_metadata,
    save_weights_atomic,
    sha256_of,
)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def count_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights))


def train(
    name: str,
    *,
    out_dir: str | Path = "lstm-zoo-weights",
    tag: str | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    strategy: str = "default",
    verbose: int = 1,
) -> dict[str, Any]:
    """Trains ``name`` with its recipe, evaluates it on the test split, writes weights.

    Args:
        name: a registered model with a recipe.
        out_dir: where ``NAME.TAG.weights.h5`` and ``NAME.TAG.json`` go (maintainers
            refresh the shipped weights with ``zoo/pretrained``).
        tag: weights tag (default: the spec's default tag, else the dataset name).
        epochs / limit: override the recipe (limit: at most this many training samples).
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"`` (:mod:`zoo.distribute`;
            every worker writes the same weights to its own ``out_dir``). Only
            ``"default"`` reproduces the shipped weights bit for bit: the others draw
            classification batches keyed by step (:mod:`zoo.resumable`), sharded across
            workers.
        verbose: 0 silent, 1 progress bars.

    TensorBoard logs go to ``out_dir/logs/NAME.TAG``.

    Returns:
        The metadata written beside the weights, plus ``reproduction``: for a shipped
        weights tag, each metric against the shipped value and the recipe's tolerance.
    """
    from zoo.distribute import check_strategy, get_strategy

    check_strategy(strategy)
    spec = get_spec(name)
    if not spec.recipe:
        raise DataError(f"{name} has no training recipe")
    if strategy == "multiworker" and spec.task not in STEP_KEYED:
        raise UnsupportedError(
            f"{name}: multi-worker training of {spec.task} models is not supported yet: their "
            "batches come from a keras Sequence, which multi-worker training cannot shard "
            f"exactly; use --strategy mirrored or default (multi-worker: {sorted(STEP_KEYED)})")
    # First, before TensorFlow runs an op: multi-worker collectives are set up here.
    distribution, cluster = get_strategy(strategy)
    recipe = dict(spec.recipe)
    if epochs is not None:
        recipe["epochs"] = int(epochs)
    if limit is not None:
        recipe["limit"] = int(limit)
    seed_everything(recipe.get("seed", 0))
    config = spec.config()
    with distribution.scope():
        model = spec.builder(**config)
    train_data = datasets.load(spec.data.dataset, spec.data.train)
    test_data = datasets.load(spec.data.dataset, spec.data.test)
    tag = tag or spec.default_weights or spec.data.dataset
    out_dir = Path(out_dir)
    log_dir = out_dir / "logs" / f"{name}.{tag}"
    if strategy != "default":
        recipe["batches"] = "keyed by step"
    start = time.time()
    with distribution.scope():
        history = FIT[spec.task](model, train_data, recipe, spec, verbose,
                                 callbacks=[keras.callbacks.TensorBoard(str(log_dir))])
    seconds = time.time() - start
    task = get_task(spec.task)
    predictions = task.predict(keras_graphs(spec, model), task.inputs(test_data), spec.meta,
                               batch_size=256)
    metrics = task.score(predictions, test_data, spec.meta)
    shipped = read_metadata(pretrained_path(name, tag)) if tag in spec.weights else {}
    weights_path = out_dir / f"{name}.{tag}{WEIGHTS_SUFFIX}"
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights_atomic(model, weights_path)
    metadata = {
        "model": name,
        "tag": tag,
        "file": weights_path.name,
        "sha256": sha256_of(weights_path),
        "params": count_params(model),
        "config": jsonable_config(config),
        "dataset": spec.data.dataset,
        "split": {"train": spec.data.train, "test": spec.data.test,
                  "train_samples": min(len(_samples(train_data)), recipe.get("limit") or 10**9),
                  "test_samples": len(_samples(test_data))},
        "metrics": {spec.data.test: metrics},
        "license": {"data": spec.data.license, "weights": "Apache-2.0"},
        "recipe": {**recipe, "command": f"lstm-zoo train {name}"},
        "training": {"seconds": round(seconds, 1), "final_loss": history.get("loss"),
                     "machine": f"{platform.machine()}, {platform.python_version()}",
                     "tensorflow": tf.__version__, "tf_keras": keras.__version__,
                     "strategy": strategy, "workers": cluster.size, "worker": cluster.index,
                     "logs": str(log_dir)},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_bytes(weights_path.with_name(f"{name}.{tag}.json"),
                       (json.dumps(metadata, indent=2) + "\n").encode())
    return {**metadata, "reproduction": reproduction(recipe, shipped, spec.data.test, metrics)}


def reproduction(recipe, shipped: dict, split: str, metrics: dict) -> dict[str, dict]:
    """Each metric with a reproduce tolerance: shipped value, new value, and whether the
    new one is within the tolerance the recipe states."""
    if not shipped:
        return {}
    out = {}
    for metric, tol in recipe.get("reproduce_tolerance", {}).items():
        before, now = shipped["metrics"][split][metric], metrics[metric]
        out[metric] = {"shipped": before, "now": now, "tolerance": tol,
                       "within": abs(now - before) <= tol}
    return out


def _samples(data):
    for field in ("paths", "x", "texts", "words", "ids"):
        if hasattr(data, field):
            return getattr(data, field)
    raise TypeError(f"{type(data).__name__} has no samples (x, texts, words or ids)")


# --------------------------------------------------------------------------- classification


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


def plain_batches(x: np.ndarray, y: np.ndarray, batch: int, rng):
    """Endless shuffled batches, as they are (for data that was augmented when drawn)."""
    while True:
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            yield x[idx], y[idx]


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


def adapt_normalization(model, x: np.ndarray, mode: str) -> None:
    """Fits the model's ``normalize`` layer to sequences ``x`` (N, T, C).

    ``"channel"``: a mean and variance per channel. ``"global"``: one mean and variance
    over every value, repeated for each channel, which is what the shipped classifier and
    MNIST-rows recipes used (right for pixels, whose border columns hardly vary). It is
    Keras' own adapt on the (N*T, C) view: the layer, built for (batch, time, C) inputs,
    reduces a 2-D batch over both axes (measured: every channel got the same statistics),
    and calling it so keeps the shipped weights reproducible to the bit.
    """
    layer = model.get_layer("normalize")
    if mode == "channel":
        layer.adapt(np.asarray(x, np.float32))
    elif mode == "global":
        layer.adapt(np.asarray(x, np.float32).reshape(-1, x.shape[-1]))
    else:
        raise ValueError(f"normalize mode {mode!r} is not 'channel' or 'global'")


def _fit_classification(model, data, recipe, spec, verbose, *, adapt=True,
                        callbacks=()) -> dict[str, float]:
    x, y = np.asarray(data.x, np.float32), np.asarray(data.y)
    if recipe.get("limit"):
        x, y = x[: recipe["limit"]], y[: recipe["limit"]]
    if adapt:  # from scratch; fine-tuning keeps the trained normalisation
        adapt_normalization(model, x, recipe.get("normalize", "channel"))
    rng = np.random.default_rng(recipe.get("seed", 0))
    batch = recipe["batch_size"]
    steps = math.ceil(len(x) / batch)
    # recipe["augment"]: {"shift": pixels} for images read row by row; absent: sensor-style
    # crops, gain and jitter. recipe["schedule"] == "cosine": the rate decays to 5 %.
    # "none": the data is augmented already (spoken digits: every window a new draw).
    augment = recipe.get("augment", {})
    shift = augment_shift(augment)
    if recipe.get("batches") == "keyed by step":  # shardable across workers
        batches = batch_dataset(x, y, batch, (recipe.get("seed", 0), 0), 0, steps, augment)
    elif shift:
        batches = shifted_batches(x, y, batch, rng, shift)
    elif augment == "none":
        batches = plain_batches(x, y, batch, rng)
    else:
        batches = augmented_batches(x, y, batch, rng)
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, recipe["epochs"] * steps, alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(rate, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    hist = model.fit(batches, steps_per_epoch=steps, epochs=recipe["epochs"],
                     verbose=2 if verbose else 0, callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- seq2seq


def seq2seq_batches(data, meta, batch_size, rng, limit=None):
    """Teacher-forcing batches grouped by source length (no source padding).

    Yields ((graphemes, phonemes_in), phonemes_out, weights); targets are padded with
    ``pad`` and the padding gets weight 0.
    """
    src_index = {t: i for i, t in enumerate(meta["source_vocab"])}
    tgt_index = {t: i for i, t in enumerate(meta["target_vocab"])}
    words, targets = list(data.words), list(data.targets)
    if limit:
        words, targets = words[:limit], targets[:limit]
    by_len: dict[int, list[int]] = {}
    for i, w in enumerate(words):
        by_len.setdefault(len(w), []).append(i)
    batches = []
    for idx in by_len.values():
        idx = list(rng.permutation(idx))
        batches += [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    for idx in batches:
        src = np.array([[src_index[ch] for ch in words[i]] for i in idx], np.int32)
        tgt = [[tgt_index[p] for p in targets[i]] for i in idx]
        width = max(len(t) for t in tgt) + 1
        t_in = np.full((len(idx), width), meta["pad"], np.int32)
        t_out = np.full((len(idx), width), meta["pad"], np.int32)
        for r, t in enumerate(tgt):
            t_in[r, : len(t) + 1] = [meta["bos"], *t]
            t_out[r, : len(t) + 1] = [*t, meta["eos"]]
        yield (src, t_in), t_out, (t_out != meta["pad"]).astype(np.float32)


class _BatchSequence(keras.utils.Sequence):
    def __init__(self, make: Callable[[int], list]):
        super().__init__()
        self._make = make
        self._epoch = 0
        self._batches = make(0)

    def __len__(self):
        return len(self._batches)

    def __getitem__(self, i):
        return self._batches[i]

    def on_epoch_end(self):
        self._epoch += 1
        self._batches = self._make(self._epoch)


def _fit_seq2seq(model, data, recipe, spec, verbose, *, adapt=True,
                 callbacks=()) -> dict[str, float]:
    seed = recipe.get("seed", 0)

    def make(epoch):
        rng = np.random.default_rng(seed + epoch)
        return list(seq2seq_batches(data, spec.meta, recipe["batch_size"], rng,
                                    recipe.get("limit")))

    train_seq = _BatchSequence(make)
    val = datasets.load(spec.data.dataset, "val")
    val_batches = list(seq2seq_batches(val, spec.meta, 256, np.random.default_rng(0)))
    epochs = recipe["epochs"]
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe["learning_rate"], decay_steps=epochs * len(train_seq), alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    hist = model.fit(train_seq, epochs=epochs, shuffle=False, verbose=2 if verbose else 0,
                     validation_data=_BatchSequence(lambda _: val_batches),
                     callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- text


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


def _fit_text(model, data, recipe, spec, verbose, *, adapt=True, callbacks=()) -> dict:
    task = get_task(spec.task)
    index = task.index(spec.meta)
    texts, y = list(data.texts), np.asarray(data.y)
    if recipe.get("limit"):
        texts, y = texts[: recipe["limit"]], y[: recipe["limit"]]
    ids = [task.encode(t, spec.meta, index) for t in texts]
    seed = recipe.get("seed", 0)
    train_seq = _BatchSequence(
        lambda epoch: text_batches(ids, y, recipe["batch_size"],
                                   np.random.default_rng(seed + epoch)))
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=recipe["epochs"] * len(train_seq), alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(train_seq, epochs=recipe["epochs"], shuffle=False,
                     verbose=2 if verbose else 0, callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- forecast


def _fit_forecast(model, data, recipe, spec, verbose, *, adapt=True, callbacks=()) -> dict:
    """Mean absolute error over the seasonal naive in-sample error (MASE) on raw values."""
    x, y = np.asarray(data.x, np.float32), np.asarray(data.y, np.float32)
    if recipe.get("limit"):
        x, y = x[: recipe["limit"]], y[: recipe["limit"]]
    scale = float(data.scale)
    batch = recipe["batch_size"]
    steps = math.ceil(len(x) / batch)
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, recipe["epochs"] * steps, alpha=0.05)

    def mase(target, forecast):
        return tf.reduce_mean(tf.abs(target - forecast), axis=-1) / scale

    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0), loss=mase)
    hist = model.fit(plain_batches(x, y, batch, np.random.default_rng(recipe.get("seed", 0))),
                     steps_per_epoch=steps, epochs=recipe["epochs"],
                     verbose=2 if verbose else 0, callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- anomaly


def _fit_anomaly(model, data, recipe, spec, verbose, *, adapt=True, callbacks=()) -> dict:
    """Minimises the graph's own ``score`` (mean squared standardized reconstruction
    error) on normal windows; from scratch, the ``normalize`` and ``denormalize`` layers
    are first fitted to every training value."""
    x = np.asarray(data.x, np.float32)
    if recipe.get("limit"):
        x = x[: recipe["limit"]]
    if adapt:
        values = np.asarray(x, np.float32).reshape(-1, 1)
        for layer in ("normalize", "denormalize"):
            model.get_layer(layer).adapt(values)
    batch = recipe["batch_size"]
    steps = math.ceil(len(x) / batch)
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, recipe["epochs"] * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0),
                  loss={"score": lambda _, score: score})
    zeros = np.zeros(len(x), np.float32)  # the loss is the score itself
    batches = ((xb, {"score": yb}) for xb, yb in plain_batches(
        x, zeros, batch, np.random.default_rng(recipe.get("seed", 0))))
    hist = model.fit(batches,
                     steps_per_epoch=steps, epochs=recipe["epochs"],
                     verbose=2 if verbose else 0, callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- next frame


def clip_batches(clips, batch: int, rng):
    """Endless shuffled epochs of ``(observed frames, future frames)`` batches, drawn from
    the clips' trajectories as they are needed."""
    while True:
        order = rng.permutation(len(clips))
        for i in range(0, len(order) - batch + 1, batch):
            frames = clips.frames(np.sort(order[i : i + batch]))
            yield frames[:, : clips.observed], frames[:, clips.observed :]


def _fit_nextframe(model, data, recipe, spec, verbose, *, adapt=True, callbacks=()) -> dict:
    """Per-pixel binary cross-entropy of the future frames (Shi et al. 2015), through the
    export graph when it shares the model's variables (the unrolled ConvLSTM trains 1.6x
    faster on CPU than Keras' loop; a model wrapped for pruning trains as it is)."""
    if any(isinstance(layer, keras.layers.ConvLSTM2D) for layer in model.layers):
        model = graph_models(spec, model)[spec.graphs[0].name]
    clips = data.head(recipe["limit"]) if recipe.get("limit") else data
    batch = recipe["batch_size"]
    steps = len(clips) // batch
    if steps < 1:
        raise DataError(f"{len(clips)} training clips; a batch takes {batch}")
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, recipe["epochs"] * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0),
                  loss="binary_crossentropy", metrics=["mse"])
    hist = model.fit(clip_batches(clips, batch, np.random.default_rng(recipe.get("seed", 0))),
                     steps_per_epoch=steps, epochs=recipe["epochs"],
                     verbose=2 if verbose else 0, callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- language model


def lm_batches(ids: np.ndarray, batch: int, length: int, rng):
    """Endless batches of ``batch`` windows of ``length + 1`` characters at random places
    of the corpus: ``(x (B, length), y (B, length))``, ``y`` the next characters."""
    while True:
        starts = rng.integers(0, len(ids) - length - 1, batch)
        window = np.stack([ids[s : s + length + 1] for s in starts])
        yield window[:, :-1], window[:, 1:]


def _fit_lm(model, data, recipe, spec, verbose, *, adapt=True, callbacks=()) -> dict:
    """Cross-entropy of the next character; an epoch is ``recipe["steps"]`` batches."""
    ids = np.asarray(data.ids, np.int32)
    if recipe.get("limit"):
        ids = ids[: recipe["limit"]]
    if len(ids) < recipe["length"] + 2:
        raise DataError(f"{len(ids)} training characters; a training window takes "
                        f"{recipe['length'] + 1}, so give at least {recipe['length'] + 2}")
    steps = recipe["steps"]
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, recipe["epochs"] * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy")
    batches = lm_batches(ids, recipe["batch_size"], recipe["length"],
                         np.random.default_rng(recipe.get("seed", 0)))
    hist = model.fit(batches, steps_per_epoch=steps, epochs=recipe["epochs"],
                     verbose=2 if verbose else 0, callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# --------------------------------------------------------------------------- CTC


def ctc_batches(data, meta, batch_size: int, stride: int, rng, limit=None) -> list:
    """One epoch of CTC training batches: trajectories of similar length together (each
    chunk of 20 batches is sorted by length), zero rows padded at the end to a multiple of
    ``stride``, batch order shuffled. A batch is
    ``(x (B, T, C), (labels (B, L) padded with 0, label_length (B,), frames (B,)))`` where
    ``frames`` is each trajectory's own number of output frames, so the loss never reads
    the padding's frames."""
    from zoo.tasks import CTCRecognition

    x, texts = list(data.x), list(data.texts)
    if limit:
        x, texts = x[:limit], texts[:limit]
    order = rng.permutation(len(x))
    chunk = 20 * batch_size
    groups = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(x[i]))
        groups += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(groups)
    batches = []
    for idx in groups:
        lengths = np.array([len(x[i]) for i in idx], np.int32)
        width = int(math.ceil(lengths.max() / stride) * stride)
        xb = np.zeros((len(idx), width, x[idx[0]].shape[1]), np.float32)
        for r, i in enumerate(idx):
            xb[r, : len(x[i])] = x[i]
        labels = [CTCRecognition.labels(texts[i], meta) for i in idx]
        lb = np.zeros((len(idx), max(map(len, labels))), np.int32)
        for r, lab in enumerate(labels):
            lb[r, : len(lab)] = lab
        frames = -(-lengths // stride)
        batches.append((xb, (lb, np.array([len(la) for la in labels], np.int32), frames)))
    return batches


class CTCTrainer(keras.Model):
    """Trains a recogniser whose last layer is the softmax over its logits: CTC loss
    (blank 0) on the logits, each sample over its own number of frames."""

    def __init__(self, model):
        super().__init__(name="ctc_trainer")
        self.net = model
        # the input of the final softmax in *this* model's graph (a cloned model, e.g.
        # tfmot's pruning wrapper, shares the unwrapped softmax layer with the original)
        layer, node_index, _ = model.outputs[0]._keras_history
        self.logits = keras.Model(model.inputs,
                                  layer._inbound_nodes[node_index].input_tensors)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, x, training=False):
        return self.logits(x, training=training)

    def _loss(self, data, training):
        x, (labels, label_length, frames) = data
        logits = self.logits(x, training=training)
        return tf.reduce_mean(tf.nn.ctc_loss(labels, logits, label_length, frames,
                                             logits_time_major=False, blank_index=0))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data, True)
        variables = self.logits.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables,
                                           strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        self.loss_tracker.update_state(self._loss(data, False))
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]


def frame_stride(model) -> int:
    """Input steps per output frame of a recogniser: the strides of its Conv1D layers (also
    inside tfmot's pruning or clustering wrappers)."""
    stride = 1
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner) is keras.layers.Conv1D:
            stride *= int(inner.strides[0])
    return stride


def _fit_ctc(model, data, recipe, spec, verbose, *, adapt=True, callbacks=()) -> dict:
    config_stride = frame_stride(model)
    if adapt:  # from scratch: per-channel statistics over every training point
        points = np.concatenate([np.asarray(x, np.float32) for x in data.x])[None]
        adapt_normalization(model, points, recipe.get("normalize", "channel"))
    seed = recipe.get("seed", 0)

    def make(epoch):
        # recipe["fresh_draws"]: the training split is synthetic and each epoch draws new
        # writers and words from it ("train:K", see zoo.datasets.hershey_strokes)
        drawn = data
        if recipe.get("fresh_draws") and epoch:
            drawn = datasets.load(spec.data.dataset, f"{spec.data.train}:{epoch}")
        return ctc_batches(drawn, spec.meta, recipe["batch_size"], config_stride,
                           np.random.default_rng([seed, epoch]), recipe.get("limit"))

    train_seq = _BatchSequence(make)
    val = datasets.load(spec.data.dataset, spec.data.calibration)
    val_batches = ctc_batches(val, spec.meta, 64, config_stride, np.random.default_rng(0))
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=recipe["epochs"] * len(train_seq), alpha=0.05)
    trainer = CTCTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0))
    hist = trainer.fit(train_seq, epochs=recipe["epochs"], shuffle=False,
                       verbose=2 if verbose else 0,
                       validation_data=_BatchSequence(lambda _: val_batches),
                       callbacks=list(callbacks))
    return {"loss": float(hist.history["loss"][-1])}


# task -> fit(model, train data, recipe, spec, verbose, *, adapt, callbacks); ``adapt``
# (classification) fits the normalisation layer to the data first, for training from
# scratch.
FIT = {"classification": _fit_classification, "kws": _fit_classification, "seq2seq": _fit_seq2seq,
       "ctc": _fit_ctc, "text": _fit_text,
       "forecast": _fit_forecast, "anomaly": _fit_anomaly, "lm": _fit_lm,
       "nextframe": _fit_nextframe}
# Tasks whose training batches can be keyed by step, so multi-worker training shards them.
STEP_KEYED = ("classification", "kws")
