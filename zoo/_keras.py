"""The one place lstm-zoo chooses its Keras.

tf_keras (the Keras 2 API) is the Keras that gives fused LSTM ops in TFLite
(UNIDIRECTIONAL_SEQUENCE_LSTM) and ONNX (LSTM/GRU), and the one that
tensorflow-model-optimization accepts; Keras 3 gives WHILE loops and is refused by
tfmot (../shared/FINDINGS.md). Every other module imports ``keras`` and ``tf`` from
here; a test fails if any module imports ``keras`` or ``tf.keras`` directly.

TensorFlow is imported on the first use of ``keras`` or ``tf`` (an attribute), not when
this module is imported: registering the zoo's families needs none of it, and
``lstm-zoo list`` answered in 5.5 s, 4.3 s of it TensorFlow's import (measured,
``-X importtime``). The import prints what a user cannot act on: absl's preamble ("All
log messages before absl::InitializeLog() ..."), oneDNN's and the CUDA stub's notices
(twice: two of TensorFlow's libraries log), and on the first op the CUDA probe's
``E0000 ... failed call to cuInit``. :func:`load` probes the devices during the import
with stderr captured and prints back whatever is not one of those lines;
``LSTM_ZOO_DEBUG=1`` leaves stderr alone.
"""

import os
import re
import sys
import tempfile
import threading

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["keras", "load", "saved_model_metadata", "tf"]

# Lines TensorFlow's import and device probe print that say nothing actionable (TF 2.21).
_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (port|cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics"
    r"|cpu_feature_guard|cpu_utils)\.cc:\d+\]"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)
_modules: dict = {}
_lock = threading.Lock()


def load():
    """Imports TensorFlow and tf_keras (once), quietly; returns ``(tf, keras)``."""
    with _lock:
        if not _modules:
            if os.environ.get("LSTM_ZOO_DEBUG"):
                _import()
            else:
                _quietly(_import)
    return _modules["tf"], _modules["keras"]


def _import():
    import tensorflow
    import tf_keras

    tensorflow.config.list_physical_devices()  # the CUDA probe, now rather than on the first op
    _modules.update(tf=tensorflow, keras=tf_keras)


def _quietly(run) -> None:
    """``run()`` with file descriptor 2 captured (the C++ libraries write there, not to
    ``sys.stderr``); lines that are not noise are written back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            run()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not _NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


# What inspect and doctest ask of any object they meet; answering would import TensorFlow.
_PROBES = frozenset({"__wrapped__", "__signature__", "__objclass__", "__func__",
                     "__isabstractmethod__"})


class _Deferred:
    """A module imported by :func:`load` on its first attribute; later attributes are
    plain lookups (each one is kept on the instance)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr in _PROBES:
            raise AttributeError(attr)
        tf_module, keras_module = load()
        value = getattr(tf_module if self._name == "tf" else keras_module, attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        state = "imported" if _modules else "not imported yet"
        return f"<lstm-zoo's {self._name} ({state})>"


keras = _Deferred("keras")
tf = _Deferred("tf")


def saved_model_metadata(path) -> list[dict]:
    """The layer metadata tf_keras keeps beside a SavedModel (``keras_metadata.pb``), one
    dict per saved object (``node_path``, ``identifier`` and its JSON ``metadata``), read
    without loading the model: a loaded model's Lambda layers have run their code."""
    import json
    from pathlib import Path

    load()  # tf_keras' protobuf module imports TensorFlow: quietly, here
    from tf_keras.protobuf import saved_metadata_pb2

    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString((Path(path) / "keras_metadata.pb").read_bytes())
    return [{"node_path": n.node_path, "identifier": n.identifier,
             "metadata": json.loads(n.metadata) if n.metadata else {}} for n in proto.nodes]
