"""A trained LSTM stack as one time step, its state as explicit inputs and outputs.

A streaming or sampling graph (``GraphSpec(..., recurrent="step")``) runs one frame or one
token per call and hands the state back to the host: each trained ``keras.layers.LSTM``
becomes an ``LSTMCell`` with the same weights, ``h_i``/``c_i`` in and ``h_i_next``/
``c_i_next`` out. Exported, that is a handful of matrix products, no loop and no sequence
op, identical on every backend.
"""

from __future__ import annotations

from zoo._keras import keras


def step_state_names(layers: int) -> list[str]:
    """The state inputs of a step graph over ``layers`` LSTMs, in order (``h_0, c_0, ...``);
    the outputs are these with ``_next``.

    Example:
        >>> step_state_names(2)
        ['h_0', 'c_0', 'h_1', 'c_1']
    """
    return [f"{k}_{i}" for i in range(layers) for k in ("h", "c")]


def lstm_step(x, lstms):
    """Runs ``x`` (B, features) through the trained ``lstms`` (LSTM layers, in order) for
    one time step, as cells holding their weights.

    Returns:
        ``(y, states_in, states_out)``: the last cell's output (B, units), the state
        inputs (``keras.Input`` named as :func:`step_state_names`) and the next states
        (named ``h_i_next``, ``c_i_next``), to list in the step model's inputs and outputs.
    """
    states_in, states_out = [], []
    for i, lstm in enumerate(lstms):
        h = keras.Input((lstm.units,), name=f"h_{i}")
        c = keras.Input((lstm.units,), name=f"c_{i}")
        cell = keras.layers.LSTMCell(lstm.units, name=f"cell_{i}")
        x, (h_next, c_next) = cell(x, [h, c])
        cell.set_weights(lstm.cell.get_weights())
        states_in += [h, c]
        states_out += [keras.layers.Activation("linear", name=f"h_{i}_next")(h_next),
                       keras.layers.Activation("linear", name=f"c_{i}_next")(c_next)]
    return x, states_in, states_out
