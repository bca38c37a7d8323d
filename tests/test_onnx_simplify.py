"""The ONNX recurrent-glue rewrites change no output, and touch only what they can prove:
hand-built LSTM/GRU graphs (the shapes tf2onnx writes) run on ORT before and after."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.conversion.onnx_simplify import simplify_recurrent

T, D, H = 5, 3, 4
INT_MAX = 2**31 - 1


def build(op="LSTM", direction="forward", take=(("last", 0),), state="zeros",
          sequence_lens=False, layout=0):
    """x (T, B, D) -> op -> for each (time, direction) in ``take``: Y[time, direction]
    (B, H) cut out by Slice + Squeeze (direction first, as tf2onnx does), concatenated."""
    rng = np.random.default_rng(0)
    dirs = 2 if direction == "bidirectional" else 1
    gates = 4 if op == "LSTM" else 3
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    const("W", rng.normal(size=(dirs, gates * H, D)).astype(np.float32))
    const("R", rng.normal(size=(dirs, gates * H, H)).astype(np.float32))
    const("B", rng.normal(size=(dirs, 2 * gates * H)).astype(np.float32))
    inputs = [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", "T", D] if layout else ["T", "N", D])]
    if state == "none":
        h0 = ""
    elif state == "input":
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [dirs, "N", H]))
        h0 = "h0"
    else:  # the batch's zero (or one) state built at run time, as tf2onnx writes it
        nodes += [helper.make_node("Shape", ["x"], ["shape"]),
                  helper.make_node("Slice", ["shape", const("one", [1]), const("two", [2])],
                                   ["batch"]),
                  helper.make_node("Concat", [const("dirs", [dirs]), "batch",
                                              const("units", [H])], ["state_shape"], axis=0),
                  helper.make_node("Expand", [const("fill", np.float32(
                      0.0 if state == "zeros" else 1.0)), "state_shape"], ["h0"])]
        h0 = "h0"
    lens = ""
    if sequence_lens:
        inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, ["N"]))
        lens = "lens"
    nodes.append(helper.make_node(op, ["x", "W", "R", "B", lens, h0], ["Y", "Y_h"],
                                  hidden_size=H, direction=direction, layout=layout))
    const("zero", [0])
    const("first_axis", [1])
    parts = []
    for k, (when, d) in enumerate(take):
        nodes += [helper.make_node("Slice", ["Y", const(f"d{k}", [d]), const(f"e{k}", [d + 1]),
                                             "first_axis"], [f"dir{k}"]),
                  helper.make_node("Squeeze", [f"dir{k}", "first_axis"], [f"seq{k}"])]
        start, end = (-1, INT_MAX) if when == "last" else (when, when + 1)
        nodes += [helper.make_node("Slice", [f"seq{k}", const(f"s{k}", [start]),
                                             const(f"t{k}", [end]), "zero"], [f"step{k}"]),
                  helper.make_node("Squeeze", [f"step{k}", "zero"], [f"part{k}"])]
        parts.append(f"part{k}")
    nodes.append(helper.make_node("Concat", parts, ["out"], axis=1))
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", "C"])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def run(model, batch):
    rng = np.random.default_rng(batch)
    feeds = {"x": rng.normal(size=(T, batch, D)).astype(np.float32)}
    names = {i.name for i in model.graph.input}
    if "h0" in names:
        dirs = next(t.dims[0] for t in model.graph.initializer if t.name == "W")
        feeds["h0"] = rng.normal(size=(dirs, batch, H)).astype(np.float32)
    if "lens" in names:
        feeds["lens"] = rng.integers(1, T + 1, size=batch).astype(np.int32)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def simplified(model):
    before = [run(model, b) for b in (1, 3)]
    changed = simplify_recurrent(model.graph)
    onnx.checker.check_model(model)
    for b, expected in zip((1, 3), before, strict=True):
        np.testing.assert_array_equal(run(model, b), expected)  # the same kernels: exact
    return changed, [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_final_steps_and_zero_state_of_a_forward_layer(op):
    changed, ops = simplified(build(op))
    assert changed == {"zero_states": 1, "final_steps": 1, "directions_merged": 0,
                       "matmuls_unflattened": 0, "nodes_removed": 7}
    assert ops == [op, "Gather", "Concat"]


def test_bidirectional_final_steps_are_the_forward_last_and_the_backward_first():
    changed, ops = simplified(build(direction="bidirectional",
                                    take=(("last", 0), (0, 1))))
    assert changed["final_steps"] == 2 and ops == ["LSTM", "Gather", "Gather", "Concat"]
    # a reverse layer's final step is its first row too
    changed, ops = simplified(build(direction="reverse", take=((0, 0),)))
    assert changed["final_steps"] == 1 and "Slice" not in ops


@pytest.mark.parametrize("direction, take", [
    ("forward", ((0, 0),)),  # the first step of a forward layer is not its final state
    ("forward", ((2, 0),)),
    ("bidirectional", (("last", 1),)),  # the backward direction's last row: its first step
])
def test_other_steps_are_left_to_the_slices(direction, take):
    changed, ops = simplified(build(direction=direction, take=take))
    assert changed["final_steps"] == 0 and "Slice" in ops and "Gather" not in ops


def test_a_state_that_is_not_zero_is_kept():
    changed, ops = simplified(build(state="ones"))
    assert changed["zero_states"] == 0 and "Expand" in ops
    changed, _ = simplified(build(state="input"))
    assert changed["zero_states"] == 0


def test_sequence_lengths_keep_the_slices():
    """With sequence_lens, Y_h is each sequence's own last step and Y's last row is
    zeros for a shorter one: not interchangeable."""
    changed, ops = simplified(build(sequence_lens=True))
    assert changed["final_steps"] == 0 and "Slice" in ops


def test_a_batch_major_layer_is_left_alone():
    """layout=1: Y is (batch, time, directions, hidden); a chain that would pick a final
    step in the time-major reading picks something else here. (ORT 1.31 refuses to run
    batch-major recurrent ops, so only the graph is checked.)"""
    model = build(state="none", layout=1)
    assert simplify_recurrent(model.graph)["final_steps"] == 0
    assert "Slice" in [n.op_type for n in model.graph.node]


def stacked(negative_axes=False):
    """Two forward LSTMs as tf2onnx writes them (the direction axis squeezed without a
    Slice), neither naming Y_h; the output concatenates both final steps."""
    rng = np.random.default_rng(1)
    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    time_axis, dir_axis = ([-3], [-3]) if negative_axes else ([0], [1])
    nodes = []
    source = "x"
    for k, width in enumerate((D, H)):
        const(f"W{k}", rng.normal(size=(1, 4 * H, width)).astype(np.float32))
        const(f"R{k}", rng.normal(size=(1, 4 * H, H)).astype(np.float32))
        nodes += [helper.make_node("LSTM", [source, f"W{k}", f"R{k}"], [f"Y{k}"],
                                   hidden_size=H),
                  helper.make_node("Squeeze", [f"Y{k}", const(f"dir{k}", dir_axis)],
                                   [f"seq{k}"]),
                  helper.make_node("Slice", [f"seq{k}", const(f"s{k}", [-1]),
                                             const(f"e{k}", [INT_MAX]),
                                             const(f"t{k}", time_axis)], [f"step{k}"]),
                  helper.make_node("Squeeze", [f"step{k}", const(f"a{k}", [0])],
                                   [f"final{k}"])]
        source = f"seq{k}"
    nodes.append(helper.make_node("Concat", ["final0", "final1"], ["out"], axis=1))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", D])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", "C"]),
         helper.make_tensor_value_info("seq0", TensorProto.FLOAT, ["T", "N", H])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("negative_axes", [False, True])
def test_stacked_layers_without_named_final_states(negative_axes):
    """Both layers are rewritten (the second after the first changed the graph), Y_h gets
    a name, and seq0, a graph output besides the second layer's input, stays."""
    changed, ops = simplified(stacked(negative_axes))
    assert changed["final_steps"] == 2
    assert ops.count("Gather") == 2 and "Slice" not in ops and ops.count("Squeeze") == 1


