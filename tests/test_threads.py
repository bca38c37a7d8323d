"""A bundle shared by threads (issue 32, item 4).

The figures: ``python -m benchmarks.threads`` (benchmarks/results/threads.md); here, that
the answers are the same, on the tiny bundles.
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

