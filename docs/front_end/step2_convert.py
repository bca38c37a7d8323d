"""Step 2a/2b: convert front-end / back-end / full models to TFLite and ONNX, record ops and errors."""
import sys, json, traceback, io, contextlib
from models import *
import tf2onnx, onnx
from ai_edge_litert.interpreter import Interpreter

os.makedirs("artifacts", exist_ok=True)
LOG = {}

def concrete(model, n, t_in=False):
    if t_in:
        spec = tf.TensorSpec([1, n, NMEL], tf.float32, name="feats")
    else:
        spec = tf.TensorSpec([1, n], tf.float32, name="waveform")
    @tf.function(input_signature=[spec])
    def f(x):
        return model(x, training=False)
    return f, f.get_concrete_function(), [spec]

def first_lines(e, k=4):
    s = f"{type(e).__name__}: {e}"
    lines = [l for l in s.splitlines() if l.strip()]
    return "\n".join(lines[:k])

def tflite_ops(content):
    it = Interpreter(model_content=content, num_threads=1)
    ops = sorted({d["op_name"] for d in it._get_ops_details()})
    try:
        it.allocate_tensors(); alloc = "ok"
    except Exception as e:
        alloc = first_lines(e, 3)
    return ops, alloc

def to_tflite(name, model, n, t_in=False, quant=False):
    _, cf, _ = concrete(model, n, t_in)
    res = {}
    for mode in ("builtins", "builtins+select"):
        conv = tf.lite.TFLiteConverter.from_concrete_functions([cf], model)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
            [tf.lite.OpsSet.SELECT_TF_OPS] if mode == "builtins+select" else [])
        if quant:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            content = conv.convert()
        except Exception as e:
            res[mode] = {"status": "FAIL", "error": first_lines(e, 6)}
            print(f"[tflite {name} {mode}] FAIL\n{first_lines(e, 6)}")
            continue
        path = f"artifacts/{name}{'_dq' if quant else ''}.tflite"
        open(path, "wb").write(content)
        ops, alloc = tflite_ops(content)
        res[mode] = {"status": "ok", "path": path, "bytes": len(content), "ops": ops, "allocate_tensors": alloc}
        print(f"[tflite {name} {mode}] ok {len(content)} B ops={ops} alloc={alloc}")
        break  # builtins worked -> don't need select
    LOG[f"tflite:{name}{'_dq' if quant else ''}"] = res

def to_onnx(name, model, n, opset, t_in=False):
    f, _, spec = concrete(model, n, t_in)
    path = f"artifacts/{name}_op{opset}.onnx"
    key = f"onnx:{name}:opset{opset}"
    try:
        m, _ = tf2onnx.convert.from_function(f, input_signature=spec, opset=opset, output_path=path)
    except Exception as e:
        LOG[key] = {"status": "FAIL", "error": first_lines(e, 6)}
        print(f"[onnx {name} op{opset}] FAIL\n{first_lines(e, 6)}")
        return
    ops = sorted({nd.op_type for nd in m.graph.node})
    # also check the onnx checker and an ORT session
    import onnxruntime as ort
    try:
        so = ort.SessionOptions(); so.intra_op_num_threads = 1
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]); sess = "ok"
    except Exception as e:
        sess = first_lines(e, 3)
    LOG[key] = {"status": "ok", "path": path, "ops": ops, "n_nodes": len(m.graph.node),
                "ort_session": sess, "bytes": os.path.getsize(path)}
    print(f"[onnx {name} op{opset}] ok nodes={len(m.graph.node)} ops={ops} ort={sess}")

if __name__ == "__main__":
    fes = sys.argv[1].split(",") if len(sys.argv) > 1 else ["stft", "frame_rfft"]
    do_backend = len(sys.argv) <= 2 or sys.argv[2] != "nobackend"
    logname = sys.argv[3] if len(sys.argv) > 3 else "step2_convert_log.json"
    for fe in fes:
        for n, tag in ((N_FIXED, "fixed"), (None, "dyn")):
            fm = build_frontend(n, fe)
            full = build_full(n, fe, with_feats=True)
            fullp = build_full(n, fe, with_feats=False)
            for nm, mdl in ((f"frontend_{fe}_{tag}", fm), (f"full_{fe}_{tag}", full), (f"fullprobs_{fe}_{tag}", fullp)):
                to_tflite(nm, mdl, n)
                for op in (17, 18):
                    to_onnx(nm, mdl, n, op)
            to_tflite(f"full_{fe}_{tag}", full, n, quant=True)
            if n is None:  # does an explicit reshape to [1,-1,40] restore the fused LSTM?
                to_tflite(f"fullprobs_{fe}_dynreshape", build_full(n, fe, with_feats=False, reshape=True), n)
    for t, tag in (((T_FIXED, "fixed"), (None, "dyn")) if do_backend else ()):
        be = build_backend(t)
        to_tflite(f"backend_{tag}", be, t, t_in=True)
        to_tflite(f"backend_{tag}", be, t, t_in=True, quant=True)
        for op in (17, 18):
            to_onnx(f"backend_{tag}", be, t, op, t_in=True)
    json.dump(LOG, open(logname, "w"), indent=1)
