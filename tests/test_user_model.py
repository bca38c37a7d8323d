"""Bring your own model: a user's tf_keras model (object or file) through the pipeline.

Each model here is the kind a user trains (a BiLSTM classifier, a GRU classifier, a
stacked LSTM regressor, two inputs and two outputs), built small. The bundles must pass
parity at fp32 within 1e-5 of the original model, hold fused ops where
:mod:`export.user.inspect` says they will, and open with ``load_bundle`` / ``lstm-zoo
verify`` / ``lstm-zoo predict`` as a zoo model's do. Keras 3 models, and the gallery in both
Keras versions: tests/test_byo_roundtrip.py.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from export.cli import main
from export.pipeline import verify_bundle
from export.user.inspect import inspect_model
from export.user.pipeline import export_keras
from export.verification.runtime import load_bundle
from zoo._keras import keras
from zoo.errors import DataError, ShapeError, UnsupportedError, UnsupportedLayerError

L = keras.layers
RNG = np.random.default_rng(0)


def bilstm_classifier():
    x = keras.Input((None, 6), name="x")
    h = L.Bidirectional(L.LSTM(8, return_sequences=True))(x)
    h = L.LSTM(8)(h)
    return keras.Model(x, L.Dense(4, activation="softmax", name="probs")(h), name="bilstm")


def samples(n=20, t=12, c=6):
    return RNG.standard_normal((n, t, c)).astype("float32")


@pytest.fixture(scope="module")
def bilstm_bundle(tmp_path_factory):
    model = bilstm_classifier()
    x = samples()
    out = tmp_path_factory.mktemp("user") / "bilstm"
    return model, x, out, export_keras(model, out, samples=x)


def test_bilstm_is_fused_and_matches_the_model(bilstm_bundle):
    model, x, out, parity = bilstm_bundle
    assert parity["passed"], parity["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "user" and manifest["source"]["origin"] == "tf_keras model"
    assert manifest["source"]["metric"] == "agreement"  # softmax output, no labels
    for a in manifest["artifacts"]:
        assert a["all_fused"] and not a["loops"], a
    fp32 = [r for r in parity["results"] if r["precision"] == "fp32"]
    assert {r["format"] for r in fp32} == {"tflite", "onnx"}
    for r in fp32:
        assert r["metrics"]["max_abs_vs_original"] <= 1e-5
        assert any(c["check"] == "max |diff| vs the original model" and c["passed"]
                   for c in r["checks"])
    bundle = load_bundle(out)
    want = model.predict(x[:3], verbose=0)
    for backend in ("litert", "onnx", "keras"):
        got = np.stack(bundle.predict(list(x[:3]), backend=backend))
        np.testing.assert_allclose(got, want, atol=1e-5)  # fp32: the model's function


def test_verify_reruns_parity_from_the_bundle(bilstm_bundle):
    _, _, out, parity = bilstm_bundle
    again = verify_bundle(out)
    assert again["passed"], again["failures"]
    assert again["reference"]["metrics"] == parity["reference"]["metrics"]


def test_a_tampered_sample_file_is_caught(bilstm_bundle, tmp_path):
    import shutil

    _, _, out, _ = bilstm_bundle
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    data = bytearray((copy / "samples.npz").read_bytes())
    data[-10] ^= 0xFF
    (copy / "samples.npz").write_bytes(bytes(data))
    from zoo.errors import ArtifactError

    with pytest.raises(ArtifactError, match="samples.npz"):
        load_bundle(copy)


def test_gru_loops_in_tflite_with_the_reason_and_fuses_in_onnx(tmp_path):
    x = keras.Input((None, 5), name="x")
    h = L.GRU(6)(x)
    model = keras.Model(x, L.Dense(3, activation="softmax")(h))
    parity = export_keras(model, tmp_path / "gru", samples=samples(16, 7, 5),
                          precisions="fp32")
    assert parity["passed"], parity["failures"]
    arts = {a["format"]: a for a in
            json.loads((tmp_path / "gru" / "manifest.json").read_text())["artifacts"]}
    assert arts["tflite"]["loops"] == {"WHILE": 1} and arts["tflite"]["as_expected"]
    assert "no GRU op" in arts["tflite"]["loop_reason"]
    assert arts["onnx"]["fused_directions"]["GRU"] == 1 and not arts["onnx"]["loops"]


def test_regressor_without_labels_is_scored_by_relative_error(tmp_path):
    x = keras.Input((None, 2), name="series")
    h = L.LSTM(6, return_sequences=True)(x)
    h = L.LSTM(6)(h)
    model = keras.Model(x, L.Dense(3, name="forecast")(h))
    xs = samples(16, 10, 2)
    parity = export_keras(model, tmp_path / "reg", samples=xs, formats="onnx")
    assert parity["passed"], parity["failures"]
    assert "relative_error" in parity["reference"]["metrics"]
    with_labels = export_keras(model, tmp_path / "reg2", samples=xs, formats="onnx",
                               precisions="fp32", labels=RNG.standard_normal((16, 3)),
                               metric="mae")
    assert with_labels["reference"]["metrics"]["mae"] > 0


def test_two_inputs_and_two_outputs_from_an_npz(tmp_path):
    a = keras.Input((None, 3), name="frames")
    b = keras.Input((4,), name="context")
    h = L.LSTM(5)(a)
    h = L.Concatenate()([h, b])
    model = keras.Model([a, b], [L.Dense(2, activation="softmax", name="cls")(h),
                                 L.Dense(1, name="score")(h)])
    path = tmp_path / "s.npz"
    np.savez(path, frames=samples(16, 6, 3), context=RNG.standard_normal((16, 4)))
    parity = export_keras(model, tmp_path / "two", samples=path, precisions="fp32")
    assert parity["passed"], parity["failures"]
    bundle = load_bundle(tmp_path / "two")
    item = {"frames": samples(1, 6, 3)[0], "context": np.ones(4, "float32")}
    (pred,) = bundle.predict([item], backend="onnx")
    assert set(pred) == {"cls", "score"}


def test_no_recurrent_layer_exports_and_says_so(tmp_path):
    from export.progress import Progress

    x = keras.Input((8,), name="x")
    model = keras.Model(x, L.Dense(2, activation="softmax")(L.Dense(4, "relu")(x)))
    said = []

    class Recording(Progress):
        def say(self, message):
            said.append(message)

    parity = export_keras(model, tmp_path / "mlp", samples=RNG.standard_normal((16, 8)),
                          precisions="fp32", progress=Recording())
    assert parity["passed"]
    assert "no recurrent layer: the model exports as plain ops" in said


def test_auto_precision_on_a_labelled_classifier_picks_within_the_drop(tmp_path):
    # sines of two frequencies: a classifier a few epochs make accurate
    t = np.arange(24)[None, :, None]
    freq = RNG.integers(0, 2, 64)
    x = np.sin(t * (0.2 + 0.5 * freq[:, None, None]) + RNG.uniform(0, 6, (64, 1, 1)))
    x = (x + 0.1 * RNG.standard_normal(x.shape)).astype("float32")
    inp = keras.Input((None, 1), name="x")
    model = keras.Model(inp, L.Dense(2, activation="softmax")(L.LSTM(16)(inp)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, freq, epochs=30, verbose=0)
    parity = export_keras(model, tmp_path / "auto", samples=x, labels=freq,
                          metric="accuracy", precisions="auto", max_drop=0.02,
                          formats="onnx")
    record = parity["auto"]["onnx"]
    assert record["chosen"] is not None
    chosen = next(t for t in record["tried"] if t["status"] == "chosen")
    assert chosen["metric_drop"] <= 0.02
    # every smaller candidate tried first was rejected for its drop
    sizes = [t for t in record["tried"] if "size_bytes" in t]
    assert all(t["status"].startswith("rejected") for t in sizes
               if t["size_bytes"] < chosen["size_bytes"])
    # predict takes the one precision the bundle kept, without being told
    np.save(tmp_path / "one.npy", x[0])
    assert main(["predict", str(tmp_path / "auto"), "--input", str(tmp_path / "one.npy"),
                 "--backend", "onnx"]) == 0


@pytest.mark.parametrize("make, fused_tflite, fused_onnx", [
    (lambda: L.LSTM(4), True, True),
    (lambda: L.LSTM(4, activation="relu"), False, True),
    (lambda: L.LSTM(4, use_bias=False), False, True),
    (lambda: L.LSTM(4, recurrent_dropout=0.1), False, False),
    (lambda: L.Bidirectional(L.LSTM(4), merge_mode="sum"), True, True),
    (lambda: L.GRU(4), False, True),
    (lambda: L.GRU(4, reset_after=False), False, False),
    (lambda: L.GRU(4, activation="relu"), False, False),
    (lambda: L.Bidirectional(L.GRU(4)), False, True),
    (lambda: L.SimpleRNN(4), False, False),
    (lambda: L.LSTM(4, return_state=True), False, True),
])
def test_inspect_says_what_the_converters_do(tmp_path, make, fused_tflite, fused_onnx):
    from export.conversion import onnx as onnx_export
    from export.conversion import tflite as tflite_export
    from export.conversion.fusion import fusion_report
    from export.conversion.graphs import recurrent_directions

    x = keras.Input((None, 3), name="x")
    model = keras.Model(x, make()(x))  # an encoder's return_state: all three outputs
    (row,) = [r for r in inspect_model(model) if r.recurrent]
    assert (row.fused("tflite"), row.fused("onnx")) == (fused_tflite, fused_onnx)
    for fmt, convert in (("tflite", tflite_export.convert), ("onnx", onnx_export.convert)):
        path = tmp_path / f"m.{fmt}"
        path.write_bytes(convert(model, "fp32", None))
        report = fusion_report(fmt, path, recurrent_directions(model), "fused")
        assert report["all_fused"] == row.fused(fmt), (fmt, report["ops"])
        assert bool(report["loops"]) == row.loops(fmt), (fmt, report["ops"])
        if not row.fused(fmt):
            assert row.why and row.fix  # a reason, and what would fuse it


# -- bad input: a typed error, nothing written --------------------------------------------

def test_bad_samples_and_labels(tmp_path):
    model = bilstm_classifier()
    out = tmp_path / "never"
    cases = [
        (samples(15), {}, DataError, "15 samples"),
        (samples(16, 5, 7), {}, ShapeError, "expected (?, ?, 6)"),
        (np.full((16, 4, 6), np.nan, "float32"), {}, ShapeError, "NaN"),
        (samples(16).astype(str), {}, ShapeError, "dtype"),
        ({"x": samples(16), "y": samples(16)}, {}, DataError, "unknown ['y']"),
        (samples(16), {"labels": np.zeros(15)}, DataError, "15 labels for 16 samples"),
        (samples(16), {"labels": np.zeros(16), "metric": "bleu"}, UnsupportedError, "bleu"),
        (samples(16), {"metric": "accuracy"}, DataError, "needs labels"),
        (str(tmp_path / "none.npy"), {}, DataError, "does not exist"),
    ]
    for x, kwargs, error, match in cases:
        with pytest.raises(error) as e:
            export_keras(model, out, samples=x, **kwargs)
        assert match in str(e.value), str(e.value)
        assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_unsupported_layers_are_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    x = keras.Input((None, 3), name="x")
    h = L.Lambda(lambda t: t * 2)(x)
    model = keras.Model(x, L.LSTM(2)(h))
    with pytest.raises(UnsupportedLayerError, match="Lambda"):
        export_keras(model, tmp_path / "b", samples=samples(16, 4, 3))
    path = tmp_path / "lam.h5"
    model.save(path)
    # the .h5's Lambda is marshalled bytecode: it must never be loaded
    with pytest.raises(UnsupportedLayerError, match="Lambda"):
        export_keras(path, tmp_path / "b", samples=samples(16, 4, 3))
    assert not marker.exists() and not (tmp_path / "b").exists()


def padded_ids(n=16, t=9, vocab=20, pre=False):
    ids = np.zeros((n, t), "int32")
    for i, length in enumerate(RNG.integers(2, t + 1, n)):
        row = RNG.integers(1, vocab, length)
        if pre:
            ids[i, t - length:] = row
        else:
            ids[i, :length] = row
    return ids


def test_a_padding_mask_exports_fused_with_each_sample_at_its_length(tmp_path):
    x = keras.Input((None,), name="ids")
    h = L.Embedding(20, 4, mask_zero=True)(x)
    h = L.Bidirectional(L.LSTM(5))(h)
    model = keras.Model(x, L.Dense(3, activation="softmax")(h))
    ids = padded_ids()
    parity = export_keras(model, tmp_path / "b", samples=ids)
    assert parity["passed"], parity["failures"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "each sample fed at its own length" in manifest["source"]["mask"]
    for a in manifest["artifacts"]:  # the mask would have made loops
        assert a["all_fused"] and not a["loops"], (a["format"], a["ops"])
    for r in parity["results"]:
        if r["precision"] == "fp32":
            assert r["metrics"]["max_abs_vs_original"] <= 1e-5
    got = load_bundle(tmp_path / "b").predict(list(ids[:4]), backend="litert")
    np.testing.assert_allclose(np.stack(got), model.predict(ids[:4], verbose=0), atol=1e-5)


def test_a_masking_layer_with_pre_padding(tmp_path):
    x = keras.Input((None, 3), name="x")
    h = L.Masking(0.0)(x)
    model = keras.Model(x, L.Dense(2)(L.LSTM(4)(h)))
    xs = samples(16, 8, 3)
    xs[:, :3] = 0.0  # three steps of padding in front
    parity = export_keras(model, tmp_path / "b", samples=xs, precisions="fp32")
    assert parity["passed"], parity["failures"]


def test_a_saved_model_folder_exports_and_its_lambda_never_runs(tmp_path):
    x = keras.Input((None, 3), name="x")
    model = keras.Model(x, L.Dense(2, activation="softmax")(L.LSTM(4)(x)))
    model.save(tmp_path / "sm", save_format="tf")
    parity = export_keras(tmp_path / "sm", tmp_path / "b", samples=samples(16, 5, 3),
                          precisions="fp32", formats="onnx")
    assert parity["passed"], parity["failures"]
    origin = json.loads((tmp_path / "b" / "manifest.json").read_text())["source"]["origin"]
    assert origin == "tf_keras SavedModel"
    # a Lambda whose code would leave a file behind if it ever ran
    marker = tmp_path / "ran"

    def touch(t, path=str(marker)):
        import pathlib

        pathlib.Path(path).touch()
        return t

    lam = keras.Model(x, L.LSTM(2)(L.Lambda(touch)(x)))
    lam.save(tmp_path / "lam", save_format="tf")
    marker.unlink(missing_ok=True)  # saving traced it
    with pytest.raises(UnsupportedLayerError, match="Lambda"):
        export_keras(tmp_path / "lam", tmp_path / "c", samples=samples(16, 4, 3))
    assert not marker.exists() and not (tmp_path / "c").exists()


def test_masks_that_trimming_cannot_reproduce_are_refused(tmp_path):
    x = keras.Input((None,), name="ids")
    h = L.Embedding(20, 4, mask_zero=True)(x)
    model = keras.Model(x, L.Dense(3, activation="softmax")(L.LSTM(5)(h)))
    ids = padded_ids()
    ids[0, :] = [1, 0, 2, 3, 0, 0, 0, 0, 0]  # a masked step between real ones
    with pytest.raises(UnsupportedError, match="padding between real steps"):
        export_keras(model, tmp_path / "b", samples=ids)
    seq = keras.Model(x, L.LSTM(5, return_sequences=True)(h))  # the padded axis is output
    with pytest.raises(UnsupportedError, match="keeps the padded time axis"):
        export_keras(seq, tmp_path / "b", samples=padded_ids())
    assert not (tmp_path / "b").exists()


# -- the command -----------------------------------------------------------------------------

def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_cli_file_to_verified_bundle(capsys, tmp_path):
    bilstm_classifier().save(tmp_path / "mine.keras")
    np.save(tmp_path / "x.npy", samples(16))
    np.save(tmp_path / "one.npy", samples(1)[0])
    code, out, _ = run(capsys, "inspect", tmp_path / "mine.keras")
    assert code == 0 and "UNIDIRECTIONAL_SEQUENCE_LSTM" in out
    code, out, err = run(capsys, "export", tmp_path / "mine.keras", "--samples",
                         tmp_path / "x.npy", "--out", tmp_path / "b", "--precision", "fp32")
    assert code == 0, err
    assert "PASS" in out and "FAIL" not in out
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["model"] == "mine"
    code, out, _ = run(capsys, "verify", tmp_path / "b")
    assert code == 0 and "verified" in out
    code, out, _ = run(capsys, "predict", tmp_path / "b", "--input", tmp_path / "one.npy",
                       "--out", tmp_path / "p.npy")
    assert code == 0 and "top-1" in out
    assert np.load(tmp_path / "p.npy").shape == (4,)
    # a batch file: every sample, array in, array out
    code, out, _ = run(capsys, "predict", tmp_path / "b", "--input", tmp_path / "x.npy",
                       "--backend", "onnx", "--out", tmp_path / "all.npy")
    assert code == 0 and "[15] probs" in out
    np.testing.assert_allclose(np.load(tmp_path / "all.npy"),
                               keras.models.load_model(tmp_path / "mine.keras").predict(
                                   np.load(tmp_path / "x.npy"), verbose=0), atol=1e-5)


def test_cli_bad_input_is_one_error_line(capsys, tmp_path):
    model_file = tmp_path / "mine.keras"
    bilstm_classifier().save(model_file)
    np.save(tmp_path / "few.npy", samples(3))
    np.save(tmp_path / "x.npy", samples(16))
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    data = model_file.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    meta_v1 = tmp_path / "old.keras"
    with zipfile.ZipFile(model_file) as src, zipfile.ZipFile(meta_v1, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "metadata.json":
                body = json.dumps({**json.loads(body), "keras_version": "1.2.0"}).encode()
            dst.writestr(item, body)
    cases = [
        ((model_file,), "give --samples"),
        ((model_file, "--samples", tmp_path / "few.npy"), "3 samples"),
        ((model_file, "--samples", tmp_path / "x.npy", "--metric", "bleu"), "bleu"),
        ((model_file, "--samples", tmp_path / "x.npy", "--prune", "0.5"), "--train FILE"),
        ((tmp_path / "bad.keras", "--samples", tmp_path / "x.npy"), "not a readable"),
        ((tmp_path / "cut.keras", "--samples", tmp_path / "x.npy"), "cut.keras"),
        ((meta_v1, "--samples", tmp_path / "x.npy"), "Keras 1.2.0"),
        (("bilstm_activity_tiny", "--samples", tmp_path / "x.npy"), "--samples"),
    ]
    for args, match in cases:
        code, _, err = run(capsys, "export", *args, "--out", tmp_path / "out")
        lines = err.strip().splitlines()
        assert code == 2 and lines[-1].startswith("error:") and match in lines[-1], err
        assert not (tmp_path / "out").exists()


# -- streaming: a stateful model ---------------------------------------------------------------

def test_a_stateful_model_exports_a_step_graph_that_streams_exactly(tmp_path):
    model = keras.Sequential([
        keras.Input((None, 3), batch_size=1, name="x"),
        L.LSTM(6, stateful=True, return_sequences=True, name="lstm"),
        L.GRU(5, stateful=True, return_sequences=True, name="gru"),
        L.Dense(2, activation="softmax", name="probs")])
    xs = samples(16, 7, 3)
    parity = export_keras(model, tmp_path / "b", samples=xs)
    assert parity["passed"], parity["failures"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "one-step graph" in manifest["source"]["stream"]
    step = next(g for g in manifest["graphs"] if g["name"] == "step")
    assert [i["name"] for i in step["inputs"]] == ["x", "lstm_h", "lstm_c", "gru_h"]
    for a in manifest["artifacts"]:
        assert a["as_expected"], a
        if a["graph"] == "step":  # one cell step: no loop, no sequence op
            assert not a["loops"] and not any(a["fused_directions"].values())
    for r in parity["results"]:
        if r["precision"] == "fp32":  # streamed on the device path, against the original
            assert r["metrics"]["max_abs_vs_original"] <= 1e-5
    # the original, fed one sample as a device would, chunk by chunk
    bundle = load_bundle(tmp_path / "b")
    model.reset_states()
    want = model(xs[:1], training=False).numpy()[0]
    got = bundle.predict([xs[0]], backend="litert")[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_model_that_cannot_stream_is_refused(tmp_path):
    model = keras.Sequential([
        keras.Input((None, 3), batch_size=1, name="x"),
        L.Conv1D(4, 3, padding="same"),
        L.LSTM(6, stateful=True)])
    with pytest.raises(UnsupportedError, match="mixes time steps"):
        export_keras(model, tmp_path / "b", samples=samples(16, 7, 3))
    assert not (tmp_path / "b").exists()
