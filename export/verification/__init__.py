"""Running artifacts and proving parity: the runners over Keras, LiteRT and ONNX Runtime (no
TensorFlow import), parity checks against Keras, and the tables made from bundles.
"""
