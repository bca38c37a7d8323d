"""Side probe 2: fused LSTM, fresh interpreter per call vs reset_all_variables(), per signal."""
from models import *
from rt import TFL
sigs = test_signals()
for tag, t in (("fixed", T_FIXED), ("dyn", None)):
    be = build_backend(t)
    shared = TFL(f"artifacts/backend_{tag}.tflite", reset=True)
    for k, x in sigs.items():
        if tag == "fixed" and len(x) != N_FIXED: continue
        f = logmel_np(x)[None]; kp = be(f).numpy()
        fresh = TFL(f"artifacts/backend_{tag}.tflite", reset=False)(f)[0]
        sh = shared(f)[0]
        print(f"{tag:5s} {k:15s} fresh-interp |tfl-keras|={np.abs(fresh-kp).max():.2e}   shared+reset |tfl-keras|={np.abs(sh-kp).max():.2e}  max|feat|={np.abs(f).max():.1f}")
