"""Bring your own model: a user's tf_keras or Keras 3 model through the export pipeline.

The model comes as an object or a file (``.keras``, ``.h5``, a SavedModel folder). A
Keras 3 model is translated into a tf_keras twin (:mod:`export.keras3`), which is checked
against Keras 3 on the user's samples before anything is converted. Every layer is
checked against the supported set before the model is built: nothing in a user's file is
executed. The user's samples are the parity data (and the calibration data); labels and a
metric are optional (:mod:`zoo.tasks.user`). The bundle is the one a zoo model gets, plus
the samples, so ``lstm-zoo verify`` and ``lstm-zoo predict`` work on it unchanged.

Example:
    >>> from export import export_keras  # doctest: +SKIP
    >>> report = export_keras("my_model.keras", "out/my_model",
    ...                       samples="x.npy")  # doctest: +SKIP
    >>> report["passed"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.config import ExportConfig
from export.graphs import input_infos, output_infos, recurrent_directions
from export.keras3 import SUPPORTED_LAYERS
from export.prepare import (
    ENCODER_GRAPH,
    STEP_GRAPH,
    check_unmasked,
    decoder_input,
    encoder_model,
    has_initial_state,
    is_stateful,
    mask_source,
    stateless,
    step_model,
    unmask,
)
from export.progress import Progress, Silent
from export.quantize import MIN_CALIBRATION_SAMPLES, PRECISIONS
from export.runtime import FeedCheck
from zoo._keras import keras
from zoo.errors import (
    ArtifactError,
    DataError,
    ShapeError,
    UnsupportedError,
    UnsupportedLayerError,
)
from zoo.registry import DataSpec, GraphSpec, ModelSpec, Tolerance
from zoo.tasks import get_task
from zoo.tasks.user import AGREEMENT, LABEL_METRICS, RELATIVE_ERROR, UserSamples

GRAPH = "model"
SAMPLES_FILE = "samples.npz"
# fp32 artifacts against the ORIGINAL model: the same float32 function, computed by other
# kernels (fused LSTM ops, another summation order); the bound.
FP32 = Tolerance(1e-5, "fp32 artifacts compute the model's float32 function; only the "
                       "kernels' summation order differs")
TWIN = 1e-5  # a Keras 3 model's tf_keras twin against Keras 3: the same bound, same reason
# Layer classes of a tf_keras model config (those of Keras 3 are checked by export.keras3).
TF_KERAS_MODELS = frozenset({"Sequential", "Functional", "Model"})
_MAX_LAYER_NESTING = 16


@dataclass
class UserModel:
    """A user's model ready for the pipeline: the tf_keras model, where it came from, and
    the original model's forward pass (Keras 3's own for a Keras 3 model)."""

    model: Any
    name: str
    origin: str
    original: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _model_name(path: Path | None, model) -> str:
    stem = path.name.removesuffix(".keras").removesuffix(".h5") if path else model.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "model"


def check_tf_keras_config(config: Mapping, where: str) -> None:
    """Refuses, before anything is built, a layer outside the supported set, a Lambda or a
    custom class anywhere in a tf_keras model config (nested models, wrappers, cells).

    Raises:
        UnsupportedLayerError: names the layer and its class.
    """
    def walk(entry, depth: int) -> None:
        if depth > _MAX_LAYER_NESTING:
            raise UnsupportedLayerError(f"{where}: layers nested over {_MAX_LAYER_NESTING} deep")
        if not isinstance(entry, Mapping) or "class_name" not in entry:
            raise ArtifactError(f"{where}: expected a serialized layer, got "
                                f"{type(entry).__name__}")
        cls, cfg = entry["class_name"], entry.get("config") or {}
        name = cfg.get("name", "?") if isinstance(cfg, Mapping) else "?"
        if cls == "Lambda":
            raise UnsupportedLayerError(
                f"{where}: layer {name!r} is a Lambda: it holds Python code, which lstm-zoo "
                "never runs; rewrite it as a layer of Keras' own")
        if cls not in SUPPORTED_LAYERS and cls not in TF_KERAS_MODELS:
            raise UnsupportedLayerError(
                f"{where}: layer {name!r} of class {cls!r} is not one lstm-zoo exports; "
                f"supported: {sorted(SUPPORTED_LAYERS)}")
        if isinstance(cfg, Mapping):
            for key in ("layer", "backward_layer", "cell"):
                if isinstance(cfg.get(key), Mapping):
                    walk(cfg[key], depth + 1)
            for child in cfg.get("layers") or ():
                walk(child, depth + 1)

    walk(config, 0)


def load_user_model(model_or_path) -> UserModel:
    """A tf_keras or Keras 3 model, or a ``.keras`` / ``.h5`` / SavedModel path.

    Raises:
        UnsupportedLayerError: a layer outside the supported set, a Lambda, a custom class.
        ArtifactError: a file that is not a model, truncated or corrupt.
        UnsupportedError: a Keras version whose files lstm-zoo does not read.
    """
    from export import keras3

    if isinstance(model_or_path, keras.Model):
        config = {"class_name": type(model_or_path).__name__,
                  "config": model_or_path.get_config()}
        if config["class_name"] not in TF_KERAS_MODELS:
            raise UnsupportedLayerError(
                f"model {model_or_path.name!r} is a subclassed model "
                f"({type(model_or_path).__name__}); lstm-zoo exports Sequential and "
                "functional models")
        check_tf_keras_config(config, f"model {model_or_path.name!r}")
        return UserModel(model_or_path, _model_name(None, model_or_path), "tf_keras model",
                         _keras_forward(model_or_path))
    if _is_keras3_model(model_or_path):
        twin = keras3.to_tf_keras(model_or_path)
        return UserModel(twin, _model_name(None, model_or_path), "Keras 3 model",
                         _keras3_forward(model_or_path))
    if not isinstance(model_or_path, (str, Path)):
        raise UnsupportedError(f"expected a Keras model or a path to one; got "
                               f"{type(model_or_path).__name__}")
    path = Path(model_or_path)
    if not path.exists():
        raise ArtifactError(f"{path} does not exist; expected a .keras or .h5 file or a "
                            "SavedModel folder")
    name = _model_name(path, None)
    if path.is_dir():
        _load_saved_model(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        version = _keras_file_version(path)
        if version.startswith("3."):
            twin = keras3.to_tf_keras(path)
            return UserModel(twin, name, f"Keras {version} .keras file",
                             _keras3_forward(path))
        model = _load_tf_keras_file(path, version)
        return UserModel(model, name, f"tf_keras {version} .keras file", _keras_forward(model))
    if suffix in (".h5", ".hdf5"):
        model = _load_h5(path)
        return UserModel(model, name, "tf_keras .h5 file", _keras_forward(model))
    raise UnsupportedError(f"{path}: expected a .keras or .h5 file or a SavedModel folder; "
                           f"got a {suffix or 'suffix-less'} file")


def _is_keras3_model(obj) -> bool:
    return any(c.__module__.startswith("keras.") and c.__name__ in ("Model", "Sequential",
                                                                    "Functional")
               for c in type(obj).__mro__)


def _keras_file_version(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as e:
        raise ArtifactError(f"{path} is not a readable .keras file (a zip holding "
                            f"metadata.json, config.json, model.weights.h5): {e}") from None
    version = str(meta.get("keras_version", "")) if isinstance(meta, dict) else ""
    if not re.match(r"^[23]\.\d+", version):
        raise UnsupportedError(f"{path}: written by Keras {version or '(unknown)'}; lstm-zoo "
                               "reads files of tf_keras 2.x and Keras 3.x")
    return version


def _load_tf_keras_file(path: Path, version: str):
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as e:
        raise ArtifactError(f"{path}: cannot read config.json ({e})") from None
    check_tf_keras_config(config, str(path))
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 (a corrupt file fails in many ways inside Keras)
        raise ArtifactError(f"{path}: tf_keras {version} cannot load it: "
                            f"{_first_line(e)}") from None


def _load_h5(path: Path):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as e:
        raise ArtifactError(f"{path} is not a readable HDF5 file: {e}") from None
    if raw is None:
        raise ArtifactError(f"{path} holds no model_config: a weights-only .h5? Give the "
                            "whole model (model.save('m.h5') or a .keras file)")
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    check_tf_keras_config(config, str(path))
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001
        raise ArtifactError(f"{path}: tf_keras cannot load it: {_first_line(e)}") from None


def _load_saved_model(path: Path):
    # tf_keras keeps a SavedModel's layer configs in keras_metadata.pb, a protobuf of
    # tf_keras' own; reading it without loading the model (a Lambda's code runs on load)
    # is not written yet.
    raise UnsupportedError(f"{path}: SavedModel folders are not read yet (loading one runs "
                           "any Lambda code in it before its layers can be checked); save "
                           "the model as .keras or .h5")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _keras_forward(model):
    from zoo.graphs import KerasGraph

    graph = KerasGraph(model)
    return lambda x: _batched(graph, x)


def _stateful_forward(model):
    """A stateful tf_keras model run on each sample alone, from reset states (its batch
    axis is fixed; its state would carry from one sample into the next)."""
    def forward(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for i in range(len(next(iter(x.values())))):
            model.reset_states()
            outs = model([v[i:i + 1] for v in x.values()], training=False)
            rows.append([np.asarray(o) for o in (outs if isinstance(outs, list) else [outs])])
        model.reset_states()
        return {k: np.concatenate(parts) for k, parts in
                zip(model.output_names, zip(*rows, strict=True), strict=True)}

    return forward


def _reset_keras3(model) -> None:
    """Keras 3 resets a stateful RNN layer by layer (its models have no reset_states)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def _keras3_forward(model_or_path):
    """Keras 3's own outputs (a file is loaded once, in safe mode). A stateful model runs
    each sample alone from reset states: its batch axis is fixed, and its state would
    carry from one sample into the next."""
    from export import keras3

    model = keras3.load_original(model_or_path) if isinstance(model_or_path, (str, Path)) \
        else model_or_path
    stateful = any(getattr(layer, "stateful", False) for layer in model.layers)

    def run(arrays):
        return keras3.keras3_outputs(model, arrays if len(arrays) > 1 else arrays[0])

    def forward(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = list(x.values())
        if not stateful:
            outs = run(arrays)
        else:
            rows = []
            for i in range(len(arrays[0])):
                _reset_keras3(model)
                rows.append(run([a[i:i + 1] for a in arrays]))
            _reset_keras3(model)
            outs = [np.concatenate(parts) for parts in zip(*rows, strict=True)]
        return dict(zip(forward.output_names, outs, strict=True))

    return forward


# ---------------------------------------------------------------------------------------
# What the model needs before it converts

# ---------------------------------------------------------------------------------------
# The user's data

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


def _is_softmax(model) -> bool:
    layer = model.get_layer(model.output_names[0]) if model.output_names[0] in \
        [x.name for x in model.layers] else model.layers[-1]
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "") == "softmax" or isinstance(layer, keras.layers.Softmax)


