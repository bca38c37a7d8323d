"""Compressing a user's own model: ``--train`` enables ``--structured``, ``--prune``,
``--cluster`` and ``--qat``, fine-tuning with the loss the model was saved with.

The model is one a user would bring: a BiLSTM classifier trained on a separable synthetic
task, saved compiled (its loss in the file). The bundle must hold the smaller architecture
and the sparsity, verify again from its files, and report the metric before and after
compression; its fp32 artifacts are held to the compressed Keras model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.cli import main
from export.pipeline import verify_bundle
from export.user.pipeline import export_keras
from export.user.training import saved_loss
from zoo._keras import keras
from zoo.errors import DataError, UnsupportedError
from zoo.tasks.user import check_loss

L = keras.layers


def separable(n: int, seed: int):
    """Series whose class (0..3) raises one channel: a task a small model learns fully."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.standard_normal((n, 10, 6)).astype("float32")
    x[np.arange(n), :, y] += 1.5
    return x, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained, compiled BiLSTM classifier saved as .keras, its training data and
    held-out samples."""
    keras.utils.set_random_seed(0)
    x, y = separable(256, 0)
    xs, ys = separable(48, 1)
    inp = keras.Input((None, 6), name="x")
    h = L.Bidirectional(L.LSTM(8, return_sequences=True), name="bilstm")(inp)
    h = L.LSTM(8, name="lstm")(h)
    model = keras.Model(inp, L.Dense(4, activation="softmax", name="probs")(h))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    root = tmp_path_factory.mktemp("compress")
    model.save(root / "model.keras")
    np.savez(root / "train.npz", x=x, y=y)
    np.save(root / "samples.npy", xs)
    np.save(root / "labels.npy", ys)
    return root, model, xs, ys


def test_structured_and_pruned_user_model(trained):
    root, model, xs, ys = trained
    out = root / "small"
    assert main(["export", str(root / "model.keras"), "--samples", str(root / "samples.npy"),
                 "--labels", str(root / "labels.npy"), "--metric", "accuracy",
                 "--train", str(root / "train.npz"), "--structured", "0.5", "--prune", "0.5",
                 "--learning-rate", "0.003", "--finetune-epochs", "3",
                 "--formats", "tflite,onnx", "--precision", "fp32",
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    compression = manifest["compression"]
    # half of every recurrent layer's units, in the bundle's own architecture
    assert compression["structured"]["overrides"] == {"bilstm": 4, "lstm": 4}
    layers = {e["config"]["name"]: e for e in
              manifest["reference"]["model_config"]["config"]["layers"]}
    assert layers["lstm"]["config"]["units"] == 4
    assert layers["bilstm"]["config"]["layer"]["config"]["units"] == 4
    assert compression["keras_sparsity"] >= 0.45  # pruned to 50 % (biases stay dense)
    assert manifest["meta"]["compressed"] is True
    assert manifest["meta"]["loss"] == "sparse_categorical_crossentropy"  # from the file
    assert compression["prune"]["fine_tune"]["learning_rate"] == 0.003
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"], parity["failures"]
    check = parity["compression"]["checks"][0]
    assert check["passed"] and check["limit"] == 0.02
    # fp32 artifacts compute the compressed model: no check against the original's outputs
    for r in parity["results"]:
        assert not any("original" in c["check"] for c in r["checks"])
    again = verify_bundle(out)  # the smaller model rebuilt from the bundle's config
    assert again["passed"], again["failures"]


def test_quantization_aware_user_model(trained, tmp_path):
    root, model, xs, ys = trained
    parity = export_keras(model, tmp_path / "qat", samples=xs, labels=ys, metric="accuracy",
                          train=(np.load(root / "train.npz")["x"],
                                 np.load(root / "train.npz")["y"]),
                          qat=True, formats="tflite", precisions="int8", finetune_epochs=1,
                          learning_rate=1e-3)
    assert parity["passed"], parity["failures"]
    qat = json.loads((tmp_path / "qat" / "manifest.json").read_text())["compression"]["qat"]
    assert qat["max_levels_per_gate"] <= 255  # snapped to int8 levels
    assert parity["compression"]["checks"][0]["passed"]


def test_compression_needs_training_data(trained, tmp_path):
    root, model, xs, _ = trained
    with pytest.raises(UnsupportedError, match="--train FILE"):
        export_keras(model, tmp_path / "a", samples=xs, prune=0.5)
    with pytest.raises(UnsupportedError, match="without one nothing is trained"):
        export_keras(model, tmp_path / "b", samples=xs, train=root / "train.npz")
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_training_data_is_checked(trained, tmp_path, capsys):
    root, model, xs, _ = trained
    x, y = separable(32, 2)
    np.savez(tmp_path / "short_y.npz", x=x, y=y[:20])
    np.savez(tmp_path / "no_y.npz", x=x)
    np.savez(tmp_path / "nan_y.npz", x=x, y=np.full(32, np.nan))
    for bad, message in [("short_y.npz", "20 targets for output 'probs' and 32 inputs"),
                         ("no_y.npz", "missing ['probs']"),
                         ("nan_y.npz", "NaN or infinite")]:
        with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
            export_keras(model, tmp_path / "out", samples=xs, train=tmp_path / bad,
                         prune=0.5)
    assert main(["export", str(root / "model.keras"), "--samples",
                 str(root / "samples.npy"), "--train", str(tmp_path / "short_y.npz"),
                 "--prune", "0.5", "--out", str(tmp_path / "cli")]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: ")  # one line, no traceback
    assert not (tmp_path / "out").exists() and not (tmp_path / "cli").exists()


def test_the_loss_is_a_keras_loss_by_name(tmp_path):
    def custom(y_true, y_pred):  # a user's own loss: never loaded from a file
        return keras.backend.mean(y_pred)

    model = keras.Sequential([keras.Input((4, 2)), L.LSTM(3), L.Dense(2)])
    model.compile("adam", loss=custom)
    with pytest.raises(UnsupportedError, match="'custom' is not a Keras loss"):
        saved_loss(model)
    assert saved_loss(model, "mse") == "mse"  # --loss wins
    model.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert saved_loss(model) == {"class_name": "SparseCategoricalCrossentropy",
                                 "config": {"from_logits": True, "ignore_class": None}}
    uncompiled = keras.Sequential([keras.Input((4, 2)), L.LSTM(3)])
    with pytest.raises(UnsupportedError, match="pass --loss NAME"):
        saved_loss(uncompiled)
    with pytest.raises(UnsupportedError, match="options \\['evil'\\]"):
        check_loss({"class_name": "Huber", "config": {"evil": 1}})
    with pytest.raises(UnsupportedError, match="loss class 'MyLoss'"):
        check_loss({"class_name": "MyLoss", "config": {}})
