"""Keras graph -> LiteRT / ONNX artifacts: the converters, and the graph edits that make their
ops lean (simplification, input-projection hoisting, peephole LSTMs, flatbuffer helpers).
"""
