"""Token sequence transduction (``seq2seq``): grapheme-to-phoneme conversion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.decoding import greedy_decode
from zoo.errors import ShapeError
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import check_encodable, length_batches
from zoo.tasks.metrics import edit_distance

# The longest source a seq2seq model takes: the longest it may be trained on (a fine-tuned
# model's, zoo.model_dir; the pretrained G2P's words have at most 20 letters). The encoder
# runs any length, but a longer word is not one the model has learnt to read, and its
# decoder stops at meta["max_output_len"] symbols.
MAX_SOURCE = 40


@register_task
@dataclass(frozen=True)
class Seq2Seq(Task):
    """Token sequence transduction (G2P); metrics: phoneme error rate, word accuracy."""

    name: str = "seq2seq"
    metric: str = "per"
    higher_is_better: bool = False

    def inputs(self, data) -> list[str]:
        return list(data.words)

    def encode(self, word: str, meta) -> np.ndarray:
        index = {t: i for i, t in enumerate(meta["source_vocab"])}
        word = word.strip().lower()
        if not word:
            raise ShapeError("expected a non-empty word, got an empty string")
        if len(word) > MAX_SOURCE:
            raise ShapeError(f"a word of {len(word)} characters; the model takes at most "
                             f"{MAX_SOURCE}")
        unknown = sorted({ch for ch in word if ch not in index})
        if unknown:
            valid = "".join(meta["source_vocab"][2:])
            raise ShapeError(f"word {word!r} has characters {unknown} outside the model's "
                             f"alphabet {valid!r}")
        return np.array([[index[ch] for ch in word]], dtype=np.int32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        """Greedy transcriptions. ``batch_size`` > 1 groups words of equal length (Keras)."""
        vocab = meta["target_vocab"]
        out: list[tuple[str, ...]] = [()] * len(inputs)
        for chunk in length_batches([len(w.strip()) for w in inputs], batch_size):
            source = np.concatenate([self.encode(inputs[i], meta) for i in chunk])
            ids = greedy_decode(graphs, source, bos=meta["bos"], eos=meta["eos"],
                                max_len=meta["max_output_len"])
            for i, row in zip(chunk, ids, strict=True):
                out[i] = tuple(vocab[t] for t in row)
            if progress:
                progress(len(chunk))
        return out

    def score(self, predictions, data, meta) -> dict[str, float]:
        errors = length = correct = 0
        for pred, refs in zip(predictions, data.references, strict=True):
            best = min(refs, key=lambda r: (edit_distance(pred, r), len(r)))
            errors += edit_distance(pred, best)
            length += len(best)
            correct += tuple(pred) in {tuple(r) for r in refs}
        return {"per": errors / max(length, 1), "word_accuracy": correct / max(len(predictions), 1)}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[str]:
        """The first ``minimum`` held-out test words (their decoder steps, each word's up to
        its end token, are sampled for replay)."""
        return list(test.words[:minimum])

    def compare(self, a, b) -> dict[str, Any]:
        return {"disagreements": sum(x != y for x, y in zip(a, b, strict=True))}

    def check_input(self, word, meta, where="input") -> str:
        """One word as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return check_encodable(self, word, "a word", meta, where).strip().lower()

    def parse_input(self, source: str, meta) -> str:
        return self.check_input(source, meta)

    def format(self, prediction, meta) -> str:
        return " ".join(prediction)
