"""The round-trip matrix: every supported layer, built in tf_keras and in Keras 3, exported
through the pipeline and verified on LiteRT and ONNX Runtime at fp32 within 1e-5 of the
ORIGINAL model's outputs (Keras 3's own, for a Keras 3 model).

The layers are grouped into a few models (one export each) so that the matrix stays a
minute of CI; each group is built by the same function from either Keras, with random
non-default weights, so biases, gates and statistics all matter.
"""

from __future__ import annotations

import json

import keras as keras3  # Keras 3: building the originals is the point of this module
import numpy as np
import pytest

from export.user.pipeline import export_keras
from zoo._keras import keras as tf_keras

KERAS = {"tf_keras": tf_keras, "keras3": keras3}


def classifier_head(K, h, n=3):
    return K.layers.Dense(n, activation="softmax", name="probs")(h)


def conv_lstm_classifier(K):
    L = K.layers
    x = K.Input((12, 4), name="x")
    h = L.Conv1D(6, 3, padding="same", activation="relu")(x)
    h = L.MaxPooling1D(2)(h)
    h = L.LSTM(8, return_sequences=True)(h)
    h = L.LayerNormalization()(h)
    h = L.Dropout(0.3)(h)
    h = L.GlobalAveragePooling1D()(h)
    h = L.Activation("tanh")(h)
    return K.Model(x, classifier_head(K, h), name="conv_lstm")


def bidirectional_merges(K):
    L = K.layers
    x = K.Input((None, 5), name="x")
    branches = [L.Bidirectional(L.LSTM(4), merge_mode=m)(x) for m in ("sum", "mul", "ave")]
    concat = L.Bidirectional(L.LSTM(4), merge_mode="concat")(x)
    fwd, bwd = L.Bidirectional(L.LSTM(4), merge_mode=None)(x)
    h = L.Add()([branches[0], fwd])
    h = L.Multiply()([h, branches[1]])
    h = L.Average()([h, branches[2], bwd])
    h = L.Subtract()([h, branches[0]])
    h = L.Concatenate()([h, concat])
    return K.Model(x, classifier_head(K, h), name="bidirectional")


def gru_family(K):
    L = K.layers
    x = K.Input((10, 3), name="x")
    h = L.GRU(6, return_sequences=True)(x)
    h = L.GRU(5, return_sequences=True, reset_after=False)(h)
    h = L.BatchNormalization()(h)
    h = L.AveragePooling1D(2)(h)
    h = L.SimpleRNN(4, return_sequences=True)(h)
    h = L.GlobalMaxPooling1D()(h)
    return K.Model(x, classifier_head(K, h), name="gru_family")


def shapes_and_scaling(K):
    L = K.layers
    x = K.Input((6, 4), name="x")
    h = L.Rescaling(0.5, offset=0.1)(x)
    h = L.Normalization(mean=[0.1, 0.2, 0.3, 0.4], variance=[1.0, 2.0, 0.5, 1.5])(h)
    h = L.TimeDistributed(L.Dense(3))(h)
    h = L.Permute((2, 1))(h)
    h = L.Reshape((6, 3))(h)
    h = L.LSTM(5)(h)
    h = L.RepeatVector(4)(h)
    h = L.LSTM(3, return_sequences=True)(h)
    h = L.Flatten()(h)
    return K.Model(x, L.Dense(2, name="value")(h), name="shapes")


def attention(K):
    L = K.layers
    x = K.Input((7, 4), name="x")
    seq = L.LSTM(8, return_sequences=True)(x)
    a = L.Attention()([seq, seq])
    b = L.AdditiveAttention()([seq, seq])
    c = L.MultiHeadAttention(num_heads=2, key_dim=4)(seq, seq)
    h = L.Concatenate()([a, b, c])
    h = L.GlobalAveragePooling1D()(h)
    return K.Model(x, classifier_head(K, h), name="attention")


def conv_lstm_2d(K):
    L = K.layers
    x = K.Input((3, 8, 8, 1), name="frames")
    h = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True)(x)
    h = L.TimeDistributed(L.Conv2D(2, 3, padding="same"))(h)
    h = L.TimeDistributed(L.MaxPooling2D(2))(h)
    h = L.TimeDistributed(L.AveragePooling2D(2))(h)
    h = L.TimeDistributed(L.GlobalMaxPooling2D())(h)
    h = L.LSTM(4)(h)
    return K.Model(x, classifier_head(K, h), name="conv_lstm_2d")


