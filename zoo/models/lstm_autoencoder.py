"""LSTM sequence autoencoder for anomaly detection: a window of a series in, its
reconstruction and an anomaly score out.

``window (B, W, 1)`` raw values -> ``reconstruction (B, W, 1)`` raw values and ``score
(B,)``: the mean squared reconstruction error in training standard deviations. The graph
standardizes with the training statistics (a ``Normalization`` layer fitted by the
recipe), reads the window in patches of ``patch`` values per LSTM step, compresses it to
the encoder's last state, repeats that code for every step and decodes it with a second
LSTM. Trained on normal data only, by minimising the score itself; a window that the
model cannot reconstruct scores high. The threshold is set on normal windows never
trained on (:class:`zoo.tasks.AnomalyDetection`).
"""

from __future__ import annotations

from dataclasses import replace

from zoo._keras import keras, tf
from zoo.constants import ECG_RATE as RATE
from zoo.constants import ECG_STRIDE as STRIDE
from zoo.constants import ECG_WINDOW as WINDOW
from zoo.constants import UCR_STRIDE, UCR_WINDOW
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops


def lstm_autoencoder(*, window: int = WINDOW, patch: int = 16, units: tuple = (64,),
                     code: int | None = None):
    """Builds ``window (B, window, 1) -> reconstruction (B, window, 1), score (B,)``.

    Args:
        window: values per window (fixed: the decoder repeats the code this many patches).
        patch: values per LSTM step; ``window`` must be a multiple of it.
        units: units of the encoder LSTM and of the decoder LSTM (one value: both).
        code: units of the bottleneck between them (``None``: no extra layer, the code is
            the encoder's last output).

    Example:
        >>> from zoo import create_model
        >>> create_model("lstm_autoencoder_tiny").output_names
        ['reconstruction', 'score']
    """
    units = tuple(int(u) for u in units)
    if len(units) != 1 or units[0] < 1:
        raise ValueError(f"units must be one positive int (encoder and decoder); got {units}")
    if int(patch) < 1 or int(window) % int(patch):
        raise ValueError(f"window must be a positive multiple of patch; got window {window}, "
                         f"patch {patch}")
    steps = int(window) // int(patch)
    values = keras.Input((int(window), 1), name="window")
    normalize = keras.layers.Normalization(axis=-1, name="normalize")
    denormalize = keras.layers.Normalization(axis=-1, invert=True, name="denormalize")
    z = normalize(values)
    x = keras.layers.Reshape((steps, int(patch)), name="patches")(z)
    x = keras.layers.LSTM(units[0], name="encoder")(x)
    if code:
        x = keras.layers.Dense(int(code), activation="tanh", name="code")(x)
    x = keras.layers.RepeatVector(steps, name="repeat")(x)
    x = keras.layers.LSTM(units[0], return_sequences=True, name="decoder")(x)
    x = keras.layers.Dense(int(patch), name="patch_out")(x)
    standardized = keras.layers.Reshape((int(window), 1), name="standardized")(x)
    score = keras.layers.Lambda(lambda a: tf.reduce_mean(tf.square(a[0] - a[1]), axis=[1, 2]),
                                name="score")([z, standardized])
    reconstruction = keras.layers.Activation("linear", name="reconstruction")(
        denormalize(standardized))
    return keras.Model(values, [reconstruction, score], name="lstm_autoencoder")


GRAPHS = (GraphSpec("autoencoder", ("window",), ("reconstruction", "score")),)
META = {"window": WINDOW, "stride": STRIDE, "rate": RATE, "unit": "mV"}

TOLERANCE = {
    "fp32": Tolerance(
        2e-5, "reconstructions are mV (|x| < 2) and scores mean squares of standardized "
              "errors (~0.01-10): the LSTM kernels sum in another order than TensorFlow's, "
              "and the difference grows over the encoder's and decoder's 40 steps each: "
              "1.0e-5 mV on a training window, 2.3e-6 on the test windows (measured, shipped "
              "weights, LiteRT); a score may also move by 1e-6 of its value",
        relative={"score": 1e-6}),
    "float16": Tolerance(
        2e-2, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight), compounded over 80 LSTM steps: a reconstructed value may move by "
              "0.02 mV, a score by 1 % of its value besides (measured, shipped weights, "
              "LiteRT: 6.8e-3 beyond the relative part)",
        relative={"score": 1e-2}),
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "scores agree to float32 rounding, so each backend's threshold "
                           "and decisions are the Keras ones"),
    "dynamic": Tolerance(0.05, "int8 weights: F1 may drop by 0.05 (one or two test "
                               "windows' decisions)"),
    "float16": Tolerance(0.02, "float16 weights: F1 may drop by 0.02"),
    "compressed": Tolerance(0.1, "pruned or clustered weights: F1 may drop by 0.1"),
}

# Measured with the shipped weights (lstm-zoo export lstm_autoencoder --precision ...,int8).
INT8_GAP = (
    "full int8 is larger and slower than dynamic range for no gain: 65 KB on LiteRT (dynamic "
    "63 KB) and 6x slower than fp32 (1.55 vs 0.26 ms per window, its int8 LSTM kernels on "
    "x86), scores up to 35 apart from Keras; F1 0.830 on LiteRT but 0.800 on ORT (Keras "
    "0.830). Use dynamic (63 KB, F1 0.846) or float16")

