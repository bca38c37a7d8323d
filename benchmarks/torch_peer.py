"""PyTorch peers: the same architectures with the same (copied) weights.

A peer is what a user would otherwise deploy: the network written in PyTorch, run
eagerly or exported with ``torch.onnx.export`` and run on ONNX Runtime. Weights are
copied from the bundle's Keras reference (:func:`save_inputs`, run by the parent
process, which has TensorFlow), so latency compares like with like; the peer's outputs
are checked against the bundle's verified ONNX fp32 artifacts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PEER_FAMILIES = {"bilstm_classifier", "bigru_classifier", "bilstm_text", "seq2seq_attention",
                 "ctc_recognizer", "kws", "char_lm", "lstm_forecaster", "lstm_autoencoder"}
# Families with no peer: PyTorch has no peephole LSTM (bipeephole_classifier) and no
# ConvLSTM (convlstm_nextframe); a user would write their own cell, which is not "the
# network in PyTorch" any more.
EPSILON = 1e-7  # Keras' backend.epsilon(): Normalization's floor under the std
# zoo.models.lstm_forecaster.EPSILON, which this module cannot import (it would load
# TensorFlow into the peer's process); tests/test_parity_matrix.py checks they agree
FORECAST_VARIANCE_FLOOR = 1e-6


def save_inputs(bundle, workdir: Path) -> None:
    """Writes what a peer process needs from the parent (which has TensorFlow): the Keras
    weights (``peer_weights.npz``). The builder's arguments, defaults included, are the
    bundle manifest's ``reference.config``."""
    np.savez(workdir / "peer_weights.npz", **keras_weights(bundle.keras_model()))


def keras_weights(model) -> dict[str, np.ndarray]:
    """Named arrays of a zoo model, keyed by Keras layer name (parent process)."""
    out = {}
    for layer in model.layers:
        for i, w in enumerate(layer.weights):
            key = w.name.split("/", 1)[-1].replace("/", ".").replace(":0", "")
            out[f"{layer.name}/{i}:{key}"] = w.numpy()
    return out


def _layer(weights, name):
    return [weights[k] for k in sorted(weights, key=lambda k: int(k.split("/")[1].split(":")[0]))
            if k.split("/")[0] == name]


def _layer_names(weights, prefix) -> list[str]:
    """Names of the layers ``prefix0``, ``prefix1``, ... in order of their index."""
    names = {k.split("/")[0] for k in weights if k.startswith(prefix)}
    return sorted(names, key=lambda n: int(n[len(prefix):]))


def _copy_lstm(torch, module, kernel, recurrent, bias, suffix=""):
    # Keras gates are i, f, c, o; torch's are i, f, g, o: the same order.
    getattr(module, f"weight_ih{suffix}").data = torch.tensor(kernel.T.copy())
    getattr(module, f"weight_hh{suffix}").data = torch.tensor(recurrent.T.copy())
    getattr(module, f"bias_ih{suffix}").data = torch.tensor(bias.copy())
    getattr(module, f"bias_hh{suffix}").data = torch.zeros_like(torch.tensor(bias))


def _copy_gru(torch, module, kernel, recurrent, bias, suffix=""):
    # Keras' GRU (reset_after=True, TF2's default, as torch computes it) orders its gates
    # z, r, h; torch's are r, z, n. Its bias is (2, 3H): the input's, then the recurrent's.
    def reorder(w):
        z, r, h = np.split(w, 3, axis=-1)
        return np.concatenate([r, z, h], axis=-1)

    if bias.shape[0] != 2:
        raise ValueError(f"the PyTorch GRU peer needs reset_after=True (bias (2, 3H)); got "
                         f"bias {bias.shape}")
    getattr(module, f"weight_ih{suffix}").data = torch.tensor(reorder(kernel).T.copy())
    getattr(module, f"weight_hh{suffix}").data = torch.tensor(reorder(recurrent).T.copy())
    getattr(module, f"bias_ih{suffix}").data = torch.tensor(reorder(bias[0]).copy())
    getattr(module, f"bias_hh{suffix}").data = torch.tensor(reorder(bias[1]).copy())


