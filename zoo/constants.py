"""What a model and the data it learnt from agree on: label sets, vocabularies and shapes.

A model names its dataset (:attr:`zoo.registry.DataSpec.dataset`) and never imports the
loader (:mod:`zoo.datasets`); a loader never imports a model. What both read (the order
of a classifier's classes, a character table, a window length) lives here, a section per
dataset; each dataset module takes its own under its short name
(``from zoo.constants import REVIEW_CLASSES as CLASSES``), so ``zoo.datasets.reviews.CLASSES``
is this tuple.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from zoo.errors import DataError

# basicmotions: the smartwatch's channels, in the order of the files' dimensions
BASICMOTIONS_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
# ... and its activities, in the order of the files' class labels (a classifier's outputs)
BASICMOTIONS_CLASSES = ("Standing", "Running", "Walking", "Badminton")

# chorales: a line of four voices per sixteenth note (zoo.datasets.chorales).
# MIDI pitches that have a character (E1..F#6; the transposed chorales use 31-84)
CHORALE_LOW, CHORALE_HIGH = 28, 90
CHORALE_HOLD, CHORALE_REST, CHORALE_FRAME = "-", ".", "\n"
# Sixteenth-note frames; ids 1.. in code-point order (0 is the unknown symbol).
CHORALE_CHARS = CHORALE_FRAME + CHORALE_HOLD + CHORALE_REST + "".join(
    chr(ord("0") + p - CHORALE_LOW) for p in range(CHORALE_LOW, CHORALE_HIGH + 1))

# cmudict: graphemes in, phonemes (stress removed) out
G2P_GRAPHEMES = tuple("abcdefghijklmnopqrstuvwxyz'-.")
G2P_PHONEMES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH"
).split()
G2P_MAX_WORD_LEN = 20
G2P_MAX_PHONEMES = 20

# digit_strings: what the speech recogniser spells
DIGIT_ALPHABET = "0123456789"
DIGIT_MIN, DIGIT_MAX = 1, 5  # digits per string

# mitdb: one ECG lead
ECG_RATE = 360  # samples per second
ECG_WINDOW = 640  # 1.8 s: at ~290 samples per beat, every window holds two R-R intervals
ECG_STRIDE = 20  # between threshold and test windows

# hershey_strokes: what the handwriting recogniser spells
HANDWRITING_ALPHABET = "abcdefghijklmnopqrstuvwxyz"

# mnist_rows (and moving_mnist's digits)
MNIST_CLASSES = tuple(str(d) for d in range(10))

# moving_mnist: clips of two digits
MOVING_MNIST_SIZE, MOVING_MNIST_DIGIT = 64, 28  # pixels of a frame, of a digit
MOVING_MNIST_FRAMES, MOVING_MNIST_OBSERVED = 20, 10  # frames of a clip, of them seen

# peptides (amp): antimicrobial peptide or not. Residues are the 20 standard amino acids
# (ids 2..21 in this order); the IUPAC codes for an ambiguous or non-standard residue
# (B, J, O, U, X, Z) are read as one "unknown" id 1; 0 pads.
PEPTIDE_CLASSES = ("other", "amp")
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
AMINO_ACID_UNKNOWN = "BJOUXZ"
PEPTIDE_PAD_ID, PEPTIDE_UNKNOWN_ID, PEPTIDE_FIRST_ID = 0, 1, 2
PEPTIDE_MAX_LENGTH = 200  # the longest training peptide has 174 residues

# reviews: two classes, and the tokenizer the shipped vocabulary was built with
REVIEW_CLASSES = ("other", "great")
REVIEW_TOKENIZER = {
    "lowercase": True,
    "remove": r"<[^>]*>",
    "unescape_html": True,
    "word": r"[a-z0-9]+(?:'[a-z]+)?",
    "max_tokens": 256,  # 99 % of the training reviews have at most 323 words, the median 51
    "pad_id": 0,
    "unknown_id": 1,
    "first_word_id": 2,
}
REVIEW_VOCAB_FILE = Path(__file__).resolve().parent / "pretrained" / "bilstm_text.vocab.txt"


@cache
def review_vocabulary() -> tuple[str, ...]:
    """The shipped vocabulary (one word per line of :data:`REVIEW_VOCAB_FILE`)."""
    if not REVIEW_VOCAB_FILE.is_file():
        raise DataError(f"the reviews vocabulary {REVIEW_VOCAB_FILE} is missing; rebuild it "
                        "with zoo.datasets.reviews.write_vocabulary()")
    return tuple(REVIEW_VOCAB_FILE.read_text(encoding="utf-8").splitlines())


# series: each one's window, horizon and season in steps
SERIES = {"co2": {"window": 36, "horizon": 12, "season": 12, "unit": "ppm", "step": "month"},
          "taylor": {"window": 336, "horizon": 48, "season": 336, "unit": "MW",
                     "step": "half hour"}}

# shakespeare: characters with at least 100 occurrences in the training works, in
# code-point order; ids 1.. (0 is the unknown character). tests/test_char_lm.py rebuilds
# it from the data.
SHAKESPEARE_CHARS = "\n !\"',-.1:;?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz"

# spoken_digits: the keyword spotter's classes, the ten digits by meaning first
SPOKEN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine")
SPOKEN_UNKNOWN, SPOKEN_SILENCE = "_unknown_", "_silence_"
SPOKEN_CLASSES = (*SPOKEN_DIGITS, SPOKEN_UNKNOWN, SPOKEN_SILENCE)

# ucr135: the UCR anomaly archive's file 135
UCR_WINDOW = 128  # a 12-sample anomaly is 9 % of a window
UCR_STRIDE = 8
