"""Shared building blocks of the zoo's families.

Each is imported on first use (``layers.PeepholeLSTMCell``): defining a Keras layer
imports TensorFlow, which registering the families (``lstm-zoo list``) does without.
"""

_LAZY = {
    "EncoderSummary": "zoo.layers.sequence",
    "LuongAttention": "zoo.layers.attention",
    "PeepholeLSTMCell": "zoo.layers.peephole",
    "SeasonalNaive": "zoo.layers.window",
    "UnrolledConvLSTM2D": "zoo.layers.convlstm",
    "WindowScale": "zoo.layers.window",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.layers' has no attribute {name!r}")
