"""Shared building blocks of the zoo's families.

Each is imported on first use (``layers.PeepholeLSTMCell``): defining a Keras layer
imports TensorFlow, which registering the families (``lstm-zoo list``) does without.
"""

from zoo.lazy import lazy_attributes

_LAZY = {
    "EncoderSummary": "zoo.layers.sequence",
    "LuongAttention": "zoo.layers.attention",
    "PeepholeLSTMCell": "zoo.layers.peephole",
    "SeasonalNaive": "zoo.layers.window",
    "UnrolledConvLSTM2D": "zoo.layers.convlstm",
    "WindowScale": "zoo.layers.window",
    "lstm_step": "zoo.layers.step",
    "step_state_names": "zoo.layers.step",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