# ---------------------------------------------------------------------------------------
# The spec, the export, the bundle

def user_spec(name: str, model, meta: dict, *, formats=("tflite", "onnx"),
              precisions=PRECISIONS) -> ModelSpec:
    """The spec the pipeline runs a user model with: the model itself, whose recurrent
    layers must become what :mod:`export.inspect` says they become; for a model that
    streams (``meta["stream"]``), the one-step graph beside it, or for an encoder-decoder,
    the encoder and the decoder's step graph instead."""
    from export.inspect import fusion_expectations, inspect_model

    def no_builder(**_):
        raise UnsupportedError(f"{name} is a user model: it is rebuilt from its bundle")

    stream = meta.get("stream")
    graphs = []
    if stream is None or stream["sequence_graph"]:
        graphs.append(GraphSpec(GRAPH, tuple(model.input_names), tuple(model.output_names),
                                fusion=fusion_expectations(inspect_model(model))))
    if stream is not None:  # one time step, the state in and out
        source, states = stream["input"], tuple(stream["states"])
        if stream["encoder_inputs"]:  # an encoder-decoder: the encoder sets the states
            encoder = encoder_model(model, source)
            graphs.append(GraphSpec(
                ENCODER_GRAPH, tuple(stream["encoder_inputs"]), tuple(encoder.output_names),
                build=lambda m: encoder_model(m, source),
                fusion=fusion_expectations(inspect_model(encoder))))
        graphs.append(GraphSpec(STEP_GRAPH, (source, *states),
                                (model.output_names[0], *(f"{s}_next" for s in states)),
                                build=lambda m: step_model(m, source), recurrent="step"))
    return ModelSpec(
        name=name, builder=no_builder, family="user", task="user", graphs=tuple(graphs),
        data=DataSpec(dataset="user samples", train="", test="samples",
                      calibration="samples", extra="", license="the user's"),
        tensor_tolerance={"fp32": FP32}, meta=meta, formats=tuple(formats),
        precisions=tuple(precisions),
        description=f"a user model ({meta.get('origin', 'Keras')})")


