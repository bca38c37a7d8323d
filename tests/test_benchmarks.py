"""The benchmark harness: peers compute the same function, measurements run, ratios hold."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.measure import child_pids

ROOT = Path(__file__).resolve().parents[1]


def test_running_a_bundle_does_not_import_tensorflow(tiny_bundles):
    bundles, _ = tiny_bundles
    code = (
        "import sys; from export.verification.runtime import load_bundle; "
        f"b = load_bundle({str(bundles['seq2seq_g2p_tiny'])!r}); "
        "b.predict(['abc'], backend='litert'); b.predict(['abc'], backend='onnx'); "
        "print([m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ["bilstm_activity_tiny", "seq2seq_g2p_tiny"])
def test_torch_peer_is_the_same_function(tiny_bundles, tmp_path, name):
    pytest.importorskip("torch")
    from benchmarks import torch_peer
    from export.verification.runtime import load_bundle
    from zoo import datasets, get_spec
    from zoo.tasks import get_task

    bundle = load_bundle(tiny_bundles[0][name])
    torch_peer.save_inputs(bundle, tmp_path)
    spec = get_spec(name)
    inputs = get_task(spec.task).inputs(datasets.load(spec.data.dataset, "test"))[:5]
    reference = bundle.predict(inputs, backend="onnx")
    for backend in ("torch", "torch-onnx"):
        graphs = torch_peer.graphs(bundle, backend, 1, tmp_path)
        got = bundle.task.predict(graphs, inputs, bundle.meta)
        if spec.task == "seq2seq":
            assert got == reference
        else:
            np.testing.assert_allclose(got, reference, atol=1e-5)


def test_measure_subprocess(tiny_bundles, tmp_path):
    from benchmarks.run import measure

    result = measure(tiny_bundles[0]["bilstm_activity_tiny"], "onnx", "fp32", 1, 10, tmp_path)
    assert "error" not in result, result
    assert result["sample"]["runs"] == 10 and result["sample"]["median_us"] > 0
    assert result["graphs"]["classifier"]["median_us"] > 0
    assert result["rss_mb"]["peak"] >= result["rss_mb"]["after_imports"] > 0


def _whole_passes(result, bundle) -> bool:
    """Whether every config's block was whole passes over the benchmark's samples."""
    from benchmarks.measure import sample_inputs
    from benchmarks.run import SAMPLES
    from export.verification.runtime import Bundle

    n = len(sample_inputs(Bundle(bundle, check_files=False).manifest, SAMPLES))
    calls = result["calls_per_block"]
    return set(calls) == set(result["median_us"]) and all(c > 0 and c % n == 0
                                                          for c in calls.values())


def test_interleaved_measurement_times_every_config_in_rounds(tiny_bundles, tmp_path):
    from benchmarks.run import _interleaved_ratios, measure_interleaved

    bundle = tiny_bundles[0]["seq2seq_g2p_tiny"]
    configs = [("litert", "fp32", bundle), ("onnx", "fp32", bundle), ("onnx", "dynamic", bundle)]
    result = measure_interleaved(configs, 1, tmp_path, budget=0.5)
    assert "error" not in result, result
    assert result["rounds"] >= 10  # MIN_ROUNDS, however short the budget
    assert set(result["median_us"]) == {"litert/fp32", "onnx/fp32", "onnx/dynamic"}
    vs = result["ratios"]["onnx/fp32"]
    assert vs["onnx/fp32"] == {"median": 1.0, "q25": 1.0, "q75": 1.0}
    assert all(r["median"] > 0 for r in vs.values()) and set(vs) == set(result["median_us"])
    assert _whole_passes(result, bundle)
    assert set(result["ratios"]) == {"onnx/fp32"}  # no peer: no ratios to it
    entry = _interleaved_ratios(result)
    assert entry["best_artifact"] in result["median_us"]
    assert entry["litert_vs_onnx_fp32"] == vs["litert/fp32"]["median"]
    assert entry["best_vs_keras"] is None and entry["best_vs_torch_onnx"] is None
    assert entry["spread"]["litert_vs_onnx_fp32"] == [vs["litert/fp32"]["q25"],
                                                      vs["litert/fp32"]["q75"]]




def test_paired_measurement_runs_keras_and_the_best_artifact_in_turn(tiny_bundles, tmp_path):
    """Keras and an artifact, each in a process of its own, timed round by round; the
    best / Keras target then comes from these rounds, not from two processes' medians."""
    from benchmarks.run import _interleaved_ratios, measure_paired

    bundle = tiny_bundles[0]["bilstm_activity_tiny"]
    before = child_pids()
    result = measure_paired([("keras", "fp32", bundle), ("onnx", "dynamic", bundle)], 1,
                            tmp_path, budget=0.5)
    assert "error" not in result, result
    assert result["processes"] == 2 and result["rounds"] >= 10  # MIN_ROUNDS
    assert list(result["median_us"]) == ["keras/fp32", "onnx/dynamic"]
    assert _whole_passes(result, bundle)
    vs = result["ratios"]["keras/fp32"]
    assert vs["keras/fp32"]["median"] == 1.0 and vs["onnx/dynamic"]["median"] > 0
    # both workers have exited
    assert child_pids() <= before
    together = {"rounds": 10, "ratios": {"onnx/fp32": {
        "onnx/fp32": {"median": 1.0, "q25": 1.0, "q75": 1.0},
        "onnx/dynamic": {"median": 0.5, "q25": 0.4, "q75": 0.6}}}}
    entry = _interleaved_ratios(together, paired=result)
    assert entry["best_artifact"] == "onnx/dynamic"
    assert entry["best_vs_keras"] == vs["onnx/dynamic"]["median"]
    assert entry["spread"]["best_vs_keras"] == [vs["onnx/dynamic"]["q25"],
                                                vs["onnx/dynamic"]["q75"]]
    assert entry["keras_source"] == f"paired processes, {result['rounds']} rounds"
    # without paired rounds: the separate processes' medians, and it says so
    rows = [{"backend": b, "precision": p, "threads": 1, "sample": {"median_us": us}}
            for b, p, us in (("keras", "fp32", 1000.0), ("onnx", "dynamic", 50.0))]
    fallback = _interleaved_ratios(together, rows)
    assert fallback["best_vs_keras"] == 0.05 and fallback["keras_source"] == "separate processes"


