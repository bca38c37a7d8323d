"""Video prediction (``nextframe``): the frames that follow a clip."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import DataError, ShapeError
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import once_per_data, parity_pool
from zoo.tasks.fitting import adam, run_fit
from zoo.tasks.metrics import ssim


@register_task
@dataclass(frozen=True)
class NextFrame(Task):
    """Video prediction: the graph ``nextframe`` maps ``frames (B, observed, S, S, 1)`` to
    ``future (B, horizon, S, S, 1)``, pixel intensities in [0, 1]. Metrics over every
    predicted frame of the test clips: ``mse`` per pixel (the primary), ``mse_frame`` (its
    sum over a frame's pixels, as the Moving-MNIST literature reports it), ``ssim``;
    ``mse_first`` / ``mse_last`` for the first and last predicted frame; each ``naive_*``
    for copying the last observed frame; ``blank_mse`` for predicting empty frames."""

    name: str = "nextframe"
    metric: str = "mse"
    higher_is_better: bool = False
    baseline: str = "copying the last observed frame"

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["nextframe"]
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], np.float32)
            out.append(np.asarray(graph({"frames": batch})["future"], np.float32))
            if progress:
                progress(len(batch))
        size = int(meta["size"])
        return (np.concatenate(out) if out else
                np.zeros((0, int(meta["horizon"]), size, size, 1), np.float32))

    @staticmethod
    def errors(predicted, actual) -> dict[str, float]:
        # float32 pixels (what every backend returns), sums in float64: float64 copies of
        # a test split's 10.5 M predicted pixels took longer than the arithmetic
        predicted, actual = np.asarray(predicted, np.float32), np.asarray(actual, np.float32)
        if predicted.shape != actual.shape or predicted.ndim != 5:
            raise ShapeError(f"predicted frames {predicted.shape} and actual {actual.shape}: "
                             "expected two arrays of one shape (clips, frames, S, S, 1)")
        per_frame = np.square(predicted - actual).sum(axis=(2, 3, 4), dtype=np.float64)
        pixels = int(np.prod(predicted.shape[2:]))
        return {"mse": float(per_frame.mean() / pixels),
                "mse_frame": float(per_frame.mean()),
                "ssim": float(ssim(predicted[..., 0], actual[..., 0]).mean()),
                "mse_first": float(per_frame[:, 0].mean() / pixels),
                "mse_last": float(per_frame[:, -1].mean() / pixels)}

    def score(self, predictions, data, meta) -> dict[str, float]:
        actual = np.asarray(data.y, np.float32)
        model = self.errors(predictions, actual)
        # the baseline's SSIM over the test clips takes ~1 s, and an export scores 5 times
        naive = once_per_data(data, "nextframe naive", lambda: self.errors(data.naive, actual))
        return {**model, **{f"naive_{k}": v for k, v in naive.items()},
                "blank_mse": float(np.mean(np.square(actual, dtype=np.float64)))}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test clips, then calibration clips, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    @staticmethod
    def feed_lengths(meta) -> list[int]:
        """The observed frames, which the graph's input fixes, for random parity feeds."""
        return [int(meta["observed"])]

    def compare(self, a, b) -> dict[str, Any]:
        """Clips with a predicted pixel more than 1e-5 apart (fp32's tensor bound)."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        far = np.abs(a - b) > 1e-5
        return {"disagreements": int(np.sum(far.reshape(len(a), -1).any(axis=1)))}

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """Frames ``(T, S, S)`` or ``(T, S, S, 1)``, ``T >= observed`` (the last
        ``observed`` are used), uint8 0-255 or floats in [0, 1], as ``(observed, S, S,
        1)`` float32; anything else is a :class:`ShapeError` saying what it received."""
        observed, size = int(meta["observed"]), int(meta["size"])
        x = np.asarray(x)
        want = (f"expected frames shaped (T, {size}, {size}) or (T, {size}, {size}, 1) with T "
                f">= {observed} (the last {observed} are used)")
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[1:] != (size, size):
            raise ShapeError(f"{where}: got an array of shape {x.shape}; {want}")
        if len(x) < observed:
            raise ShapeError(f"{where}: {len(x)} frames; {want}")
        x = x[-observed:]
        if x.dtype == np.uint8:
            return (x / np.float32(255.0)).astype(np.float32)[..., None]
        if not np.issubdtype(x.dtype, np.floating):
            raise ShapeError(f"{where}: got dtype {x.dtype}; expected uint8 (0-255) or "
                             "floats in [0, 1]")
        if not np.all(np.isfinite(x)):
            raise ShapeError(f"{where}: {int(np.sum(~np.isfinite(x)))} pixels are NaN or "
                             "infinite")
        if x.min() < 0 or x.max() > 1:
            raise ShapeError(f"{where}: float pixels range over [{x.min():.3g}, "
                             f"{x.max():.3g}]; expected [0, 1] (or uint8 0-255)")
        return x.astype(np.float32)[..., None]

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Frames from a ``.npy`` file (see :meth:`check_input`)."""
        path = Path(source)
        if path.suffix.lower() != ".npy" or not path.is_file():
            raise ShapeError(f"{source}: expected an existing .npy file of frames "
                             f"(T, {meta['size']}, {meta['size']})")
        try:
            x = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises several types for malformed files
            raise ShapeError(f"{source}: cannot read frames from it ({e})") from None
        return self.check_input(x, meta, source)[None]

    def format(self, prediction, meta) -> str:
        """Each predicted frame as a line of its mean intensity, then the last one drawn
        in characters (one per 2x2 pixels)."""
        frames = np.asarray(prediction)[..., 0]
        lines = [f"{len(frames)} predicted frames of {frames.shape[1]}x{frames.shape[2]} "
                 "pixels (mean intensity, pixels over 0.5):"]
        lines += [f"  t+{t + 1:<3} {f.mean():.4f} {int(np.sum(f > 0.5)):>5}"
                  for t, f in enumerate(frames)]
        lines.append(f"t+{len(frames)}:")
        shades = " .:-=+*#%@"
        small = frames[-1][: frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
        small = small.reshape(small.shape[0] // 2, 2, small.shape[1] // 2, 2).mean(axis=(1, 3))
        lines += ["".join(shades[min(int(v * len(shades)), len(shades) - 1)] for v in row)
                  for row in small]
        return "\n".join(lines)

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Per-pixel binary cross-entropy of the future frames (Shi et al. 2015), through
        the export graph when it shares the model's variables (the unrolled ConvLSTM trains
        1.6x faster on CPU than Keras' loop; a model wrapped for pruning trains as it is)."""
        from zoo._keras import keras
        from zoo.graphs import graph_models

        if any(isinstance(layer, keras.layers.ConvLSTM2D) for layer in model.layers):
            model = graph_models(spec, model)[spec.graphs[0].name]
        clips = data.head(recipe["limit"]) if recipe.get("limit") else data
        batch = recipe["batch_size"]
        steps = len(clips) // batch
        if steps < 1:
            raise DataError(f"{len(clips)} training clips; a batch takes {batch}")
        model.compile(optimizer=adam(recipe, steps), loss="binary_crossentropy",
                      metrics=["mse"])
        batches = clip_batches(clips, batch, np.random.default_rng(recipe.get("seed", 0)))
        return run_fit(model, batches, recipe, verbose, callbacks, steps=steps)

    def split_size(self, data) -> int:
        return len(data)


def clip_batches(clips, batch: int, rng):
    """Endless shuffled epochs of ``(observed frames, future frames)`` batches, drawn from
    the clips' trajectories as they are needed."""
    while True:
        order = rng.permutation(len(clips))
        for i in range(0, len(order) - batch + 1, batch):
            frames = clips.frames(np.sort(order[i : i + batch]))
            yield frames[:, : clips.observed], frames[:, clips.observed :]
