"""The Keras 3 -> tf_keras translation (export/keras3.py).

Each supported layer is checked on a tiny Keras 3 model with random (non-default) weights:
saved as ``.keras``, translated into a tf_keras twin, and both run on the same samples;
``max|twin - keras3|`` must be <= 1e-5. Sequential and Functional, several inputs and
outputs, every Bidirectional merge mode, GRU's two bias layouts, stacked LSTMs, masking
(``mask_zero`` and ``Masking``) and a model object (not a file) are covered. The negative
tests check that a Lambda or a custom class is refused by name before anything runs, and
that broken files (not a zip, truncated, a member missing, a Keras 2 file, wrong weight
shapes) give typed errors.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import keras  # Keras 3: building the originals is the point of this module
import numpy as np
import pytest

from export.user import keras3 as k3
from zoo._keras import keras as tf_keras
from zoo.errors import ArtifactError, ParityError, UnsupportedError, UnsupportedLayerError

L = keras.layers
ATOL = 1e-5


def randomize(model: keras.Model, seed: int = 0) -> None:
    """Random weights, so that biases, gates and statistics all matter for the outputs."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if "float" not in str(v.dtype):
            continue
        a = rng.normal(0.0, 0.5, v.shape).astype("float32")
        if "variance" in v.path:  # BatchNormalization, Normalization: must be positive
            a = np.abs(a) + 0.5
        v.assign(a)


