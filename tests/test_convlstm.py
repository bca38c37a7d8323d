"""convlstm_nextframe: Moving-MNIST built from the real digits, SSIM, the unrolled export
graph, bad frames, and the tiny model's export and predict (the pretrained model:
test_pretrained.py, test_parity_matrix.py)."""

import json

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo._keras import keras, tf
from zoo.datasets import mnist_rows, moving_mnist
from zoo.errors import DataError, ShapeError, UnsupportedError
from zoo.layers.convlstm import UnrolledConvLSTM2D
from zoo.models.convlstm_nextframe import unrolled_graph
from zoo.tasks import get_task, ssim

TASK = get_task("nextframe")
META = zoo.get_spec("convlstm_nextframe").meta


def test_clips_are_real_digits_moving_and_bouncing():
    test, train = moving_mnist.load("test"), moving_mnist.load("train")
    assert len(test) == 256 and len(train) == 10_000
    assert test.x.shape == (256, 10, 64, 64, 1) and test.y.shape == (256, 10, 64, 64, 1)
    assert test.x.dtype == np.float32 and 0 <= test.x.min() and test.x.max() == 1.0
    # test clips show the held-out MNIST digits, training clips the training ones
    np.testing.assert_array_equal(test.digits, np.rint(mnist_rows.load("test").x))
    np.testing.assert_array_equal(train.digits, np.rint(mnist_rows.load("train").x))
    # a clip is its two digits pasted at their path's corners, the brighter pixel winning
    clip, (a, b) = test.frames([3])[0, ..., 0], test.digit_ids[3]
    (ra, ca), (rb, cb) = test.paths[3, 7]
    canvas = np.zeros((64, 64), np.uint8)
    canvas[ra : ra + 28, ca : ca + 28] = test.digits[a]
    np.maximum(canvas[rb : rb + 28, cb : cb + 28], test.digits[b],
               out=canvas[rb : rb + 28, cb : cb + 28])
    np.testing.assert_allclose(clip[7], canvas / 255.0, atol=1e-7)
    # straight lines at 3.6 pixels per frame (0.1 of the free 36), inside the frame
    paths = train.paths[:500].astype(np.float64)
    assert paths.min() == 0 and 35 <= paths.max() <= 36
    step = np.abs(np.diff(paths, axis=1))
    assert step.max() <= 5 and 2.5 < np.hypot(step[..., 0], step[..., 1]).mean() < 4.5
    # bouncing: some digit turns around along an axis inside 20 frames
    turns = np.sign(np.diff(paths, axis=1))
    assert np.any(turns[:, 1:] * turns[:, :-1] < 0)
    # fixed seeds: the same clips every time; train_small is train's head
    small = moving_mnist.load("train_small")
    np.testing.assert_array_equal(small.paths, train.paths[:512])
    np.testing.assert_array_equal(test.naive, np.repeat(test.x[:, -1:], 10, axis=1))
    assert len(test.head(5)) == 5
    with pytest.raises(DataError, match="splits"):
        moving_mnist.load("validation")


def test_ssim_is_tensorflows():
    rng = np.random.default_rng(0)
    a = rng.random((6, 64, 64)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1).astype(np.float32)
    b[:2] = moving_mnist.load("test").x[:2, 0, ..., 0]
    expected = tf.image.ssim(a[..., None], b[..., None], max_val=1.0).numpy()
    np.testing.assert_allclose(ssim(a, b), expected, atol=1e-5)
    np.testing.assert_allclose(ssim(a, a), 1.0, atol=1e-12)
    # more frames than one chunk of the computation, in a leading shape of their own
    many = np.concatenate([a, b] * 25).reshape(5, 60, 64, 64)
    both = np.concatenate([b, a] * 25).reshape(5, 60, 64, 64)
    # (1e-6: float32 products, whose rounding may depend on how many rows BLAS gets)
    np.testing.assert_allclose(ssim(many, both), np.tile(ssim(a, b), 50).reshape(5, 60),
                               rtol=0, atol=1e-6)
    with pytest.raises(ShapeError, match=r"shapes \(6, 64, 64\) and \(6, 64, 63\)"):
        ssim(a, b[..., :63])


