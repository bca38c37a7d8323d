"""Post-training precisions per format, and the calibration data they need.

=========  ==========================================  =========================================
precision  TFLite (LiteRT)                             ONNX (ONNX Runtime)
=========  ==========================================  =========================================
fp32       float32                                     float32
dynamic    int8 weights, float activations             QInt8 weights, activations quantized per
                                                       call (LSTM -> DynamicQuantizeLSTM)
float16    float16 weights, dequantized at load        --
int8       int8 weights and activations, float I/O,    static QDQ (QInt8 weights, QUInt8
           calibrated                                  activations), calibrated; LSTM ops, which
                                                       ORT's static quantizer skips, become
                                                       DynamicQuantizeLSTM
int16x8    int16 activations, int8 weights,            --
           calibrated; refused by the converter for
           the fused LSTM op (TF 2.21)
=========  ==========================================  =========================================

Calibration data are the exact graph feeds Keras produced while running the task on
the model's calibration split (or on the user's own samples): for a seq2seq model that
is every decoder step along Keras' greedy path, so the step graph is calibrated on the
states it will really see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from zoo.errors import DataError, ShapeError, UnsupportedError

FORMAT_PRECISIONS = {
    "tflite": ("fp32", "dynamic", "float16", "int8", "int16x8"),
    "onnx": ("fp32", "dynamic", "int8"),
}
PRECISIONS = ("fp32", "dynamic", "float16", "int8", "int16x8")
CALIBRATED = ("int8", "int16x8")
# Formats that lack a precision, and why (a precision is produced for every requested
# format that has it; asking for one no requested format has is an error).
FORMAT_GAPS = {
    ("onnx", "float16"): "ONNX Runtime's CPU provider runs float16 graphs by inserting Cast "
                         "nodes around its float32 kernels (microsoft/onnxruntime#11831), so "
                         "a float16 LSTM would compute in float32 behind extra casts",
    ("onnx", "int16x8"): "ORT quantization has no int16-activation mode for the LSTM op",
}
CALIBRATION_SAMPLES = 200  # task inputs run through Keras to record feeds
MIN_CALIBRATION_SAMPLES = 16  # fewer gives ranges set by a handful of outliers
MAX_CALIBRATION_FEEDS = 500  # per graph; a seq2seq word yields ~8 decoder-step feeds


def formats_for(precision: str, formats: Sequence[str]) -> tuple[str, ...]:
    return tuple(f for f in formats if precision in FORMAT_PRECISIONS[f])


def check_precisions(spec, formats: Sequence[str], precisions: Sequence[str]) -> None:
    """Every requested precision is one the model's layers take, in a requested format.

    Raises:
        UnsupportedError: with the reason the model or the formats cannot take it.
    """
    for p in precisions:
        if p not in spec.precisions:
            reason = spec.precision_gaps.get(p)
            raise UnsupportedError(
                f"{spec.name} does not support precision {p!r}"
                + (f": {reason}" if reason else "")
                + f"; it supports {list(spec.precisions)}")
        if not formats_for(p, formats):
            reasons = "; ".join(f"{f}: {FORMAT_GAPS.get((f, p), 'not available')}"
                                for f in formats)
            raise UnsupportedError(f"precision {p!r} exists for none of the formats "
                                   f"{list(formats)} ({reasons}); it exists for "
                                   f"{[f for f, ps in FORMAT_PRECISIONS.items() if p in ps]}")


def calibration_feeds(spec, task, graph_models: Mapping, inputs: Sequence,
                      progress=None) -> dict[str, list[dict[str, np.ndarray]]]:
    """The graph feeds Keras produces on ``inputs`` (task inputs), per graph.

    Args:
        spec: the model's spec (for ``meta``).
        task: the model's task.
        graph_models: ``{graph name: Keras graph model}``.
        inputs: task inputs (sequences (T, C) for classifiers, words for G2P), at least
            :data:`MIN_CALIBRATION_SAMPLES`.

    Raises:
        DataError: too few samples.
        ShapeError: a sample does not fit the model (says which one and why).
    """
    from export.verification.runtime import FeedCheck
    from export.verification.verify import Recorder
    from zoo.graphs import KerasGraph, input_infos

    inputs = list(inputs)
    if len(inputs) < MIN_CALIBRATION_SAMPLES:
        raise DataError(f"calibration needs at least {MIN_CALIBRATION_SAMPLES} samples to "
                        f"estimate activation ranges; got {len(inputs)}")
    checked = [task.check_input(x, spec.meta, f"calibration sample {i}")
               for i, x in enumerate(inputs)]
    recorders = {n: Recorder(KerasGraph(m), MAX_CALIBRATION_FEEDS)
                 for n, m in graph_models.items()}
    task.predict(recorders, checked, spec.meta, progress)
    feeds = {}
    for name, rec in recorders.items():
        check = FeedCheck([i.to_json() for i in input_infos(graph_models[name])],
                          f"calibration feed of {name}")
        feeds[name] = [check(f) for f in rec.feeds]
        if not feeds[name]:
            raise ShapeError(f"calibration produced no feeds for graph {name!r}")
    return feeds


def unsupported_by_converter(message: str) -> UnsupportedError | None:
    """A converter refusal that means "these layers cannot take this precision"."""
    if "not yet supported for op" in message or "not supported for op" in message:
        ops = sorted(set(_quoted(message)))
        return UnsupportedError(f"the TFLite converter refuses this precision for op(s) "
                                f"{ops}: {message.strip().splitlines()[0]}")
    return None


def _quoted(message: str) -> list[str]:
    import re

    return re.findall(r"op: '([A-Z0-9_]+)'", message)


def gzip_size(data: bytes) -> int:
    """Size after gzip -9: what a sparse or clustered artifact costs to ship."""
    import gzip

    return len(gzip.compress(data, compresslevel=9, mtime=0))
