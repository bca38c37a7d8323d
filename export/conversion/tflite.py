"""Keras graph -> .tflite, from a static batch-1 signature.

A ``None`` batch fails for stacked or bidirectional LSTMs (``tf.TensorListReserve
requires element_shape to be static``); batch 1 converts every recurrent layer and
keeps the time axis dynamic for the fused LSTM op (../shared/FINDINGS.md).
"""

from __future__ import annotations

from export.conversion.graphs import conversion_source, serving_function
from zoo._keras import tf
from zoo.errors import ExportError, UnsupportedError, ZooError


def convert(model, precision: str, calibration: list[dict] | None = None) -> bytes:
    """Converts a Keras graph model at ``precision`` (see :mod:`export.compression.quantize`).

    Args:
        model: a Keras graph model.
        precision: one of ``FORMAT_PRECISIONS["tflite"]``.
        calibration: graph feeds (``{input name: array}``, batch 1) for int8 / int16x8.

    Raises:
        UnsupportedError: the converter refuses the precision for an op of the graph.
        ExportError: any other conversion failure.
    """
    from export.compression.quantize import CALIBRATED, FORMAT_PRECISIONS

    if precision not in FORMAT_PRECISIONS["tflite"]:
        raise ExportError(f"TFLite precision {precision!r} is not one of "
                          f"{FORMAT_PRECISIONS['tflite']}")
    from export.conversion import peephole

    # Peephole LSTMs: convert the plain-LSTM twin, which fuses, and write the peepholes
    # into its fused ops (before calibration when there is one).
    peepholes = peephole.has_peepholes(model)
    source = (conversion_source(model, "plain-twin", lambda: peephole.plain_twin(model))
              if peepholes else model)
    if precision in CALIBRATED:
        _refuse_loops(source, precision, model.name)
    if precision == "fp32":
        flatbuffer = _float_flatbuffer(source, model.name)
        if peepholes:
            flatbuffer = peephole.patch_tflite(flatbuffer, model)
        return _finish(flatbuffer)
    converter = _converter(source, precision, model.name)
    # dynamic: int8 weights, float activations; the fused LSTM keeps its op.
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if precision in CALIBRATED:
        if not calibration:
            raise ExportError(f"TFLite {precision} needs calibration feeds; got none")
        # Dicts keyed by input name: a list would be fed in the interpreter's input
        # order, which is not the graph's (it broke the 4-input decoder step).
        converter.representative_dataset = lambda: (dict(f) for f in calibration)
        ops = tf.lite.OpsSet
        # Strict op sets: an op that cannot take the precision is an error, not a
        # silent float fallback (16x8 with a float fallback left every fused LSTM in
        # float: 556 KB for a 540 KB fp32 model, measured).
        converter.target_spec.supported_ops = [
            ops.TFLITE_BUILTINS_INT8 if precision == "int8"
            else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if peepholes:
            peephole.patch_before_calibration(converter, model)
    flatbuffer = _run(converter, precision, model.name)
    if peepholes and precision in CALIBRATED:
        peephole.check_calibration_patched(converter)
    elif peepholes:
        flatbuffer = peephole.patch_tflite(flatbuffer, model)
    return _finish(flatbuffer)


def _finish(flatbuffer: bytes) -> bytes:
    """What every converted graph gets: cells unclipped, repeated inputs' projections
    hoisted out of float LSTMs (:mod:`export.conversion.tflite_hoist`)."""
    from export.conversion.tflite_hoist import hoist_repeated_inputs

    return hoist_repeated_inputs(unclip_lstm_cells(flatbuffer))[0]


# TFLite builtin operator codes of the fused LSTM ops (schema.fbs).
_FUSED_LSTMS = {16: "LSTM", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM",
                52: "BIDIRECTIONAL_SEQUENCE_LSTM"}


def unclip_lstm_cells(flatbuffer: bytes) -> bytes:
    """Sets ``cell_clip`` of every fused LSTM op to 0 (no clipping).

    The converter's Keras-LSTM fusion hard-codes ``cell_clip = 10`` (TF's
    ``lstm_utils.cc``: ``builder_.getF32FloatAttr(10.0)``), but a Keras LSTM never clips
    its cell state: wherever |c| exceeds 10 the artifact computes another function.
    Measured on an 8-unit MNIST-rows model whose cell state reached 12.5: LiteRT
    differed from Keras by 3.9e-2 with clipping (reference kernels too) and 5.4e-7
    without; a float64 NumPy LSTM agreed with Keras and ONNX Runtime to 2.5e-7.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    changed = 0
    for graph in model.subgraphs:
        for op in graph.operators:
            options = op.builtinOptions
            if codes[op.opcodeIndex] in _FUSED_LSTMS and getattr(options, "cellClip", 0.0):
                options.cellClip = 0.0
                changed += 1
    if not changed:
        return flatbuffer
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _float_flatbuffer(model, name: str) -> bytes:
    """The fp32 conversion, once per model (and weights): the fp32 artifact and the loop
    check before calibration (:func:`_refuse_loops`) are the same graph (2.6 s of a tiny
    classifier's three-precision export converted it a second time, measured)."""

    def convert() -> bytes:
        return _run(_converter(model, "fp32", name), "fp32", name)

    return conversion_source(model, "tflite-fp32", convert)


def _run(converter, precision: str, name: str) -> bytes:
    """``converter.convert()``, its failures as typed errors."""
    from export.compression.quantize import unsupported_by_converter

    try:
        return converter.convert()
    except ZooError:  # the peephole patch's own, raised inside the converter
        raise
    except Exception as e:  # the converter raises ConverterError, ValueError, RuntimeError
        refused = unsupported_by_converter(str(e))
        if refused is not None:
            raise refused from None
        raise ExportError(f"TFLite {precision} conversion of {name} failed: {e}") from e


def _converter(model, precision: str, name: str):
    """A converter over the model's batch-1 serving function, saved as a SavedModel once
    per model (and weights): the path ``from_concrete_functions`` takes, without tracing
    and saving again for every precision. Failures to trace, save or load the SavedModel
    raise :class:`ExportError` naming ``precision`` and ``name``."""
    try:
        saved = conversion_source(model, "tflite-savedmodel", lambda: _save_serving(model))
        key = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
        try:
            converter = _direct_converter(saved.name, key)
        except (ImportError, AttributeError, TypeError):  # another TF's private layout
            converter = tf.lite.TFLiteConverter.from_saved_model(saved.name,
                                                                 signature_keys=[key])
    except Exception as e:  # tracing, saving or loading the SavedModel
        raise ExportError(f"TFLite {precision} conversion of {name} failed: {e}") from e
    # convert() reads the directory again: it must outlive the cache entry
    converter._lstm_zoo_saved_model = saved
    return converter


def _direct_converter(directory: str, key: str):
    """What ``from_saved_model`` builds, without the full ``tf.saved_model.load`` it does
    first only to list the signatures (0.45-0.7 s per conversion of bilstm_activity,
    measured; ``convert()`` imports the directory itself). The same flatbuffer, byte for
    byte, once the conversion metadata's model type is set. TF's private API: raises
    AttributeError (or ImportError, TypeError) where this TF lays it out otherwise."""
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as meta
    from tensorflow.lite.python import lite

    lite.TFLiteConverterBase._set_original_model_type(meta.ModelType.TF_SAVED_MODEL)
    converter = lite.TFLiteSavedModelConverterV2(directory, {tf.saved_model.SERVING}, [key])
    if not converter.saved_model_dir:  # it could not import the directory itself
        raise AttributeError("this converter cannot import the SavedModel directly")
    return converter


def _save_serving(model):
    """The model's serving function as a SavedModel in a temporary directory, saved as
    ``from_concrete_functions`` saves it. The directory is removed when the returned object
    is dropped: when the model is, or its weights change and it is saved again (a process
    killed before then leaves it in the temporary folder)."""
    import tempfile

    serve = serving_function(model, batch=1)
    # Given the Keras model, tf_keras would serialise every layer's call functions (15 s
    # for bilstm_activity); a bare module holding just the serving function and the
    # variables saves the same fused graph in 1.5 s.
    holder = tf.Module()
    holder.serve = serve
    holder.weights = list(model.variables)
    saved = tempfile.TemporaryDirectory(prefix="lstm-zoo-tflite-")
    tf.saved_model.save(holder, saved.name, signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serve.get_concrete_function()},
        options=tf.saved_model.SaveOptions(save_debug_info=True))
    return saved


def _refuse_loops(model, precision: str, name: str) -> None:
    """Calibrating a graph with a WHILE loop kills the process (SIGSEGV inside the
    TFLite calibrator, TF 2.21, ../shared/FINDINGS.md): refuse before calibrating."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "float.tflite"
        path.write_bytes(_float_flatbuffer(model, name))
        loops = {op: n for op, n in op_counts(path).items() if op in LOOP_OPS}
    if loops:
        raise UnsupportedError(
            f"{name}: TFLite {precision} needs calibration, and calibrating a graph "
            f"with loops {loops} crashes the TFLite calibrator (TF 2.21); its recurrent "
            "layers are not fused (GRU, masks, return_state and ConvLSTM2D become WHILE)")


def op_counts(path) -> dict[str, int]:
    """Operator histogram of a .tflite file, read by the LiteRT interpreter itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


# Matrices (rank >= 2) of at least this many elements count as weights for sparsity:
# small enough for the tiny test models, large enough to skip shape-like constants.
MIN_WEIGHT_ELEMENTS = 16


def weight_sparsity(path) -> dict:
    """Zeros among the constant weight matrices stored in a .tflite file (float32,
    float16 or int8; a quantized zero is its zero point)."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    from export.conversion.tflite_hoist import MARK

    model = schema.ModelT.InitFromPackedBuf(open(path, "rb").read(), 0)
    dtypes = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16,
              schema.TensorType.INT8: np.int8}
    arrays = []
    for graph in model.subgraphs:
        for t in graph.tensors:
            data = model.buffers[t.buffer].data
            if data is None or t.type not in dtypes or len(t.shape) < 2:
                continue
            if MARK in (t.name or b"").decode(errors="replace"):
                continue  # the zero input and weights the hoisting left: not weights
            a = np.frombuffer(data.tobytes(), dtypes[t.type]).reshape(t.shape)
            zp = np.zeros(1, np.int64)
            if t.quantization is not None and t.quantization.zeroPoint is not None:
                zp = np.asarray(t.quantization.zeroPoint)
                if zp.size > 1:  # per-channel: one zero point along the quantized axis
                    shape = [1] * a.ndim
                    shape[t.quantization.quantizedDimension] = zp.size
                    zp = zp.reshape(shape)
            arrays.append((a, zp))
    return sparsity_of(arrays)


def sparsity_of(arrays, min_size: int = MIN_WEIGHT_ELEMENTS) -> dict:
    """``{"weights", "zeros", "sparsity"}`` over ``(array, zero point)`` pairs."""
    import numpy as np

    zeros = total = 0
    for a, zp in arrays:
        if a.size >= min_size:
            zeros += int(np.count_nonzero(a == zp))
            total += a.size
    return {"weights": total, "zeros": zeros, "sparsity": zeros / total if total else 0.0}


# op -> (recurrent kind, directions it covers)
FUSED_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("LSTM", 1),
    "BIDIRECTIONAL_SEQUENCE_LSTM": ("LSTM", 2),
    "UNIDIRECTIONAL_SEQUENCE_RNN": ("other", 1),
}
LOOP_OPS = ("WHILE", "CALL_ONCE")