def test_scores_by_hand():
    test = moving_mnist.load("test").head(4)
    perfect = TASK.score(np.asarray(test.y), test, META)
    assert perfect["mse"] == 0 and perfect["ssim"] == pytest.approx(1.0)
    assert perfect["naive_mse"] == pytest.approx(np.mean((test.naive - test.y) ** 2), rel=1e-6)
    blank = TASK.score(np.zeros_like(test.y), test, META)
    assert blank["mse"] == pytest.approx(blank["blank_mse"], rel=1e-9)
    assert blank["mse_frame"] == pytest.approx(blank["mse"] * 64 * 64, rel=1e-9)
    # by hand: one frame off by 0.5 in 64 pixels, the rest exact
    off = np.asarray(test.y).copy()
    off[1, 9, :8, :8] += 0.5
    m = TASK.errors(off, test.y)
    assert m["mse"] == pytest.approx(64 * 0.25 / (4 * 10 * 64 * 64))
    assert m["mse_frame"] == pytest.approx(64 * 0.25 / (4 * 10))
    assert m["mse_first"] == 0 and m["mse_last"] == pytest.approx(64 * 0.25 / (4 * 64 * 64))
    with pytest.raises(ShapeError, match=r"predicted frames \(4, 9, 64, 64, 1\)"):
        TASK.errors(off[:, :9], test.y)


def test_unrolled_graph_is_the_model_and_shares_its_variables():
    model = zoo.create_model("convlstm_nextframe_tiny", weights=None)
    graph = unrolled_graph(model)
    x = moving_mnist.load("calibration").x[:3]
    np.testing.assert_allclose(graph(x).numpy(), model(x).numpy(), atol=1e-6)
    kernel = model.get_layer("forecaster").cell.kernel
    kernel.assign(kernel * 0.5)  # training one trains the other
    np.testing.assert_allclose(graph(x).numpy(), model(x).numpy(), atol=1e-6)
    for layer, why in ((keras.layers.ConvLSTM2D(2, 3, strides=2), r"got strides \(2, 2\)"),
                       (keras.layers.ConvLSTM2D(2, 3, go_backwards=True), "go_backwards"),
                       (keras.layers.ConvLSTM2D(2, 3, dropout=0.1), "got dropout 0.1")):
        with pytest.raises(UnsupportedError, match=why):
            UnrolledConvLSTM2D(layer)


def test_bad_frames_are_refused(tmp_path):
    clip = np.asarray(moving_mnist.load("test").frames([0])[0])  # 20 frames
    # the last 10 frames are used; uint8 frames are scaled to [0, 1]
    np.testing.assert_array_equal(TASK.check_input(clip, META), clip[-10:])
    as_bytes = np.rint(clip[..., 0] * 255).astype(np.uint8)
    np.testing.assert_allclose(TASK.check_input(as_bytes, META), clip[-10:], atol=1e-6)
    cases = {
        "size": (np.zeros((10, 32, 32), np.float32), r"shape \(10, 32, 32\); expected frames "
                                                     r"shaped \(T, 64, 64\)"),
        "few": (np.zeros((9, 64, 64), np.float32), "9 frames; expected"),
        "nan": (np.where(clip > 0.5, np.nan, clip), "pixels are NaN"),
        "range": (clip * 255, r"range over \[0, 255\]; expected \[0, 1\]"),
        "ints": (as_bytes.astype(np.int64), "got dtype int64"),
    }
    for name, (frames, message) in cases.items():
        with pytest.raises(ShapeError, match=message):
            TASK.check_input(frames, META)
        np.save(tmp_path / f"{name}.npy", frames)
        with pytest.raises(ShapeError, match=message):
            TASK.parse_input(str(tmp_path / f"{name}.npy"), META)
    (tmp_path / "frames.txt").write_text("0 0 0")
    with pytest.raises(ShapeError, match="expected an existing .npy file"):
        TASK.parse_input(str(tmp_path / "frames.txt"), META)
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(ShapeError, match="cannot read frames"):
        TASK.parse_input(str(tmp_path / "broken.npy"), META)


