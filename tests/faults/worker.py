"""One worker of a two-worker run (TF_CONFIG from the environment) training a tiny dense
model through zoo.distribute's strategy and fault handling, as `lstm-zoo train` does; it
prints "epoch N" after each epoch and, when a peer dies, the error line the CLI would."""

import sys

from zoo.distribute import get_strategy, worker_faults
from zoo.errors import ZooError

strategy, cluster = get_strategy("multiworker")

import numpy as np  # noqa: E402

from zoo._keras import keras, tf  # noqa: E402

with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
data = tf.data.Dataset.from_tensor_slices(
    (np.ones((64, 4), np.float32), np.zeros((64, 2), np.float32))).repeat().batch(8)
say = keras.callbacks.LambdaCallback(
    on_epoch_end=lambda epoch, logs: print(f"epoch {epoch + 1}", flush=True))
try:
    with worker_faults(cluster, "no weights were written"):
        model.fit(data, steps_per_epoch=4, epochs=10_000, verbose=0, callbacks=[say])
except ZooError as e:
    print(f"error: {e}", flush=True)
    sys.exit(2)
