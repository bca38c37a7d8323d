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

__all__ = ["keras", "saved_model_metadata", "tf"]


def saved_model_metadata(path) -> list[dict]:
    """The layer metadata tf_keras keeps beside a SavedModel (``keras_metadata.pb``), one
    dict per saved object (``node_path``, ``identifier`` and its JSON ``metadata``), read
    without loading the model: a loaded model's Lambda layers have run their code."""
    import json
    from pathlib import Path

    from tf_keras.protobuf import saved_metadata_pb2

    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString((Path(path) / "keras_metadata.pb").read_bytes())
    return [{"node_path": n.node_path, "identifier": n.identifier,
             "metadata": json.loads(n.metadata) if n.metadata else {}} for n in proto.nodes]
