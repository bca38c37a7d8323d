"""A user's data: samples and labels, read and checked against the model; the metric they
allow; and the samples as a bundle keeps them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from export.compression.quantize import MIN_CALIBRATION_SAMPLES
from export.conversion.graphs import input_infos
from export.verification.runtime import FeedCheck
from zoo.errors import (
    ArtifactError,
    DataError,
    ShapeError,
    UnsupportedError,
)
from zoo.tasks.user import AGREEMENT, LABEL_METRICS, RELATIVE_ERROR, UserSamples

# The user's data

SAMPLES_FILE = "samples.npz"  # in a user bundle: the samples, labels, original outputs


def read_samples(source, model) -> dict[str, np.ndarray]:
    """Samples for the model's inputs: an array (one input), ``{name: array}``, a ``.npy``
    file, or a ``.npz`` with one array per input name; checked against the model.

    Raises:
        DataError: an unreadable file, fewer than 16 samples, arrays of unequal counts, a
            missing input.
        ShapeError: a shape, dtype or NaN / infinity that the model cannot take.
    """
    names = list(model.input_names)
    where = str(source) if isinstance(source, (str, Path)) else "samples"
    if isinstance(source, (str, Path)):
        arrays = _read_arrays(Path(source), "samples")
    elif isinstance(source, Mapping):
        arrays = {k: np.asarray(v) for k, v in source.items()}
    else:
        arrays = {"": np.asarray(source)}
    if set(arrays) == {""} or (len(arrays) == 1 and len(names) == 1):
        if len(names) != 1:
            raise DataError(f"{where}: the model takes {len(names)} inputs {names}; give a "
                            ".npz (or a dict) with one array per input name")
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = sorted(set(names) - set(arrays))
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        raise DataError(f"{where}: the model's inputs are {names}; got arrays {sorted(arrays)}"
                        + (f" (missing {missing})" if missing else "")
                        + (f" (unknown {extra})" if extra else ""))
    counts = {k: (len(v) if v.ndim else 0) for k, v in arrays.items()}
    if len(set(counts.values())) != 1:
        raise DataError(f"{where}: the inputs hold different numbers of samples {counts}")
    n = next(iter(counts.values()))
    if n < MIN_CALIBRATION_SAMPLES:
        raise DataError(f"{where}: {n} samples; parity and calibration need at least "
                        f"{MIN_CALIBRATION_SAMPLES}")
    check = FeedCheck([i.to_json() for i in input_infos(model)], where)
    for k, v in arrays.items():
        if v.dtype.kind not in "fiub":
            raise ShapeError(f"{where}: input {k!r} has dtype {v.dtype}; expected numbers")
    return check({k: arrays[k] for k in names})


def read_labels(source, n: int) -> np.ndarray:
    """Labels for ``n`` samples (an array or a ``.npy``): class ids, one-hot rows, or
    targets.

    Raises:
        DataError: an unreadable file, another count than the samples', NaN / infinity.
    """
    where = str(source) if isinstance(source, (str, Path)) else "labels"
    if isinstance(source, (str, Path)):
        arrays = _read_arrays(Path(source), "labels")
        if len(arrays) != 1:
            raise DataError(f"{where}: expected one array of labels; got {sorted(arrays)}")
        y = next(iter(arrays.values()))
    else:
        y = np.asarray(source)
    if y.ndim == 0 or len(y) != n:
        raise DataError(f"{where}: {0 if y.ndim == 0 else len(y)} labels for {n} samples; "
                        "expected one label per sample")
    if y.dtype.kind not in "fiub":
        raise DataError(f"{where}: labels of dtype {y.dtype}; expected numbers")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{where}: labels hold NaN or infinite values")
    return y


def _read_arrays(path: Path, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist; expected a .npy or .npz")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise DataError(f"{what} file {path}: expected a .npy or .npz; got "
                        f"{path.suffix or 'no suffix'}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{what} file {path}: cannot read numeric arrays ({e})") from None


def choose_metric(metric: str | None, labels, softmax: bool) -> str:
    """The metric to score with: the user's (needs labels), else agreement with the
    original model (top-1 for a softmax output, relative error otherwise)."""
    if metric is not None:
        if metric not in LABEL_METRICS:
            raise UnsupportedError(f"unknown metric {metric!r}; expected one of "
                                   f"{sorted(LABEL_METRICS)}")
        if labels is None:
            raise DataError(f"metric {metric!r} needs labels (--labels FILE); without labels "
                            "the drop is measured against the model's own fp32 outputs")
        return metric
    if labels is not None:
        return "accuracy" if softmax else "mse"
    return AGREEMENT if softmax else RELATIVE_ERROR



def samples_bytes(data: UserSamples) -> bytes:
    """The samples, labels and original outputs as ``.npz`` bytes (kept in the bundle, so
    ``lstm-zoo verify`` re-runs parity on them)."""
    import io

    arrays = {f"x/{k}": v for k, v in data.x.items()}
    arrays.update({f"original/{k}": v for k, v in data.original.items()})
    if data.y is not None:
        arrays["y"] = data.y
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def bundle_samples(path: Path) -> UserSamples:
    """The samples a user bundle was verified on (a zip whose arrays would unpack to more
    than a bundle's file may hold is refused before any is unpacked)."""
    from export.verification.manifest import MAX_FILE_BYTES

    try:
        with zipfile.ZipFile(path) as z:
            unpacked = sum(info.file_size for info in z.infolist())
        if unpacked > MAX_FILE_BYTES:
            raise ArtifactError(f"{path}: its arrays unpack to {unpacked:,} bytes; at most "
                                f"{MAX_FILE_BYTES:,}")
        with np.load(path, allow_pickle=False) as z:
            x = {k[2:]: z[k] for k in z.files if k.startswith("x/")}
            original = {k[9:]: z[k] for k in z.files if k.startswith("original/")}
            y = z["y"] if "y" in z.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: cannot read the bundle's samples ({e})") from None
    return UserSamples(x, y, original)
