"""lstm_autoencoder: the real ECG and its split, the detection metrics, bad series, and
the tiny model's export and predict (the pretrained model: test_pretrained.py,
test_parity_matrix.py)."""

import json

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo.datasets import ecg, ucr_anomaly
from zoo.errors import DataError, ShapeError
from zoo.tasks import detection_scores, get_task

TASK = get_task("anomaly")
META = zoo.get_spec("lstm_autoencoder").meta


def test_ecg_is_the_real_excerpt_split_in_time():
    values, labels = ecg.raw()
    assert len(values) == 7500 and np.isfinite(values).all()
    # one labelled segment: the premature beat and its pause
    edges = np.flatnonzero(np.diff(np.r_[0, labels, 0]))
    assert edges.tolist() == [6936, 7288]
    train, threshold, test = ecg.load("train"), ecg.load("threshold"), ecg.load("test")
    window = ecg.WINDOW
    assert train.x.shape == (4500 - window + 1, window, 1) and not train.labels.any()
    # the threshold windows lie between training and test, normal, and lead the test split
    assert threshold.starts[0] == 4500 and threshold.starts[-1] + window <= 5800
    assert test.n_calibration == len(threshold)
    np.testing.assert_array_equal(test.x[: len(threshold)], threshold.x)
    assert not test.labels[: test.n_calibration].any()
    scored = test.starts[test.n_calibration:]
    assert scored[0] == 5800 and scored[-1] + window <= 7500
    # a window is anomalous when it overlaps the labelled segment
    overlaps = (scored + window > 6936) & (scored < 7288)
    np.testing.assert_array_equal(test.labels[test.n_calibration:], overlaps)
    np.testing.assert_array_equal(test.x[-1, :, 0], values[scored[-1]:scored[-1] + window]
                                  .astype(np.float32))
    # the baseline: mean squared distance from the training mean, in training deviations
    mean, std = values[:4500].mean(), values[:4500].std()
    np.testing.assert_allclose(test.naive[-1], np.mean(((test.x[-1, :, 0] - mean) / std) ** 2),
                               rtol=1e-5)
    with pytest.raises(DataError, match="splits"):
        ecg.load("calibration")