def test_a_state_concatenated_from_a_non_zero_part_is_kept():
    model = build(direction="bidirectional", take=(("last", 0), (0, 1)))
    graph = model.graph
    concat = next(n for n in graph.node if n.op_type == "Concat" and n.output[0] == "state_shape")
    # the state becomes Concat(zeros (1, N, H), ones (1, N, H)) along directions
    graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "one_dir"))
    graph.initializer.append(numpy_helper.from_array(np.float32(1.0), "one_value"))
    concat.input[0] = "one_dir"
    at = [n.output[0] for n in graph.node].index("h0")
    graph.node.insert(at + 1, helper.make_node("Expand", ["one_value", "state_shape"], ["h1"]))
    graph.node.insert(at + 2, helper.make_node("Concat", ["h0", "h1"], ["h01"], axis=0))
    lstm = next(n for n in graph.node if n.op_type == "LSTM")
    lstm.input[5] = "h01"
    changed, ops = simplified(model)
    assert changed["zero_states"] == 0 and "Expand" in ops


def test_an_initializer_that_can_be_fed_is_not_a_constant():
    """IR 3 style: an initializer also listed as a graph input is only a default."""
    model = build()
    model.graph.input.append(helper.make_tensor_value_info("fill", TensorProto.FLOAT, []))
    changed, ops = simplified(model)
    assert changed["zero_states"] == 0 and "Expand" in ops


C = 6  # classes of the sequence head