class _Parts:
    """The torch layers of a family, built from the Keras weights of its named layers."""

    def __init__(self, weights: dict[str, np.ndarray]):
        import torch
        from torch import nn

        self.torch, self.nn, self.weights = torch, nn, weights

    def linear(self, name):
        w = _layer(self.weights, name)
        layer = self.nn.Linear(*w[0].shape, bias=len(w) > 1)
        layer.weight.data = self.torch.tensor(w[0].T.copy())
        if len(w) > 1:
            layer.bias.data = self.torch.tensor(w[1])
        return layer

    def embedding(self, name):
        table = self.torch.tensor(_layer(self.weights, name)[0])
        return self.nn.Embedding.from_pretrained(table, freeze=True)

    def normalization(self, module, name="normalize", prefix=""):
        """Keras ``Normalization`` layer ``name`` as buffers ``{prefix}mean`` and
        ``{prefix}std`` of ``module``."""
        mean, var = _layer(self.weights, name)[:2]
        module.register_buffer(f"{prefix}mean", self.torch.tensor(mean))
        module.register_buffer(f"{prefix}std", self.torch.tensor(
            np.maximum(np.sqrt(var), np.float32(EPSILON))))

    def recurrent(self, name, cell="lstm", bidirectional=False):
        """``nn.LSTM``/``nn.GRU`` (batch first) with the Keras layer's weights; a
        Bidirectional layer's forward weights come first, then its backward ones."""
        w = _layer(self.weights, name)
        module = (self.nn.LSTM if cell == "lstm" else self.nn.GRU)(
            w[0].shape[0], w[1].shape[0], batch_first=True, bidirectional=bidirectional)
        copy = _copy_lstm if cell == "lstm" else _copy_gru
        copy(self.torch, module, *w[:3], suffix="_l0")
        if bidirectional:
            copy(self.torch, module, *w[3:6], suffix="_l0_reverse")
        return module

    def lstm_cell(self, name):
        kernel, recurrent, bias = _layer(self.weights, name)
        cell = self.nn.LSTMCell(kernel.shape[0], recurrent.shape[0])
        _copy_lstm(self.torch, cell, kernel, recurrent, bias)
        return cell

    def last_step(self, x, bidirectional):
        """What a Keras layer without ``return_sequences`` returns: the last output; a
        Bidirectional layer's backward half is its output at the first time step."""
        if not bidirectional:
            return x[:, -1]
        units = x.shape[-1] // 2
        return self.torch.cat([x[:, -1, :units], x[:, 0, units:]], dim=-1)


def _stacked_classifier(p: _Parts, cell: str, prefix: str, *, normalize: bool,
                        embedding: str | None = None, bidirectional: bool = True):
    """Normalisation or an embedding, stacked recurrent layers (the last returns its last
    step), and the softmax head ``probs``."""
    names = _layer_names(p.weights, prefix)

    class Classifier(p.nn.Module):
        def __init__(self):
            super().__init__()
            if normalize:
                p.normalization(self)
            self.embed = p.embedding(embedding) if embedding else None
            self.layers = p.nn.ModuleList(p.recurrent(n, cell, bidirectional) for n in names)
            self.head = p.linear("probs")

        def forward(self, x):
            x = self.embed(x.long()) if self.embed is not None else x
            if normalize:
                x = (x - self.mean) / self.std
            for layer in self.layers:
                x, _ = layer(x)
            return p.torch.softmax(self.head(p.last_step(x, bidirectional)), dim=-1)

    return Classifier()