def test_a_paired_worker_that_fails_is_an_error_and_no_process_is_left(tmp_path):
    from benchmarks.run import measure_paired

    before = child_pids()
    result = measure_paired([("onnx", "fp32", tmp_path / "no_bundle")], 1, tmp_path,
                            budget=0.1)
    assert result["error"].startswith("onnx/fp32: ") and "no_bundle" in result["error"]
    assert child_pids() <= before


def test_configs_are_the_bundles_artifacts():
    from benchmarks.run import configs

    artifacts = [{"format": f, "precision": p} for f, p in [
        ("tflite", "float16"), ("onnx", "fp32"), ("tflite", "fp32"), ("onnx", "dynamic"),
        ("tflite", "fp32"), ("onnx", "int8")]]  # a two-graph bundle lists fp32 twice
    assert configs(artifacts, peer=False) == [
        ("keras", "fp32"), ("litert", "fp32"), ("litert", "float16"), ("onnx", "fp32"),
        ("onnx", "dynamic"), ("onnx", "int8")]
    assert configs(artifacts[:1], peer=True)[-2:] == [("torch", "fp32"), ("torch-onnx", "fp32")]


def test_a_measurement_stops_at_its_budget():
    import time

    from benchmarks.measure import MIN_RUNS, WARMUP, timed

    calls = []
    result = timed(lambda: (calls.append(1), time.sleep(0.005)), runs=10_000, budget=0.2)
    # warm-up stops after budget / 4 = 50 ms: about 10 calls, not all WARMUP
    assert MIN_RUNS <= result["runs"] < 60 and 2 <= len(calls) - result["runs"] < WARMUP
    assert timed(lambda: None, runs=50)["runs"] == 50  # no budget: every run


def test_a_model_that_fails_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    import benchmarks.run as bench
    from zoo.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="no_such_model"):  # before anything runs
        bench.run(["bilstm_activity_tiny", "no_such_model"], runs=5, out=tmp_path)
    assert not any(tmp_path.iterdir())

    def explode(name, *args):
        raise RuntimeError(f"{name} exploded")

    monkeypatch.setattr(bench, "_bench_model", explode)
    results = bench.run(["bilstm_activity_tiny"], runs=5, out=tmp_path)
    assert results["models"] == {}
    assert results["failed"] == {"bilstm_activity_tiny": "RuntimeError: bilstm_activity_tiny "
                                                         "exploded"}
    assert "### bilstm_activity_tiny\n\nNot measured: RuntimeError" in \
        (tmp_path / "latest.md").read_text()