def conv_lstm_1d(K):
    L = K.layers
    x = K.Input((4, 10, 2), name="x")
    h = L.ConvLSTM1D(3, 3, padding="same")(x)
    h = L.Conv1D(2, 3)(h)
    h = L.GlobalAveragePooling1D()(h)
    return K.Model(x, classifier_head(K, h), name="conv_lstm_1d")


def embedding_and_noise(K):
    L = K.layers
    x = K.Input((None,), name="ids", dtype="int32")
    h = L.Embedding(30, 6)(x)
    h = L.SpatialDropout1D(0.2)(h)
    h = L.GaussianNoise(0.3)(h)
    h = L.GaussianDropout(0.2)(h)
    h = L.AlphaDropout(0.1)(h)
    h = L.LSTM(6)(h)
    return K.Model(x, classifier_head(K, h, 4), name="embedding")


GROUPS = [conv_lstm_classifier, bidirectional_merges, gru_family, shapes_and_scaling,
          attention, conv_lstm_2d, conv_lstm_1d, embedding_and_noise]


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "float" not in str(v.dtype):
            continue
        a = rng.normal(0.0, 0.5, tuple(v.shape)).astype("float32")
        if "variance" in v.name:  # BatchNormalization's moving variance: must be positive
            a = np.abs(a) + 0.5
        v.assign(a)


def samples_for(model, n=16, seed=1):
    rng = np.random.default_rng(seed)
    out = {}
    for t, name in zip(model.inputs, [i.name.split(":")[0] for i in model.inputs],
                       strict=True):
        shape = [n] + [7 if d is None else d for d in t.shape[1:]]
        if "int" in str(t.dtype):
            out[name] = rng.integers(0, 30, shape).astype("int32")
        else:
            out[name] = rng.normal(0.0, 1.0, shape).astype("float32")
    return next(iter(out.values()))


@pytest.mark.parametrize("version", list(KERAS))
@pytest.mark.parametrize("build", GROUPS, ids=[g.__name__ for g in GROUPS])
def test_every_layer_round_trips(tmp_path, version, build):
    model = build(KERAS[version])
    randomize(model)
    source = model
    if version == "keras3":  # a user's file, as they save it
        source = tmp_path / f"{model.name}.keras"
        model.save(source)
    x = samples_for(model)
    parity = export_keras(source, tmp_path / "b", samples=x, precisions="fp32")
    assert parity["passed"], parity["failures"]
    results = {r["format"]: r for r in parity["results"]}
    assert set(results) == {"tflite", "onnx"}
    for r in results.values():
        # against the ORIGINAL model's outputs: Keras 3's own, for a Keras 3 model
        assert r["metrics"]["max_abs_vs_original"] <= 1e-5, (r["format"], r["metrics"])
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["source"]["origin"].startswith("Keras 3" if version == "keras3"
                                                   else "tf_keras")
    for a in manifest["artifacts"]:
        assert a["as_expected"], a  # the loops, if any, are the ones inspect predicted
        assert not any(op.startswith("Flex") for op in a["ops"]), a["ops"]


