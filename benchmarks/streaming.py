"""Streaming step latency of the keyword spotter: ``python -m benchmarks.streaming``.

Exports ``kws_lstm`` (fp32, dynamic, float16), then runs its ``step`` graph the way a
device does: one 10 ms log-mel frame per call, the LSTM state fed back from the previous
call's outputs, on real held-out frames. Timed per call on one thread: LiteRT
(``ai_edge_litert``, set inputs / invoke / read outputs), ONNX Runtime (``session.run``),
and the Keras step in a ``tf.function`` for scale. Also times the ``classifier`` graph over a
whole 1-second window (98 frames), against 98 step calls.

The issue's goal: <= 15 us per step for a 128-unit LSTM. Machines here are noisy, so the
table also gives each runtime's ratio to Keras measured in the same run.

Writes benchmarks/results/streaming.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, save, stamp

GOAL_US = 15.0
PRECISIONS = ("fp32", "dynamic", "float16")  # kws_lstm withdraws int8 (its spec says why)


def per_call_us(fn, windows: np.ndarray, repeats: int, reset=None) -> dict[str, float]:
    """Median and p90 over ``repeats`` passes of the time per call of ``fn(frame)`` over
    every frame of ``windows`` (N, T, ...), ``reset()`` (zero state) before each window."""
    for frame in windows[0][:10]:
        fn(frame)
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for window in windows:
            if reset:
                reset()
            for frame in window:
                fn(frame)
        passes.append((time.perf_counter() - start) * 1e6 / (windows.shape[0] * windows.shape[1]))
    return {"median_us": float(np.median(passes)), "p90_us": float(np.percentile(passes, 90))}


class LiteRTStep:
    """The step graph on the LiteRT interpreter, inputs set and outputs read by index."""

    def __init__(self, path: Path, inputs: list[dict]):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=1)
        self.interp.allocate_tensors()
        runner = self.interp.get_signature_runner()
        ins, outs = runner.get_input_details(), runner.get_output_details()
        self.frame = ins["frame"]["index"]
        self.states = [(ins[n]["index"], outs[f"{n}_next"]["index"], ins[n]["shape"])
                       for n in ins if n != "frame"]
        self.probs = outs["probs"]["index"]
        self.reset()

    def reset(self):
        self.values = [np.zeros(shape, np.float32) for _, _, shape in self.states]

    def __call__(self, frame):
        self.interp.set_tensor(self.frame, frame[None])
        for (i, _, _), v in zip(self.states, self.values, strict=True):
            self.interp.set_tensor(i, v)
        self.interp.invoke()
        self.values = [self.interp.get_tensor(o) for _, o, _ in self.states]
        return self.interp.get_tensor(self.probs)


class ORTStep:
    """The step graph on the ONNX Runtime session of the bundle's runner (one thread),
    called without the runner's per-call input checks."""

    def __init__(self, path: Path, inputs: list[dict]):
        from export.verification.runtime import ORTRunner

        self.session = ORTRunner(path, inputs).session
        self.state_names = [i.name for i in self.session.get_inputs() if i.name != "frame"]
        self.widths = {i.name: i.shape[-1] for i in self.session.get_inputs()}
        self.outputs = ["probs", *(f"{n}_next" for n in self.state_names)]
        self.reset()

    def reset(self):
        self.state = {n: np.zeros((1, self.widths[n]), np.float32) for n in self.state_names}

    def __call__(self, frame):
        probs, *state = self.session.run(self.outputs, {"frame": frame[None], **self.state})
        self.state = dict(zip(self.state_names, state, strict=True))
        return probs


def run(name: str = "kws_lstm", weights="DEFAULT", repeats: int = 20, windows: int = 4,
        precisions=PRECISIONS, bundle: Path | None = None) -> dict:
    """Times ``name``'s step graph; exports it first, unless ``bundle`` is an exported
    bundle of it already (``weights`` and ``precisions`` are then the bundle's)."""
    with tempfile.TemporaryDirectory() as tmp:
        if bundle is None:
            from export import export_model

            bundle = Path(tmp) / name
            export_model(name, bundle, weights=weights, precisions=list(precisions))
        return _run(name, Path(bundle), repeats, windows)


