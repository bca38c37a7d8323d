"""Model -> bundle: convert each graph to each format and precision, check, verify.

A bundle directory holds ``<precision>/<graph>.<tflite|onnx>`` per graph, the Keras
weights it was exported from (``reference.weights.h5``), ``manifest.json`` (tool
versions, sha256 and size per file, op lists, whether every recurrent layer became a
fused op) and ``parity.json``. Everything is written into a hidden sibling directory
and renamed into place at the end (:mod:`export.output`: one export per path, SIGTERM
and Ctrl-C clean up), so an interrupted or failed export leaves no bundle that looks
complete; a bundle whose parity fails is renamed to ``<out>.failed`` for inspection
instead.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from export.compression import quantize
from export.compression.quantize import gzip_size
from export.config import ExportConfig
from export.conversion import onnx as onnx_export
from export.conversion import tflite as tflite_export
from export.conversion.fusion import fusion_report
from export.conversion.graphs import input_infos, output_infos, recurrent_directions
from export.conversion.unroll import faster, unrolled_twin
from export.output import OutDir, writing
from export.progress import Progress, Silent
from export.verification.manifest import FORMAT_VERSION, tool_versions
from export.verification.runtime import LiteRTRunner, ORTRunner
from export.verification.verify import MIN_TENSOR_SAMPLES, Reference, check_backend
from zoo import datasets
from zoo.arguments import check_count
from zoo.errors import ParityError, UnsupportedError
from zoo.graphs import graph_models
from zoo.registry import Tolerance, get_spec, jsonable_config
from zoo.tasks import get_task
from zoo.weights import save_weights_atomic, sha256_of

PRECISIONS = quantize.PRECISIONS
CONVERTERS = {"tflite": tflite_export.convert, "onnx": onnx_export.convert}
SPARSITY = {"tflite": tflite_export.weight_sparsity, "onnx": onnx_export.weight_sparsity}
RUNNERS = {"tflite": ("litert", LiteRTRunner), "onnx": ("onnx", ORTRunner)}
def export_model(
    name: str,
    out: str | Path,
    config: ExportConfig | None = None,
    *,
    weights: str | Path | None = "DEFAULT",
    overrides: dict[str, Any] | None = None,
    model=None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Exports a registered model to a verified bundle directory.

    Args:
        name: registered model name.
        out: bundle directory to create (must not exist).
        config: what to produce (:class:`export.config.ExportConfig`: formats,
            precisions or ``"auto"`` with ``max_drop``, calibration samples, compression,
            ``limit``); ``options`` are its fields as keywords, applied on top.
        weights: as in :func:`zoo.create_model` (``None``: random initialisation).
        overrides: builder keyword arguments.
        model: an already built (e.g. fine-tuned) Keras model to export instead; pass the
            overrides that build its architecture.
        progress: reports stages and counts (default: silent).

    Returns:
        The parity report (also written to ``parity.json``).

    Raises:
        UnsupportedError: a format or precision the model or format cannot take.
        ExportError: ``out`` exists, is a symlink, lies under /proc or /sys, cannot be
            written, or another export is writing it (:class:`export.output.OutDir`;
            before the model is built).
        DataError, ShapeError: calibration samples too few or of the wrong shape.
        ParityError: parity failed (the bundle is kept at ``<out>.failed``).

    Example:
        >>> from export import export_model  # doctest: +SKIP
        >>> report = export_model("bilstm_activity", "out/b", precisions="auto",
        ...                       max_drop=0.005)  # doctest: +SKIP
        >>> report["auto"]["tflite"]["chosen"]  # doctest: +SKIP
        'int8'
    """
    from zoo.registry import build_model

    cfg = ExportConfig.of(config, **options)
    spec = get_spec(name)
    fmts, precs = cfg.for_spec(spec)
    with OutDir(out) as claim:  # checked and claimed before any work
        progress = progress or Silent()
        overrides = dict(overrides or {})
        if model is None:
            progress.say(f"building {name} (weights={weights})")
            model, builder_config = build_model(name, weights, **overrides)
        else:
            # A model built elsewhere (e.g. fine-tuned): ``overrides`` must describe its
            # architecture, so that `lstm-zoo verify` can rebuild it from the bundle.
            weights = "in-memory model"
            builder_config = spec.config(**overrides)
        task = get_task(spec.task)
        test, extra = _evaluation_data(spec, cfg.limit, progress)
        compression = None
        if cfg.compressing:
            compression = compress_and_measure(spec, task, model, builder_config, test, cfg,
                                               progress)
            model = compression.pop("model")
            if "structured" in compression:  # the bundle rebuilds the smaller architecture
                builder_config = spec.config(**{**builder_config,
                                                **compression["structured"]["overrides"]})
        reference = {"config": jsonable_config(builder_config), "weights": str(weights)}
        data = {"dataset": spec.data.dataset, "test": spec.data.test,
                "calibration": spec.data.calibration, "license": spec.data.license}
        source = (f"{spec.data.dataset} {spec.data.calibration} split"
                  if cfg.calibration is None else "user samples")
        calibration = (list(cfg.calibration) if cfg.calibration is not None
                       else task.inputs(extra)[:quantize.CALIBRATION_SAMPLES]
                       if any(p in quantize.CALIBRATED for p in precs) else [])
        return run_export(spec, task, model, claim, cfg, fmts, precs, test, extra,
                          calibration=(calibration, source), reference=reference, data=data,
                          compression=compression, progress=progress)


