"""What each layer of a model becomes in TFLite and ONNX, before anything is converted.

The rules below are what the converters do (TF 2.21's TFLite converter, tf2onnx 1.17),
measured layer by layer; ``tests/test_inspect.py`` converts each case and checks the rule
against the artifact's ops, so a converter upgrade that changes one fails there.

- TFLite fuses an LSTM into ``UNIDIRECTIONAL_SEQUENCE_LSTM`` only when tf_keras traced it
  through its fused-kernel function (tagged ``api_implements "lstm_*"``): tanh activation,
  sigmoid recurrent activation, a bias, no recurrent dropout, not unrolled, no mask, no
  ``return_state`` (the fused op outputs no final cell state).
  Anything else is a ``WHILE`` loop. It has no GRU or simple RNN op at all.
- tf2onnx rewrites the LSTM's loop into ONNX ``LSTM`` whatever its activations and bias,
  and a GRU's into ``GRU`` for the default GRU only (``reset_after=True``, tanh / sigmoid);
  recurrent dropout or a mask leave an ONNX ``Loop``.
- ``unroll=True`` writes every step out: no loop and no recurrent op, in both formats.

Example:
    >>> from zoo._keras import keras
    >>> from export.user.inspect import inspect_model
    >>> x = keras.Input((None, 3), name="x")
    >>> m = keras.Model(x, keras.layers.GRU(4, name="gru")(x))
    >>> [(r.layer, r.tflite, r.onnx) for r in inspect_model(m) if r.recurrent]
    [('gru', 'WHILE loop', 'GRU')]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo._keras import keras, tf

FORMAT_NAMES = {"tflite": "TFLite", "onnx": "ONNX"}


@dataclass
class LayerRow:
    """One layer: what it becomes per format, and why a recurrent one does not fuse."""

    layer: str
    cls: str
    recurrent: bool
    directions: int = 0
    kind: str = ""  # LSTM, GRU, other
    tflite: str = "plain ops"
    onnx: str = "plain ops"
    why: list[str] = field(default_factory=list)
    fix: list[str] = field(default_factory=list)

    def fused(self, fmt: str) -> bool:
        return getattr(self, fmt) in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "GRU")

    def loops(self, fmt: str) -> bool:
        return "loop" in getattr(self, fmt).lower()


def _name(fn) -> str:
    return getattr(fn, "__name__", str(fn))


def _loop_causes(dropout: float, masked: bool) -> list[tuple[str, str]]:
    """What makes an LSTM or a GRU a loop in both converters: (reason, fix) each."""
    causes = []
    if dropout:
        causes.append(("recurrent_dropout > 0 adds a random mask at every step",
                       "set recurrent_dropout=0 (use dropout on the inputs instead)"))
    if masked:
        causes.append(("a padding mask (Masking / mask_zero) reaches it",
                       "remove the mask and feed each sample at its own length"))
    return causes


def _cell_row(layer, wrapper, masked: bool) -> LayerRow:
    """The rules for one recurrent layer (``wrapper``: its Bidirectional, if any)."""
    name = (wrapper or layer).name
    cls = (f"{type(wrapper).__name__}({type(layer).__name__})" if wrapper
           else type(layer).__name__)
    row = LayerRow(name, cls, True, 2 if wrapper else 1)
    act, rec = _name(getattr(layer, "activation", None)), _name(
        getattr(layer, "recurrent_activation", None))
    dropout = getattr(layer, "recurrent_dropout", 0) or 0
    unroll = getattr(layer, "unroll", False)
    why: list[tuple[str, str, str]] = []  # (format(s), reason, fix)
    if isinstance(layer, keras.layers.LSTM):
        row.kind = "LSTM"
        common = _loop_causes(dropout, masked)
        tflite_only = []
        if act != "tanh" or rec != "sigmoid":
            tflite_only.append((f"activation={act}, recurrent_activation={rec}: TFLite fuses "
                                "only tanh / sigmoid LSTMs",
                                "use activation='tanh', recurrent_activation='sigmoid'"))
        if not layer.use_bias:
            tflite_only.append(("use_bias=False: TFLite fuses only LSTMs with a bias",
                                "use use_bias=True"))
        if layer.return_state:
            tflite_only.append(("return_state=True: TFLite's fused LSTM op gives no final "
                                "cell state", "none for an encoder's states; ONNX's LSTM "
                                "gives them (Y_h, Y_c)"))
        row.tflite = "UNIDIRECTIONAL_SEQUENCE_LSTM" if not (common or tflite_only) else \
            "WHILE loop"
        row.onnx = "LSTM" if not common else "Loop"
        why = [("both", *c) for c in common] + [("tflite", *c) for c in tflite_only]
    elif isinstance(layer, keras.layers.GRU):
        row.kind = "GRU"
        why.append(("tflite", "TFLite (LiteRT 2.3) has no GRU op",
                    "use an LSTM where TFLite speed matters, or ship the ONNX artifact"))
        onnx_why = []
        if not layer.reset_after:
            onnx_why.append(("reset_after=False: tf2onnx writes ONNX GRU only for "
                             "reset_after=True", "use reset_after=True (the default)"))
        if act != "tanh" or rec != "sigmoid":
            onnx_why.append((f"activation={act}, recurrent_activation={rec}: tf2onnx "
                             "matches only the tanh / sigmoid GRU",
                             "use activation='tanh', recurrent_activation='sigmoid'"))
        onnx_why += _loop_causes(dropout, masked)
        row.tflite = "WHILE loop"
        row.onnx = "GRU" if not onnx_why else "Loop"
        why += [("onnx", *c) for c in onnx_why]
    else:  # SimpleRNN, ConvLSTM1D/2D/3D, RNN of another cell
        row.kind = "other"
        row.tflite, row.onnx = "WHILE loop", "Loop"
        why.append(("both", f"neither format has a fused {type(layer).__name__} op",
                    "use an LSTM (fused in both) or a GRU (fused in ONNX)"
                    if isinstance(layer, keras.layers.SimpleRNN) else
                    "none: the loop is what this layer becomes"))
    if unroll:
        row.tflite = row.onnx = "unrolled steps"
        why = [("both", "unroll=True writes every time step out (no loop, no recurrent op)",
                "keep it for short fixed time axes; use unroll=False to get the fused op")]
    for fmts, reason, fix in why:
        where = "TFLite and ONNX" if fmts == "both" else FORMAT_NAMES[fmts]
        row.why.append(f"{where}: {reason}")
        row.fix.append(fix)
    return row


def inspect_model(model_or_path) -> list[LayerRow]:
    """One row per layer (recurrent layers inside Bidirectional / TimeDistributed
    unwrapped), in model order.

    Args:
        model_or_path: a tf_keras or Keras 3 model, or a model file (read as
            :func:`export.user.load.load_user_model` reads it: nothing is executed).
    """
    model = model_or_path
    if not isinstance(model, keras.Model):
        from export.user.load import load_user_model

        model = load_user_model(model_or_path).model
    masked = _masked_layers(model)
    rows = []
    for layer in _flat_layers(model):
        inner, wrapper = layer, None
        while isinstance(inner, (keras.layers.Bidirectional, keras.layers.TimeDistributed)):
            if isinstance(inner, keras.layers.Bidirectional):
                wrapper, inner = inner, inner.forward_layer
            else:
                inner = inner.layer
        if isinstance(inner, keras.layers.RNN) or isinstance(
                inner, getattr(keras.layers, "ConvLSTM1D", ())):
            rows.append(_cell_row(inner, wrapper, layer.name in masked))
        else:
            rows.append(LayerRow(layer.name, type(layer).__name__, False))
    return rows


def _flat_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _masked_layers(model) -> set[str]:
    """Layers a padding mask reaches (tf_keras propagates it through the graph)."""
    masked = set()
    for layer in _flat_layers(model):
        for node in layer._inbound_nodes:
            tensors = tf.nest.flatten(node.input_tensors)
            if any(getattr(t, "_keras_mask", None) is not None for t in tensors):
                masked.add(layer.name)
    return masked


def fusion_expectations(rows: list[LayerRow]) -> dict[str, dict]:
    """Per format: the fused directions the artifact must hold by cell kind, and the
    reasons the other recurrent layers loop (None when all fuse)."""
    out = {}
    for fmt in FORMAT_NAMES:
        fused = {"LSTM": 0, "GRU": 0, "other": 0}
        reasons = []
        for r in rows:
            if not r.recurrent:
                continue
            if r.fused(fmt):
                fused[r.kind] += r.directions
            elif r.loops(fmt):
                reasons += [f"{r.layer}: {w}" for w in r.why
                            if w.startswith((FORMAT_NAMES[fmt], "TFLite and ONNX"))]
        out[fmt] = {"fused_directions": fused,
                    "loops": any(r.recurrent and r.loops(fmt) for r in rows),
                    "loop_reason": "; ".join(reasons) or None}
    return out


def render(rows: list[LayerRow]) -> str:
    """The table ``lstm-zoo inspect`` prints."""
    width = max([len(r.layer) for r in rows] + [5])
    cls_width = max([len(r.cls) for r in rows] + [5])
    lines = [f"{'layer':{width}s}  {'class':{cls_width}s}  {'TFLite':28s}  ONNX"]
    for r in rows:
        lines.append(f"{r.layer:{width}s}  {r.cls:{cls_width}s}  {r.tflite:28s}  {r.onnx}")
    notes = [(r, w, f) for r in rows for w, f in zip(r.why, r.fix, strict=True)]
    if notes:
        lines.append("")
        lines += [f"{r.layer}: {w}; to fuse: {f}" for r, w, f in notes]
    recurrent = [r for r in rows if r.recurrent]
    if not recurrent:
        lines.append("\nno recurrent layer: the model exports as plain ops")
    elif all(r.fused("tflite") and r.fused("onnx") for r in recurrent):
        lines.append("\nevery recurrent layer becomes a fused op in both formats")
    return "\n".join(lines)
