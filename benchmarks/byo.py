"""Bring your own model (issue 27): ``python -m benchmarks.byo``.

Two measurements, written to benchmarks/results/byo.{json,md}:

1. **A Keras 3 BiLSTM classifier, our LiteRT artifact against Keras 3's own.**
   ``bilstm_activity``'s architecture (Normalization, two Bidirectional LSTM layers, a
   softmax Dense; input (1, 100, 6)) is built in Keras 3 with the shipped weights, in a
   child process without TF_USE_LEGACY_KERAS, and saved as a ``.keras`` file; Keras 3
   exports it with ``model.export(format="litert")``. Ours is
   ``export_keras(file, samples=<32 basicmotions test series>, precisions="fp32")``: fused
   UNIDIRECTIONAL_SEQUENCE_LSTM ops, run on the LiteRT interpreter. Keras 3's artifact is
   WHILE loops over Flex TensorList ops: the LiteRT interpreter refuses it, and so does
   TensorFlow 2.21's ``tf.lite.Interpreter`` (the pip package stopped linking the Flex
   delegate in 2.20, both recorded here); it runs on the ``tf.lite.Interpreter`` of an
   older TensorFlow that still links it, when ``--flex-python`` names a Python that has
   one (TensorFlow 2.18 here). Both run the same 32 series; their outputs are compared
   (max |diff|), then they are timed at 1 thread, batch 1, each in a process of its own
   taking turns in rounds (:func:`paired_workers`, the machinery of
   :func:`benchmarks.run.measure_paired` for workers that are not bundles).
2. **Export + verification time of a 1M-parameter user model** at fp32 and dynamic (both
   formats): a stacked BiLSTM classifier as a tf_keras ``.keras`` file and as a Keras 3
   one, each exported by ``export_keras`` in a fresh process per run; the time of the call
   (everything it does), the import time before it, and the time per stage (from the
   progress messages' timestamps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, save, stamp

ROOT = Path(__file__).parents[1]
STEM = "byo"
INPUT = "sequence"
TARGET_SPEEDUP = 5.0  # ours >= 5x faster than Keras 3's artifact where it runs
TARGET_EXPORT_SECONDS = 30.0  # export + verification of a 1M-parameter model
# The 1M-parameter classifier: 100 steps of 40 features (a speech-frame shape), two
# bidirectional LSTM layers of 172 units per direction, 10 classes: 1,007,930 parameters.
LABELS = {"ours": "ours: LiteRT fp32 (ai_edge_litert)",
          "ours_onnx": "ours: ONNX fp32 (ONNX Runtime)",
          "theirs": "theirs: Keras 3's LiteRT artifact (tf.lite.Interpreter + Flex)"}
BIG = {"timesteps": 100, "features": 40, "units": [172, 172], "classes": 10}


# ---------------------------------------------------------------------------------------
# Child processes

def _env(keras3: bool = False, threads: int | None = None) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if keras3:  # Keras 3 as `keras`, and as tf.keras
        env.pop("TF_USE_LEGACY_KERAS", None)
    if threads is not None:
        env.update({"OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
                    "TF_NUM_INTEROP_THREADS": "1"})
    return env


def _child(function: str, args: dict, env: dict, python: str = sys.executable,
           timeout: float = 1800, fresh: bool = True) -> dict:
    """``function(args)`` of this module in a fresh process: its JSON result
    (``fresh=False``: in this process, for tests)."""
    if not fresh:
        return json.loads(json.dumps(globals()[function](args)))
    code = (f"import json, sys; from benchmarks.byo import {function}; "
            f"print(json.dumps({function}(json.loads(sys.argv[1]))))")
    proc = subprocess.run([python, "-c", code, json.dumps(args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise RuntimeError(f"{function}: " + (lines[-1] if lines else f"exit {proc.returncode}"))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def keras3_model(args: dict) -> dict:
    """[Keras 3 child] Builds a BiLSTM classifier, saves it as ``args["keras"]``.

    ``args``: timesteps, features, units (per direction, one Bidirectional layer each),
    classes, batch (1 or None), seed; optional ``weights`` (an ``.npz`` of a zoo model's
    weights, :func:`benchmarks.torch_peer.keras_weights`: then Normalization's mean and
    variance and every layer's weights are the zoo model's), ``samples`` (``.npy``) with
    ``outputs`` (where Keras 3's outputs on them go), and ``litert`` (where Keras 3's own
    LiteRT export goes; then whether the LiteRT interpreter runs it)."""
    import keras

    from benchmarks.torch_peer import _layer

    keras.utils.set_random_seed(args.get("seed", 0))
    w = dict(np.load(args["weights"])) if args.get("weights") else None
    inp = keras.Input((args["timesteps"], args["features"]), batch_size=args.get("batch"),
                      name=INPUT)
    x = inp
    if w is not None:
        mean, var = _layer(w, "normalize")[:2]
        x = keras.layers.Normalization(mean=mean, variance=var, name="normalize")(x)
        names = sorted({k.split("/")[0] for k in w if k.startswith("bilstm_")})
        assert [_layer(w, n)[1].shape[0] for n in names] == list(args["units"]), names
    for i, units in enumerate(args["units"]):
        bi = keras.layers.Bidirectional(keras.layers.LSTM(
            units, return_sequences=i < len(args["units"]) - 1), name=f"bilstm_{i}")
        x = bi(x)
        if w is not None:
            bi.set_weights(_layer(w, names[i]))
    head = keras.layers.Dense(args["classes"], activation="softmax", name="probs")
    probs = head(x)
    if w is not None:
        head.set_weights(_layer(w, "probs"))
    model = keras.Model(inp, probs)
    model.save(args["keras"])
    result = {"keras": keras.__version__, "params": int(model.count_params())}
    if args.get("samples"):
        xs = np.load(args["samples"])
        outs = [np.asarray(model(xs[i:i + 1], training=False)) for i in range(len(xs))]
        np.save(args["outputs"], np.concatenate(outs))
    if args.get("litert"):
        start = time.perf_counter()
        model.export(args["litert"], format="litert")
        result["litert_export_seconds"] = time.perf_counter() - start
        result["litert_size_bytes"] = os.path.getsize(args["litert"])
        result["litert"] = _try_interpreter("ai_edge_litert", args["litert"])
        # TensorFlow is loaded already (Keras 3's backend): its own interpreter too
        result["tf_lite"] = try_tf_lite({"path": args["litert"]})
    return result


def tf_keras_model(args: dict) -> dict:
    """The same classifier built in tf_keras (dynamic batch), saved as ``args["keras"]``."""
    from zoo._keras import keras

    keras.utils.set_random_seed(args.get("seed", 0))
    inp = keras.Input((args["timesteps"], args["features"]), name=INPUT)
    x = inp
    for i, units in enumerate(args["units"]):
        x = keras.layers.Bidirectional(keras.layers.LSTM(
            units, return_sequences=i < len(args["units"]) - 1), name=f"bilstm_{i}")(x)
    model = keras.Model(inp, keras.layers.Dense(args["classes"], activation="softmax",
                                                name="probs")(x))
    model.save(args["keras"])
    return {"keras": f"tf_keras {keras.__version__}", "params": int(model.count_params())}


def _interpreter(which: str, path: str, threads: int = 1):
    if which == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter
    else:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter(model_path=path, num_threads=threads)


def _try_interpreter(which: str, path: str) -> dict:
    """Whether ``which`` interpreter prepares the model at ``path``, and the ops in it
    (read before preparing: after, they include the delegates' nodes)."""
    ops: dict[str, int] = {}
    try:
        interpreter = _interpreter(which, path)
        for op in interpreter._get_ops_details():
            ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
        interpreter.allocate_tensors()  # where Flex ops without a delegate are refused
    except (RuntimeError, ValueError) as e:
        return {"runs": False, "error": str(e).split(". ")[0], "node": _failed_node(str(e)),
                "ops": dict(sorted(ops.items()))}
    return {"runs": True, "ops": dict(sorted(ops.items()))}


def _failed_node(message: str) -> str | None:
    at = message.find("Node number")
    return message[at:].strip() if at >= 0 else None


def export_timed(args: dict) -> dict:
    """[fresh process] ``export_keras(args["model"], args["out"], ...)``, timed: the imports
    before it, the whole call, and each stage (from one progress message to the next)."""
    start = time.perf_counter()
    from export.progress import Progress
    from export.user.pipeline import export_keras
    from zoo._keras import load

    load()  # TensorFlow's import is the bulk of it
    imported = time.perf_counter()

    class Timed(Progress):
        def __init__(self):
            super().__init__()
            self.events: list[tuple[float, str]] = []

        def say(self, message: str) -> None:
            self.events.append((time.perf_counter(), message))

        def counter(self, label, total):
            self.say(f"{label} ({total})")
            return lambda _n: None

    progress = Timed()
    samples = np.load(args["samples"])
    t0 = time.perf_counter()
    report = export_keras(args["model"], args["out"], samples=samples,
                          precisions=args["precisions"], formats=args.get("formats"),
                          progress=progress)
    end = time.perf_counter()
    times = [t for t, _ in progress.events] + [end]
    stages = [{"stage": m, "seconds": times[i + 1] - t}
              for i, (t, m) in enumerate(progress.events)]
    return {"import_seconds": imported - start, "export_seconds": end - t0,
            "before_first_message_seconds": (times[0] - t0) if progress.events else None,
            "stages": stages, "passed": bool(report.get("passed")),
            "artifacts": [f"{a['format']}/{a['precision']}" for a in _manifest(args["out"])],
            "ops": {f"{a['format']}/{a['precision']}": a.get("ops")
                    for a in _manifest(args["out"])}}


def _manifest(out) -> list[dict]:
    return json.loads((Path(out) / "manifest.json").read_text())["artifacts"]


# ---------------------------------------------------------------------------------------
# Timing two workers in turns

def serve(args: dict) -> int:
    """[worker] One model kept loaded, in the protocol of :func:`benchmarks.measure.serve`:
    saves its outputs on every sample to ``args["outputs"]``, then after a warm-up pass and
    a timed one prints ``{"ready": µs per call, "samples": n}``, then runs ``{"calls": n}``
    per stdin line (cycling through the samples) and prints ``{"us": µs per call}``.

    ``args["kind"]``: ``bundle`` (a user bundle's fp32 runner on ``args["backend"]``,
    ``litert`` by default, ``onnx`` for ONNX Runtime: the API a user gets) or ``tflite``
    (``tf.lite.Interpreter`` on a ``.tflite`` file: reset its variable tensors, set the
    input, invoke, read the output)."""
    xs = np.load(args["samples"]).astype(np.float32)
    threads = args.get("threads", 1)
    if args["kind"] == "bundle":
        from export.verification.runtime import load_bundle

        backend = args.get("backend", "litert")
        runner = load_bundle(args["path"]).runners(backend, "fp32", threads=threads)["model"]
        name = runner.input_names[0]
        output = runner.output_names[0]

        def call(x):
            return runner({name: x})[output]
        package = "ai_edge_litert" if backend == "litert" else "onnxruntime"
        info = {"runtime": f"{package} {_version(package)}"}
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        interpreter = _interpreter("tensorflow", args["path"], threads)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]["index"]
        out = interpreter.get_output_details()[0]["index"]

        def call(x):  # each call a new sequence: a fused LSTM's state tensors zeroed
            interpreter.reset_all_variables()  # (as LiteRTRunner does; Keras 3's has none)
            interpreter.set_tensor(inp, x)
            interpreter.invoke()
            return interpreter.get_tensor(out)
        info = {"runtime": "tf.lite.Interpreter, tensorflow " + tf.__version__}
    feeds = [xs[i:i + 1] for i in range(len(xs))]
    np.save(args["outputs"], np.concatenate([np.array(call(x)) for x in feeds]))

    def block(calls: int) -> float:
        start = time.perf_counter()
        for j in range(calls):
            call(feeds[j % len(feeds)])
        return (time.perf_counter() - start) / calls * 1e6

    block(len(feeds))
    print(json.dumps({"ready": block(len(feeds)), "samples": len(feeds), **info}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        print(json.dumps({"us": block(json.loads(line)["calls"])}), flush=True)
    return 0


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module.replace("_", "-"))
    except PackageNotFoundError:
        return "?"


def paired_workers(workers: dict[str, dict], workdir: Path, budget: float = 15.0,
                   references: list[str] | None = None, rounds: int = 200) -> dict:
    """This module's workers (:func:`serve`: a user bundle, or a bare ``.tflite`` in
    another Python) timed in lockstep rounds by :func:`benchmarks.measure.paired`.
    ``workers``: ``{key: {"args": serve args, "python": executable, "env": environment}}``;
    ratios divide by each of ``references`` (default the first key)."""
    from benchmarks import measure as m

    code = ("import json, sys; from benchmarks.byo import serve; "
            "sys.exit(serve(json.loads(sys.argv[1])))")
    return m.paired({key: {"cmd": [w.get("python", sys.executable), "-c", code,
                                   json.dumps(w["args"])], "env": w.get("env")}
                     for key, w in workers.items()},
                    workdir, budget, references=references, rounds=rounds)


# ---------------------------------------------------------------------------------------
# The two measurements

def _samples(source: str, n: int, timesteps: int, features: int, seed: int = 0) -> np.ndarray:
    if source == "basicmotions":
        from zoo import datasets

        x = np.asarray(datasets.load("basicmotions", "test").x[:n], np.float32)
        assert x.shape[1:] == (timesteps, features), x.shape
        return x
    return np.random.default_rng(seed).normal(size=(n, timesteps, features)).astype(np.float32)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def compare(work: Path, *, model: str = "bilstm_activity", weights="DEFAULT",
            samples: int = 32, flex_python: str | None = None, threads: int = 1,
            budget: float = 15.0, rounds: int = 200, fresh: bool = True) -> dict:
    """Measurement 1 (see the module doc). ``model``/``weights``: the zoo model whose
    architecture and weights the Keras 3 classifier gets (``weights=None``: random);
    ``fresh=False`` exports ours in this process (tests)."""
    from benchmarks.torch_peer import keras_weights
    from zoo import create_model
    from zoo.registry import get_spec

    work.mkdir(parents=True, exist_ok=True)
    zoo_model = create_model(model, weights=weights)
    units = [int(layer.forward_layer.units) for layer in zoo_model.layers
             if hasattr(layer, "forward_layer")]
    arch = {"timesteps": 100, "features": int(zoo_model.input_shape[-1]), "units": units,
            "classes": int(zoo_model.output_shape[-1])}
    np.savez(work / "weights.npz", **keras_weights(zoo_model))
    x = _samples(get_spec(model).data.dataset, samples, arch["timesteps"], arch["features"])
    np.save(work / "x.npy", x)
    paths = {k: str(work / f) for k, f in (("keras", "k3.keras"), ("litert", "k3.tflite"),
                                           ("outputs", "keras3_out.npy"))}
    built = _child("keras3_model", {**arch, "batch": 1, "weights": str(work / "weights.npz"),
                                    "samples": str(work / "x.npy"), **paths},
                   _env(keras3=True))
    result = {"model": f"{model}'s architecture in Keras {built['keras']}",
              "weights": "shipped" if weights == "DEFAULT" else
                         "random" if weights is None else str(weights),
              "params": built["params"], "arch": arch,
              "samples": f"{len(x)} {get_spec(model).data.dataset} test series",
              "keras3_litert": {"export_seconds": built["litert_export_seconds"],
                                "size_bytes": built["litert_size_bytes"],
                                "on_ai_edge_litert": built["litert"]}}
    ours = _child("export_timed", {"model": paths["keras"], "out": str(work / "bundle"),
                                   "samples": str(work / "x.npy"), "precisions": "fp32",
                                   "formats": "tflite,onnx"}, _env(), fresh=fresh)
    result["ours"] = {"export_seconds": ours["export_seconds"], "passed": ours["passed"],
                      "ops": ours["ops"]["tflite/fp32"], "onnx_ops": ours["ops"]["onnx/fp32"],
                      "size_bytes": (work / "bundle" / "fp32" / "model.tflite").stat().st_size}
    # Keras 3's artifact on TensorFlow's own interpreter: this TensorFlow, then the other.
    tried = {"tensorflow (this venv)": built["tf_lite"]}
    if flex_python:
        tried[f"tensorflow ({flex_python})"] = _child(
            "try_tf_lite", {"path": paths["litert"]}, _env(), python=flex_python)
    result["keras3_litert"]["on_tf_lite"] = tried
    runs_on = next((k for k, v in tried.items() if v["runs"]), None)
    workers = {"ours": {"args": {"kind": "bundle", "path": str(work / "bundle"),
                                 "samples": str(work / "x.npy"), "threads": threads,
                                 "outputs": str(work / "ours_out.npy")},
                        "env": _env(threads=threads)}}
    # our ONNX artifact on ONNX Runtime, for context (the target compares LiteRT artifacts)
    workers["ours_onnx"] = {"args": {**workers["ours"]["args"], "backend": "onnx",
                                     "outputs": str(work / "ours_onnx_out.npy")},
                            "env": _env(threads=threads)}
    if runs_on is not None:
        python = flex_python if runs_on != "tensorflow (this venv)" else sys.executable
        workers["theirs"] = {"args": {"kind": "tflite", "path": paths["litert"],
                                      "samples": str(work / "x.npy"), "threads": threads,
                                      "outputs": str(work / "theirs_out.npy")},
                             "python": python, "env": _env(threads=threads)}
    timing = paired_workers(workers, work, budget=budget, references=["ours", "ours_onnx"],
                            rounds=rounds)
    result["timing"] = timing
    keras3_out = np.load(paths["outputs"])
    diffs = {}
    if (work / "ours_out.npy").is_file():
        ours_out = np.load(work / "ours_out.npy")
        diffs["ours_vs_keras3"] = _max_abs(ours_out, keras3_out)
        if (work / "ours_onnx_out.npy").is_file():
            diffs["ours_onnx_vs_keras3"] = _max_abs(np.load(work / "ours_onnx_out.npy"),
                                                    keras3_out)
        if (work / "theirs_out.npy").is_file():
            theirs_out = np.load(work / "theirs_out.npy")
            diffs["theirs_vs_keras3"] = _max_abs(theirs_out, keras3_out)
            diffs["ours_vs_theirs"] = _max_abs(ours_out, theirs_out)
            diffs["same_top1"] = int(np.sum(ours_out.argmax(-1) == theirs_out.argmax(-1)))
    result["max_abs_diff"] = diffs
    if "error" not in timing and "theirs" in timing.get("median_us", {}):
        r = timing["ratios"]["ours"]["theirs"]
        result["speedup"] = {"theirs_over_ours": r, "target": TARGET_SPEEDUP,
                             "met": r["median"] >= TARGET_SPEEDUP,
                             "theirs_over_ours_onnx": timing["ratios"]["ours_onnx"]["theirs"]}
    return result


def try_tf_lite(args: dict) -> dict:
    """[child] Whether ``tf.lite.Interpreter`` of this Python's TensorFlow runs a model."""
    import tensorflow as tf

    return {"tensorflow": tf.__version__, **_try_interpreter("tensorflow", args["path"])}


def export_time(work: Path, *, arch: dict | None = None, runs: int = 3, samples: int = 32,
                precisions: str = "fp32,dynamic", formats: str | None = None,
                kinds=("tf_keras", "keras3"), fresh: bool = True) -> dict:
    """Measurement 2 (see the module doc): per Keras (``kinds``), ``runs`` exports, each
    in a fresh process (``fresh=False``: in this process, for tests)."""
    arch = arch or BIG
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "x.npy", _samples("random", samples, arch["timesteps"], arch["features"]))
    files = {k: work / f"{k}.keras" for k in kinds}
    built = {}
    if "tf_keras" in kinds:
        built["tf_keras"] = _child("tf_keras_model", {**arch, "keras": str(files["tf_keras"])},
                                   _env(), fresh=fresh)
    if "keras3" in kinds:
        built["keras3"] = _child("keras3_model", {**arch, "batch": None,
                                                  "keras": str(files["keras3"])},
                                 _env(keras3=True))
    out = {"arch": arch, "samples": f"{samples} random normal series",
           "precisions": precisions, "formats": formats or "tflite,onnx",
           "target_seconds": TARGET_EXPORT_SECONDS, "models": {}}
    for kind, path in files.items():
        rows = []
        for i in range(runs):
            start = time.perf_counter()
            r = _child("export_timed", {"model": str(path), "out": str(work / f"{kind}_{i}"),
                                        "samples": str(work / "x.npy"),
                                        "precisions": precisions, "formats": formats},
                       _env(), fresh=fresh)
            r["process_seconds"] = time.perf_counter() - start
            rows.append(r)
        export_s = [r["export_seconds"] for r in rows]
        out["models"][kind] = {
            "keras": built[kind]["keras"] if kind == "tf_keras" else
                     f"Keras {built[kind]['keras']}", "params": built[kind]["params"],
            "median_export_seconds": float(np.median(export_s)),
            "median_with_imports_seconds": float(np.median(
                [r["export_seconds"] + r["import_seconds"] for r in rows])),
            "median_process_seconds": float(np.median([r["process_seconds"] for r in rows])),
            "met": float(np.median(export_s)) <= TARGET_EXPORT_SECONDS,
            "runs": rows}
    return out