def test_tiny_export_is_unrolled_int8_and_predicts(tmp_path, capsys):
    from export import export_model
    from zoo.train import train

    meta = train("convlstm_nextframe_tiny", out_dir=tmp_path, limit=64, verbose=0)
    assert meta["split"]["train_samples"] == 64
    out = tmp_path / "bundle"
    report = export_model("convlstm_nextframe_tiny", out, weights=tmp_path / meta["file"],
                          precisions="fp32,int8", limit=8)
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    # no loop and no recurrent op anywhere: so full int8 calibrates (a loop would crash it)
    assert {(a["format"], a["precision"]) for a in manifest["artifacts"]} == {
        (f, p) for f in ("tflite", "onnx") for p in ("fp32", "int8")}
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])
    clip = moving_mnist.load("test").frames([1])[0]
    path = tmp_path / "clip.npy"
    np.save(path, clip)
    model = zoo.create_model("convlstm_nextframe_tiny", weights=tmp_path / meta["file"])
    expected = model(clip[None, -10:]).numpy()[0, ..., 0]  # predict uses the last 10
    for backend in ("litert", "onnx", "keras"):
        saved = tmp_path / f"{backend}.npy"
        assert main(["predict", str(out), "--input", str(path), "--backend", backend,
                     "--out", str(saved)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines.pop() == f"wrote {saved} (float32, shape (10, 64, 64, 1))"
        np.testing.assert_allclose(np.load(saved)[..., 0], expected, atol=1e-5)
        assert lines[0] == "10 predicted frames of 64x64 pixels (mean intensity, pixels " \
                           "over 0.5):"
        means = [float(line.split()[1]) for line in lines[1:11]]
        # printed to 4 decimals
        np.testing.assert_allclose(means, expected.mean(axis=(1, 2)), atol=5.1e-5)
        assert lines[11] == "t+10:" and len(lines) == 12 + 32 and len(lines[-1]) == 32
    assert main(["predict", str(out), "--input", str(path), "--out", "frames.txt"]) == 2
    assert "--out writes a .npy file; got 'frames.txt'" in capsys.readouterr().err


def test_unroll_benchmark_machinery():
    """The machinery of ``python -m benchmarks.convlstm_unroll`` (its figures: the shipped
    model, benchmarks/results/convlstm_unroll.md), on the tiny model, random weights."""
    from benchmarks import convlstm_unroll

    result = convlstm_unroll.run("convlstm_nextframe_tiny", weights=None, limit=2, timing=1,
                                 single_thread=False)
    rows = {(r["form"], r["format"]): r for r in result["rows"]}
    assert set(rows) == {(f, fmt) for f in convlstm_unroll.FORMS for fmt in ("tflite", "onnx")}
    assert rows["loop", "tflite"]["loops"] == {"WHILE": 2}
    assert rows["loop", "onnx"]["loops"] == {"Loop": 2}
    assert "crashes the TFLite calibrator" in rows["loop", "tflite"]["int8"]
    for fmt in ("tflite", "onnx"):
        assert rows["unrolled", fmt]["loops"] == {}
        for form in convlstm_unroll.FORMS:
            assert rows[form, fmt]["max_diff_vs_keras"] < 1e-5
    assert rows["unrolled", "tflite"]["int8"] == "converts"
    text = convlstm_unroll.markdown({"date": "d", "machine": "m", "command": "c",
                                     "result": result})
    assert "| unrolled | tflite | none |" in text


def test_the_baseline_is_scored_once_per_test_split(monkeypatch):
    """An export scores the test split five times (Keras, then each artifact): the naive
    baseline's errors (an SSIM over every clip) are computed once per data object."""
    import gc

    from zoo import tasks

    calls = []
    errors = tasks.NextFrame.errors

    def counting(predicted, actual):
        calls.append(1)
        return errors(predicted, actual)

    monkeypatch.setattr(tasks.NextFrame, "errors", staticmethod(counting))

    class Clips:  # the fields NextFrame.score reads
        def __init__(self, seed):
            rng = np.random.default_rng(seed)
            self.y = rng.random((2, 3, 16, 16, 1)).astype(np.float32)
            self.naive = rng.random((2, 3, 16, 16, 1)).astype(np.float32)

    task, data = tasks.NextFrame(), Clips(0)
    first = task.score(data.naive, data, {})
    assert first["mse"] == first["naive_mse"] and len(calls) == 2
    again = task.score(np.zeros_like(data.y), data, {})
    assert again["naive_ssim"] == first["naive_ssim"] and len(calls) == 3  # model only
    other = Clips(1)
    assert task.score(other.naive, other, {})["naive_mse"] != first["naive_mse"]
    assert len(calls) == 5
    keys = {id(data), id(other)}
    assert keys <= set(tasks._PER_DATA)
    del data, other
    gc.collect()
    assert not keys & set(tasks._PER_DATA)  # entries go with their data
