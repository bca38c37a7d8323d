"""Stacked bidirectional LSTM classifier for multivariate sensor sequences.

Pretrained on BasicMotions (smartwatch accelerometer + gyroscope, 4 activities). Raw
sensor values go in: normalisation is a layer of the model, so the exported graphs take
the same input as the Keras model (the shipped recipe fits one mean and variance over
all six channels: ``normalize: "global"``, see :func:`zoo.tasks.fitting.adapt_normalization`).
The time axis is left ``None``: the fused TFLite op resizes to any length at batch 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from zoo import layers
from zoo._keras import keras
from zoo.constants import BASICMOTIONS_CHANNELS as CHANNELS
from zoo.constants import BASICMOTIONS_CLASSES as CLASSES
from zoo.registry import register_model, tiny_variant
from zoo.specs import (
    FUSED_LSTM_GAPS,
    DataSpec,
    GraphSpec,
    ModelSpec,
    Tolerance,
    fused_lstm,
    loose_drops,
)


def bilstm_activity(
    *,
    num_features: int = len(CHANNELS),
    num_classes: int = len(CLASSES),
    units: Sequence[int] = (64, 64),
    dropout: float = 0.2,
    cell: Literal["lstm", "gru", "peephole"] = "lstm",
):
    """Builds ``sequence (B, T, num_features) -> probs (B, num_classes)``.

    Args:
        num_features: channels per time step.
        num_classes: output classes.
        units: units per bidirectional layer (each direction); one layer per entry, so
            the length of ``units`` is the stacking depth.
        dropout: dropout before the classifier head (training only).
        cell: ``"lstm"`` (TFLite's and ONNX's fused LSTM ops), ``"gru"`` (ONNX's GRU
            op; TFLite has no fused GRU, so its converter writes a WHILE loop, and full
            int8 is refused there: calibrating a loop crashes TF 2.21's calibrator) or
            ``"peephole"`` (an LSTM whose gates also see the cell state,
            :class:`zoo.layers.PeepholeLSTMCell`; exported as the fused LSTM ops with their
            peephole weights set, :mod:`export.conversion.peephole`).

    Example:
        >>> from zoo import create_model
        >>> model = create_model("bilstm_activity_tiny")
        >>> model.input_names, model.output_names
        (['sequence'], ['probs'])
    """
    units = tuple(int(u) for u in units)
    if not units or min(units) < 1:
        raise ValueError(f"units must be a non-empty sequence of positive ints; got {units}")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got {cell!r}")
    inputs = keras.Input((None, num_features), name="sequence")
    x = keras.layers.Normalization(axis=-1, name="normalize")(inputs)
    for i, n in enumerate(units):
        last = i == len(units) - 1
        x = keras.layers.Bidirectional(
            CELLS[cell](n, return_sequences=not last), name=f"bi{cell}_{i}"
        )(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    probs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, probs, name="bilstm_activity")


def _peephole_lstm(units: int, **kwargs):
    return keras.layers.RNN(layers.PeepholeLSTMCell(units), **kwargs)


# Each cell's layer, looked up when a model is built: naming keras.layers.LSTM here would
# import TensorFlow with the registry (zoo._keras).
CELLS = {"lstm": lambda units, **kwargs: keras.layers.LSTM(units, **kwargs),
         "gru": lambda units, **kwargs: keras.layers.GRU(units, **kwargs),
         "peephole": _peephole_lstm}
GRAPHS = (GraphSpec("classifier", ("sequence",), ("probs",)),)
DATA = DataSpec(dataset="basicmotions", train="train", test="test", calibration="train")
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5,
        "same float32 weights; fused LSTM kernels sum gates in another order than "
        "TensorFlow's: probabilities differ by 2.4e-7 on LiteRT and 1.5e-7 on ORT for the "
        "pretrained weights, 1.2e-7 / 4.8e-7 pruned to 80 % (measured, with the converter's "
        "cell clip removed: export.conversion.tflite.unclip_lstm_cells; with it LiteRT was "
        "4.4e-5 off "
        "on the pruned model)",
    ),
    "float16": Tolerance(
        1e-3,
        "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per weight); "
        "probabilities moved by 5.2e-5 on LiteRT (measured, pretrained weights)",
    ),
    # No tensor bound for "dynamic" and "int8": int8 weights (and activations) move every
    # tensor by design (measured 4e-3 and 6.5e-2); what is gated is the accuracy drop.
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must classify every test series as Keras does"),
    "dynamic": Tolerance(
        0.025, "one of the 40 BasicMotions test series may flip under int8 weights"
    ),
    "float16": Tolerance(
        0.025, "one of the 40 test series may flip under float16 weights (measured: none)"
    ),
    "int8": Tolerance(
        0.025, "one of the 40 test series may flip under int8 weights and activations "
        "(measured: none on LiteRT or ORT)"
    ),
    "compressed": Tolerance(
        0.025, "pruned or clustered weights (fine-tuned) may flip one of the 40 test series "
               "against the uncompressed model"
    ),
}
META = {"classes": list(CLASSES), "channels": list(CHANNELS)}

SPEC = register_model(ModelSpec(
    name="bilstm_activity",
    builder=bilstm_activity,
    family="bilstm_classifier",
    task="classification",
    graphs=GRAPHS,
    data=DATA,
    docs="export-and-parity.md",
    description="2 x BiLSTM(64) activity classifier for 6-channel smartwatch IMU sequences "
                "(BasicMotions).",
    weights=("basicmotions",),
    intended_use="Starting point for activity or gesture classification from wrist IMU "
                 "sequences (3-axis accelerometer + gyroscope at ~10 Hz); fine-tune on your "
                 "own labels.",
    limitations=(
        "Trained on 40 recordings of 4 students (BasicMotions): 4 coarse activities only; "
        "expect to fine-tune before relying on it for other people, devices or sampling rates.",
        "The 40-series test split makes accuracy coarse: one error is 2.5 points.",
        "Data license: UEA archive, research use.",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(),
    meta=META,
    recipe={"epochs": 150, "batch_size": 8, "learning_rate": 2e-3, "seed": 0,
            "normalize": "global",
            "finetune": {"epochs": 30, "learning_rate": 1e-3},
            "target": {"accuracy": (">=", 0.95)}, "reproduce_tolerance": {"accuracy": 0.05}},
))

tiny_variant(
    SPEC,
    defaults={"units": (8, 8), "dropout": 0.0},
    recipe={"epochs": 3, "batch_size": 8, "learning_rate": 1e-2, "seed": 0,
            "normalize": "global"},
    metric_drop={**METRIC_DROP, "dynamic": Tolerance(
        0.1, "the tiny variant, trained for 3 epochs, leaves test series near-tied between "
        "two classes; ORT's dynamic int8 flipped 2 of 40 on an AVX2 AMD EPYC (measured; "
        "none on the machine before)"),
        "int8": Tolerance(
        0.1, "the tiny variant, trained for 3 epochs, leaves many test series near-tied "
        "between two classes; int8 activations flipped 2 of 40 (measured)"),
        "compressed": Tolerance(
            0.5, "the tiny variant has 8 units and trains for seconds: pruning 80 % of it "
                 "for 2 fine-tuning epochs in tests loses what little it learned; tests check "
                 "the mechanics, the pretrained model the accuracy")},
)

# The GRU variant: same data, recipe and head. TFLite: a WHILE loop per direction (no fused
# GRU op), so no full int8 there; ONNX: its GRU op.
GRU_GAPS = {
    "int8": "TFLite has no fused GRU op: the converter writes WHILE loops, and calibrating a "
            "graph with loops crashes TF 2.21's calibrator (refused before converting); "
            "ONNX int8 alone would leave the bundle without a TFLite artifact",
    "int16x8": FUSED_LSTM_GAPS["int16x8"].replace("UNIDIRECTIONAL_SEQUENCE_LSTM op", "LSTM "
                                                  "op and has no GRU op"),
}
GRU = register_model(replace(
    SPEC,
    name="bigru_activity",
    family="bigru_classifier",
    description="2 x BiGRU(64) activity classifier for 6-channel smartwatch IMU sequences "
                "(BasicMotions): the GRU cell option of bilstm_activity; exported as ONNX's "
                "GRU op and, TFLite having no fused GRU op, a WHILE loop per direction.",
    defaults={"cell": "gru"},
    weights=("basicmotions",),
    precisions=("fp32", "dynamic", "float16"),
    precision_gaps=GRU_GAPS,
    shrink=None,  # export.compression.structured removes LSTM units (4 gates); a GRU has 3
    limitations=(*SPEC.limitations,
                 "ONNX dynamic range leaves the GRU weights float32 (ONNX Runtime's dynamic "
                 "quantizer has no GRU kernel): 410 KB against 408 KB fp32, measured; "
                 "TFLite dynamic is 153 KB."),
))

tiny_variant(
    GRU,
    defaults={"cell": "gru", "units": (8, 8), "dropout": 0.0},
    recipe={"epochs": 3, "batch_size": 8, "learning_rate": 1e-2, "seed": 0,
            "normalize": "global"},
    metric_drop=loose_drops(METRIC_DROP, 0.5, "the tiny variant, trained for 3 epochs, leaves "
                                              "test series near-tied: tests check the "
                                              "mechanics, the pretrained model the accuracy"),
)

# The peephole variant: same data, recipe and head; each direction an LSTM whose gates also
# see the cell state. A keras.layers.RNN over a custom cell converts to WHILE / Loop; the
# converters convert the plain-LSTM twin instead and write the peepholes into its fused ops
# (export.conversion.peephole), so every precision of the fused LSTM works but int16x8,
# which TFLite's quantizer refuses for the fused op as for any LSTM (measured on
# bipeephole_activity_tiny).
# Figures below: bipeephole_activity trained locally with its recipe (test accuracy 0.975),
# exported at every precision and verified on the 40 test series.
PEEPHOLE_TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5,
        "same float32 weights and peepholes; the fused kernels sum gates in another order "
        "than TensorFlow: probabilities differed by 3.0e-7 on LiteRT and 2.4e-7 on ORT "
        "(measured; without the peepholes written in they differ by 0.18)",
    ),
    "float16": Tolerance(
        1e-3,
        "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per weight; "
        "the peepholes stay float32): probabilities moved by 2.2e-4 on LiteRT (measured)",
    ),
    # No tensor bound for "dynamic" and "int8": int8 weights (and activations) move every
    # tensor by design (measured 3.4e-3 / 2.2e-2 dynamic, 7.7e-2 / 5.1e-2 int8 on LiteRT /
    # ORT); what is gated is the accuracy drop.
}
PEEPHOLE = register_model(replace(
    SPEC,
    name="bipeephole_activity",
    family="bipeephole_classifier",
    description="2 x Bi-peephole-LSTM(64) activity classifier for 6-channel smartwatch IMU "
                "sequences (BasicMotions): the peephole cell option of bilstm_activity, whose "
                "input, forget and output gates also see the cell state; exported as fused "
                "LSTM ops with their peephole weights.",
    defaults={"cell": "peephole"},
    weights=("basicmotions",),
    tensor_tolerance=PEEPHOLE_TENSOR_TOLERANCE,
    metric_drop={**METRIC_DROP, "int8": Tolerance(
        0.025, "one of the 40 test series may flip under int8 weights and activations "
               "(measured: one on LiteRT, to the right class; none on ORT)")},
    shrink=None,  # export.compression.structured removes units of keras.layers.LSTM layers only
))

tiny_variant(
    PEEPHOLE,
    defaults={"cell": "peephole", "units": (8, 8), "dropout": 0.0},
    recipe={"epochs": 3, "batch_size": 8, "learning_rate": 1e-2, "seed": 0,
            "normalize": "global"},
    metric_drop=loose_drops(PEEPHOLE.metric_drop, 0.5, "the tiny variant, trained for 3 "
                                                       "epochs, leaves test series near-tied: "
                                                       "tests check the mechanics, the "
                                                       "pretrained model the accuracy"),
)
