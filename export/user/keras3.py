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
    >>> from export.user.keras3 import to_tf_keras, check_twin  # doctest: +SKIP
    >>> twin = to_tf_keras("model.keras")  # doctest: +SKIP
    >>> check_twin("model.keras", twin, x)  # doctest: +SKIP

A layer class of your own is refused unless you register a translation for it: a function
of your own Python code that receives the layer's Keras 3 entry (``{"class_name", "config",
"module", "registered_name", ...}``) and returns the tf_keras ``{"class_name", "config"}``.
The returned class must be one tf_keras can deserialize: a built-in, or your tf_keras class
given to ``to_tf_keras(..., custom_objects=...)``. Its variables are filled, in order, from
the layer's own ``vars`` in the h5 file (so the tf_keras class must create the same
variables in the same order as the Keras 3 one)::

    from export.user.keras3 import register_translation, to_tf_keras

    def scale_to_tf_keras(entry):
        # Keras 3 class "my_pkg>Scale" (one variable "w") -> tf_keras class Scale
        return {"class_name": "Scale", "config": {"name": entry["config"]["name"]}}

    register_translation("my_pkg>Scale", scale_to_tf_keras)
    twin = to_tf_keras("model.keras", custom_objects={"Scale": TfKerasScale})

The key is the entry's ``registered_name`` when the class was registered with Keras 3
(``"package>Name"``), else its ``class_name``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from export.user.keras3_read import (
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    MODELS,
    SUPPORTED_LAYERS,
    _entry_name,
    _is_op,
    _open_zip,
    _read_member,
    _translation_for,
    check_layers,
    read_config,
    register_translation,
)
from export.user.keras3_translate import (
    _check_implicit_masks,
    _check_masked_merges,
    _pop_implicit_masks,
    translate_config,
)
from zoo.errors import ArtifactError, ParityError, UnsupportedError

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_WEIGHTS_BYTES",
    "SUPPORTED_LAYERS",
    "check_layers",
    "check_twin",
    "compare_twin",
    "keras3_outputs",
    "load_weights",
    "read_config",
    "register_translation",
    "to_tf_keras",
    "translate_config",
]

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
    return compare_twin(keras3_outputs(original, samples),
                        _as_list(twin(samples, training=False)), atol)


def compare_twin(want: list, got: list, atol: float = 1e-5) -> list[float]:
    """The per-output ``max|got - want|`` of a twin's outputs against Keras 3's.

    Raises:
        ParityError: as :func:`check_twin`.
    """
    # 1e-5: both run the same float32 math on the same weights; only the kernels' order of
    # summation differs (Keras 3's ops vs tf_keras' fused/standard RNN kernels), which
    # moves results by a few ulps (~1e-7 relative) per step on these small activations.
    if len(want) != len(got) or any(a.shape != b.shape for a, b in zip(want, got, strict=False)):
        raise ParityError(f"twin outputs of shapes {[g.shape for g in got]}; Keras 3 gives "
                          f"{[w.shape for w in want]}")
    diffs = [float(np.max(np.abs(np.asarray(a, np.float64) - b), initial=0.0))
             for a, b in zip(got, want, strict=True)]
    if any(not d <= atol for d in diffs):
        raise ParityError(f"twin differs from Keras 3: max|diff| per output {diffs}, "
                          f"expected <= {atol}")
    return diffs

