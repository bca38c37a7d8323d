"""Keras 3 layer and model configs rewritten as tf_keras configs, layer by layer
(:mod:`export.user.keras3` is the public face).
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from export.user.keras3_read import (
    ACTIVATIONS,
    ANY,
    DROPPABLE,
    MODELS,
    _dtype_name,
    _entry_name,
    _mask_ops,
    _refs,
    _translation_for,
    check_layers,
)
from zoo.errors import ArtifactError, UnsupportedError, UnsupportedLayerError

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


