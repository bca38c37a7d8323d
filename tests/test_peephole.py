"""The peephole LSTM cell, and its export as fused LSTM ops with the peepholes patched in
(export.conversion.peephole): TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM inputs 9-11, ONNX LSTM's
input P."""

import numpy as np
import pytest

import zoo
from export.conversion import onnx as onnx_export
from export.conversion import peephole
from export.conversion import tflite as tflite_export
from export.conversion.graphs import input_infos, recurrent_directions
from export.verification.runtime import LiteRTRunner, ORTRunner
from zoo._keras import keras
from zoo.errors import ExportError, UnsupportedError
from zoo.layers import PeepholeLSTMCell

NAME = "bipeephole_activity_tiny"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_peephole_lstm(x, kernel, recurrent, bias, p):
    """The peephole equations in float64: gates i, f, c, o; p = (p_i, p_f, p_o)."""
    n = recurrent.shape[0]
    h, c = np.zeros((x.shape[0], n)), np.zeros((x.shape[0], n))
    hs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i = sigmoid(z[:, :n] + p[0] * c)
        f = sigmoid(z[:, n:2 * n] + p[1] * c)
        c = f * c + i * np.tanh(z[:, 2 * n:3 * n])
        o = sigmoid(z[:, 3 * n:] + p[2] * c)  # the new cell state
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1), h, c


@pytest.mark.parametrize("implementation", [1, 2])
def test_cell_computes_the_peephole_equations(implementation):
    rng = np.random.default_rng(0)
    rnn = keras.layers.RNN(PeepholeLSTMCell(5, implementation=implementation),
                           return_sequences=True, return_state=True)
    x = rng.normal(size=(2, 7, 3)).astype(np.float32)
    rnn(x)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in rnn.get_weights()]
    rnn.set_weights(weights)
    kernel, recurrent, bias, *p = (w.astype(np.float64) for w in weights)
    got = [t.numpy() for t in rnn(x)]
    want = numpy_peephole_lstm(x.astype(np.float64), kernel, recurrent, bias, p)
    for g, w in zip(got, want, strict=True):
        # float32 arithmetic against float64 over 7 steps: measured 2.4e-7
        np.testing.assert_allclose(g, w, atol=1e-5)
    # the peepholes matter: the same cell without them is far off
    plain = numpy_peephole_lstm(x.astype(np.float64), kernel, recurrent, bias, np.zeros((3, 5)))
    assert np.abs(got[0] - plain[0]).max() > 0.1


def test_cell_round_trips_through_its_config():
    rnn = keras.layers.RNN(PeepholeLSTMCell(4))
    copy = keras.layers.deserialize(keras.layers.serialize(rnn))
    assert isinstance(copy.cell, PeepholeLSTMCell) and copy.cell.units == 4


def random_model(seed=0):
    """The tiny model, seeded random weights and peepholes in ±2: large enough that dropping
    them moves the probabilities by 0.07 (measured; ±1 moved them by 0.008 to 0.017,
    depending on the other weights)."""
    keras.utils.set_random_seed(seed)
    model = zoo.create_model(NAME)
    rng = np.random.default_rng(seed)
    for v in peephole_variables(model):
        v.assign(rng.uniform(-2, 2, v.shape).astype(np.float32))
    return model


def peephole_variables(model):
    found = [w for w in model.weights if "gate_peephole_weights" in w.name]
    assert len(found) == 12  # 2 layers x 2 directions x 3 gates
    return found


def test_zero_peepholes_compute_the_plain_lstm():
    model = zoo.create_model(NAME)
    for v in peephole_variables(model):
        v.assign(np.zeros(v.shape, np.float32))
    plain = zoo.create_model("bilstm_activity_tiny")
    plain.set_weights([w.numpy() for w in model.weights if "gate_peephole_weights" not in w.name])
    x = np.random.default_rng(0).normal(size=(3, 20, 6)).astype(np.float32)
    # the same float32 LSTM arithmetic, the peephole terms adding exact zeros (measured 0)
    np.testing.assert_allclose(model(x).numpy(), plain(x).numpy(), atol=1e-7)