def run_export(spec, task, model, out: OutDir, cfg: ExportConfig, fmts, precs, test, extra, *,
               calibration: tuple, reference: dict, data: dict, compression=None,
               progress: Progress, manifest_extra: dict | None = None, unroll: bool = False,
               attachments: dict[str, bytes] | None = None) -> dict[str, Any]:
    """The stages every export shares, from a built model and its evaluation data: the
    graphs, calibration feeds, conversion, the Keras reference, verification, and the
    bundle written atomically into the claimed output folder ``out`` (``<out>.failed``
    when parity fails).

    ``calibration`` is ``(task inputs, where they come from)``; ``reference`` what the
    manifest records to rebuild the Keras model beside its weights file; ``data`` the
    manifest's data entry; ``unroll``: also convert each graph with a fixed, short time axis
    unrolled, and keep it in TFLite where it runs faster; ``manifest_extra`` keys added to
    the manifest; ``attachments`` files written into the bundle and listed (size, sha256)
    under the manifest's "files".
    """
    say = progress.say
    name, auto, max_drop = spec.name, cfg.auto, cfg.max_drop
    graphs = graph_models(spec, model)
    feeds = None
    if any(p in quantize.CALIBRATED for p in precs):
        samples, source = calibration
        feeds = quantize.calibration_feeds(
            spec, task, graphs, samples,
            progress.counter(f"recording calibration feeds ({source})", len(samples)))
    tmp = out.partial()  # removed by the claim unless published
    manifest = _manifest(spec, model, graphs, tmp, feeds, calibration, reference, data,
                         compression, manifest_extra, attachments)
    if auto:
        manifest["auto"] = {"max_drop": max_drop}
    # Convert first: a conversion that fails costs no verification time.
    converted, refused = _convert_all(spec, graphs, fmts, precs, feeds, tmp, say, auto,
                                      unroll)
    reference = _reference(spec, task, graphs, test, extra, progress,
                           "Keras reference on the test split")
    # values the task calibrates on the reference (an anomaly threshold) go to the
    # bundle's meta, for predict
    manifest["meta"].update({key: reference.metrics[key]
                             for key in task.calibrated_meta})
    parity: dict[str, Any] = {
        "model": name,
        "test_split": data["test"],
        "test_samples": len(reference.test_inputs),
        "tensor_samples": reference.tensor_samples,
        "tensor_feeds": {n: len(f) for n, f in reference.feeds.items()},
        "reference": {"backend": "keras", "metrics": reference.metrics},
    }
    compression_failures = []
    if compression is not None:
        parity["compression"], compression_failures = _compression_check(
            spec, task, compression, reference.metrics)
    results, failures = _verify_converted(spec, task, reference, test, tmp, manifest,
                                          converted, refused, fmts, cfg, progress, parity)
    for d in tmp.iterdir():
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    failures = compression_failures + failures
    parity["results"] = results
    parity["passed"] = not failures
    parity["failures"] = failures
    _write_json(tmp / "parity.json", parity)
    _write_json(tmp / "manifest.json", manifest)  # last: its presence marks completeness
    if failures:
        failed = out.publish(tmp, failed=True)
        raise ParityError(f"{name}: parity failed ({'; '.join(failures)}); the bundle is "
                          f"kept at {failed} for inspection")
    out.publish(tmp)
    return parity


