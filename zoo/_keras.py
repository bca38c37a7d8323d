"""The one place lstm-zoo chooses its Keras.

tf_keras (the Keras 2 API) is the Keras that gives fused LSTM ops in TFLite
(UNIDIRECTIONAL_SEQUENCE_LSTM) and ONNX (LSTM/GRU), and the one that
tensorflow-model-optimization accepts; Keras 3 gives WHILE loops and is refused by
tfmot (../shared/FINDINGS.md). Every other module imports ``keras`` and ``tf`` from
here; a test fails if any module imports ``keras`` or ``tf.keras`` directly.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf"]
