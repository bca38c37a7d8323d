"""Embedding + BiLSTM sentiment classifier over word ids (Amazon fine-food reviews).

Text becomes ids on the host with the shipped tokenizer and vocabulary
(:mod:`zoo.datasets.reviews`; both are in ``meta`` and so in every bundle), and the graphs
take ``tokens (B, T)`` int32 ids.

Variable length: training pads each batch to its longest review and masks the padding
(``Embedding(mask_zero=True)``). The exported ``classifier`` graph is the same model with
the mask switched off (:func:`unmasked`), fed one review at its own length: with no padding
there is nothing to mask, so it computes what the masked model computes, and every
LSTM stays a fused op (a mask turns TFLite's LSTM into a WHILE loop). What masking and
fixed padding cost instead is measured by ``python -m benchmarks.text_padding``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from zoo._keras import keras
from zoo.constants import REVIEW_CLASSES as CLASSES
from zoo.constants import REVIEW_TOKENIZER as TOKENIZER
from zoo.constants import review_vocabulary
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, fused_lstm, loose_drops

VOCAB = review_vocabulary()
FIRST_WORD = TOKENIZER["first_word_id"]


def bilstm_text(*, vocab_size: int = len(VOCAB) + FIRST_WORD, embedding_dim: int = 32,
                units: Sequence[int] = (32,), num_classes: int = len(CLASSES),
                dropout: float = 0.5, mask: bool = True):
    """Builds ``tokens (B, T) int32 -> probs (B, num_classes)``.

    Args:
        vocab_size: ids the embedding takes (the vocabulary + pad + unknown).
        embedding_dim: width of a word vector.
        units: LSTM units per bidirectional layer (each direction); one layer per entry.
        num_classes: output classes.
        dropout: dropout on the word vectors and before the head (training only).
        mask: id 0 is padding, masked out of the LSTMs (training batches are padded; the
            exported graph switches it off and takes one unpadded text).

    Example:
        >>> from zoo import create_model
        >>> create_model("bilstm_text_tiny").input_names
        ['tokens']
    """
    return token_bilstm(vocab_size, embedding_dim, units, num_classes, dropout, mask,
                        token="word", name="bilstm_text")


def token_bilstm(vocab_size: int, embedding_dim: int, units: Sequence[int], num_classes: int,
                 dropout: float, mask: bool, *, token: str, name: str):
    """The token classifier both text families build (:func:`bilstm_text`, and
    :func:`zoo.models.amp_bilstm.amp_bilstm` over residues): embedding (id 0 masked when
    ``mask``), dropout of whole ``token`` vectors, stacked BiLSTMs, softmax."""
    units = tuple(int(u) for u in units)
    if not units or min(units) < 1:
        raise ValueError(f"units must be a non-empty sequence of positive ints; got {units}")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=mask, name="embedding")(tokens)
    if dropout:
        x = keras.layers.SpatialDropout1D(dropout, name=f"{token}_dropout")(x)
    for i, n in enumerate(units):
        last = i == len(units) - 1
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(n, return_sequences=not last), name=f"bilstm_{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    probs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(tokens, probs, name=name)


def unmasked(model):
    """``model`` with the embedding's padding mask off (same weights), for one unpadded text."""
    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Embedding):
            config["mask_zero"] = False
        return layer.__class__.from_config(config)

    out = keras.models.clone_model(model, clone_function=clone)
    out.set_weights(model.get_weights())
    return out


GRAPHS = (GraphSpec("classifier", ("tokens",), ("probs",), build=unmasked),)
DATA = DataSpec(dataset="reviews", train="train", test="test", calibration="calibration")
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5, "same float32 weights; the fused LSTM kernels sum the gates in another order "
              "than TensorFlow's, over up to 256 steps per direction: probabilities 1.2e-7 "
              "off on LiteRT and 2.7e-7 on ORT (measured, shipped weights, 993 test reviews)"),
    "float16": Tolerance(
        2e-3, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight), over up to 256 steps: probabilities 5.5e-4 off (measured, shipped "
              "weights, LiteRT)"),
    # No tensor bound for "dynamic" and "int8": int8 weights move every tensor by design;
    # what is gated is the accuracy drop.
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must classify every test review as Keras does"),
    "dynamic": Tolerance(0.01, "int8 weights may flip near-tied reviews: at most 1 pt of "
                               "accuracy (10 of 993 reviews)"),
    "float16": Tolerance(0.005, "float16 weights may flip a few near-tied reviews: at most "
                                "0.5 pt"),
    "int8": Tolerance(0.02, "int8 activations and weights: at most 2 pt of accuracy"),
    "compressed": Tolerance(0.02, "pruned or clustered weights (fine-tuned): at most 2 pt of "
                                  "accuracy against the uncompressed model"),
}
META = {"classes": list(CLASSES), "vocab": list(VOCAB), "tokenizer": dict(TOKENIZER)}

SPEC = register_model(ModelSpec(
    name="bilstm_text",
    builder=bilstm_text,
    family="bilstm_text",
    task="text",
    graphs=GRAPHS,
    data=DATA,
    docs="text.md",
    description="Embedding(32) + BiLSTM(32) sentiment classifier over word ids: is an Amazon "
                "fine-food review 'great' (5 stars) or 'other'.",
    weights=("reviews",),
    intended_use="Classifying short English product reviews or comments into two classes on "
                 "a device; a starting point for fine-tuning on your own labelled texts "
                 "(TSV: text, label).",
    limitations=(
        "Trained on 4,000 Amazon fine-food reviews (modeldata): English, food products; "
        "'other' lumps 1-4 stars together.",
        "Words outside the 7,303-word vocabulary (those seen at least twice in training) "
        "all become one 'unknown' id; only the first 256 words of a text are read.",
        "Baseline: answering 'great' every time scores 0.660 on the 993 test reviews; the "
        "recipe's target (accuracy >= 0.78) asks for 12 points more.",
        "Data license: modeldata MIT (SNAP Amazon fine-food reviews).",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(),
    meta=META,
    recipe={"epochs": 4, "batch_size": 32, "learning_rate": 2e-3, "schedule": "cosine",
            "seed": 0, "finetune": {"epochs": 3, "learning_rate": 5e-4},
            "target": {"accuracy": (">=", 0.78)}, "reproduce_tolerance": {"accuracy": 0.02}},
))

tiny_variant(
    SPEC,
    defaults={"embedding_dim": 8, "units": (8,), "dropout": 0.0},
    data=replace(DATA, train="train_small"),
    recipe={"epochs": 2, "batch_size": 32, "learning_rate": 1e-2, "seed": 0},
    metric_drop=loose_drops(METRIC_DROP, 1.0, "the tiny variant is trained for 2 epochs on "
                                              "512 reviews: tests check the mechanics, the "
                                              "pretrained model the accuracy"),
)
