"""Streaming keyword spotting: an LSTM over log-mel frames that names the spoken digit.

Input: log-mel frames (:func:`zoo.audio.log_mel`, computed on the host; 100 per second of
8 kHz audio). Output: probabilities over ten digits (by meaning, in five languages),
``_unknown_`` (another word) and ``_silence_``, after the last frame.

Exported as two graphs:
  classifier: sequence (1, T, 40) -> probs (1, 12): fused LSTM ops, whole window at once.
  step:       frame (1, 40), h_i, c_i per layer -> probs (1, 12), h_i_next, c_i_next: one
              frame, the recurrent state as explicit inputs and outputs (LSTMCell with the
              trained weights, a flat graph), so a device runs it frame by frame as audio
              arrives and keeps the state itself. TFLite's converter does not carry the
              state of a stateful Keras LSTM, so state in/out is the portable form.
Feeding a window's frames one by one through ``step`` from zero state gives the
classifier's output (``tests/test_kws.py`` checks it on every backend; the task reports
the largest difference as ``stream_max_diff``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from zoo import layers
from zoo._keras import keras
from zoo.audio import MELS, SAMPLE_RATE
from zoo.constants import SPOKEN_CLASSES as CLASSES
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops


def kws_lstm(*, num_features: int = MELS, num_classes: int = len(CLASSES),
             units: Sequence[int] = (128,), dropout: float = 0.1):
    """Builds ``sequence (B, T, num_features) -> probs (B, num_classes)``.

    Args:
        num_features: log-mel bins per frame.
        num_classes: output classes.
        units: ``(n,)``: the units of the one LSTM layer (unidirectional: the model must
            run as audio arrives).
        dropout: dropout before the classifier head (training only).

    Example:
        >>> from zoo import create_model
        >>> create_model("kws_lstm_tiny").output_names
        ['probs']
    """
    units = tuple(int(u) for u in units)
    if len(units) != 1 or units[0] < 1:
        # The exported step graph carries one layer's state (h_0, c_0); more layers would
        # need more state inputs in the spec's graph list.
        raise ValueError(f"units must be one positive int (one LSTM layer, whose state the "
                         f"step graph carries); got {units}")
    inputs = keras.Input((None, num_features), name="sequence")
    x = keras.layers.Normalization(axis=-1, name="normalize")(inputs)
    for i, n in enumerate(units):
        x = keras.layers.LSTM(n, return_sequences=i < len(units) - 1, name=f"lstm_{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    probs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, probs, name="kws_lstm")


def lstm_layers(model) -> list:
    return sorted((layer for layer in model.layers if layer.name.startswith("lstm_")),
                  key=lambda layer: int(layer.name.split("_")[1]))


def step_graph(model):
    """One frame through the trained layers: (frame, states) -> (probs, next states)."""
    num_features = model.input_shape[-1]
    frame = keras.Input((num_features,), name="frame")
    x = keras.layers.Reshape((1, num_features), name="frame_as_sequence")(frame)
    x = model.get_layer("normalize")(x)  # the layer is built for (B, T, C)
    x = keras.layers.Reshape((num_features,), name="normalized_frame")(x)
    x, states_in, states_out = layers.lstm_step(x, lstm_layers(model))
    probs = model.get_layer("probs")(x)
    return keras.Model([frame, *states_in], [probs, *states_out], name="step")


def _graphs(count: int) -> tuple[GraphSpec, ...]:
    """The whole-window classifier and the one-frame step over ``count`` LSTM layers."""
    states = layers.step_state_names(count)
    return (
        GraphSpec("classifier", ("sequence",), ("probs",)),
        GraphSpec("step", ("frame", *states), ("probs", *(f"{s}_next" for s in states)),
                  build=step_graph, recurrent="step"),
    )


DATA = DataSpec(dataset="spoken_digits", train="train", test="test", calibration="calibration")
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5, "same float32 weights, kernels that sum in another order (fused LSTM op vs "
              "TensorFlow's, a single cell step vs the same cell inside a loop): "
              "probabilities within 2.7e-6 (measured, shipped weights, both runtimes). The "
              "cell state is unbounded (|c| reaches 98 on the test windows) and its float32 "
              "rounding grows with it: c_0_next was 1.5e-5 off on ORT (7.6e-6 LiteRT), so it "
              "may also move by 1e-6 of its value (8 float32 ulps)",
        relative={"c_0_next": 1e-6}),
    "float16": Tolerance(
        2e-2, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight), accumulated over 98 steps: the classifier's probabilities 1.1e-2 off "
              "(measured, shipped weights; the previous weights 5.0e-3), no window "
              "classified otherwise; the unbounded cell state moved 1.7e-2, so it may also "
              "move by 1e-3 of its value",
        relative={"c_0_next": 1e-3}),
}
# Measured with the shipped weights (lstm-zoo export kws_lstm --precision ...,int8).
INT8_GAP = (
    "full int8 breaks streaming: the step graph's state crosses every call as an int8 "
    "tensor, and the cell state (|c| up to 98) loses up to 20 in it; fed back for 98 frames, "
    "the streamed probabilities ended up to 0.99 away from the whole-window classifier's, "
    "and accuracy fell 3.6 pt on both runtimes (0.829 -> 0.793; measured with the previous "
    "weights). Use dynamic (int8 weights, "
    "float state): 197 KB against 697 KB fp32, no accuracy lost on LiteRT (measured, "
    "shipped weights)")
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must classify every test window as Keras does"),
    "dynamic": Tolerance(0.02, "int8 weights may flip near-tied windows: at most 2 pt"),
    "float16": Tolerance(0.01, "float16 weights may flip a near-tied window: at most 1 pt"),
    "compressed": Tolerance(0.03, "pruned or clustered weights (fine-tuned): at most 3 pt "
                                  "of accuracy against the uncompressed model"),
}
META = {
    "classes": list(CLASSES),
    "channels": [f"mel_{i}" for i in range(MELS)],
    "sample_rate": SAMPLE_RATE,
    "front_end": "zoo.audio.log_mel: 25 ms frames every 10 ms, 256-point FFT, 40 HTK mel "
                 "bins 20-4000 Hz, log(mel + 1e-6)",
    "window_seconds": 1.0,
    "max_seconds": 2.0,
    "streaming": {"graph": "step", "input": "frame"},
}

SPEC = register_model(ModelSpec(
    name="kws_lstm",
    builder=kws_lstm,
    family="kws",
    task="kws",
    graphs=_graphs(1),
    data=DATA,
    docs="speech.md",
    description="LSTM(128) spoken-digit keyword spotter over log-mel frames, exported for "
                "streaming (one frame per call, state in/out).",
    weights=("asterisk",),
    intended_use="Spotting a spoken digit (0-9, in English, Spanish, French, Italian or "
                 "Russian) in a 1-second window of 8 kHz telephone-band audio, frame by frame "
                 "on a device; rejects other words and silence. A starting point for "
                 "fine-tuning on your own keywords.",
    limitations=(
        "Human training speech: five asterisk prompt speakers (two French, one Italian, one "
        "Russian, one Colombian Spanish; one recording of each digit), Debian saytime's "
        "English speaker and three FSDD English speakers (50 takes of each digit); the rest "
        "is espeak-ng. Held-out voices read unevenly (benchmarks/results/speech_speakers.md): "
        "FSDD's theo 82.8 % of 500 digits (the previous weights 50.6 %), the asterisk "
        "held-out speakers 11 of 30 digits (Allison en 3, es 1, Menardi it 7; previous 11), "
        "against the 90 % aimed at. Retraining the same recipe moved those figures by up to "
        "6 pt (theo) and 6 digits of 30: fine-tune on your speakers before relying on it.",
        "False accepts: 10.0 % of the held-out speakers' other words (mostly letter names) "
        "and 7.9 % of one-second stretches of held-out running speech are taken for a "
        "digit, against 5 % aimed at; noise alone never is.",
        "Evaluated on four held-out speakers: 30 asterisk digit recordings, 500 FSDD takes of "
        "one speaker, 90 other words, 38 stretches of sentences and 20 noise windows.",
        "Classifies a window ending now; a device running the step graph continuously "
        "should reset the state (zeros) after a detection or every window.",
        "Data licenses: asterisk-core-sounds and asterisk-prompt-it-menardi CC-BY-SA-3.0, "
        "asterisk-prompt-fr-armelle GPL-2+, asterisk-prompt-es-co GPL; Free Spoken Digit "
        "Dataset CC BY-SA 4.0; saytime GPL; codec2-examples LGPL-2.1; espeak-ng GPL-3 "
        "(synthesised audio).",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(("fp32", "dynamic", "float16"), int8=INT8_GAP),
    meta=META,
    recipe={"epochs": 30, "batch_size": 64, "learning_rate": 3e-3, "schedule": "cosine",
            "augment": "none", "normalize": "channel", "seed": 0,
            "finetune": {"epochs": 5, "learning_rate": 5e-4},
            "target": {"accuracy": (">=", 0.9)}, "reproduce_tolerance": {"accuracy": 0.03},
            # target missed: the shipped weights measure 0.800 (11 of 30 of the asterisk
            # held-out speakers' digits, 10.0 % false accepts); always answering "_unknown_"
            # would score 0.643. What they hold, and tests/test_pretrained.py checks:
            "holds": {"accuracy": (">=", 0.79)}},
))

tiny_variant(
    SPEC,
    defaults={"units": (8,), "dropout": 0.0},
    data=replace(DATA, train="train_small"),
    recipe={"epochs": 2, "batch_size": 32, "learning_rate": 1e-2, "augment": "none",
            "normalize": "channel", "seed": 0},
    metric_drop=loose_drops(METRIC_DROP, 1.0, "the tiny variant is trained for 2 epochs on "
                                              "512 windows: tests check the mechanics, the "
                                              "pretrained model the accuracy",
                            ("dynamic", "float16", "int8", "compressed")),
)
