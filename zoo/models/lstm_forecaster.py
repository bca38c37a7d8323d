"""Multi-step LSTM forecaster: a window of a series in, the next ``horizon`` values out.

The graph takes raw values (``history (B, window, 1)``) and
returns raw values (``forecast (B, horizon)``): it scales each window by its own mean and
standard deviation inside the graph, and the LSTM's output is a correction, in units of
that spread, to the seasonal naive forecast (the values one season earlier). So a device
feeds the series as measured, a trend that leaves the training range (CO2 keeps rising)
stays in the range the LSTM saw, and training starts from the baseline it must beat.
Trained on the mean absolute error divided by the seasonal naive method's in-sample
error: the MASE itself.

Two pretrained models: ``lstm_forecaster`` (electricity demand, one day ahead from one
week) and ``lstm_forecaster_co2`` (Mauna Loa CO2, a year ahead from three years); see
:mod:`zoo.datasets.series` for the data, the split and the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from zoo import layers
from zoo._keras import keras
from zoo.constants import SERIES
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops

EPSILON = 1e-6  # variance floor of a window: a constant window must not divide by zero


def lstm_forecaster(*, window: int = 336, horizon: int = 48, season: int | None = 336,
                    patch: int = 1, units: Sequence[int] = (64,), dropout: float = 0.0):
    """Builds ``history (B, window, 1) -> forecast (B, horizon)``.

    Args:
        window: values of history per forecast (fixed: LiteRT's XNNPack delegate failed to
            prepare the patch reshape over a dynamic length, measured).
        horizon: values forecast after the window.
        season: the series' season in steps: the LSTM learns a correction (in units of the
            window's spread) to the seasonal naive forecast, which it starts from. The
            window must hold at least one season. ``None``: no seasonal start (the
            forecast is the window's mean plus the correction).
        patch: values per LSTM step: the window is read in consecutive patches of this
            many values (48: one day of half hours per step), so the window length must
            be a multiple of it. 1: value by value.
        units: units of each stacked LSTM layer.
        dropout: dropout before the output layer (training only).

    Example:
        >>> from zoo import create_model
        >>> create_model("lstm_forecaster_tiny").output_names
        ['forecast']
    """
    units = tuple(int(u) for u in units)
    if not units or min(units) < 1:
        raise ValueError(f"units must be a non-empty sequence of positive ints; got {units}")
    if int(horizon) < 1:
        raise ValueError(f"horizon must be a positive int; got {horizon}")
    if season is not None and not int(horizon) <= int(season) <= int(window):
        raise ValueError(f"need horizon <= season <= window (the seasonal start repeats no "
                         f"value and comes from the window); got horizon {horizon}, season "
                         f"{season}, window {window}")
    if int(window) % int(patch):
        raise ValueError(f"window must be a multiple of patch; got window {window}, patch "
                         f"{patch}")
    history = keras.Input((int(window), 1), name="history")
    mean, std = layers.WindowScale(EPSILON, name="window_scale")(history)
    x = keras.layers.Lambda(lambda a: (a[0] - a[1][:, :, None]) / a[2][:, :, None],
                            name="standardize")([history, mean, std])
    if int(patch) > 1:
        x = keras.layers.Reshape((-1, int(patch)), name="patches")(x)
    for i, n in enumerate(units):
        x = keras.layers.LSTM(n, return_sequences=i < len(units) - 1, name=f"lstm_{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    z = keras.layers.Dense(int(horizon), name="standardized_forecast")(x)
    start = mean if season is None else layers.SeasonalNaive(
        season, horizon, name="seasonal_naive")(history)
    forecast = keras.layers.Lambda(lambda a: a[0] * a[2] + a[1], name="forecast")([z, start, std])
    return keras.Model(history, forecast, name="lstm_forecaster")


GRAPHS = (GraphSpec("forecaster", ("history",), ("forecast",)),)


def _meta(name: str) -> dict:
    s = SERIES[name]
    return {"series": name, "window": s["window"], "horizon": s["horizon"],
            "season": s["season"], "unit": s["unit"], "step": s["step"]}


def _tolerance(unit: str, typical: str) -> dict:
    return {
        "fp32": Tolerance(
            1e-4, f"forecasts are raw values ({unit}, {typical}), which float32 rounds to "
                  "~6e-8 of their size; the LSTM kernels sum in another order than "
                  "TensorFlow's: a forecast may move by 1e-6 of its value besides 1e-4 "
                  "absolute (measured, shipped weights: 9.2e-5 ppm on CO2, 7.8e-3 MW = "
                  "2.6e-7 relative on demand, LiteRT and ORT)",
            relative={"forecast": 1e-6}),
        "float16": Tolerance(
            1e-3, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 "
                  "per weight): a forecast may move by 2e-3 of its value (measured, "
                  "shipped weights, LiteRT: 1.2e-3 ppm on CO2, 1.5 MW = 5e-5 relative on "
                  "demand)",
            relative={"forecast": 2e-3}),
    }


METRIC_DROP = {
    "fp32": Tolerance(1e-5, "MASE is continuous: forecasts that agree to float32 rounding "
                            "(checked per window: disagreements must be 0) still move it in "
                            "the 6th digit (1.2e-6 measured, tiny model on ORT)"),
    "dynamic": Tolerance(0.02, "int8 weights: MASE may rise by at most 0.02"),
    "float16": Tolerance(0.005, "float16 weights: MASE may rise by at most 0.005"),
    "compressed": Tolerance(0.05, "pruned or clustered weights (fine-tuned): MASE may rise "
                                  "by at most 0.05"),
}
# Measured with the shipped weights (lstm-zoo export NAME --precision ...,int8).
INT8_GAP = (
    "full int8 quantizes the raw series and the per-window scaling: on CO2 (310-375 ppm in "
    "256 steps of 0.25 ppm, against windows that vary by ~2 ppm) MASE rose from 0.395 to "
    "5.6 on LiteRT and 5.5 on ORT; on electricity demand LiteRT's int8 DIV failed at run "
    "time (a window's spread quantized to zero). Use dynamic or float16 (weights only)")
PRECISIONS = ("fp32", "dynamic", "float16")
LIMITATIONS = (
    "One series per model, split in time (the last 20 % is test): the test period "
    "follows the training period directly; later regimes are untested.",
    "Point forecasts only (no intervals).",
)

SPEC = register_model(ModelSpec(
    name="lstm_forecaster",
    builder=lstm_forecaster,
    family="lstm_forecaster",
    task="forecast",
    graphs=GRAPHS,
    data=DataSpec(dataset="taylor", train="train", test="test", calibration="calibration"),
    # one day of half hours per LSTM step, from last week's values (validation MASE 0.75,
    # against 1.23 value by value, on the last fifth of the training windows)
    defaults={"window": SERIES["taylor"]["window"], "horizon": SERIES["taylor"]["horizon"],
              "season": SERIES["taylor"]["season"], "patch": 48, "units": (64,)},
    docs="forecasting.md",
    description="LSTM(64) forecaster: the next day (48 half hours) of electricity demand "
                "from the past week (336 values, read a day per step), as a correction to "
                "last week's values, scaled per window inside the graph.",
    weights=("taylor",),
    intended_use="Day-ahead forecasts of a half-hourly load or demand series on a device "
                 "(retrain with the recipe for another series: zoo.finetune does not take "
                 "forecasters yet).",
    limitations=(*LIMITATIONS, "Trained on 12 weeks of one grid (England and Wales, June to "
                               "August 2000): no winter, no holidays."),
    tensor_tolerance=_tolerance("MW", "about 20,000-40,000"),
    metric_drop=METRIC_DROP,
    **fused_lstm(PRECISIONS, int8=INT8_GAP),
    meta=_meta("taylor"),
    recipe={"epochs": 30, "batch_size": 32, "learning_rate": 2e-3, "schedule": "cosine",
            "seed": 0, "target": {"mase": ("<", 1.0)},
            "reproduce_tolerance": {"mase": 0.03}},
))

CO2 = register_model(replace(
    SPEC,
    name="lstm_forecaster_co2",
    data=DataSpec(dataset="co2", train="train", test="test", calibration="calibration"),
    # one year of months per LSTM step, from the window's mean (validation MASE 0.38; 0.41
    # from last year's values, 0.42-0.47 month by month)
    defaults={"window": SERIES["co2"]["window"], "horizon": SERIES["co2"]["horizon"],
              "season": None, "patch": 12, "units": (32,)},
    description="LSTM(32) forecaster: the next 12 months of Mauna Loa CO2 from the past 36 "
                "(read a year per step), scaled per window inside the graph.",
    weights=("co2",),
    intended_use="Year-ahead forecasts of a monthly series with trend and yearly season "
                 "(retrain with the recipe for another series: zoo.finetune does not take "
                 "forecasters yet).",
    limitations=(*LIMITATIONS, "Trained on 1958-1993 monthly means of one station; 5 "
                               "months without data were interpolated."),
    tensor_tolerance=_tolerance("ppm", "about 310-375"),
    meta=_meta("co2"),
    recipe={"epochs": 60, "batch_size": 16, "learning_rate": 2e-3, "schedule": "cosine",
            "seed": 0, "target": {"mase": ("<", 1.0)},
            "reproduce_tolerance": {"mase": 0.05}},
))

tiny_variant(
    CO2,
    name="lstm_forecaster_tiny",
    defaults={"window": SERIES["co2"]["window"], "horizon": SERIES["co2"]["horizon"],
              "season": SERIES["co2"]["season"], "patch": 1, "units": (4,)},
    data=replace(CO2.data, train="train_small"),
    recipe={"epochs": 2, "batch_size": 32, "learning_rate": 1e-2, "seed": 0},
    metric_drop=loose_drops(METRIC_DROP, 5.0, "the tiny variant is trained for 2 epochs: "
                                              "tests check the mechanics, the pretrained "
                                              "models the MASE"),
)
