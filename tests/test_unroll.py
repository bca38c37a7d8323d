"""Unrolled TFLite artifacts for a user's model over a fixed, short time axis: which models
qualify, that the faster artifact is the one kept (both timed, both recorded), and that a
GRU, a WHILE loop when fused, becomes loop-free and int8-convertible when unrolled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.conversion.unroll import MARGIN, MAX_STEPS, unroll_steps, unrolled_twin
from export.pipeline import verify_bundle
from export.user.pipeline import export_keras
from export.verification.runtime import load_bundle
from zoo._keras import keras
from zoo.errors import UnsupportedError

L = keras.layers


def classifier(steps, rnn):
    x = keras.Input((steps, 3), name="x")
    return keras.Model(x, L.Dense(2, activation="softmax", name="probs")(rnn(x)))


@pytest.mark.parametrize("steps, rnn, expected", [
    (8, lambda: L.LSTM(4), 8),
    (8, lambda: L.Bidirectional(L.GRU(4)), 8),
    (MAX_STEPS, lambda: L.SimpleRNN(4), MAX_STEPS),
    (MAX_STEPS + 1, lambda: L.LSTM(4), None),  # too long: the file grows with each step
    (None, lambda: L.LSTM(4), None),  # a free time axis cannot be written out
    (8, lambda: L.Dense(4), None),  # nothing recurrent
])
def test_which_models_unroll(steps, rnn, expected):
    model = classifier(steps, rnn())
    assert unroll_steps(model) == expected
    twin = unrolled_twin(model)
    assert (twin is None) == (expected is None)
    if twin is not None:  # the same function
        x = np.random.default_rng(0).standard_normal((2, steps, 3)).astype("float32")
        np.testing.assert_allclose(twin(x).numpy(), model(x).numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def gru_bundle(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = classifier(8, L.GRU(8, name="gru"))
    x = np.random.default_rng(1).standard_normal((16, 8, 3)).astype("float32")
    out = tmp_path_factory.mktemp("unroll") / "gru"
    return model, x, out, export_keras(model, out, samples=x, formats="tflite",
                                       precisions="fp32,int8")


def test_a_fixed_length_gru_unrolls_into_a_loop_free_int8_artifact(gru_bundle):
    model, x, out, parity = gru_bundle
    assert parity["passed"], parity["failures"]
    artifacts = {a["precision"]: a for a in
                 json.loads((out / "manifest.json").read_text())["artifacts"]}
    # int8 of the fused graph (a WHILE loop) is refused by the converter: only unrolled
    int8 = artifacts["int8"]
    assert int8["unroll"]["chosen"] == "unrolled"
    assert int8["unroll"]["fused"].startswith("refused:")
    assert not int8["loops"] and int8["as_expected"]
    # fp32: both timed, the faster kept by the stated margin, the artifact as chosen
    fp32 = artifacts["fp32"]["unroll"]
    assert fp32["fused_us"] > 0 and fp32["unrolled_us"] > 0
    assert fp32["chosen"] == ("unrolled" if fp32["ratio"] <= MARGIN else "fused")
    assert bool(artifacts["fp32"]["loops"]) == (fp32["chosen"] == "fused")
    again = verify_bundle(out)  # the unrolled artifacts re-checked from disk
    assert again["passed"], again["failures"]
    got = np.stack(load_bundle(out).predict(list(x[:4]), backend="litert"))
    np.testing.assert_allclose(got, model.predict(x[:4], verbose=0), atol=1e-5)


def test_unroll_never_keeps_the_fused_graph(tmp_path):
    model = classifier(8, L.GRU(4))
    x = np.random.default_rng(1).standard_normal((16, 8, 3)).astype("float32")
    with pytest.raises(UnsupportedError, match="calibrating a graph with loops"):
        export_keras(model, tmp_path / "never", samples=x, formats="tflite",
                     precisions="int8", unroll="never")
    with pytest.raises(UnsupportedError, match="unroll must be 'auto' or 'never'"):
        export_keras(model, tmp_path / "bad", samples=x, unroll="always")
    assert not list(tmp_path.iterdir())


def test_a_model_with_a_convlstm_is_not_unrolled():
    """Unrolling its LSTM would leave the ConvLSTM's loop: the artifact would be neither
    fused nor loop-free."""
    x = L.Input((4, 6, 6, 1), name="frames")
    h = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True)(x)
    h = L.TimeDistributed(L.Flatten())(h)
    model = keras.Model(x, L.LSTM(3)(h))
    assert unroll_steps(model) is None and unrolled_twin(model) is None