def head(order=(0, 1), batch_major=True, lead_of_x=False):
    """x (T, N, D) -> bidirectional LSTM -> each direction of Y cut out (Slice + Squeeze)
    and concatenated in ``order`` -> (batch-major: Transpose to (N, T, 2H)) -> a Dense
    layer over every step as tf2onnx writes Tensordot: Reshape to (N*T, 2H) by shapes
    computed at run time, MatMul, Reshape back (to x's leading dims: ``lead_of_x``)."""
    rng = np.random.default_rng(2)
    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    const("W", rng.normal(size=(2, 4 * H, D)).astype(np.float32))
    const("R", rng.normal(size=(2, 4 * H, H)).astype(np.float32))
    const("K", rng.normal(size=(2 * H, C)).astype(np.float32))
    const("one", [1])
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=H,
                              direction="bidirectional")]
    for d in order:
        nodes += [helper.make_node("Slice", ["Y", const(f"s{d}", [d]), const(f"e{d}", [d + 1]),
                                             "one"], [f"dir{d}"]),
                  helper.make_node("Squeeze", [f"dir{d}", "one"], [f"seq{d}"])]
    nodes.append(helper.make_node("Concat", [f"seq{d}" for d in order], ["both"], axis=2))
    x, perm = "both", [0, 1, 2]
    if batch_major:
        nodes.append(helper.make_node("Transpose", ["both"], ["by_batch"], perm=[1, 0, 2]))
        x, perm = "by_batch", [1, 0, 2]
    nodes += [
        helper.make_node("Shape", ["both"], ["shape_raw"]),
        helper.make_node("Gather", ["shape_raw", const("perm", perm)], ["shape64"]),
        helper.make_node("Cast", ["shape64"], ["shape"], to=TensorProto.INT32),
        helper.make_node("Gather", ["shape", const("free", np.array([0, 1], np.int32))],
                         ["lead"], axis=0),
        helper.make_node("ReduceProd", ["lead"], ["rows"], axes=[0], keepdims=0),
        helper.make_node("Gather", ["shape", const("axes", np.array([2], np.int32))],
                         ["inner"], axis=0),
        helper.make_node("ReduceProd", ["inner"], ["cols"], axes=[0], keepdims=0),
        helper.make_node("Unsqueeze", ["rows", const("zero", [0])], ["rows1"]),
        helper.make_node("Unsqueeze", ["cols", "zero"], ["cols1"]),
        helper.make_node("Concat", ["rows1", "cols1"], ["flat32"], axis=0),
        helper.make_node("Cast", ["flat32"], ["flat"], to=TensorProto.INT64),
        helper.make_node("Reshape", [x, "flat"], ["x2"]),
        helper.make_node("MatMul", ["x2", "K"], ["logits2"]),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "perm"], ["x_shape64"]),
        helper.make_node("Cast", ["x_shape64"], ["x_shape32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["x_shape32", "free"], ["x_lead"], axis=0),
        helper.make_node("Concat", ["x_lead" if lead_of_x else "lead",
                                    const("classes", np.array([C], np.int32))],
                         ["out_shape32"], axis=0),
        helper.make_node("Cast", ["out_shape32"], ["out_shape"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["logits2", "out_shape"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", D])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["A", "B", C])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def test_a_sequence_head_becomes_one_transpose_and_a_matmul():
    """Both directions read by one Transpose of Y (batch-major straight away) and a
    Reshape; the Dense layer multiplies the (N, T, 2H) tensor directly. Exactly the
    same outputs (the same kernels), at batch 1 and 3."""
    changed, ops = simplified(head())
    assert changed["directions_merged"] == 1 and changed["matmuls_unflattened"] == 1
    assert ops == ["LSTM", "Transpose", "Reshape", "MatMul"]


def test_a_time_major_head_keeps_its_flattening():
    """The directions merge (Y's own axes: (0, 2, 1, 3)); the Dense layer's input is the
    Concat's output, whose rank nothing here proves (only a Transpose's output has one),
    so its Reshape / MatMul / Reshape stay."""
    changed, ops = simplified(head(batch_major=False))
    assert changed["directions_merged"] == 1 and changed["matmuls_unflattened"] == 0
    assert ops[:3] == ["LSTM", "Transpose", "Reshape"] and "Concat" in ops


def test_directions_in_another_order_are_left_to_the_concat():
    """Backward first is not Y's order: the slices stay (the head is still unflattened)."""
    changed, ops = simplified(head(order=(1, 0)))
    assert changed["directions_merged"] == 0 and ops.count("Slice") == 2
    assert changed["matmuls_unflattened"] == 1


def test_a_flattening_shape_read_off_another_tensor_is_kept():
    """x's (T, N) are the same numbers at run time, but nothing in the graph says so:
    the Reshape / MatMul / Reshape stay."""
    changed, ops = simplified(head(lead_of_x=True))
    assert changed["matmuls_unflattened"] == 0 and ops.count("Reshape") >= 2
