"""Sequence helpers that export as plain slices (no loops, no masks)."""

from __future__ import annotations

from zoo._keras import keras, tf


@keras.utils.register_keras_serializable(package="lstm_zoo")
class EncoderSummary(keras.layers.Layer):
    """Final states of a bidirectional sequence output (B, T, 2U) -> (B, 2U).

    The forward half's last step and the backward half's first step are the two
    directions' final hidden states. Reading them from the sequence output instead of
    ``return_state=True`` keeps the encoder a fused LSTM op in TFLite (``return_state``
    turns it into a WHILE loop, ../shared/FINDINGS.md).
    """

    def call(self, sequence):
        units = sequence.shape[-1] // 2
        forward_last = sequence[:, -1, :units]
        backward_first = sequence[:, 0, units:]
        return tf.concat([forward_last, backward_first], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