def _run(name: str, out: Path, repeats: int, windows: int) -> dict:
    from export.verification.runtime import load_bundle
    from zoo import datasets
    from zoo._keras import tf
    from zoo.registry import get_spec

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        keras_threads = "1"
    except RuntimeError:  # TensorFlow started before (a test session): its pool stays
        keras_threads = "TensorFlow's default"
    spec = get_spec(name)
    test = datasets.load(spec.data.dataset, spec.data.test)
    frames = np.asarray(test.x[:windows], np.float32)  # windows of frames
    window = test.x[0][None].astype(np.float32)
    rows = []
    bundle = load_bundle(out)
    manifest = json.loads((out / "manifest.json").read_text())
    precisions = sorted({a["precision"] for a in manifest["artifacts"]},
                        key=lambda p: (p != "fp32", p))
    keras_step = bundle.runners("keras", "fp32")["step"]
    states = [n for n in keras_step.input_names if n != "frame"]
    widths = {n: int(keras_step.model.get_layer(n).output.shape[-1]) for n in states}
    state = {}

    def keras_reset():
        nonlocal state
        state = {n: np.zeros((1, w), np.float32) for n, w in widths.items()}

    def keras_call(frame):
        nonlocal state
        res = keras_step({"frame": frame[None], **state})
        state = {n: res[f"{n}_next"] for n in states}
        return res["probs"]

    keras_classifier = bundle.runners("keras", "fp32")["classifier"]
    keras_reset()
    reference = per_call_us(keras_call, frames, max(2, repeats // 5), keras_reset)
    rows.append({"backend": "keras", "precision": "fp32", "step": reference,
                 "window_us": per_call_us(lambda w: keras_classifier({"sequence": w}),
                                          window[None, None], repeats)["median_us"]})
    for precision in precisions:
        for backend, cls, fmt in (("litert", LiteRTStep, "tflite"),
                                  ("onnx", ORTStep, "onnx")):
            art = next((a for a in manifest["artifacts"] if a["graph"] == "step"
                        and a["format"] == fmt and a["precision"] == precision), None)
            if art is None:  # float16 is a TFLite precision
                continue
            step = cls(out / art["file"], next(g["inputs"] for g in manifest["graphs"]
                                               if g["name"] == "step"))
            timing = per_call_us(step, frames, repeats, step.reset)
            classifier = bundle.runners(backend, precision)["classifier"]
            rows.append({
                "backend": backend, "precision": precision, "step": timing,
                "step_kb": art["size"] / 1024,
                "window_us": per_call_us(lambda w, c=classifier: c({"sequence": w}),
                                         window[None, None], repeats)["median_us"],
                "vs_keras": reference["median_us"] / timing["median_us"],
            })
    units = get_spec(name).config()["units"]
    return {"model": name, "units": list(units),
            "frames_timed": int(frames.shape[0] * frames.shape[1]),
            "keras_threads": keras_threads,
            "window_frames": int(window.shape[1]), "goal_us": GOAL_US, "rows": rows}


def markdown(results: dict) -> str:
    r0 = results["result"]
    lines = [f"Measured {results['date']} on {results['machine']}, one thread, batch 1. "
             f"`{r0['model']}` (LSTM units {r0['units']}): the step graph called once per "
             f"10 ms frame with the state fed back, over {r0['frames_timed']} real held-out "
             f"frames; median of passes. Goal: <= {r0['goal_us']:g} us per step.",
             "", "| backend | precision | us/step (median) | p90 | x Keras | step KB | "
             f"whole window ({r0['window_frames']} frames) us | 98 steps us |",
             "|---|---|---|---|---|---|---|---|"]
    for r in r0["rows"]:
        med = r["step"]["median_us"]
        lines.append(f"| {r['backend']} | {r['precision']} | {med:.1f} | "
                     f"{r['step']['p90_us']:.1f} | {r.get('vs_keras', 1.0):.1f} | "
                     f"{r.get('step_kb', float('nan')):.1f} | {r['window_us']:.0f} | "
                     f"{98 * med:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.streaming", description=__doc__)
    p.add_argument("--model", default="kws_lstm")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.streaming", argv),
               "result": run(args.model, repeats=args.repeats)}
    save(results, markdown(results), args.out, "streaming")
    return 0


if __name__ == "__main__":
    sys.exit(main())
