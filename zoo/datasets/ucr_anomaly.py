"""The UCR time-series anomaly archive's file 135 (InternalBleeding16: arterial blood
pressure, one labelled 12-sample anomaly), as aeon ships it, split in time: the archive's
1,200-sample training prefix to train, the next 1,200 samples to set the detection
threshold, the rest to test.

``aeon/datasets/data/KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_{TRAIN,TEST}.csv``
(columns ``timestamp, value, is_anomaly``): 7,501 samples of an arterial blood pressure
trace (a beat every ~183 samples), the first 1,200 anomaly-free by the archive's
convention (the TRAIN file is that prefix), one labelled anomaly at samples 4,187-4,198:
twelve samples of jitter on a beat's downslope. aeon 1.6 pins numpy below the version
TensorFlow 2.21 runs with, so ``lstm-zoo fetch-data`` takes its wheel with ``pip download
--no-deps`` once, checks its sha256 and keeps the two CSV files in
``$LSTM_ZOO_UCR`` or ``~/.cache/lstm-zoo/ucr`` (:mod:`zoo.datasets.registry_files`).

Split in time, as for the ECG (:mod:`zoo.datasets.ecg`, whose :class:`~zoo.datasets.ecg.
Windows` it returns): ``train`` a window at every sample of 0-1,199 (the archive's
training part); ``threshold`` windows of 1,200-2,399 every ``STRIDE`` (unlabelled, before
the anomaly; never trained on); ``test`` those threshold windows first, then windows of
2,400-7,500 every ``STRIDE``; a window is anomalous when it overlaps the labelled samples.
The naive baseline scores a window by the mean squared distance of its values from the
training mean in training standard deviations.
License: UCR Time Series Anomaly Archive (Wu and Keogh 2021), research use; aeon (BSD-3).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from zoo.constants import UCR_STRIDE as STRIDE
from zoo.constants import UCR_WINDOW as WINDOW
from zoo.datasets import registry_files
from zoo.datasets.catalog import Fetch, register_dataset
from zoo.datasets.ecg import Windows, time_split
from zoo.datasets.registry_files import Archive
from zoo.errors import DataError

LICENSE = ("UCR Time Series Anomaly Archive, file 135 (Wu and Keogh 2021; research use), as "
           "shipped by aeon 1.6 (BSD-3)")
STEM = "135_UCR_Anomaly_InternalBleeding16"
TRAIN_END, CALIBRATION_END = 1200, 2400
SAMPLES = 7501  # of the TEST file (the whole series)
SPLITS = ("train", "threshold", "test", "train_small")


def _pick(name: str) -> str | None:
    parts = Path(name).parts
    if parts[-2:-1] == ("KDD-TSAD_135",) and parts[-1].startswith(STEM):
        return parts[-1]
    return None


ARCHIVE = Archive("aeon==1.6.0", "aeon-1.6.0-py3-none-any.whl",
                  "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409",
                  binary=True, pick=_pick,
                  markers=(f"{STEM}_TRAIN.csv", f"{STEM}_TEST.csv"), env="LSTM_ZOO_UCR",
                  cache="ucr")


def fetch(root: str | Path | None = None) -> Path:
    """Takes the two CSV files out of aeon's wheel once (see the module docstring)."""
    return registry_files.fetch(ARCHIVE, root)


def _fetch_all(root: str | None) -> str:
    return f"the UCR anomaly archive's file 135 (aeon's wheel) in {fetch(root)}"


FETCH = Fetch(_fetch_all, "the UCR anomaly file (aeon's wheel, via pip download)",
              option="--ucr-to", option_help="folder of the UCR anomaly file (default: "
                                             "$LSTM_ZOO_UCR, else ~/.cache/lstm-zoo/ucr)")


@cache
def raw() -> tuple[np.ndarray, np.ndarray]:
    """The whole series (float64) and its 0/1 labels, from the TEST file (which begins
    with the TRAIN file's 1,200 samples; checked)."""
    root = ARCHIVE.root()
    files = {part: root / f"{STEM}_{part}.csv" for part in ("TRAIN", "TEST")}
    if not all(f.is_file() for f in files.values()):
        raise DataError(f"the UCR anomaly file is not in {root}; fetch it once with "
                        "`lstm-zoo fetch-data` (aeon's wheel, via pip download), or set "
                        "LSTM_ZOO_UCR to a folder that has it")
    registry_files.verify(root, "the UCR anomaly file")
    test, train = _csv(files["TEST"]), _csv(files["TRAIN"])
    values, labels = test["value"].astype(np.float64), test["is_anomaly"].astype(np.int64)
    if len(test) != SAMPLES or not np.isfinite(values).all():
        raise DataError(f"{files['TEST']}: expected {SAMPLES} finite samples; got "
                        f"{len(test)} ({int(np.isnan(values).sum())} not numbers): a damaged "
                        "copy; run `lstm-zoo fetch-data`, which fetches it again")
    if len(train) != TRAIN_END or not np.array_equal(train["value"], values[:TRAIN_END]):
        n = min(len(train), TRAIN_END)
        differ = np.flatnonzero(train["value"][:n] != values[:n])
        raise DataError(f"{files['TRAIN']}: expected the TEST file's first {TRAIN_END} "
                        f"samples; got {len(train)} samples"
                        + (f", differing first at {differ[0]}" if differ.size else ""))
    return values, labels


def _csv(path: Path) -> np.ndarray:
    try:
        table = np.genfromtxt(path, delimiter=",", names=True)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        why = " ".join(str(e).split())  # numpy's message spans lines
        raise DataError(f"{path}: not the archive's CSV ({why}); run `lstm-zoo fetch-data`, "
                        "which fetches it again") from None
    if table.dtype.names is None or not {"value", "is_anomaly"} <= set(table.dtype.names) \
            or table.ndim != 1:
        raise DataError(f"{path}: expected columns timestamp, value, is_anomaly; got "
                        f"{table.dtype.names}: a damaged copy; run `lstm-zoo fetch-data`, "
                        "which fetches it again")
    return table


@register_dataset("ucr135", license=LICENSE, extra="", fetch=FETCH)
def load(split: str, window: int = WINDOW) -> Windows:
    """Split ``split`` as windows (see the module docstring); ``train_small``: every 4th
    training window (the calibration windows: quantization and extra tensor parity)."""
    if split not in SPLITS:
        raise DataError(f"ucr135 has splits {list(SPLITS)}; got {split!r}")
    return _load(split, int(window))


@cache
def _load(split: str, window: int) -> Windows:
    values, labels = raw()
    return time_split(values, labels, split, window, TRAIN_END, CALIBRATION_END, STRIDE,
                      "ucr135")
