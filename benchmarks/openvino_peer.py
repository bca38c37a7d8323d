"""OpenVINO beside ONNX Runtime: ``python -m benchmarks.openvino_peer``.

A peer runtime for the benchmark only (not a backend of lstm-zoo): OpenVINO's CPU plugin
reads the bundle's verified ONNX fp32 artifacts and runs them two ways:

- ``openvino-static``: the model reshaped to each feed's shapes and compiled for them
  (one compiled model per distinct set of shapes, made on first use and kept: a
  decoder's steps share one, a variable-length input has one per length met);
- ``openvino-dynamic``: the model compiled once as exported, the time axis (and batch)
  left dynamic.

Both at one inference thread and one stream (``INFERENCE_NUM_THREADS=1``,
``NUM_STREAMS=1``, ``PERFORMANCE_HINT=LATENCY``). Per shipped model: export at fp32,
then each runtime's max |diff| from Keras on every graph's feeds of the benchmark's test
samples (the feeds the Keras run of the task gives, so a decoder's steps too), then ORT
fp32, the PyTorch peer through ONNX Runtime (where there is one) and both OpenVINO
configs timed interleaved in one process at 1 thread (:func:`benchmarks.measure.
interleaved`: rounds, blocks of whole passes over the same samples, shuffled order). A
config that cannot load is left out of the rounds and listed with the reason.

Writes benchmarks/results/openvino.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.run import RESULTS, SAMPLES, save, stamp

MODES = ("static", "dynamic")
BACKENDS = tuple(f"openvino-{m}" for m in MODES)
# OpenVINO's CPU properties (ov::inference_num_threads, ov::num_streams,
# ov::hint::performance_mode, ov::hint::inference_precision): one thread, one stream, as
# the ORT runner is set, and fp32 arithmetic. Its default precision on a CPU with bf16
# instructions is bf16 (read back as INFERENCE_PRECISION_HINT): bilstm_activity_tiny's
# fp32 artifact then differed from Keras by 2.2e-4 against 4.5e-8 with f32 (measured).
PROPERTIES = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}


class OpenVINOGraph:
    """A bundle's ONNX graph on OpenVINO's CPU plugin, with the Runner interface.

    ``static``: reshaped to the feed's shapes and compiled per distinct shapes (cached);
    otherwise compiled once with the exported (dynamic) shapes."""

    def __init__(self, path: str | Path, inputs: list[dict], threads: int = 1,
                 static: bool = False):
        import openvino as ov

        from export.verification.runtime import FeedCheck

        self.backend = "openvino-static" if static else "openvino-dynamic"
        self.path, self.inputs, self.static = Path(path), inputs, static
        self.core = ov.Core()
        self.properties = {**PROPERTIES, "INFERENCE_NUM_THREADS": threads}
        self._model = self.core.read_model(str(self.path))
        # the ONNX graph's names: a port's get_any_name() may give another of its names
        # (an input came back as "bilstm_activity/normalize/sub:0", not "sequence")
        self.input_names = tuple(i["name"] for i in inputs)
        self.output_names = _onnx_outputs(self.path)
        if len(self.output_names) != len(self._model.outputs):
            raise ValueError(f"OpenVINO read {len(self._model.outputs)} outputs from "
                             f"{self.path}; the ONNX graph has {len(self.output_names)}")
        self._check = FeedCheck(inputs, str(self.path))
        self._compiled: dict[tuple, tuple] = {}
        if not static:
            self._compiled[()] = self._compile(self._model)

    def _compile(self, model):
        compiled = self.core.compile_model(model, "CPU", self.properties)
        return compiled.create_infer_request(), list(compiled.outputs)

    def _request(self, feeds: dict):
        if not self.static:
            return self._compiled[()]
        key = tuple(feeds[n].shape for n in self.input_names)
        if key not in self._compiled:
            model = self.core.read_model(str(self.path))
            model.reshape({n: list(feeds[n].shape) for n in self.input_names})
            self._compiled[key] = self._compile(model)
        return self._compiled[key]

    def __call__(self, feeds):
        feeds = self._check(feeds)
        request, outputs = self._request(feeds)
        result = request.infer(feeds)
        # copied: the request's output tensors are overwritten by its next call
        return {n: np.array(result[o]) for n, o in zip(self.output_names, outputs, strict=True)}


def _onnx_outputs(path: Path) -> tuple[str, ...]:
    import onnx

    return tuple(o.name for o in onnx.load(str(path), load_external_data=False).graph.output)


def graphs(bundle, backend: str, threads: int = 1) -> dict:
    """``{graph: OpenVINOGraph}`` over the bundle's ONNX fp32 artifacts."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown OpenVINO config {backend!r}; expected one of {BACKENDS}")
    found = {a["graph"]: a for a in bundle.artifacts
             if a["format"] == "onnx" and a["precision"] == "fp32"}
    if not found:
        raise ValueError(f"{bundle.path} has no ONNX fp32 artifacts")
    return {g: OpenVINOGraph(bundle.path / a["file"], bundle.graph_inputs(g), threads,
                             static=backend == "openvino-static")
            for g, a in found.items()}


