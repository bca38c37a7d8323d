"""Side probe: in the dq model, how many feature cells collapse to the log(1e-6) floor while the float reference is well above it?"""
from models import *
from rt import TFL
floor = np.log(EPS)
for name, x in test_signals().items():
    if len(x) != N_FIXED: continue
    ref = logmel_np(x)
    f = [o for o in TFL("artifacts/full_stft_fixed_dq.tflite")(x[None]) if o.shape[-1] == 40][0][0]
    collapsed = (f < floor + 0.01) & (ref > floor + 1.0)
    d = np.abs(f - ref)
    print(f"{name:14s} cells at floor in dq but not in ref: {collapsed.sum():4d}/{ref.size}  "
          f"max|err| other cells: {d[~collapsed].max():.3f}  median|err| all cells: {np.median(d):.4f}")
