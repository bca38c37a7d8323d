"""Quantization-aware training for the layers tfmot's QAT refuses (export/qat.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.compression.qat import fake_quant, snap_into, wrap
from zoo._keras import keras
from zoo.errors import UnsupportedError
from zoo.layers import LuongAttention


def test_fake_quant_gives_each_gate_its_own_symmetric_int8_grid():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 12)).astype(np.float32)
    w[:, 3:6] *= 10  # one gate with a far larger range than the others
    q = fake_quant(w, blocks=4).numpy()
    for block, original in zip(np.split(q, 4, axis=1), np.split(w, 4, axis=1), strict=True):
        scale = np.abs(original).max() / 127
        levels = block / scale
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
        assert np.abs(levels).max() == pytest.approx(127, abs=1e-3)  # narrow range, symmetric
        # a per-tensor scale would have wiped out the small gates: here the error is at
        # most half a step of the gate's own scale
        assert np.abs(block - original).max() <= scale / 2 + 1e-7
    per_channel = fake_quant(w, per_channel=True).numpy()
    for j in range(w.shape[1]):
        step = np.abs(w[:, j]).max() / 127
        assert np.abs(per_channel[:, j] - w[:, j]).max() <= step / 2 + 1e-7


def test_fake_quant_keeps_zeros_and_passes_gradients_straight_through():
    import tensorflow as tf

    w = tf.Variable(np.array([[0.0, 0.3, -0.7, 0.05]], np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fake_quant(w, keep_zeros=True) * tf.constant([[1., 2., 3., 4.]]))
    grad = tape.gradient(loss, w).numpy()
    np.testing.assert_array_equal(grad, [[0.0, 2.0, 3.0, 4.0]])  # pruned zero: no gradient


def _models():
    """One small model per layer type with a QAT rule: name -> (model, input array)."""
    rng = np.random.default_rng(1)
    seq = rng.normal(size=(8, 5, 3)).astype(np.float32)
    out = {}

    def head(x):
        return keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))

    for name, make in {
        "lstm": lambda: keras.layers.LSTM(4, return_sequences=True),
        "gru": lambda: keras.layers.GRU(4, return_sequences=True),
        "bidirectional_lstm": lambda: keras.layers.Bidirectional(
            keras.layers.LSTM(4, return_sequences=True)),
        "bidirectional_gru": lambda: keras.layers.Bidirectional(
            keras.layers.GRU(4, return_sequences=True)),
        "time_distributed_dense": lambda: keras.layers.TimeDistributed(keras.layers.Dense(4)),
    }.items():
        inp = keras.Input((5, 3))
        out[name] = (keras.Model(inp, head(make()(inp))), seq)
    inp = keras.Input((3, 4, 4, 1))
    x = keras.layers.ConvLSTM2D(2, 3, padding="same")(inp)
    out["conv_lstm_2d"] = (keras.Model(inp, head(x)),
                           rng.normal(size=(8, 3, 4, 4, 1)).astype(np.float32))
    tokens = keras.Input((5,), dtype="int32")
    emb = keras.layers.Embedding(7, 4)(tokens)
    seq_out = keras.layers.LSTM(4, return_sequences=True)(emb)
    attended = LuongAttention(name="attention")([seq_out, seq_out])
    out["embedding_attention"] = (keras.Model(tokens, head(attended)),
                                  rng.integers(0, 7, size=(8, 5)).astype(np.int32))
    return out


@pytest.mark.parametrize("kind", sorted(_models()))
def test_qat_trains_every_layer_type_and_snaps_onto_what_it_trained(kind):
    """The wrapped model trains through fake-quantized weights; the snapped copy in the
    original architecture computes exactly what the QAT model computes."""
    model, x = _models()[kind]
    y = np.random.default_rng(2).normal(size=(len(x), 2)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    clone, wrapped = wrap(model)
    clone.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    clone.fit(x, y, epochs=3, batch_size=4, verbose=0)
    qat_out = clone.predict(x, verbose=0)
    fresh = keras.models.clone_model(model)
    snap_into(fresh, wrapped)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), qat_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([b.ravel() for b in before]),
                                  np.concatenate([w.ravel() for w in model.get_weights()]))
    changed = [not np.allclose(a, b) for a, b in
               zip(before, fresh.get_weights(), strict=True) if a.ndim >= 2]
    assert all(changed), "every kernel was trained (and snapped)"
    assert set(wrapped) == {layer.name for layer in model.layers if layer.trainable_weights}


def test_a_layer_without_a_qat_rule_is_refused_by_name():
    inp = keras.Input((5, 3))
    x = keras.layers.SimpleRNN(4, name="plain_rnn")(inp)
    with pytest.raises(UnsupportedError, match=r"no QAT rule for layer 'plain_rnn' \(SimpleRNN"):
        wrap(keras.Model(inp, keras.layers.Dense(2)(x)))
    inp = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.SimpleRNN(4), name="bi_rnn")(inp)
    with pytest.raises(UnsupportedError, match="SimpleRNN inside Bidirectional"):
        wrap(keras.Model(inp, x))


def test_qat_after_pruning_keeps_the_zeros():
    import zoo
    from export.compression.prune import compress, keras_sparsity

    model = zoo.create_model("bilstm_activity_tiny", weights=None)
    out, report = compress("bilstm_activity_tiny", model, prune=0.5, qat=True, epochs=1,
                           limit=64)
    assert report["qat"]["keep_zeros"] is True
    assert keras_sparsity(out) >= report["keras_sparsity"] - 1e-9 >= 0.45
    assert report["qat"]["max_levels_per_gate"] <= 255


def test_qat_is_refused_without_int8_or_with_clustering(tmp_path):
    from export import export_model

    with pytest.raises(UnsupportedError, match="request precision int8"):
        export_model("bilstm_activity_tiny", tmp_path / "a", weights=None, qat=True,
                     precisions="fp32,dynamic")
    with pytest.raises(UnsupportedError, match="qat cannot follow cluster"):
        export_model("bilstm_activity_tiny", tmp_path / "b", weights=None, qat=True,
                     cluster=8, precisions="int8")
    assert not list(tmp_path.iterdir())


def _tflite_int8_matrices(path):
    """Dequantized int8 constant matrices of a .tflite file."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(open(path, "rb").read(), 0)
    out = []
    for graph in model.subgraphs:
        for t in graph.tensors:
            data = model.buffers[t.buffer].data
            if data is None or t.type != schema.TensorType.INT8 or len(t.shape) != 2:
                continue
            q = np.frombuffer(data.tobytes(), np.int8).reshape(t.shape).astype(np.float64)
            scale = np.asarray(t.quantization.scale, np.float64)
            out.append(q * (scale[:, None] if scale.size > 1 else scale))
    return out


