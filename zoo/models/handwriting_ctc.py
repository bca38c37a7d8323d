"""Online handwriting recognition: pen trajectories -> per-frame letter probabilities (CTC).

Input is what a tablet records, one row per pen sample: ``(dx, dy, pen_up)``, moves in
units of the writing's body height (:mod:`zoo.datasets.hershey_strokes`). A strided
Conv1D front end shortens the time axis ``stride`` times (about 50 pen samples per letter
become about 12 frames), two BiLSTMs read the frames, and a softmax over the 26 letters
plus the CTC blank (index 0) comes out per frame. The transcript is decoded on the host
(:mod:`zoo.ctc`), identically for Keras, LiteRT and ONNX Runtime: CTC decoders are not
portable graph ops.

Training pads a batch's trajectories with zero rows at the end (batches group trajectories
of similar length) and gives the CTC loss each one's true frame count; inference runs each
trajectory at its own length, batch 1, so exported graphs never see padding or masks (a
mask would turn the fused LSTM into a WHILE loop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from zoo._keras import keras
from zoo.constants import HANDWRITING_ALPHABET as ALPHABET
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops

CHANNELS = ("dx", "dy", "pen_up")
BLANK = 0


def handwriting_ctc(*, units: Sequence[int] = (96, 96), filters: int = 64, stride: int = 4,
                    alphabet_size: int = len(ALPHABET), dropout: float = 0.1):
    """Builds ``strokes (B, T, 3) -> probs (B, ceil(T / stride), alphabet_size + 1)``.

    Args:
        units: LSTM units per bidirectional layer (each direction); one layer per entry.
        filters: channels of the strided Conv1D front end.
        stride: pen samples per output frame.
        alphabet_size: symbols besides the blank (index 0 of ``probs``).
        dropout: dropout before the output layer (training only).

    Example:
        >>> from zoo import create_model
        >>> model = create_model("handwriting_ctc_tiny")
        >>> model.input_names, model.output_names, model.output_shape
        (['strokes'], ['probs'], (None, None, 27))
    """
    return recognizer(keras.Input((None, len(CHANNELS)), name="strokes"), units=units,
                      filters=filters, stride=stride, symbols=alphabet_size + 1,
                      dropout=dropout, name="handwriting_ctc")


def recognizer(inputs, *, units, filters: int, stride: int, symbols: int, dropout: float,
               name: str):
    """The CTC recogniser over ``inputs`` (B, T, C): per-channel normalisation, a Conv1D
    front end (kernel ``2 * stride``, ``stride``, ReLU), one BiLSTM per entry of ``units``,
    dropout, and the softmax over ``symbols`` (the blank first) per frame."""
    units = tuple(int(u) for u in units)
    if not units or min(units) < 1:
        raise ValueError(f"units must be a non-empty sequence of positive ints; got {units}")
    if stride < 1 or filters < 1:
        raise ValueError(f"stride and filters must be >= 1; got {stride}, {filters}")
    x = keras.layers.Normalization(axis=-1, name="normalize")(inputs)
    x = keras.layers.Conv1D(filters, 2 * stride, strides=stride, padding="same",
                            activation="relu", name="frontend")(x)
    for i, n in enumerate(units):
        x = keras.layers.Bidirectional(keras.layers.LSTM(n, return_sequences=True),
                                       name=f"bilstm_{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(symbols, name="logits")(x)
    probs = keras.layers.Activation("softmax", name="probs")(logits)
    return keras.Model(inputs, probs, name=name)


def frames(length: int, stride: int) -> int:
    """Output frames for ``length`` pen samples (Conv1D, padding "same")."""
    return math.ceil(length / stride)


GRAPHS = (GraphSpec("recognizer", ("strokes",), ("probs",)),)
DATA = DataSpec(dataset="hershey_strokes", train="train", test="test",
                calibration="calibration")
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5, "same float32 weights; the fused LSTM and the convolution sum in another order "
              "than TensorFlow's kernels: per-frame probabilities differ by 3.3e-6 on LiteRT "
              "and 5.9e-6 on ORT (measured, shipped weights, 600 test trajectories; the "
              "14-epoch weights 2.7e-6 and 2.9e-6)"),
    "float16": Tolerance(
        1e-2, "float16 weights carry 11 significant bits, and their rounding compounds over "
              "~100 recurrent frames: per-frame probabilities moved by up to 4.5e-3 on LiteRT "
              "(measured, shipped weights; 2.9e-3 and 6.0e-3 with earlier ones), CER "
              "10.29 % against Keras' 10.32 %"),
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must decode every test trajectory as Keras does"),
    "dynamic": Tolerance(0.01, "int8 weights: at most 1 pt of character error rate"),
    "float16": Tolerance(0.005, "float16 weights: at most 0.5 pt of character error rate"),
    "int8": Tolerance(0.01, "int8 weights and activations: at most 1 pt of character error "
                            "rate"),
    "compressed": Tolerance(0.01, "pruned or clustered weights (fine-tuned): at most 1 pt of "
                                  "character error rate"),
}
# Measured with the previous weights (before the stroke variation) on the 600 test
# trajectories (python -m pytest tests/test_pretrained.py before int8 was withdrawn; the
# converter's cell clip made no difference: 60.3 % either way on 120 of them); not
# measured again with the shipped ones.
INT8_GAP = ("full-int8 TFLite lost the task with the previous weights: CER 15.6 % -> 61.7 % "
            "(541 of 600 transcripts differ from Keras), measured with calibrated int8 "
            "activations; ONNX's int8 (static "
            "QDQ + DynamicQuantizeLSTM) measured 16.6 % (+0.9 pt), but a precision is declared "
            "for both formats at once, so int8 is withdrawn until the TFLite loss is found; "
            "dynamic-range int8 weights (+0.2 pt) are the int8-class artifact")
META = {"alphabet": ALPHABET, "blank": BLANK, "channels": list(CHANNELS),
        "max_points": 4000}

SPEC = register_model(ModelSpec(
    name="handwriting_ctc",
    builder=handwriting_ctc,
    family="ctc_recognizer",
    task="ctc",
    graphs=GRAPHS,
    data=DATA,
    docs="handwriting.md",
    description="Conv1D + 2xBiLSTM(96) online handwriting recogniser (pen strokes -> "
                "letters, CTC), Hershey-font trajectories.",
    weights=("hershey",),
    intended_use="Recognising single lowercase words written with a pen or finger on a "
                 "tablet or touch screen, from the (dx, dy, pen_up) samples the device "
                 "records; a starting point for fine-tuning on real pen data.",
    limitations=(
        "Trained only on synthetic trajectories: words drawn along Hershey single-stroke "
        "font outlines by simulated writers (slant, scale, rotation, speed, tremor, stroke "
        "order, pen lifts, stroke direction, shading, spacing); no real pen data ships "
        "offline. Real handwriting (ligatures, personal "
        "letter shapes, delayed strokes such as i-dots written at the end) will score worse "
        "than the held-out-font figure.",
        "Styles far from the training faces read worse: CER 1.5 % on the held-out Times "
        "italic face but 20.3 % on the held-out complex script face, whose letters have "
        "extra strokes (it reads l as t, r as n); fine-tune on a few words of the writer's "
        "style (see the transfer table).",
        "Full int8 (calibrated activations) is not offered: TFLite's raised the previous "
        "weights' CER to 61.7 %; dynamic-range int8 weights cost 0.1 pt (10.4 % on "
        "LiteRT and ORT against 10.3 %).",
        "Lowercase a-z only; one word per trajectory.",
        "Input moves must be in units of the writing's body height (ascender to descender), "
        "as the dataset records them.",
        "Data license: Hershey fonts (public domain) via Hershey-Fonts (MIT); words from "
        "CMUdict (BSD-style).",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(("fp32", "dynamic", "float16"), int8=INT8_GAP),
    meta=META,
    recipe={"epochs": 20, "batch_size": 32, "learning_rate": 3e-3, "schedule": "cosine",
            "normalize": "channel", "fresh_draws": True, "seed": 0,
            "finetune": {"epochs": 3, "learning_rate": 5e-4},
            "target": {"cer": ("<=", 0.08)}, "reproduce_tolerance": {"cer": 0.01},
            # target missed on held-out faces: the shipped model measures 10.3 % (timesi
            # 1.5 %, scriptc 20.3 %; 14 epochs gave 10.8 %, the weights before the stroke
            # variation 15.6 %); what it holds:
            "holds": {"cer": ("<=", 0.11)}},
))

tiny_variant(
    SPEC,
    defaults={"units": (8,), "filters": 8, "dropout": 0.0},
    data=replace(DATA, train="train_small"),  # 512 trajectories: tests train in seconds
    # the conversion mechanics of int8 (and QAT) work; the shipped model's int8 is a gap
    **fused_lstm(),
    recipe={"epochs": 1, "batch_size": 32, "learning_rate": 1e-2, "normalize": "channel",
            "seed": 0, "limit": 256},
    metric_drop=loose_drops(
        METRIC_DROP, 100.0, "the tiny variant is (nearly) untrained, its frames near-uniform, "
        "so rounding flips characters freely (onnx dynamic: CER +0.13 on 4 words with random "
        "weights; pruned 50 %: +2.02, CER counting insertions; measured): tests check the "
        "mechanics, the pretrained model the CER"),
)
