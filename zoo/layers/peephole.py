"""A peephole LSTM cell: the gates also see the cell state (Gers et al., 2002).

tf_keras 2.21 dropped ``PeepholeLSTMCell``; this follows the one TensorFlow's own legacy
Keras had (``tensorflow/python/keras/layers/recurrent.py``, after Sak et al., 2014), with
Keras LSTM's sigmoid gates instead of its hard sigmoid::

    i = sigmoid(x W_i + h_{t-1} U_i + b_i + p_i * c_{t-1})
    f = sigmoid(x W_f + h_{t-1} U_f + b_f + p_f * c_{t-1})
    c_t = f * c_{t-1} + i * tanh(x W_c + h_{t-1} U_c + b_c)
    o = sigmoid(x W_o + h_{t-1} U_o + b_o + p_o * c_t)      # the new cell state
    h_t = o * tanh(c_t)

These are the peephole equations of TFLite's fused LSTM op (``cell_to_input``,
``cell_to_forget``, ``cell_to_output`` weights) and of ONNX's LSTM op (input ``P``), which
is how :mod:`export.conversion.peephole` exports it fused.
"""

from __future__ import annotations

from zoo._keras import keras

PEEPHOLES = ("input_gate_peephole_weights", "forget_gate_peephole_weights",
             "output_gate_peephole_weights")


@keras.utils.register_keras_serializable(package="lstm_zoo")
class PeepholeLSTMCell(keras.layers.LSTMCell):
    """:class:`keras.layers.LSTMCell` with three ``(units,)`` peephole weight vectors.

    Wrap it in ``keras.layers.RNN`` (and ``Bidirectional``) as any cell; the kernel, recurrent
    kernel and bias are an LSTM's, so with zero peepholes it computes ``keras.layers.LSTM``.
    The peephole weights are initialised like the kernel (as TensorFlow's legacy cell did).

    Example:
        >>> from zoo._keras import keras
        >>> from zoo.layers import PeepholeLSTMCell
        >>> rnn = keras.layers.RNN(PeepholeLSTMCell(4))
        >>> rnn(keras.Input((None, 3))).shape.as_list()
        [None, 4]
        >>> [tuple(w.shape) for w in rnn.cell.peephole_weights()]
        [(4,), (4,), (4,)]
    """

    def build(self, input_shape):
        super().build(input_shape)
        # One initializer instance per vector: tf_keras gives an unseeded instance's later
        # calls the values of its first, which would make the three vectors equal.
        config = keras.initializers.serialize(self.kernel_initializer)
        self.input_gate_peephole_weights, self.forget_gate_peephole_weights, \
            self.output_gate_peephole_weights = (
                self.add_weight(shape=(self.units,), name=name,
                                initializer=keras.initializers.deserialize(config))
                for name in PEEPHOLES)

    def peephole_weights(self):
        """The ``(input, forget, output)`` gate peephole variables."""
        return (self.input_gate_peephole_weights, self.forget_gate_peephole_weights,
                self.output_gate_peephole_weights)

    def _compute_carry_and_output(self, x, h_tm1, c_tm1):
        # implementation=1 (split kernels), taken with recurrent dropout
        x_i, x_f, x_c, x_o = x
        h_i, h_f, h_c, h_o = h_tm1
        u = self.recurrent_kernel
        n = self.units
        dot = keras.backend.dot
        i = self.recurrent_activation(x_i + dot(h_i, u[:, :n])
                                      + self.input_gate_peephole_weights * c_tm1)
        f = self.recurrent_activation(x_f + dot(h_f, u[:, n:2 * n])
                                      + self.forget_gate_peephole_weights * c_tm1)
        c = f * c_tm1 + i * self.activation(x_c + dot(h_c, u[:, 2 * n:3 * n]))
        o = self.recurrent_activation(x_o + dot(h_o, u[:, 3 * n:])
                                      + self.output_gate_peephole_weights * c)
        return c, o

    def _compute_carry_and_output_fused(self, z, c_tm1):
        z_i, z_f, z_c, z_o = z
        i = self.recurrent_activation(z_i + self.input_gate_peephole_weights * c_tm1)
        f = self.recurrent_activation(z_f + self.forget_gate_peephole_weights * c_tm1)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + self.output_gate_peephole_weights * c)
        return c, o
