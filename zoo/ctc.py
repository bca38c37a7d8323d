"""CTC decoding on the host: greedy and prefix beam search, optionally constrained.

CTC decoders are not portable graph ops (tf2onnx has no CTCGreedyDecoder; TFLite's beam
decoder is a custom op), so exported recognisers emit per-frame probabilities and the
transcript is decoded here, once, identically for Keras, LiteRT and ONNX Runtime.

Conventions: ``probs`` is (T, V) per-frame probabilities (softmax outputs) over V
symbols, one of which is the blank (index ``blank``, 0 by default); a transcript is a
list of symbol indices without blanks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from zoo.errors import ShapeError

NEG_INF = -math.inf


def _check(probs, blank: int, dtype=np.float64) -> np.ndarray:
    probs = np.asarray(probs, dtype)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ShapeError(f"CTC decoding needs (time, symbols) probabilities with at least 2 "
                         f"symbols; got shape {probs.shape}")
    if not 0 <= blank < probs.shape[1]:
        raise ShapeError(f"blank index {blank} is outside the {probs.shape[1]} symbols")
    if not np.all(np.isfinite(probs)) or (probs.size and probs.min() < 0):
        raise ShapeError("CTC probabilities must be finite and non-negative")
    return probs


def greedy_decode(probs, blank: int = 0) -> list[int]:
    """Best path: the most likely symbol per frame, repeats merged, blanks removed.

    Example:
        >>> import numpy as np
        >>> greedy_decode(np.eye(3)[[1, 1, 0, 1, 2, 2]])
        [1, 1, 2]
    """
    # argmax in the graph's own float32 (widening is exact, so the order is float64's):
    # the float64 copy was half of the 9 µs this took per speech_ctc utterance (measured)
    dtype = probs.dtype if isinstance(probs, np.ndarray) and probs.dtype.kind == "f" \
        else np.float64
    best = _check(probs, blank, dtype).argmax(axis=1)
    previous = np.concatenate([[blank], best[:-1]])
    return best[(best != previous) & (best != blank)].tolist()


class Lexicon:
    """The transcripts a decoder may produce: a set of symbol sequences (e.g. the digit
    strings of a grammar, or the words of a vocabulary), stored as a prefix trie."""

    def __init__(self, entries: Iterable[Sequence[int]]):
        self._children: dict[tuple[int, ...], set[int]] = {}
        self._complete: set[tuple[int, ...]] = set()
        for entry in entries:
            entry = tuple(int(s) for s in entry)
            for i in range(len(entry)):
                self._children.setdefault(entry[:i], set()).add(entry[i])
            self._complete.add(entry)
        if not self._complete:
            raise ValueError("a lexicon needs at least one entry")

    def allows(self, prefix: tuple[int, ...], symbol: int) -> bool:
        return symbol in self._children.get(prefix, ())

    def complete(self, prefix: tuple[int, ...]) -> bool:
        return prefix in self._complete


@dataclass
class _Beam:
    blank: float = NEG_INF  # log P(prefix, path ends in blank)
    symbol: float = NEG_INF  # log P(prefix, path ends in its last symbol)
    total: float = field(init=False, default=NEG_INF)


def _add(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def beam_search(probs, beam_width: int = 16, blank: int = 0,
                lexicon: Lexicon | None = None) -> list[tuple[list[int], float]]:
    """CTC prefix beam search: the ``beam_width`` most likely transcripts with their log
    probabilities (summed over every alignment the beam kept), best first.

    With a ``lexicon``, a prefix may only grow along its entries and only complete entries
    are returned (an empty list if none survives).

    Example:
        >>> import numpy as np
        >>> probs = np.array([[0.4, 0.6], [0.4, 0.6]])  # symbols: blank, "a"
        >>> [(t, round(float(np.exp(p)), 2)) for t, p in beam_search(probs, 2)]
        [([1], 0.84), ([], 0.16)]
    """
    probs = _check(probs, blank)
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1; got {beam_width}")
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    beams: dict[tuple[int, ...], _Beam] = {(): _Beam(blank=0.0)}
    for frame in logp:
        nxt: dict[tuple[int, ...], _Beam] = {}
        for prefix, beam in beams.items():
            both = _add(beam.blank, beam.symbol)
            # stay: a blank, or the last symbol repeated (merged by CTC)
            stay = nxt.setdefault(prefix, _Beam())
            stay.blank = _add(stay.blank, both + frame[blank])
            if prefix:
                stay.symbol = _add(stay.symbol, beam.symbol + frame[prefix[-1]])
            for s in range(len(frame)):
                if s == blank or frame[s] == NEG_INF:
                    continue
                if lexicon is not None and not lexicon.allows(prefix, s):
                    continue
                grown = nxt.setdefault(prefix + (s,), _Beam())
                # a repeated symbol needs a blank between the two in the path
                source = beam.blank if prefix and prefix[-1] == s else both
                grown.symbol = _add(grown.symbol, source + frame[s])
        for beam in nxt.values():
            beam.total = _add(beam.blank, beam.symbol)
        kept = sorted(nxt.items(), key=lambda kv: kv[1].total, reverse=True)[:beam_width]
        beams = dict(kept)
    out = [(list(prefix), beam.total) for prefix, beam in beams.items()
           if lexicon is None or lexicon.complete(prefix)]
    return sorted(out, key=lambda item: item[1], reverse=True)


def best_path_probability(probs, transcript: Sequence[int], blank: int = 0) -> float:
    """log P(transcript | probs) summed over every alignment (the CTC forward algorithm):
    the exact score a beam search approximates; used to check it."""
    probs = _check(probs, blank)
    labels = [blank]
    for s in transcript:
        labels += [int(s), blank]
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    alpha = np.full(len(labels), NEG_INF)
    alpha[0] = logp[0, blank]
    if len(labels) > 1:
        alpha[1] = logp[0, labels[1]]
    for t in range(1, len(logp)):
        new = np.full(len(labels), NEG_INF)
        for i, s in enumerate(labels):
            total = alpha[i]
            if i >= 1:
                total = _add(total, alpha[i - 1])
            if i >= 2 and s != blank and s != labels[i - 2]:
                total = _add(total, alpha[i - 2])
            new[i] = total + logp[t, s] if total != NEG_INF else NEG_INF
        alpha = new
    return _add(alpha[-1], alpha[-2]) if len(labels) > 1 else alpha[-1]
