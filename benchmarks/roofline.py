"""Roofline: FLOPs and bytes per inference against this machine's measured peaks.

FLOPs count the multiply-adds of the matrix products (LSTM gates, dense layers,
attention), 2 per MAC; element-wise work (activations, gate products) is left out, so
the counts are a lower bound. Bytes are the parameter bytes each call must read at
least once (fp32) plus the input and output tensors. Peaks are measured in the same
run: single-thread float32 GEMM (NumPy/OpenBLAS), and copy bandwidth both for a DRAM-sized
array and for the model's own per-call working set (which may live in cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from zoo._keras import keras
from zoo.errors import UnsupportedError
from zoo.layers import LuongAttention
from zoo.layers.convlstm import UnrolledConvLSTM2D

_PEAKS_SCRIPT = """
import json, sys, time, numpy as np
def best(fn, n=20):
    fn()
    return min((lambda t: (fn(), time.perf_counter() - t)[1])(time.perf_counter())
               for _ in range(n))
a = np.random.rand(1024, 1024).astype(np.float32); b = np.random.rand(1024, 1024).astype(np.float32)
out = {"gemm_gflops": 2 * 1024**3 / best(lambda: a @ b, 10) / 1e9, "bandwidth_gbs": {}}
for size in json.loads(sys.argv[1]):
    x = np.ones(max(size // 4, 1024), np.float32); y = np.empty_like(x)
    out["bandwidth_gbs"][str(size)] = 2 * x.nbytes / best(lambda: np.copyto(y, x)) / 1e9
print(json.dumps(out))
"""
DRAM_BYTES = 256 * 2**20


def measure_peaks(working_sets: list[int] = ()) -> dict:
    """Single-thread fp32 GEMM GFLOP/s, and copy bandwidth (GB/s, read + write) for a
    256 MiB array (DRAM) and for each working-set size given (cache-resident when small),
    measured in a subprocess with one BLAS thread."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    sizes = sorted({DRAM_BYTES, *(int(s) for s in working_sets)})
    out = subprocess.run([sys.executable, "-c", _PEAKS_SCRIPT, json.dumps(sizes)],
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out)


GATES = ((keras.layers.LSTMCell, 4), (keras.layers.GRUCell, 3))  # matrix products per step
# (one per gate); PeepholeLSTMCell is an LSTMCell


def _rnn_macs(layer, steps: int) -> int:
    """Multiply-adds of ``steps`` steps of an LSTM/GRU layer or cell (peephole LSTM cells
    included; their three elementwise peephole products are not matrix products)."""
    cell = getattr(layer, "cell", layer)
    gates = next((n for kind, n in GATES if isinstance(cell, kind)), None)
    if gates is None:
        raise UnsupportedError(f"{layer.name}: no FLOP count for a {type(cell).__name__} cell")
    units = int(cell.units)
    return steps * gates * units * (int(cell.kernel.shape[0]) + units)


def _convlstm_macs(layer, node, time_len: int) -> int:
    """An :class:`UnrolledConvLSTM2D` call: the input convolution per step (once for a
    single repeated frame), the recurrent one at every step that has a state (not the
    first without an ``initial_state``)."""
    cell = layer.rnn.cell
    shape = _shape(node)
    sequence = layer.steps is None
    steps = (shape[1] or time_len) if sequence else int(layer.steps)
    pixels = int(np.prod(shape[-3:-1]))
    kh, kw, cin, gates = (int(d) for d in cell.kernel.shape)
    rkh, rkw, filters, _ = (int(d) for d in cell.recurrent_kernel.shape)
    input_convs = steps if sequence else 1
    recurrent = steps if node.call_kwargs.get("initial_state") is not None else steps - 1
    return pixels * (input_convs * kh * kw * cin * gates
                     + recurrent * rkh * rkw * filters * gates)


# lookups and per-feature scale and shift (batch norm at inference; TFLite folds it into
# the convolution before it)
NO_MATMUL = (keras.layers.Embedding, keras.layers.Normalization,
             keras.layers.BatchNormalization)


def _nodes_in(graph_model, layer) -> list:
    """``layer``'s calls that belong to ``graph_model`` (a layer shared with the training
    model has several inbound nodes)."""
    return [node for i, node in enumerate(layer.inbound_nodes)
            if f"{layer.name}_ib-{i}" in graph_model._network_nodes]


def _shape(node, first: bool = False) -> tuple:
    """The call's input shape; with ``first``, of its first input when it has several
    (an RNN called with ``[x, *initial_state]``)."""
    shape = node.input_shapes
    if first and isinstance(shape, (list, tuple)) and shape \
            and not isinstance(shape[0], (int, type(None))):
        shape = shape[0]
    return tuple(shape.as_list() if hasattr(shape, "as_list") else shape)


def _steps(node, time_len: int) -> int:
    """Time steps of a recurrent layer's call: its input's static time axis where the graph
    fixes one (a forecaster reads its window in patches, 336 values in 7 steps), else the
    call's ``time_len``."""
    steps = _shape(node, first=True)[1]
    return time_len if steps is None else int(steps)


def graph_flops(graph_model, time_len: int) -> int:
    """Matrix-product FLOPs of one call of an export graph with ``time_len`` steps.

    Raises :class:`UnsupportedError` for a layer with weights it has no count for, rather
    than leaving its work out of the roofline."""
    macs = 0
    for layer in graph_model.layers:  # in call order; a strided Conv1D shortens time after it
        if type(layer) is keras.layers.Conv1D:
            width, channels_in, channels_out = (int(d) for d in layer.kernel.shape)
            time_len = -(-time_len // layer.strides[0])  # padding "same"
            macs += time_len * width * channels_in * channels_out
        elif isinstance(layer, keras.layers.Bidirectional):
            macs += sum(2 * _rnn_macs(layer.forward_layer, _steps(node, time_len))
                        for node in _nodes_in(graph_model, layer))
        elif isinstance(layer, keras.layers.RNN):
            macs += sum(_rnn_macs(layer, _steps(node, time_len))
                        for node in _nodes_in(graph_model, layer))
        elif isinstance(layer, (keras.layers.LSTMCell, keras.layers.GRUCell)):
            macs += _rnn_macs(layer, 1)
        elif isinstance(layer, keras.layers.Dense):
            for shape in map(_shape, _nodes_in(graph_model, layer)):
                rows = int(np.prod([time_len if d is None else d for d in shape[1:-1]]))
                macs += rows * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, LuongAttention):
            dq, dm = (int(d) for d in layer.kernel.shape)
            macs += dq * dm + 2 * time_len * dm  # query projection, scores, context
        elif isinstance(layer, UnrolledConvLSTM2D):
            macs += sum(_convlstm_macs(layer, node, time_len)
                        for node in _nodes_in(graph_model, layer))
        elif layer.weights and not isinstance(layer, NO_MATMUL):
            raise UnsupportedError(f"{graph_model.name}: no FLOP count for layer {layer.name} "
                                   f"({type(layer).__name__})")
    return 2 * macs


def param_bytes(graph_model) -> int:
    return int(sum(np.prod(w.shape) * 4 for w in graph_model.weights))


def sample_cost(spec, graph_models, task, inputs, meta) -> dict[str, float]:
    """Mean FLOPs and bytes per task sample, following the calls the task really makes."""
    from zoo.graphs import KerasGraph

    calls: list[tuple[str, int, int]] = []

    class Count:
        def __init__(self, name, graph):
            self.name, self.graph = name, graph

        def __call__(self, feed):
            out = self.graph(feed)
            # the time axis of the graph's sequence input (memory for a decoder step)
            seq = next((v for v in feed.values() if v.ndim >= 2 and v.shape[1] != 1), None)
            length = seq.shape[1] if seq is not None else 1
            io = sum(v.nbytes for v in feed.values()) + sum(v.nbytes for v in out.values())
            calls.append((self.name, int(length), int(io)))
            return out

    graphs = {n: Count(n, KerasGraph(m)) for n, m in graph_models.items()}
    task.predict(graphs, inputs, meta)
    flops = sum(graph_flops(graph_models[n], t) for n, t, _ in calls)
    bytes_ = sum(param_bytes(graph_models[n]) + io for n, _, io in calls)
    return {"flops": flops / len(inputs), "bytes": bytes_ / len(inputs),
            "calls_per_sample": len(calls) / len(inputs)}


def roofline(cost: dict, peaks: dict, latency_us: float) -> dict[str, float]:
    """Achieved GFLOP/s against the roof min(GEMM peak, intensity x bandwidth), where the
    bandwidth is the one measured for this model's per-call working set (weights that
    stay in cache between calls are not read from DRAM)."""
    seconds = latency_us * 1e-6
    intensity = cost["flops"] / cost["bytes"]
    per_call = int(cost["bytes"] / cost["calls_per_sample"])
    bandwidth = peaks["bandwidth_gbs"].get(str(per_call), peaks["bandwidth_gbs"][str(DRAM_BYTES)])
    bound = min(peaks["gemm_gflops"], intensity * bandwidth)
    achieved = cost["flops"] / seconds / 1e9
    return {"gflops": achieved, "intensity_flop_per_byte": intensity, "bandwidth_gbs": bandwidth,
            "roof_gflops": bound, "fraction_of_roof": achieved / bound}