def _seq2seq(p: _Parts, config):
    torch = p.torch

    class Encoder(p.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = p.embedding("source_embedding")
            self.lstm = p.recurrent("encoder", bidirectional=True)
            self.h, self.c = p.linear("h"), p.linear("c")

        def forward(self, graphemes):
            memory, _ = self.lstm(self.embed(graphemes.long()))
            summary = p.last_step(memory, True)
            return memory, torch.tanh(self.h(summary)), self.c(summary)

    class DecoderStep(p.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = p.embedding("target_embedding")
            self.cell = p.lstm_cell("decoder")
            self.attention = torch.tensor(_layer(p.weights, "attention")[0])
            self.combine, self.projection = p.linear("combine"), p.linear("projection")

        def forward(self, token, h, c, memory):
            x = self.embed(token.long())[:, 0]
            h1, c1 = self.cell(x, (h, c))
            keys = (h1 @ self.attention).unsqueeze(1)  # (B, 1, Dm)
            weights_ = torch.softmax(keys @ memory.transpose(1, 2), dim=-1)
            context = (weights_ @ memory)[:, 0]
            out = torch.tanh(self.combine(torch.cat([context, h1], dim=-1)))
            return torch.softmax(self.projection(out), dim=-1), h1, c1

    return {"encoder": Encoder(), "decoder_step": DecoderStep()}


def _ctc_recognizer(p: _Parts, config):
    names = _layer_names(p.weights, "bilstm_")
    nn, torch = p.nn, p.torch

    class Recognizer(nn.Module):
        def __init__(self):
            super().__init__()
            p.normalization(self)
            kernel, bias = _layer(p.weights, "frontend")  # Keras (k, in, out)
            self.size = kernel.shape[0]
            self.stride = self.size // 2  # the builder's kernel is 2 x stride
            self.conv = nn.Conv1d(kernel.shape[1], kernel.shape[2], self.size, self.stride)
            self.conv.weight.data = torch.tensor(kernel.transpose(2, 1, 0).copy())
            self.conv.bias.data = torch.tensor(bias)
            self.lstms = nn.ModuleList(p.recurrent(n, bidirectional=True) for n in names)
            self.head = p.linear("logits")

        def forward(self, strokes):
            x = ((strokes - self.mean) / self.std).transpose(1, 2)  # (B, C, T)
            # Keras "same" padding: ceil(T / s) frames; with k = 2s the total padding
            # (frames + 1) * s - T is always positive, split with the smaller half left
            length = x.shape[-1]
            frames = (length + self.stride - 1) // self.stride
            total = (frames + 1) * self.stride - length
            x = nn.functional.pad(x, (total // 2, total - total // 2))
            x = torch.relu(self.conv(x)).transpose(1, 2)
            for lstm in self.lstms:
                x, _ = lstm(x)
            return torch.softmax(self.head(x), dim=-1)

    return {"recognizer": Recognizer()}


def _kws(p: _Parts, config):
    """The keyword spotter: the whole-clip classifier and its one-frame step graph (one
    LSTM layer's state in and out, as the exported step carries it)."""
    nn, torch = p.nn, p.torch

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            p.normalization(self)
            self.cell = p.lstm_cell("lstm_0")
            self.head = p.linear("probs")

        def forward(self, frame, h, c):
            h1, c1 = self.cell((frame - self.mean) / self.std, (h, c))
            return torch.softmax(self.head(h1), dim=-1), h1, c1

    return {"classifier": _stacked_classifier(p, "lstm", "lstm_", normalize=True,
                                              bidirectional=False),
            "step": Step()}


def _char_lm(p: _Parts, config):
    """The language model over a whole text, and its one-symbol step graph."""
    nn, torch = p.nn, p.torch

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = p.embedding("embedding")
            self.lstm = p.recurrent("lstm_0")
            self.head = p.linear("probs")

        def forward(self, ids):
            x, _ = self.lstm(self.embed(ids.long()))
            return torch.softmax(self.head(x), dim=-1)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = p.embedding("embedding")
            self.cell = p.lstm_cell("lstm_0")
            self.head = p.linear("probs")

        def forward(self, token, h, c):
            h1, c1 = self.cell(self.embed(token.long()), (h, c))
            return torch.softmax(self.head(h1), dim=-1), h1, c1

    return {"lm": LM(), "step": Step()}


def _forecaster(p: _Parts, config):
    """Per-window scaling, the window read in patches by stacked LSTMs, and the correction
    to the seasonal naive forecast (or to the window's mean), as the Keras graph does."""
    torch = p.torch
    names = _layer_names(p.weights, "lstm_")
    patch = int(config.get("patch", 1))
    season, horizon = config.get("season"), int(config["horizon"])

    class Forecaster(p.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstms = p.nn.ModuleList(p.recurrent(n) for n in names)
            self.head = p.linear("standardized_forecast")

        def forward(self, history):
            mean = history.mean(dim=(1, 2), keepdim=True)
            std = torch.sqrt(((history - mean) ** 2).mean(dim=(1, 2), keepdim=True)
                             + FORECAST_VARIANCE_FLOOR)
            x = (history - mean) / std
            x = x.reshape(x.shape[0], -1, patch)
            for lstm in self.lstms:
                x, _ = lstm(x)
            z = self.head(x[:, -1])
            if season is None:
                start = mean[:, :, 0]
            else:
                begin = history.shape[1] - int(season)
                start = history[:, begin:begin + horizon, 0]
            return z * std[:, :, 0] + start

    return {"forecaster": Forecaster()}


def _autoencoder(p: _Parts, config):
    """The window normalised and read in patches by the encoder LSTM, its last output
    (through the optional tanh ``code`` layer) repeated for the decoder LSTM, a patch out
    per step; the score is the mean squared error in normalised units."""
    torch = p.torch
    has_code = bool(_layer(p.weights, "code"))

    class Autoencoder(p.nn.Module):
        def __init__(self):
            super().__init__()
            p.normalization(self)
            p.normalization(self, "denormalize", prefix="out_")
            self.encoder, self.decoder = p.recurrent("encoder"), p.recurrent("decoder")
            self.code = p.linear("code") if has_code else None
            self.out = p.linear("patch_out")

        def forward(self, window):
            z = (window - self.mean) / self.std
            patch = self.out.out_features
            x, _ = self.encoder(z.reshape(z.shape[0], -1, patch))
            code = x[:, -1]
            if self.code is not None:
                code = torch.tanh(self.code(code))
            x, _ = self.decoder(code.unsqueeze(1).expand(-1, x.shape[1], -1))
            standardized = self.out(x).reshape(z.shape)
            score = ((z - standardized) ** 2).mean(dim=(1, 2))
            return self.out_mean + standardized * self.out_std, score

    return {"autoencoder": Autoencoder()}


_FAMILIES = {
    "bilstm_classifier": lambda p, config: {"classifier": _stacked_classifier(
        p, "lstm", "bilstm_", normalize=True)},
    "bigru_classifier": lambda p, config: {"classifier": _stacked_classifier(
        p, "gru", "bigru_", normalize=True)},
    "bilstm_text": lambda p, config: {"classifier": _stacked_classifier(
        p, "lstm", "bilstm_", normalize=False, embedding="embedding")},
    "seq2seq_attention": _seq2seq,
    "ctc_recognizer": _ctc_recognizer,
    "kws": _kws,
    "char_lm": _char_lm,
    "lstm_forecaster": _forecaster,
    "lstm_autoencoder": _autoencoder,
}
assert set(_FAMILIES) == PEER_FAMILIES


def build(family: str, weights: dict[str, np.ndarray], config: dict | None = None):
    """``{graph_name: torch.nn.Module}`` for a family, with the given weights and the
    model's builder arguments ``config`` (its manifest's ``reference.config``)."""
    if family not in _FAMILIES:
        raise ValueError(f"no PyTorch peer for family {family!r}; peers exist for "
                         f"{sorted(_FAMILIES)}")
    return _FAMILIES[family](_Parts(weights), dict(config or {}))


class TorchGraph:
    backend = "torch"

    def __init__(self, module, inputs: list[dict], output_names):
        import torch

        self.torch = torch
        self.module = module.eval()
        self.inputs = inputs  # the bundle's input signature, as its runners carry it
        self.input_names = tuple(i["name"] for i in inputs)
        self.output_names = tuple(output_names)

    def __call__(self, feeds):
        with self.torch.inference_mode():
            outs = self.module(*(self.torch.from_numpy(np.ascontiguousarray(feeds[n]))
                                 for n in self.input_names))
        outs = outs if isinstance(outs, tuple) else (outs,)
        return {n: o.numpy() for n, o in zip(self.output_names, outs, strict=True)}


def graphs(bundle, backend: str, threads: int, workdir: Path) -> dict:
    """The peer's graphs as named-tensor callables: eager torch, or torch.onnx -> ORT."""
    import torch

    torch.set_num_threads(threads)
    weights = dict(np.load(workdir / "peer_weights.npz"))
    modules = build(bundle.manifest["family"], weights, bundle.manifest["reference"]["config"])
    io = {g["name"]: g for g in bundle.manifest["graphs"]}
    if backend == "torch":
        return {n: TorchGraph(m, io[n]["inputs"], [o["name"] for o in io[n]["outputs"]])
                for n, m in modules.items()}
    from export.verification.runtime import ORTRunner

    out = {}
    for name, module in modules.items():
        path = workdir / f"torch_{name}.onnx"
        example = tuple(
            torch.zeros([1 if d is None else d for d in i["shape"]],
                        dtype=torch.int32 if i["dtype"].startswith("int") else torch.float32)
            for i in io[name]["inputs"])
        dynamic = {i["name"]: {a: f"d{a}" for a, d in enumerate(i["shape"]) if d is None and a}
                   for i in io[name]["inputs"]}
        torch.onnx.export(module.eval(), example, str(path), dynamo=False, opset_version=17,
                          input_names=[i["name"] for i in io[name]["inputs"]],
                          output_names=[o["name"] for o in io[name]["outputs"]],
                          dynamic_axes={k: v for k, v in dynamic.items() if v})
        out[name] = ORTRunner(path, io[name]["inputs"], threads)
    return out


def max_abs_vs_reference(bundle, peer_graphs, feeds) -> float:
    """Largest difference between the peer and the bundle's verified ONNX fp32 graphs."""
    reference = bundle.runners("onnx", "fp32")
    worst = 0.0
    for name, feed in feeds.items():
        ref, got = reference[name](feed), peer_graphs[name](feed)
        worst = max(worst, max(float(np.abs(ref[k] - got[k]).max()) for k in ref))
    return worst
