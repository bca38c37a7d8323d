"""Host-side decoding (greedy and beam search) over exported encoder / decoder_step graphs.

Written once against the named-tensor graph interface (:mod:`zoo.graphs`), so Keras,
LiteRT and ONNX Runtime decode through identical code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Graph = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def greedy_decode(
    graphs: Mapping[str, Graph], source: np.ndarray, *, bos: int, eos: int, max_len: int
) -> list[list[int]]:
    """Greedy decoding of a batch of equal-length sources.

    Args:
        graphs: ``encoder`` (graphemes -> memory, h, c) and ``decoder_step``
            (token, h, c, memory -> probs, h_next, c_next).
        source: (B, T) int32 token ids; the rows share a length (no padding).
        bos / eos: start and end token ids.
        max_len: most tokens emitted per row (end token excluded).

    Returns:
        One list of token ids per row, without the start and end tokens.
    """
    source = np.asarray(source, dtype=np.int32)
    enc = graphs["encoder"]({"graphemes": source})
    memory, h, c = enc["memory"], enc["h"], enc["c"]
    batch = source.shape[0]
    token = np.full((batch, 1), bos, dtype=np.int32)
    out: list[list[int]] = [[] for _ in range(batch)]
    live = np.arange(batch)  # rows still decoding: a finished row takes no more steps
    step = graphs["decoder_step"]
    for _ in range(max_len):
        res = step({"token": token, "h": h, "c": c, "memory": memory})
        nxt = np.argmax(res["probs"], axis=-1).astype(np.int32)
        going = nxt != eos
        for i, symbol, goes in zip(live.tolist(), nxt.tolist(), going.tolist(), strict=True):
            if goes:
                out[i].append(symbol)
        if going.all():  # no row ended: the state goes on as it is, memory uncopied
            token, h, c = nxt.reshape(-1, 1), res["h_next"], res["c_next"]
            continue
        if not going.any():
            break
        live = live[going]
        token = nxt[going].reshape(-1, 1)
        h, c, memory = res["h_next"][going], res["c_next"][going], memory[going]
    return out


def beam_decode(
    graphs: Mapping[str, Graph], source: np.ndarray, *, bos: int, eos: int, max_len: int,
    beam_width: int, n_best: int = 1, length_penalty: float = 0.0,
) -> list[tuple[list[int], float]]:
    """Beam search over one source: the ``n_best`` likeliest transcriptions, best first.

    Each step extends every live hypothesis by every symbol and keeps the
    ``beam_width - finished`` likeliest extensions (a beam that shrinks as hypotheses end,
    so width 1 is exactly :func:`greedy_decode`); one that ends with ``eos`` is finished.
    Log-probabilities add up in float64. Ties keep the earlier hypothesis, then the lower
    symbol id, as ``np.argmax`` does. A hypothesis still live after ``max_len`` symbols
    ends there, as a greedy row does. The step graph runs at batch 1, one call per
    hypothesis: the exported LiteRT step graph takes batch 1 only, and one call shape on
    every backend keeps their lists identical.

    Args:
        graphs: ``encoder`` and ``decoder_step``, as for :func:`greedy_decode`.
        source: (1, T) int32 token ids.
        bos / eos: start and end token ids.
        max_len: most tokens per hypothesis (end token excluded).
        beam_width: hypotheses kept per step (>= 1).
        n_best: how many finished hypotheses to return (at most ``beam_width``).
        length_penalty: ``alpha`` of the final ranking ``log p / (len + 1) ** alpha``
            (the end token counted); 0 ranks by the log-probability itself.

    Returns:
        ``(token ids without start and end tokens, score)`` pairs, best first; the score is
        the ranking's: the summed log-probability, divided by the length term if
        ``length_penalty``.

    Example:
        >>> import numpy as np
        >>> table = np.array([[1, 0, 0, 0],      # by the last token: 0 end, 1 start, 2, 3
        ...                   [0, 0, .6, .4],
        ...                   [.4, 0, .3, .3],
        ...                   [.9, 0, .05, .05]], np.float32)
        >>> graphs = {
        ...     "encoder": lambda f: {"memory": np.zeros((1, 1, 1), np.float32),
        ...                           "h": np.zeros((1, 1), np.float32),
        ...                           "c": np.zeros((1, 1), np.float32)},
        ...     "decoder_step": lambda f: {"probs": table[f["token"][:, 0]],
        ...                                "h_next": f["h"], "c_next": f["c"]}}
        >>> source = np.zeros((1, 3), np.int32)
        >>> greedy_decode(graphs, source, bos=1, eos=0, max_len=5)
        [[2]]
        >>> [(s, round(float(np.exp(p)), 2))
        ...  for s, p in beam_decode(graphs, source, bos=1, eos=0, max_len=5,
        ...                          beam_width=2, n_best=2)]
        [([3], 0.36), ([2], 0.24)]
    """
    if not 1 <= n_best <= beam_width:
        raise ValueError(f"n_best must be in 1..beam_width ({beam_width}); got {n_best}")
    source = np.asarray(source, dtype=np.int32)
    if source.shape[0] != 1:
        raise ValueError(f"beam_decode takes one source (1, T); got {source.shape}")
    enc = graphs["encoder"]({"graphemes": source})
    memory = enc["memory"]
    step = graphs["decoder_step"]
    # live hypotheses, best first: (symbols, log-probability, h, c)
    live: list[tuple[tuple[int, ...], float, np.ndarray, np.ndarray]] = [
        ((), 0.0, enc["h"], enc["c"])]
    finished: list[tuple[tuple[int, ...], float]] = []
    for _ in range(max_len):
        results = [step({"token": np.array([[symbols[-1] if symbols else bos]], np.int32),
                         "h": h, "c": c, "memory": memory})
                   for symbols, _, h, c in live]
        with np.errstate(divide="ignore"):  # a probability of 0 is a log of -inf
            scores = np.stack([logp + np.log(r["probs"][0].astype(np.float64))
                               for (_, logp, _, _), r in zip(live, results, strict=True)])
        live = _extend(live, results, scores, beam_width - len(finished), eos, finished)
        if not live:
            break
    finished += [(symbols, logp) for symbols, logp, _, _ in live]  # cut at max_len
    return _ranked(finished, length_penalty)[:n_best]


def _extend(live, results, scores: np.ndarray, room: int, eos: int, finished: list) -> list:
    """The ``room`` likeliest one-symbol extensions of the live hypotheses, best first (ties:
    the earlier hypothesis, then the lower symbol); those that end with ``eos`` go to
    ``finished``, the others are returned with their next state."""
    hyp, symbol = np.divmod(np.arange(scores.size), scores.shape[1])
    order = np.lexsort((symbol, hyp, -scores.ravel()))[:room]
    extended = []
    for k in order.tolist():
        i, s, score = int(hyp[k]), int(symbol[k]), float(scores.flat[k])
        if s == eos:
            finished.append((live[i][0], score))
        else:
            extended.append(((*live[i][0], s), score, results[i]["h_next"],
                             results[i]["c_next"]))
    return extended


def _ranked(finished, length_penalty: float) -> list[tuple[list[int], float]]:
    """``(symbols, score)``, best first; the score is ``log p / (len + 1) ** alpha`` (the
    end token counted), or ``log p`` for ``alpha`` 0. Stable: ties keep their order."""
    def rank(symbols, logp):
        return logp / (len(symbols) + 1) ** length_penalty if length_penalty else logp

    return sorted(((list(s), rank(s, p)) for s, p in finished), key=lambda item: -item[1])
