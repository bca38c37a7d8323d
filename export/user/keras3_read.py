"""Reading a Keras 3 ``.keras`` file, and checking every layer in it before anything is
built (:mod:`export.user.keras3` is the public face).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from zoo.errors import ArtifactError, UnsupportedError, UnsupportedLayerError

# Caps on what is read from a zip member: a .keras file is user input, and a zip header can
# claim any size (a zip bomb inflates far beyond it), so reads stop at the cap.
MAX_JSON_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 2 * 2**30
MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
TESTED_KERAS = "3.15"

# Layer classes whose translation is verified numerically (tests/test_keras3.py).
SUPPORTED_LAYERS = frozenset({
    "InputLayer", "Embedding", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed",
    "ConvLSTM1D", "ConvLSTM2D", "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D",
    "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Dense", "Dropout", "SpatialDropout1D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation", "LayerNormalization",
    "BatchNormalization", "Masking", "Reshape", "Flatten", "Permute", "RepeatVector",
    "Concatenate", "Add", "Multiply", "Average", "Subtract", "Attention", "AdditiveAttention",
    "MultiHeadAttention", "Rescaling", "Normalization",
})
MODELS = frozenset({"Sequential", "Functional", "Model"})
# Layers promised by the project but not translated yet: refused with the reason.
NOT_YET: dict[str, str] = {}

# Activations whose Keras 3 and tf_keras definitions are the same function. Keras 3's
# hard_sigmoid is relu6(x + 3) / 6, tf_keras' is clip(0.2 x + 0.5): same name, other math.
ACTIVATIONS = {
    "linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh",
    "softmax": "softmax", "softplus": "softplus", "softsign": "softsign", "elu": "elu",
    "selu": "selu", "exponential": "exponential", "swish": "swish", "silu": "swish",
    "gelu": "gelu", "mish": "mish", None: None,
}
# Keras 3 config keys tf_keras does not take, dropped when they hold the value given here
# (any other value changes inference and is refused). ``seed`` only seeds dropout and
# noise, which are off at inference.
ANY = object()  # a DROPPABLE value meaning: harmless whatever it is
DROPPABLE = {
    "seed": ANY, "optional": False, "lora_rank": None, "lora_alpha": None,
    "quantization_config": None, "rms_scaling": False, "use_gate": False,
    "sliding_window": None, "flash_attention": None, "use_cudnn": ANY,
}
MODEL_MODULES = ("keras", "keras.models", "keras.src.models.functional",
                 "keras.src.models.sequential", "keras.src.models.model")
OBJECT_MODULES = {"initializers": "keras.initializers", "regularizers": "keras.regularizers",
                  "constraints": "keras.constraints"}
FLOAT_POLICIES = {"float16", "bfloat16", "float32", "float64", "mixed_float16",
                  "mixed_bfloat16"}

_TRANSLATIONS: dict[str, Callable[[dict], dict]] = {}


def register_translation(class_name: str, fn: Callable[[dict], dict]) -> None:
    """Registers a translation of a Keras 3 layer class that the pipeline does not know.

    Args:
        class_name: The Keras 3 entry's ``registered_name`` (``"package>Name"``) or, for an
            unregistered class, its ``class_name``.
        fn: ``fn(layer_entry) -> {"class_name": ..., "config": ...}``, the tf_keras layer
            config; it receives a deep copy of the Keras 3 entry. See the module docstring.

    Raises:
        TypeError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"the translation of {class_name!r} must be callable, got {fn!r}")
    _TRANSLATIONS[class_name] = fn


def _translation_for(entry: dict) -> Callable[[dict], dict] | None:
    return _TRANSLATIONS.get(entry.get("registered_name") or "") or _TRANSLATIONS.get(
        entry.get("class_name", ""))


# ---------------------------------------------------------------------------------------
# Reading the zip


