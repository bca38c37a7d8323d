"""Per-window statistics of a forecaster's input (:mod:`zoo.models.lstm_forecaster`)."""

from __future__ import annotations

from zoo._keras import keras, tf


class WindowScale(keras.layers.Layer):
    """``(B, T, 1) -> (B, 1)`` mean and ``(B, 1)`` standard deviation of each window, the
    variance floored by ``epsilon``."""

    def __init__(self, epsilon: float, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        mean = tf.reduce_mean(x, axis=[1, 2])[:, None]
        var = tf.reduce_mean(tf.square(x - mean[:, :, None]), axis=[1, 2])[:, None]
        return mean, tf.sqrt(var + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


class SeasonalNaive(keras.layers.Layer):
    """``(B, T, 1) -> (B, horizon)``: the values one ``season`` before each forecast step
    (the last ``season`` values of the window, their first ``horizon``)."""

    def __init__(self, season: int, horizon: int, **kwargs):
        super().__init__(**kwargs)
        self.season, self.horizon = int(season), int(horizon)

    def call(self, x):
        start = tf.shape(x)[1] - self.season
        return x[:, start : start + self.horizon, 0]

    def get_config(self):
        return {**super().get_config(), "season": self.season, "horizon": self.horizon}