def test_qat_export_is_int8_fused_and_its_lstm_weights_quantize_exactly(tmp_path):
    """End to end: QAT, snap, full-int8 conversion. The int8 LSTM gate matrices in the
    .tflite dequantize to the snapped Keras weights (same grid), the fused op is kept, and
    the bundle re-verifies from disk."""
    from export import export_model, verify_bundle
    from export.conversion.tflite import op_counts
    from zoo import create_model

    out = tmp_path / "qat"
    parity = export_model("bilstm_activity_tiny", out, weights=None, qat=True,
                          precisions="int8", formats="tflite", finetune_epochs=1,
                          finetune_limit=64)
    assert parity["passed"], parity
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["compression"]["qat"]["layers"] == ["bilstm_0", "bilstm_1", "probs"]
    [artifact] = [a for a in manifest["artifacts"] if a["precision"] == "int8"]
    path = out / artifact["file"]
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in op_counts(path) or \
        "BIDIRECTIONAL_SEQUENCE_LSTM" in op_counts(path)
    model = create_model("bilstm_activity_tiny", weights=out / "reference.weights.h5")
    gates = [block.T for layer in ("bilstm_0", "bilstm_1")
             for w in model.get_layer(layer).weights if w.shape.rank == 2
             for block in np.split(w.numpy(), 4, axis=1)]
    stored = _tflite_int8_matrices(path)
    for gate in gates:
        diffs = [np.abs(s - gate).max() for s in stored if s.shape == gate.shape]
        step = np.abs(gate).max() / 127
        assert diffs and min(diffs) < 1e-3 * step, "each gate is stored on its QAT grid"
    assert verify_bundle(out)["passed"]


def test_activation_fake_quant_on_lstm_outputs_does_not_convert():
    """Why activations are calibrated instead of trained: with tfmot's activation
    quantizer on the recurrent outputs (the usual QAT), the converter refuses dynamic and
    int8 (TF 2.21). If this starts converting, activation QAT becomes worth revisiting."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    import export.compression.qat as qat_mod
    import zoo
    from export.conversion.tflite import _converter

    weights_only = qat_mod._config_class()

    class WithOutputs(weights_only):
        def get_output_quantizers(self, layer):
            return [tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    model = zoo.create_model("bilstm_activity_tiny", weights=None)
    original = qat_mod._config_class
    qat_mod._config_class = lambda: WithOutputs
    try:
        clone, _ = wrap(model)
    finally:
        qat_mod._config_class = original
    converter = _converter(clone, "int8", clone.name)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with pytest.raises(Exception, match="cannot duplicate the value since it's not constant"):
        converter.convert()