def _verify_converted(spec, task, reference, test, tmp: Path, manifest, converted, refused,
                      fmts, cfg: ExportConfig, progress, parity) -> tuple[list, list]:
    """Verifies the converted artifacts (``auto``: keeps per format the smallest that holds
    its drop, deleting the others, and records the choice in ``parity["auto"]``); sets
    the manifest's artifacts. Returns ``(results, failures)``."""
    if cfg.auto:
        results, failures, parity["auto"] = _choose(
            spec, task, reference, test, tmp, converted, refused, fmts, cfg.max_drop,
            progress)
        for (fmt, precision), artifacts in converted.items():
            if parity["auto"][fmt]["chosen"] != precision:
                for a in artifacts:
                    (tmp / a["file"]).unlink()
                converted[fmt, precision] = []
    else:
        results, failures = verify_artifacts(
            spec, task, reference, test, tmp,
            {**manifest, "artifacts": [a for g in converted.values() for a in g]},
            progress)
    manifest["artifacts"] = [a for group in converted.values() for a in group]
    return results, failures


def _manifest(spec, model, graphs, tmp: Path, feeds, calibration, reference, data,
              compression, manifest_extra, attachments) -> dict[str, Any]:
    """The manifest before conversion, with the reference weights and the attachments
    written into ``tmp``."""
    ref_file = tmp / "reference.weights.h5"
    with writing(ref_file):
        save_weights_atomic(model, ref_file)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": spec.name,
        "family": spec.family,
        "task": spec.task,
        "meta": dict(spec.meta),
        "data": data,
        "reference": {"file": ref_file.name, "sha256": sha256_of(ref_file),
                      "size": ref_file.stat().st_size, **reference},
        "graphs": [{"name": g.name,
                    "inputs": [i.to_json() for i in input_infos(graphs[g.name])],
                    "outputs": [o.to_json() for o in output_infos(graphs[g.name])],
                    "recurrent": g.recurrent,
                    **({"fusion": dict(g.fusion)} if g.fusion else {})}
                   for g in spec.graphs],
        "calibration": None if feeds is None else {
            "source": calibration[1], "samples": len(calibration[0]),
            "feeds": {n: len(f) for n, f in feeds.items()}},
        "compression": compression,
        "artifacts": [],
        "tools": tool_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(manifest_extra or {})
    for file, content in (attachments or {}).items():
        with writing(tmp / file):
            (tmp / file).write_bytes(content)
        manifest.setdefault("files", []).append(
            {"file": file, "size": len(content), "sha256": sha256_of(tmp / file)})
    return manifest


