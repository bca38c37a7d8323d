"""Character language modelling (``lm``): bits per character, whole and streamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.errors import DataError, ShapeError
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import _state_widths, parity_pool, read_text_source, stream
from zoo.tasks.fitting import adam, head, run_fit
from zoo.tasks.metrics import _nll


@register_task
@dataclass(frozen=True)
class LanguageModel(Task):
    """Character language modelling; metric: bits per character (lower is better).

    An evaluation input is a chunk of character ids (T + 1,); its prediction is a pair of
    summed negative log-likelihoods (nats) of the chunk's last T characters: from the
    ``lm`` graph over the whole chunk, and from the ``step`` graph fed one character at a
    time from zero state (the path generation runs). Bits per character are scored on the
    streamed one; ``stream_max_diff`` (nats per character) is the largest difference
    between the two, which must stay at float32 rounding on every backend. ``naive_bpc``:
    the unigram model on the same chunks. A text (str) input gives
    ``{"bits", "chars", "next"}``: its bits per character and the distribution of the
    character after it.
    """

    name: str = "lm"
    metric: str = "bpc"
    higher_is_better: bool = False
    baseline: str = "the unigram model (training character frequencies)"
    tensor_chars: int = 32  # characters per tensor-parity input (every step is recorded)

    @staticmethod
    def encode(text: str, meta) -> np.ndarray:
        index = {c: i + 1 for i, c in enumerate(meta["chars"])}
        return np.fromiter((index.get(c, 0) for c in text), np.int32, len(text))

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.ids, np.int32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        if len(inputs) and isinstance(inputs[0], str):
            return [self._text(graphs["step"], text, meta) for text in inputs]
        lm, step = graphs["lm"], graphs["step"]
        widths = _state_widths(step, "token")
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], np.int32)
            x, y = batch[:, :-1], batch[:, 1:]
            rows = np.arange(len(batch))
            probs = np.asarray(lm({"ids": x})["probs"])
            whole = _nll(np.take_along_axis(probs, y[..., None], -1)[..., 0])
            # each step's probability of the next character, gathered as the step returns
            # it; the logs and the sum once at the end, in float64 like the whole pass
            # (per step, the float64 copy and log were 5 µs of a 20 µs LiteRT step: 1.3 ms
            # of music_lstm's 9.2 ms chunk, measured)
            picked = np.empty(y.shape, np.float32)
            for t, o in enumerate(stream(step, x, widths)):
                picked[:, t] = o["probs"][rows, y[:, t]]
            out.append(np.stack([whole, _nll(picked)], axis=1))
            if progress:
                progress(len(batch))
        return np.concatenate(out) if out else np.zeros((0, 2))

    def _text(self, step, text: str, meta) -> dict:
        ids = self.encode("\n" + text, meta)  # after a line break, where lines begin
        bits = 0.0
        for t, o in enumerate(stream(step, ids[None], _state_widths(step, "token"))):
            probs = np.asarray(o["probs"], np.float64)[0]
            if t + 1 < len(ids):
                bits -= np.log2(probs[ids[t + 1]])
        return {"bits": float(bits), "chars": len(text), "next": probs}

    def score(self, predictions, data, meta) -> dict[str, float]:
        nll = np.asarray(predictions, np.float64)
        count = nll.shape[0] * (np.asarray(data.ids).shape[1] - 1)
        return {"bpc": float(nll[:, 1].sum() / count / np.log(2)),
                "bpc_whole": float(nll[:, 0].sum() / count / np.log(2)),
                "stream_max_diff": float(np.max(np.abs(nll[:, 0] - nll[:, 1]))
                                         / (np.asarray(data.ids).shape[1] - 1)),
                "naive_bpc": float(np.sum(data.naive) / count / np.log(2))}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The first ``tensor_chars + 1`` characters of the test chunks, then of the
        calibration chunks, until ``minimum`` (the step graph is recorded at every
        character, so whole chunks would only repeat its feeds)."""
        return [c[: self.tensor_chars + 1] for c in parity_pool(self, test, extra, minimum)]

    def compare(self, a, b) -> dict[str, Any]:
        """Chunks whose log-likelihoods differ by more than 1e-5 of their value."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return {"disagreements": int(np.sum((np.abs(a - b) > 1e-5 * np.abs(a) + 1e-6)
                                            .any(axis=-1)))}

    def check_input(self, text, meta, where="input"):
        """A non-empty text (str), or a chunk of character ids (1-D ints in the vocabulary,
        at least 2: an evaluation or calibration input); else a :class:`ShapeError`."""
        if isinstance(text, str):
            if not text:
                raise ShapeError(f"{where}: the text is empty; give at least one character")
            return text
        ids = np.asarray(text)
        vocab = len(meta["chars"]) + 1
        if ids.ndim != 1 or len(ids) < 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ShapeError(f"{where}: expected a text (str) or a 1-D chunk of at least 2 "
                             f"character ids, got {type(text).__name__} of shape {ids.shape} "
                             f"and dtype {ids.dtype}")
        if ids.min() < 0 or ids.max() >= vocab:
            raise ShapeError(f"{where}: character ids must be in 0..{vocab - 1}; got "
                             f"{int(ids.min())}..{int(ids.max())}")
        return ids.astype(np.int32)

    def parse_input(self, source: str, meta) -> str:
        """The text of a ``.txt`` file or the text itself (see :func:`read_text_source`)."""
        text, where = read_text_source(source)
        return self.check_input(text, meta, where)

    def format(self, prediction, meta) -> str:
        chars = meta["chars"]
        top = np.argsort(-prediction["next"], kind="stable")[:5]
        shown = ", ".join(f"{(chars[i - 1] if i else '<unknown>')!r} {prediction['next'][i]:.3f}"
                          for i in top)
        return (f"{prediction['bits'] / prediction['chars']:.4f} bits per character over "
                f"{prediction['chars']} characters; next: {shown}")

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Cross-entropy of the next character; an epoch is ``recipe["steps"]`` batches."""
        (ids,) = head(recipe, np.asarray(data.ids, np.int32))
        if len(ids) < recipe["length"] + 2:
            raise DataError(f"{len(ids)} training characters; a training window takes "
                            f"{recipe['length'] + 1}, so give at least {recipe['length'] + 2}")
        steps = recipe["steps"]
        model.compile(optimizer=adam(recipe, steps), loss="sparse_categorical_crossentropy")
        batches = lm_batches(ids, recipe["batch_size"], recipe["length"],
                             np.random.default_rng(recipe.get("seed", 0)))
        return run_fit(model, batches, recipe, verbose, callbacks, steps=steps)


def lm_batches(ids: np.ndarray, batch: int, length: int, rng):
    """Endless batches of ``batch`` windows of ``length + 1`` characters at random places
    of the corpus: ``(x (B, length), y (B, length))``, ``y`` the next characters."""
    while True:
        starts = rng.integers(0, len(ids) - length - 1, batch)
        window = np.stack([ids[s : s + length + 1] for s in starts])
        yield window[:, :-1], window[:, 1:]
