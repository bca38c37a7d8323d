"""A bundle shared by threads, and a long run of predictions (issue 32, item 4).

The figures: ``python -m benchmarks.threads`` and ``python -m benchmarks.soak``
(benchmarks/results/threads.md, soak.md); here, that the answers are the same and that the
harness works, on the tiny bundles.
"""

from __future__ import annotations

import pickle
import sys
import threading

import numpy as np
import pytest

from export.verification.runtime import load_bundle

THREADS = 8


def _inputs(bundle, count: int):
    """Test inputs of several lengths (a LiteRT call resizes its inputs when the length
    changes: threads sharing an interpreter would resize it under each other)."""
    from benchmarks.measure import sample_inputs

    inputs = sample_inputs(bundle.manifest, count)
    if isinstance(inputs[0], str):  # G2P words: their lengths vary already
        return inputs
    return [x[: len(x) - 7 * (i % 5)] for i, x in enumerate(inputs)]


def _together(work, threads: int = THREADS) -> list:
    """``work(i)`` on ``threads`` threads started at once; their results in order. The
    interpreter switches threads every microsecond meanwhile (5 ms by default), so that
    calls that could interleave do."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads
    errors = []

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("name", ["bilstm_activity_tiny", "seq2seq_g2p_tiny"])
def test_eight_threads_get_the_answers_of_one(tiny_bundles, name):
    """8 threads predicting through one bundle at once, each over every input from its own
    starting point, get byte for byte what one thread gets, on every backend."""
    bundle = load_bundle(tiny_bundles[0][name])
    inputs = _inputs(bundle, 16 if name.startswith("seq2seq") else 40)
    for backend in ("litert", "onnx", "keras"):
        want = [pickle.dumps(bundle.predict([x], backend=backend)) for x in inputs]

        def work(i, backend=backend):
            order = [(i * 5 + k) % len(inputs) for k in range(len(inputs))]
            return {j: pickle.dumps(bundle.predict([inputs[j]], backend=backend))
                    for j in order}

        for i, got in enumerate(_together(work)):
            wrong = [j for j in range(len(inputs)) if got[j] != want[j]]
            assert not wrong, f"{backend}: thread {i} got other answers for inputs {wrong}"


def test_threads_share_the_runners_made_once(tiny_bundles, monkeypatch):
    """The first predictions of 8 threads at once make the bundle's runners once, and
    later calls reuse them (made per call, they were 95 % of a LiteRT call)."""
    from export.verification.runtime import Bundle

    made = []
    runners = Bundle.runners

    def counted(self, backend, precision="fp32", threads=1):
        made.append(backend)
        return runners(self, backend, precision, threads)

    monkeypatch.setattr(Bundle, "runners", counted)
    bundle = load_bundle(tiny_bundles[0]["bilstm_activity_tiny"])
    x = _inputs(bundle, 1)[0]
    for backend in ("litert", "onnx"):
        results = _together(lambda i, b=backend: bundle.predict([x], backend=b))
        assert all(np.array_equal(r, results[0]) for r in results)
        bundle.predict([x], backend=backend)
    assert made == ["litert", "onnx"]


# -- soak ---------------------------------------------------------------------------------


def test_the_soak_harness_holds_rss_flat_over_2000_predictions(tiny_bundles):
    """``python -m benchmarks.soak``'s machinery, 2,000 calls per backend (the benchmark
    runs 100,000): each backend in a fresh process, without TensorFlow for the edge
    runtimes, RSS read at ten points and within 5 % of the reading after the warm-up."""
    from benchmarks import soak
    from benchmarks.measure import child_pids

    before = child_pids()
    result = soak.run("bilstm_activity_tiny", bundle=tiny_bundles[0]["bilstm_activity_tiny"],
                      backends=("litert", "onnx"), calls=2000, warmup=200)
    assert child_pids() == before
    for row in result["rows"]:
        assert "error" not in row, row
        assert row["calls"] == 2000 and len(row["readings"]) == soak.CHECKPOINTS
        assert row["readings"][-1][0] == 2000 and not row["tensorflow_imported"]
        assert abs(row["growth_percent"]) <= soak.LIMIT_PERCENT, row
    text = soak.markdown({"date": "d", "machine": "m", "command": "c", "result": result})
    assert text.count("\n| litert | 2,000 | 200 |") == 1 and "\n| onnx |" in text
