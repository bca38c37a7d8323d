"""Step 3: single-thread batch-1 latency on 1 s of audio (8000 samples). median of N runs after warmup."""
import time, json, sys
from fe_common import *
from rt import TFL, ORT
N, WARM = 300, 30
x = test_signals()["modnoise_8000"][None, :]
RES = {}

def bench(name, fn):
    for _ in range(WARM): fn()
    ts = []
    for _ in range(N):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    ts = np.array(ts) * 1e3
    RES[name] = {"median_ms": float(np.median(ts)), "p10_ms": float(np.percentile(ts, 10)), "p90_ms": float(np.percentile(ts, 90))}
    print(f"{name:55s} median {np.median(ts):8.3f} ms   p10 {np.percentile(ts,10):8.3f}   p90 {np.percentile(ts,90):8.3f}", flush=True)

A = "artifacts/"
# (i) host NumPy front end
bench("(i)   numpy logmel (host)", lambda: logmel_np(x[0]))
# (ii) in-graph front end alone
for fe in ("stft", "abs", "dftmm"):
    r = TFL(A + f"frontend_{fe}_fixed.tflite"); bench(f"(ii)  tflite frontend_{fe}_fixed", lambda: r(x))
for fe in ("abs", "dftmm"):
    r = ORT(A + f"frontend_{fe}_fixed_op17.onnx"); bench(f"(ii)  onnx   frontend_{fe}_fixed_op17", lambda: r(x))
r = TFL(A + "frontend_stft_dyn.tflite"); bench("(ii)  tflite frontend_stft_dyn (n=8000)", lambda: r(x))
r = ORT(A + "frontend_dftmm_dyn_op17.onnx"); bench("(ii)  onnx   frontend_dftmm_dyn_op17 (n=8000)", lambda: r(x))
# back end alone (features given)
f = logmel_np(x[0])[None]
for q in ("", "_dq"):
    r = TFL(A + f"backend_fixed{q}.tflite"); bench(f"      tflite backend_fixed{q} (feats in)", lambda: r(f))
r = ORT(A + "backend_fixed_op17.onnx"); bench("      onnx   backend_fixed_op17 (feats in)", lambda: r(f))
# (iii) whole model
for fe in ("stft", "abs", "dftmm"):
    r = TFL(A + f"fullprobs_{fe}_fixed.tflite"); bench(f"(iii) tflite in-graph fullprobs_{fe}_fixed", lambda: r(x))
for fe in ("stft", "dftmm"):
    r = TFL(A + f"full_{fe}_fixed_dq.tflite"); bench(f"(iii) tflite in-graph full_{fe}_fixed_dq", lambda: r(x))
for fe in ("abs", "dftmm"):
    r = ORT(A + f"fullprobs_{fe}_fixed_op17.onnx"); bench(f"(iii) onnx   in-graph fullprobs_{fe}_fixed_op17", lambda: r(x))
for q in ("", "_dq"):
    r = TFL(A + f"backend_fixed{q}.tflite"); bench(f"(iii) tflite host numpy + backend_fixed{q}", lambda: r(logmel_np(x[0])[None]))
r = ORT(A + "backend_fixed_op17.onnx"); bench("(iii) onnx   host numpy + backend_fixed_op17", lambda: r(logmel_np(x[0])[None]))
# dynamic-length variants (n=8000)
r = TFL(A + "fullprobs_stft_dyn.tflite"); bench("(iii) tflite in-graph fullprobs_stft_dyn (WHILE lstm)", lambda: r(x))
r = TFL(A + "fullprobs_stft_dynreshape.tflite"); bench("(iii) tflite in-graph fullprobs_stft_dynreshape (fused)", lambda: r(x))
r = ORT(A + "fullprobs_dftmm_dyn_op17.onnx"); bench("(iii) onnx   in-graph fullprobs_dftmm_dyn_op17", lambda: r(x))
r = TFL(A + "backend_dyn.tflite"); bench("(iii) tflite host numpy + backend_dyn", lambda: r(logmel_np(x[0])[None]))
r = ORT(A + "backend_dyn_op17.onnx"); bench("(iii) onnx   host numpy + backend_dyn_op17", lambda: r(logmel_np(x[0])[None]))
# overhead of reset_all_variables() itself
r = TFL(A + "backend_fixed.tflite", reset=False); bench("      tflite backend_fixed WITHOUT reset_all_variables", lambda: r(f))
json.dump(RES, open(sys.argv[1] if len(sys.argv) > 1 else "step3_timing.json", "w"), indent=1)
