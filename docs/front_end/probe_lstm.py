"""Side probe: fused TFLite LSTM vs Keras on identical features (is the 1e-2 prob gap input-magnitude dependent / delegate dependent?)."""
from models import *
from ai_edge_litert.interpreter import Interpreter, OpResolverType
be = build_backend(T_FIXED)
def run(path, x, rtype):
    it = Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=rtype); it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x); it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])
rng = np.random.default_rng(1)
for name, x in [("const -13.8", np.full((1, T_FIXED, 40), -13.8, np.float32)),
                ("const -5", np.full((1, T_FIXED, 40), -5.0, np.float32)),
                ("const 0", np.zeros((1, T_FIXED, 40), np.float32)),
                ("N(0,1)", rng.standard_normal((1, T_FIXED, 40)).astype(np.float32)),
                ("N(0,5)", 5 * rng.standard_normal((1, T_FIXED, 40)).astype(np.float32))]:
    k = be(x).numpy()
    a = run("artifacts/backend_fixed.tflite", x, OpResolverType.AUTO)
    b = run("artifacts/backend_fixed.tflite", x, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    c = run("artifacts/backend_fixed.tflite", x, OpResolverType.BUILTIN_REF)
    print(f"{name:12s} |tfl(auto)-keras|={np.abs(a-k).max():.2e}  |tfl(no default delegates)-keras|={np.abs(b-k).max():.2e}  |tfl(BUILTIN_REF)-keras|={np.abs(c-k).max():.2e}")

print("--- same interpreter, sequential invokes (state carry-over?) ---")
sigs = test_signals()
feats = {k: logmel_np(v)[None] for k, v in sigs.items() if len(v) == N_FIXED}
it = Interpreter(model_path="artifacts/backend_fixed.tflite", num_threads=1); it.allocate_tensors()
ii, oo = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
for reset in (False, True):
    for k, x in list(feats.items()) + [("noise_8000 again", feats["noise_8000"])]:
        if reset: it.reset_all_variables()
        it.set_tensor(ii, x); it.invoke(); p = it.get_tensor(oo)
        print(f"reset_all_variables={reset!s:5s} {k:18s} |tfl-keras|={np.abs(p - be(x).numpy()).max():.2e}")
