"""Step 2c/2d: run converted artifacts, compare probs/features with Keras and NumPy."""
import json
from models import *
from rt import TFL, ORT, split
sigs = test_signals()
RES = []

def feat_err(f, ref):
    d = np.abs(f - ref)
    m = ref > -5.0
    return float(d.max()), float(d[m].max()) if m.any() else float("nan")

def row(**kw):
    RES.append(kw)
    print(" | ".join(f"{k}={v:.3e}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()))

for fe in ("stft", "frame_rfft", "abs", "dftmm"):
    for tag, n in (("fixed", N_FIXED), ("dyn", None)):
        keras_full = build_full(n, fe, with_feats=True)
        arts = {"tflite": f"artifacts/full_{fe}_{tag}.tflite", "tflite_dq": f"artifacts/full_{fe}_{tag}_dq.tflite",
                "onnx17": f"artifacts/full_{fe}_{tag}_op17.onnx", "onnx18": f"artifacts/full_{fe}_{tag}_op18.onnx"}
        for rtname, path in arts.items():
            if not os.path.exists(path):
                continue
            try:
                r = TFL(path) if rtname.startswith("tflite") else ORT(path)
            except Exception as e:
                row(fe=fe, shape=tag, runtime=rtname, status="LOAD FAIL: " + str(e).splitlines()[0][:200]); continue
            for sname, x in sigs.items():
                if tag == "fixed" and len(x) != N_FIXED:
                    continue
                xb = x[None, :]
                kp, kf = [t.numpy() for t in keras_full(xb)]
                ref_np = logmel_np(x)[None]
                try:
                    p, f = split(r(xb))
                except Exception as e:
                    row(fe=fe, shape=tag, runtime=rtname, signal=sname, status="RUN FAIL: " + str(e).splitlines()[0][:200]); continue
                fe_np, fe_np_loud = feat_err(f, ref_np)
                row(fe=fe, shape=tag, runtime=rtname, signal=sname, status="ok",
                    feat_vs_numpy=fe_np, feat_vs_numpy_ref_gt_m5=fe_np_loud,
                    feat_vs_keras=float(np.abs(f - kf).max()),
                    prob_vs_keras=float(np.abs(p - kp).max()),
                    argmax_same=bool(p.argmax() == kp.argmax()))

# host path: NumPy features -> backend model (no front end) on each runtime, vs Keras full(stft) model
for tag, n in (("fixed", N_FIXED), ("dyn", None)):
    keras_full = build_full(n, "stft", with_feats=True)
    keras_be = build_backend(None if n is None else T_FIXED)
    for rtname, path in (("tflite", f"artifacts/backend_{tag}.tflite"), ("tflite_dq", f"artifacts/backend_{tag}_dq.tflite"),
                         ("onnx17", f"artifacts/backend_{tag}_op17.onnx"), ("onnx18", f"artifacts/backend_{tag}_op18.onnx")):
        r = TFL(path) if rtname.startswith("tflite") else ORT(path)
        for sname, x in sigs.items():
            if tag == "fixed" and len(x) != N_FIXED:
                continue
            feats = logmel_np(x)[None]
            kp_full = keras_full(x[None])[0].numpy()
            kp_be = keras_be(feats).numpy()
            p, _ = split(r(feats))
            row(fe="host-numpy", shape=tag, runtime=rtname, signal=sname, status="ok",
                prob_vs_keras_backend_same_feats=float(np.abs(p - kp_be).max()),
                prob_vs_keras_full_stft=float(np.abs(p - kp_full).max()),
                argmax_same=bool(p.argmax() == kp_full.argmax()))
json.dump(RES, open("step2c_results.json", "w"), indent=1)
