"""Real series for multi-step forecasting, each split in time (the last 20 % tests):
``co2``, Mauna Loa CO2, monthly means 1958-2001 (statsmodels), and ``taylor``, half-hourly
electricity demand in England and Wales, 12 weeks of 2000 (pmdarima).

Each series is split in time: the first 80 % trains, the last 20 % tests (a test window's
history may reach back into the training part; its targets never do). A sample is a
``window`` of history and the next ``horizon`` values; test windows start at every step
of the test part whose targets fit.

- ``co2``: weekly CO2 at Mauna Loa, 1958-2001 (statsmodels), averaged per month (526
  months; 5 months without any measurement are interpolated linearly between their
  neighbours). Window 36 months, horizon 12, season 12.
- ``taylor``: half-hourly electricity demand in England and Wales, 12 weeks from 5 June
  2000 (4,032 values, MW; pmdarima). Window 336 (one week), horizon 48 (one day), season
  336 (the same half hour a week before).

The baseline is the seasonal naive forecast (the value one season before); MASE scales
errors by the seasonal naive method's in-sample mean absolute error on the training part
(Hyndman & Koehler 2006), so a MASE below the baseline's means beating it.
Licenses: statsmodels datasets public domain (NOAA); taylor: pmdarima MIT (data from
Taylor 2003, as shipped in R's forecast package, GPL-3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from zoo.constants import SERIES
from zoo.datasets.catalog import register_dataset
from zoo.errors import DataError, MissingExtraError

LICENSE = {"co2": "public domain (NOAA Mauna Loa, via statsmodels)",
           "taylor": "Taylor (2003) half-hourly demand, via pmdarima (MIT) / R forecast (GPL-3)"}
TEST_FRACTION = 0.2
SPLITS = ("train", "test", "calibration", "train_small")


@dataclass(frozen=True)
class Windows:
    """``x`` (N, window, 1) histories, ``y`` (N, horizon) the values that followed,
    ``naive`` (N, horizon) the seasonal naive forecasts, ``scale`` the MASE denominator."""

    x: np.ndarray
    y: np.ndarray
    naive: np.ndarray
    scale: float
    season: int

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int) -> Windows:
        """The first ``n`` windows (the MASE scale is the series', not the windows')."""
        return replace(self, x=self.x[:n], y=self.y[:n], naive=self.naive[:n])


@cache
def raw(name: str) -> np.ndarray:
    """The whole series as float64 (gaps filled as the module docstring says)."""
    if name == "co2":
        try:
            from statsmodels.datasets import co2
        except ImportError:
            raise MissingExtraError("the co2 series ships in 'statsmodels', which is not "
                                    "installed; install it with: pip install "
                                    "'lstm-zoo[forecast]'") from None
        monthly = co2.load_pandas().data["co2"].resample("MS").mean()
        return monthly.interpolate("linear").to_numpy(np.float64)
    if name == "taylor":
        try:
            from pmdarima.datasets import load_taylor
        except ImportError:
            raise MissingExtraError("the taylor series ships in 'pmdarima', which is not "
                                    "installed; install it with: pip install "
                                    "'lstm-zoo[forecast]'") from None
        return np.asarray(load_taylor(), np.float64)
    raise DataError(f"unknown series {name!r}; known: {sorted(SERIES)}")


def seasonal_scale(train: np.ndarray, season: int) -> float:
    """In-sample mean absolute error of the seasonal naive forecast (MASE's denominator)."""
    return float(np.mean(np.abs(train[season:] - train[:-season])))


def windows(series: np.ndarray, starts, window: int, horizon: int, season: int,
            scale: float) -> Windows:
    """Samples whose targets begin at each index of ``starts``."""
    starts = np.asarray(list(starts), np.int64)
    x = np.stack([series[s - window : s] for s in starts])[..., None]
    y = np.stack([series[s : s + horizon] for s in starts])
    # seasonal naive: each target step's value one season earlier (repeated when the
    # horizon is longer than the season)
    naive = np.stack([series[s - season + np.arange(horizon) % season] for s in starts])
    return Windows(x.astype(np.float32), y.astype(np.float32), naive.astype(np.float32),
                   scale, season)


def load(name: str, split: str) -> Windows:
    """Split ``split`` of series ``name`` as windows (see the module docstring);
    ``calibration``: every 2nd training window (CO2's 187 and its 94 test windows make
    the 200 inputs of tensor parity); ``train_small``: the last 256."""
    if name not in SERIES:
        raise DataError(f"unknown series {name!r}; known: {sorted(SERIES)}")
    if split not in SPLITS:
        raise DataError(f"{name} has splits {list(SPLITS)}; got {split!r}")
    return _load(name, split)


@cache
def _load(name: str, split: str) -> Windows:
    s = SERIES[name]
    series = raw(name)
    cut = int(round(len(series) * (1 - TEST_FRACTION)))
    w, h, m = s["window"], s["horizon"], s["season"]
    scale = seasonal_scale(series[:cut], m)
    first = max(w, m)
    if split == "test":
        return windows(series, range(cut, len(series) - h + 1), w, h, m, scale)
    starts = list(range(first, cut - h + 1))
    if split == "calibration":
        starts = starts[::2]
    elif split == "train_small":
        starts = starts[-256:]
    return windows(series, starts, w, h, m, scale)


def loader(name: str):
    """The loader of one series: ``split -> load(name, split)``."""
    return lambda split: load(name, split)


for _series in SERIES:  # co2 and taylor
    register_dataset(_series, license=LICENSE[_series], extra="forecast")(loader(_series))
