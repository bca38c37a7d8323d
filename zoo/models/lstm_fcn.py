"""LSTM-FCN: an LSTM beside a fully convolutional network, for time-series classification.

Karim, Majumdar, Darabi and Chen (2017), "LSTM Fully Convolutional Networks for Time Series
Classification": one branch is an LSTM over the series (followed by heavy dropout), the
other three Conv1D blocks (128, 256, 128 filters; kernels 8, 5, 3; batch norm, ReLU) and a
global average pool over time; the two feature vectors are concatenated into a softmax.
The paper's optional "dimension shuffle" (the LSTM reading the transposed series, one step
per channel) is left out: the LSTM reads the series over time, as the fused LSTM ops take
it, and the time axis stays ``None``.

Pretrained on BasicMotions. As in ``bilstm_activity``, raw sensor values go in: the
normalisation is a layer of the model, and both branches read its output.
"""

from __future__ import annotations

from collections.abc import Sequence

from zoo._keras import keras
from zoo.constants import BASICMOTIONS_CHANNELS as CHANNELS
from zoo.constants import BASICMOTIONS_CLASSES as CLASSES
from zoo.registry import register_model, tiny_variant
from zoo.specs import (
    DataSpec,
    GraphSpec,
    ModelSpec,
    Tolerance,
    fewer_units,
    fused_lstm,
    loose_drops,
)


def lstm_fcn_activity(
    *,
    num_features: int = len(CHANNELS),
    num_classes: int = len(CLASSES),
    units: int = 8,
    filters: Sequence[int] = (128, 256, 128),
    kernel_sizes: Sequence[int] = (8, 5, 3),
    dropout: float = 0.8,
):
    """Builds ``sequence (B, T, num_features) -> probs (B, num_classes)``.

    Args:
        num_features: channels per time step.
        num_classes: output classes.
        units: LSTM units (the paper's LSTM-FCN uses 8, 64 or 128).
        filters: filters of each convolution block; one block per entry.
        kernel_sizes: kernel width of each convolution block, as many as ``filters``.
        dropout: dropout after the LSTM (training only; the paper's 0.8).

    Example:
        >>> from zoo import create_model
        >>> model = create_model("lstm_fcn_activity_tiny")
        >>> model.input_names, model.output_names
        (['sequence'], ['probs'])
    """
    filters, kernel_sizes = tuple(filters), tuple(kernel_sizes)
    if len(filters) != len(kernel_sizes):
        raise ValueError(f"filters and kernel_sizes must have one entry per convolution "
                         f"block; got {len(filters)} filters {filters} and "
                         f"{len(kernel_sizes)} kernel sizes {kernel_sizes}")
    inputs = keras.Input((None, num_features), name="sequence")
    x = keras.layers.Normalization(axis=-1, name="normalize")(inputs)
    # keras.layers.LSTM with its defaults: TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM, ONNX's LSTM
    h = keras.layers.LSTM(units, name="lstm")(x)
    if dropout:
        h = keras.layers.Dropout(dropout, name="lstm_dropout")(h)
    c = x
    for i, (n, k) in enumerate(zip(filters, kernel_sizes, strict=True)):
        c = keras.layers.Conv1D(n, k, padding="same", kernel_initializer="he_uniform",
                                name=f"conv_{i}")(c)
        c = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(c)
        c = keras.layers.Activation("relu", name=f"relu_{i}")(c)
    c = keras.layers.GlobalAveragePooling1D(name="average_over_time")(c)
    features = keras.layers.Concatenate(name="lstm_and_fcn")([h, c])
    probs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(features)
    return keras.Model(inputs, probs, name="lstm_fcn_activity")


def shrink_lstm(config, fraction: float) -> dict[str, int]:
    """``ModelSpec.shrink``: structured pruning removes LSTM units; the convolutions keep
    their filters (export.compression.structured shrinks recurrent widths only)."""
    return {"units": fewer_units(config["units"], fraction)}