SPEC = register_model(ModelSpec(
    name="lstm_autoencoder",
    builder=lstm_autoencoder,
    family="lstm_autoencoder",
    task="anomaly",
    graphs=GRAPHS,
    # calibration (quantization, extra tensor-parity windows): training windows; the
    # detection threshold is set on the test split's own leading normal windows
    data=DataSpec(dataset="mitdb", train="train", test="test", calibration="train_small"),
    defaults={"window": WINDOW, "patch": 16, "units": (64,)},
    docs="anomaly.md",
    description="LSTM(64) encoder-decoder over 1.8 s windows of one ECG lead (640 samples "
                "at 360 Hz, read 16 per step); the score is the mean squared reconstruction "
                "error, the threshold the largest score on held-out normal rhythm.",
    weights=("mitdb",),
    intended_use="Flagging windows of a single-lead ECG (360 Hz, mV) that do not look like "
                 "the normal rhythm it was trained on; retrain with the recipe on a "
                 "patient's own normal recording.",
    limitations=(
        "Trained on 12.5 s of one patient's normal rhythm (MIT-BIH excerpt) and tested on "
        "one labelled anomaly (a premature beat and its pause): the figures come from 54 "
        "test windows, 29 of them anomalous, and do not show how it generalizes.",
        "The threshold is the largest score on 34 normal calibration windows (3.6 s), set "
        "per backend on its own scores; it is not a clinical decision rule.",
        "Research use: the MIT-BIH data license.",
    ),
    tensor_tolerance=TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(("fp32", "dynamic", "float16"), int8=INT8_GAP),
    meta=META,
    recipe={"epochs": 30, "batch_size": 32, "learning_rate": 2e-3, "schedule": "cosine",
            "seed": 0, "target": {"f1": (">=", 0.6), "auc": (">=", 0.7)},
            "reproduce_tolerance": {"f1": 0.05, "auc": 0.02}},
))

tiny_variant(
    SPEC,
    defaults={"window": WINDOW, "patch": 32, "units": (4,)},
    data=replace(SPEC.data, train="train_small"),
    recipe={"epochs": 1, "batch_size": 64, "learning_rate": 1e-2, "seed": 0},
    metric_drop=loose_drops(METRIC_DROP, 1.0, "the tiny variant is trained for one epoch: "
                                              "tests check the mechanics, the pretrained "
                                              "model the F1"),
)

# The UCR anomaly archive's file 135: an arterial blood pressure trace whose one labelled
# anomaly is 12 samples of jitter; shorter windows (128 samples, 8 per step) keep it a
# larger share of a window. No sampling rate ships with the file.
UCR_TOLERANCE = {
    "fp32": Tolerance(
        2e-5, "reconstructions are in the file's units (55-105), where float32 resolves "
              "7.6e-6; the LSTM kernels sum in another order than TensorFlow's over 16 + 16 "
              "steps: 2.3e-5 on LiteRT, 3.1e-5 on ORT (measured, shipped weights), within "
              "1e-6 of the value; a score may also move by 1e-6 of its value",
        relative={"reconstruction": 1e-6, "score": 1e-6}),
    "float16": Tolerance(
        2e-2, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight), compounded over 32 LSTM steps: a reconstructed value moved by 3.9e-2 "
              "of ~100 on LiteRT (measured, shipped weights), so 1e-3 of the value besides; "
              "a score by 1 %",
        relative={"reconstruction": 1e-3, "score": 1e-2}),
}
# Measured with the shipped weights (lstm-zoo export lstm_autoencoder_ucr --precision
# fp32,dynamic,float16,int8, the gaps lifted): the one anomaly still scores highest
# everywhere, but quantized scores move the threshold decisions.
UCR_GAPS = {
    "dynamic": "int8 weights move the scores of normal windows over the threshold set on "
               "other normal windows: F1 0.539 on ORT (recall 0.41) and 0.909 on LiteRT "
               "against 0.941; the anomaly still scores highest. Use float16 (38 KB, F1 "
               "0.941 on LiteRT)",
    "int8": "int8 activations flatten the scores: F1 0.111 on LiteRT and 0.286 on ORT "
            "against 0.941 (ROC AUC 0.53 / 0.91), for 24 / 40 KB against float16's 38 KB",
}
UCR_META = {"window": UCR_WINDOW, "stride": UCR_STRIDE, "rate": None,
            "unit": "the file's units"}
register_model(replace(
    SPEC,
    name="lstm_autoencoder_ucr",
    description="LSTM(32) encoder-decoder over 128-sample windows of the UCR anomaly "
                "archive's file 135 (arterial blood pressure, read 8 per step); the score is "
                "the mean squared reconstruction error, the threshold the largest score on "
                "held-out data before the anomaly.",
    data=DataSpec(dataset="ucr135", train="train", test="test", calibration="train_small"),
    defaults={"window": UCR_WINDOW, "patch": 8, "units": (32,)},
    weights=("ucr135",),
    intended_use="Flagging windows of a periodic physiological trace that its normal "
                 "shape does not explain; retrain with the recipe on your own normal data.",
    limitations=(
        "Trained on 1,200 samples (about six beats) of one trace and tested on one labelled "
        "anomaly of 12 samples: the figures do not show how it generalizes.",
        "The threshold is the largest score on 135 windows of 1,200 unlabelled samples "
        "before the anomaly, set per backend on its own scores.",
        "Research use: the UCR anomaly archive's terms.",
    ),
    meta=UCR_META,
    tensor_tolerance=UCR_TOLERANCE,
    **fused_lstm(("fp32", "float16"), **UCR_GAPS),
    recipe={"epochs": 60, "batch_size": 32, "learning_rate": 2e-3, "schedule": "cosine",
            "seed": 0, "target": {"top_hit": (">=", 1.0)},
            "reproduce_tolerance": {"f1": 0.05, "auc": 0.02}},
))
