"""Keras graph -> .tflite, from a static batch-1 signature.

A ``None`` batch fails for stacked or bidirectional LSTMs (``tf.TensorListReserve
requires element_shape to be static``); batch 1 converts every recurrent layer and
keeps the time axis dynamic for the fused LSTM op (../shared/FINDINGS.md).
"""

from __future__ import annotations

from export.graphs import serving_function
from zoo._keras import tf
from zoo.errors import ExportError

TFLITE_PRECISIONS = ("fp32", "dynamic")


def convert(model, precision: str) -> bytes:
    """Converts a Keras graph model at ``precision`` ("fp32" or "dynamic")."""
    serve = serving_function(model, batch=1)
    # The converter saves its trackable object as a SavedModel. Given the Keras model,
    # tf_keras serialises every layer's call functions (15 s for bilstm_activity);
    # a bare module holding just the serving function and the variables converts the
    # same fused graph in 1.5 s.
    holder = tf.Module()
    holder.serve = serve
    holder.weights = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], holder)
    if precision == "dynamic":
        # Dynamic-range: int8 weights, float activations; the fused LSTM keeps its op.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision != "fp32":
        raise ExportError(f"TFLite precision {precision!r} is not one of {TFLITE_PRECISIONS}")
    try:
        return converter.convert()
    except Exception as e:  # the converter raises ConverterError, ValueError, ...
        raise ExportError(f"TFLite conversion of {model.name} failed: {e}") from e


def op_counts(path) -> dict[str, int]:
    """Operator histogram of a .tflite file, read by the LiteRT interpreter itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


# op -> (recurrent kind, directions it covers)
FUSED_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("LSTM", 1),
    "BIDIRECTIONAL_SEQUENCE_LSTM": ("LSTM", 2),
    "UNIDIRECTIONAL_SEQUENCE_RNN": ("other", 1),
}
LOOP_OPS = ("WHILE", "CALL_ONCE")
