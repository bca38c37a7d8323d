"""lstm_forecaster: the real series and their split, the seasonal naive baseline, the
in-graph window scaling, bad series, and the tiny model's export and predict (the
pretrained models: test_pretrained.py, test_parity_matrix.py)."""

import json

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo.datasets import series
from zoo.errors import DataError, ShapeError
from zoo.tasks import get_task

TASK = get_task("forecast")
META = zoo.get_spec("lstm_forecaster_co2").meta


def test_series_are_the_real_data_split_in_time():
    co2, taylor = series.raw("co2"), series.raw("taylor")
    assert len(co2) == 526 and np.isfinite(co2).all()  # 1958-03 .. 2001-12, gaps filled
    assert 313 < co2[0] < 317 and 369 < co2[-1] < 373
    assert len(taylor) == 4032 and taylor[0] == 22262.0
    for name in ("co2", "taylor"):
        s = series.SERIES[name]
        full = series.raw(name)
        cut = int(round(len(full) * 0.8))
        train, test = series.load(name, "train"), series.load(name, "test")
        assert train.x.shape[1:] == (s["window"], 1) and test.y.shape[1] == s["horizon"]
        # every training target lies before the cut; test targets start at the cut
        assert len(train) == cut - s["horizon"] + 1 - max(s["window"], s["season"])
        assert len(test) == len(full) - s["horizon"] + 1 - cut
        np.testing.assert_array_equal(test.y[0], full[cut : cut + s["horizon"]].astype(np.float32))
        np.testing.assert_array_equal(test.x[-1, :, 0], full[len(full) - s["horizon"] - s[
            "window"] : len(full) - s["horizon"]].astype(np.float32))
        # the baseline: the value one season before each target
        m = s["season"]
        np.testing.assert_array_equal(test.naive[0], full[cut - m : cut - m + s["horizon"]]
                                      .astype(np.float32))
        assert train.scale == pytest.approx(np.mean(np.abs(full[m:cut] - full[:cut - m])))
    with pytest.raises(DataError, match="splits"):
        series.load("co2", "validation")
    with pytest.raises(DataError, match="unknown series"):
        series.load("sunspots", "train")


def test_scores_and_the_naive_baseline():
    data = series.load("co2", "test")
    scores = TASK.score(data.naive, data, META)  # the naive forecast scored as a model
    assert scores["mase"] == pytest.approx(scores["naive_mase"])
    assert scores["naive_mase"] == pytest.approx(
        np.abs(data.naive.astype(np.float64) - data.y).mean() / data.scale)
    perfect = TASK.score(data.y, data, META)
    assert perfect["mase"] == 0 and perfect["smape"] == 0


def test_the_graph_scales_each_window_itself():
    """Forecasts are equivariant to the units: f(a*x + b) = a*f(x) + b, so a series far
    outside the training range is forecast as one inside it; a flat window is finite."""
    model = zoo.create_model("lstm_forecaster_tiny")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    x = rng.normal(size=(3, 36, 1)).astype(np.float32)
    a, b = 250.0, 1e4
    np.testing.assert_allclose(model(a * x + b).numpy(), a * model(x).numpy() + b,
                               rtol=1e-5, atol=1e-2)
    flat = np.full((1, 36, 1), 5.0, np.float32)
    assert np.isfinite(model(flat).numpy()).all()


def test_series_input_is_checked(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("co2\n" + "\n".join(str(v) for v in series.raw("co2")[-40:]) + "\n")
    x = TASK.parse_input(str(ok), META)
    assert x.shape == (1, 36, 1)
    np.testing.assert_allclose(x[0, :, 0], series.raw("co2")[-36:], rtol=1e-6)
    cases = {
        "gap.csv": ("value\n" + "\n".join(["1.0"] * 20 + [""] + ["1.0"] * 20), "fill the gaps"),
        "first_gap.csv": ("\n" + "\n".join(["1.0"] * 35), "fill the gaps"),
        "nan.csv": ("\n".join(["1.0"] * 35 + ["nan"]), "missing, NaN or infinite"),
        "short.csv": ("\n".join(["1.0"] * 35), "35 values; the model forecasts from the last 36"),
        "words.csv": ("a\nb\nc\n", "cannot read a series"),
        "x.txt": ("1\n2\n", "expected a .npy or .csv"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(ShapeError, match=match):
            TASK.parse_input(str(path), META)
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((40, 2)))
    with pytest.raises(ShapeError, match="one series"):
        TASK.parse_input(str(wide), META)
    with pytest.raises(ShapeError, match="does not exist"):
        TASK.parse_input(str(tmp_path / "missing.csv"), META)


def test_tiny_export_is_fused_and_forecasts(tmp_path, capsys):
    from export import export_model
    from zoo.train import train

    meta = train("lstm_forecaster_tiny", out_dir=tmp_path, verbose=0)
    assert meta["split"]["train_samples"] == 256
    out = tmp_path / "bundle"
    report = export_model("lstm_forecaster_tiny", out, weights=tmp_path / meta["file"])
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])
    path = tmp_path / "series.npy"
    np.save(path, series.raw("co2")[-36:])
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        values = [float(v) for v in capsys.readouterr().out.split()]
        assert len(values) == 12


def test_cards_state_the_target_and_the_baseline_margin():
    from export.cards import card_markdown

    card = card_markdown("lstm_forecaster_co2", None)
    assert "- target: mase < 1.0 — met (0.3950); the seasonal naive forecast scores 1.4139" \
        in card
    assert "full int8 quantizes the raw series" in card  # the withdrawn precision, and why
