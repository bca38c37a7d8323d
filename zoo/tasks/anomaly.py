"""Anomaly detection by reconstruction (``anomaly``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.tasks.base import Task, register_task
from zoo.tasks.common import check_series, parity_pool, read_series
from zoo.tasks.fitting import adam, head, plain_batches, run_fit
from zoo.tasks.metrics import detection_scores


@register_task
@dataclass(frozen=True)
class AnomalyDetection(Task):
    """Anomaly detection by reconstruction: the graph ``autoencoder`` maps ``window (B, W,
    1)`` to ``reconstruction`` and ``score (B,)``. An input is one window (W, 1), or a
    whole 1-D series, which is cut into windows every ``meta["stride"]`` values (the last
    one ends at the series' end) and gives ``{"starts", "scores"}``.

    Scoring (:func:`detection_scores`): each backend sets its threshold on its own scores
    of the normal calibration windows that lead the test split, as a device calibrating
    itself would; the metric is the F1 of the flagged test windows. ``naive_*``: the
    dataset's baseline scores, thresholded the same way. The exported bundle records the
    Keras reference's threshold in its meta (``threshold``) for ``predict``."""

    name: str = "anomaly"
    metric: str = "f1"
    higher_is_better: bool = True
    baseline: str = "reconstructing the training mean"
    calibrated_meta: tuple[str, ...] = ("threshold",)

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, np.float32)

    @staticmethod
    def series_starts(length: int, window: int, stride: int) -> np.ndarray:
        starts = list(range(0, length - window + 1, stride))
        if starts[-1] != length - window:
            starts.append(length - window)
        return np.asarray(starts, np.int64)

    def _scores(self, graph, windows, batch_size, progress=None) -> np.ndarray:
        out = []
        for i in range(0, len(windows), batch_size):
            batch = np.asarray(windows[i : i + batch_size], np.float32)
            out.append(np.asarray(graph({"window": batch})["score"]).reshape(-1))
            if progress:
                progress(len(batch))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        graph = graphs["autoencoder"]
        if all(np.ndim(x) == 2 for x in inputs):
            return self._scores(graph, inputs, batch_size, progress)
        out = []
        for x in inputs:
            x = np.asarray(x, np.float32)
            if x.ndim == 2:
                out.append(self._scores(graph, [x], 1)[0])
                continue
            starts = self.series_starts(len(x), int(meta["window"]), int(meta["stride"]))
            windows = np.stack([x[s : s + int(meta["window"])] for s in starts])[..., None]
            out.append({"starts": starts, "scores": self._scores(graph, windows, batch_size)})
            if progress:
                progress(1)
        return out

    def score(self, predictions, data, meta) -> dict[str, float]:
        model = detection_scores(predictions, data.labels, data.n_calibration)
        naive = detection_scores(data.naive, data.labels, data.n_calibration)
        return {**model, **{f"naive_{k}": naive[k] for k in ("f1", "auc", "top_hit")}}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test split's windows (calibration ones first), then calibration windows."""
        return parity_pool(self, test, extra, minimum)

    @staticmethod
    def feed_lengths(meta) -> list[int]:
        """The window length, which the graph's input fixes, for random parity feeds."""
        return [int(meta["window"])]

    def compare(self, a, b) -> dict[str, Any]:
        """Windows whose scores differ by more than 1e-5 of the score (+1e-6)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return {"disagreements": int(np.sum(np.abs(a - b) > 1e-5 * np.abs(a) + 1e-6))}

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """A 1-D series of at least one window, finite, as float32, or a
        :class:`ShapeError`."""
        window = int(meta["window"])
        seconds = f" ({window / meta['rate']:.2g} s)" if meta.get("rate") else ""
        return check_series(x, window, where, f"the model scores windows of {window} values"
                                              f"{seconds}").astype(np.float32)

    def parse_input(self, source: str, meta) -> np.ndarray:
        """A series from ``.npy`` or ``.csv`` (see :func:`read_series`), in ``meta["unit"]``
        sampled at ``meta["rate"]`` Hz."""
        return self.check_input(read_series(source, f"at least {meta['window']} values"),
                                meta, source)[None]

    def format(self, prediction, meta) -> str:
        if not isinstance(prediction, dict):
            return f"score {float(prediction):.6g}"
        window, rate = int(meta["window"]), meta.get("rate")  # rate None: not known
        threshold = meta.get("threshold")
        starts, scores = prediction["starts"], np.asarray(prediction["scores"])
        lines = [f"{len(starts)} windows of {window} values"
                 + (f" ({window / rate:.3g} s)" if rate else "") + f" every {meta['stride']}; "
                 "threshold " + (f"{threshold:.6g} (the largest score on held-out normal data)"
                                 if threshold is not None else "unknown (not calibrated)")]
        for start, value in zip(starts, scores, strict=True):
            flag = " ANOMALY" if threshold is not None and value > threshold else ""
            when = f" {start / rate:9.3f} s" if rate else ""
            lines.append(f"{start:>8}{when}  score {value:.6g}{flag}")
        if threshold is not None:
            lines.append(f"{int(np.sum(scores > threshold))} of {len(scores)} windows over the "
                         "threshold")
        return "\n".join(lines)

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Minimises the graph's own ``score`` (mean squared standardized reconstruction
        error) on normal windows; from scratch, the ``normalize`` and ``denormalize``
        layers are first fitted to every training value."""
        (x,) = head(recipe, np.asarray(data.x, np.float32))
        if adapt:
            values = np.asarray(x, np.float32).reshape(-1, 1)
            for layer in ("normalize", "denormalize"):
                model.get_layer(layer).adapt(values)
        batch = recipe["batch_size"]
        steps = math.ceil(len(x) / batch)
        model.compile(optimizer=adam(recipe, steps), loss={"score": lambda _, score: score})
        zeros = np.zeros(len(x), np.float32)  # the loss is the score itself
        batches = ((xb, {"score": yb}) for xb, yb in plain_batches(
            x, zeros, batch, np.random.default_rng(recipe.get("seed", 0))))
        return run_fit(model, batches, recipe, verbose, callbacks, steps=steps)