def _convert_all(spec, graphs, fmts, precs, feeds, tmp: Path, say, auto: bool, unroll: bool):
    """Every (format, precision) converted: ``(converted {(fmt, precision): manifest
    entries}, refused {(fmt, precision): why})``; with ``auto`` a refusal is recorded, not
    raised."""
    converted: dict[tuple[str, str], list[dict]] = {}
    refused: dict[tuple[str, str], str] = {}
    twins = {}
    if unroll:  # fixed short time axes: an unrolled twin, kept where it is faster
        twins = {g.name: twin for g in spec.graphs if g.recurrent == "fused"
                 for twin in [unrolled_twin(graphs[g.name])] if twin is not None}
    for precision in precs:
        for fmt in quantize.formats_for(precision, fmts):
            try:
                converted[fmt, precision] = _convert_group(
                    spec, graphs, fmt, precision, feeds, tmp, say, twins)
            except UnsupportedError as e:
                if not auto:
                    raise
                refused[fmt, precision] = str(e)
    return converted, refused


def _convert_group(spec, graphs, fmt, precision, feeds, root: Path, say,
                   unrolled: dict | None = None) -> list[dict]:
    """Converts every graph of the model to one (format, precision); manifest entries.
    ``unrolled``: graph name -> its unrolled twin, converted too for TFLite and kept where
    it runs measurably faster (:mod:`export.conversion.unroll`)."""
    artifacts = []
    for g in spec.graphs:
        say(f"converting {g.name} -> {fmt} ({precision})")
        feed = feeds[g.name] if precision in quantize.CALIBRATED else None
        recurrent, unroll = g.recurrent, None
        twin = (unrolled or {}).get(g.name) if fmt == "tflite" else None
        try:
            data = CONVERTERS[fmt](graphs[g.name], precision, feed)
        except UnsupportedError as e:  # e.g. int8 of a loop; the unrolled twin has none
            if twin is None:
                raise
            data, recurrent = CONVERTERS[fmt](twin, precision, feed), "unrolled"
            unroll = {"chosen": "unrolled", "fused": f"refused: {e}"}
            say(f"unrolled {g.name}: the fused graph cannot be converted ({e})")
        if twin is not None and unroll is None:
            written_out = CONVERTERS[fmt](twin, precision, feed)
            unroll = faster(data, written_out)
            say(f"unrolled {g.name}: {unroll['unrolled_us']:.0f} µs a call against "
                f"{unroll['fused_us']:.0f} µs fused on LiteRT: keeping the "
                f"{unroll['chosen']} one")
            if unroll["chosen"] == "unrolled":
                data, recurrent = written_out, "unrolled"
        rel = Path(precision) / f"{g.name}.{fmt}"
        (root / precision).mkdir(exist_ok=True)
        with writing(root / rel):
            (root / rel).write_bytes(data)
        fusion = fusion_report(fmt, root / rel, recurrent_directions(graphs[g.name]),
                               recurrent, None if recurrent == "unrolled"
                               else (g.fusion or {}).get(fmt))
        artifacts.append({"graph": g.name, "format": fmt, "precision": precision,
                          "file": str(rel), "size": len(data), "sha256": sha256_of(root / rel),
                          "gzip_size": gzip_size(data),
                          "weight_sparsity": SPARSITY[fmt](root / rel), **fusion,
                          **({"unroll": unroll} if unroll else {})})
    return artifacts


def compress_and_measure(spec, task, model, config, test, cfg: ExportConfig, progress, *,
                         train=None, source: str | None = None):
    """Shrinks / prunes / clusters / QAT-trains ``model`` (fine-tuning on its training data:
    ``train``, else the spec's training split; ``source`` names it) and measures the task
    metric of the model before and after, in Keras, on the test split."""
    from export.compression.prune import compress
    from export.verification.verify import REFERENCE_BATCH
    from zoo.graphs import keras_graphs

    inputs = task.inputs(test)
    baseline = task.score(task.predict(keras_graphs(spec, model), inputs, spec.meta,
                                       batch_size=REFERENCE_BATCH), test, spec.meta)
    structured, prune, cluster, qat = cfg.structured, cfg.prune, cfg.cluster, cfg.qat
    what = " + ".join(x for x in (
        structured is not None and f"removing {structured:.0%} of the recurrent units",
        prune is not None and f"pruning to {prune:.0%}",
        cluster is not None and f"{cluster} clusters",
        qat and "quantization-aware training (int8 weights)") if x)
    progress.say(f"{what}: fine-tuning on "
                 f"{source or f'{spec.data.dataset} {spec.data.train}'}")
    compressed, report = compress(spec, model, prune=prune, schedule=cfg.schedule,
                                  cluster=cluster, structured=structured, qat=qat,
                                  config=config,
                                  epochs=cfg.finetune_epochs, limit=cfg.finetune_limit,
                                  data=train, verbose=0 if isinstance(progress, Silent) else 1)
    if source is not None:
        report["fine_tune_data"] = source
    return {**report, "baseline_metrics": baseline, "model": compressed}


