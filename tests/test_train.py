"""Training helpers the recipes share."""

import numpy as np
import pytest

import zoo
from zoo.datasets import basicmotions
from zoo.tasks.fitting import adapt_normalization


def test_normalization_modes():
    x = np.asarray(basicmotions.load("train").x)
    model = zoo.create_model("bilstm_activity_tiny")
    adapt_normalization(model, x, "channel")
    mean, var, _ = model.get_layer("normalize").get_weights()
    np.testing.assert_allclose(mean.ravel(), x.reshape(-1, 6).mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var.ravel(), x.reshape(-1, 6).var(0), rtol=1e-4)
    adapt_normalization(model, x, "global")
    mean, var, _ = model.get_layer("normalize").get_weights()
    # one mean and variance over every value, the same for each channel
    np.testing.assert_allclose(mean.ravel(), np.full(6, x.mean()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var.ravel(), np.full(6, x.var()), rtol=1e-4)
    with pytest.raises(ValueError, match="'channel' or 'global'"):
        adapt_normalization(model, x, "per-pixel")


def test_shipped_recipes_name_their_normalization():
    for name in zoo.list_models(pretrained=True):
        spec = zoo.get_spec(name)
        if spec.task == "anomaly":
            continue  # one channel: _fit_anomaly fits normalize and denormalize to it
        if "normalize" in [layer.name for layer in zoo.create_model(name).layers]:
            assert spec.recipe["normalize"] in ("channel", "global"), name


def _epoch_batches(epoch):
    x = np.full((4, 3), float(epoch), np.float32)
    return [(x, x[:, :1])]


def test_batches_drawn_ahead_are_the_ones_drawn_in_place():
    from zoo.tasks.fitting import BatchSequence

    in_place, ahead = BatchSequence(_epoch_batches), BatchSequence(_epoch_batches, epochs=4)
    for epoch in range(4):
        for seq in (in_place, ahead):
            assert float(seq[0][0][0, 0]) == epoch
            seq.on_epoch_end()


def test_drawing_ahead_stops_after_the_last_epoch_and_keras_uses_each_draw_once():
    from zoo._keras import keras
    from zoo.tasks.fitting import BatchSequence

    drawn, seen = [], []

    def make(epoch):
        drawn.append(epoch)
        return _epoch_batches(epoch)

    class Seen(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(float(seq[0][0][0, 0]))

    seq = BatchSequence(make, epochs=3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(seq, epochs=3, verbose=0, shuffle=False, callbacks=[Seen()])
    assert seen == [0.0, 1.0, 2.0]
    assert drawn == [0, 1, 2]  # not a 4th draw that no epoch would use


def test_a_failed_draw_ahead_is_raised_where_the_epoch_ends():
    from zoo.tasks.fitting import BatchSequence

    def make(epoch):
        if epoch == 1:
            raise ValueError("no writers for epoch 1")
        return _epoch_batches(epoch)

    seq = BatchSequence(make, epochs=3)
    with pytest.raises(ValueError, match="no writers for epoch 1"):
        seq.on_epoch_end()
