"""The task of a user's own model: arrays in, arrays out, scored on the user's samples.

A user model has no dataset of ours and no task code of its own. Its samples are the test
data (and the calibration data); its metric is either one the user names, measured
against labels they give, or, without labels, how closely a backend reproduces the
ORIGINAL model's outputs (for a Keras 3 model, Keras 3's own outputs, not the tf_keras
twin's): the fraction of samples with the same top-1 class for a softmax output, else the
relative error.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import DataError, ShapeError, UnsupportedError
from zoo.tasks.base import Task, register_task

# metric -> higher is better
LABEL_METRICS = {"accuracy": True, "top5": True, "f1": True, "auc": True, "mse": False,
                 "mae": False}
# Without labels: agreement with the original model's outputs.
AGREEMENT = "agreement"  # top-1 agreement, for a softmax output
RELATIVE_ERROR = "relative_error"  # ||got - original|| / ||original||, otherwise
# Two fp32 predictions count as the same when no value differs by more than this: the
# bound fp32 artifacts are held to against the original model (same float32 function,
# kernels that sum in another order).
SAME_VALUES = 1e-5


# Losses a user model can fine-tune with: Keras' own, by the name a compile config saves
# (a function name, or a class name with its config); anything else is refused, so nothing
# from a user's file is executed.
LOSS_FUNCTIONS = (
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "huber", "log_cosh",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "kl_divergence",
    "poisson", "hinge", "squared_hinge", "categorical_hinge", "cosine_similarity")
LOSS_CLASSES = (
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "Huber", "LogCosh", "KLDivergence", "Poisson",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Hinge", "SquaredHinge",
    "CategoricalHinge", "CosineSimilarity")
LOSS_OPTIONS = ("from_logits", "label_smoothing", "axis", "delta", "ignore_class")
# saved beside the options, and not needed to rebuild a loss (reductions are named
# differently by Keras 3 and tf_keras; "fn" is the function a tf_keras class wraps)
LOSS_IGNORED = ("reduction", "name", "fn", "dtype")


def check_loss(loss, where: str = "loss"):
    """A loss as a compile config saves it, checked: a function name of
    :data:`LOSS_FUNCTIONS`, a class name of :data:`LOSS_CLASSES` (its defaults), or
    ``{"class_name": one of LOSS_CLASSES, "config": {...}}``
    with only :data:`LOSS_OPTIONS` (``{output name: loss}`` for several outputs).

    Raises:
        UnsupportedError: another loss (a custom one is never loaded; pass a built-in by
            name with ``--loss``).

    Example:
        >>> check_loss({"class_name": "SparseCategoricalCrossentropy",
        ...             "config": {"from_logits": True}})["class_name"]
        'SparseCategoricalCrossentropy'
    """
    if isinstance(loss, str) and loss in LOSS_CLASSES:
        return {"class_name": loss, "config": {}}
    if isinstance(loss, str):
        if loss not in LOSS_FUNCTIONS:
            raise UnsupportedError(f"{where}: {loss!r} is not a Keras loss lstm-zoo trains "
                                   f"with; expected one of {list(LOSS_FUNCTIONS)}")
        return loss
    if isinstance(loss, Mapping) and "class_name" in loss:
        name = loss["class_name"]
        options = {k: v for k, v in dict(loss.get("config") or {}).items()
                   if k not in LOSS_IGNORED}
        if name not in LOSS_CLASSES:
            raise UnsupportedError(f"{where}: loss class {name!r} is not a Keras loss "
                                   f"lstm-zoo trains with; expected one of "
                                   f"{list(LOSS_CLASSES)}, or pass --loss NAME")
        unknown = sorted(set(options) - set(LOSS_OPTIONS))
        if unknown:
            raise UnsupportedError(f"{where}: loss {name} has options {unknown}, which "
                                   f"lstm-zoo does not read; expected only {list(LOSS_OPTIONS)}")
        return {"class_name": name, "config": options}
    if isinstance(loss, Mapping) and loss:
        return {str(k): check_loss(v, f"{where} of output {k!r}") for k, v in loss.items()}
    raise UnsupportedError(f"{where}: expected a Keras loss name or class; got {loss!r}")


def keras_loss(loss):
    """The tf_keras loss object of a :func:`check_loss`-checked description."""
    from zoo._keras import keras

    if isinstance(loss, str):
        return keras.losses.get(loss)
    if "class_name" in loss:
        return getattr(keras.losses, loss["class_name"])(**loss["config"])
    return {k: keras_loss(v) for k, v in loss.items()}


@dataclass(frozen=True)
class UserTrain:
    """A user's training data: ``x`` one array per input, ``y`` one array per output (N
    first)."""

    x: Mapping[str, np.ndarray]
    y: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))


@dataclass(frozen=True)
class UserSamples:
    """A user's samples: ``x`` one array per input (N first), ``y`` optional labels, and
    ``original`` the original model's outputs on ``x`` (one array per output)."""

    x: Mapping[str, np.ndarray]
    y: np.ndarray | None
    original: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))

    def head(self, n: int) -> UserSamples:
        return UserSamples({k: v[:n] for k, v in self.x.items()},
                           None if self.y is None else self.y[:n],
                           {k: v[:n] for k, v in self.original.items()})