def test_ratios_and_targets():
    from benchmarks.run import _floor_note, check_targets, ratios

    def row(backend, precision, us):
        return {"backend": backend, "precision": precision, "threads": 1,
                "sample": {"median_us": us}}

    rows = [row("keras", "fp32", 1500.0), row("onnx", "fp32", 80.0), row("onnx", "dynamic", 90.0),
            row("litert", "fp32", 160.0), row("torch-onnx", "fp32", 78.0)]
    r = ratios(rows)["1"]
    assert r["best_artifact"] == "onnx/fp32"
    assert r["litert_vs_onnx_fp32"] == pytest.approx(2.0)
    assert r["best_vs_keras"] == pytest.approx(80 / 1500)
    assert r["best_vs_torch_onnx"] == pytest.approx(80 / 78)
    checks = {c["target"]: c["met"] for c in check_targets(
        {"models": {"m": {"export_seconds": 12.0, "ratios": {"1": r}}}})}
    assert checks == {"best_vs_torch_onnx": False, "litert_vs_onnx_fp32": False,
                      "best_vs_keras": True, "export_seconds": True}
    json.dumps(r)
    # a Keras already near the compute roof puts a float artifact's floor above 1/15
    keras = {**rows[0], "roofline": {"fraction_of_roof": 0.5}}
    results = {"models": {"m": {"export_seconds": 12.0, "ratios": {"1": r}, "rows": [keras]}}}
    best = next(c for c in check_targets(results) if c["target"] == "best_vs_keras")
    assert best["float_floor"] == 0.5 and best["roofs_needed"] == pytest.approx(7.5)
    assert "doing Keras' work goes no lower than 0.50" in _floor_note(best)
    keras["roofline"]["fraction_of_roof"] = 0.01  # far from the roof: nothing to say
    assert _floor_note(next(c for c in check_targets(results)
                            if c["target"] == "best_vs_keras")) == ""
    # with an interleaved measurement, the 1-thread ratios are its per-round medians
    together = {"rounds": 50, "ratios": {
        "onnx/fp32": {"onnx/fp32": {"median": 1.0, "q25": 1.0, "q75": 1.0},
                      "onnx/dynamic": {"median": 0.7, "q25": 0.6, "q75": 0.8},
                      "litert/fp32": {"median": 1.4, "q25": 1.3, "q75": 1.6},
                      "torch-onnx/fp32": {"median": 1.0, "q25": 0.9, "q75": 1.1}},
        "torch-onnx/fp32": {"onnx/dynamic": {"median": 0.75, "q25": 0.7, "q75": 0.8}}}}
    r = ratios(rows, together)["1"]
    assert r["best_artifact"] == "onnx/dynamic" and r["source"] == "interleaved, 50 rounds"
    assert (r["litert_vs_onnx_fp32"], r["best_vs_torch_onnx"]) == (1.4, 0.75)
    # Keras is timed in its own process: best / Keras divides the separate medians
    assert r["best_vs_keras"] == pytest.approx(90 / 1500)
    assert r["spread"]["best_vs_torch_onnx"] == [0.7, 0.8] and "best_vs_keras" not in \
        r["spread"]


def test_flop_count_of_a_stacked_bilstm():
    import zoo
    from benchmarks.roofline import graph_flops, roofline

    model = zoo.create_model("bilstm_activity_tiny")  # 6 features, BiLSTM(8) x 2, 4 classes
    per_step = 2 * 4 * 8 * (6 + 8) + 2 * 4 * 8 * (16 + 8)  # MACs, both directions
    assert graph_flops(model, 10) == 2 * (10 * per_step + 16 * 4)
    r = roofline({"flops": 2e6, "bytes": 1e6, "calls_per_sample": 2},
                 {"gemm_gflops": 100.0, "bandwidth_gbs": {"500000": 10.0, "268435456": 1.0}},
                 latency_us=1000.0)
    assert r["gflops"] == pytest.approx(2.0)
    assert r["roof_gflops"] == pytest.approx(20.0)  # memory-bound at 2 FLOP/byte
    assert r["fraction_of_roof"] == pytest.approx(0.1)


def test_flop_count_follows_a_strided_front_end():
    import zoo
    from benchmarks.roofline import graph_flops

    # 3 channels -> Conv1D(8 filters, kernel 8, stride 4) -> BiLSTM(8) -> Dense(27) per frame
    model = zoo.create_model("handwriting_ctc_tiny")
    frames = 25  # ceil(99 / 4)
    conv = frames * 8 * 3 * 8
    lstm = frames * 2 * 4 * 8 * (8 + 8)
    dense = frames * 16 * 27
    assert graph_flops(model, 99) == 2 * (conv + lstm + dense)


