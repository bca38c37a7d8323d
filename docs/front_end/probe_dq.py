"""Side probe: which constant tensors the dynamic-range-quantized full model stores as int8, and what happens to the mel matrix."""
from fe_common import *
from ai_edge_litert.interpreter import Interpreter
for path in ("artifacts/full_stft_fixed_dq.tflite", "artifacts/full_dftmm_fixed_dq.tflite"):
    it = Interpreter(model_path=path); it.allocate_tensors()
    print(path)
    for d in it.get_tensor_details():
        if d["dtype"] == np.int8:
            q = d["quantization_parameters"]
            print(f"   int8 {d['name'][:60]:60s} shape={tuple(d['shape'])} n_scales={len(q['scales'])}")
            if tuple(d["shape"]) == (40, 129):
                w = it.get_tensor(d["index"]).astype(np.float32) * (q["scales"][:, None] if len(q["scales"]) > 1 else q["scales"][0])
                ref = MEL_TF.T
                print(f"      mel matrix: max abs dequant err {np.abs(w-ref).max():.3e}; nonzero weights ref={int((ref>0).sum())} dq={int((w>0).sum())}; "
                      f"mel bands whose weights all became 0: {int(((w>0).sum(1)==0).sum())} (ref: {int(((ref>0).sum(1)==0).sum())})")
