"""PyTorch peers: the same architectures with the same (copied) weights.

A peer is what a user would otherwise deploy: the network written in PyTorch, run
eagerly or exported with ``torch.onnx.export`` and run on ONNX Runtime. Weights are
copied from the bundle's Keras reference (``peer_weights``, written by the parent
process, which has TensorFlow), so latency compares like with like; the peer's outputs
are checked against the bundle's verified ONNX fp32 artifacts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PEER_FAMILIES = {"bilstm_classifier", "seq2seq_attention", "ctc_recognizer"}


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


def _copy_lstm(torch, module, kernel, recurrent, bias, suffix=""):
    # Keras gates are i, f, c, o; torch's are i, f, g, o: the same order.
    getattr(module, f"weight_ih_l0{suffix}").data = torch.tensor(kernel.T.copy())
    getattr(module, f"weight_hh_l0{suffix}").data = torch.tensor(recurrent.T.copy())
    getattr(module, f"bias_ih_l0{suffix}").data = torch.tensor(bias.copy())
    getattr(module, f"bias_hh_l0{suffix}").data = torch.zeros_like(torch.tensor(bias))


def build(family: str, weights: dict[str, np.ndarray]):
    """``{graph_name: torch.nn.Module}`` for a family, with the given weights."""
    import torch
    from torch import nn

    def lin(name, activation=None):
        w = _layer(weights, name)
        layer = nn.Linear(*w[0].shape, bias=len(w) > 1)
        layer.weight.data = torch.tensor(w[0].T.copy())
        if len(w) > 1:
            layer.bias.data = torch.tensor(w[1])
        return layer

    def normalization(module):
        """The model's ``normalize`` layer as buffers ``mean`` and ``std`` of ``module``."""
        mean, var = _layer(weights, "normalize")[:2]
        module.register_buffer("mean", torch.tensor(mean))
        module.register_buffer("std", torch.tensor(np.sqrt(var)))

    def bilstm(name):
        w = _layer(weights, name)  # forward kernel, recurrent, bias, then backward
        lstm = nn.LSTM(w[0].shape[0], w[1].shape[0], batch_first=True, bidirectional=True)
        _copy_lstm(torch, lstm, *w[:3])
        _copy_lstm(torch, lstm, *w[3:6], suffix="_reverse")
        return lstm

    if family == "bilstm_classifier":
        names = sorted({k.split("/")[0] for k in weights if k.startswith("bilstm_")})

        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                normalization(self)
                self.lstms = nn.ModuleList(bilstm(n) for n in names)
                self.head = lin("probs")

            def forward(self, sequence):
                x = (sequence - self.mean) / self.std
                for lstm in self.lstms:
                    x, _ = lstm(x)
                units = x.shape[-1] // 2
                last = torch.cat([x[:, -1, :units], x[:, 0, units:]], dim=-1)
                return torch.softmax(self.head(last), dim=-1)

        return {"classifier": Classifier()}

    if family == "seq2seq_attention":

        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding.from_pretrained(
                    torch.tensor(_layer(weights, "source_embedding")[0]), freeze=True)
                self.lstm = bilstm("encoder")
                self.h, self.c = lin("h"), lin("c")

            def forward(self, graphemes):
                memory, _ = self.lstm(self.embed(graphemes.long()))
                units = memory.shape[-1] // 2
                summary = torch.cat([memory[:, -1, :units], memory[:, 0, units:]], dim=-1)
                return memory, torch.tanh(self.h(summary)), self.c(summary)

        class DecoderStep(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding.from_pretrained(
                    torch.tensor(_layer(weights, "target_embedding")[0]), freeze=True)
                kernel, recurrent, bias = _layer(weights, "decoder")
                self.cell = nn.LSTMCell(kernel.shape[0], recurrent.shape[0])
                self.cell.weight_ih.data = torch.tensor(kernel.T.copy())
                self.cell.weight_hh.data = torch.tensor(recurrent.T.copy())
                self.cell.bias_ih.data = torch.tensor(bias)
                self.cell.bias_hh.data = torch.zeros(bias.shape)
                self.attention = torch.tensor(_layer(weights, "attention")[0])
                self.combine, self.projection = lin("combine"), lin("projection")

            def forward(self, token, h, c, memory):
                x = self.embed(token.long())[:, 0]
                h1, c1 = self.cell(x, (h, c))
                keys = (h1 @ self.attention).unsqueeze(1)  # (B, 1, Dm)
                weights_ = torch.softmax(keys @ memory.transpose(1, 2), dim=-1)
                context = (weights_ @ memory)[:, 0]
                out = torch.tanh(self.combine(torch.cat([context, h1], dim=-1)))
                return torch.softmax(self.projection(out), dim=-1), h1, c1

        return {"encoder": Encoder(), "decoder_step": DecoderStep()}
    if family == "ctc_recognizer":
        names = sorted({k.split("/")[0] for k in weights if k.startswith("bilstm_")})

        class Recognizer(nn.Module):
            def __init__(self):
                super().__init__()
                normalization(self)
                kernel, bias = _layer(weights, "frontend")  # Keras (k, in, out)
                self.size = kernel.shape[0]
                self.stride = self.size // 2  # the builder's kernel is 2 x stride
                self.conv = nn.Conv1d(kernel.shape[1], kernel.shape[2], self.size, self.stride)
                self.conv.weight.data = torch.tensor(kernel.transpose(2, 1, 0).copy())
                self.conv.bias.data = torch.tensor(bias)
                self.lstms = nn.ModuleList(bilstm(n) for n in names)
                self.head = lin("logits")

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
    raise ValueError(f"no PyTorch peer for family {family!r}")


class TorchGraph:
    backend = "torch"

    def __init__(self, module, input_names, output_names):
        import torch

        self.torch = torch
        self.module = module.eval()
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)

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
    modules = build(bundle.manifest["family"], weights)
    io = {g["name"]: g for g in bundle.manifest["graphs"]}
    if backend == "torch":
        return {n: TorchGraph(m, [i["name"] for i in io[n]["inputs"]],
                              [o["name"] for o in io[n]["outputs"]]) for n, m in modules.items()}
    from export.runtime import ORTRunner

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