@pytest.mark.parametrize("version", list(KERAS))
def test_lstm_models_become_fused_ops_in_both_formats(tmp_path, version):
    K = KERAS[version]
    L = K.layers
    x = K.Input((None, 4), name="x")
    h = L.Bidirectional(L.LSTM(6, return_sequences=True))(x)
    h = L.LSTM(6, return_sequences=True)(h)
    h = L.LSTM(6)(h)
    model = K.Model(x, classifier_head(K, h))
    randomize(model)
    parity = export_keras(model, tmp_path / "b", samples=samples_for(model),
                          precisions="fp32,dynamic")
    assert parity["passed"], parity["failures"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    for a in manifest["artifacts"]:
        assert a["all_fused"] and not a["loops"], (a["format"], a["ops"])
        assert a["fused_directions"]["LSTM"] == 4


@pytest.mark.parametrize("version", list(KERAS))
def test_a_masked_sentiment_bilstm_exports_fused(tmp_path, version):
    K = KERAS[version]
    L = K.layers
    x = K.Input((None,), name="ids", dtype="int32")
    h = L.Embedding(40, 8, mask_zero=True)(x)
    h = L.Bidirectional(L.LSTM(6))(h)
    model = K.Model(x, L.Dense(1, activation="sigmoid", name="positive")(h))
    randomize(model)
    rng = np.random.default_rng(2)
    ids = np.zeros((16, 10), "int32")
    for i, n in enumerate(rng.integers(2, 11, 16)):
        ids[i, :n] = rng.integers(1, 40, n)
    source = model
    if version == "keras3":
        source = tmp_path / "sentiment.keras"
        model.save(source)
    parity = export_keras(source, tmp_path / "b", samples=ids, precisions="fp32")
    assert parity["passed"], parity["failures"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "own length" in manifest["source"]["mask"]
    for a in manifest["artifacts"]:
        assert a["all_fused"] and not a["loops"], (a["format"], a["ops"])
    for r in parity["results"]:
        assert r["metrics"]["max_abs_vs_original"] <= 1e-5


@pytest.mark.parametrize("version", list(KERAS))
def test_a_stateful_streaming_model(tmp_path, version):
    K = KERAS[version]
    L = K.layers
    model = K.Sequential([K.Input((None, 4), batch_size=1, name="frames"),
                          L.LSTM(6, stateful=True, return_sequences=True),
                          L.LSTM(5, stateful=True),
                          L.Dense(3, activation="softmax", name="probs")])
    randomize(model)
    source = model
    if version == "keras3":
        source = tmp_path / "stream.keras"
        model.save(source)
    xs = np.random.default_rng(3).normal(size=(16, 9, 4)).astype("float32")
    parity = export_keras(source, tmp_path / "b", samples=xs, precisions="fp32")
    assert parity["passed"], parity["failures"]
    graphs = {a["graph"] for a in
              json.loads((tmp_path / "b" / "manifest.json").read_text())["artifacts"]}
    assert graphs == {"model", "step"}
    for r in parity["results"]:  # the step graph, streamed, against the original
        assert r["metrics"]["max_abs_vs_original"] <= 1e-5


@pytest.mark.parametrize("version", list(KERAS))
def test_the_keras_tutorial_encoder_decoder(tmp_path, version):
    """keras.io's character-level seq2seq: the encoder's return_state initialises the
    decoder; exported as the encoder and a decoder step graph, teacher-forced."""
    K = KERAS[version]
    L = K.layers
    encoder_inputs = K.Input((None, 7), name="encoder_inputs")
    decoder_inputs = K.Input((None, 9), name="decoder_inputs")
    _, h, c = L.LSTM(12, return_state=True, name="encoder")(encoder_inputs)
    y, _, _ = L.LSTM(12, return_sequences=True, return_state=True, name="decoder")(
        decoder_inputs, initial_state=[h, c])
    model = K.Model([encoder_inputs, decoder_inputs],
                    L.Dense(9, activation="softmax", name="probs")(y))
    randomize(model)
    source = model
    if version == "keras3":
        source = tmp_path / "seq2seq.keras"
        model.save(source)
    rng = np.random.default_rng(4)
    x = {"encoder_inputs": rng.normal(size=(16, 6, 7)).astype("float32"),
         "decoder_inputs": rng.normal(size=(16, 5, 9)).astype("float32")}
    parity = export_keras(source, tmp_path / "b", samples=x, precisions="fp32")
    assert parity["passed"], parity["failures"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    arts = {(a["graph"], a["format"]): a for a in manifest["artifacts"]}
    assert set(arts) == {(g, f) for g in ("encoder", "step") for f in ("tflite", "onnx")}
    assert arts["encoder", "onnx"]["all_fused"]
    assert "no final cell state" in arts["encoder", "tflite"]["loop_reason"]
    for r in parity["results"]:  # decoded step by step on the device path
        assert r["metrics"]["max_abs_vs_original"] <= 1e-5


@pytest.mark.parametrize("version", list(KERAS))
def test_a_stacked_lstm_forecaster_scored_on_labels(tmp_path, version):
    K = KERAS[version]
    L = K.layers
    x = K.Input((24, 1), name="history")
    h = L.LSTM(8, return_sequences=True)(x)
    h = L.LSTM(8)(h)
    model = K.Model(x, L.Dense(6, name="next_6")(h))
    randomize(model)
    rng = np.random.default_rng(5)
    series = np.cumsum(rng.normal(size=(16, 30)), axis=1).astype("float32")
    history, future = series[:, :24, None], series[:, 24:]
    parity = export_keras(model, tmp_path / "b", samples=history, labels=future,
                          metric="mae", precisions="fp32,dynamic")
    assert parity["passed"], parity["failures"]
    assert "mae" in parity["reference"]["metrics"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    for a in manifest["artifacts"]:
        assert a["all_fused"], (a["format"], a["ops"])