class UserModelTask(Task):
    """Task of a user model; its ``meta`` (in the bundle) holds the input and output
    names, which output is scored, the metric, and whether that output is a softmax; one
    instance per model (:meth:`for_meta`)."""

    name = "user"
    softmax = False  # the scored output is a softmax (meta["softmax"]): see for_meta
    compressed = False  # fine-tuned by compression (meta["compressed"]): see checks

    def __init__(self, metric: str):
        if metric not in LABEL_METRICS and metric not in (AGREEMENT, RELATIVE_ERROR):
            raise UnsupportedError(f"unknown metric {metric!r}; expected one of "
                                   f"{sorted(LABEL_METRICS)}")
        self.metric = metric
        self.higher_is_better = LABEL_METRICS.get(metric, metric == AGREEMENT)

    def for_meta(self, meta: Mapping[str, Any]) -> UserModelTask:
        task = UserModelTask(meta["metric"])
        task.softmax = bool(meta.get("softmax"))
        task.compressed = bool(meta.get("compressed"))
        return task

    # -- training (compression's fine-tuning) ----------------------------------------------
    def fit(self, model, data: UserTrain, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """The user's loss (``spec.meta["loss"]``, :func:`check_loss`) on their training
        arrays, shuffled, Adam at the recipe's rate with gradients clipped to norm 1. A user
        model's normalisation layers are fitted already: ``adapt`` changes nothing."""
        from zoo.tasks.fitting import adam, run_fit

        limit = recipe.get("limit") or len(data)
        x = {k: v[:limit] for k, v in data.x.items()}
        # targets in output order: a model wrapped for pruning renames its output layers
        y = [data.y[k][:limit] for k in spec.meta["outputs"]]
        y = y[0] if len(y) == 1 else y
        steps = -(-len(next(iter(x.values()))) // recipe["batch_size"])
        loss = spec.meta["loss"]
        if isinstance(loss, Mapping) and "class_name" not in loss:  # per output, in order
            loss = [loss.get(k) for k in spec.meta["outputs"]]  # None: that output untrained
        model.compile(optimizer=adam(recipe, steps),
                      loss=[None if x is None else keras_loss(x) for x in loss]
                      if isinstance(loss, list) else keras_loss(loss))
        return run_fit(model, x, recipe, verbose, callbacks, y=y, shuffle=True,
                       batch_size=recipe["batch_size"])

    def split_size(self, data) -> int:
        return len(data)

    # -- data ------------------------------------------------------------------------------
    def inputs(self, data: UserSamples) -> list:
        n = len(data)
        if len(data.x) == 1:
            (x,) = data.x.values()
            return [x[i] for i in range(n)]
        return [{k: v[i] for k, v in data.x.items()} for i in range(n)]

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list:
        return self.inputs(test)

    def check_input(self, x, meta, where="input"):
        names = meta["inputs"]
        if len(names) > 1 and not isinstance(x, Mapping):
            raise ShapeError(f"{where}: the model takes {len(names)} inputs {names}; got one "
                             "array")
        return x

    def parse_input(self, source: str, meta):
        """A ``.npy`` file (one sample, or a batch of them) or a ``.npz`` with one array per
        input name (each one sample, or a batch); the first sample, in a list (see
        :meth:`parse_inputs` for them all)."""
        return self.parse_inputs(source, meta)[:1]

    def parse_inputs(self, source: str, meta) -> list:
        """Every sample of a ``.npy`` / ``.npz`` (:meth:`parse_input`): a batch axis is
        optional, and a file without one is one sample."""
        path = Path(source)
        if not path.is_file() or path.suffix.lower() not in (".npy", ".npz"):
            raise DataError(f"input {source!r}: expected a .npy file (one input) or a .npz "
                            f"with arrays named {meta['inputs']}")
        # numpy raises EOFError for an empty .npy, zipfile.BadZipFile or zlib.error for a
        # damaged .npz (read member by member)
        unreadable = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
        try:
            loaded = np.load(path, allow_pickle=False)
        except unreadable as e:
            raise DataError(f"{source}: cannot read a numeric array ({e})") from None
        shapes = meta["input_shapes"]
        if isinstance(loaded, np.ndarray):
            if len(meta["inputs"]) != 1:
                raise DataError(f"{source}: the model takes inputs {meta['inputs']}; give a "
                                ".npz with one array per name")
            arrays = {meta["inputs"][0]: loaded}
        else:
            with loaded:
                missing = sorted(set(meta["inputs"]) - set(loaded.files))
                if missing:
                    raise DataError(f"{source}: no array named {missing}; it has "
                                    f"{sorted(loaded.files)}")
                try:
                    arrays = {k: loaded[k] for k in meta["inputs"]}
                except unreadable as e:
                    raise DataError(f"{source}: cannot read a numeric array ({e})") from None
        batch = {}
        for name, x in arrays.items():
            rank = len(shapes[name]) - 1  # without the batch axis
            if x.ndim == rank:
                x = x[None]
            if x.ndim != rank + 1 or not len(x):
                raise ShapeError(f"{source}: input {name!r} has shape {x.shape}; expected "
                                 f"{rank} axes ({_dims(shapes[name][1:])}), or a batch of "
                                 "those")
            batch[name] = x
        counts = {k: len(v) for k, v in batch.items()}
        if len(set(counts.values())) != 1:
            raise ShapeError(f"{source}: the inputs hold different numbers of samples "
                             f"{counts}")
        n = next(iter(counts.values()))
        if len(batch) == 1:
            (x,) = batch.values()
            return [x[i] for i in range(n)]
        return [{k: v[i] for k, v in batch.items()} for i in range(n)]

    # -- running ---------------------------------------------------------------------------
    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> list:
        """Per sample: the output array (one output) or ``{output name: array}``. A model
        exported without its padding mask (``meta["mask"]``) gets each sample at its own
        length; a streamed model (``meta["stream"]``) is fed one step at a time through its
        step graph. Samples of one shape run ``batch_size`` to a call."""
        names = meta["inputs"]
        mask, stream = meta.get("mask"), meta.get("stream")
        items = [dict(x) if isinstance(x, Mapping) else {names[0]: x} for x in inputs]
        if mask is not None:
            for i, item in enumerate(items):
                start, end = sample_span(item[mask["input"]], mask, f"sample {i}")
                item[mask["input"]] = np.asarray(item[mask["input"]])[start:end]
        groups: dict = {}
        for i, item in enumerate(items):
            groups.setdefault(tuple(np.shape(item[n]) for n in names), []).append(i)
        chunks = [members[k:k + batch_size] for members in groups.values()
                  for k in range(0, len(members), batch_size)]
        out: list = [None] * len(items)
        for chunk in chunks:
            batch = {k: np.stack([np.asarray(items[i][k]) for i in chunk]) for k in names}
            if stream is None or stream["sequence_graph"]:
                result = graphs["model"](batch)  # a streamed one is checked on its tensors
            if stream is not None:
                result = self._streamed(graphs, batch, stream, meta["outputs"][0])
            for row, i in enumerate(chunk):
                out[i] = {k: np.asarray(v)[row] for k, v in result.items()}
            if progress is not None:
                progress(len(chunk))
        single = len(meta["outputs"]) == 1
        return [p[meta["outputs"][0]] if single else p for p in out]

    @staticmethod
    def _streamed(graphs, batch: dict, stream, output: str) -> dict[str, np.ndarray]:
        """One batch fed one step at a time through the step graph (the path a device
        runs), from the encoder's states or from zero; one row per step for a sequence
        output, else the last step's."""
        name, widths = stream["input"], stream["states"]
        rows = len(batch[name])
        if stream["encoder_inputs"]:
            states = graphs["encoder"]({k: batch[k] for k in stream["encoder_inputs"]})
            state = {n: np.asarray(states[n]) for n in widths}
        else:
            state = {n: np.zeros((rows, w), np.float32) for n, w in widths.items()}
        x = batch[name]
        steps = []
        for t in range(x.shape[1]):
            result = graphs["step"]({name: np.ascontiguousarray(x[:, t:t + 1]), **state})
            state = {n: result[f"{n}_next"] for n in widths}
            steps.append(np.asarray(result[output]))
        return {output: np.concatenate(steps, axis=1) if stream["sequence_output"]
                else steps[-1]}

    # -- scoring ---------------------------------------------------------------------------
    def score(self, predictions, data: UserSamples, meta) -> dict[str, float]:
        scored = meta["scored_output"]
        got = _stack(predictions, scored, meta)
        original = np.asarray(data.original[scored], np.float64)
        metrics: dict[str, float] = {}
        if self.metric in LABEL_METRICS:
            metrics[self.metric] = label_metric(self.metric, got, data.y)
        elif self.metric == AGREEMENT:
            metrics[AGREEMENT] = float(np.mean(np.argmax(got, -1) == np.argmax(original, -1)))
        else:
            metrics[RELATIVE_ERROR] = relative_error(got, original)
        # how far from the original model, over every output
        metrics["max_abs_vs_original"] = max(
            float(np.max(np.abs(_stack(predictions, k, meta) - np.asarray(v, np.float64)),
                         initial=0.0)) for k, v in data.original.items())
        return metrics

    def checks(self, metrics: Mapping[str, float], precision: str) -> list[dict]:
        """fp32 artifacts against the ORIGINAL model (Keras 3's own outputs for a Keras 3
        model; the tensor check compares with the tf_keras twin). A compressed model is not
        the original any more: its artifacts are held to the compressed Keras model by the
        tensor check, and its metric to the original's by the compression check."""
        if precision != "fp32" or self.compressed:
            return []
        value = metrics["max_abs_vs_original"]
        return [{"check": "max |diff| vs the original model", "value": value,
                 "limit": SAME_VALUES, "reason": "fp32 artifacts compute the original "
                 "model's float32 function; only the kernels' summation order differs",
                 "passed": bool(value <= SAME_VALUES)}]

    def compare(self, a, b) -> dict[str, Any]:
        """Samples whose predictions differ: another top-1 class for a softmax output, any
        value beyond :data:`SAME_VALUES` otherwise."""
        def differs(p, q) -> bool:
            p, q = (p, q) if isinstance(p, Mapping) else ({"": p}, {"": q})
            if self.softmax:
                return any(int(np.argmax(p[k])) != int(np.argmax(q[k])) for k in p)
            return any(float(np.max(np.abs(np.asarray(p[k], np.float64) - q[k]),
                                    initial=0.0)) > SAME_VALUES for k in p)

        n = sum(differs(p, q) for p, q in zip(a, b, strict=True))
        return {"disagreements": int(n), "agreement": 1 - n / max(len(a), 1)}

    def format(self, prediction, meta) -> str:
        items = prediction.items() if isinstance(prediction, Mapping) else \
            [(meta["outputs"][0], prediction)]
        lines = []
        for name, v in items:
            v = np.asarray(v)
            text = np.array2string(v, precision=5, threshold=20, max_line_width=100)
            top = f"  top-1: {int(np.argmax(v))}" if meta.get("softmax") and v.ndim == 1 else ""
            lines.append(f"{name} {v.dtype}{list(v.shape)}:{top}\n{text}")
        return "\n".join(lines)


def sample_span(x, mask: Mapping[str, Any], where: str) -> tuple[int, int]:
    """The steps of one sample that its padding mask keeps, ``(start, end)``: padding may
    lie at either end, never between real steps (there, trimming would not compute what
    the mask does).

    Example:
        >>> import numpy as np
        >>> sample_span(np.array([0, 0, 5, 3]), {"kind": "zero"}, "ids")
        (2, 4)
    """
    x = np.asarray(x)
    keep = x != 0 if mask["kind"] == "zero" else np.any(x != mask["value"], axis=-1)
    keep = keep.reshape(len(x), -1).any(-1) if keep.ndim > 1 else keep
    steps = np.flatnonzero(keep)
    if not len(steps):
        raise ShapeError(f"{where} is all padding (every step masked); a sample needs at "
                         "least one real step")
    start, end = int(steps[0]), int(steps[-1]) + 1
    if end - start != len(steps):
        inside = sorted(set(range(start, end)) - set(steps.tolist()))
        raise UnsupportedError(
            f"{where} has padding between real steps (masked steps {inside[:5]}); lstm-zoo "
            "exports a mask as each sample at its own length, exact only for padding at "
            "either end")
    return start, end


# registered with the metric of a model without labels; each model's comes from its meta
# (Task.for_meta)
register_task(UserModelTask(AGREEMENT))


def _stack(predictions, output: str, meta) -> np.ndarray:
    single = len(meta["outputs"]) == 1
    return np.stack([np.asarray(p if single else p[output], np.float64) for p in predictions])


def _dims(shape) -> str:
    return ", ".join("?" if d is None else str(d) for d in shape)


def relative_error(got: np.ndarray, original: np.ndarray) -> float:
    """``||got - original|| / ||original||`` (0 when both are 0)."""
    scale = float(np.linalg.norm(original))
    err = float(np.linalg.norm(got - original))
    return err / scale if scale > 0 else err


def label_metric(metric: str, scores: np.ndarray, y: np.ndarray) -> float:
    """A task metric of the scored output against labels (class ids, one-hot rows, or
    targets of the output's shape for mse/mae).

    Example:
        >>> import numpy as np
        >>> label_metric("accuracy", np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))
        0.5
    """
    if metric in ("mse", "mae"):
        d = scores - np.asarray(y, np.float64).reshape(scores.shape)
        return float(np.mean(d * d) if metric == "mse" else np.mean(np.abs(d)))
    classes = class_ids(y, scores)
    if scores.ndim == 1 or scores.shape[-1] == 1:  # one sigmoid unit
        positive = scores.reshape(len(scores))
        picked = (positive >= 0.5).astype(np.int64)
        if metric == "top5":
            raise UnsupportedError("top5 needs at least 5 classes; the scored output has one "
                                   "unit (a binary classifier)")
    else:
        positive = scores[:, 1] if scores.shape[-1] == 2 else None
        picked = np.argmax(scores, -1)
    if metric == "accuracy":
        return float(np.mean(picked == classes))
    if metric == "top5":
        if scores.shape[-1] < 5:
            raise UnsupportedError(f"top5 needs at least 5 classes; the scored output has "
                                   f"{scores.shape[-1]}")
        top = np.argsort(-scores, -1)[:, :5]
        return float(np.mean((top == classes[:, None]).any(-1)))
    if metric == "f1":  # macro F1 over the classes present in labels or predictions
        f1s = []
        for c in np.union1d(classes, picked):
            tp = np.sum((picked == c) & (classes == c))
            fp, fn = np.sum((picked == c) & (classes != c)), np.sum((picked != c) & (classes == c))
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
        return float(np.mean(f1s))
    if positive is None:
        raise UnsupportedError(f"auc is for binary classifiers (one sigmoid unit or two "
                               f"classes); the scored output has {scores.shape[-1]} classes")
    return roc_auc(positive, classes)


def class_ids(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == scores.ndim and y.ndim > 1 and y.shape[-1] == scores.shape[-1] > 1:
        return np.argmax(y, -1)  # one-hot rows
    return y.reshape(len(y)).astype(np.int64)


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outranks a negative (ties half).

    Example:
        >>> import numpy as np
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    positive = np.asarray(positive).astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise DataError(f"auc needs both classes among the labels; got {n_pos} positive and "
                        f"{n_neg} negative")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), np.float64)
    sorted_scores = score[order]
    # average ranks over ties
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
