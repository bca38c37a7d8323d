"""Unrolled TFLite artifacts, where they measurably run faster than the fused ones.

A recurrent layer over a fixed, short time axis can be written out step by step
(``unroll=True``): TFLite then gets plain ops (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD)
instead of the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` or, for a GRU (LiteRT 2.3 has no GRU
op), a ``WHILE`` loop. Measured on this project's machines (LiteRT 2.3, one thread, a
2 x 32-unit BiLSTM classifier, interleaved medians, ``docs/bring-your-own-model.md``):
the int8 fused LSTM kernel is the slow one (1.2-2.7 ms a call against 20-520 µs
unrolled, for 8-100 steps), and at fp32 the unrolled graph wins for short axes (0.48x the
fused time at 8 steps, 0.85x at 32) and loses for long ones (1.48x at 100), while the file
grows with the steps. So nothing is decided by rule: for each precision both artifacts
are converted and timed here, on the exporting machine, and the unrolled one is kept only
when it is at least :data:`MARGIN` faster; the manifest records both times.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from zoo._keras import keras

# Time axes longer than this are not unrolled: the graph (and the file) grows with every
# step, and at 100 steps the fused fp32 kernel was already faster.
MAX_STEPS = 64
# The unrolled artifact is kept when its median call takes at most this fraction of the
# fused one's: a smaller gain is within the noise of a shared machine, and the unrolled
# file is larger.
MARGIN = 0.9
RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")


def _rnn_entries(config: dict) -> list[dict]:
    """Every recurrent layer's config entry (also inside Bidirectional and
    TimeDistributed), for editing in place."""
    found = []
    for entry in config["config"]["layers"]:
        inner = [entry]
        if entry["class_name"] in ("Bidirectional", "TimeDistributed"):
            inner = [entry["config"][k] for k in ("layer", "backward_layer")
                     if k in entry["config"]]
        found += [e for e in inner if e["class_name"] in RNN_CLASSES]
    return found


def unroll_steps(model) -> int | None:
    """The time steps every recurrent layer of ``model`` runs over, when they are fixed,
    the same for all, at most :data:`MAX_STEPS`, and every recurrent layer is an LSTM, GRU
    or SimpleRNN; else None (nothing to unroll: a ConvLSTM would stay a loop)."""
    steps = set()
    for layer in model.layers:
        inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None) \
            if isinstance(layer, (keras.layers.Bidirectional, keras.layers.TimeDistributed)) \
            else layer
        if type(inner).__name__ not in RNN_CLASSES:
            if isinstance(inner, keras.layers.RNN):  # a ConvLSTM, a custom cell: not here
                return None
            continue
        shape = layer.input_shape[0] if isinstance(layer.input_shape, list) \
            else layer.input_shape
        axis = 2 if isinstance(layer, keras.layers.TimeDistributed) else 1
        steps.add(shape[axis] if len(shape) > axis else None)
        if getattr(inner, "stateful", False):
            return None
    if len(steps) != 1 or None in steps:
        return None
    (n,) = steps
    return n if n <= MAX_STEPS else None


def unrolled_twin(model):
    """``model`` with every recurrent layer unrolled (the same weights, the same function),
    or None when :func:`unroll_steps` says there is nothing to unroll."""
    if unroll_steps(model) is None:
        return None
    config = json.loads(model.to_json())
    for entry in _rnn_entries(config):
        entry["config"]["unroll"] = True
    twin = keras.models.model_from_json(json.dumps(config))
    twin.set_weights(model.get_weights())
    return twin


def _litert_call(data: bytes):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        shape, dtype = detail["shape"], detail["dtype"]
        value = (rng.standard_normal(shape) if np.issubdtype(dtype, np.floating)
                 else np.zeros(shape))
        interpreter.set_tensor(detail["index"], value.astype(dtype))
    return interpreter.invoke


def faster(fused: bytes, unrolled: bytes, rounds: int = 15, calls: int = 20
           ) -> dict[str, Any]:
    """Times both TFLite artifacts on LiteRT (one thread, in alternating blocks of
    ``calls``, medians over ``rounds``) and says which to keep:
    ``{"fused_us", "unrolled_us", "ratio", "chosen": "unrolled" | "fused"}``."""
    runs = {"fused": _litert_call(fused), "unrolled": _litert_call(unrolled)}
    for run in runs.values():  # warm-up: first calls allocate and pack weights
        for _ in range(3):
            run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times[key].append((time.perf_counter() - start) / calls * 1e6)
    ratio = float(np.median(np.array(times["unrolled"]) / np.array(times["fused"])))
    return {"fused_us": round(float(np.median(times["fused"])), 1),
            "unrolled_us": round(float(np.median(times["unrolled"])), 1),
            "ratio": round(ratio, 3), "fused_size": len(fused),
            "unrolled_size": len(unrolled),
            "chosen": "unrolled" if ratio <= MARGIN else "fused"}
