"""Structured pruning: whole hidden units removed from LSTM/GRU layers and their consumers."""

import json
from dataclasses import replace

import numpy as np
import pytest

import zoo
from export import export_model
from export.compression.structured import shrink
from export.pipeline import verify_bundle
from zoo import registry
from zoo._keras import keras
from zoo.errors import UnsupportedError

BILSTM = "bilstm_activity_tiny"
G2P = "seq2seq_g2p_tiny"


def _cells(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            yield layer.forward_layer
            yield layer.backward_layer
        elif isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            yield layer


def _silence(model, dense=()):
    """Makes every odd hidden unit of every recurrent layer (and every odd output of the
    ``dense`` layers) exactly zero for any input: all weights into the unit are zero, so
    its gates sit at sigmoid(0) with a zero candidate and its state never leaves 0."""
    for rnn in _cells(model):
        n = rnn.units
        odd = np.arange(1, n, 2)
        gates = rnn.cell.kernel.shape[-1] // n
        cols = np.concatenate([g * n + odd for g in range(gates)])
        kernel, recurrent, *bias = [w.numpy() for w in rnn.cell.weights]
        kernel[:, cols] = 0
        recurrent[:, cols] = 0
        recurrent[odd] = 0
        for b in bias:
            b[..., cols] = 0
        rnn.cell.set_weights([kernel, recurrent, *bias])
    for name in dense:
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        kernel[:, 1::2] = 0
        bias[1::2] = 0
        layer.set_weights([kernel, bias])


def _random_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) if w.ndim else w
                       for w in model.get_weights()])


def test_removing_silent_units_keeps_the_classifier_output():
    model, config = zoo.registry.build_model(BILSTM)
    _random_weights(model)
    model.get_layer("normalize").set_weights([np.zeros((6,)), np.ones((6,)), np.array(1)])
    _silence(model)
    small, overrides, report = shrink(BILSTM, model, 0.5, config)
    assert overrides == {"units": (4, 4)}
    assert report["units"] == {f"bilstm_{i}:{d}": [8, 4] for i in (0, 1)
                               for d in ("forward", "backward")}
    x = np.random.default_rng(1).standard_normal((3, 20, 6)).astype(np.float32)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-6)
    assert small.count_params() < model.count_params() / 2


def test_removing_silent_units_keeps_the_seq2seq_output():
    # The decoder's initial state comes from Dense "h" and "c", which must lose the same
    # units as the decoder; "combine" is a Dense of decoder width read by the projection.
    model, config = zoo.registry.build_model(G2P)
    _random_weights(model)
    _silence(model, dense=("h", "c", "combine"))
    small, overrides, report = shrink(G2P, model, 0.5, config)
    assert overrides == {"encoder_units": 4, "decoder_units": 8}
    assert report["units"]["decoder:h"] == [16, 8]
    rng = np.random.default_rng(2)
    src, tgt = rng.integers(3, 20, (2, 7)), rng.integers(3, 30, (2, 5))
    np.testing.assert_allclose(small([src, tgt]).numpy(), model([src, tgt]).numpy(),
                               atol=1e-5)
    # The decoder step graph of the small model is built from its own (smaller) layers.
    step = zoo.graphs.graph_models(zoo.get_spec(G2P), small)["decoder_step"]
    assert step.get_layer("decoder_cell").units == 8


def test_gru_and_plain_lstm_layers_shrink(monkeypatch):
    def builder(*, units=8, kind="gru"):
        inputs = keras.Input((None, 5), name="x")
        layer = keras.layers.GRU if kind == "gru" else keras.layers.LSTM
        x = layer(units, return_sequences=True, name="rnn_0")(inputs)
        x = layer(units, name="rnn_1")(x)
        return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))

    spec = replace(zoo.get_spec(BILSTM), name="gru_test", builder=builder, defaults={},
                   shrink=lambda config, f: {"units": registry.fewer_units(config["units"], f)})
    monkeypatch.setitem(registry._REGISTRY, "gru_test", spec)
    for kind in ("gru", "lstm"):
        model = builder(kind=kind)
        _random_weights(model)
        _silence(model)
        small, overrides, _ = shrink("gru_test", model, 0.5, {"units": 8, "kind": kind})
        assert overrides == {"units": 4}
        x = np.random.default_rng(3).standard_normal((2, 9, 5)).astype(np.float32)
        np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-6)


