"""Bring your own model: a user's tf_keras or Keras 3 model through the export pipeline.

The model comes as an object or a file (``.keras`` of tf_keras or Keras 3, a tf_keras
``.h5`` or SavedModel folder). A
Keras 3 model is translated into a tf_keras twin (:mod:`export.user.keras3`), which is checked
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
from pathlib import Path
from typing import Any

import numpy as np

from export.compression.quantize import PRECISIONS
from export.config import FORMATS, ExportConfig
from export.conversion.graphs import input_infos, output_infos, recurrent_directions
from export.progress import Progress, Silent
from export.user.data import (
    SAMPLES_FILE,
    choose_metric,
    read_labels,
    read_samples,
    samples_bytes,
)
from export.user.load import (
    UserModel,
    keras_forward,
    load_user_model,
    stateful_forward,
)
from export.user.prepare import (
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
from export.user.spec import GRAPH, user_spec
from export.user.training import read_train, saved_loss, user_recipe
from zoo._keras import keras
from zoo.errors import ParityError, UnsupportedError
from zoo.registry import Tolerance
from zoo.tasks import get_task
from zoo.tasks.user import LABEL_METRICS, RELATIVE_ERROR, UserSamples


def _is_softmax(model) -> bool:
    layer = model.get_layer(model.output_names[0]) if model.output_names[0] in \
        [x.name for x in model.layers] else model.layers[-1]
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "") == "softmax" or isinstance(layer, keras.layers.Softmax)


# ---------------------------------------------------------------------------------------
# The spec, the export, the bundle

def model_meta(user: UserModel, metric: str) -> dict:
    model = user.model
    return {"inputs": list(model.input_names), "outputs": list(model.output_names),
            "input_shapes": {i.name: list(i.shape) for i in input_infos(model)},
            "output_shapes": {o.name: list(o.shape) for o in output_infos(model)},
            "scored_output": model.output_names[0], "metric": metric,
            "softmax": _is_softmax(model), "origin": user.origin}


def export_keras(model_or_path, out: str | Path, config: ExportConfig | None = None, *,
                 samples, labels=None, metric: str | None = None, name: str | None = None,
                 train=None, loss=None, learning_rate: float | None = None,
                 batch_size: int | None = None, unroll: str = "auto",
                 progress: Progress | None = None, **options: Any) -> dict[str, Any]:
    """Exports a user's tf_keras or Keras 3 model to a verified LiteRT / ONNX bundle.

    Args:
        model_or_path: a tf_keras or Keras 3 model, a ``.keras`` / ``.h5`` file, or a
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
        train: training data for the compression options (``prune``, ``structured``,
            ``cluster``, ``qat``), which fine-tune the model: a ``.npz`` or dict with ``x``
            and ``y`` (or one array per input and output name), or a pair ``(x, y)``.
        loss: the loss to fine-tune with, a Keras loss name (default: the one the model
            was compiled with, read from its file).
        learning_rate / batch_size: fine-tuning's (defaults in
            :mod:`export.user.training`); ``finetune_epochs`` and ``finetune_limit`` of the
            config apply too.
        unroll: ``"auto"``: a model whose recurrent layers run over a fixed time axis of at
            most 64 steps is also converted unrolled, and the unrolled TFLite artifact is
            kept where it runs measurably faster on LiteRT (:mod:`export.conversion.unroll`);
            ``"never"``: always the fused ops.
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
    from export.output import OutDir

    cfg = ExportConfig.of(config, **options)
    if metric is not None and metric not in LABEL_METRICS:
        raise UnsupportedError(f"unknown metric {metric!r}; expected one of "
                               f"{sorted(LABEL_METRICS)}")
    if cfg.compressing and train is None:
        raise UnsupportedError("prune / structured / cluster / qat fine-tune the model: give "
                               "its training data (--train FILE with x and y)")
    if train is not None and not cfg.compressing:
        raise UnsupportedError("training data is for compression (--prune, --structured, "
                               "--cluster, --qat); without one nothing is trained")
    recipe = user_recipe(epochs=cfg.finetune_epochs, batch_size=batch_size,
                         learning_rate=learning_rate) if cfg.compressing else None
    if unroll not in ("auto", "never"):
        raise UnsupportedError(f"unroll must be 'auto' or 'never'; got {unroll!r}")
    if cfg.calibration is not None:
        raise UnsupportedError("a user model calibrates on its samples; calibration is for "
                               "zoo models")
    progress = progress or Silent()
    with OutDir(out) as claim:  # checked and claimed before the model is read
        return _export(model_or_path, claim, cfg, samples=samples, labels=labels,
                       metric=metric, name=name, train=train, loss=loss, recipe=recipe,
                       unroll=unroll == "auto", progress=progress)


