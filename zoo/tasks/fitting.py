"""What every task's :meth:`~zoo.tasks.base.Task.fit` shares: the learning-rate schedule,
the compile-and-fit call, shuffled batches and a keras Sequence that redraws its batches
each epoch.

A task's ``fit(model, data, recipe, spec, verbose, *, adapt, callbacks)`` trains ``model``
on a loaded training split with a recipe (``epochs``, ``batch_size``, ``learning_rate``,
``seed``, optional ``limit`` and ``schedule``); training from scratch (``adapt``) first fits
the model's normalisation layers to the data, fine-tuning keeps them. Training
(:mod:`zoo.train`), fine-tuning and the compression stages all call it the same way.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable

import numpy as np

from zoo._keras import keras


def learning_rate(recipe, steps: int):
    """The recipe's rate: a number, or with ``schedule: "cosine"`` a cosine decay to 5 %
    over ``epochs * steps`` steps."""
    rate = recipe["learning_rate"]
    if recipe.get("schedule") == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, recipe["epochs"] * steps,
                                                      alpha=0.05)
    return rate


def adam(recipe, steps: int):
    """Adam at the recipe's rate (:func:`learning_rate`), gradients clipped to norm 1."""
    return keras.optimizers.Adam(learning_rate(recipe, steps), clipnorm=1.0)


def run_fit(model, batches, recipe, verbose, callbacks: Iterable = (), *,
            steps: int | None = None, **fit_args) -> dict[str, float]:
    """``model.fit`` for the recipe's epochs (``steps`` per epoch for an endless generator,
    none for a Sequence); returns ``{"loss": last epoch's loss}``."""
    hist = model.fit(batches, steps_per_epoch=steps, epochs=recipe["epochs"],
                     verbose=2 if verbose else 0, callbacks=list(callbacks), **fit_args)
    return {"loss": float(hist.history["loss"][-1])}


def head(recipe, *arrays):
    """The first ``recipe["limit"]`` items of each array (all of them without a limit)."""
    limit = recipe.get("limit")
    return tuple(a[:limit] if limit else a for a in arrays)


def plain_batches(x: np.ndarray, y: np.ndarray, batch: int, rng):
    """Endless shuffled batches, as they are (for data that was augmented when drawn)."""
    while True:
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            yield x[idx], y[idx]


def BatchSequence(make: Callable[[int], list], *, epochs: int | None = None):  # noqa: N802
    """A keras Sequence of the batches ``make(epoch)`` returns, drawn anew at the end of
    every epoch. (A function returning a class instance: the class is made on first use,
    so importing the tasks imports no TensorFlow.)

    ``epochs`` (the fit's epoch count) turns on drawing ahead: epoch ``e + 1``'s batches
    are made in a background thread while epoch ``e`` trains, and none are made after the
    last epoch. ``make`` must then depend on nothing but its argument (its own seeded
    generators), so the batches are the same either way; a failure in ``make`` is raised
    at the end of the epoch that waited for it. Meant for draws that cost as much as
    training: drawn in place, the handwriting recogniser's fresh writers added 157 s to
    each epoch's 200 s of training (2 cores, the 20-epoch run of 2026-12-07).
    """
    return _batch_sequence()(make, epochs)


@functools.cache
def _batch_sequence():
    class _BatchSequence(keras.utils.Sequence):
        def __init__(self, make, epochs):
            super().__init__()
            self._make = make
            self._epochs = epochs
            self._epoch = 0
            self._batches = make(0)
            self._ahead = None
            if epochs is not None:
                self._draw_ahead()

        def _draw_ahead(self):
            following = self._epoch + 1
            self._ahead = _Ahead(self._make, following) if following < self._epochs else None

        def __len__(self):
            return len(self._batches)

        def __getitem__(self, i):
            return self._batches[i]

        def on_epoch_end(self):
            self._epoch += 1
            if self._epochs is None:
                self._batches = self._make(self._epoch)
            elif self._ahead is not None:
                self._batches = self._ahead.result()
                self._draw_ahead()

    return _BatchSequence


class _Ahead:
    """``make(epoch)`` running in a daemon thread (an interrupted fit does not wait for
    it to finish before the process can exit)."""

    def __init__(self, make, epoch: int):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(make, epoch), daemon=True,
                                        name=f"batches-epoch-{epoch}")
        self._thread.start()

    def _run(self, make, epoch):
        try:
            self._value = make(epoch)
        except BaseException as e:  # handed to the training thread by result()
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


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
