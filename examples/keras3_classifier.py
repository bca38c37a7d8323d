"""A model as a user brings it: a BiLSTM activity classifier trained in Keras 3.

Trains a small Keras 3 model (``import keras``, the Keras that TensorFlow 2.21 installs) on
BasicMotions (the smartwatch recordings sktime ships: ``pip install -e ".[data]"``) and
writes what a user hands to lstm-zoo: the model file, labelled test samples, and the
training data that compression fine-tunes on.

    python examples/keras3_classifier.py --out my_model
    lstm-zoo export my_model/model.keras --samples my_model/x.npy --labels my_model/y.npy \\
        --metric accuracy --out out/my_model
    lstm-zoo export my_model/model.keras --samples my_model/x.npy --labels my_model/y.npy \\
        --metric accuracy --train my_model/train.npz --structured 0.5 --prune 0.5 \\
        --finetune-epochs 30 --out out/my_model_small

Keras 3's own ``model.export(format="litert")`` of this model gives WHILE loops and Flex
TensorList ops that the LiteRT interpreter refuses; lstm-zoo's bundle has fused LSTM ops.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="my_model", help="folder to write (model.keras, "
                                                          "x.npy, y.npy, train.npz)")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    os.environ.pop("TF_USE_LEGACY_KERAS", None)  # this is a Keras 3 user's script

    import keras  # Keras 3
    import numpy as np

    from zoo.datasets import load  # the data only: no tf_keras is imported for it

    train, test = load("basicmotions", "train"), load("basicmotions", "test")
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(train.x)
    model = keras.Sequential([
        keras.Input((None, train.x.shape[-1]), name="sequence"),
        norm,
        keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.LSTM(32)),
        keras.layers.Dense(len(train.classes), activation="softmax", name="probs"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.x, train.y, epochs=args.epochs, batch_size=8, verbose=0)
    _, accuracy = model.evaluate(test.x, test.y, verbose=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    np.save(out / "x.npy", test.x.astype("float32"))
    np.save(out / "y.npy", test.y)
    np.savez(out / "train.npz", x=train.x.astype("float32"), y=train.y)
    print(f"Keras {keras.__version__}: test accuracy {accuracy:.3f} on {len(test.y)} "
          f"recordings; wrote {out}/model.keras, x.npy, y.npy, train.npz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