def _compression_check(spec, task, compression, metrics):
    """The compressed model's task metric against the uncompressed model's."""
    sign = 1 if task.higher_is_better else -1
    drop = sign * (compression["baseline_metrics"][task.metric] - metrics[task.metric])
    tol = spec.metric_drop["compressed"]
    check = {"check": f"{task.metric} drop from compression", "value": drop,
             "limit": tol.value, "reason": tol.reason, "passed": bool(drop <= tol.value + 1e-12)}
    record = {"baseline_metrics": compression["baseline_metrics"], "metrics": metrics,
              "metric_drop": drop, "checks": [check]}
    failure = [] if check["passed"] else [
        f"compression: {check['check']} = {drop:.3g} (limit {tol.value})"]
    return record, failure


def _choose(spec, task, reference, test, root, converted, refused, fmts, max_drop, progress):
    """``precision="auto"``: per format, verify candidates from the smallest up and keep
    the first within ``max_drop``. Returns (results of the chosen, failures, record)."""
    budget = Tolerance(max_drop, "the metric budget given to precision='auto'")
    results, failures, record = [], [], {}
    for fmt in fmts:
        candidates = sorted(((sum(a["size"] for a in group), precision)
                             for (f, precision), group in converted.items() if f == fmt))
        tried, chosen = [], None
        for size, precision in candidates:
            if chosen is not None:
                tried.append({"precision": precision, "size_bytes": size,
                              "status": "not tried: a smaller artifact was within budget"})
                continue
            result, fails = verify_group(spec, task, reference, test, root,
                                         converted[fmt, precision], progress, budget)
            tried.append({"precision": precision, "size_bytes": size,
                          "metrics": result["metrics"], "metric_drop": result["metric_drop"],
                          "latency_ms": result["latency_ms"],
                          "per_sample_ms": result["per_sample_ms"],
                          "status": "chosen" if not fails else "rejected: " + "; ".join(fails)})
            if not fails:
                chosen = precision
                results.append(result)
        tried += [{"precision": p, "status": f"refused: {why}"}
                  for (f, p), why in refused.items() if f == fmt]
        record[fmt] = {"max_drop": max_drop, "chosen": chosen, "tried": tried}
        if chosen is None:
            failures.append(f"{fmt}/auto: no precision stayed within the budget {max_drop}")
    return results, failures, record


def verify_group(spec, task, reference, test, root: Path, artifacts: list[dict],
                 progress: Progress, metric_drop: Tolerance | None = None):
    """Runs one (format, precision) group of artifacts against the Keras reference.

    Returns its result and a list of failure messages (fusion and parity).
    """
    fmt, precision = artifacts[0]["format"], artifacts[0]["precision"]
    failures = [f"{a['file']}: recurrent layers not fused (expected "
                f"{a['expected_directions']}, got {a['fused_directions']}, loops {a['loops']})"
                for a in artifacts if not a.get("as_expected", a["all_fused"])]
    backend, runner_cls = RUNNERS[fmt]
    runners = {a["graph"]: runner_cls(root / a["file"], _graph_inputs(reference, a))
               for a in artifacts}
    count = progress.counter(f"verifying {fmt} ({precision}) on {backend}",
                             len(reference.test_inputs))
    result = check_backend(spec, task, reference, test, runners, precision, count, metric_drop)
    result = {"format": fmt, "precision": precision, "backend": backend,
              "size_bytes": sum(a["size"] for a in artifacts), **result}
    failures += [f"{fmt}/{precision}: {c['check']} = {c['value']:.3g} (limit {c['limit']})"
                 for c in result["checks"] if not c["passed"]]
    return result, failures


