"""Speech recognition of spoken digit strings: log-mel frames -> per-frame digit
probabilities (CTC).

Input: log-mel frames of 8 kHz audio (:func:`zoo.audio.log_mel`, computed on the host, 100
per second: the keyword spotter's front end, the same function at training and inference).
The recogniser is handwriting_ctc's (:func:`zoo.models.handwriting_ctc.recognizer`): a
strided Conv1D (three frames per output frame, 30 ms), two BiLSTMs, and a softmax over the
CTC blank (index 0) and the ten digits per output frame. Digits are recognised by meaning
in five languages ("tres", "trois", "three" are all ``3``). The transcript is decoded on the
host (:mod:`zoo.ctc`), identically for Keras, LiteRT and ONNX Runtime; a digit-string
grammar is a lexicon (``lstm-zoo predict --lexicon``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from zoo._keras import keras
from zoo.audio import MELS, SAMPLE_RATE, frames_for
from zoo.constants import DIGIT_ALPHABET as ALPHABET
from zoo.constants import DIGIT_MAX as MAX_DIGITS
from zoo.models.handwriting_ctc import recognizer
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops


def speech_ctc(*, num_features: int = MELS, units: Sequence[int] = (96, 96), filters: int = 96,
               stride: int = 3, alphabet_size: int = len(ALPHABET), dropout: float = 0.1):
    """Builds ``features (B, T, num_features) -> probs (B, ceil(T / stride), alphabet_size + 1)``.

    Args:
        num_features: log-mel bins per frame.
        units: LSTM units per bidirectional layer (each direction); one layer per entry.
        filters: channels of the strided Conv1D front end.
        stride: log-mel frames (10 ms) per output frame.
        alphabet_size: symbols besides the blank (index 0 of ``probs``).
        dropout: dropout before the output layer (training only).

    Example:
        >>> from zoo import create_model
        >>> model = create_model("speech_ctc_tiny")
        >>> model.input_names, model.output_names, model.output_shape
        (['features'], ['probs'], (None, None, 11))
    """
    return recognizer(keras.Input((None, num_features), name="features"), units=units,
                      filters=filters, stride=stride, symbols=alphabet_size + 1,
                      dropout=dropout, name="speech_ctc")


GRAPHS = (GraphSpec("recognizer", ("features",), ("probs",)),)
DATA = DataSpec(dataset="digit_strings", train="train", test="test", calibration="calibration")
# Measured with the shipped weights (lstm-zoo export speech_ctc --precision
# fp32,dynamic,float16: the 300 test strings, and the calibration strings up to the tensor
# parity pool).
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-4, "same float32 weights; the fused LSTM and the convolution sum in another order "
              "than TensorFlow's kernels, over up to 250 output frames a string: per-frame "
              "probabilities 1.2e-5 off on LiteRT and 5.7e-5 on ORT (measured, shipped "
              "weights; the previous weights 7.3e-6 / 8.9e-6); transcripts identical"),
    "float16": Tolerance(
        3e-2, "float16 weights carry 11 significant bits, and their rounding compounds over "
              "the recurrent frames: per-frame probabilities moved by up to 2.4e-2 on LiteRT "
              "(measured, shipped weights; the previous weights 1.4e-2), CER +0.1 pt"),
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must decode every test string as Keras does"),
    "dynamic": Tolerance(0.02, "int8 weights: at most 2 pt of character error rate; "
                               "measured +0.1 pt on LiteRT, +1.6 pt on ORT with the shipped "
                               "weights (the previous weights -0.2 / +0.3 pt). The issue's "
                               "1-pt bound for the best int8-class artifact holds on LiteRT"),
    "float16": Tolerance(0.01, "float16 weights: at most 1 pt of character error rate "
                               "(measured +0.1 pt, shipped weights)"),
    "int8": Tolerance(0.01, "int8 weights and activations: at most 1 pt of character error "
                            "rate"),
    "compressed": Tolerance(0.02, "pruned or clustered weights (fine-tuned): at most 2 pt of "
                                  "character error rate"),
}
MAX_SECONDS = 10.0
PADDING_SECONDS = 0.2  # silence around a string: the test strings', and predict's
META = {"alphabet": ALPHABET, "blank": 0, "channels": [f"mel_{i}" for i in range(MELS)],
        "input": "features", "sample_rate": SAMPLE_RATE, "max_seconds": MAX_SECONDS,
        # a WAV file of MAX_SECONDS that has no silence to trim, padded
        "max_points": frames_for(int((MAX_SECONDS + 2 * PADDING_SECONDS) * SAMPLE_RATE)),
        "front_end": "zoo.audio.log_mel: 25 ms frames every 10 ms, 256-point FFT, 40 HTK mel "
                     "bins 20-4000 Hz, log(mel + 1e-6)",
        "padding_seconds": PADDING_SECONDS}

SPEC = register_model(ModelSpec(
    name="speech_ctc",
    builder=speech_ctc,
    family="ctc_recognizer",
    task="ctc",
    graphs=GRAPHS,
    data=DATA,
    docs="speech.md",
    description="Conv1D + 2xBiLSTM(96) spoken digit string recogniser (log-mel frames -> "
                "digits, CTC), five languages.",
    weights=("asterisk",),
    intended_use="Transcribing spoken digit strings (phone numbers, PINs, amounts) said "
                 f"digit by digit in English, Spanish, French, Italian or Russian, up to "
                 f"{MAX_SECONDS:.0f} s of 8 kHz telephone-band audio; a starting point for "
                 "fine-tuning on your own speakers.",
    limitations=(
        "Human training speech: five asterisk prompt speakers (two French, one Italian, one "
        "Russian, one Colombian Spanish; one recording of each digit), Debian saytime's "
        "English speaker and three FSDD English speakers (50 takes of each digit), joined "
        "into strings; the rest is espeak-ng's synthetic voices.",
        "Reads held-out human speakers unevenly, against the 10 % aimed at "
        "(benchmarks/results/speech_speakers.md): CER 14.9 % on FSDD's theo (English; the "
        "previous weights 59.7 %), 26.9 % on Allison in English (49.7 %), 68.3 % on Allison "
        "in Spanish (40.8 %), 31.0 % on Menardi in Italian (21.9 %). English gained from "
        "the FSDD speakers; Spanish and Italian, with one human training speaker each, lost. "
        "Fine-tune on recordings of your own speakers before relying on it.",
        "The test strings are single-digit recordings joined with pauses (the asterisk "
        "speakers said each digit once: 30 recordings); continuous speech, where digits run "
        "into each other, is untested on human voices.",
        f"Trained on strings of 1-{MAX_DIGITS} digits; longer strings are untested.",
        "Data licenses: asterisk-core-sounds and asterisk-prompt-it-menardi CC-BY-SA-3.0, "
        "asterisk-prompt-fr-armelle GPL-2+, asterisk-prompt-es-co GPL; Free Spoken Digit "
        "Dataset CC BY-SA 4.0; saytime GPL; espeak-ng GPL-3 (synthesised audio).",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(("fp32", "dynamic", "float16")),
    meta=META,
    recipe={"epochs": 16, "batch_size": 32, "learning_rate": 3e-3, "schedule": "cosine",
            "normalize": "channel", "seed": 0,
            "finetune": {"epochs": 3, "learning_rate": 5e-4},
            "target": {"cer": ("<=", 0.10)}, "reproduce_tolerance": {"cer": 0.02},
            # target missed on held-out human speakers: the shipped model measures 42.4 %
            # on the asterisk ones (Allison en 26.9 %, es 68.3 %, Menardi it 31.0 %) and
            # 14.9 % on FSDD's theo (tests/test_voices.py); what it holds:
            "holds": {"cer": ("<=", 0.43)}},
))

tiny_variant(
    SPEC,
    defaults={"units": (8,), "filters": 8, "dropout": 0.0},
    data=replace(DATA, train="train_small"),  # 256 strings of the human training speakers
    **fused_lstm(),
    recipe={"epochs": 1, "batch_size": 32, "learning_rate": 1e-2, "normalize": "channel",
            "seed": 0, "limit": 128},
    metric_drop=loose_drops(
        METRIC_DROP, 100.0, "the tiny variant is (nearly) untrained, its frames near-uniform, "
        "so rounding flips digits freely: tests check the mechanics, the pretrained model "
        "the CER"),
)
