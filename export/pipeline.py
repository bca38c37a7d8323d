"""Model -> bundle: convert each graph to each format and precision, check, verify.

A bundle directory holds ``<precision>/<graph>.<tflite|onnx>`` per graph, the Keras
weights it was exported from (``reference.weights.h5``), ``manifest.json`` (tool
versions, sha256 and size per file, op lists, whether every recurrent layer became a
fused op) and ``parity.json``. Everything is written into a temporary sibling
directory and renamed into place at the end, so an interrupted or failed export leaves
no bundle that looks complete; a bundle whose parity fails is renamed to
``<out>.failed`` for inspection instead.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export import onnx as onnx_export
from export import tflite as tflite_export
from export.graphs import input_infos, output_infos, recurrent_directions
from export.progress import Progress, Silent
from export.runtime import LiteRTRunner, ORTRunner
from export.verify import MIN_TENSOR_SAMPLES, Reference, check_backend
from zoo import datasets
from zoo.errors import ExportError, ParityError, UnsupportedError
from zoo.graphs import graph_models
from zoo.registry import get_spec, jsonable_config
from zoo.tasks import get_task
from zoo.weights import save_weights_atomic, sha256_of

FORMATS = ("tflite", "onnx")
PRECISIONS = ("fp32", "dynamic")
CONVERTERS = {"tflite": tflite_export.convert, "onnx": onnx_export.convert}
RUNNERS = {"tflite": ("litert", LiteRTRunner), "onnx": ("onnx", ORTRunner)}
TOOLS = ("tensorflow", "tf-keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert",
         "tensorflow-model-optimization", "numpy", "lstm-zoo")


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def parse_choices(value: str | Sequence[str], valid: Sequence[str], what: str) -> tuple[str, ...]:
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    items = [v for v in items if v]
    bad = [v for v in items if v not in valid]
    if bad or not items:
        raise UnsupportedError(f"unknown {what} {bad or items}; expected a comma-separated "
                               f"subset of {list(valid)}")
    return tuple(dict.fromkeys(items))


def check_out_dir(out: Path) -> None:
    """Refuses an existing output, or one whose nearest existing ancestor is not a
    writable directory (missing parents are created once everything else checked out)."""
    if out.exists():
        raise ExportError(f"output directory {out} already exists; choose a new path or "
                          "remove it")
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ExportError(f"cannot create {out}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write into {ancestor} (permission denied)")


def fusion_report(fmt: str, path: Path, expected: dict[str, int], recurrent: str) -> dict:
    """Whether every recurrent direction became a fused op and nothing became a loop."""
    if fmt == "tflite":
        ops = tflite_export.op_counts(path)
        fused = {"LSTM": 0, "GRU": 0, "other": 0}
        for op, (kind, n) in tflite_export.FUSED_OPS.items():
            fused[kind] += n * ops.get(op, 0)
        loops = {op: ops[op] for op in tflite_export.LOOP_OPS if op in ops}
    else:
        ops = onnx_export.op_counts(path)
        fused = onnx_export.recurrent_directions(path)
        loops = {op: ops[op] for op in onnx_export.LOOP_OPS if op in ops}
    if recurrent == "step":
        # A single cell step: the recurrence is driven by the host, so the graph must
        # hold neither a loop nor a sequence op.
        ok = not loops and not any(fused.values())
    else:
        ok = not loops and all(fused[k] == expected[k] for k in expected)
    return {"ops": ops, "expected_directions": expected, "fused_directions": fused,
            "loops": loops, "all_fused": ok}


def export_model(
    name: str,
    out: str | Path,
    *,
    weights: str | Path | None = "DEFAULT",
    formats: str | Sequence[str] | None = None,
    precisions: str | Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    model=None,
    progress: Progress | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Exports a registered model to a verified bundle directory.

    Args:
        name: registered model name.
        out: bundle directory to create (must not exist).
        weights: as in :func:`zoo.create_model` (``None``: random initialisation).
        formats: subset of ``("tflite", "onnx")`` (default: all the spec supports).
        precisions: subset of ``("fp32", "dynamic")`` (default: all the spec supports).
        overrides: builder keyword arguments.
        model: an already built (e.g. fine-tuned) Keras model to export instead; pass the
            overrides that build its architecture.
        progress: reports stages and counts (default: silent).
        limit: verify on at most this many test samples (tests; default all).

    Returns:
        The parity report (also written to ``parity.json``).

    Raises:
        ParityError: parity failed (the bundle is kept at ``<out>.failed``).
    """
    from zoo.registry import build_model

    spec = get_spec(name)
    fmts = parse_choices(spec.formats if formats is None else formats, FORMATS, "format(s)")
    precs = parse_choices(spec.precisions if precisions is None else precisions, PRECISIONS,
                          "precision(s)")
    for wanted, supported, what in ((fmts, spec.formats, "format"),
                                    (precs, spec.precisions, "precision")):
        if set(wanted) - set(supported):
            raise UnsupportedError(f"{name} does not support {what} "
                                   f"{sorted(set(wanted) - set(supported))}; it supports "
                                   f"{list(supported)}")
    out = Path(out)
    check_out_dir(out)
    progress = progress or Silent()
    say = progress.say
    overrides = dict(overrides or {})
    if model is None:
        say(f"building {name} (weights={weights})")
        model, config = build_model(name, weights, **overrides)
    else:
        # A model built elsewhere (e.g. fine-tuned): ``overrides`` must describe its
        # architecture, so that `lstm-zoo verify` can rebuild it from the bundle.
        weights = "in-memory model"
        config = spec.config(**overrides)
    task = get_task(spec.task)
    test, extra = _evaluation_data(spec, limit, progress)
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.absolute().parent))
    try:
        graphs = graph_models(spec, model)
        ref_file = tmp / "reference.weights.h5"
        save_weights_atomic(model, ref_file)
        manifest: dict[str, Any] = {
            "format_version": 1,
            "model": name,
            "family": spec.family,
            "task": spec.task,
            "meta": dict(spec.meta),
            "data": {"dataset": spec.data.dataset, "test": spec.data.test,
                     "calibration": spec.data.calibration, "license": spec.data.license},
            "reference": {"file": ref_file.name, "sha256": sha256_of(ref_file),
                          "size": ref_file.stat().st_size, "config": jsonable_config(config),
                          "weights": str(weights)},
            "graphs": [{"name": g.name,
                        "inputs": [i.to_json() for i in input_infos(graphs[g.name])],
                        "outputs": [o.to_json() for o in output_infos(graphs[g.name])],
                        "recurrent": g.recurrent} for g in spec.graphs],
            "artifacts": [],
            "tools": tool_versions(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        # Convert first: a conversion that fails costs no verification time.
        for precision in precs:
            for fmt in fmts:
                for g in spec.graphs:
                    say(f"converting {g.name} -> {fmt} ({precision})")
                    data = CONVERTERS[fmt](graphs[g.name], precision)
                    rel = Path(precision) / f"{g.name}.{fmt}"
                    (tmp / precision).mkdir(exist_ok=True)
                    (tmp / rel).write_bytes(data)
                    fusion = fusion_report(fmt, tmp / rel, recurrent_directions(graphs[g.name]),
                                           g.recurrent)
                    manifest["artifacts"].append({
                        "graph": g.name, "format": fmt, "precision": precision,
                        "file": str(rel), "size": len(data), "sha256": sha256_of(tmp / rel),
                        **fusion})
        reference = _reference(spec, task, graphs, test, extra, progress,
                               "Keras reference on the test split")
        parity: dict[str, Any] = {
            "model": name,
            "test_split": spec.data.test,
            "test_samples": len(reference.test_inputs),
            "tensor_samples": reference.tensor_samples,
            "tensor_feeds": {n: len(f) for n, f in reference.feeds.items()},
            "reference": {"backend": "keras", "metrics": reference.metrics},
        }
        results, failures = verify_artifacts(spec, task, reference, test, tmp, manifest,
                                             progress)
        parity["results"] = results
        parity["passed"] = not failures
        parity["failures"] = failures
        _write_json(tmp / "parity.json", parity)
        _write_json(tmp / "manifest.json", manifest)  # last: its presence marks completeness
        if failures:
            failed = out.with_name(out.name + ".failed")
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(tmp, failed)
            raise ParityError(f"{name}: parity failed ({'; '.join(failures)}); the bundle is "
                              f"kept at {failed} for inspection")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return parity


def verify_artifacts(spec, task, reference, test, root: Path, manifest: dict,
                     progress: Progress):
    """Runs every (format, precision) group of artifacts against the Keras reference.

    Returns the per-group results and a list of failure messages (fusion and parity).
    """
    failures = [f"{a['file']}: recurrent layers not fused (expected "
                f"{a['expected_directions']}, got {a['fused_directions']}, loops {a['loops']})"
                for a in manifest["artifacts"] if not a["all_fused"]]
    groups: dict[tuple[str, str], list[dict]] = {}
    for a in manifest["artifacts"]:
        groups.setdefault((a["format"], a["precision"]), []).append(a)
    results = []
    for (fmt, precision), artifacts in groups.items():
        backend, runner_cls = RUNNERS[fmt]
        runners = {a["graph"]: runner_cls(root / a["file"], _inputs(manifest, a["graph"]))
                   for a in artifacts}
        count = progress.counter(f"verifying {fmt} ({precision}) on {backend}",
                                 len(reference.test_inputs))
        result = check_backend(spec, task, reference, test, runners, precision, count)
        results.append({"format": fmt, "precision": precision, "backend": backend,
                        "size_bytes": sum(a["size"] for a in artifacts), **result})
        failures += [f"{fmt}/{precision}: {c['check']} = {c['value']:.3g} (limit {c['limit']})"
                     for c in result["checks"] if not c["passed"]]
    return results, failures


def verify_bundle(path: str | Path, *, progress: Progress | None = None,
                  limit: int | None = None) -> dict:
    """Re-runs a bundle's checks from disk: files, fusion (from the artifacts), parity.

    Raises:
        ArtifactError: a listed file is missing, truncated, corrupt, or does not load.
    """
    from export.runtime import Bundle

    progress = progress or Silent()
    bundle = Bundle(path)
    spec = get_spec(bundle.model_name)
    task = bundle.task
    manifest = bundle.manifest
    for a in manifest["artifacts"]:
        graph = next(g for g in manifest["graphs"] if g["name"] == a["graph"])
        a.update(fusion_report(a["format"], bundle.path / a["file"],
                               a["expected_directions"], graph["recurrent"]))
    test, extra = _evaluation_data(spec, limit, progress)
    reference = _reference(spec, task, graph_models(spec, bundle.keras_model()), test, extra,
                           progress, "Keras reference (weights from the bundle)")
    results, failures = verify_artifacts(spec, task, reference, test, bundle.path, manifest,
                                         progress)
    return {"model": spec.name, "test_samples": len(reference.test_inputs),
            "reference": {"backend": "keras", "metrics": reference.metrics},
            "results": results, "passed": not failures, "failures": failures}


def _inputs(manifest, graph) -> list[dict]:
    return next(g["inputs"] for g in manifest["graphs"] if g["name"] == graph)


def _evaluation_data(spec, limit: int | None, progress: Progress):
    """The test split (first ``limit`` samples) and the calibration split."""
    progress.say(f"loading {spec.data.dataset} ({spec.data.test} split)")
    test = datasets.load(spec.data.dataset, spec.data.test)
    extra = datasets.load(spec.data.dataset, spec.data.calibration)
    return (_head(test, limit) if limit else test), extra


def _reference(spec, task, graphs, test, extra, progress: Progress, label: str) -> Reference:
    return Reference(spec, graphs, task, test,
                     task.tensor_inputs(test, extra, MIN_TENSOR_SAMPLES),
                     progress.counter(label, len(task.inputs(test))))


def _head(data, n):
    from dataclasses import fields, replace

    return replace(data, **{f.name: getattr(data, f.name)[:n] for f in fields(data)
                            if f.name != "classes"})


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