def _groups(manifest: dict) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for a in manifest["artifacts"]:
        groups.setdefault((a["format"], a["precision"]), []).append(a)
    return groups


def _budget(manifest: dict) -> Tolerance | None:
    budget = manifest.get("auto")
    return None if budget is None else Tolerance(
        budget["max_drop"], "the metric budget the bundle's precision was chosen with "
        "(precision='auto')")


def verify_artifacts(spec, task, reference, test, root: Path, manifest: dict,
                     progress: Progress):
    """Runs every (format, precision) group of a manifest's artifacts; results, failures."""
    results, failures = [], []
    for artifacts in _groups(manifest).values():
        result, fails = verify_group(spec, task, reference, test, root, artifacts, progress,
                                     _budget(manifest))
        results.append(result)
        failures += fails
    return results, failures


def verify_on_arch(arch: str, spec, task, reference, test, root: Path, manifest: dict,
                   progress: Progress):
    """Every (format, precision) group of a manifest's artifacts run on ``arch``'s kernels
    under emulation (:mod:`export.verification.arch`) on the feeds the host's run had, and
    held to the limits the host's run is held to; its results (``"arch"`` set), failures
    and the emulated runtimes' versions."""
    from export.verification.arch import Emulation, check_emulated, ensure_root

    groups = _groups(manifest)
    results, failures = [], []
    with Emulation(ensure_root(progress), len(groups)) as emulation:
        planned = []
        for (fmt, precision), artifacts in groups.items():
            backend, runner_cls = RUNNERS[fmt]
            paths = {a["graph"]: root / a["file"] for a in artifacts}
            host = {a["graph"]: runner_cls(paths[a["graph"]], _graph_inputs(reference, a))
                    for a in artifacts}
            planned.append((fmt, precision, backend, artifacts,
                            emulation.runners(fmt, paths, host, spec, task, reference)))
        progress.say(f"running every artifact on {arch} ({len(emulation.sessions)} emulated "
                     "processes)")
        progress.say(f"{emulation.prefetch()} feeds run on {arch}")
        for fmt, precision, backend, artifacts, runners in planned:
            count = progress.counter(f"verifying {fmt} ({precision}) on {backend}, {arch}",
                                     len(reference.test_inputs))
            result = check_emulated(spec, task, reference, test, runners, precision,
                                    _budget(manifest), count)
            results.append({"arch": arch, "format": fmt, "precision": precision,
                            "backend": backend,
                            "size_bytes": sum(a["size"] for a in artifacts), **result})
            failures += [f"{arch} {fmt}/{precision}: {c['check']} = {c['value']:.3g} "
                         f"(limit {c['limit']})" for c in result["checks"] if not c["passed"]]
    return results, failures, emulation.versions