# ---------------------------------------------------------------------------------------
# Report

def markdown(results: dict) -> str:
    lines = [f"Measured {results['date']} on {results['machine']} (`{results['command']}`)."]
    c = results.get("compare")
    if c:
        k3 = c["keras3_litert"]
        lines += ["", f"## {c['model']} ({c['weights']} weights, {c['params']:,} parameters)",
                  "", f"Inputs: {c['samples']}, batch 1, {c['timing'].get('threads', 1)} "
                  "thread.", "",
                  f"- Keras 3's `model.export(format=\"litert\")`: "
                  f"{k3['size_bytes'] / 1024:.0f} KB; ops "
                  + ", ".join(f"{k}×{v}" for k, v in
                              k3["on_ai_edge_litert"].get("ops", {}).items()) + "."]
        lite = k3["on_ai_edge_litert"]
        lines.append("- LiteRT interpreter (ai_edge_litert): "
                     + ("runs it." if lite["runs"] else
                        f"refuses it: \"{lite['error']}\" ({lite['node']})."))
        for where, r in k3["on_tf_lite"].items():
            lines.append(f"- `tf.lite.Interpreter`, TensorFlow {r['tensorflow']} ({where}): "
                         + ("runs it." if r["runs"] else
                            f"refuses it: \"{r['error']}\" ({r['node']})."))
        ours = c["ours"]
        lines.append(f"- Ours (`export_keras`, fp32): {ours['size_bytes'] / 1024:.0f} KB; ops "
                     + ", ".join(f"{k}×{v}" for k, v in (ours["ops"] or {}).items())
                     + "; ONNX ops " + ", ".join(f"{k}×{v}" for k, v in
                                                 (ours.get("onnx_ops") or {}).items())
                     + f"; both exported and verified in {ours['export_seconds']:.1f} s.")
        d = c["max_abs_diff"]
        lines.append("- max |diff| of the probabilities on the same inputs: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.2e}" for k, v in d.items() if k != "same_top1")
            + (f"; the same top-1 class on {d['same_top1']} of the series"
               if "same_top1" in d else "") + ".")
        t = c["timing"]
        if "error" in t:
            lines.append(f"- Timing failed: {t['error']}")
        else:
            lines += ["", f"Timed in {t['rounds']} rounds, each config in its own process "
                      "(runtimes: " + "; ".join(f"{k}: {v}" for k, v in t["runtimes"].items())
                      + "); per-round ratios: median (q25–q75):", "",
                      "| config | median µs per call | / ours | / ours_onnx |", "|---|---|---|---|"]
            for key, us in t["median_us"].items():
                cells = [f"{r['median']:.2f} ({r['q25']:.2f}–{r['q75']:.2f})"
                         for r in (t["ratios"][ref][key] for ref in ("ours", "ours_onnx"))]
                lines.append(f"| {LABELS.get(key, key)} | {us:.0f} | " + " | ".join(cells) + " |")
            if "speedup" in c:
                s = c["speedup"]
                lines += ["", f"Target ours (LiteRT) ≥ {s['target']:.0f}× faster than Keras 3's "
                          f"LiteRT artifact: {s['theirs_over_ours']['median']:.2f}× "
                          f"({'met' if s['met'] else 'NOT met'}); our ONNX artifact on ONNX "
                          f"Runtime: {s['theirs_over_ours_onnx']['median']:.2f}×."]
            else:
                lines += ["", "Keras 3's artifact ran nowhere here: only ours was timed."]
    e = results.get("export")
    if e:
        lines += ["", f"## Export + verification of a ~1M-parameter model "
                  f"({e['precisions']}, {e['formats']}; {e['samples']}; target ≤ "
                  f"{e['target_seconds']:.0f} s)", "",
                  "| model | parameters | export_keras s (median) | with imports | whole "
                  "process | runs | met |", "|---|---|---|---|---|---|---|"]
        for m in e["models"].values():
            lines.append(f"| {m['keras']} | {m['params']:,} | {m['median_export_seconds']:.1f} "
                         f"| {m['median_with_imports_seconds']:.1f} | "
                         f"{m['median_process_seconds']:.1f} | "
                         + ", ".join(f"{r['export_seconds']:.1f}" for r in m["runs"])
                         + f" | {'yes' if m['met'] else 'NO'} |")
        for m in e["models"].values():
            run = sorted(m["runs"], key=lambda r: r["export_seconds"])[len(m["runs"]) // 2]
            lines += ["", f"Stages of the median {m['keras']} run ({run['export_seconds']:.1f} "
                      "s):", "", "| stage (progress message) | s |", "|---|---|"]
            lines += [f"| {s['stage']} | {s['seconds']:.2f} |" for s in run["stages"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.byo",
                                description=__doc__.splitlines()[0])
    p.add_argument("--flex-python", default=os.environ.get("LSTM_ZOO_FLEX_PYTHON"),
                   help="a Python whose TensorFlow links the Flex delegate into "
                        "tf.lite.Interpreter (TensorFlow <= 2.19), to run Keras 3's artifact")
    p.add_argument("--budget", type=float, default=15.0, help="seconds of timed rounds")
    p.add_argument("--runs", type=int, default=3, help="fresh-process exports per model")
    p.add_argument("--only", choices=("compare", "export"), default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = stamp("benchmarks.byo", argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="lstm-zoo-byo-") as tmp:
        if args.only in (None, "compare"):
            results["compare"] = compare(Path(tmp) / "compare", flex_python=args.flex_python,
                                         budget=args.budget)
        if args.only in (None, "export"):
            results["export"] = export_time(Path(tmp) / "export", runs=args.runs)
    save(results, markdown(results), args.out, STEM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