def test_flop_count_of_gru_and_peephole_stacks():
    import zoo
    from benchmarks.roofline import graph_flops

    per_step = 2 * 3 * 8 * (6 + 8) + 2 * 3 * 8 * (16 + 8)  # BiGRU(8) x 2: three gates
    assert graph_flops(zoo.create_model("bigru_activity_tiny"), 10) == 2 * (10 * per_step + 64)
    # peephole products are elementwise: the same matrix products as a plain LSTM
    assert graph_flops(zoo.create_model("bipeephole_activity_tiny"), 10) == \
        graph_flops(zoo.create_model("bilstm_activity_tiny"), 10)


def test_flop_count_of_lstm_fcn_branches():
    import zoo
    from benchmarks.roofline import graph_flops

    # LSTM(4) and Conv1D 8/16/8 (kernels 8/5/3) side by side over 10 steps of 6 channels;
    # batch norm is a per-filter scale and shift, no matrix product
    conv = 10 * (8 * 6 * 8 + 5 * 8 * 16 + 3 * 16 * 8)
    lstm = 10 * 4 * 4 * (6 + 4)
    head = (4 + 8) * 4
    assert graph_flops(zoo.create_model("lstm_fcn_activity_tiny"), 10) == \
        2 * (conv + lstm + head)


def test_flop_count_follows_a_forecasters_patches():
    import zoo
    from benchmarks.roofline import graph_flops

    # 336 values read a day (48 values) per step: LSTM(64) takes 7 steps, not 336
    model = zoo.create_model("lstm_forecaster")
    lstm = 7 * 4 * 64 * (48 + 64)
    head = 64 * 48
    assert graph_flops(model, 336) == 2 * (lstm + head)


def test_flop_count_of_an_rnn_called_with_an_initial_state():
    from benchmarks.roofline import graph_flops
    from zoo._keras import keras

    x, h, c = keras.Input((5, 3)), keras.Input((4,)), keras.Input((4,))
    y = keras.layers.LSTM(4, name="lstm")(x, initial_state=[h, c])
    model = keras.Model([x, h, c], y, name="net")
    assert graph_flops(model, 99) == 2 * 5 * 4 * 4 * (3 + 4)  # the static 5 steps


def test_flop_count_of_the_unrolled_convlstm():
    import zoo
    from benchmarks.roofline import graph_flops
    from zoo.graphs import graph_models

    spec = zoo.get_spec("convlstm_nextframe_tiny")
    graph = graph_models(spec, zoo.create_model(spec.name))["nextframe"]
    # 64x64 frames as 8x8 patches of 64 values; ConvLSTM(4 filters, 3x3): 16 gate channels
    pixels, steps, input_conv, recurrent_conv = 8 * 8, 10, 9 * 64 * 16, 9 * 4 * 16
    encoder = pixels * (steps * input_conv + (steps - 1) * recurrent_conv)  # h0 = 0: skipped
    forecaster = pixels * (input_conv + steps * recurrent_conv)  # one frame; encoder's state
    head = steps * pixels * 4 * 64  # Dense(64) per patch
    assert graph_flops(graph, steps) == 2 * (encoder + forecaster + head)


def test_flop_count_refuses_a_layer_it_cannot_count():
    from benchmarks.roofline import graph_flops
    from zoo._keras import keras
    from zoo.errors import UnsupportedError

    x = keras.Input((8, 8, 1))
    model = keras.Model(x, keras.layers.Conv2D(2, 3, name="conv")(x), name="net")
    with pytest.raises(UnsupportedError, match=r"net: no FLOP count for layer conv \(Conv2D\)"):
        graph_flops(model, 1)