def test_registered_variants():
    model = zoo.create_model(NAME)
    assert [layer.name for layer in model.layers if layer.name.startswith("bi")] == \
        ["bipeephole_0", "bipeephole_1"]
    assert recurrent_directions(model) == {"LSTM": 4, "GRU": 0, "other": 0}
    spec = zoo.get_spec("bipeephole_activity")
    assert spec.family == "bipeephole_classifier" and spec.config()["cell"] == "peephole"
    assert "int16x8" not in spec.precisions and "int16x8" in spec.precision_gaps


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """fp32 TFLite and ONNX of the tiny model, random weights and peepholes."""
    model = random_model()
    out = tmp_path_factory.mktemp("peephole")
    paths = {}
    for fmt, convert in (("tflite", tflite_export.convert), ("onnx", onnx_export.convert)):
        paths[fmt] = out / f"fp32.{fmt}"
        paths[fmt].write_bytes(convert(model, "fp32"))
    x = [np.random.default_rng(s).normal(size=(1, 60, 6)).astype(np.float32)
         for s in range(5)]
    return model, paths, x


def run(runner_cls, path, model, x):
    runner = runner_cls(path, [i.to_json() for i in input_infos(model)])
    return np.concatenate([runner({"sequence": xi})["probs"] for xi in x])


