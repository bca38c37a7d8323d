"""Luong ("general", multiplicative) attention.

Luong attention scores the decoder's *current* hidden state against the encoder
memory after the decoder step, so a teacher-forced decoder is one plain LSTM over
the whole target (one fused op, fast to train) followed by a batched attention, and
the exported decoder step is a flat graph: LSTM cell, then attention. Bahdanau
attention needs the context before the step, which forces a Python-level cell loop
in training and a WHILE loop in TFLite.
"""

from __future__ import annotations

from zoo._keras import keras, tf


@keras.utils.register_keras_serializable(package="lstm_zoo")
class LuongAttention(keras.layers.Layer):
    """``context = softmax(q W m^T) m`` for queries ``q`` (B, S, Dq), memory ``m`` (B, T, Dm).

    Returns the context vectors (B, S, Dm). Works for S = 1 (a decoder step) and for a
    whole teacher-forced target sequence alike.
    """

    def build(self, input_shape):
        query_shape, memory_shape = input_shape
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(query_shape[-1]), int(memory_shape[-1])),
            initializer="glorot_uniform",
        )
        super().build(input_shape)

    def call(self, inputs):
        query, memory = inputs
        keys = tf.matmul(query, self.kernel)  # (B, S, Dm)
        scores = tf.matmul(keys, memory, transpose_b=True)  # (B, S, T)
        weights = tf.nn.softmax(scores, axis=-1)
        return tf.matmul(weights, memory)

    def compute_output_shape(self, input_shape):
        query_shape, memory_shape = input_shape
        return tuple(query_shape[:-1]) + (memory_shape[-1],)