def model_meta(user: UserModel, metric: str) -> dict:
    model = user.model
    return {"inputs": list(model.input_names), "outputs": list(model.output_names),
            "input_shapes": {i.name: list(i.shape) for i in input_infos(model)},
            "output_shapes": {o.name: list(o.shape) for o in output_infos(model)},
            "scored_output": model.output_names[0], "metric": metric,
            "softmax": _is_softmax(model), "origin": user.origin}


def export_keras(model_or_path, out: str | Path, config: ExportConfig | None = None, *,
                 samples, labels=None, metric: str | None = None, name: str | None = None,
                 progress: Progress | None = None, **options: Any) -> dict[str, Any]:
    """Exports a user's tf_keras or Keras 3 model to a verified LiteRT / ONNX bundle.

    Args:
        model_or_path: a tf_keras or Keras 3 model, or a ``.keras`` / ``.h5`` file or a
            tf_keras SavedModel folder.
        out: bundle directory to create (must not exist).
        config: :class:`export.config.ExportConfig` (formats, precisions or ``"auto"``
            with ``max_drop``, ...); ``options`` are its fields as keywords.
        samples: at least 16 inputs (an array, ``{input name: array}``, a ``.npy`` or a
            ``.npz`` with one array per input): the parity and calibration data.
        labels: optional labels of the samples (array or ``.npy``) for ``metric``.
        metric: ``accuracy``, ``top5``, ``f1``, ``auc``, ``mse`` or ``mae`` (needs labels).
            Without: agreement with the original model's outputs.
        name: the bundle's model name (default: the file's stem or the model's name).
        progress: reports stages and counts (default: silent).

    Returns:
        The parity report (also written to ``parity.json``).

    Raises:
        UnsupportedLayerError: a layer outside the supported set, a Lambda, a custom class
            (before any file is written).
        DataError, ShapeError: samples or labels that do not fit the model.
        ParityError: a Keras 3 model's tf_keras twin, or an artifact, differs from the
            original (the bundle is kept at ``<out>.failed``).
    """
    from export.pipeline import check_out_dir, run_export

    cfg = ExportConfig.of(config, **options)
    if metric is not None and metric not in LABEL_METRICS:
        raise UnsupportedError(f"unknown metric {metric!r}; expected one of "
                               f"{sorted(LABEL_METRICS)}")
    if cfg.compressing:
        raise UnsupportedError("prune / structured / cluster / qat of a user model need its "
                               "training data, which export_keras does not take yet")
    if cfg.calibration is not None:
        raise UnsupportedError("a user model calibrates on its samples; calibration is for "
                               "zoo models")
    progress = progress or Silent()
    out = Path(out)
    check_out_dir(out)
    where = model_or_path if isinstance(model_or_path, (str, Path)) else "the model"
    progress.say(f"reading {where}")
    user = load_user_model(model_or_path)
    if name is not None:
        user.name = name
    mask = mask_source(user.model)
    stream = None
    if is_stateful(user.model) or has_initial_state(user.model):
        if mask is not None:
            raise UnsupportedError(f"{user.name}: a stateful or encoder-decoder model with a "
                                   "padding mask; stream it without the mask")
        stream = (_streaming if is_stateful(user.model) else _encoder_decoder)(user, progress)
    x = read_samples(samples, user.model)
    n = len(next(iter(x.values())))
    y = None if labels is None else read_labels(labels, n)
    chosen = choose_metric(metric, y, _is_softmax(user.model))
    progress.say(f"running the original model ({user.origin}) on {n} samples")
    user.original.output_names = list(user.model.output_names)
    original = {k: np.asarray(v) for k, v in user.original(x).items()}
    if "Keras 3" in user.origin:
        _check_twin(user, x, original)
    data = UserSamples(x, y, original)
    meta = model_meta(user, chosen)
    report = {"origin": user.origin, "samples": n, "labels": y is not None,
              "metric": chosen, "metric_source": "labels" if y is not None else
              "agreement with the original model's fp32 outputs"}
    if mask is not None:
        user.model, report["mask"] = _without_mask(user, mask, meta, data, progress)
    if stream is not None:
        meta["stream"] = stream
        report["stream"] = (
            (f"stateful: exported as the whole-sequence graph {GRAPH!r} (from zero state) and"
             if stream["sequence_graph"] else
             f"encoder-decoder: exported as the encoder {ENCODER_GRAPH!r} (the initial states)"
             " and") + f" the one-step graph {STEP_GRAPH!r} with the state as inputs and "
            f"outputs {list(stream['states'])}; predictions stream each sample through the "
            "step graph")
    spec = user_spec(user.name, user.model, meta)
    for line in _inspection_notes(spec):
        progress.say(line)
    fmts, precs = cfg.for_spec(spec)
    task = get_task("user").for_meta(meta)
    if cfg.limit:
        data = data.head(cfg.limit)
    report.update({"recurrent": recurrent_directions(user.model),
                   "fusion": dict(spec.graphs[0].fusion)})
    return run_export(
        spec, task, user.model, out, cfg, fmts, precs, data, data,
        calibration=(task.inputs(data), "user samples"),
        reference={"model_config": json.loads(user.model.to_json())},
        data={"dataset": "user samples", "test": "samples", "calibration": "samples",
              "license": "the user's"},
        progress=progress, manifest_extra={"source": report},
        attachments={SAMPLES_FILE: samples_bytes(data)})


