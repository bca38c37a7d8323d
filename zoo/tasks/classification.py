"""Sequence classification (``classification``) and text classification (``text``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ShapeError
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import check_encodable, length_batches, parity_pool, read_text_source


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
