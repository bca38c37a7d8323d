"""Thin single-thread runners for LiteRT and ONNX Runtime."""
import numpy as np
from ai_edge_litert.interpreter import Interpreter
import onnxruntime as ort

class TFL:
    def __init__(self, path, reset=True):
        # reset=True: call reset_all_variables() before every invoke. Needed because the fused
        # UNIDIRECTIONAL_SEQUENCE_LSTM keeps its h/c state in variable tensors across invokes (see probe_lstm.py).
        self.reset = reset
        self.it = Interpreter(model_path=path, num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.shape = None
    def __call__(self, x):
        if self.shape != x.shape:
            self.it.resize_tensor_input(self.inp["index"], list(x.shape)); self.it.allocate_tensors(); self.shape = x.shape
        if self.reset:
            self.it.reset_all_variables()
        self.it.set_tensor(self.inp["index"], x)
        self.it.invoke()
        return [self.it.get_tensor(o["index"]) for o in self.it.get_output_details()]

class ORT:
    def __init__(self, path):
        so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.name = self.s.get_inputs()[0].name
    def __call__(self, x):
        return self.s.run(None, {self.name: x})

def split(outs):
    """-> (probs, feats-or-None) by shape."""
    p = [o for o in outs if o.shape[-1] == 10]
    f = [o for o in outs if o.shape[-1] == 40]
    return p[0], (f[0] if f else None)
