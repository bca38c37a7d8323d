"""The tensor comparison rule of parity checks (absolute, and allclose-style relative)."""

import numpy as np
import pytest

from export.verification.verify import diff_stats, finish_stats


def stats(ref, got, relative=None):
    acc: dict = {}
    diff_stats({"probs": np.asarray(ref)}, {"probs": np.asarray(got)}, acc, relative)
    return finish_stats(acc, relative)["probs"]


def test_absolute_only():
    s = stats([0.5, 0.5], [0.5 + 2e-5, 0.5 - 2e-5])
    assert s["max_abs"] == pytest.approx(2e-5)
    assert "max_excess" not in s


def test_relative_allowance_scales_with_the_value():
    # a near-tie (p = 0.5) may move by 5e-4 * 0.5 = 2.5e-4 beyond the absolute part ...
    s = stats([0.5, 0.5], [0.5 + 2e-4, 0.5 - 2e-4], {"probs": 5e-4})
    assert s["max_abs"] == pytest.approx(2e-4)
    assert s["max_excess"] <= 0
    # ... but a tiny probability may not: 1e-4 on p = 1e-6 is an excess of ~1e-4
    s = stats([1e-6, 1 - 1e-6], [1e-6 + 1e-4, 1 - 1e-6 - 1e-4], {"probs": 5e-4})
    assert s["max_excess"] == pytest.approx(1e-4 - 5e-4 * 1e-6, rel=1e-6)


def test_excess_is_the_max_over_calls():
    acc: dict = {}
    rel = {"probs": 1e-3}
    diff_stats({"probs": np.array([1.0])}, {"probs": np.array([1.0 + 3e-3])}, acc, rel)
    diff_stats({"probs": np.array([0.0])}, {"probs": np.array([1e-5])}, acc, rel)
    s = finish_stats(acc, rel)["probs"]
    assert s["max_abs"] == pytest.approx(3e-3)
    assert s["max_excess"] == pytest.approx(2e-3)


def test_recorder_keeps_batch_one_rows_first_or_sampled():
    from export.verification.verify import Recorder

    def graph(feeds):
        return {"y": feeds["x"] * 2}

    calls = [{"x": np.arange(10 * k, 10 * k + 10, dtype=np.float32).reshape(5, 2)}
             for k in range(6)]  # 6 batched calls of 5 rows: 30 feeds
    first = Recorder(graph, limit=7)
    for feeds in calls:
        np.testing.assert_array_equal(first(feeds)["y"], feeds["x"] * 2)  # passes through
    assert [f["x"].shape for f in first.feeds] == [(1, 2)] * 7
    assert [int(f["x"][0, 0]) for f in first.feeds] == [0, 2, 4, 6, 8, 10, 12]

    def kept(seed):
        rec = Recorder(graph, limit=7, seed=seed)
        for feeds in calls:
            rec(feeds)
        assert rec.seen == 30 and len(rec.feeds) == 7
        return sorted(int(f["x"][0, 0]) for f in rec.feeds)

    assert kept(0) == kept(0)  # fixed seed, fixed sample
    assert len(set(kept(0))) == 7 and max(kept(0)) > 12  # later rows can replace early ones
    # over many seeds every row is kept about equally often (7 of 30)
    counts = np.bincount(np.concatenate([kept(s) for s in range(300)]) // 2, minlength=30)
    assert counts.min() > 0.5 * 300 * 7 / 30 and counts.max() < 1.5 * 300 * 7 / 30


def test_batched_outputs_equal_batch_one_calls():
    from export.verification.verify import batched_outputs

    seen = []

    def graph(feeds):
        seen.append(feeds["x"].shape)
        return {"y": feeds["x"].sum(axis=-1, keepdims=True) + feeds["x"][:, :1] ** 2}

    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 3 + k % 2)).astype(np.float32)} for k in range(9)]
    got = batched_outputs(graph, feeds, batch=3)
    assert sorted(seen) == [(1, 4), (2, 3), (3, 3), (3, 4)]  # 5 of width 3, 4 of 4; by 3s
    for f, g in zip(feeds, got, strict=True):
        np.testing.assert_array_equal(g["y"], graph(f)["y"])


