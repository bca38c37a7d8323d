"""Keyword spotting (``kws``): log-mel frames, classified whole and streamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.tasks.base import register_task
from zoo.tasks.classification import Classification
from zoo.tasks.common import _state_widths, is_wav


@register_task
@dataclass(frozen=True)
class KeywordSpotting(Classification):
    """Keyword spotting over log-mel frames, whole-window and streamed; metric: accuracy.

    Each prediction is a (2, classes) array: row 0 from the ``classifier`` graph over the
    whole window, row 1 from the ``step`` graph fed the same frames one at a time from zero
    state (the path a device runs). Accuracy is scored on the streamed row; the metrics
    also report ``stream_max_diff``, the largest difference between the two rows, which
    must stay at float32 rounding on every backend.
    """

    name: str = "kws"

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        full = Classification.predict(self, graphs, inputs, meta, None, batch_size)
        step = graphs["step"]
        widths = _state_widths(step)
        streamed = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], dtype=np.float32)
            feed = {n: np.zeros((len(batch), w), np.float32) for n, w in widths.items()}
            for t in range(batch.shape[1]):
                out = step({"frame": batch[:, t], **feed})
                feed = {n: out[f"{n}_next"] for n in widths}
            streamed.append(out["probs"])
            if progress:
                progress(len(batch))
        return np.stack([full, np.concatenate(streamed)], axis=1)

    def score(self, predictions, data, meta) -> dict[str, float]:
        predictions = np.asarray(predictions)
        labels = np.argmax(predictions[:, 1], axis=-1)
        truth = np.asarray(data.y)
        scores = {"accuracy": float(np.mean(labels == truth))}
        # Keywords are the classes that are not "_unknown_" / "_silence_" (the pretrained
        # spotter's digits; a fine-tuned spotter's own words).
        keyword = np.array([not c.startswith("_") for c in meta["classes"]])
        keywords, others = keyword[truth], ~keyword[truth]
        if keywords.any() and others.any():
            scores["digit_accuracy" if "zero" in meta["classes"] else "keyword_accuracy"] = \
                float(np.mean(labels[keywords] == truth[keywords]))
            # a window of another word or of silence taken for a keyword
            scores["false_accepts"] = float(np.mean(keyword[labels[others]]))
        scores["stream_max_diff"] = float(np.abs(predictions[:, 0] - predictions[:, 1]).max())
        return scores

    def compare(self, a, b) -> dict[str, Any]:
        la, lb = np.argmax(np.asarray(a)[:, 1], -1), np.argmax(np.asarray(b)[:, 1], -1)
        return {"disagreements": int(np.sum(la != lb))}

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Reads a ``.wav`` file (mono PCM; another sample rate is resampled; at most
        ``meta["max_seconds"]``), trims its silence and centres it in the model's window as
        the test recordings were (:func:`zoo.audio.fit_window`), and computes its log-mel
        frames; or reads frames from ``.npy`` / ``.csv``."""
        if not is_wav(source, meta):
            return super().parse_input(source, meta)
        from zoo.audio import fit_window, log_mel, read_wav

        wave = read_wav(source, rate=meta["sample_rate"], max_seconds=meta["max_seconds"])
        window = int(round(meta["window_seconds"] * meta["sample_rate"]))
        return self.check_sequence(log_mel(fit_window(wave, window)), meta, source)

    def format(self, prediction, meta) -> str:
        return super().format(np.asarray(prediction)[1], meta)