def unpatched_tflite(path, tmp):
    """The artifact with its peephole inputs cleared: the plain twin's conversion."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    for op in m.subgraphs[0].operators:
        if len(op.inputs) == 24:
            op.inputs[9:12] = [-1, -1, -1]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    out = tmp / "unpatched.tflite"
    out.write_bytes(bytes(builder.Output()))
    return out


def unpatched_onnx(path, tmp):
    import onnx

    proto = onnx.load(str(path))
    for node in proto.graph.node:
        if node.op_type == "LSTM":
            del node.input[7:]
    out = tmp / "unpatched.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.mark.parametrize("fmt, runner_cls, fused, loop, unpatch", [
    ("tflite", LiteRTRunner, "UNIDIRECTIONAL_SEQUENCE_LSTM", "WHILE", unpatched_tflite),
    ("onnx", ORTRunner, "LSTM", "Loop", unpatched_onnx),
])
def test_fp32_artifact_is_fused_and_computes_the_peepholes(exported, tmp_path, fmt,
                                                            runner_cls, fused, loop, unpatch):
    model, paths, x = exported
    ops = (tflite_export if fmt == "tflite" else onnx_export).op_counts(paths[fmt])
    # 2 bidirectional layers: 4 fused ops in TFLite, 2 bidirectional LSTM ops in ONNX
    assert ops[fused] == (4 if fmt == "tflite" else 2) and loop not in ops
    keras_probs = model(np.concatenate(x)).numpy()
    got = run(runner_cls, paths[fmt], model, x)
    # same float32 weights, gates summed in another order (measured 6e-8 on both runtimes)
    np.testing.assert_allclose(got, keras_probs, atol=1e-5)
    # control: without the patched peepholes the artifact is the plain twin's function,
    # far from the peephole model's
    without = run(runner_cls, unpatch(paths[fmt], tmp_path), model, x)
    assert np.abs(without - keras_probs).max() > 1e-2
    twin = peephole.plain_twin(model)
    np.testing.assert_allclose(without, twin(np.concatenate(x)).numpy(), atol=1e-5)


def test_dynamic_tflite_writes_int8_peepholes_for_the_hybrid_kernel(tmp_path):
    """The tiny model's ops stay float under dynamic range (too few weights to quantize);
    a 32-unit LSTM on 32 features gets int8 weights, so the hybrid kernel runs, and it reads
    peepholes as int8 with a scale."""
    from ai_edge_litert import schema_py_generated as schema

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 32), name="sequence")
    h = keras.layers.RNN(PeepholeLSTMCell(32), name="peephole")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="probs")(h))
    rng = np.random.default_rng(0)
    for v in [w for w in model.weights if "gate_peephole_weights" in w.name]:
        v.assign(rng.uniform(-2, 2, v.shape).astype(np.float32))
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(tflite_export.convert(model, "dynamic"))
    tfl = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    (op,) = [op for op in tfl.subgraphs[0].operators if len(op.inputs) == 24]
    types = [tfl.subgraphs[0].tensors[op.inputs[i]].type for i in (0, 2, 9, 10, 11)]
    assert types == [schema.TensorType.FLOAT32] + [schema.TensorType.INT8] * 4
    x = [rng.normal(size=(1, 30, 32)).astype(np.float32) for _ in range(5)]
    keras_out = model(np.concatenate(x)).numpy()
    # int8 weights and peepholes, activations quantized per step: measured 5.5e-3 (outputs
    # up to 0.37); without the peepholes 0.22
    np.testing.assert_allclose(run(LiteRTRunner, path, model, x), keras_out, atol=2e-2)
    without = run(LiteRTRunner, unpatched_tflite(path, tmp_path), model, x)
    assert np.abs(without - keras_out).max() > 0.1


def test_patches_refuse_what_they_cannot_map(exported):
    import onnx

    model, paths, _ = exported
    patched = paths["tflite"].read_bytes()
    with pytest.raises(ExportError, match="already has peephole weights"):
        peephole.patch_tflite(patched, model)
    stranger = random_model(seed=1)  # other weights: no op holds them
    with pytest.raises(ExportError, match=r"no op holds the weights of \['bipeephole_0/forward'"):
        peephole.patch_tflite(patched, stranger)
    with pytest.raises(ExportError, match="no op holds the weights"):
        peephole.patch_onnx(onnx.load(str(paths["onnx"])), stranger)
    with pytest.raises(ExportError, match="already has peephole weights"):
        peephole.patch_onnx(onnx.load(str(paths["onnx"])), model)


def test_unfusable_peephole_cells_are_refused():
    inputs = keras.Input((None, 3), name="sequence")
    hard = keras.layers.RNN(PeepholeLSTMCell(4, recurrent_activation="hard_sigmoid"))(inputs)
    with pytest.raises(UnsupportedError, match="recurrent_activation='hard_sigmoid'"):
        peephole.plain_twin(keras.Model(inputs, hard))
    stacked = keras.layers.RNN(keras.layers.StackedRNNCells(
        [PeepholeLSTMCell(4), PeepholeLSTMCell(4)]))(inputs)
    with pytest.raises(UnsupportedError, match="StackedRNNCells"):
        peephole.plain_twin(keras.Model(inputs, stacked))


def test_pipeline_exports_and_verifies(tmp_path):
    from export import export_model

    report = export_model(NAME, tmp_path / "b", weights=None, precisions=("fp32",), limit=10)
    assert report["passed"], report["failures"]
    for r in report["results"]:
        assert r["tensor_max_abs"] <= 1e-5 and r["disagreements"] == 0
    with pytest.raises(UnsupportedError, match="int16x8.*16x8-bit not yet supported"):
        export_model(NAME, tmp_path / "c", weights=None, precisions=("int16x8",))
    assert not (tmp_path / "c").exists()


def test_int8_refuses_a_converter_that_skipped_the_peephole_step():
    """If a converter never runs the wrapped ``_quantize`` (TF 2.21's StableHLO quantizer
    path skips it), the int8 artifact would lack its peepholes: refused, not written."""
    class Converter:
        def _quantize(self, flatbuffer, *args):
            return flatbuffer

    converter = peephole.patch_before_calibration(Converter(), model=None)
    with pytest.raises(ExportError, match="did not run its _quantize step"):
        peephole.check_calibration_patched(converter)
    converter._quantize.calls = 1  # as after a conversion that ran it
    peephole.check_calibration_patched(converter)
    with pytest.raises(ExportError, match="no _quantize step"):
        peephole.patch_before_calibration(object(), model=None)
