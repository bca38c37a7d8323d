"""Character language model: an LSTM that predicts the next character, exported whole (to
measure bits per character) and as a single step with its state as inputs and outputs (to
generate text on a device, one character per call).

Two graphs:
  lm:    ids (B, T) int32 -> probs (B, T, vocab): the next-character distribution after
         each prefix; the LSTM is TFLite's fused op and ONNX's LSTM.
  step:  token (B,) int32, h_0, c_0 -> probs (B, vocab), h_0_next, c_0_next: one character,
         the state carried by the caller (a stateful Keras LSTM does not convert to TFLite).
Feeding a text through ``step`` from zero state gives ``lm``'s distributions (the task
checks it on every backend). Sampling (temperature, top-k) runs on the host over ``step``:
:mod:`zoo.generate`.
"""

from __future__ import annotations

from dataclasses import replace

from zoo import layers
from zoo._keras import keras
from zoo.constants import CHORALE_CHARS
from zoo.constants import SHAKESPEARE_CHARS as CHARS
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops


def char_lm(*, vocab_size: int = len(CHARS) + 1, embedding: int = 32, units: tuple = (256,),
            dropout: float = 0.0):
    """Builds ``ids (B, T) -> probs (B, T, vocab_size)``.

    Args:
        vocab_size: characters, the unknown id 0 included.
        embedding: width of each character's vector.
        units: units of the LSTM (one layer: the step graph carries its state).
        dropout: dropout on the LSTM's outputs (training only).

    Example:
        >>> from zoo import create_model
        >>> create_model("char_lm_tiny").output_names
        ['probs']
    """
    units = tuple(int(u) for u in units)
    if len(units) != 1 or units[0] < 1:
        raise ValueError(f"units must be one positive int (one LSTM layer, whose state the "
                         f"step graph carries); got {units}")
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(int(vocab_size), int(embedding), name="embedding")(ids)
    x = keras.layers.LSTM(units[0], return_sequences=True, name="lstm_0")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    probs = keras.layers.Dense(int(vocab_size), activation="softmax", name="probs")(x)
    return keras.Model(ids, probs, name="char_lm")


def step_graph(model):
    """One character through the trained layers: (token, h, c) -> (probs, next h, c)."""
    token = keras.Input((), dtype="int32", name="token")
    x = model.get_layer("embedding")(token)
    x, states_in, states_out = layers.lstm_step(x, [model.get_layer("lstm_0")])
    probs = model.get_layer("probs")(x)
    return keras.Model([token, *states_in], [probs, *states_out], name="step")


GRAPHS = (
    GraphSpec("lm", ("ids",), ("probs",)),
    GraphSpec("step", ("token", "h_0", "c_0"), ("probs", "h_0_next", "c_0_next"),
              build=step_graph, recurrent="step"),
)
META = {"chars": CHARS, "unknown": 0, "generation": {"graph": "step", "input": "token"}}
TOLERANCE = {
    "fp32": Tolerance(
        1e-5, "same float32 weights, kernels that sum in another order (fused LSTM op vs "
              "TensorFlow's, a single cell step vs the same cell in a loop): probabilities "
              "and states in the 6th-7th digit (measured, shipped weights: 1.9e-6 LiteRT, "
              "2.9e-6 ORT)",
        relative={"c_0_next": 1e-6}),
    "float16": Tolerance(
        1e-2, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight), accumulated over the text: probabilities move by up to 1e-2 "
              "(measured, shipped weights, LiteRT: 3.7e-3), the unbounded cell state by "
              "1e-3 of its value besides",
        relative={"c_0_next": 1e-3}),
}
METRIC_DROP = {
    "fp32": Tolerance(1e-5, "bits per character agree to float32 rounding of 32,768 "
                            "log-probabilities summed in float64"),
    "dynamic": Tolerance(0.05, "int8 weights: bits per character may rise by 0.05"),
    "float16": Tolerance(0.01, "float16 weights: bits per character may rise by 0.01"),
    "compressed": Tolerance(0.1, "pruned or clustered weights: bits per character may rise "
                                 "by 0.1"),
}

# Measured with the shipped weights (lstm-zoo export char_lm --precision ...,int8).
INT8_GAP = (
    "full int8 quantizes the softmax output to steps of 1/256: every character the model "
    "gives less than 1/512 becomes impossible, and the test text holds some, so bits per "
    "character are infinite on LiteRT and ORT (outputs up to 1.8 off Keras'); it is also no "
    "smaller than dynamic range (658 vs 659 KB). Use dynamic (int8 weights: bpc 2.2926 "
    "LiteRT, 2.2951 ORT against 2.2919) or float16")

SPEC = register_model(ModelSpec(
    name="char_lm",
    builder=char_lm,
    family="char_lm",
    task="lm",
    graphs=GRAPHS,
    data=DataSpec(dataset="shakespeare", train="train", test="test", calibration="calibration"),
    defaults={"embedding": 32, "units": (256,)},
    docs="generation.md",
    description="LSTM(256) character language model of Shakespeare's works (66 characters + "
                "unknown), exported whole and as a one-character step with state in/out for "
                "sampling.",
    weights=("shakespeare",),
    intended_use="Generating Shakespeare-like text on a device, one character per call "
                 "(`lstm-zoo generate`), or scoring how Shakespearean a text is (bits per "
                 "character).",
    limitations=(
        "Trained on 39 works (4.7 M characters); the test works (Hamlet, The Tempest) are "
        "plays of the same author, so the bits per character say nothing of other English.",
        "Characters outside its 66 (digits but 1, accents, most symbols) are one unknown id; "
        "it never generates them.",
    ),
    tensor_tolerance=TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(("fp32", "dynamic", "float16"), int8=INT8_GAP),
    meta=META,
    recipe={"epochs": 12, "steps": 250, "batch_size": 64, "length": 128,
            "learning_rate": 3e-3, "schedule": "cosine", "seed": 0,
            "target": {"bpc": ("<=", 2.5)}, "reproduce_tolerance": {"bpc": 0.02}},
))

