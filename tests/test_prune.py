"""Pruning and clustering: tfmot plus our adapters, per layer type, and through export."""

import json

import numpy as np
import pytest

from export import export_model
from export.compression.prune import wrap
from zoo._keras import keras
from zoo.errors import UnsupportedError
from zoo.layers import LuongAttention

BILSTM = "bilstm_activity_tiny"
G2P = "seq2seq_g2p_tiny"


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _model(kind):
    """A small functional model around one layer type; returns (model, x, y)."""
    rng = np.random.default_rng(0)
    if kind == "ConvLSTM2D":
        inputs = keras.Input((4, 6, 6, 2))
        x = keras.layers.ConvLSTM2D(16, 3, padding="same", name="layer")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        data = rng.standard_normal((8, 4, 6, 6, 2)).astype(np.float32)
    elif kind == "LuongAttention":
        inputs = keras.Input((5, 32))
        x = LuongAttention(name="layer")([inputs, inputs])
        x = keras.layers.GlobalAveragePooling1D()(x)
        data = rng.standard_normal((8, 5, 32)).astype(np.float32)
    else:
        inputs = keras.Input((5, 32))
        layer = {"LSTM": lambda: keras.layers.LSTM(16, return_sequences=True, name="layer"),
                 "GRU": lambda: keras.layers.GRU(16, return_sequences=True, name="layer"),
                 "Bidirectional": lambda: keras.layers.Bidirectional(
                     keras.layers.LSTM(16, return_sequences=True), name="layer"),
                 "TimeDistributed": lambda: keras.layers.TimeDistributed(
                     keras.layers.Dense(16), name="layer")}[kind]()
        x = keras.layers.GlobalAveragePooling1D()(layer(inputs))
        data = rng.standard_normal((8, 5, 32)).astype(np.float32)
    out = keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x))
    return keras.Model(inputs, out), data, rng.integers(0, 2, 8)


def _kernels(layer):
    return [w.numpy() for w in layer.weights if "kernel" in w.name]


PRUNABLE = ["LSTM", "GRU", "Bidirectional", "TimeDistributed", "ConvLSTM2D", "LuongAttention"]
CLUSTERABLE = ["LSTM", "Bidirectional", "LuongAttention"]


@pytest.mark.parametrize("kind", PRUNABLE)
def test_every_recurrent_layer_type_prunes(kind):
    tfmot = _tfmot()
    model, x, y = _model(kind)
    before = model.get_layer("layer").get_weights()
    clone, wrapped = wrap(model, "prune", lambda layer: tfmot.sparsity.keras
                          .prune_low_magnitude(layer, pruning_schedule=tfmot.sparsity.keras
                                               .ConstantSparsity(0.5, 0, frequency=1)))
    assert "layer" in wrapped
    # the wrappers start from the trained weights
    assert all(np.array_equal(a, b) for a, b in zip(before, wrapped["layer"].layer
                                                    .get_weights(), strict=True))
    clone.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clone.fit(x, y, epochs=1, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    for kernel in _kernels(wrapped["layer"].layer):
        assert abs(np.mean(kernel == 0) - 0.5) < 0.02


@pytest.mark.parametrize("kind", CLUSTERABLE)
def test_clustering_supported_layers(kind):
    tfmot = _tfmot()
    model, x, y = _model(kind)
    clone, wrapped = wrap(model, "cluster", lambda layer: tfmot.clustering.keras.cluster_weights(
        layer, number_of_clusters=4,
        cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.LINEAR))
    clone.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clone.fit(x, y, epochs=1, verbose=0)
    stripped = tfmot.clustering.keras.strip_clustering(clone)
    for kernel in _kernels(stripped.get_layer("layer")):
        assert len(np.unique(kernel)) <= 4


@pytest.mark.parametrize("kind, reason", [
    ("ConvLSTM2D", "ConvLSTM2DCell"),
    ("TimeDistributed", "inner layer"),
])
def test_clustering_gaps_are_typed(kind, reason):
    tfmot = _tfmot()
    model, _, _ = _model(kind)
    with pytest.raises(UnsupportedError, match=f"cannot cluster layer 'layer'.*{reason}"):
        wrap(model, "cluster", tfmot.clustering.keras.cluster_weights)


def test_a_layer_without_adapter_is_refused():
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1], shape[-1]))

        def call(self, x):
            return x @ self.w

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Scale(name="scale")(inputs))
    with pytest.raises(UnsupportedError, match="cannot prune layer 'scale'.*no adapter"):
        wrap(model, "prune", _tfmot().sparsity.keras.prune_low_magnitude)


@pytest.fixture(scope="module")
def pruned_bundle(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("pruned") / "b"
    report = export_model(BILSTM, out, weights=tiny_weights[BILSTM], prune=0.5,
                          schedule="constant", finetune_epochs=2)
    return report, out


def test_pruned_export_keeps_fused_ops_and_reports_sparsity(pruned_bundle):
    report, out = pruned_bundle
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert abs(manifest["compression"]["keras_sparsity"] - 0.5) < 0.01
    assert manifest["compression"]["prune"]["layers"] == ["bilstm_0", "bilstm_1", "probs"]
    for a in manifest["artifacts"]:
        assert a["all_fused"]
        assert a["gzip_size"] < a["size"]
        if a["precision"] == "fp32":  # what is stored in the file, read back from it
            assert a["weight_sparsity"]["sparsity"] > 0.45
    assert "accuracy drop from compression" in report["compression"]["checks"][0]["check"]


def test_seq2seq_prune_and_cluster_through_export(tiny_weights, tmp_path):
    report = export_model(G2P, tmp_path / "g", weights=tiny_weights[G2P], prune=0.5,
                          cluster=8, finetune_epochs=1, finetune_limit=500,
                          formats="onnx", precisions="fp32", limit=40)
    assert report["passed"], report["failures"]
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    compression = manifest["compression"]
    assert compression["unique_values_per_kernel"] <= 8
    assert compression["keras_sparsity"] >= 0.45  # clustering preserved the zeros
    assert "attention" in compression["prune"]["layers"]  # through the adapter
    assert "attention" in compression["cluster"]["layers"]


@pytest.mark.parametrize("kwargs, match", [
    ({"prune": 1.0}, r"sparsity must be in \[0, 1\)"),
    ({"prune": -0.1}, r"sparsity must be in \[0, 1\)"),
    ({"cluster": 1}, "integer >= 2"),
    ({"cluster": 2.5}, "integer >= 2"),
    ({"prune": 0.5, "schedule": "cubic"}, "unknown pruning schedule"),
])
def test_bad_compression_input(tiny_weights, tmp_path, kwargs, match):
    with pytest.raises(UnsupportedError, match=match):
        export_model(BILSTM, tmp_path / "b", weights=tiny_weights[BILSTM], **kwargs)
    assert list(tmp_path.iterdir()) == []