def _streaming(user: UserModel, progress) -> dict:
    """A stateful model: its whole-sequence twin (stateless, free batch) replaces it, and
    the one-step graph is built from it (checked now: a model that cannot stream is
    refused before anything runs)."""
    if "Keras 3" not in user.origin:  # Keras 3's forward already runs sample by sample
        user.original = _stateful_forward(user.model)
    user.model = stateless(user.model)
    stream = _stream_meta(user.model, user.model.input_names[0], encoder=None)
    progress.say(f"stateful: a one-step graph carries the state {list(stream['states'])}")
    return stream


def _encoder_decoder(user: UserModel, progress) -> dict:
    """A model whose recurrent layers take an initial state from others (the Keras
    tutorial's seq2seq): exported as the encoder (inputs -> those states) and the
    decoder's one-step graph, fed the decoder input step by step (teacher-forced)."""
    decoder = decoder_input(user.model)
    encoder = encoder_model(user.model, decoder)
    stream = _stream_meta(user.model, decoder, encoder)
    progress.say(f"encoder-decoder: an encoder graph {list(encoder.input_names)} -> "
                 f"{list(encoder.output_names)} and a decoder step graph over {decoder!r}")
    return stream


def _stream_meta(model, source: str, encoder) -> dict:
    step = step_model(model, source)
    widths = {i.name: int(i.shape[-1]) for i in input_infos(step)[1:]}
    # the output keeps a time axis when the step graph's output has its one step
    sequence = len(step.outputs[0].shape) == len(model.outputs[0].shape) and \
        len(model.outputs[0].shape) >= 3 and step.outputs[0].shape[1] == 1
    return {"input": source, "states": widths, "sequence_output": bool(sequence),
            "encoder_inputs": None if encoder is None else list(encoder.input_names),
            "sequence_graph": encoder is None}