def test_ucr_file_is_aeons_split_in_time():
    values, labels = ucr_anomaly.raw()
    assert len(values) == 7501 and np.isfinite(values).all()
    edges = np.flatnonzero(np.diff(np.r_[0, labels, 0]))
    assert edges.tolist() == [4187, 4199]  # twelve samples of jitter
    train, threshold, test = (ucr_anomaly.load(s) for s in ("train", "threshold", "test"))
    window = ucr_anomaly.WINDOW
    assert train.x.shape == (1200 - window + 1, window, 1) and not train.labels.any()
    assert threshold.starts[0] == 1200 and threshold.starts[-1] + window <= 2400
    assert test.n_calibration == len(threshold) and not test.labels[: len(threshold)].any()
    scored = test.starts[test.n_calibration:]
    assert scored[0] == 2400 and scored[-1] + window <= 7501
    np.testing.assert_array_equal(test.labels[test.n_calibration:],
                                  (scored + window > 4187) & (scored < 4199))
    # the TRAIN file is the TEST file's first 1,200 samples (checked on load)
    root = ucr_anomaly.ARCHIVE.root()
    head = np.genfromtxt(root / f"{ucr_anomaly.STEM}_TRAIN.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(head["value"], values[:1200])
    with pytest.raises(DataError, match="splits"):
        ucr_anomaly.load("calibration")
    # no sampling rate ships with the file: windows are given in samples only
    meta = {**zoo.get_spec("lstm_autoencoder_ucr").meta, "threshold": 0.1}
    text = TASK.format({"starts": np.array([0, 8]), "scores": np.array([0.01, 0.5])}, meta)
    assert text.splitlines() == [
        "2 windows of 128 values every 8; threshold 0.1 (the largest score on held-out "
        "normal data)", "       0  score 0.01", "       8  score 0.5 ANOMALY",
        "1 of 2 windows over the threshold"]
    with pytest.raises(ShapeError, match="127 values; the model scores windows of 128 "
                                         "values, so give at least 128"):
        TASK.check_input(values[:127], meta)


def test_detection_scores_by_hand():
    # 3 calibration scores (threshold 2.0), then 6 scored windows, 3 of them anomalous
    scores = [1.0, 2.0, 0.5, 3.0, 1.5, 2.5, 0.1, 2.0, 5.0]
    labels = [0, 0, 0, 1, 1, 0, 0, 1, 1]
    m = detection_scores(scores, labels, 3)
    assert m["threshold"] == 2.0
    # flagged (> 2.0): 3.0 (hit), 2.5 (false alarm), 5.0 (hit); the 2.0 anomaly is missed
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # AUC: anomalies {3, 1.5, 2, 5} against normals {2.5, 0.1}: 2+1+1+2 = 6 wins of 8
    assert m["auc"] == pytest.approx(6 / 8) and m["top_hit"] == 1.0
    assert detection_scores([1.0, 0.0, 0.5], [0, 0, 1], 1)["f1"] == 0.0  # nothing flagged
    with pytest.raises(ShapeError, match="2 scores of which 0 set the threshold"):
        detection_scores([1.0, 2.0], [0, 1], 0)
    # --limit keeps every threshold window and limits the scored ones
    test = ecg.load("test")
    head = test.head(5)
    assert len(head) == test.n_calibration + 5 and head.n_calibration == test.n_calibration
    np.testing.assert_array_equal(head.starts, test.starts[: test.n_calibration + 5])


def test_series_are_cut_into_windows_and_bad_series_refused(tmp_path):
    starts = TASK.series_starts(1000, 640, 20)
    assert starts[0] == 0 and starts[-1] == 360 and np.all(np.diff(starts) == 20)
    starts = TASK.series_starts(1005, 640, 20)  # the last window ends at the series' end
    assert starts[-2] == 360 and starts[-1] == 365
    values, _ = ecg.raw()
    ok = tmp_path / "ok.csv"
    ok.write_text("mV\n" + "\n".join(str(v) for v in values[:700]) + "\n")
    assert TASK.parse_input(str(ok), META).shape == (1, 700)
    cases = {
        "short.csv": ("\n".join(["0.1"] * 639), "639 values; the model scores windows of 640"),
        "gap.csv": ("\n".join(["0.1"] * 400 + [""] + ["0.1"] * 400), "fill the gaps"),
        "nan.npy": (np.r_[np.zeros(700), np.nan], "1 of the values are missing"),
        "wide.npy": (np.zeros((700, 2)), "one series"),
        "x.txt": ("1\n2\n", "expected a .npy or .csv"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        if name.endswith(".npy"):
            np.save(path, content)
        else:
            path.write_text(content)
        with pytest.raises(ShapeError, match=match):
            TASK.parse_input(str(path), META)
    with pytest.raises(ShapeError, match="does not exist"):
        TASK.parse_input(str(tmp_path / "missing.csv"), META)


def test_tiny_export_is_fused_calibrated_and_predicts(tmp_path, capsys):
    from export import export_model
    from zoo.train import train

    meta = train("lstm_autoencoder_tiny", out_dir=tmp_path, verbose=0)
    assert meta["split"]["train_samples"] == len(ecg.load("train_small"))
    threshold = meta["metrics"]["test"]["threshold"]
    out = tmp_path / "bundle"
    report = export_model("lstm_autoencoder_tiny", out, weights=tmp_path / meta["file"])
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])
    # predict thresholds with the reference's calibration, which the bundle records
    assert manifest["meta"]["threshold"] == pytest.approx(threshold, rel=1e-6)
    values, _ = ecg.raw()
    path = tmp_path / "ecg.npy"
    np.save(path, values[-700:])
    model = zoo.create_model("lstm_autoencoder_tiny", weights=tmp_path / meta["file"])
    windows = np.stack([values[-700:][s : s + 640] for s in (0, 20, 40, 60)])
    expected = model.predict(windows.astype(np.float32)[..., None], verbose=0)[1]
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("4 windows of 640 values (1.78 s) every 20; threshold")
        assert [int(line.split()[0]) for line in lines[1:-1]] == [0, 20, 40, 60]
        got = [float(line.split("score ")[1].split()[0]) for line in lines[1:-1]]
        np.testing.assert_allclose(got, expected, rtol=1e-5)  # printed to 6 digits
        assert lines[-1].endswith("of 4 windows over the threshold")


def test_card_states_the_target_and_the_baseline_margin():
    from export.cards import card_markdown

    card = card_markdown("lstm_autoencoder", None)
    assert "- target: f1 >= 0.6 — met (0.8302); reconstructing the training mean scores " \
           "0.4889, so the margin is +0.3413" in card
    assert "full int8 is larger and slower than dynamic range" in card
