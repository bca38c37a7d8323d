"""export.conversion.tflite_hoist: a decoder LSTM fed RepeatVector(z) gets ``W z + b`` as its gate
biases, computed once, instead of ``W z`` at every step; LiteRT runs the rewritten graph
and it computes what Keras and the graph before the rewrite compute."""

import numpy as np
import pytest

import export.conversion.tflite_hoist
from export.conversion.tflite import convert, weight_sparsity
from export.conversion.tflite_hoist import hoist_repeated_inputs
from zoo._keras import keras

STEPS = 6


def repeat_decoder(width=5, units=8):
    """sequence (1, 6, 3) -> LSTM(width) -> RepeatVector(6) -> LSTM(units) -> Dense(2),
    random weights and biases (so the hoisted biases are not zero)."""
    inputs = keras.Input((STEPS, 3), name="sequence")
    z = keras.layers.LSTM(width, name="encoder")(inputs)
    repeated = keras.layers.RepeatVector(STEPS, name="repeat")(z)
    y = keras.layers.LSTM(units, return_sequences=True, name="decoder")(repeated)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(y))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return model


def ops(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    names = [op["op_name"] for op in Interpreter(model_content=flatbuffer)._get_ops_details()]
    return {n: names.count(n) for n in set(names)}


def run(flatbuffer, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    out = []
    for _ in range(2):  # twice: the runner resets the state variables between calls
        interpreter.reset_all_variables()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        out.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(out[0], out[1])
    return out[0]


@pytest.fixture(scope="module")
def model():
    return repeat_decoder()


@pytest.fixture(scope="module")
def plain(model):
    """The fp32 and float16 flatbuffers without the rewrite."""
    patch = pytest.MonkeyPatch()
    patch.setattr(export.conversion.tflite_hoist, "hoist_repeated_inputs", lambda fb: (fb, 0))
    try:
        return {p: convert(model, p) for p in ("fp32", "float16")}
    finally:
        patch.undo()


# float16 weights round to 11 significant bits, compounded over 12 LSTM steps
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-5), ("float16", 2e-2)])
def test_the_repeated_input_is_projected_once(model, plain, precision, atol):
    hoisted = convert(model, precision)
    before, after = ops(plain[precision]), ops(hoisted)
    assert before.get("TILE") == 1 and "TILE" not in after
    # one FULLY_CONNECTED per gate, beside the Dense head's
    assert after["FULLY_CONNECTED"] == before["FULLY_CONNECTED"] + 4
    assert after["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 2
    x = np.random.default_rng(1).normal(size=(1, STEPS, 3)).astype(np.float32)
    expected = model(x).numpy()
    np.testing.assert_allclose(run(hoisted, x), expected, atol=atol)
    # and the same function as before the rewrite, to float32 rounding
    np.testing.assert_allclose(run(hoisted, x), run(plain[precision], x), atol=2e-6)


def test_the_rewrite_adds_no_weights(model, plain, tmp_path):
    """The gates' FULLY_CONNECTED ops read the LSTM's own weight tensors; the zero input
    and weights the LSTM reads instead are not counted as weights."""
    (tmp_path / "plain.tflite").write_bytes(plain["fp32"])
    (tmp_path / "hoisted.tflite").write_bytes(convert(model, "fp32"))
    assert weight_sparsity(tmp_path / "hoisted.tflite") == weight_sparsity(
        tmp_path / "plain.tflite")


def test_int8_weights_are_left_alone(model):
    """Dynamic range: the hybrid kernel's int8 products are cheap and the rewrite measured
    slower, so the TILE stays where the decoder's weights are int8. The converter leaves
    matrices under 1,024 values float, and those are rewritten like fp32's."""
    assert "TILE" not in ops(convert(model, "dynamic"))  # 8 x 5 input weights: float
    assert ops(convert(repeat_decoder(width=40, units=40), "dynamic")).get("TILE") == 1


def test_an_lstm_over_a_real_sequence_is_left_alone(plain):
    """The encoder reads the input sequence, not a repeated vector; a graph whose only
    repeated-input LSTM was rewritten already has nothing left to rewrite."""
    hoisted, count = hoist_repeated_inputs(plain["fp32"])
    assert count == 1
    again, count = hoist_repeated_inputs(hoisted)
    assert count == 0 and again is hoisted


def test_a_layer_norm_lstm_is_left_alone(plain):
    """A layer-norm LSTM normalizes the gates' products before it adds the bias, so the
    input's product cannot move into the bias: an op with layer-norm weights is not
    rewritten."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(plain["fp32"]), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    lstms = [op for op in model.subgraphs[0].operators if codes[op.opcodeIndex] == 44]
    decoder = lstms[-1]
    inputs = list(decoder.inputs) + [-1] * (24 - len(decoder.inputs))
    inputs[21] = inputs[13]  # forget-gate layer-norm coefficients: any (8,) float tensor
    decoder.inputs = inputs
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    layer_norm = bytes(builder.Output())
    assert hoist_repeated_inputs(layer_norm) == (layer_norm, 0)
    assert hoist_repeated_inputs(plain["fp32"])[1] == 1  # the same graph without: rewritten
