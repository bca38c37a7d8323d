"""Shared building blocks of the zoo's families."""

from zoo.layers.attention import LuongAttention
from zoo.layers.convlstm import UnrolledConvLSTM2D
from zoo.layers.peephole import PeepholeLSTMCell
from zoo.layers.sequence import EncoderSummary

__all__ = ["EncoderSummary", "LuongAttention", "PeepholeLSTMCell", "UnrolledConvLSTM2D"]
