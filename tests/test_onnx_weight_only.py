"""ONNX dynamic quantization stores Conv weights as int8 that ORT folds back to float at load
(``export.conversion.onnx.weight_only_conv``): hand-built Conv graphs run on ORT before and
after."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.conversion.onnx import weight_only_conv

C_IN, C_OUT, K = 3, 5, 3


def build(weight_as_input=False):
    """x (1, C_IN, 8, 8) -> Conv(w, b) -> Relu -> Conv(w2) -> Conv(w, b) -> y: the first
    Conv's weights used again by the third (as unrolled steps share theirs)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(C_OUT, C_IN, K, K)).astype(np.float32)
    w[1] = 0  # a channel with no weights: its scale must not be 0
    w[2] *= 1e-3  # a channel far smaller than the others: per-channel scales keep it
    w2 = rng.normal(size=(C_IN, C_OUT, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(rng.normal(size=C_OUT).astype(np.float32), "b")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C_IN, 8, 8])]
    if weight_as_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["c2"]),
             helper.make_node("Conv", ["c2", "w", "b"], ["y"], pads=[1, 1, 1, 1])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C_OUT, 8, 8])
    graph = helper.make_graph(nodes, "g", inputs, [output], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), w


def run(model, feeds, optimized=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if optimized:
        options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_weights_are_int8_per_channel_and_give_the_float_answer():
    model, w = build()
    x = np.random.default_rng(1).normal(size=(1, C_IN, 8, 8)).astype(np.float32)
    expected = run(model, {"x": x})
    assert weight_only_conv(model.graph) == 2  # "w" once though two Convs read it, "w2"
    onnx.checker.check_model(model)
    stored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    q, scale = stored["w/weight_only/int8"], stored["w/weight_only/scale"]
    assert "w" not in stored and q.dtype == np.int8 and scale.shape == (C_OUT, 1, 1, 1)
    assert stored["w2/weight_only/int8"].dtype == np.int8 and stored["b"].dtype == np.float32
    # symmetric per output channel: each channel's largest weight is +-127 ...
    assert np.all(np.abs(q).reshape(C_OUT, -1).max(axis=1)[[0, 2, 3, 4]] == 127)
    # ... so each weight is within half a step of its float value, the tiny channel too
    restored = q * scale
    scale = scale.reshape(-1)
    assert np.all(np.abs(restored - w) <= scale.reshape(-1, 1, 1, 1) / 2 * (1 + 1e-6))
    assert np.all(restored[1] == 0) and scale[1] == 1.0
    got = run(model, {"x": x})
    # 8-bit weights through two convolutions: a relative error of a few 1/254 steps
    np.testing.assert_allclose(got, expected, atol=0.02 * np.abs(expected).max())
    assert not np.array_equal(got, expected)  # the weights did change


def test_ort_folds_the_restore_at_load(tmp_path):
    """The Cast + Mul pairs are constant-folded when the session is built, so the Convs
    run on float constants (the speed of the fp32 graph), not on a restore per call."""
    model, _ = build()
    weight_only_conv(model.graph)
    optimized = tmp_path / "optimized.onnx"
    run(model, {"x": np.zeros((1, C_IN, 8, 8), np.float32)}, optimized)
    ops = [n.op_type for n in onnx.load(str(optimized)).graph.node]
    assert "Cast" not in ops and "Mul" not in ops, ops


def test_weights_fed_at_run_time_are_left_alone():
    model, _ = build(weight_as_input=True)
    assert weight_only_conv(model.graph) == 1  # only w2
    assert {i.name for i in model.graph.initializer} == {
        "w2/weight_only/int8", "w2/weight_only/scale", "b"}


def test_an_initializer_that_is_also_an_input_is_left_alone():
    """Older IRs list initializers among the inputs, as defaults a caller may feed."""
    model, w = build()
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT,
                                                           list(w.shape)))
    assert weight_only_conv(model.graph) == 1  # only w2
    assert "w" in {i.name for i in model.graph.initializer}


def test_sparsity_counts_the_int8_weights_not_their_scales(tmp_path):
    from export.conversion.onnx import weight_sparsity

    model, _ = build()
    onnx.save(model, str(tmp_path / "float.onnx"))
    weight_only_conv(model.graph)
    onnx.save(model, str(tmp_path / "int8.onnx"))
    before, after = weight_sparsity(tmp_path / "float.onnx"), weight_sparsity(
        tmp_path / "int8.onnx")
    assert after["weights"] == before["weights"]
    assert after["zeros"] >= before["zeros"] == C_IN * K * K  # channel 1; rounding adds zeros


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT16, TensorProto.DOUBLE])
def test_other_weight_types_are_left_alone(dtype):
    model, _ = build()
    for init in model.graph.initializer:
        if init.name in ("w", "w2"):
            init.CopyFrom(helper.make_tensor(init.name, dtype, init.dims,
                                             numpy_helper.to_array(init).ravel().tolist()))
    assert weight_only_conv(model.graph) == 0
    assert not any(n.op_type == "Cast" for n in model.graph.node)
