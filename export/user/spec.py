"""The spec a user's model is exported with, and rebuilding a user bundle's model and spec
from its manifest (what :class:`export.verification.runtime.Bundle` needs: this module
imports nothing above it).
"""

from __future__ import annotations

import json
from pathlib import Path

from export.user.load import check_tf_keras_config, first_line
from export.user.prepare import ENCODER_GRAPH, STEP_GRAPH, encoder_model, step_model
from zoo._keras import keras
from zoo.errors import ArtifactError, UnsupportedError
from zoo.registry import DataSpec, GraphSpec, ModelSpec, Tolerance
from zoo.tasks.user import SAME_VALUES

GRAPH = "model"
# fp32 artifacts against the Keras reference: the same float32 function, computed by other
# kernels (fused LSTM ops, another summation order); the bound the task holds them to
# against the original model too.
FP32 = Tolerance(SAME_VALUES, "fp32 artifacts compute the model's float32 function; only "
                              "the kernels' summation order differs")


def user_spec(name: str, model, meta: dict, *, formats, precisions, recipe=None,
              compressed_drop: Tolerance | None = None) -> ModelSpec:
    """The spec the pipeline runs a user model with: the model itself, whose recurrent
    layers must become what :mod:`export.user.inspect` says they become; for a model that
    streams (``meta["stream"]``), the one-step graph beside it, or for an encoder-decoder,
    the encoder and the decoder's step graph instead. ``recipe`` is what compression
    fine-tunes with (:mod:`export.user.training`), ``compressed_drop`` the bound on the
    metric's drop from compression."""
    from export.user.inspect import fusion_expectations, inspect_model

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
        tensor_tolerance={"fp32": FP32}, meta=meta, formats=tuple(formats), recipe=recipe,
        metric_drop={} if compressed_drop is None else {"compressed": compressed_drop},
        precisions=tuple(precisions),
        description=f"a user model ({meta.get('origin', 'Keras')})")


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
                            f"{first_line(e)}") from None
    return model


def bundle_spec(bundle, model=None) -> ModelSpec:
    """The spec a user bundle was exported with (from its manifest and ``model``, its
    Keras model: rebuilt when not given)."""
    model = bundle.keras_model() if model is None else model
    manifest = bundle.manifest
    return user_spec(bundle.model_name, model, manifest["meta"],
                     formats=sorted({a["format"] for a in manifest["artifacts"]}),
                     precisions=sorted({a["precision"] for a in manifest["artifacts"]}))
