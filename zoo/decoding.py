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
    done = np.zeros(batch, dtype=bool)
    step = graphs["decoder_step"]
    for _ in range(max_len):
        res = step({"token": token, "h": h, "c": c, "memory": memory})
        nxt = np.argmax(res["probs"], axis=-1).astype(np.int32)
        for i in np.flatnonzero(~done):
            if nxt[i] == eos:
                done[i] = True
            else:
                out[i].append(int(nxt[i]))
        if done.all():
            break
        token = nxt.reshape(batch, 1)
        h, c = res["h_next"], res["c_next"]
    return out