def test_the_most_important_units_are_kept():
    model, config = zoo.registry.build_model(BILSTM)
    _random_weights(model)
    cell = model.get_layer("bilstm_1").forward_layer.cell
    kernel = cell.kernel.numpy()
    kernel[:, 8 * 2 + 5] = 50.0  # unit 5's candidate gate column dominates
    cell.kernel.assign(kernel)
    small, _, _ = shrink(BILSTM, model, 0.875, config)  # one unit per direction left
    kept = small.get_layer("bilstm_1").forward_layer.cell.kernel.numpy()
    assert kept.shape[-1] == 4  # one unit x four gates
    np.testing.assert_array_equal(kept[:, 2], 50.0)  # unit 5's candidate column survived


@pytest.mark.parametrize("fraction", [0, 1, -0.2, 1.5, "half"])
def test_bad_fraction_is_a_typed_error(fraction):
    model, config = zoo.registry.build_model(BILSTM)
    with pytest.raises(UnsupportedError, match="fraction"):
        shrink(BILSTM, model, fraction, config)


def test_model_without_shrink_rule_is_refused(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, BILSTM, replace(zoo.get_spec(BILSTM), shrink=None))
    model, config = zoo.registry.build_model(BILSTM)
    with pytest.raises(UnsupportedError, match="ModelSpec.shrink"):
        shrink(BILSTM, model, 0.5, config)


def test_conv1d_after_a_recurrent_layer_loses_the_removed_input_channels(monkeypatch):
    def builder(*, units=8):
        inputs = keras.Input((None, 5))
        x = keras.layers.LSTM(units, return_sequences=True, name="rnn")(inputs)
        x = keras.layers.Conv1D(4, 3, name="conv")(x)
        return keras.Model(inputs, x)

    spec = replace(zoo.get_spec(BILSTM), name="conv_test", builder=builder, defaults={},
                   shrink=lambda config, f: {"units": registry.fewer_units(config["units"], f)})
    monkeypatch.setitem(registry._REGISTRY, "conv_test", spec)
    big = builder()
    small, _, report = shrink("conv_test", big, 0.5, {"units": 8})
    assert report["units"] == {"rnn:h": [8, 4]}
    conv_big = big.get_layer("conv").get_weights()
    conv_small = small.get_layer("conv").get_weights()
    assert conv_small[0].shape == (3, 4, 4) and np.array_equal(conv_small[1], conv_big[1])
    # every kept input channel is one of the big kernel's, unchanged
    for c in range(4):
        assert any(np.array_equal(conv_small[0][:, c], conv_big[0][:, j]) for j in range(8))


def test_layer_without_slicing_rule_is_refused(monkeypatch):
    def builder(*, units=8):
        inputs = keras.Input((None, 5))
        x = keras.layers.LSTM(units, return_sequences=True, name="rnn")(inputs)
        x = keras.layers.SimpleRNN(4, name="simple")(x)
        return keras.Model(inputs, x)

    spec = replace(zoo.get_spec(BILSTM), name="rnn_test", builder=builder, defaults={},
                   shrink=lambda config, f: {"units": registry.fewer_units(config["units"], f)})
    monkeypatch.setitem(registry._REGISTRY, "rnn_test", spec)
    with pytest.raises(UnsupportedError, match="no rule for layer 'simple' \\(SimpleRNN\\)"):
        shrink("rnn_test", builder(), 0.5, {"units": 8})


def test_structured_export_is_smaller_fused_and_reverifies(tmp_path, tiny_weights):
    out = tmp_path / "b"
    parity = export_model(BILSTM, out, weights=tiny_weights[BILSTM], structured=0.5,
                          finetune_epochs=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reference"]["config"]["units"] == [4, 4]
    assert manifest["compression"]["structured"]["units"]["bilstm_0:forward"] == [8, 4]
    assert all(a["all_fused"] for a in manifest["artifacts"])
    import onnx

    onnx_fp32 = onnx.load(out / "fp32" / "classifier.onnx")
    sizes = {a.i for n in onnx_fp32.graph.node if n.op_type == "LSTM"
             for a in n.attribute if a.name == "hidden_size"}
    assert sizes == {4}
    assert parity["passed"] and verify_bundle(out)["passed"]


def test_structured_with_bad_fraction_leaves_no_bundle(tmp_path):
    with pytest.raises(UnsupportedError, match="fraction"):
        export_model(BILSTM, tmp_path / "b", weights=None, structured=1.0)
    assert list(tmp_path.iterdir()) == []
