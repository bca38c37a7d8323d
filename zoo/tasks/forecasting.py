"""Multi-step forecasting of a series (``forecast``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo._keras import tf
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import check_series, parity_pool, read_series
from zoo.tasks.fitting import adam, head, plain_batches, run_fit


@register_task
@dataclass(frozen=True)
class Forecasting(Task):
    """Multi-step forecasting: the graph ``forecaster`` maps ``history (B, window, 1)`` to
    ``forecast (B, horizon)``, both in the series' own units. Metrics: MASE (the primary:
    mean absolute error over the seasonal naive method's in-sample error) and sMAPE (%),
    each also for the seasonal naive forecast of the same windows (``naive_*``)."""

    name: str = "forecast"
    metric: str = "mase"
    higher_is_better: bool = False
    baseline: str = "the seasonal naive forecast"

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["forecaster"]
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], np.float32)
            out.append(graph({"history": batch})["forecast"])
            if progress:
                progress(len(batch))
        return np.concatenate(out) if out else np.zeros((0, meta["horizon"]), np.float32)

    @staticmethod
    def errors(forecast, actual, scale) -> dict[str, float]:
        forecast, actual = np.asarray(forecast, np.float64), np.asarray(actual, np.float64)
        absolute = np.abs(forecast - actual)
        denominator = np.abs(actual) + np.abs(forecast)
        smape = 200.0 * np.mean(np.where(denominator > 0, absolute / np.where(
            denominator > 0, denominator, 1.0), 0.0))
        return {"mase": float(absolute.mean() / scale), "smape": float(smape)}

    def score(self, predictions, data, meta) -> dict[str, float]:
        model = self.errors(predictions, data.y, data.scale)
        naive = self.errors(data.naive, data.y, data.scale)
        return {**model, "naive_mase": naive["mase"], "naive_smape": naive["smape"]}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test windows, then calibration windows, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    @staticmethod
    def feed_lengths(meta) -> list[int]:
        """The window length, which the graph's input fixes, for random parity feeds."""
        return [int(meta["window"])]

    def compare(self, a, b) -> dict[str, Any]:
        """Windows whose forecasts differ by more than 1e-5 of the value (+1e-5)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        far = np.abs(a - b) > 1e-5 * (np.abs(a) + 1.0)
        return {"disagreements": int(np.sum(far.any(axis=-1)))}

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """The last ``meta["window"]`` values of a 1-D series as (window, 1), or a
        :class:`ShapeError` (too short, not numbers, gaps)."""
        window = int(meta["window"])
        x = check_series(x, window, where, f"the model forecasts from the last {window} "
                                           f"({meta['step']}s)", tail=True)
        return x.astype(np.float32)[:, None]

    def parse_input(self, source: str, meta) -> np.ndarray:
        """A series from ``.npy`` or ``.csv`` (see :func:`read_series`)."""
        return self.check_input(read_series(source, f"at least {meta['window']} values"),
                                meta, source)[None]

    def format(self, prediction, meta) -> str:
        return " ".join(f"{v:.6g}" for v in np.asarray(prediction).ravel())

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Mean absolute error over the seasonal naive in-sample error (MASE), on raw
        values."""
        x, y = head(recipe, np.asarray(data.x, np.float32), np.asarray(data.y, np.float32))
        scale = float(data.scale)
        batch = recipe["batch_size"]
        steps = math.ceil(len(x) / batch)

        def mase(target, forecast):
            return tf.reduce_mean(tf.abs(target - forecast), axis=-1) / scale

        model.compile(optimizer=adam(recipe, steps), loss=mase)
        batches = plain_batches(x, y, batch, np.random.default_rng(recipe.get("seed", 0)))
        return run_fit(model, batches, recipe, verbose, callbacks, steps=steps)
