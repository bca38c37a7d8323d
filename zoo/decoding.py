"""Host-side greedy decoding over exported encoder / decoder_step graphs.

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