def keras_feeds(bundle, inputs) -> dict[str, list[tuple[dict, dict]]]:
    """Every graph's feeds in the Keras run of the task over ``inputs``, with Keras'
    outputs: ``{graph: [(feed, outputs), ...]}``."""
    keras = bundle.runners("keras")
    seen: dict[str, list] = {g: [] for g in keras}

    class Recording:
        def __init__(self, name):
            self.name = name

        def __getattr__(self, attribute):  # the runner's inputs, names, backend
            return getattr(keras[self.name], attribute)

        def __call__(self, feed):
            out = keras[self.name](feed)
            seen[self.name].append(({k: np.array(v) for k, v in feed.items()},
                                    {k: np.array(v) for k, v in out.items()}))
            return out

    bundle.task.predict({g: Recording(g) for g in keras}, inputs, bundle.meta)
    return seen


def max_abs_vs_keras(runners: dict, recorded: dict) -> float:
    """The largest |difference| of any output of any recorded feed from Keras'."""
    worst = 0.0
    for graph, pairs in recorded.items():
        for feed, want in pairs:
            got = runners[graph](feed)
            for name, value in want.items():
                diff = np.abs(np.asarray(got[name], np.float64) - np.asarray(value, np.float64))
                worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst


def run_model(name: str, work: Path, budget: float = 20.0, samples: int = SAMPLES) -> dict:
    """Exports shipped model ``name`` at fp32 into ``work`` and measures it
    (:func:`measure_bundle`)."""
    from export import export_model

    work.mkdir(parents=True, exist_ok=True)
    print(f"[openvino] exporting {name}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    export_model(name, work / "bundle", precisions="fp32")
    export_seconds = time.perf_counter() - start
    return {"model": name, "export_seconds": export_seconds,
            **measure_bundle(work / "bundle", work, budget, samples)}


def measure_bundle(bundle_dir: Path, work: Path, budget: float = 20.0, samples: int = SAMPLES,
                   torch: bool = True) -> dict:
    """Every config's max |diff| from Keras on the bundle's ONNX fp32 artifacts, then the
    configs that loaded timed interleaved at 1 thread; ``torch``: with the PyTorch peer
    where its family has one (and torch is installed)."""
    from benchmarks import torch_peer
    from benchmarks.measure import sample_inputs
    from benchmarks.run import _has_torch, measure_interleaved
    from export import load_bundle

    bundle = load_bundle(bundle_dir)
    name = bundle.model_name
    inputs = sample_inputs(bundle.manifest, samples)
    recorded = keras_feeds(bundle, inputs)
    configs = ["onnx", "openvino-static", "openvino-dynamic"]
    if torch and bundle.manifest["family"] in torch_peer.PEER_FAMILIES and _has_torch():
        torch_peer.save_inputs(bundle, work)
        configs.insert(1, "torch-onnx")
    rows, failed = {}, {}
    for backend in configs:
        start = time.perf_counter()
        try:
            if backend == "onnx":
                runners = bundle.runners("onnx", "fp32")
            elif backend == "torch-onnx":
                runners = torch_peer.graphs(bundle, backend, 1, work)
            else:
                runners = graphs(bundle, backend)
            diff = max_abs_vs_keras(runners, recorded)
        except Exception as e:  # a runtime that cannot load or run it: listed, with why
            failed[backend] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
            print(f"[openvino] {name} {backend}: {failed[backend]}", file=sys.stderr,
                  flush=True)
            continue
        rows[backend] = {"max_abs_vs_keras": diff,
                         "load_and_diff_seconds": time.perf_counter() - start}
    print(f"[openvino] {name} interleaved, 1 thread", file=sys.stderr, flush=True)
    together = measure_interleaved([(b, "fp32", bundle_dir) for b in rows], 1, work, budget) \
        if "onnx" in rows else {"error": "ONNX Runtime did not load the artifacts"}
    return {"family": bundle.manifest["family"], "task": bundle.manifest["task"],
            "feeds": {g: len(p) for g, p in recorded.items()},
            "samples": len(inputs), "rows": rows, "failed": failed, "interleaved": together}


def _latency(m: dict, backend: str) -> str:
    v = m["interleaved"].get("median_us", {}).get(f"{backend}/fp32")
    return "" if v is None else f"{v:,.0f}"


def _ratio(m: dict, backend: str) -> str:
    r = m["interleaved"].get("ratios", {}).get("onnx/fp32", {}).get(f"{backend}/fp32")
    return "" if r is None else f"{r['median']:.1f} ({r['q25']:.1f}–{r['q75']:.1f})"


def _diff(m: dict, backend: str) -> str:
    if backend in m["failed"]:
        return "cannot load"
    r = m["rows"].get(backend)
    return "—" if r is None else f"{r['max_abs_vs_keras']:.1e}"


def markdown(results: dict) -> str:
    lines = [f"Measured {results['date']} on {results['machine']} (OpenVINO "
             f"{results['openvino']}, ONNX Runtime {results['onnxruntime']}): "
             f"`{results['command']}`. Each model's ONNX fp32 artifacts (the verified "
             "ones) on ONNX Runtime and on OpenVINO's CPU plugin, static: reshaped to each "
             "feed's shapes and compiled per distinct shape (cached; a decoder's steps share "
             "one); dynamic: compiled once with the time axis left dynamic. One inference "
             "thread and one stream each (`INFERENCE_NUM_THREADS=1`, `NUM_STREAMS=1`, "
             "`PERFORMANCE_HINT=LATENCY`, `INFERENCE_PRECISION_HINT=f32`: OpenVINO's default "
             "on a CPU with bf16 instructions is bf16; ORT intra-op 1), the PyTorch peer through "
             "torch.onnx.export on ORT where there is one. Latency: µs per test sample end "
             "to end as the task runs it, timed interleaved in one process (rounds, each "
             "config a block of whole passes over the same samples, in a shuffled order); "
             "x ORT: median of the per-round ratios to ORT fp32 (quartiles). max |diff|: "
             "the largest difference of any output from Keras on every graph's feeds of the "
             "Keras run over the same samples.", "",
             "| model | ORT µs | PyTorch→ORT µs | OpenVINO static µs | x ORT | OpenVINO "
             "dynamic µs | x ORT | max\\|diff\\| ORT | PyTorch→ORT | OV static | OV dynamic |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for m in results["models"]:
        if "error" in m:
            lines.append(f"| {m['model']} | not measured: {m['error']} |||||||||||")
            continue
        together = m["interleaved"]
        lines.append(f"| {m['model']} | {_latency(m, 'onnx')} | {_latency(m, 'torch-onnx')} | "
                     f"{_latency(m, 'openvino-static')} | {_ratio(m, 'openvino-static')} | "
                     f"{_latency(m, 'openvino-dynamic')} | {_ratio(m, 'openvino-dynamic')} | "
                     + " | ".join(_diff(m, b) for b in ("onnx", "torch-onnx", *BACKENDS))
                     + " |")
        notes += [f"- {m['model']}, {b}: {why}" for b, why in m["failed"].items()]
        if "measured" in m:
            notes.append(f"- {m['model']}: measured {m['measured']['date']} "
                         f"(`{m['measured']['command']}`)")
        if together.get("error"):
            notes.append(f"- {m['model']}: the interleaved measurement failed: "
                         f"{together['error']}")
    lines += ["", "— : no PyTorch peer for the family (peephole LSTM, ConvLSTM)."]
    if notes:
        lines += ["", "Not loaded, not measured, or measured in a later run:", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from importlib.metadata import version

    from zoo import list_models

    p = argparse.ArgumentParser(prog="python -m benchmarks.openvino_peer",
                                description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(list_models(pretrained=True)))
    p.add_argument("--budget", type=float, default=20.0, help="seconds of rounds per model")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true",
                   help="only re-render <out>/openvino.md from <out>/openvino.json")
    p.add_argument("--update", action="store_true",
                   help="replace only these models' entries of <out>/openvino.json (each "
                        "entry keeps the date and command it was measured with)")
    args = p.parse_args(argv)
    if args.render or args.update:
        import json

        results = json.loads((args.out / "openvino.json").read_text())
        if args.render:
            save(results, markdown(results), args.out, "openvino")
            return 0
    run = {**stamp("benchmarks.openvino_peer", argv), "openvino": version("openvino"),
           "onnxruntime": version("onnxruntime")}
    if not args.update:
        results = {**run, "models": []}
    with tempfile.TemporaryDirectory(prefix="lstm-zoo-openvino-") as tmp:
        for name in [m for m in args.models.split(",") if m]:
            try:
                entry = run_model(name, Path(tmp) / name, args.budget)
            except Exception as e:  # one model's failure is reported, the run goes on
                print(f"[openvino] {name} failed: {type(e).__name__}: {e}", file=sys.stderr,
                      flush=True)
                entry = {"model": name, "error": f"{type(e).__name__}: {e}"}
            if args.update:
                entry["measured"] = {k: run[k] for k in ("date", "command")}
                results["models"] = [entry if m["model"] == name else m
                                     for m in results["models"]]
                if not any(m["model"] == name for m in results["models"]):
                    results["models"].append(entry)
            else:
                results["models"].append(entry)
    save(results, markdown(results), args.out, "openvino")
    return 0


if __name__ == "__main__":
    sys.exit(main())
