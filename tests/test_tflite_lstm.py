"""The TFLite converter's fused LSTM clips its cell state at 10; a Keras LSTM does not.
export.conversion.tflite removes the clip, so LiteRT computes the Keras function."""

import numpy as np

from export.conversion.tflite import _FUSED_LSTMS, convert, unclip_lstm_cells
from zoo._keras import keras


def cell_climber():
    """LSTM(1) whose cell state counts the input: input and forget gates open (bias 20),
    candidate tanh(5 x) = ±1, so c climbs to +15 over 15 steps of x = +1, then falls to +5
    over 10 steps of x = -1: h = tanh(5) = 1.0. Clipped at 10, c ends at 0 and h at 0."""
    inputs = keras.Input((None, 1), name="sequence")
    lstm = keras.layers.LSTM(1, name="lstm")
    outputs = keras.layers.Activation("linear", name="h")(lstm(inputs))
    model = keras.Model(inputs, outputs)
    kernel = np.array([[0.0, 0.0, 5.0, 0.0]], np.float32)  # gates i, f, c, o
    lstm.set_weights([kernel, np.zeros((1, 4), np.float32),
                      np.array([20.0, 20.0, 0.0, 20.0], np.float32)])
    return model


SEQUENCE = np.concatenate([np.ones(15), -np.ones(10)]).astype(np.float32).reshape(1, 25, 1)


def run_litert(flatbuffer, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def cell_clips(flatbuffer):
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [op.builtinOptions.cellClip for g in model.subgraphs for op in g.operators
            if codes[op.opcodeIndex] in _FUSED_LSTMS]


def test_exported_lstm_does_not_clip_its_cell_state():
    model = cell_climber()
    x = SEQUENCE
    keras_h = model(x).numpy()
    assert float(keras_h[0, 0]) > 0.99  # c ended at 5
    flatbuffer = convert(model, "fp32")
    assert cell_clips(flatbuffer) == [0.0]
    np.testing.assert_allclose(run_litert(flatbuffer, x), keras_h, atol=1e-5)


def test_the_converter_still_clips_at_10():
    """Guards the reason for unclip_lstm_cells: if TF stops inserting the clip, this fails
    and the patch can go."""
    from export.conversion.tflite import _converter

    model = cell_climber()
    raw = _converter(model, "fp32", model.name).convert()
    assert cell_clips(raw) == [10.0]
    clipped = run_litert(raw, SEQUENCE)
    assert abs(float(clipped[0, 0])) < 0.05  # clipped at 10, c ended at 0
    assert cell_clips(unclip_lstm_cells(raw)) == [0.0]


def test_a_model_is_traced_once_for_all_precisions_and_again_when_its_weights_change(
        monkeypatch):
    from export.conversion import onnx as onnx_export
    from export.conversion import tflite

    saves, onnx_runs, runs = [], [], []
    save, from_keras = tflite._save_serving, onnx_export.tf2onnx_from_keras
    run = tflite._run
    monkeypatch.setattr(tflite, "_save_serving", lambda m: saves.append(1) or save(m))
    monkeypatch.setattr(tflite, "_run", lambda c, p, n: runs.append(p) or run(c, p, n))
    monkeypatch.setattr(onnx_export, "tf2onnx_from_keras",
                        lambda *a, **k: onnx_runs.append(1) or from_keras(*a, **k))
    import zoo

    model = zoo.create_model("bilstm_activity_tiny")  # 2 x BiLSTM(8), random weights
    x = np.random.default_rng(0).normal(size=(1, 20, 6)).astype(np.float32)
    first = convert(model, "fp32")
    convert(model, "dynamic")
    onnx_export.convert(model, "fp32")
    onnx_export.convert(model, "dynamic")
    assert len(saves) == 1 and len(onnx_runs) == 1
    # the fp32 flatbuffer is converted once: for the artifact and for int8's loop check
    assert convert(model, "fp32") == first
    convert(model, "int8", calibration=[{"sequence": x}])
    assert runs == ["fp32", "dynamic", "int8"]
    before = model.predict(x, verbose=0)
    for layer in model.layers:  # new recurrent and dense weights, as training would make
        if layer.weights and not isinstance(layer, keras.layers.Normalization):
            layer.set_weights([-w for w in layer.get_weights()])
    second = convert(model, "fp32")
    second_onnx = onnx_export.convert(model, "fp32")
    assert len(saves) == 2 and len(onnx_runs) == 2
    after = model.predict(x, verbose=0)
    assert np.abs(after - before).max() > 1e-2
    np.testing.assert_allclose(run_litert(first, x), before, atol=1e-5)
    np.testing.assert_allclose(run_litert(second, x), after, atol=1e-5)
    import onnxruntime as ort

    session = ort.InferenceSession(second_onnx, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"sequence": x})[0], after, atol=1e-5)
    # a peephole model converts a plain-LSTM twin: made (and saved) once too
    peepholes = zoo.create_model("bipeephole_activity_tiny")
    convert(peepholes, "fp32")
    convert(peepholes, "dynamic")
    assert len(saves) == 3


def test_the_public_converter_path_gives_the_same_bytes(monkeypatch):
    """The converter is built without from_saved_model's extra load where TF's private
    layout allows; where it does not, from_saved_model gives the same flatbuffer."""
    import zoo
    from export.conversion import tflite

    model = zoo.create_model("bilstm_activity_tiny")
    direct = convert(model, "dynamic")
    calls = []

    def missing(*args):
        calls.append(args)
        raise AttributeError("not in this TF")

    monkeypatch.setattr(tflite, "_direct_converter", missing)
    assert convert(model, "dynamic") == direct and len(calls) == 1
