"""A user's training data and loss, for the compression stages that fine-tune (prune,
structured, cluster, QAT): read, checked against the model, and the recipe they train with.

The loss is the one the model was compiled with, read from the file's saved compile config
(``.keras`` of either Keras, tf_keras ``.h5``) or the compiled model object, else the
user's ``--loss``; either way only a Keras loss by name (:func:`zoo.tasks.user.check_loss`),
so nothing in the file runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export.user.data import _read_arrays, read_samples
from export.user.keras3_read import _json_member, _open_zip
from zoo.errors import DataError, UnsupportedError
from zoo.tasks.user import UserTrain, check_loss

# Fine-tuning a user model after compression, unless the user says otherwise: a few epochs
# at a rate well below a typical training rate, so the compressed weights are nudged back,
# not retrained.
EPOCHS = 3
BATCH_SIZE = 32
LEARNING_RATE = 1e-4


def user_recipe(*, epochs: int | None, batch_size: int | None,
                learning_rate: float | None) -> dict[str, Any]:
    """The recipe every compression stage fine-tunes a user model with."""
    recipe = {"epochs": EPOCHS if epochs is None else int(epochs),
              "batch_size": BATCH_SIZE if batch_size is None else int(batch_size),
              "learning_rate": LEARNING_RATE if learning_rate is None else float(learning_rate),
              "seed": 0}
    if recipe["epochs"] < 1 or recipe["batch_size"] < 1 or not recipe["learning_rate"] > 0:
        raise UnsupportedError(f"fine-tuning needs epochs >= 1, batch size >= 1 and a "
                               f"learning rate > 0; got {recipe['epochs']}, "
                               f"{recipe['batch_size']}, {recipe['learning_rate']}")
    return recipe


def read_train(source, model) -> UserTrain:
    """Training arrays for ``model``: a ``.npz`` (or a dict) with ``x`` and ``y`` (one input
    and one output), or one array per input name and per output name; or a pair ``(x, y)``.

    Raises:
        DataError: an unreadable file, missing arrays, counts that differ, labels with NaN.
        ShapeError: inputs the model cannot take.
    """
    inputs, outputs = list(model.input_names), list(model.output_names)
    where = str(source) if isinstance(source, (str, Path)) else "training data"
    if isinstance(source, tuple) and len(source) == 2:
        x, y = source
    else:
        arrays = _read_arrays(Path(source), "training data") \
            if isinstance(source, (str, Path)) else dict(source)
        if "x" in arrays and "y" in arrays and len(inputs) == 1 and len(outputs) == 1:
            x, y = arrays["x"], arrays["y"]
        else:
            missing = sorted(set(inputs + outputs) - set(arrays))
            if missing:
                raise DataError(
                    f"{where}: expected arrays 'x' and 'y' (one input, one output) or one per "
                    f"input {inputs} and output {outputs}; missing {missing}, got "
                    f"{sorted(arrays)}")
            x, y = {k: arrays[k] for k in inputs}, {k: arrays[k] for k in outputs}
    xs = read_samples(x, model)  # the checks the samples get: shapes, dtypes, finite, >= 16
    n = len(next(iter(xs.values())))
    ys = dict(y) if isinstance(y, Mapping) else {outputs[0]: y}
    if sorted(ys) != sorted(outputs):
        raise DataError(f"{where}: targets for outputs {sorted(ys)}; the model's outputs are "
                        f"{outputs}")
    for k, v in ys.items():
        v = np.asarray(v)
        if v.ndim == 0 or len(v) != n:
            raise DataError(f"{where}: {0 if v.ndim == 0 else len(v)} targets for output "
                            f"{k!r} and {n} inputs; expected one per sample")
        if v.dtype.kind not in "fiub" or (v.dtype.kind == "f" and not np.isfinite(v).all()):
            raise DataError(f"{where}: targets for {k!r} must be finite numbers; got "
                            f"dtype {v.dtype}" + (" with NaN or infinite values"
                                                  if v.dtype.kind == "f" else ""))
        ys[k] = v
    return UserTrain(xs, ys)


def saved_loss(model_or_path, loss=None):
    """The loss to fine-tune with, checked: ``loss`` (the user's) if given, else the one
    the model was compiled with.

    Raises:
        UnsupportedError: no saved loss and none given, or a loss that is not Keras' own.
    """
    if loss is not None:
        return check_loss(loss, "--loss")
    found = _compiled_loss(model_or_path)
    if found is None:
        raise UnsupportedError(
            "compressing a user model fine-tunes it, and the model was saved without a loss "
            "(not compiled, or a SavedModel folder); pass --loss NAME (e.g. "
            "sparse_categorical_crossentropy, mse)")
    return check_loss(found, "the model's saved loss")


def _compiled_loss(model_or_path):
    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
        try:
            if path.suffix.lower() == ".keras":  # read as the Keras 3 reader does: bounded
                with _open_zip(path) as zf:
                    compile_config = _json_member(zf, "config.json", path).get("compile_config")
            elif path.suffix.lower() in (".h5", ".hdf5"):
                import h5py

                with h5py.File(path, "r") as f:
                    raw = f.attrs.get("training_config")
                compile_config = None if raw is None else json.loads(
                    raw.decode() if isinstance(raw, bytes) else raw)
            else:
                return None
        except (OSError, ValueError) as e:  # the .h5's attribute
            raise DataError(f"{path}: cannot read the saved compile config ({e})") from None
        return (compile_config or {}).get("loss")
    loss = getattr(model_or_path, "loss", None)
    if loss is None or isinstance(loss, (str, Mapping)):
        return loss
    if callable(loss) and hasattr(loss, "get_config"):  # a Loss object of either Keras
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", repr(loss))
