"""Keras 3's own LiteRT export of the same classifier, as a user without lstm-zoo gets it.

``python -m benchmarks.keras3_peer`` builds ``bilstm_activity``'s architecture in Keras 3
with the shipped weights, exports it with ``model.export(format="litert")`` (batch 1),
and tries to run it on the LiteRT interpreter. It writes benchmarks/results/keras3.json,
which the benchmark report includes. This is the one module that imports Keras 3: the
comparison is its point (tests/test_keras_entry.py exempts it by name).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "keras3.json"


def _child(weights_npz: str, out: str) -> dict:
    """Runs in a process without TF_USE_LEGACY_KERAS: Keras 3 build, export, run."""
    import keras

    from benchmarks.torch_peer import _layer

    w = dict(np.load(weights_npz))
    mean, var = _layer(w, "normalize")[:2]
    inp = keras.Input((100, 6), batch_size=1, name="sequence")
    x = keras.layers.Normalization(mean=mean, variance=var)(inp)
    layers = sorted({k.split("/")[0] for k in w if k.startswith("bilstm_")})
    for i, name in enumerate(layers):
        bi = keras.layers.Bidirectional(keras.layers.LSTM(
            _layer(w, name)[1].shape[0], return_sequences=i < len(layers) - 1))
        x = bi(x)
        bi.set_weights(_layer(w, name))
    head = keras.layers.Dense(4, activation="softmax", name="probs")
    probs = head(x)
    head.set_weights(_layer(w, "probs"))
    model = keras.Model(inp, probs)
    start = time.perf_counter()
    model.export(out, format="litert")
    result = {"keras": keras.__version__, "export_seconds": time.perf_counter() - start,
              "size_bytes": os.path.getsize(out)}
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=out, num_threads=1)
    ops: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
    result["ops"] = dict(sorted(ops.items()))
    try:
        interpreter.allocate_tensors()
        runner = interpreter.get_signature_runner()
        x = np.zeros((1, 100, 6), np.float32)
        name = next(iter(runner.get_input_details()))
        runner(**{name: x})
        times = []
        for _ in range(200):
            t = time.perf_counter()
            runner(**{name: x})
            times.append((time.perf_counter() - t) * 1e6)
        result["runs_on_litert"] = True
        result["median_us"] = float(np.median(times))
    except RuntimeError as e:
        result["runs_on_litert"] = False
        result["error"] = str(e).split(". ")[0]
    return result


def run(name: str = "bilstm_activity", weights="DEFAULT") -> dict:
    """Exports ``name``'s architecture with Keras 3 in a child process; see module doc."""
    from benchmarks.torch_peer import keras_weights
    from zoo import create_model

    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "w.npz"
        np.savez(npz, **keras_weights(create_model(name, weights=weights)))
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
        code = ("import json, sys; from benchmarks.keras3_peer import _child; "
                "print(json.dumps(_child(sys.argv[1], sys.argv[2])))")
        proc = subprocess.run([sys.executable, "-c", code, str(npz), str(Path(tmp) / "k3.tflite")],
                              capture_output=True, text=True, env=env,
                              cwd=Path(__file__).parents[1])
    if proc.returncode != 0:
        result = {"export_failed": proc.stderr.strip().splitlines()[-1]}
    else:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"model": name, **result}


def main() -> int:
    from zoo.weights import atomic_write_bytes

    result = run()
    atomic_write_bytes(RESULTS, (json.dumps(result, indent=2) + "\n").encode())
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