def _without_mask(user: UserModel, mask: dict, meta: dict, data: UserSamples, progress):
    """The model without its padding mask, checked on the user's samples (each fed at its
    own length) against the masked original; what the report says of it."""
    from zoo.graphs import KerasGraph

    unmasked = unmask(user.model, mask)
    meta["mask"] = {k: mask[k] for k in ("input", "kind", "value")}
    task = get_task("user").for_meta(meta)
    preds = task.predict({GRAPH: KerasGraph(unmasked)}, task.inputs(data), meta,
                         batch_size=64)
    got = {}
    for k, v in data.original.items():
        rows = [np.asarray(p if len(meta["outputs"]) == 1 else p[k]) for p in preds]
        if any(r.shape != v.shape[1:] for r in rows):
            raise UnsupportedError(
                f"{user.name}: output {k!r} keeps the padded time axis (shape "
                f"{v.shape[1:]}), which a model fed each sample at its own length cannot "
                "give; export a model whose outputs the mask pools away (or remove the mask)")
        got[k] = np.stack(rows)
    worst = check_unmasked(user.name, got, data.original, data.x, mask)
    said = (f"padding mask of {mask['layer']!r}: exported without it, each sample fed at its "
            f"own length (max |diff| {worst:.2g} against the masked model on {len(data)} "
            "samples)")
    progress.say(said)
    return unmasked, said


