"""A real ECG for anomaly detection: sktime's MIT-BIH excerpt (``mitdb``), split in time:
12.5 s of normal rhythm to train, the next 3.6 s to set the detection threshold, then the
last 4.7 s, holding the one labelled anomaly, to test.

7,500 samples of one ECG lead at 360 Hz (about 21 s, ~26 beats), as sktime ships it
(``sktime/datasets/data/mitdb/mitdb.csv``: columns ``data`` in mV and ``label``). One
segment is labelled anomalous (samples 6,936-7,287): a premature beat and the pause after
it. Everything before it is normal rhythm.

The series is split in time, and the model never sees the anomaly before the test:
- ``train``: samples 0-4,499, a window starting at every sample (normal rhythm only);
- ``threshold``: windows of samples 4,500-5,799 every ``STRIDE`` samples (normal only,
  never trained on); the detection threshold is set on these;
- ``test``: windows of samples 5,800-7,499 every ``STRIDE`` samples (the anomaly and the
  normal beats around it). A window is anomalous when it overlaps the labelled segment.

The test split also carries the threshold windows (``n_calibration`` of them first):
each backend sets its own threshold on its own scores of normal data, as a device would
(see :class:`zoo.tasks.AnomalyDetection`).

The naive baseline scores a window by the mean squared distance of its values from the
training mean, in training standard deviations (an autoencoder that always reconstructs
the mean), with its threshold set on the same threshold windows the same way.
License: MIT-BIH Arrhythmia Database excerpt as shipped by sktime (BSD-3); PhysioNet
distributes the database under ODC-By 1.0, research use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from zoo.constants import ECG_STRIDE as STRIDE
from zoo.constants import ECG_WINDOW as WINDOW
from zoo.datasets.catalog import package_file, register_dataset
from zoo.errors import DataError

LICENSE = ("MIT-BIH Arrhythmia Database excerpt (PhysioNet, ODC-By 1.0; research use), as "
           "shipped by sktime (BSD-3)")
TRAIN_END, CALIBRATION_END = 4500, 5800
SPLITS = ("train", "threshold", "test", "train_small")


@dataclass(frozen=True)
class Windows:
    """``x`` (N, window, 1) windows of the ECG (mV); ``starts`` their first samples;
    ``labels`` (N,) 1 where a window overlaps the labelled anomaly. The first
    ``n_calibration`` windows are the normal windows the threshold is set on, the rest
    are scored. ``naive`` (N,) the baseline's score of every window."""

    x: np.ndarray
    starts: np.ndarray
    labels: np.ndarray
    naive: np.ndarray
    n_calibration: int

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int) -> Windows:
        """The threshold windows and the first ``n`` scored windows (``--limit``)."""
        keep = self.n_calibration + max(int(n), 1)
        return Windows(self.x[:keep], self.starts[:keep], self.labels[:keep],
                       self.naive[:keep], self.n_calibration)


@cache
def raw() -> tuple[np.ndarray, np.ndarray]:
    """The whole ECG (float64, mV) and its 0/1 labels."""
    path = package_file("sktime", "datasets/data/mitdb/mitdb.csv", "anomaly")
    table = np.genfromtxt(path, delimiter=",", names=True)
    return table["data"].astype(np.float64), table["label"].astype(np.int64)


def _windows(values, labels, starts, window, mean, std, n_calibration) -> Windows:
    starts = np.asarray(starts, np.int64)
    x = np.stack([values[s : s + window] for s in starts])[..., None].astype(np.float32)
    hit = np.array([labels[s : s + window].any() for s in starts], np.int64)
    naive = np.mean(np.square((x[..., 0] - mean) / std), axis=1)
    return Windows(x, starts, hit, naive.astype(np.float32), int(n_calibration))


@register_dataset("mitdb", license=LICENSE, extra="anomaly")
def load(split: str, window: int = WINDOW) -> Windows:
    """Split ``split`` of the ECG as windows (see the module docstring); ``train_small``:
    every 4th training window (the tiny model's training set; the quantization
    calibration and extra tensor-parity windows of both models)."""
    if split not in SPLITS:
        raise DataError(f"mitdb has splits {list(SPLITS)}; got {split!r}")
    return _load(split, int(window))


@cache
def _load(split: str, window: int) -> Windows:
    values, labels = raw()
    return time_split(values, labels, split, window, TRAIN_END, CALIBRATION_END, STRIDE,
                      "mitdb")


def time_split(values, labels, split: str, window: int, train_end: int, calibration_end: int,
               stride: int, name: str) -> Windows:
    """Windows of one labelled series split in time: ``train`` a window at every sample
    before ``train_end`` (``train_small`` every 4th), ``threshold`` windows of
    ``train_end``..``calibration_end`` every ``stride``, ``test`` those threshold windows
    first and then windows of the rest every ``stride``; the naive scores use the training
    part's mean and standard deviation.

    Raises:
        DataError: a label falls before ``calibration_end`` (the split assumes normal data).
    """
    if labels[:calibration_end].any():
        raise DataError(f"{name}: a label falls in the training or threshold part; the split "
                        "assumes normal data there")
    mean, std = values[:train_end].mean(), values[:train_end].std()
    calibration = range(train_end, calibration_end - window + 1, stride)
    if split in ("train", "train_small"):
        starts = range(0, train_end - window + 1, 1 if split == "train" else 4)
        return _windows(values, labels, starts, window, mean, std, 0)
    if split == "threshold":
        return _windows(values, labels, calibration, window, mean, std, len(calibration))
    test = range(calibration_end, len(values) - window + 1, stride)
    return _windows(values, labels, [*calibration, *test], window, mean, std,
                    len(calibration))
