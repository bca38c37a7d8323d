"""Reading a user's model: tf_keras objects and files, Keras 3 objects and files (through
:mod:`export.user.keras3`), every layer checked before anything is built or run; and the
original model's forward pass, to check the export against.
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

from export.user.keras3_read import MODELS, SUPPORTED_LAYERS
from zoo._keras import keras
from zoo.errors import (
    ArtifactError,
    UnsupportedError,
    UnsupportedLayerError,
)

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
        if cls not in SUPPORTED_LAYERS and cls not in MODELS:
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
    from export.user import keras3

    if isinstance(model_or_path, keras.Model):
        config = {"class_name": type(model_or_path).__name__,
                  "config": model_or_path.get_config()}
        if config["class_name"] not in MODELS:
            raise UnsupportedLayerError(
                f"model {model_or_path.name!r} is a subclassed model "
                f"({type(model_or_path).__name__}); lstm-zoo exports Sequential and "
                "functional models")
        check_tf_keras_config(config, f"model {model_or_path.name!r}")
        return UserModel(model_or_path, _model_name(None, model_or_path), "tf_keras model",
                         keras_forward(model_or_path))
    if _is_keras3_model(model_or_path):
        twin = keras3.to_tf_keras(model_or_path)
        return UserModel(twin, _model_name(None, model_or_path), "Keras 3 model",
                         _keras3_forward(model_or_path, twin.output_names))
    if not isinstance(model_or_path, (str, Path)):
        raise UnsupportedError(f"expected a Keras model or a path to one; got "
                               f"{type(model_or_path).__name__}")
    path = Path(model_or_path)
    if not path.exists():
        raise ArtifactError(f"{path} does not exist; expected a .keras or .h5 file or a "
                            "SavedModel folder")
    name = _model_name(path, None)
    if path.is_dir():
        model = _load_saved_model(path)
        return UserModel(model, name, "tf_keras SavedModel", keras_forward(model))
    suffix = path.suffix.lower()
    if suffix == ".keras":
        version = _keras_file_version(path)
        if version.startswith("3."):
            twin = keras3.to_tf_keras(path)
            return UserModel(twin, name, f"Keras {version} .keras file",
                             _keras3_forward(path, twin.output_names))
        model = _load_tf_keras_file(path, version)
        return UserModel(model, name, f"tf_keras {version} .keras file", keras_forward(model))
    if suffix in (".h5", ".hdf5"):
        model = _load_h5(path)
        return UserModel(model, name, "tf_keras .h5 file", keras_forward(model))
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
                            f"{first_line(e)}") from None


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
        raise ArtifactError(f"{path}: tf_keras cannot load it: {first_line(e)}") from None


def _load_saved_model(path: Path):
    """A tf_keras SavedModel folder, its layers checked from ``keras_metadata.pb`` before
    anything is loaded (loading deserialises a Lambda's code)."""
    from google.protobuf.message import DecodeError

    from zoo._keras import saved_model_metadata

    if not (path / "saved_model.pb").is_file():
        raise ArtifactError(f"{path} is a folder without saved_model.pb; expected a "
                            "SavedModel written by tf_keras (model.save(folder))")
    if not (path / "keras_metadata.pb").is_file():
        raise UnsupportedError(f"{path} is a SavedModel without Keras metadata (written by "
                               "tf.saved_model.save or Keras 3's export): lstm-zoo needs the "
                               "Keras layers; save with tf_keras or as .keras")
    try:
        nodes = saved_model_metadata(path)
    except (DecodeError, ValueError, OSError) as e:
        raise ArtifactError(f"{path}/keras_metadata.pb is not readable: {e}") from None
    for node in nodes:
        if node["metadata"].get("class_name") == "Lambda":
            raise UnsupportedLayerError(
                f"{path}: layer {node['metadata'].get('name', '?')!r} is a Lambda: it holds "
                "Python code, which lstm-zoo never runs")
    root = next((n["metadata"] for n in nodes if n["node_path"] == "root"), {})
    if "config" not in root:
        raise ArtifactError(f"{path}: keras_metadata.pb has no model config")
    check_tf_keras_config({"class_name": root.get("class_name"), "config": root["config"]},
                          str(path))
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 (a corrupt folder fails in many ways inside Keras)
        raise ArtifactError(f"{path}: tf_keras cannot load the SavedModel: "
                            f"{first_line(e)}") from None


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def keras_forward(model):
    from zoo.graphs import KerasGraph

    graph = KerasGraph(model)
    return lambda x: _batched(graph, x)


def stateful_forward(model):
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


def _keras3_forward(model_or_path, output_names: list[str]):
    """Keras 3's own outputs (a file is loaded once, in safe mode). A stateful model runs
    each sample alone from reset states: its batch axis is fixed, and its state would
    carry from one sample into the next."""
    from export.user import keras3

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
        return dict(zip(output_names, outs, strict=True))

    return forward



def _batched(forward, x: dict[str, np.ndarray], batch: int = 64) -> dict[str, np.ndarray]:
    n = len(next(iter(x.values())))
    parts: dict[str, list] = {}
    for start in range(0, n, batch):
        out = forward({k: v[start:start + batch] for k, v in x.items()})
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}