def test_reports_render_interleaved_ratios_and_failed_precisions():
    from benchmarks.run import check_targets, markdown, ratios, summary_markdown

    def row(backend, precision, us):
        return {"backend": backend, "precision": precision, "threads": 1, "size_bytes": 2048,
                "metrics": {"accuracy": 0.9}, "metric_drop": 0.0, "rss_mb": {"peak": 100.0},
                "sample": {"median_us": us, "p90_us": us, "runs": 20}}

    rows = [row("keras", "fp32", 1500.0), row("onnx", "fp32", 80.0),
            row("onnx", "dynamic", 70.0), row("litert", "fp32", 120.0),
            row("torch-onnx", "fp32", 78.0)]
    together = {"rounds": 40,
                "median_us": {"onnx/fp32": 85.0, "onnx/dynamic": 60.0, "litert/fp32": 130.0,
                              "torch-onnx/fp32": 84.0},
                "ratios": {"onnx/fp32": {
                    "onnx/fp32": {"median": 1.0, "q25": 1.0, "q75": 1.0},
                    "onnx/dynamic": {"median": 0.71, "q25": 0.65, "q75": 0.76},
                    "litert/fp32": {"median": 1.53, "q25": 1.4, "q75": 1.6},
                    "torch-onnx/fp32": {"median": 0.99, "q25": 0.9, "q75": 1.05}},
                    "torch-onnx/fp32": {"onnx/dynamic": {"median": 0.72, "q25": 0.66,
                                                         "q75": 0.79}}}}
    model = {"task": "classification", "task_metric": "accuracy", "export_seconds": 12.0,
             "more_precisions": ["float16"], "more_precisions_export_seconds": 9.5,
             "more_precisions_failed": {"int8": "ParityError: int8 over its bound"},
             "rows": rows, "interleaved": together, "ratios": ratios(rows, together),
             "step_graphs": []}
    results = {"created": "now", "machine": {"cpus": 2, "platform": "x", "cpu": "y"},
               "runs_per_measurement": 20, "models": {"m": model}}
    results["targets"] = check_targets(results)
    summary, full = summary_markdown(results), markdown(results)
    # the summary shows the interleaved medians (Keras: its own process) and the quartiles
    assert "| m | 1500 | 130 | 85 | 84 | onnx dynamic | 60 | 2 |" in summary
    assert "0.72 (0.66–0.79) / 0.80" in summary and "1.53 (1.40–1.60) / 1.50 ✗" in summary
    assert "0.047 / 0.067 |" in summary  # best / Keras against 1/15: three decimals below 0.1
    assert "| onnx/dynamic | 60 | 0.71 (0.65–0.76) |" in full
    assert "(then float16: 9.5 s); int8 not exported: ParityError" in full
    assert "| m | best_vs_keras | 0.047 |  | separate processes |" in full
    assert "| m | best_vs_torch_onnx | 0.720 | 0.660–0.790 | interleaved, 40 rounds |" in full


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from benchmarks.plots import plot

    def row(backend, precision, us, size, drop):
        return {"backend": backend, "precision": precision, "threads": 1, "size_bytes": size,
                "metric_drop": drop, "sample": {"median_us": us, "p90_us": us * 1.1}}

    rows = [row("keras", "fp32", 1500.0, None, 0.0), row("onnx", "fp32", 80.0, 1000, 0.0),
            row("onnx", "dynamic", 70.0, 300, 0.002), row("litert", "fp32", 100.0, 1000, 0.0)]
    rows[0]["metrics"] = {"accuracy": 0.9}
    models = {f"m{i}": {"rows": rows, "task_metric": "accuracy"} for i in range(5)}
    paths = plot({"models": models}, tmp_path)  # five panels: two rows of four
    assert [p.name for p in paths] == ["latency.png", "size_vs_drop.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot({"models": {}}, tmp_path / "none") == []


def test_keras3_export_of_the_classifier_needs_flex_ops(tiny_weights):
    """Measured gap this project closes: Keras 3's own LiteRT export of a BiLSTM stack is
    WHILE loops over Flex TensorList ops, which the LiteRT interpreter cannot run."""
    from benchmarks.keras3_peer import run

    result = run("bilstm_activity_tiny", tiny_weights["bilstm_activity_tiny"])
    assert result["keras"].startswith("3.")
    assert result["ops"].get("WHILE", 0) >= 1
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in result["ops"]
    assert result["runs_on_litert"] is False and "Select TensorFlow op" in result["error"]


def test_compression_benchmark_runs_end_to_end(tmp_path):
    """The compression benchmark on the tiny classifier, ONNX only (both formats took 103 s
    alone, ONNX 61 s; the TFLite side of each export is tested in its own module): every
    export, latency and target is produced (values are not asserted: tests check
    correctness, not timings)."""
    from benchmarks.compression import TARGETS, check_targets, markdown, run_model

    record = run_model("bilstm_activity_tiny", runs=5, work=tmp_path, formats=("onnx",),
                       weights=None, finetune_epochs=1, finetune_limit=64)
    assert list(record["formats"]) == ["onnx"]
    entry = record["formats"]["onnx"]
    assert entry["structured50_bytes"] < entry["fp32_bytes"]
    assert all(isinstance(v, float) for v in entry["latency_us"].values()), entry
    assert 0 < entry["pruned80_dynamic_gzip_vs_fp32"] < 1
    assert isinstance(entry["qat_int8_gain_vs_ptq"], float)
    results = {"created": "now", "machine": {"cpus": 2}, "runs": 5,
               "models": {"bilstm_activity_tiny": record}}
    results["targets"] = check_targets(results)
    assert {c["target"] for c in results["targets"]} <= set(TARGETS)
    assert len(results["targets"]) >= len(TARGETS) - 2  # auto may choose nothing
    assert "structured" in markdown(results)
    # only the ONNX bundles were written
    manifest = json.loads((tmp_path / "baseline" / "manifest.json").read_text())
    assert {a["format"] for a in manifest["artifacts"]} == {"onnx"}


@pytest.mark.parametrize("formats", [(), ("onnx", "coreml")])
def test_compression_benchmark_refuses_unknown_formats(tmp_path, formats):
    from benchmarks.compression import run_model

    with pytest.raises(ValueError, match="non-empty subset of"):
        run_model("bilstm_activity_tiny", runs=5, work=tmp_path, formats=formats)


@pytest.mark.parametrize("formats", ["", "onnx,coreml", " , "])
def test_compression_cli_refuses_unknown_formats(formats, capsys):
    from benchmarks.compression import main

    with pytest.raises(SystemExit) as e:
        main(["--formats", formats, "--models", "bilstm_activity_tiny"])
    assert e.value.code == 2
    assert "--formats: expected a comma-separated subset of tflite,onnx" in \
        capsys.readouterr().err


def test_compression_targets_compare_in_the_right_direction():
    from benchmarks.compression import check_targets

    entry = {"structured50_speedup": 1.7, "pruned80_dynamic_gzip_vs_fp32": 0.13,
             "auto_size_vs_fp32": None, "qat_int8_gain_vs_ptq": 0.0}
    checks = {c["target"]: c["met"] for c in check_targets(
        {"models": {"m": {"formats": {"onnx": entry}}}})}
    assert checks == {"structured50_speedup": True, "pruned80_dynamic_gzip_vs_fp32": False,
                      "qat_int8_gain_vs_ptq": False}  # no gain is not a gain


def test_transfer_task_files_are_the_real_splits(tmp_path):
    from benchmarks.transfer import VOWEL_FRAMES as LENGTH
    from benchmarks.transfer import vowels_task as write_task
    from zoo.datasets import japanese_vowels
    from zoo.userdata import load_sequences

    train_path, test_path = write_task(tmp_path, per_class=4, seed=1)
    train, test = load_sequences(train_path), load_sequences(test_path)
    assert train.x.shape == (36, LENGTH, 12) and np.bincount(train.y).tolist() == [4] * 9
    assert test.x.shape == (370, LENGTH, 12) and train.channels == japanese_vowels.CHANNELS
    official = japanese_vowels.load("train")
    resampled = japanese_vowels.resample(official.x, LENGTH)
    # every drawn utterance is one of the official TRAIN utterances, resampled
    assert all(np.abs(resampled - x).max(axis=(1, 2)).min() < 1e-6 for x in train.x)
    (tmp_path / "b").mkdir()
    other = load_sequences(write_task(tmp_path / "b", per_class=4, seed=2)[0])
    assert not np.array_equal(train.x, other.x)  # the seed draws the utterances


def test_handwriting_adaptation_task_trains_and_tests_on_disjoint_words(tmp_path):
    pytest.importorskip("HersheyFonts")
    from benchmarks.transfer import ADAPT_FACE, handwriting_face_task
    from zoo import datasets
    from zoo.userdata import load_transcribed

    train_path, test_path = handwriting_face_task(tmp_path, words=12, seed=0)
    train, test = load_transcribed(train_path), load_transcribed(test_path)
    split = datasets.load("hershey_strokes", "test")
    assert len(train.texts) == 12
    assert test.texts == [t for t, f in zip(split.texts, split.faces, strict=True)
                          if f == ADAPT_FACE]
    assert not set(train.texts) & set(test.texts)  # CMUdict's train / test words


def test_transfer_results_reach_the_card():
    path = ROOT / "benchmarks" / "results" / "transfer.json"
    if not path.is_file():
        pytest.skip("python -m benchmarks.transfer has not been run")
    from export.cards import card_markdown, load_benchmarks

    for name, result in json.loads(path.read_text())["experiments"].items():
        card = card_markdown(name, load_benchmarks())
        assert "## Fine-tuned to another task (measured)" in card and result["target"] in card
        for row in result["summary"]:
            assert f"| {row['per_class']} | {row['train_series']} |" in card


def test_optdigits_task_trains_and_tests_on_disjoint_images(tmp_path):
    from benchmarks.transfer import optdigits_task
    from zoo.datasets import optdigits
    from zoo.userdata import load_sequences

    train, test = (load_sequences(p) for p in optdigits_task(tmp_path, per_class=3, seed=0))
    assert train.x.shape == (30, 28, 28) and np.bincount(train.y).tolist() == [3] * 10
    assert len(test.y) == len(optdigits.load().y) - 30
    seen = {x.tobytes() for x in train.x}
    assert sum(x.tobytes() in seen for x in test.x) == 0


def test_ctc_decoding_benchmark_reports_every_decoder_and_backend(monkeypatch):
    pytest.importorskip("HersheyFonts")
    from benchmarks import ctc_decoding

    monkeypatch.setattr(ctc_decoding, "lexicon_words", lambda: ["zoo", "pen", "adult"])
    result = ctc_decoding.run_model("handwriting_ctc_tiny", limit=4, weights=None)
    rows = result["rows"]
    assert {(r["decoder"], r["backend"], r["precision"]) for r in rows} == {
        (d, b, p) for d in ("greedy", "beam 16", "beam 16 + lexicon")
        for b, p in (("keras", "fp32"), ("litert", "fp32"), ("onnx", "fp32"),
                     ("litert", "dynamic"), ("onnx", "dynamic"))}
    for r in rows:
        assert 0 <= r["word_accuracy"] <= 1 and r["cer"] >= 0 and r["ms_per_word"] > 0
        if r["precision"] == "fp32":
            assert r["disagreements_with_keras"] == 0
    assert "| beam 16 + lexicon | onnx | fp32 |" in ctc_decoding.markdown(
        {"date": "d", "machine": "m", "models": [result]})



def test_g2p_decoding_benchmark_reports_every_decoder_and_backend(tiny_bundles):
    from benchmarks import g2p_decoding
    from export.cards import card_figures, decoding_markdown
    from zoo import datasets

    test = datasets.load("cmudict", "test")
    test = type(test)(test.words[:3], test.targets[:3], test.references[:3])
    result = g2p_decoding.decode(tiny_bundles[0]["seq2seq_g2p_tiny"], test, widths=(2,),
                                 penalties=(1.0,), backends=("onnx",))
    rows = result["rows"]
    assert [(r["decoder"], r["backend"]) for r in rows] == [
        (d, b) for d in ("greedy", "beam 2", "beam 2, length penalty 1")
        for b in ("keras", "onnx")]
    for r in rows:
        assert 0 <= r["word_accuracy"] <= 1 and r["per"] >= 0 and r["ms_per_word"] > 0
        assert r["disagreements_with_keras"] == 0
    results = {"date": "d", "machine": "m", "command": "c", "models": [result]}
    assert "| beam 2, length penalty 1 | onnx |" in g2p_decoding.markdown(results)
    figures = card_figures(None, None, results)["decoding"]["seq2seq_g2p_tiny"]
    assert figures["unlike_keras"] == {"onnx": 0} and len(figures["rows"]) == 3
    assert "| beam 2 |" in decoding_markdown(figures)


def test_g2p_decoding_results_reach_the_card():
    path = ROOT / "benchmarks" / "results" / "g2p_decoding.json"
    if not path.is_file():
        pytest.skip("python -m benchmarks.g2p_decoding has not been run")
    from export.cards import card_markdown, load_benchmarks

    card = card_markdown("seq2seq_g2p", load_benchmarks())
    assert "## Decoding (measured)" in card
    for row in json.loads(path.read_text())["models"][0]["rows"]:
        assert f"| {row['decoder']} | {100 * row['per']:.2f} % |" in card


def test_openvino_peer_runs_and_reports_its_diff(tiny_bundles, tmp_path):
    """OpenVINO, static and dynamic, on a tiny seq2seq bundle's ONNX fp32 artifacts: the
    same function as Keras on the encoder's and every decoder step's feeds, and timed
    interleaved with ORT."""
    pytest.importorskip("openvino", reason="openvino is not installed (the bench extra)")
    from benchmarks import openvino_peer

    m = openvino_peer.measure_bundle(tiny_bundles[0]["seq2seq_g2p_tiny"], tmp_path,
                                     budget=0.2, samples=3, torch=False)
    assert not m["failed"], m["failed"]
    assert m["feeds"]["encoder"] == 3 and m["feeds"]["decoder_step"] > 3
    for backend in ("onnx", *openvino_peer.BACKENDS):
        assert m["rows"][backend]["max_abs_vs_keras"] < 1e-5, (backend, m["rows"])
    together = m["interleaved"]
    assert "error" not in together, together
    assert set(together["median_us"]) == {"onnx/fp32", "openvino-static/fp32",
                                          "openvino-dynamic/fp32"}
    # a step graph's state widths are read from a runner's .inputs, a Keras graph's from
    # its .model (zoo.tasks.common._state_widths): the OpenVINO runner is the former kind
    from export.verification.runtime import load_bundle

    graph = openvino_peer.graphs(load_bundle(tiny_bundles[0]["seq2seq_g2p_tiny"]),
                                 "openvino-static")["decoder_step"]
    assert not hasattr(graph, "model") and graph.inputs
    text = openvino_peer.markdown({"date": "d", "machine": "m", "openvino": "v",
                                   "onnxruntime": "v", "command": "c",
                                   "models": [{"model": "seq2seq_g2p_tiny", **m}]})
    assert "| seq2seq_g2p_tiny |" in text and "cannot load" not in text


def test_an_openvino_config_that_cannot_load_is_listed_with_the_reason(tiny_bundles, tmp_path,
                                                                       monkeypatch):
    pytest.importorskip("openvino", reason="openvino is not installed (the bench extra)")
    from benchmarks import openvino_peer

    def broken(*args, **kwargs):
        raise RuntimeError("Check 'x' failed: unsupported op\nmore")

    monkeypatch.setattr(openvino_peer.OpenVINOGraph, "__init__", broken)
    m = openvino_peer.measure_bundle(tiny_bundles[0]["bilstm_activity_tiny"], tmp_path,
                                     budget=0.2, samples=2, torch=False)
    assert set(m["failed"]) == set(openvino_peer.BACKENDS)
    assert m["failed"]["openvino-static"] == "RuntimeError: Check 'x' failed: unsupported op"
    assert set(m["interleaved"]["median_us"]) == {"onnx/fp32"}  # the rest left out
    text = openvino_peer.markdown({"date": "d", "machine": "m", "openvino": "v",
                                   "onnxruntime": "v", "command": "c",
                                   "models": [{"model": "b", **m}]})
    assert "cannot load" in text and "unsupported op" in text


def test_merge_replaces_only_the_models_measured_again():
    import copy
    import json

    from benchmarks.run import RESULTS, markdown, merge, summary_markdown

    previous = json.loads((RESULTS / "latest.json").read_text())
    name, other = "char_lm", "bilstm_activity"
    fresh = {"created": "2026-12-07T20:00:00+00:00", "machine": previous["machine"],
             "models": {name: copy.deepcopy(previous["models"][name])},
             "manifests": [m for m in previous["manifests"] if m["model"] == name][:1],
             "peaks": {"gemm_gflops": [1.0], "bandwidth_gbs": {}},
             "failed": {"no_such_model": "UnknownModelError: x"}}
    fresh["models"][name]["export_seconds"] = 123.4
    out = merge(previous, fresh)
    assert out["models"][name]["export_seconds"] == 123.4
    assert out["models"][other] == previous["models"][other]
    assert [m["model"] for m in out["manifests"]].count(name) == 1
    assert [m["model"] for m in out["manifests"]].count(other) == \
        [m["model"] for m in previous["manifests"]].count(other)
    assert out["peaks"]["gemm_gflops"][-1] == 1.0 and out["failed"] == fresh["failed"]
    assert out["merged"][-1]["models"] == [name, "no_such_model"]
    assert out["created"] == previous["created"]  # the rest of the matrix is that run's
    assert "Measured again 2026-12-07T20:00:00+00:00 (`--merge`) on 2 CPUs" in markdown(out)
    assert "Measured again 2026-12-07T20:00:00+00:00 on 2 CPUs" in summary_markdown(out)
    assert len(out["merged"]) == len(previous.get("merged", [])) + 1
    assert previous == json.loads((RESULTS / "latest.json").read_text())  # not changed
