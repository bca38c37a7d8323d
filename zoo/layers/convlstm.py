"""ConvLSTM unrolled into plain convolutions, for export.

Neither TFLite nor ONNX has a ConvLSTM op: a Keras ``ConvLSTM2D`` converts to a WHILE
loop (TFLite) or a Loop (ONNX) around eight small convolutions per step (the cell splits
each kernel into its four gates). :class:`UnrolledConvLSTM2D` computes the same layer,
with the same variables, as a fixed number of steps of two convolutions each (all four
gates at once), with the input convolution of every step done once up front
(``benchmarks/convlstm_unroll.py`` measures the difference).
"""

from __future__ import annotations

from zoo._keras import keras, tf
from zoo.errors import UnsupportedError


@keras.utils.register_keras_serializable(package="lstm_zoo")
class UnrolledConvLSTM2D(keras.layers.Layer):
    """Runs a built ``ConvLSTM2D`` layer's cell over a fixed number of steps.

    Call with a sequence ``(B, T, H, W, C)``, or with one frame ``(B, H, W, C)`` and
    ``steps`` set, meaning that frame at every step (its input convolution is then
    computed once). ``initial_state``: ``[h, c]`` (zeros when omitted). Returns the
    sequence of outputs (``return_sequences``) or the last one, then ``h`` and ``c`` when
    ``return_state``.

    Args:
        rnn: the trained ``ConvLSTM2D`` (its variables are shared, not copied).
        return_sequences / return_state: as for ``ConvLSTM2D``.
        steps: for a single-frame input, how many steps to run.
    """

    def __init__(self, rnn, return_sequences=False, return_state=False, steps=None,
                 **kwargs):
        super().__init__(**kwargs)
        cell = rnn.cell
        if tuple(cell.strides) != (1, 1) or cell.data_format != "channels_last":
            raise UnsupportedError(f"{rnn.name}: unrolling supports strides (1, 1) and "
                                   f"channels_last; got strides {tuple(cell.strides)}, "
                                   f"{cell.data_format}")
        if rnn.go_backwards:
            raise UnsupportedError(f"{rnn.name}: unrolling does not support go_backwards")
        if cell.dropout or cell.recurrent_dropout:
            # training runs through this graph (zoo.tasks.next_frame.NextFrame.fit): dropout there
            # would silently be skipped
            raise UnsupportedError(f"{rnn.name}: unrolling does not apply dropout; got "
                                   f"dropout {cell.dropout}, recurrent_dropout "
                                   f"{cell.recurrent_dropout} (use 0)")
        self.rnn = rnn
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.steps = steps

    def build(self, input_shape):
        if not self.rnn.built:  # a fresh ConvLSTM2D makes its variables on first build
            shape = tuple(input_shape)
            self.rnn.build(shape if self.steps is None else (shape[0], 1, *shape[1:]))
        super().build(input_shape)

    def _input_conv(self, x):
        cell = self.rnn.cell
        z = tf.nn.conv2d(x, cell.kernel, strides=1, padding=cell.padding.upper(),
                         dilations=cell.dilation_rate)
        return z + cell.bias if cell.use_bias else z

    def call(self, inputs, initial_state=None):
        cell = self.rnn.cell
        if self.steps is None:  # a sequence: every step's input convolution in one op
            steps = inputs.shape[1]
            frames = tf.reshape(inputs, (-1, *inputs.shape[2:]))
            z = self._input_conv(frames)
            z = tf.reshape(z, (-1, steps, *z.shape[1:]))
            step_inputs = [z[:, t] for t in range(steps)]
        else:  # one frame at every step: one input convolution
            steps = int(self.steps)
            step_inputs = [self._input_conv(inputs)] * steps
        if initial_state is None:
            zeros = tf.zeros_like(step_inputs[0][..., : cell.filters])
            h, c = zeros, zeros
        else:
            h, c = initial_state
        outputs = []
        for t in range(steps):
            z = step_inputs[t]
            if t or initial_state is not None:  # h = 0 at the first step: nothing to add
                z = z + tf.nn.conv2d(h, cell.recurrent_kernel, strides=1, padding="SAME")
            i, f, g, o = tf.split(z, 4, axis=-1)
            i, f, o = (cell.recurrent_activation(a) for a in (i, f, o))
            c = i * cell.activation(g) if not t and initial_state is None else \
                f * c + i * cell.activation(g)
            h = o * cell.activation(c)
            outputs.append(h)
        out = tf.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [out, h, c] if self.return_state else out

    def get_config(self):
        return {**super().get_config(), "rnn": keras.layers.serialize(self.rnn),
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "steps": self.steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.layers.deserialize(config.pop("rnn")), **config)