tiny_variant(
    SPEC,
    defaults={"embedding": 8, "units": (8,)},
    data=replace(SPEC.data, train="train_small"),
    recipe={"epochs": 1, "steps": 20, "batch_size": 32, "length": 64, "learning_rate": 1e-2,
            "seed": 0},
    metric_drop=loose_drops(METRIC_DROP, 1.0, "the tiny variant trains for 20 steps: tests "
                                              "check the mechanics, the pretrained model the "
                                              "bits per character"),
)


# ----------------------------------------------------------------------------- music
# The same model over Bach's chorales as text: a line of four voices per sixteenth note
# (zoo.datasets.chorales). `lstm-zoo generate music_lstm --out x.mid` writes the music.
MUSIC_META = {"chars": CHORALE_CHARS, "unknown": 0, "music": "chorales",
              "generation": {"graph": "step", "input": "token"}}

# Measured with the shipped weights (int8 enabled by hand, lstm-zoo's export pipeline).
MUSIC_INT8_GAP = (
    "full int8 quantizes the softmax output to steps of 1/256: symbols the model gives less "
    "than 1/512 become impossible and the test chorales hold some, so bits per symbol are "
    "infinite on LiteRT and ORT (outputs up to 1.38 off Keras'); it is no smaller than "
    "dynamic range (639 vs 640 KB LiteRT). Use dynamic (int8 weights: 0.6851 LiteRT, "
    "0.6913 ORT against 0.6846 bits per symbol) or float16")
MUSIC_TOLERANCE = {
    "fp32": replace(TOLERANCE["fp32"], reason=(
        "same float32 weights, kernels that sum in another order (fused LSTM op vs "
        "TensorFlow's, a single cell step vs the same cell in a loop): probabilities and "
        "states in the 6th-7th digit (measured, shipped weights: 1.8e-6 LiteRT, 2.0e-6 "
        "ORT)")),
    "float16": replace(TOLERANCE["float16"], reason=(
        "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
        "weight), accumulated over the chunk: probabilities move by up to 1e-2 (measured, "
        "shipped weights, LiteRT: 2.0e-3), the unbounded cell state by 1e-3 of its value "
        "besides")),
}
MUSIC_METRIC_DROP = {
    "fp32": Tolerance(1e-5, "bits per symbol agree to float32 rounding of 32,768 "
                            "log-probabilities summed in float64"),
    "dynamic": Tolerance(0.05, "int8 weights: bits per symbol may rise by 0.05 (measured, "
                               "shipped weights: +0.0005 LiteRT, +0.0067 ORT)"),
    "float16": Tolerance(0.01, "float16 weights: bits per symbol may rise by 0.01"),
    "compressed": Tolerance(0.1, "pruned or clustered weights: bits per symbol may rise by "
                                 "0.1"),
}

MUSIC = register_model(replace(
    SPEC,
    name="music_lstm",
    data=DataSpec(dataset="chorales", train="train", test="test", calibration="calibration"),
    defaults={"vocab_size": len(CHORALE_CHARS) + 1, "embedding": 16, "units": (256,),
              "dropout": 0.2},
    description="LSTM(256) language model of Bach's four-part chorales (music21), a "
                "sixteenth note per line of four voices; exported whole and as a one-symbol "
                "step with state in/out for sampling music.",
    weights=("bach",),
    intended_use="Generating four-part chorale textures on a device, one symbol per call "
                 "(`lstm-zoo generate music_lstm --out chorale.mid`), or scoring how "
                 "Bach-like a passage is (bits per symbol).",
    limitations=(
        "Every chorale is transposed to C major / A minor (by its key signature) and read "
        "in sixteenth notes: it writes in those keys, with no dynamics, fermatas or "
        "lyrics.",
        "Split by chorale, but Bach harmonized several hymn tunes more than once, so a test "
        "chorale's melody may have a harmonization in training.",
        "Voices are four independent symbols per frame: a generated line may be "
        "malformed (it is skipped when writing MIDI, and counted).",
    ),
    meta=MUSIC_META,
    tensor_tolerance=MUSIC_TOLERANCE,
    metric_drop=MUSIC_METRIC_DROP,
    **fused_lstm(("fp32", "dynamic", "float16"), int8=MUSIC_INT8_GAP),
    recipe={"epochs": 10, "steps": 200, "batch_size": 64, "length": 128,
            "learning_rate": 3e-3, "schedule": "cosine", "seed": 0,
            "target": {"bpc": ("<=", 1.0)}, "reproduce_tolerance": {"bpc": 0.02}},
))

tiny_variant(
    MUSIC,
    defaults={"vocab_size": len(CHORALE_CHARS) + 1, "embedding": 8, "units": (8,)},
    data=replace(MUSIC.data, train="train_small"),
    recipe={"epochs": 1, "steps": 20, "batch_size": 32, "length": 64, "learning_rate": 1e-2,
            "seed": 0},
    metric_drop=loose_drops(MUSIC_METRIC_DROP, 1.0, "the tiny variant trains for 20 steps: tests "
                                              "check the mechanics, the pretrained model the "
                                              "bits per symbol"),
)