def test_batched_greedy_decoding_steps_only_the_rows_still_decoding():
    """Decoding a batch gives each word what it gets alone, and a word that has ended takes
    no more decoder steps: the steps recorded for parity are those of batch-1 decoding."""
    from export.verification.verify import Recorder
    from zoo.decoding import greedy_decode

    eos, vocab = 1, 6

    def encoder(feeds):
        g = feeds["graphemes"].astype(np.float32)
        length = g.sum(axis=1, keepdims=True)  # the word's "length": when it ends
        return {"memory": g[:, :, None], "h": length, "c": np.zeros_like(length)}

    def decoder_step(feeds):
        c = feeds["c"] + 1  # steps taken
        ended = c >= feeds["h"]
        token = np.where(ended, eos, 2 + (c.astype(int) + feeds["memory"][:, 0, :].astype(int))
                         % (vocab - 2))
        probs = np.eye(vocab, dtype=np.float32)[token[:, 0]]
        return {"probs": probs, "h_next": feeds["h"], "c_next": c}

    source = np.array([[1, 0, 0], [1, 1, 1], [1, 1, 0], [2, 2, 2]], np.int32)
    alone = [greedy_decode({"encoder": encoder, "decoder_step": decoder_step}, row[None],
                           bos=0, eos=eos, max_len=10)[0] for row in source]
    step = Recorder(decoder_step)
    together = greedy_decode({"encoder": encoder, "decoder_step": step}, source, bos=0,
                             eos=eos, max_len=10)
    assert together == alone and [len(w) for w in alone] == [0, 2, 1, 5]
    assert step.seen == sum(len(w) + 1 for w in alone)  # each word's steps and its end


def test_recorder_keeps_each_kept_feeds_output_row():
    from export.verification.verify import Recorder

    def graph(feeds):
        return {"y": feeds["x"] * 2, "s": feeds["x"].sum(axis=1)}

    calls = [{"x": np.arange(10 * k, 10 * k + 10, dtype=np.float32).reshape(5, 2)}
             for k in range(6)]
    for rec in (Recorder(graph, limit=7, outputs=True),
                Recorder(graph, limit=7, seed=0, outputs=True)):
        for feeds in calls:
            rec(feeds)
        assert len(rec.outputs) == len(rec.feeds) == 7
        for f, o in zip(rec.feeds, rec.outputs, strict=True):
            want = graph(f)
            assert o.keys() == want.keys()
            for k in want:
                np.testing.assert_array_equal(o[k], want[k])
    assert Recorder(graph).outputs is None  # calibration recording keeps feeds only


def test_reference_runs_keras_once_per_input_and_keeps_the_outputs():
    """The predictions pass over the test split records the tensor feeds and their outputs;
    only tensor inputs beyond the test split get a pass of their own."""
    from types import SimpleNamespace

    from export.verification.verify import RANDOM_FEEDS, Reference
    from zoo._keras import keras
    from zoo.tasks import Task as ZooTask

    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Dense(2, name="y")(x), name="g")
    rows = []

    class Task:
        def inputs(self, data):
            return list(data)

        def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
            out = []
            for i in range(0, len(inputs), batch_size):
                batch = np.stack(inputs[i : i + batch_size])
                rows.append(len(batch))
                out.append(graphs["g"]({"x": batch})["y"])
            return np.concatenate(out)

        def score(self, predictions, data, meta):
            return {"sum": float(np.sum(predictions))}

        feed_lengths = ZooTask.feed_lengths  # the protocol's default: a free time axis

    rng = np.random.default_rng(0)
    test = [rng.standard_normal(3).astype(np.float32) for _ in range(70)]
    extra = [rng.standard_normal(3).astype(np.float32) for _ in range(5)]
    spec = SimpleNamespace(meta={})
    for tensor_inputs, keras_rows in ((test + extra, 75), (test[:20], 70), (extra, 75)):
        rows.clear()
        ref = Reference(spec, {"g": model}, Task(), test, tensor_inputs)
        # each input once (no second pass over the test split), and the first test input
        # again alone: its first call at batch 1 is the feed latency is timed on
        assert sum(rows) == keras_rows + 1
        np.testing.assert_array_equal(ref.latency_feeds["g"]["x"], test[0][None])
        np.testing.assert_allclose(ref.predictions, model.predict(np.stack(test), verbose=0),
                                   atol=1e-6)
        feeds = ref.feeds["g"]
        assert len(feeds) == len(tensor_inputs) + RANDOM_FEEDS
        recorded = sorted(tuple(f["x"][0]) for f in feeds[: len(tensor_inputs)])
        assert recorded == sorted(tuple(t) for t in tensor_inputs)
        for f, o in zip(feeds, ref.outputs["g"], strict=True):
            np.testing.assert_allclose(o["y"], model(f["x"]).numpy(), atol=1e-6)


