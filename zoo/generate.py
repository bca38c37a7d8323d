"""Sampling text from a character language model's one-step graph.

The loop runs on the host over the ``step`` graph (a character id and the LSTM state in,
the next-character distribution and the next state out), so it is the same for Keras,
LiteRT and ONNX Runtime: with a fixed seed the random numbers are the same, and fp32
backends, whose probabilities agree to float32 rounding, give the same text
(tests/test_char_lm.py checks it).

Each character: the distribution is divided in log space by ``temperature``, cut to the
``top_k`` most likely characters (0: all), renormalized, and sampled by inverse CDF with
one uniform number from ``numpy.random.default_rng(seed)``. The unknown id 0 is never
sampled.
"""

from __future__ import annotations

import numpy as np

from zoo.errors import ShapeError
from zoo.tasks import LanguageModel, _state_widths, stream


def check_options(length, temperature, top_k, vocab: int) -> None:
    """A :class:`ShapeError` naming the bad option and what it takes."""
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length <= 0:
        raise ShapeError(f"length: expected a positive number of characters, got {length!r}")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ShapeError(f"temperature: expected a positive number (1: the model's own "
                         f"distribution, lower: more conservative), got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or \
            not 0 <= top_k <= vocab - 1:
        raise ShapeError(f"top_k: expected 0 (no cut) to {vocab - 1} (the characters the "
                         f"model knows), got {top_k!r}")


def sample_index(probs: np.ndarray, temperature: float, top_k: int, u: float) -> int:
    """The id drawn by inverse CDF with the uniform number ``u`` in [0, 1) (see the module
    docstring); ties in the top-k cut keep the lower id."""
    p = np.asarray(probs, np.float64).copy()
    p[0] = 0.0  # the unknown character
    with np.errstate(divide="ignore"):
        logits = np.log(p) / temperature
    if top_k:
        order = np.argsort(-logits, kind="stable")
        logits[order[top_k:]] = -np.inf
    weights = np.exp(logits - logits.max())
    cdf = np.cumsum(weights)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(p) - 1))


def generate(graphs, meta, *, length: int, prompt: str = "", temperature: float = 1.0,
             top_k: int = 0, seed: int = 0) -> str:
    """``length`` characters sampled after ``prompt`` (the text starts after a line break,
    as the lines it was trained on do).

    Args:
        graphs: ``{"step": runner}`` — Keras graphs (:func:`zoo.graphs.keras_graphs`) or a
            bundle's runners (:meth:`export.verification.runtime.Bundle.runners`).
        meta: the model's meta (its ``chars``).

    Raises:
        ShapeError: a length <= 0, a temperature <= 0, a top_k outside 0..vocabulary, a
            prompt that is not a str.

    Example:
        >>> from zoo import create_model, get_spec
        >>> from zoo.graphs import keras_graphs
        >>> spec = get_spec("char_lm_tiny")
        >>> graphs = keras_graphs(spec, create_model("char_lm_tiny"))
        >>> len(generate(graphs, spec.meta, length=5, seed=1))
        5
    """
    vocab = len(meta["chars"]) + 1
    check_options(length, temperature, top_k, vocab)
    if not isinstance(prompt, str):
        raise ShapeError(f"prompt: expected a text (str), got {type(prompt).__name__}")
    step = graphs["step"]
    widths = _state_widths(step, "token")
    ids = LanguageModel.encode("\n" + prompt, meta)
    state = None
    for out in stream(step, ids[None], widths):
        state = {n: out[f"{n}_next"] for n in widths}
    rng = np.random.default_rng(seed)
    chars = meta["chars"]
    text = []
    for _ in range(length):
        nxt = sample_index(np.asarray(out["probs"])[0], temperature, top_k, rng.random())
        text.append(chars[nxt - 1])
        out = next(stream(step, np.array([[nxt]], np.int32), widths, state))
        state = {n: out[f"{n}_next"] for n in widths}
    return "".join(text)
