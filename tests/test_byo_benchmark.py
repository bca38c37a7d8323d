"""benchmarks.byo on a tiny configuration: every code path, structure and sanity only
(never a timing threshold)."""

from __future__ import annotations

import os

import numpy as np

from benchmarks.measure import child_pids

TINY = {"timesteps": 20, "features": 3, "units": [4, 4], "classes": 3}




def test_keras3_classifier_ours_against_keras3s_own_export(tmp_path):
    """Keras 3's artifact is refused by LiteRT (Flex ops); ours is fused, verified, runs and
    agrees with Keras 3; two workers in their own processes are timed in turns."""
    from benchmarks.byo import compare, markdown, paired_workers

    before = child_pids()
    flex = os.environ.get("LSTM_ZOO_FLEX_PYTHON")  # a TensorFlow <= 2.19, where there is one
    r = compare(tmp_path / "c", model="bilstm_activity_tiny", weights=None, samples=16,
                flex_python=flex, budget=0.2, rounds=10, fresh=False)
    assert r["params"] > 0 and r["arch"]["units"] == [8, 8]
    lite = r["keras3_litert"]["on_ai_edge_litert"]
    assert lite["runs"] is False and "Select TensorFlow op" in lite["error"]
    assert "Flex" in lite["node"]
    assert r["ours"]["passed"] and r["ours"]["ops"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 4
    assert "WHILE" not in r["ours"]["ops"]
    assert r["max_abs_diff"]["ours_vs_keras3"] < 1e-5
    t = r["timing"]
    assert "error" not in t, t
    assert t["rounds"] >= 10 and t["median_us"]["ours"] > 0 and t["median_us"]["ours_onnx"] > 0
    assert r["max_abs_diff"]["ours_onnx_vs_keras3"] < 1e-5
    if flex:  # Keras 3's artifact ran, on the same inputs, with the same outputs
        assert set(t["median_us"]) == {"ours", "ours_onnx", "theirs"}
        assert r["max_abs_diff"]["ours_vs_theirs"] < 1e-5
        assert r["speedup"]["theirs_over_ours"]["median"] > 0
    # the worker for a bare .tflite on TensorFlow's interpreter, here on our artifact
    # (it runs without Flex), paired with the bundle's runner: both timed, same outputs
    work = tmp_path / "c"
    common = {"samples": str(work / "x.npy"), "threads": 1}
    t = paired_workers({
        "ours": {"args": {"kind": "bundle", "path": str(work / "bundle"),
                          "outputs": str(tmp_path / "a.npy"), **common}},
        "tf_lite": {"args": {"kind": "tflite",
                             "path": str(work / "bundle" / "fp32" / "model.tflite"),
                             "outputs": str(tmp_path / "b.npy"), **common}}},
        tmp_path, budget=0.2, rounds=10)
    assert "error" not in t, t
    assert t["processes"] == 2 and t["rounds"] >= 10 and t["samples"] == 16
    assert list(t["median_us"]) == ["ours", "tf_lite"]
    assert all(us > 0 for us in t["median_us"].values())
    assert t["ratios"]["ours"]["ours"]["median"] == 1.0
    assert t["runtimes"]["tf_lite"].startswith("tf.lite.Interpreter")
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (16, 4) and np.abs(a - b).max() < 1e-5
    assert child_pids() <= before
    text = markdown({"date": "d", "machine": "m", "command": "c", "compare": r})
    assert "refuses it" in text and "ours" in text


def test_a_failing_worker_is_an_error_and_no_process_is_left(tmp_path):
    from benchmarks.byo import paired_workers

    before = child_pids()
    t = paired_workers({"ours": {"args": {"kind": "bundle", "path": str(tmp_path / "none"),
                                          "samples": str(tmp_path / "none.npy"),
                                          "outputs": str(tmp_path / "o.npy")}}},
                       tmp_path, budget=0.1)
    assert t["error"].startswith("ours: ") and "none" in t["error"]
    assert child_pids() <= before


def test_export_time_reports_every_stage(tmp_path):
    from benchmarks.byo import export_time, markdown

    r = export_time(tmp_path, arch=TINY, runs=1, samples=16, formats="tflite",
                    kinds=("tf_keras",), fresh=False)
    m = r["models"]["tf_keras"]
    assert m["params"] > 0 and len(m["runs"]) == 1
    run = m["runs"][0]
    assert run["passed"] and run["artifacts"] == ["tflite/fp32", "tflite/dynamic"]
    stages = [s["stage"] for s in run["stages"]]
    assert stages[0].startswith("reading ") and any("converting" in s for s in stages)
    assert all(s["seconds"] >= 0 for s in run["stages"])
    # the stages are the whole call, after the first message
    assert abs(sum(s["seconds"] for s in run["stages"]) + run["before_first_message_seconds"]
               - run["export_seconds"]) < 1e-3
    assert run["process_seconds"] >= run["export_seconds"]
    assert "Stages of the median" in markdown({"date": "d", "machine": "m", "command": "c",
                                               "export": r})