GRAPHS = (GraphSpec("classifier", ("sequence",), ("probs",)),)
DATA = DataSpec(dataset="basicmotions", train="train", test="test", calibration="train")
# Figures below: the shipped weights, `lstm-zoo export lstm_fcn_activity --precision
# fp32,dynamic,float16,int8`, the 40 test series (tensors: those and 176 crops, 216 inputs).
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5, "same float32 weights; the fused LSTM kernel and the convolutions (TFLite's "
              "CONV_2D with batch norm folded in, ORT's Conv) sum in another order than "
              "TensorFlow: probabilities differ by 1.3e-7 on LiteRT and 1.2e-7 on ORT "
              "(measured)"),
    "float16": Tolerance(
        1e-3, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight): probabilities moved by 2.0e-4 on LiteRT (measured)"),
    # No tensor bound for "dynamic" and "int8": int8 weights (and activations) move every
    # tensor by design (measured 4.1e-3 / 5.4e-3 dynamic, 1.2e-1 / 2.4e-2 int8 on LiteRT /
    # ORT); what is gated is the accuracy drop.
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must classify every test series as Keras does"),
    "dynamic": Tolerance(
        0.025, "one of the 40 test series may flip under int8 weights (measured: none on "
               "LiteRT or ORT)"),
    "float16": Tolerance(
        0.025, "one of the 40 test series may flip under float16 weights (measured: none)"),
    "int8": Tolerance(
        0.025, "one of the 40 test series may flip under int8 weights and activations "
               "(measured: none on LiteRT or ORT)"),
    "compressed": Tolerance(
        0.025, "pruned or clustered weights (fine-tuned) may flip one of the 40 test series "
               "against the uncompressed model"),
}
META = {"classes": list(CLASSES), "channels": list(CHANNELS)}

SPEC = register_model(ModelSpec(
    name="lstm_fcn_activity",
    builder=lstm_fcn_activity,
    family="lstm_fcn",
    task="classification",
    graphs=GRAPHS,
    data=DATA,
    docs="export-and-parity.md",
    description="LSTM-FCN activity classifier for 6-channel smartwatch IMU sequences "
                "(BasicMotions): LSTM(8) over time beside a fully convolutional branch (Conv1D "
                "128/256/128, kernels 8/5/3, batch norm, ReLU, global average pooling); Karim "
                "et al. 2017.",
    weights=("basicmotions",),
    intended_use="A small, fast baseline for activity or gesture classification from wrist "
                 "IMU sequences (3-axis accelerometer + gyroscope at ~10 Hz), where most of "
                 "the work is convolutions that every runtime runs well; fine-tune on your "
                 "own labels.",
    limitations=(
        "Trained on 40 recordings of 4 students (BasicMotions): 4 coarse activities only; "
        "expect to fine-tune before relying on it for other people, devices or sampling rates.",
        "The 40-series test split makes accuracy coarse: one error is 2.5 points.",
        "The convolution branch averages over time: it sees which local patterns (14 steps, "
        "1.4 s, at most) occur, not when or in which order; the 8-unit LSTM is what reads "
        "the order.",
        "Data license: UEA archive, research use.",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **{**fused_lstm(), "shrink": shrink_lstm},
    meta=META,
    recipe={"epochs": 100, "batch_size": 8, "learning_rate": 1e-3, "seed": 0,
            "normalize": "channel",
            "finetune": {"epochs": 30, "learning_rate": 1e-3},
            "target": {"accuracy": (">=", 0.95)}, "reproduce_tolerance": {"accuracy": 0.05}},
))

tiny_variant(
    SPEC,
    defaults={"units": 4, "filters": (8, 16, 8), "dropout": 0.0},
    recipe={"epochs": 3, "batch_size": 8, "learning_rate": 1e-2, "seed": 0,
            "normalize": "channel"},
    metric_drop=loose_drops(METRIC_DROP, 0.5, "the tiny variant, trained for 3 epochs, leaves "
                                              "test series near-tied: tests check the "
                                              "mechanics, the pretrained model the accuracy"),
)
