"""Training batches keyed by ``(seed, phase, epoch, step)`` and the augmentations they
share with the tasks' random-stream batches (:meth:`zoo.tasks.base.Task.fit`).

Below both the tasks and :mod:`zoo.resumable`, which use these. A batch is a function of
its key, not of a random stream, so a resumed phase sees exactly the batches an
uninterrupted run would have.
"""

from __future__ import annotations

import numpy as np

from zoo._keras import keras, tf


def sensor_augment(x: np.ndarray, idx: np.ndarray, rng, scale: np.ndarray) -> np.ndarray:
    """Series ``idx`` of ``x`` (N, T, C): one random crop of 70-100 % of the length for the
    batch, per-series per-channel gain (sd 0.1) and additive jitter (sd 0.05 of ``scale``,
    the per-channel standard deviation of the data)."""
    length = int(rng.integers(int(0.7 * x.shape[1]), x.shape[1] + 1))
    offset = int(rng.integers(0, x.shape[1] - length + 1))
    xb = x[idx, offset : offset + length]
    xb = xb * rng.normal(1.0, 0.1, (len(idx), 1, x.shape[-1]))
    xb = xb + rng.normal(0.0, 0.05, xb.shape) * scale
    return xb.astype(np.float32)


def augment_shift(augment) -> int | None:
    """The pixel shift of a recipe's ``augment`` entry (``{"shift": n}``), else None
    (``"none"``, or absent: sensor-style augmentation)."""
    return augment.get("shift") if isinstance(augment, dict) else None


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray, shift: int) -> np.ndarray:
    """Each image (rows, cols) moved by ``dy - shift`` rows and ``dx - shift`` columns
    (offsets in ``0..2*shift``), zero-filled."""
    rows, cols = images.shape[1:]
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    return np.stack([p[a : a + rows, b : b + cols]
                     for p, a, b in zip(padded, dy, dx, strict=True)]).astype(np.float32)


def augmented_batch(x: np.ndarray, y: np.ndarray, batch: int, key: tuple[int, ...], step: int,
                    steps: int, scale: np.ndarray, augment=None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Training batch number ``step`` (counted from the start of the phase): a seeded
    permutation per epoch, always ``batch`` series (wrapping around), augmented as the
    training recipe's ``augment`` says (:func:`zoo.augment.sensor_augment` by default;
    ``{"shift": n}``: images moved by up to n pixels; ``"none"``: as they are), from a
    generator seeded by (key, epoch, step)."""
    epoch, i = divmod(step, steps)
    order = np.random.default_rng([*key, epoch]).permutation(len(x))
    idx = order[np.arange(i * batch, (i + 1) * batch) % len(x)]
    rng = np.random.default_rng([*key, epoch, i, 1])
    if augment == "none":
        return x[idx].astype(np.float32), y[idx]
    shift = augment_shift(augment)
    if shift:
        dy, dx = rng.integers(0, 2 * shift + 1, (2, len(idx)))
        return shift_images(x[idx], dy, dx, shift), y[idx]
    return sensor_augment(x, idx, rng, scale), y[idx]


def batch_dataset(x, y, batch: int, key: tuple[int, ...], first_step: int, steps: int,
                  augment=None):
    """A ``DatasetCreator`` of :func:`augmented_batch` from ``first_step`` on; worker ``w``
    of ``n`` input pipelines takes rows ``w::n`` of every global batch."""
    scale = x.std(axis=(0, 1))
    spec = (tf.TensorSpec((None, None, x.shape[-1]), tf.float32),
            tf.TensorSpec((None,), tf.int64))

    def dataset_fn(context):
        w, n = context.input_pipeline_id, context.num_input_pipelines

        def batches():
            step = first_step
            while True:
                xb, yb = augmented_batch(x, y, batch, key, step, steps, scale, augment)
                yield xb[w::n], yb[w::n]
                step += 1

        return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)

    return keras.utils.experimental.DatasetCreator(dataset_fn)


def epoch_keyed_dataset(make_epoch, signature, key: tuple[int, ...], first_step: int,
                        steps: int):
    """A ``DatasetCreator`` of the batches ``make_epoch(rng)`` lists for an epoch, keyed
    like :func:`augmented_batch`: epoch ``e``'s batches come from a generator
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
