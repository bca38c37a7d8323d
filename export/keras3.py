"""Keras 3 ``.keras`` files and models, translated into tf_keras "twins".

Only tf_keras models convert to fused LSTM/GRU ops in LiteRT and ONNX, and tf_keras cannot
load a Keras 3 ``.keras`` file (``Unrecognized keyword arguments: ['batch_shape']``). A
``.keras`` file is a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``:
this module reads the first two as JSON, refuses any layer it has not verified *before*
anything is built, rewrites the Keras 3 configs into tf_keras configs, builds the tf_keras
twin and fills its variables from the h5 file with h5py. Nothing stored in the user's file
is executed: a ``Lambda`` (marshalled bytecode) or a custom class is refused by name, and
Keras 3 itself only loads the file (``safe_mode=True``) after that check, to compare.

Keras 3 is imported lazily, inside the functions that need it (``keras3_outputs`` and a
model object given to ``to_tf_keras``): importing it costs seconds. This is one of the
modules tests/test_keras_entry.py allows to import Keras 3.

Example:
    >>> from export.keras3 import to_tf_keras, check_twin  # doctest: +SKIP
    >>> twin = to_tf_keras("model.keras")  # doctest: +SKIP
    >>> check_twin("model.keras", twin, x)  # doctest: +SKIP  (raises ParityError)

A layer class of your own is refused unless you register a translation for it: a function
of your own Python code that receives the layer's Keras 3 entry (``{"class_name", "config",
"module", "registered_name", ...}``) and returns the tf_keras ``{"class_name", "config"}``.
The returned class must be one tf_keras can deserialize: a built-in, or your tf_keras class
given to ``to_tf_keras(..., custom_objects=...)``. Its variables are filled, in order, from
the layer's own ``vars`` in the h5 file (so the tf_keras class must create the same
variables in the same order as the Keras 3 one)::

    from export.keras3 import register_translation, to_tf_keras

    def scale_to_tf_keras(entry):
        # Keras 3 class "my_pkg>Scale" (one variable "w") -> tf_keras class Scale
        return {"class_name": "Scale", "config": {"name": entry["config"]["name"]}}

    register_translation("my_pkg>Scale", scale_to_tf_keras)
    twin = to_tf_keras("model.keras", custom_objects={"Scale": TfKerasScale})

The key is the entry's ``registered_name`` when the class was registered with Keras 3
(``"package>Name"``), else its ``class_name``.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo.errors import ArtifactError, ParityError, UnsupportedError, UnsupportedLayerError

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_WEIGHTS_BYTES",
    "SUPPORTED_LAYERS",
    "check_layers",
    "check_twin",
    "keras3_outputs",
    "load_weights",
    "read_config",
    "register_translation",
    "to_tf_keras",
    "translate_config",
]

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
                                 "export.keras3.SUPPORTED_LAYERS)")
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


# ---------------------------------------------------------------------------------------
# Translating configs


def _tf_keras():
    from zoo._keras import keras

    return keras


def _tf_keras_class(class_name: str):
    keras = _tf_keras()
    cls = getattr(keras.layers, class_name, None)
    if cls is None:
        raise UnsupportedError(f"tf_keras has no layer class {class_name!r}")
    return cls


_BASE_KWARGS = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
                "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                "autocast", "input_length"}
# Keyword arguments tf_keras' RNN base class takes through **kwargs.
_RNN_KWARGS = {"zero_output_for_mask", "time_major"}


def _accepted(cls) -> set[str]:
    """The keyword arguments ``cls(...)`` takes (following ``**kwargs`` up the bases)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        names |= {n for n, p in params.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    rnn = _tf_keras().layers.RNN
    return names | _BASE_KWARGS | (_RNN_KWARGS if issubclass(cls, rnn) else set())


def _translate_object(value):
    """A Keras 3 serialized initializer/regularizer/constraint -> tf_keras' form."""
    if not (isinstance(value, dict) and "class_name" in value and "module" in value):
        return value
    keras = _tf_keras()
    kind = value["module"].rsplit(".", 1)[-1]
    module = getattr(keras, kind, None)
    cls = getattr(module, value["class_name"], None) if module else None
    if cls is None:
        raise UnsupportedError(f"tf_keras has no {kind} class {value['class_name']!r}")
    accepted = _accepted(cls) - _BASE_KWARGS
    cfg = {k: v for k, v in (value.get("config") or {}).items() if k in accepted}
    # Initializers only matter for training; regularizers/constraints for training too,
    # but their arguments are kept when tf_keras takes them.
    return {"class_name": value["class_name"], "config": cfg}


def _translate_layer_config(entry: dict) -> dict:
    """One Keras 3 layer entry -> tf_keras ``{"class_name", "config"}`` (no graph keys)."""
    fn = _translation_for(entry)
    if fn is not None:
        out = fn(copy.deepcopy(entry))
        if not (isinstance(out, dict) and "class_name" in out and isinstance(
                out.get("config"), dict)):
            raise UnsupportedError(f"the registered translation of {entry.get('class_name')!r}"
                                   f" returned {out!r}; expected {{'class_name', 'config'}}")
        return {"class_name": out["class_name"], "config": out["config"]}
    cls_name = entry["class_name"]
    if cls_name in MODELS:
        return {"class_name": "Sequential" if cls_name == "Sequential" else "Functional",
                "config": _translate_model_config(entry)}
    cfg = dict(entry["config"])
    if "dtype" in cfg:
        cfg["dtype"] = _dtype_name(cfg["dtype"])
    if "batch_shape" in cfg:
        cfg["batch_input_shape"] = cfg.pop("batch_shape")
    for key in ("layer", "backward_layer"):
        if isinstance(cfg.get(key), dict):
            cfg[key] = _translate_layer_config(cfg[key])
    for key, value in list(cfg.items()):
        if key == "activation" or key.endswith("_activation"):
            name = value.get("config") if isinstance(value, dict) else value
            cfg[key] = ACTIVATIONS[name]
        elif isinstance(value, dict) and "module" in value:
            cfg[key] = _translate_object(value)
    cls = _tf_keras_class(cls_name)
    accepted = _accepted(cls)
    for key in [k for k in cfg if k not in accepted]:
        harmless = DROPPABLE.get(key, ...)
        if harmless is ANY or (harmless is not ... and cfg[key] == harmless):
            del cfg[key]
        else:
            raise UnsupportedLayerError(
                f"layer {cfg.get('name')!r} of class {cls_name!r}: Keras 3 argument "
                f"{key}={cfg[key]!r} has no tf_keras equivalent; not yet translated")
    _adjust(cls_name, cfg)
    return {"class_name": cls_name, "config": cfg}


def _adjust(cls_name: str, cfg: dict) -> None:
    """Per-class differences of meaning between the Keras 3 and tf_keras arguments."""
    if cls_name == "MultiHeadAttention":
        # tf_keras' from_config reads the shapes it was built with; None lets the first
        # call build it, which the functional reconstruction makes.
        for key in ("query_shape", "key_shape", "value_shape"):
            cfg.setdefault(key, None)
    if cls_name in ("Normalization",):
        for key in ("mean", "variance"):
            if isinstance(cfg.get(key), list):
                cfg[key] = np.asarray(cfg[key], np.float32).tolist()
    if cls_name == "InputLayer" and cfg.get("sparse") is False:
        cfg.pop("sparse")
    if cls_name == "InputLayer" and cfg.get("ragged") is False:
        cfg.pop("ragged")


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


def _tensor_ref(value, where: str, offsets: dict[str, int]):
    """A Keras 3 ``__keras_tensor__`` -> tf_keras' ``[layer, node, tensor]``; else as is.

    ``offsets``: tf_keras counts a nested model's own construction as its node 0, Keras 3
    does not; references to such a model shift by one.
    """
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        layer, node, tensor = value["config"]["keras_history"]
        return [layer, int(node) + offsets.get(layer, 0), int(tensor)]
    if isinstance(value, dict) and "class_name" in value:
        raise UnsupportedError(f"{where}: a call argument of type {value['class_name']!r} "
                               "is not yet translated")
    if isinstance(value, list):
        return [_tensor_ref(v, where, offsets) for v in value]
    if isinstance(value, dict):
        return {k: _tensor_ref(v, where, offsets) for k, v in value.items()}
    return value


def _call_params(class_name: str) -> tuple[list[str], bool]:
    """tf_keras ``class_name.call``'s argument names, and whether it takes ``**kwargs``."""
    try:
        cls = _tf_keras_class(class_name)
    except UnsupportedError:
        return [], True
    params = inspect.signature(cls.call).parameters
    return ([n for n in params if n != "self"],
            any(p.kind == p.VAR_KEYWORD for p in params.values()))


def _translate_node(node, layer_entry: dict, tf_class: str, offsets: dict[str, int],
                    mask_ops: set[str]) -> tuple[list, bool]:
    """One Keras 3 inbound node -> tf_keras' form, and whether its mask became implicit."""
    where = f"layer {_entry_name(layer_entry)!r}"
    if not isinstance(node, dict) or "args" not in node:
        raise ArtifactError(f"{where}: inbound node {node!r}; expected Keras 3's "
                            "{'args': [...], 'kwargs': {...}}")
    args = list(node.get("args") or [])
    kwargs = dict(node.get("kwargs") or {})
    if not args:
        raise UnsupportedError(f"{where}: a call without positional inputs is not yet "
                               "translated")
    names, var_kw = _call_params(tf_class)
    for i, extra in enumerate(args[1:], start=1):
        # tf_keras serializes every argument after the first as a keyword argument.
        if i >= len(names):
            raise UnsupportedError(f"{where}: {len(args)} positional call arguments; tf_keras "
                                   f"{tf_class}.call takes {names}")
        kwargs[names[i]] = extra
    implicit_mask = False
    if "mask" in kwargs:
        refs = _refs(kwargs["mask"])
        if refs and all(r in mask_ops for r in refs):
            # Keras 3's own propagated mask: tf_keras recomputes it (checked after the
            # build by _check_implicit_masks).
            del kwargs["mask"]
            implicit_mask = True
        elif kwargs["mask"] is None:
            # Keras 3 records ``mask=None`` (given or not) and still applies the input's
            # mask; tf_keras applies it when no mask argument is given (measured).
            del kwargs["mask"]
    if kwargs.get("training") in (None, False):
        kwargs.pop("training", None)  # inference is training=False in both
    for key in [k for k, v in kwargs.items() if v is None and k != "mask"]:
        del kwargs[key]  # None is the default of every optional call argument
    kwargs = {k: _tensor_ref(v, where, offsets) for k, v in kwargs.items()}
    unknown = sorted(set(kwargs) - set(names) - {"training", "mask"})
    if unknown and not var_kw:
        raise UnsupportedError(f"{where}: call arguments {unknown} have no tf_keras "
                               f"{tf_class}.call equivalent ({names})")
    first = _tensor_ref(args[0], where, offsets)

    def entries(x):
        if isinstance(x, list) and x and isinstance(x[0], str):
            return [[*x, kwargs]]
        if isinstance(x, list):
            return [e for item in x for e in entries(item)]
        if isinstance(x, dict):
            return [e for item in x.values() for e in entries(item)]
        raise UnsupportedError(f"{where}: a constant first call argument {x!r} is not yet "
                               "translated")

    return entries(first), implicit_mask


def _translate_model_config(entry: dict) -> dict:
    cfg = entry["config"]
    if not isinstance(cfg.get("layers"), list):
        raise ArtifactError(f"model {_entry_name(entry)!r}: config has keys {sorted(cfg)}; "
                            "expected a 'layers' list")
    if entry["class_name"] == "Sequential":
        out = {"name": cfg.get("name"), "layers": [
            _translate_layer_config(layer) for layer in cfg["layers"]]}
        if cfg.get("build_input_shape") is not None:
            out["build_input_shape"] = cfg["build_input_shape"]
        return out
    mask_ops = _mask_ops(cfg)
    offsets = {e["name"]: 1 for e in cfg["layers"] if e.get("class_name") in MODELS
               and e["config"].get("layers") and
               e["config"]["layers"][0].get("class_name") == "InputLayer"}
    layers, implicit = [], []
    for layer in cfg["layers"]:
        if layer.get("name") in mask_ops:
            continue
        tf_layer = _translate_layer_config(layer)
        nodes = []
        for i, node in enumerate(layer.get("inbound_nodes") or []):
            data, mask = _translate_node(node, layer, tf_layer["class_name"], offsets,
                                         mask_ops)
            nodes.append(data)
            if mask:
                implicit.append([layer["name"], i])
        layers.append({"class_name": tf_layer["class_name"], "config": tf_layer["config"],
                       "name": layer.get("name") or tf_layer["config"].get("name"),
                       "inbound_nodes": nodes})
    where = f"model {_entry_name(entry)!r}"
    out = {"name": cfg.get("name"), "trainable": cfg.get("trainable", True), "layers": layers,
           "input_layers": _tensor_ref(_history(cfg["input_layers"]), where, offsets),
           "output_layers": _tensor_ref(_history(cfg["output_layers"]), where, offsets)}
    if implicit:
        out[_IMPLICIT_MASKS] = implicit
    return out


# A key of our own in a translated Functional config, popped before tf_keras sees it.
_IMPLICIT_MASKS = "_lstm_zoo_implicit_masks"


def _history(value):
    """input_layers/output_layers hold ``[name, node, tensor]`` lists: as tensor refs."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return {"class_name": "__keras_tensor__", "config": {"keras_history": value}}
    if isinstance(value, list):
        return [_history(v) for v in value]
    if isinstance(value, dict):
        return {k: _history(v) for k, v in value.items()}
    return value


def _pop_implicit_masks(tf_config: dict, prefix: tuple = ()) -> list[tuple]:
    """Removes our key from the translated configs: ``(model path, layer, node)``s."""
    cfg = tf_config.get("config", {})
    out = [(*prefix, name, node) for name, node in cfg.pop(_IMPLICIT_MASKS, [])]
    for layer in cfg.get("layers", []) if tf_config.get("class_name") in MODELS else []:
        if layer.get("class_name") in MODELS:
            out += _pop_implicit_masks(layer, (*prefix, layer["config"].get("name")))
    return out


def _check_masked_merges(twin) -> None:
    """Refuses a merge layer that receives a mask: the two Keras merge masks differently.

    Keras 3's Add/Subtract/Multiply/Average give the OR of their inputs' masks (None when
    one input has none), its Concatenate the OR along the features; tf_keras gives the AND
    of the masks present (measured: an LSTM after a masked Concatenate differs by 0.2).
    """
    from zoo._keras import keras, tf

    merges = (keras.layers.Concatenate, keras.layers.Add, keras.layers.Subtract,
              keras.layers.Multiply, keras.layers.Average)
    for layer in twin._flatten_layers(include_self=False):
        if not isinstance(layer, merges):
            continue
        for node in layer._inbound_nodes:
            if any(getattr(t, "_keras_mask", None) is not None
                   for t in tf.nest.flatten(node.input_tensors)):
                raise UnsupportedLayerError(
                    f"layer {layer.name!r} of class {type(layer).__name__!r}: merging masked "
                    "inputs is not yet translated (Keras 3 merges masks with OR, tf_keras "
                    "with AND)")


def _check_implicit_masks(twin, implicit: list[tuple]) -> None:
    """Each layer that Keras 3 gave a propagated mask must receive one in the twin too."""
    from zoo._keras import tf

    for *models, name, node in implicit:
        model = twin
        for sub in models:
            model = model.get_layer(sub)
        layer = model.get_layer(name)
        nodes = layer._inbound_nodes
        inputs = tf.nest.flatten(nodes[min(node, len(nodes) - 1)].input_tensors)
        if all(getattr(t, "_keras_mask", None) is None for t in inputs):
            raise UnsupportedError(
                f"layer {name!r}: Keras 3 passes it a mask computed by keras.ops, which "
                "tf_keras does not propagate to it; an explicit mask is not yet translated")


def translate_config(config: dict) -> dict:
    """Translates a Keras 3 model config into the tf_keras config of its twin.

    Keeps every layer's name (so the twin's output names are the user's); runs
    :func:`check_layers` first.

    Args:
        config: A Keras 3 model config (``{"class_name", "config", ...}``).

    Returns:
        ``{"class_name": "Sequential" | "Functional", "config": ...}`` for tf_keras'
        ``model_from_config``.

    Raises:
        UnsupportedLayerError: See :func:`check_layers`; also a Keras 3 argument without a
            tf_keras equivalent that would change inference.
        UnsupportedError: A graph construct (constant call argument, unknown call keyword)
            not yet translated.
    """
    check_layers(config)
    if config.get("class_name") not in MODELS:
        raise UnsupportedError(f"config.json holds a {config.get('class_name')!r}; expected a "
                               "Sequential or Functional model")
    return _translate_layer_config(config)


# ---------------------------------------------------------------------------------------
# Weights


def _snake(name: str) -> str:
    # Keras 3 names h5 groups by class, not by layer name (keras.src.utils.naming).
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_RNN = {"LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D"}
_MHA_PARTS = (("query_dense", "_query_dense"), ("key_dense", "_key_dense"),
              ("value_dense", "_value_dense"), ("output_dense", "_output_dense"))


def _units(entry: dict, group_path: str, twin_layer) -> list[tuple[str, str, list, bool]]:
    """(layer label, h5 ``vars`` group, twin variables, whether the group names the layer),
    in assignment order."""
    cls = entry["class_name"]
    label = _entry_name(entry)
    if _translation_for(entry) is None and cls in MODELS:
        used: dict[str, int] = {}
        out = []
        for child in entry["config"]["layers"]:
            if entry["class_name"] == "Sequential" and child["class_name"] == "InputLayer":
                continue  # Keras 3's Sequential.layers, which names the groups, skips it
            if _is_op(child):
                continue  # a recorded keras.ops call: not a layer, no weights
            key = _snake(child["class_name"])
            used[key] = used.get(key, -1) + 1
            name = key if used[key] == 0 else f"{key}_{used[key]}"
            out += _units(child, f"{group_path}/layers/{name}",
                          twin_layer.get_layer(_entry_name(child)))
        return out
    if _translation_for(entry) is None and cls == "Bidirectional":
        cfg = entry["config"]
        backward = cfg.get("backward_layer") or cfg["layer"]
        return (_units(cfg["layer"], f"{group_path}/forward_layer", twin_layer.forward_layer)
                + _units(backward, f"{group_path}/backward_layer", twin_layer.backward_layer))
    if _translation_for(entry) is None and cls == "TimeDistributed":
        return _units(entry["config"]["layer"], f"{group_path}/layer", twin_layer.layer)
    if _translation_for(entry) is None and cls in _RNN:
        return [(label, f"{group_path}/cell/vars", list(twin_layer.cell.weights), False),
                (label, f"{group_path}/vars", [], True)]
    if _translation_for(entry) is None and cls == "MultiHeadAttention":
        return [(f"{label}/{part}", f"{group_path}/{part}/vars",
                 list(getattr(twin_layer, attr).weights), False) for part, attr in _MHA_PARTS]
    # The one unit whose h5 ``vars`` group is named after the layer itself (checked).
    return [(label, f"{group_path}/vars", list(twin_layer.weights), True)]


def load_weights(twin, path: str | Path, config: dict | None = None) -> None:
    """Fills the tf_keras twin's variables from a Keras 3 ``.keras`` file's weights.

    Reads ``model.weights.h5`` (Keras 3 layout: ``layers/<class_snake_name>[_<i>]/vars/<j>``,
    nested as ``forward_layer``/``backward_layer``, ``layer``, ``cell``,
    ``query_dense``...) with h5py; Keras 3 is not used.

    Args:
        twin: The tf_keras model built from :func:`translate_config` of the same file.
        path: The ``.keras`` file.
        config: Its Keras 3 config, when already read (else read from ``path``).

    Raises:
        ArtifactError: The h5 file is unreadable, a group is missing, a variable count or
            shape differs (naming the layer, the expected and the found shapes), or the file
            holds variables the twin does not have.
    """
    import h5py

    from zoo._keras import keras

    path = Path(path)
    config = config if config is not None else read_config(path)
    tmp = Path(tempfile.mkdtemp(prefix="lstm_zoo_k3_"))
    try:
        h5_path = tmp / "model.weights.h5"
        with _open_zip(path) as zf:
            h5_path.write_bytes(_read_member(zf, "model.weights.h5", MAX_WEIGHTS_BYTES, path))
        try:
            h5 = h5py.File(h5_path, "r")
        except OSError as e:
            raise ArtifactError(f"{path}: model.weights.h5 is not a readable HDF5 file ({e})"
                                ) from e
        with h5:
            found: list[str] = []
            h5.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
            pairs, used = [], set()
            for label, group, variables, named in _units(config, "", twin):
                group = group.lstrip("/")
                if group not in h5:
                    if not variables:
                        continue
                    raise ArtifactError(f"{path}: layer {label!r}: no group {group!r} in "
                                        f"model.weights.h5; expected "
                                        f"{[tuple(v.shape) for v in variables]}")
                node = h5[group]
                # Keras 3 (3.x recent) writes the layer's name on its group: a mismatch
                # means the file's layer order is not the config's.
                stored = node.attrs.get("name")
                stored = stored.decode() if isinstance(stored, bytes) else stored
                if named and group != "vars" and stored is not None and stored != label:
                    raise ArtifactError(f"{path}: group {group!r} of model.weights.h5 holds "
                                        f"layer {stored!r}; expected layer {label!r}")
                keys = sorted(node.keys(), key=lambda k: int(k) if k.isdigit() else -1)
                arrays = [node[k] for k in keys if isinstance(node[k], h5py.Dataset)]
                want = [tuple(v.shape) for v in variables]
                got = [tuple(a.shape) for a in arrays]
                if want != got:
                    raise ArtifactError(f"{path}: layer {label!r} ({group}): expected "
                                        f"variables of shapes {want}, found {got}")
                for k, var in zip(keys, variables, strict=True):
                    pairs.append((var, np.asarray(node[k])))
                    used.add(f"{group}/{k}")
            # A compiled, trained model also saves its optimizer's slots (and a metric's
            # counters): training state, not the model's function.
            extra = sorted(k for k in set(found) - used
                           if not k.startswith(("optimizer/", "metrics/")))
            if extra:
                raise ArtifactError(f"{path}: model.weights.h5 holds variables the translated "
                                    f"model does not have: {extra[:8]}")
        keras.backend.batch_set_value(pairs)
        # Preprocessing layers (Normalization) derive their constants from their variables
        # in finalize_state(), which tf_keras' own loaders call after setting them.
        for layer in twin._flatten_layers(include_self=False):
            layer.finalize_state()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# The twin, and the comparison


def _is_keras3_model(obj) -> bool:
    return any(c.__module__.startswith("keras.") for c in type(obj).__mro__) and \
        hasattr(obj, "save")


def to_tf_keras(model_or_path, custom_objects: dict | None = None):
    """Builds the tf_keras twin of a Keras 3 model.

    Args:
        model_or_path: A Keras 3 ``.keras`` file, or a Keras 3 model object (saved to a
            temporary ``.keras`` file, removed afterwards, and read like a file).
        custom_objects: tf_keras classes that registered translations return.

    Returns:
        A ``tf_keras.Model`` with the same layers, names and weights.

    Raises:
        ArtifactError, UnsupportedError, UnsupportedLayerError: See :func:`read_config`,
            :func:`translate_config` and :func:`load_weights`.
    """
    if _is_keras3_model(model_or_path):
        with tempfile.TemporaryDirectory(prefix="lstm_zoo_k3_") as tmp:
            path = Path(tmp) / "model.keras"
            model_or_path.save(path)
            return to_tf_keras(path, custom_objects)
    if not isinstance(model_or_path, (str, Path)):
        raise UnsupportedError(f"expected a Keras 3 model or a .keras path, got "
                               f"{type(model_or_path).__module__}."
                               f"{type(model_or_path).__name__}")
    from zoo._keras import keras

    path = Path(model_or_path)
    config = read_config(path)
    tf_config = translate_config(config)
    implicit = _pop_implicit_masks(tf_config)
    try:
        twin = keras.models.model_from_config(tf_config, custom_objects=custom_objects)
    except (TypeError, ValueError, KeyError) as e:
        raise UnsupportedError(f"{path}: tf_keras cannot build the translated model ({e})"
                               ) from e
    _check_implicit_masks(twin, implicit)
    _check_masked_merges(twin)
    load_weights(twin, path, config)
    return twin


def _as_list(outputs) -> list[np.ndarray]:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(o) for o in outputs]


def keras3_outputs(path_or_model, samples) -> list[np.ndarray]:
    """Runs the original Keras 3 model on ``samples`` (inference mode).

    Args:
        path_or_model: A Keras 3 model, or a ``.keras`` file: loaded with
            ``keras.saving.load_model(safe_mode=True, compile=False)`` only after
            :func:`check_layers` passed.
        samples: An array, or a list of arrays for a model of several inputs.

    Returns:
        The outputs, one array each, in the model's output order.
    """
    model = load_original(path_or_model) if isinstance(path_or_model, (str, Path)) \
        else path_or_model
    return _as_list(model(samples, training=False))


def load_original(path):
    """The Keras 3 model of a ``.keras`` file, loaded in safe mode, only after
    :func:`check_layers` passed."""
    check_layers(read_config(path))
    import keras  # Keras 3, lazily: see the module docstring

    return keras.saving.load_model(str(path), safe_mode=True, compile=False)


def check_twin(original, twin, samples, atol: float = 1e-5) -> list[float]:
    """Checks that the twin computes what the Keras 3 model computes.

    Args:
        original: The Keras 3 model or ``.keras`` file.
        twin: Its tf_keras twin.
        samples: An array, or a list of arrays for several inputs.
        atol: The largest accepted ``max|twin - keras3|`` per output.

    Returns:
        The per-output ``max|twin - keras3|``.

    Raises:
        ParityError: An output differs by more than ``atol`` (each output's difference is
            in the message), or the output counts or shapes differ.
    """
    # 1e-5: both run the same float32 math on the same weights; only the kernels' order of
    # summation differs (Keras 3's ops vs tf_keras' fused/standard RNN kernels), which
    # moves results by a few ulps (~1e-7 relative) per step on these small activations.
    want = keras3_outputs(original, samples)
    got = _as_list(twin(samples, training=False))
    if len(want) != len(got) or any(a.shape != b.shape for a, b in zip(want, got, strict=False)):
        raise ParityError(f"twin outputs of shapes {[g.shape for g in got]}; Keras 3 gives "
                          f"{[w.shape for w in want]}")
    diffs = [float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0))
             for a, b in zip(got, want, strict=True)]
    if any(not d <= atol for d in diffs):
        raise ParityError(f"twin differs from Keras 3: max|diff| per output {diffs}, "
                          f"expected <= {atol}")
    return diffs