def _inspection_notes(spec) -> list[str]:
    """What the export will make of the recurrent layers, said before converting."""
    fusion = spec.graphs[0].fusion
    if not any(f["loops"] or any(f["fused_directions"].values()) for f in fusion.values()):
        return ["no recurrent layer: the model exports as plain ops"]
    return [f"{fmt}: loops where layers cannot fuse ({f['loop_reason']})"
            if f["loops"] else f"{fmt}: every recurrent layer becomes a fused op"
            for fmt, f in fusion.items()]


def _batched(forward, x: dict[str, np.ndarray], batch: int = 64) -> dict[str, np.ndarray]:
    n = len(next(iter(x.values())))
    parts: dict[str, list] = {}
    for start in range(0, n, batch):
        out = forward({k: v[start:start + batch] for k, v in x.items()})
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _check_twin(user: UserModel, x, original) -> None:
    from zoo.errors import ParityError

    twin = _keras_forward(user.model)(x)
    diffs = {k: float(np.max(np.abs(twin[k].astype(np.float64) - original[k]), initial=0.0))
             for k in twin}
    if max(diffs.values()) > TWIN:
        raise ParityError(f"{user.name}: the tf_keras twin differs from Keras 3 by "
                          f"{diffs} (limit {TWIN}); nothing was exported")


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
    """The samples a user bundle was verified on."""
    try:
        with np.load(path, allow_pickle=False) as z:
            x = {k[2:]: z[k] for k in z.files if k.startswith("x/")}
            original = {k[9:]: z[k] for k in z.files if k.startswith("original/")}
            y = z["y"] if "y" in z.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: cannot read the bundle's samples ({e})") from None
    return UserSamples(x, y, original)


def bundle_model(manifest: dict, weights: Path):
    """Rebuilds a user bundle's tf_keras model from its config (checked layer by layer:
    a bundle is not trusted to hold only Keras' own layers) and its weights."""
    config = manifest["reference"]["model_config"]
    check_tf_keras_config(config, f"{weights.parent}/manifest.json")
    try:
        model = keras.models.model_from_json(json.dumps(config))
        model.load_weights(weights)
    except Exception as e:  # noqa: BLE001
        raise ArtifactError(f"{weights.parent}: cannot rebuild the user model: "
                            f"{_first_line(e)}") from None
    return model


def bundle_spec(bundle) -> ModelSpec:
    """The spec a user bundle was exported with (from its manifest)."""
    model = bundle.keras_model()
    manifest = bundle.manifest
    return user_spec(bundle.model_name, model, manifest["meta"],
                     formats=sorted({a["format"] for a in manifest["artifacts"]}),
                     precisions=sorted({a["precision"] for a in manifest["artifacts"]}))