def _export(model_or_path, claim, cfg: ExportConfig, *, samples, labels, metric, name, train,
            loss, recipe, unroll, progress) -> dict[str, Any]:
    """:func:`export_keras` once its arguments are checked and the output folder claimed."""
    from export.pipeline import compress_and_measure, run_export

    where = model_or_path if isinstance(model_or_path, (str, Path)) else "the model"
    progress.say(f"reading {where}")
    user = load_user_model(model_or_path)
    loss = saved_loss(model_or_path, loss) if cfg.compressing else None
    if name is not None:
        user.name = name
    mask = mask_source(user.model)
    if cfg.compressing and (mask is not None or is_stateful(user.model)
                            or has_initial_state(user.model)):
        raise UnsupportedError(f"{user.name}: compressing a model with a padding mask, state "
                               "or initial states is not supported yet; export it without "
                               "--prune / --structured / --cluster / --qat")
    stream = None
    if is_stateful(user.model) or has_initial_state(user.model):
        if mask is not None:
            raise UnsupportedError(f"{user.name}: a stateful or encoder-decoder model with a "
                                   "padding mask; stream it without the mask")
        stream = (_streaming if is_stateful(user.model) else _encoder_decoder)(user, progress)
    x = read_samples(samples, user.model)
    n = len(next(iter(x.values())))
    train_data = None if train is None else read_train(train, user.model)
    y = None if labels is None else read_labels(labels, n)
    chosen = choose_metric(metric, y, _is_softmax(user.model))
    progress.say(f"running the original model ({user.origin}) on {n} samples")
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
    spec = user_spec(user.name, user.model, meta, formats=FORMATS, precisions=PRECISIONS,
                     recipe=recipe)
    for line in _inspection_notes(spec):
        progress.say(line)
    fmts, precs = cfg.for_spec(spec)
    task = get_task("user").for_meta(meta)
    if cfg.limit:
        data = data.head(cfg.limit)
    compression = None
    if cfg.compressing:
        meta["loss"] = loss
        source = (f"{train if isinstance(train, (str, Path)) else 'the training arrays'} "
                  f"({len(train_data)} samples)")
        compression = compress_and_measure(spec, task, user.model, None, data, cfg, progress,
                                           train=train_data, source=source)
        user.model = compression.pop("model")
        meta["compressed"] = True
        spec = user_spec(user.name, user.model, meta, formats=FORMATS, precisions=PRECISIONS,
                         recipe=recipe, compressed_drop=compressed_drop(
                             task, compression["baseline_metrics"][task.metric]))
        task = get_task("user").for_meta(meta)
    report.update({"recurrent": recurrent_directions(user.model),
                   "fusion": dict(spec.graphs[0].fusion)})
    return run_export(
        spec, task, user.model, claim, cfg, fmts, precs, data, data,
        calibration=(task.inputs(data), "user samples"),
        reference={"model_config": json.loads(user.model.to_json())},
        data={"dataset": "user samples", "test": "samples", "calibration": "samples",
              "license": "the user's"},
        compression=compression, progress=progress, manifest_extra={"source": report},
        unroll=unroll,
        attachments={SAMPLES_FILE: samples_bytes(data)})


def compressed_drop(task, baseline: float) -> Tolerance:
    """How far compression may move a user model's metric: 2 points of a bounded metric
    (accuracy, top-5, F1, AUC, top-1 agreement with the original), a relative error of 0.05
    against the original's outputs, or 10 % of the uncompressed model's MSE / MAE (which
    have no scale of their own)."""
    if task.metric == RELATIVE_ERROR:
        return Tolerance(0.05, "outputs within 5 % (relative L2) of the original model's")
    if task.metric in ("mse", "mae"):
        return Tolerance(0.1 * baseline, f"{task.metric} at most 10 % above the uncompressed "
                                         f"model's ({baseline:.4g})")
    return Tolerance(0.02, f"{task.metric} at most 2 points below the uncompressed model's")


def _streaming(user: UserModel, progress) -> dict:
    """A stateful model: its whole-sequence twin (stateless, free batch) replaces it, and
    the one-step graph is built from it (checked now: a model that cannot stream is
    refused before anything runs)."""
    if "Keras 3" not in user.origin:  # Keras 3's forward already runs sample by sample
        user.original = stateful_forward(user.model)
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


def _check_twin(user: UserModel, x, original) -> None:
    """The tf_keras twin against Keras 3 on the user's samples, before anything is
    converted."""
    from export.user.keras3 import compare_twin

    twin = keras_forward(user.model)(x)
    names = list(user.model.output_names)
    try:
        compare_twin([original[k] for k in names], [twin[k] for k in names])
    except ParityError as e:
        raise ParityError(f"{user.name}: {e}; nothing was exported") from None