def samples(model: keras.Model, batch: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = [batch if d is None else d for d in t.shape]
        if "int" in str(t.dtype):
            xs.append(rng.integers(1, 9, shape).astype("int32"))
        else:
            xs.append(rng.normal(0.0, 1.0, shape).astype("float32"))
    return xs if len(xs) > 1 else xs[0]


def roundtrip(model: keras.Model, tmp_path: Path, x=None, from_file: bool = False):
    """Saves ``model``, translates the file, compares; returns the twin and the diffs."""
    randomize(model)
    path = tmp_path / "model.keras"
    model.save(path)
    twin = k3.to_tf_keras(path)
    x = samples(model) if x is None else x
    diffs = k3.check_twin(path if from_file else model, twin, x)
    assert max(diffs) <= ATOL
    assert isinstance(twin, tf_keras.Model)
    # The user's layer names survive (the twin's outputs are named after them).
    assert [layer.name for layer in twin.layers if not isinstance(
        layer, tf_keras.layers.InputLayer)] == [layer.name for layer in model.layers
                                                if not isinstance(layer, L.InputLayer)]
    return twin, diffs


def seq(shape, *layers):
    return keras.Sequential([keras.Input(shape), *layers])


CASES = {
    "dense": lambda: seq((4,), L.Dense(3, activation="relu"), L.Dense(2, activation="softmax")),
    "lstm": lambda: seq((5, 3), L.LSTM(4)),
    "lstm_stacked": lambda: seq((6, 3), L.LSTM(4, return_sequences=True), L.LSTM(3)),
    "lstm_backwards_unroll": lambda: seq((4, 2), L.LSTM(3, go_backwards=True, unroll=True)),
    "gru_reset_after": lambda: seq((5, 3), L.GRU(4, reset_after=True, return_sequences=True)),
    "gru_reset_before": lambda: seq((5, 3), L.GRU(4, reset_after=False)),
    "simple_rnn": lambda: seq((5, 3), L.SimpleRNN(4, return_sequences=True), L.SimpleRNN(2)),
    "bidir_gru": lambda: seq((5, 3), L.Bidirectional(L.GRU(3, reset_after=False))),
    "bidir_own_backward": lambda: seq((5, 3), L.Bidirectional(
        L.LSTM(3, return_sequences=True), backward_layer=L.GRU(
            2, return_sequences=True, go_backwards=True))),
    "time_distributed": lambda: seq((4, 3), L.TimeDistributed(L.Dense(2, activation="tanh")),
                                    L.LSTM(2)),
    "conv_lstm1d": lambda: seq((4, 6, 2), L.ConvLSTM1D(2, 3, padding="same",
                                                       return_sequences=True)),
    "conv_lstm2d": lambda: seq((3, 5, 5, 1), L.ConvLSTM2D(2, 3), L.GlobalMaxPooling2D()),
    "conv1d_pooling": lambda: seq((7, 3), L.Conv1D(4, 2, activation="elu"), L.MaxPooling1D(2),
                                  L.Conv1D(3, 2, padding="same"), L.AveragePooling1D(2),
                                  L.GlobalMaxPooling1D()),
    "conv1d_global_avg": lambda: seq((6, 3), L.Conv1D(2, 3, dilation_rate=2),
                                     L.GlobalAveragePooling1D()),
    "conv2d_pooling": lambda: seq((6, 6, 2), L.Conv2D(3, 2, strides=1), L.MaxPooling2D(),
                                  L.Conv2D(2, 1), L.AveragePooling2D(1),
                                  L.GlobalAveragePooling2D()),
    "td_conv2d": lambda: seq((3, 5, 5, 1), L.TimeDistributed(L.Conv2D(2, 3)),
                             L.TimeDistributed(L.MaxPooling2D()),
                             L.TimeDistributed(L.Flatten()), L.LSTM(2)),
    # Inference is the identity for these: the twin must not apply them either.
    "dropout_noise": lambda: seq((5, 3), L.Dropout(0.5), L.SpatialDropout1D(0.5),
                                 L.GaussianNoise(0.5), L.GaussianDropout(0.5),
                                 L.AlphaDropout(0.5), L.LSTM(3)),
    "norms": lambda: seq((5, 3), L.LayerNormalization(), L.BatchNormalization(),
                         L.LSTM(3, return_sequences=True), L.LayerNormalization(epsilon=1e-3,
                                                                                 center=False)),
    "shapes": lambda: seq((4, 3), L.Permute((2, 1)), L.Flatten(), L.RepeatVector(2),
                          L.Reshape((2, 3, 4)), L.Reshape((6, 4)), L.GRU(2)),
    "activations": lambda: seq((4,), *[L.Activation(a) for a in (
        "gelu", "silu", "selu", "softplus", "softsign", "mish", "tanh", "sigmoid")],
        L.Dense(3, activation="exponential"), L.Activation("softmax")),
    "rescaling_normalization": lambda: seq((5, 2), L.Rescaling(0.5, offset=-1.0),
                                           L.Normalization(mean=[0.2, -0.1],
                                                           variance=[2.0, 0.5]),
                                           L.LSTM(2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sequential_twin_matches(case, tmp_path):
    roundtrip(CASES[case](), tmp_path)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes(mode, tmp_path):
    inp = keras.Input((5, 3), name="seq")
    out = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=mode, name="bi")(inp)
    model = keras.Model(inp, out)
    twin, diffs = roundtrip(model, tmp_path)
    assert len(diffs) == (2 if mode is None else 1)


def test_functional_two_inputs_two_outputs(tmp_path):
    a = keras.Input((5, 3), name="a")
    b = keras.Input((5, 3), name="b")
    la = L.LSTM(4, return_sequences=True, name="enc_a")(a)
    lb = L.GRU(4, return_sequences=True, name="enc_b")(b)
    cat = L.Concatenate(name="cat")([la, lb])
    add, mul = L.Add(name="add")([la, lb]), L.Multiply(name="mul")([la, lb])
    avg, sub = L.Average(name="avg")([la, lb]), L.Subtract(name="sub")([la, lb])
    merged = L.Concatenate(axis=1, name="cat_t")([add, mul, avg, sub])
    out1 = L.Dense(2, activation="softmax", name="probs")(L.LSTM(3, name="head")(cat))
    out2 = L.GlobalAveragePooling1D(name="pooled")(merged)
    model = keras.Model([a, b], [out1, out2], name="two_by_two")
    twin, diffs = roundtrip(model, tmp_path, from_file=True)
    assert twin.output_names == ["probs", "pooled"] and len(diffs) == 2
    assert [t.name.split(":")[0] for t in twin.inputs] == ["a", "b"]


def test_lstm_return_state_and_shared_layer(tmp_path):
    inp = keras.Input((4, 2), name="x")
    seqs, h, c = L.LSTM(3, return_sequences=True, return_state=True, name="enc")(inp)
    shared = L.Dense(2, name="shared")
    model = keras.Model(inp, [shared(h), shared(c), L.LSTM(2, name="dec")(
        seqs, initial_state=[L.Dense(2, name="h0")(h), L.Dense(2, name="c0")(c)])])
    roundtrip(model, tmp_path)


def test_attention_layers(tmp_path):
    q = keras.Input((4, 6), name="q")
    v = keras.Input((5, 6), name="v")
    dot = L.Attention(name="dot")([q, v])
    scaled = L.Attention(use_scale=True, score_mode="concat", name="concat")([q, v, v])
    additive = L.AdditiveAttention(name="additive")([q, v])
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(q, v)
    mha_k = L.MultiHeadAttention(num_heads=1, key_dim=2, value_dim=3, output_shape=4,
                                 name="mha_k")(q, v, key=v)
    causal = L.Attention(name="causal")([q, q], use_causal_mask=True)
    model = keras.Model([q, v], [dot, scaled, additive, mha, mha_k, causal])
    roundtrip(model, tmp_path)


def test_embedding_mask_zero_with_padding(tmp_path):
    ids = keras.Input((6,), dtype="int32", name="ids")
    x = L.Embedding(10, 4, mask_zero=True, name="embed")(ids)
    x = L.LSTM(3, return_sequences=True, name="lstm")(x)
    x = L.Bidirectional(L.GRU(2), name="bigru")(x)
    model = keras.Model(ids, L.Dense(2, name="out")(x))
    # Post- and pre-padding: the masked steps must be skipped by both models alike.
    padded = np.array([[3, 5, 2, 0, 0, 0], [0, 0, 7, 1, 4, 9], [1, 2, 3, 4, 5, 6],
                       [8, 0, 0, 0, 0, 0]], np.int32)
    twin, _ = roundtrip(model, tmp_path, x=padded)
    # The mask matters: without it the outputs differ.
    unmasked = np.where(padded == 0, 1, padded)
    assert not np.allclose(twin(padded).numpy(), twin(unmasked).numpy())


def test_masking_layer(tmp_path):
    x = np.random.default_rng(3).normal(size=(3, 5, 2)).astype("float32")
    x[0, 3:] = 0.0
    x[2, :2] = 0.0
    roundtrip(seq((5, 2), L.Masking(0.0), L.LSTM(3, return_sequences=True), L.SimpleRNN(2)),
              tmp_path, x=x)


def test_functional_masks_and_explicit_none(tmp_path):
    # Keras 3 records the propagated masks as keras.ops nodes (NotEqual, Any) feeding
    # ``mask=``; the twin must get the same masks from tf_keras' own propagation.
    a = keras.Input((5, 2), name="a")
    ids = keras.Input((5,), dtype="int32", name="ids")
    masked = L.Masking(name="masking")(a)
    seqs = L.LSTM(3, return_sequences=True, name="lstm")(masked)
    out = L.GRU(2, name="gru")(L.Dense(3, name="dense")(seqs))  # Dense passes the mask on
    also_masked = L.LSTM(2, name="none_given")(masked, mask=None)  # Keras 3 still masks
    emb = L.SimpleRNN(2, name="rnn")(L.Embedding(10, 2, mask_zero=True, name="emb")(ids))
    model = keras.Model([a, ids], [out, also_masked, emb])
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    x[0, 3:] = 0.0
    tokens = np.array([[1, 2, 3, 4, 5], [0, 0, 3, 4, 5], [6, 7, 8, 0, 0]], np.int32)
    roundtrip(model, tmp_path, x=[x, tokens])


@pytest.mark.parametrize("merge", [L.Concatenate, L.Add])
def test_merging_masked_inputs_refused(merge, tmp_path):
    # Keras 3 merges masks with OR, tf_keras with AND (measured: the next LSTM differs by
    # 0.2): refused rather than translated wrong.
    a = keras.Input((5, 2), name="a")
    ids = keras.Input((5,), dtype="int32", name="ids")
    merged = merge(name="merged")([L.Masking(name="masking")(a), L.Embedding(
        10, 2, mask_zero=True, name="emb")(ids)])
    path = tmp_path / "merge.keras"
    keras.Model([a, ids], L.LSTM(3, name="lstm")(merged)).save(path)
    with pytest.raises(UnsupportedLayerError, match="'merged'.*merging masked inputs"):
        k3.to_tf_keras(path)


def test_adapted_normalization_and_nested_sequential(tmp_path):
    norm = L.Normalization(name="norm")
    norm.adapt(np.random.default_rng(4).normal(2.0, 3.0, (20, 5, 2)).astype("float32"))
    inner = keras.Sequential([L.Dense(3, activation="tanh"), L.Dense(2)], name="inner")
    inp = keras.Input((5, 2), name="x")
    model = keras.Model(inp, inner(L.LSTM(4, name="lstm")(norm(inp))))
    path = tmp_path / "m.keras"
    model.save(path)  # not randomized: the adapted statistics are the point
    twin = k3.to_tf_keras(path)
    assert max(k3.check_twin(model, twin, samples(model))) <= ATOL


def test_model_object_input():
    model = seq((5, 3), L.LSTM(4, return_sequences=True), L.Dense(2))
    randomize(model)
    twin = k3.to_tf_keras(model)  # saved to a temporary file, removed afterwards
    assert max(k3.check_twin(model, twin, samples(model))) <= ATOL


def test_parity_error_on_a_wrong_twin(tmp_path):
    model = seq((5, 3), L.LSTM(4))
    twin, _ = roundtrip(model, tmp_path)
    twin.layers[0].cell.bias.assign_add(np.full((16,), 0.1, np.float32))
    with pytest.raises(ParityError, match="max\\|diff\\| per output"):
        k3.check_twin(model, twin, samples(model))


# ------------------------------------------------------------------------ refusals


def test_lambda_refused_and_not_executed(tmp_path):
    marker = tmp_path / "ran.txt"

    def touch(x):
        marker.write_text("executed")
        return x

    model = seq((4,), L.Lambda(touch, name="touch"), L.Dense(2))
    path = tmp_path / "lambda.keras"
    model.save(path)
    marker.unlink()  # written when Keras 3 built the model above
    with pytest.raises(UnsupportedLayerError, match="'touch' of class 'Lambda'"):
        k3.to_tf_keras(path)
    with pytest.raises(UnsupportedLayerError, match="Lambda"):
        k3.keras3_outputs(path, np.zeros((1, 4), np.float32))
    assert not marker.exists()


@keras.saving.register_keras_serializable(package="zoo_test")
class Scale(keras.layers.Layer):
    """A Keras 3 layer of a user's own: ``x * w``."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


class TfScale(tf_keras.layers.Layer):
    """Its tf_keras version, which the user's registered translation names."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


def test_custom_layer_refused_by_name(tmp_path):
    model = seq((5, 3), L.LSTM(3, return_sequences=True), Scale(name="my_scale"))
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(UnsupportedLayerError, match="'my_scale' of class 'Scale'"):
        k3.check_layers(k3.read_config(path))


def test_custom_layer_inside_wrapper_refused(tmp_path):
    model = seq((5, 3), L.TimeDistributed(Scale(name="inner_scale")), L.LSTM(2))
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(UnsupportedLayerError, match="'inner_scale' of class 'Scale'"):
        k3.to_tf_keras(path)


def test_registered_translation_accepted(tmp_path, monkeypatch):
    from export.user import keras3_read

    monkeypatch.setattr(keras3_read, "_TRANSLATIONS", {})  # the registry the hook fills
    k3.register_translation("zoo_test>Scale", lambda entry: {
        "class_name": "TfScale", "config": {"name": entry["config"]["name"]}})
    model = seq((5, 3), L.LSTM(3, return_sequences=True), Scale(name="my_scale"))
    randomize(model)
    path = tmp_path / "custom.keras"
    model.save(path)
    twin = k3.to_tf_keras(path, custom_objects={"TfScale": TfScale})
    assert isinstance(twin.get_layer("my_scale"), TfScale)
    assert max(k3.check_twin(model, twin, samples(model))) <= ATOL


def test_keras_ops_in_the_graph_refused(tmp_path):
    a = keras.Input((3,), name="a")
    model = keras.Model(a, L.Dense(2, name="d")(keras.ops.add(a, 1.0)))
    path = tmp_path / "ops.keras"
    model.save(path)
    with pytest.raises(UnsupportedLayerError, match="keras.ops call"):
        k3.to_tf_keras(path)


def test_explicit_ops_mask_refused(tmp_path):
    # A mask the user computes with keras.ops, where tf_keras would propagate none.
    x = keras.Input((4, 2), name="x")
    mask = keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1)
    model = keras.Model(x, L.LSTM(2, name="lstm")(L.Dense(2, name="d")(x), mask=mask))
    path = tmp_path / "mask.keras"
    model.save(path)
    with pytest.raises(UnsupportedError, match="'lstm'.*explicit mask is not yet translated"):
        k3.to_tf_keras(path)


@pytest.mark.parametrize("layer, what", [
    (lambda: L.LSTM(3, recurrent_activation="hard_sigmoid"), "hard_sigmoid"),
    (lambda: L.LayerNormalization(rms_scaling=True), "rms_scaling"),
    (lambda: L.RNN(L.LSTMCell(3)), "not in the layers"),
])
def test_untranslated_layers_refused(layer, what, tmp_path):
    path = tmp_path / "m.keras"
    seq((5, 3), layer()).save(path)
    with pytest.raises(UnsupportedLayerError, match=what):
        k3.to_tf_keras(path)


# ------------------------------------------------------------------------ broken files


@pytest.fixture
def good_file(tmp_path) -> Path:
    path = tmp_path / "good.keras"
    seq((5, 3), L.LSTM(2, name="lstm"), L.Dense(1, name="out")).save(path)
    return path


def rewrite(src: Path, dst: Path, replace: dict[str, bytes | None]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = replace.get(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
    return dst


def test_not_a_zip(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_bytes(b"this is not a zip" * 10)
    with pytest.raises(ArtifactError, match="junk.keras: not a zip"):
        k3.read_config(path)


def test_truncated_zip(good_file, tmp_path):
    path = tmp_path / "cut.keras"
    path.write_bytes(good_file.read_bytes()[: good_file.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="cut.keras"):
        k3.to_tf_keras(path)


@pytest.mark.parametrize("member", ["config.json", "metadata.json", "model.weights.h5"])
def test_missing_member(good_file, tmp_path, member):
    path = rewrite(good_file, tmp_path / "missing.keras", {member: None})
    with pytest.raises(ArtifactError, match=f"no {member}"):
        k3.to_tf_keras(path)


def test_invalid_json_and_oversized_member(good_file, tmp_path, monkeypatch):
    path = rewrite(good_file, tmp_path / "bad.keras", {"config.json": b"{not json"})
    with pytest.raises(ArtifactError, match="config.json is not valid JSON"):
        k3.read_config(path)
    from export.user import keras3_read

    monkeypatch.setattr(keras3_read, "MAX_JSON_BYTES", 16)  # the cap read_config applies
    with pytest.raises(ArtifactError, match="more than the 16 bytes"):
        k3.read_config(good_file)


def test_keras2_file_refused(good_file, tmp_path):
    meta = json.dumps({"keras_version": "2.15.0", "date_saved": "x"}).encode()
    path = rewrite(good_file, tmp_path / "k2.keras", {"metadata.json": meta})
    with pytest.raises(UnsupportedError, match="a Keras 2.15.0 file; lstm-zoo reads Keras 3"):
        k3.read_config(path)


def test_wrong_weight_shape_refused(good_file, tmp_path):
    with zipfile.ZipFile(good_file) as z:
        raw = io.BytesIO(z.read("model.weights.h5"))
    with h5py.File(raw, "a") as h5:
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = np.zeros((3, 1), np.float32)
    path = rewrite(good_file, tmp_path / "shape.keras", {"model.weights.h5": raw.getvalue()})
    with pytest.raises(ArtifactError, match=r"'out'.*expected variables of shapes "
                                            r"\[\(2, 1\), \(1,\)\], found \[\(3, 1\), \(1,\)\]"):
        k3.to_tf_keras(path)


def test_a_trained_model_file_with_optimizer_state(tmp_path):
    """A compiled, fitted model saves its optimizer's slots in model.weights.h5 too: they
    are training state, not the model, and are left out (a user's file, as they save it)."""
    model = seq((5, 3), L.LSTM(4), L.Dense(2, activation="softmax"))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32")
    model.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    path = tmp_path / "trained.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5"))) as h5:
        assert "optimizer" in h5  # the case this test is about
    twin = k3.to_tf_keras(path)
    assert max(k3.check_twin(path, twin, x)) <= ATOL