def verify_bundle(path: str | Path, *, progress: Progress | None = None,
                  limit: int | None = None, arch: str | None = None,
                  tensor_samples: int | None = None) -> dict:
    """Re-runs a bundle's checks from disk: files, fusion (from the artifacts), parity.

    With ``arch="aarch64"``, every artifact runs on aarch64 kernels too, under emulation
    (:mod:`export.verification.arch`), on the feeds the host's run had: the report's
    ``arch_results`` (also written to the bundle's ``parity.json``), each with its max
    |diff| from Keras and from the host's run, and the task metric.

    ``tensor_samples`` caps the real inputs of tensor parity (by default the task's: the
    test samples, the calibration split, then random crops up to 200): the aarch64 matrix
    of CI runs each emulated artifact on ``limit`` samples that way
    (tests/test_parity_matrix.py).

    Raises:
        ArgumentError: ``limit`` or ``tensor_samples`` is not a positive int.
        ArtifactError: a listed file is missing, truncated, corrupt, or does not load.
        UnsupportedError: ``arch`` is not one lstm-zoo emulates.
        HostSetupError: what emulating ``arch`` lacks on this machine (qemu, root or
            binfmt_misc or the network for the first build), and how to get it.
    """
    from export.verification.runtime import Bundle

    if limit is not None:
        check_count(limit, "limit", "test samples")
    if tensor_samples is not None:
        check_count(tensor_samples, "tensor_samples", "tensor parity inputs")
    if arch is not None:
        from export.verification.arch import ARCHES, preflight

        if arch not in ARCHES:
            raise UnsupportedError(f"--arch {arch!r}: lstm-zoo verifies on {ARCHES} (the "
                                   "host's own kernels without --arch)")
        preflight()  # before the Keras reference is built: what is missing is said at once
    progress = progress or Silent()
    bundle = Bundle(path)
    model = bundle.keras_model()
    spec = bundle.spec(model)
    task = bundle.task
    manifest = bundle.manifest
    for a in manifest["artifacts"]:
        graph = next(g for g in manifest["graphs"] if g["name"] == a["graph"])
        unrolled = a.get("unroll", {}).get("chosen") == "unrolled"
        a.update(fusion_report(a["format"], bundle.path / a["file"],
                               a["expected_directions"],
                               "unrolled" if unrolled else graph["recurrent"],
                               None if unrolled else graph.get("fusion", {}).get(a["format"])))
    if bundle.is_user_model:
        from export.user.data import SAMPLES_FILE, bundle_samples

        test = extra = bundle_samples(bundle.file(SAMPLES_FILE))
        test = test.head(limit) if limit else test
    else:
        test, extra = _evaluation_data(spec, limit, progress)
    reference = _reference(spec, task, graph_models(spec, model), test, extra,
                           progress, "Keras reference (weights from the bundle)",
                           tensor_samples)
    results, failures = verify_artifacts(spec, task, reference, test, bundle.path, manifest,
                                         progress)
    report = {"model": spec.name, "test_samples": len(reference.test_inputs),
              "reference": {"backend": "keras", "metrics": reference.metrics},
              "results": results}
    if arch is not None:
        rows, fails, versions = verify_on_arch(arch, spec, task, reference, test,
                                               bundle.path, manifest, progress)
        failures += fails
        report.update(arch_results=rows, arch_runtimes={arch: versions})
        from export.verification.arch import record_results

        record_results(bundle.path / "parity.json", arch, rows, versions, progress)
    return {**report, "passed": not failures, "failures": failures}


def _graph_inputs(reference, artifact) -> list[dict]:
    return [i.to_json() for i in input_infos(reference.graph_models[artifact["graph"]])]


def _evaluation_data(spec, limit: int | None, progress: Progress):
    """The test split (first ``limit`` samples) and the calibration split."""
    progress.say(f"loading {spec.data.dataset} ({spec.data.test} split)")
    test = datasets.load(spec.data.dataset, spec.data.test)
    extra = datasets.load(spec.data.dataset, spec.data.calibration)
    return (datasets.first(test, limit) if limit else test), extra


def _reference(spec, task, graphs, test, extra, progress: Progress, label: str,
               tensor_samples: int | None = None) -> Reference:
    tensor = task.tensor_inputs(test, extra, MIN_TENSOR_SAMPLES)
    return Reference(spec, graphs, task, test,
                     tensor if tensor_samples is None else tensor[:tensor_samples],
                     progress.counter(label, len(task.inputs(test))))


def _write_json(path: Path, obj) -> None:
    with writing(path):
        path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