def test_feed_check_refuses_non_finite_values_and_keeps_large_finite_ones():
    """The runners' feed check tests finiteness with a sum of squares: a large but finite
    input must pass (its squares overflow float32), +inf and -inf together and NaN must
    not, in float16, float32 and float64 alike."""
    from export.verification.runtime import FeedCheck
    from zoo.errors import ShapeError

    check = FeedCheck([{"name": "h", "shape": [1, None], "dtype": "float32"},
                       {"name": "t", "shape": [1, 1], "dtype": "int32"}], "graph.tflite")
    ids = np.zeros((1, 1), np.int64)
    got = check({"h": np.full((1, 8), 3e38, np.float32), "t": ids})
    assert got["h"].max() == np.float32(3e38) and got["t"].dtype == np.int32
    for bad in ([np.inf, -np.inf], [np.nan, 0.0], [0.0, -np.inf]):
        for dtype in (np.float16, np.float32, np.float64):
            with pytest.raises(ShapeError, match="graph.tflite: input 'h' holds NaN or inf"):
                check({"h": np.array([bad], dtype), "t": ids})
    with pytest.raises(ShapeError, match=r"input 'h' has shape \(1, 2, 1\); expected \(1, \?\)"):
        check({"h": np.zeros((1, 2, 1), np.float32), "t": ids})
    with pytest.raises(ShapeError, match="must be integer ids; got dtype float32"):
        check({"h": np.zeros((1, 2), np.float32), "t": ids.astype(np.float32)})
    # tested as the graph receives them: float32 and int32
    with pytest.raises(ShapeError, match="input 'h' holds NaN or inf"):
        check({"h": np.full((1, 2), 1e300), "t": ids})
    with pytest.raises(ShapeError, match=r"input 't' holds ids outside int32's range"):
        check({"h": np.zeros((1, 2), np.float32), "t": ids + 2**40})
    strided = np.arange(8, dtype=np.float32).reshape(1, 8)[:, ::2]
    got = check({"h": strided, "t": ids.astype(np.int32)})
    assert got["h"].flags.c_contiguous and got["h"].tolist() == [[0, 2, 4, 6]]


def test_check_backend_compares_the_task_pass_and_replays_only_the_rest():
    """A recorded feed the task pass meets again (same bytes) is compared there; the others
    (random feeds; a stream's states, which are the backend's own) are replayed. Every
    recorded feed is compared once, and the statistics are those of a full replay."""
    from types import SimpleNamespace

    from export.verification.verify import check_backend

    rng = np.random.default_rng(0)
    test = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(6)]
    randoms = [{"x": rng.standard_normal((1, 4)).astype(np.float32)} for _ in range(3)]
    feeds = [{"x": t} for t in test[:4]] + randoms  # recorded: 4 test inputs, 3 random

    def keras(f):
        return {"y": f["x"] * 2.0}

    calls = []

    def backend(f):  # off by 1e-3 * the input: a difference to measure
        calls.append(f["x"].tobytes())
        return {"y": f["x"] * 2.001}

    from zoo.tasks import Task as ZooTask

    class Task:
        metric, higher_is_better = "m", True
        checks = ZooTask.checks  # the protocol's default: no checks of its own

        def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
            return [graphs["g"]({"x": x})["y"] for x in inputs]

        def score(self, predictions, data, meta):
            return {"m": 1.0}

        def compare(self, a, b):
            return {"disagreements": 0}

    reference = SimpleNamespace(feeds={"g": feeds}, outputs={"g": [keras(f) for f in feeds]},
                                test_inputs=test, metrics={"m": 1.0}, predictions=None,
                                latency_feeds={})
    spec = SimpleNamespace(tensor_tolerance={}, metric_drop={}, meta={})
    result = check_backend(spec, Task(), reference, None, {"g": backend}, "dynamic")
    # a warm-up call, 6 task calls, then 3 replays (the random feeds), then latency runs
    replayed = calls[7:10]
    assert replayed == [f["x"].tobytes() for f in randoms]
    want: dict = {}
    for f in feeds:
        diff_stats(keras(f), {"y": f["x"] * 2.001}, want)
    assert result["tensors"]["g"]["y"] == pytest.approx(finish_stats(want)["y"])


def test_comparing_stops_hashing_a_graph_whose_calls_seldom_match():
    """A stream or decoder step is fed the backend's own states: after 256 calls with fewer
    than 1 in 16 matching a recorded feed, the wrapper stops hashing (the rest replay)."""
    from export.verification.verify import _Comparing

    def graph(f):
        return {"y": f["x"] + 1}

    recorded = [{"x": np.full((1, 2), k, np.float32)} for k in range(3)]
    comparing = _Comparing(graph, recorded, [graph(f) for f in recorded], {})
    comparing(recorded[0])  # a match: compared in the pass
    for k in range(300):
        comparing({"x": np.full((1, 2), 100.0 + k, np.float32)})
    comparing(recorded[1])  # hashing has stopped: left for the replay
    assert comparing.compared == {0}
    assert comparing.acc["y"]["count"] == 2  # one feed's two values

    many = [{"x": np.full((1, 2), -k, np.float32)} for k in range(31)]
    busy = _Comparing(graph, many, [graph(f) for f in many], {})
    for k in range(300):  # every 10th call matches: 30 of 300 > 1/16, so it keeps hashing
        busy(many[k // 10] if k % 10 == 0 else {"x": np.full((1, 2), 100.0 + k, np.float32)})
    busy(many[30])
    assert busy.compared == set(range(31))