def _read_member(zf: zipfile.ZipFile, name: str, cap: int, path: Path) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ArtifactError(f"{path}: no {name} in the archive (members: {zf.namelist()}); "
                            f"a Keras 3 .keras file holds {', '.join(MEMBERS)}") from None
    if info.file_size > cap:
        raise ArtifactError(f"{path}: {name} is {info.file_size} bytes, more than the "
                            f"{cap} bytes lstm-zoo reads")
    try:
        with zf.open(info) as f:
            data = f.read(cap + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # CRC, truncation
        raise ArtifactError(f"{path}: cannot read {name} from the archive ({e}); expected "
                            "an intact Keras 3 .keras zip") from e
    if len(data) > cap:
        raise ArtifactError(f"{path}: {name} inflates beyond {cap} bytes, more than "
                            "lstm-zoo reads")
    return data


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; expected a Keras 3 .keras file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ArtifactError(f"{path}: not a zip archive ({e}); expected a Keras 3 .keras "
                            f"file (a zip of {', '.join(MEMBERS)})") from e


def _json_member(zf, name, path) -> dict:
    raw = _read_member(zf, name, MAX_JSON_BYTES, path)
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{path}: {name} is not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise ArtifactError(f"{path}: {name} holds a {type(value).__name__}; expected a "
                            "JSON object")
    return value


def read_config(path: str | Path) -> dict:
    """Reads the model config of a Keras 3 ``.keras`` file, after checking its version.

    Args:
        path: The ``.keras`` file.

    Returns:
        The parsed ``config.json``: ``{"class_name", "config", ...}`` of the model.

    Raises:
        ArtifactError: Not a zip, truncated, a member missing or too large, invalid JSON.
        UnsupportedError: ``metadata.json`` names a Keras other than 3.
    """
    path = Path(path)
    with _open_zip(path) as zf:
        meta = _json_member(zf, "metadata.json", path)
        version = str(meta.get("keras_version", "unknown"))
        if version.split(".")[0] != "3":
            raise UnsupportedError(f"{path}: a Keras {version} file; lstm-zoo reads Keras 3 "
                                   f".keras files (tested with Keras {TESTED_KERAS})")
        config = _json_member(zf, "config.json", path)
        if "model.weights.h5" not in zf.namelist():  # read later; refused now (names it)
            _read_member(zf, "model.weights.h5", MAX_WEIGHTS_BYTES, path)
    if "class_name" not in config or not isinstance(config.get("config"), dict):
        raise ArtifactError(f"{path}: config.json has keys {sorted(config)}; expected a "
                            "serialized model with 'class_name' and 'config'")
    return config


# ---------------------------------------------------------------------------------------
# Checking, before anything is built


def _nested_layers(entry: dict) -> list[tuple[str, dict]]:
    """The serialized layers inside ``entry``'s config, with the key that holds each."""
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        return []
    out = []
    for key in ("layer", "backward_layer", "cell", "layers", "cells"):
        value = cfg.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "class_name" in item:
                out.append((key, item))
    return out


def _entry_name(entry: dict) -> str:
    cfg = entry.get("config")
    return str(entry.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
               or "?")


def _refuse(entry: dict, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"layer {_entry_name(entry)!r} of class {entry.get('class_name')!r} "
        f"(module {entry.get('module')!r}): {why}")


def _is_custom(entry: dict, modules: tuple[str, ...]) -> bool:
    return entry.get("registered_name") not in (None, entry.get("class_name")) or \
        entry.get("module") not in modules


def _check_objects(entry: dict) -> None:
    """Refuses custom initializers/regularizers/constraints/activations inside a layer."""
    cfg = entry.get("config") or {}
    for key, value in cfg.items():
        if key in ("layer", "backward_layer", "cell", "layers", "cells", "dtype"):
            continue
        if key == "activation" or key.endswith("_activation"):
            name = value.get("config") if isinstance(value, dict) else value
            if isinstance(value, dict) and value.get("module") not in ("keras.activations",
                                                                          None):
                raise _refuse(entry, f"{key} is a custom function {value.get('class_name')!r}"
                                     " (nothing from the file is executed)")
            if name not in ACTIVATIONS:
                raise _refuse(entry, f"{key}={name!r} is not yet translated (verified: "
                                     f"{sorted(k for k in ACTIVATIONS if k)})")
        elif isinstance(value, dict) and "class_name" in value and "module" in value:
            kind = key.rsplit("_", 1)[-1] + "s"
            if OBJECT_MODULES.get(kind) != value.get("module") or \
                    value.get("registered_name") not in (None, value.get("class_name")):
                raise _refuse(entry, f"{key} is the custom {value.get('class_name')!r} "
                                     f"(module {value.get('module')!r}); expected one of "
                                     "Keras' own")


def check_layers(config: dict) -> None:
    """Checks every layer of a Keras 3 model config before anything is built or executed.

    Walks nested models, Bidirectional's ``layer``/``backward_layer``, TimeDistributed's
    ``layer`` and RNN cells.

    Args:
        config: A Keras 3 model config, as :func:`read_config` returns it.

    Raises:
        UnsupportedLayerError: A layer outside :data:`SUPPORTED_LAYERS` (and without a
            registered translation), a ``Lambda``, a custom or registered class, a custom
            activation/initializer, or a layer not yet translated; the message names the
            layer and its class.
    """
    def walk(entry: dict, mask_ops: frozenset) -> None:
        cls = entry.get("class_name")
        if _translation_for(entry) is not None:
            return  # the user's own code translates it (its sub-layers included)
        if _is_op(entry) and entry.get("name") in mask_ops:
            return  # Keras 3's record of a propagated mask; tf_keras recomputes it
        if _is_op(entry):
            raise _refuse(entry, "a keras.ops call in the functional graph is not yet "
                                 "translated (wrap it in a layer and register_translation())")
        if cls == "Lambda":
            raise _refuse(entry, "a Lambda holds Python bytecode, which lstm-zoo never runs;"
                                 " rewrite it as a layer class and register_translation()")
        if cls in MODELS:
            if _is_custom(entry, MODEL_MODULES):
                raise _refuse(entry, "a custom model class; register_translation() it")
        elif _is_custom(entry, ("keras.layers",)):
            raise _refuse(entry, "a custom class (not one of Keras' own layers); "
                                 "register_translation() it")
        elif cls in NOT_YET:
            raise _refuse(entry, f"not yet translated: {NOT_YET[cls]}")
        elif cls not in SUPPORTED_LAYERS:
            raise _refuse(entry, "not in the layers lstm-zoo translates (see "
                                 "export.user.keras3.SUPPORTED_LAYERS)")
        if isinstance(entry.get("config"), dict):
            _check_objects(entry)
            _check_dtype(entry)
        ops = frozenset(_mask_ops(entry["config"])) if cls in MODELS else frozenset()
        for _, child in _nested_layers(entry):
            walk(child, ops)

    if not isinstance(config, dict) or "class_name" not in config:
        raise ArtifactError(f"expected a serialized Keras 3 model, got {type(config).__name__}")
    walk(config, frozenset())


def _check_dtype(entry: dict) -> None:
    dtype = entry["config"].get("dtype")
    name = _dtype_name(dtype)
    if dtype is not None and name not in FLOAT_POLICIES and entry.get("class_name") not in (
            "InputLayer", "Embedding"):
        raise _refuse(entry, f"dtype policy {name!r} is not yet translated (expected one of "
                             f"{sorted(FLOAT_POLICIES)})")
    if isinstance(dtype, dict) and dtype.get("class_name") not in (None, "DTypePolicy",
                                                                   "FloatDTypePolicy"):
        raise _refuse(entry, f"dtype policy class {dtype.get('class_name')!r} (quantized?) is "
                             "not yet translated")


def _dtype_name(dtype) -> str | None:
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


def _refs(value) -> list[str]:
    """The layer names of every ``__keras_tensor__`` inside ``value``."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [value["config"]["keras_history"][0]]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _is_op(entry: dict) -> bool:
    # A keras.ops call recorded in a functional graph (keras.src.ops.numpy.NotEqual...).
    return str(entry.get("module", "")).startswith("keras.src.ops")


def _mask_ops(cfg: dict) -> set[str]:
    """The keras.ops nodes of a functional graph that only compute masks.

    Keras 3 records the masks it propagates (``Embedding(mask_zero=True)``, ``Masking``,
    merge layers) as keras.ops nodes (NotEqual, Any, LogicalOr...) feeding the ``mask``
    argument of the next layer; tf_keras propagates the same masks implicitly. An op is
    mask-only when every use of its output is a ``mask`` argument or another mask-only op.
    """
    entries = {e.get("name"): e for e in cfg.get("layers", []) if isinstance(e, dict)}
    candidates = {n for n, e in entries.items() if _is_op(e)}
    uses: dict[str, list[tuple[str, bool]]] = {n: [] for n in entries}  # (user, as mask)
    for name, e in entries.items():
        for node in e.get("inbound_nodes") or []:
            if not isinstance(node, dict):
                continue
            kwargs = node.get("kwargs") or {}
            for key, value in [(None, node.get("args"))] + list(kwargs.items()):
                for ref in _refs(value):
                    uses.setdefault(ref, []).append((name, key == "mask"))
    for ref in _refs(cfg.get("output_layers")):
        uses.setdefault(ref, []).append(("<output>", False))
    changed = True
    while changed:
        changed = False
        for op in sorted(candidates):
            if not uses.get(op) or any(not mask and user not in candidates
                                       for user, mask in uses[op]):
                candidates.discard(op)
                changed = True
    return candidates
