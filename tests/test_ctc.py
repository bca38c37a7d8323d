"""Host-side CTC decoding, checked against brute force over every alignment."""

import itertools
import math

import numpy as np
import pytest

from zoo.ctc import Lexicon, beam_search, best_path_probability, greedy_decode
from zoo.errors import ShapeError


def collapse(path, blank=0):
    out, previous = [], blank
    for s in path:
        if s != previous and s != blank:
            out.append(s)
        previous = s
    return tuple(out)


def brute_force(probs, blank=0):
    """P(transcript) for every transcript, summing all V^T paths."""
    scores = {}
    for path in itertools.product(range(probs.shape[1]), repeat=len(probs)):
        p = float(np.prod([probs[t, s] for t, s in enumerate(path)]))
        key = collapse(path, blank)
        scores[key] = scores.get(key, 0.0) + p
    return scores


def random_probs(rng, frames, symbols):
    logits = rng.normal(0, 2, (frames, symbols))
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_greedy_merges_repeats_and_drops_blanks():
    eye = np.eye(4)
    assert greedy_decode(eye[[0, 1, 1, 0, 1, 2, 2, 3, 0]]) == [1, 1, 2, 3]
    assert greedy_decode(eye[[0, 0, 0]]) == []
    assert greedy_decode(eye[[3, 3, 1, 1]], blank=3) == [1]


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_finds_the_most_probable_transcript(seed):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, frames=5, symbols=3)
    exact = brute_force(probs)
    assert math.isclose(sum(exact.values()), 1.0, rel_tol=1e-9)
    best = max(exact, key=exact.get)
    # a beam as wide as the number of transcripts loses nothing
    results = beam_search(probs, beam_width=len(exact))
    assert tuple(results[0][0]) == best
    for transcript, logp in results:
        assert math.isclose(math.exp(logp), exact[tuple(transcript)], rel_tol=1e-9)
        assert math.isclose(logp, best_path_probability(probs, transcript), rel_tol=1e-9)


def test_forward_algorithm_matches_brute_force():
    rng = np.random.default_rng(7)
    probs = random_probs(rng, frames=4, symbols=3)
    for transcript, p in brute_force(probs).items():
        assert math.isclose(math.exp(best_path_probability(probs, transcript)), p,
                            rel_tol=1e-9)


def test_beam_beats_greedy_when_paths_add_up():
    # frame by frame the blank wins (0.6), but "a" over both frames has 1 - 0.36 = 0.64
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    assert greedy_decode(probs) == []
    assert beam_search(probs, beam_width=4)[0][0] == [1]


def test_lexicon_constrains_the_transcript():
    rng = np.random.default_rng(3)
    probs = random_probs(rng, frames=6, symbols=4)
    exact = brute_force(probs)
    allowed = [(1, 2), (3,), (2, 2, 1)]
    results = beam_search(probs, beam_width=64, lexicon=Lexicon(allowed))
    assert {tuple(t) for t, _ in results} <= set(allowed)
    best_allowed = max(allowed, key=lambda t: exact.get(t, 0.0))
    assert tuple(results[0][0]) == best_allowed
    assert beam_search(np.eye(4)[[0, 0]], lexicon=Lexicon([(1,)])) == []


def test_repeated_symbols_need_a_blank_between():
    eye = np.eye(3)
    # "1 1" can only come from a path with a blank between the two 1s
    assert greedy_decode(eye[[1, 0, 1]]) == [1, 1]
    assert beam_search(eye[[1, 0, 1]] * 0.98 + 0.01, beam_width=8)[0][0] == [1, 1]
    assert beam_search(eye[[1, 1, 1]] * 0.98 + 0.01, beam_width=8)[0][0] == [1]


@pytest.mark.parametrize("probs, match", [
    (np.ones(5), "at least 2 symbols"),
    (np.ones((3, 1)), "at least 2 symbols"),
    (np.full((2, 3), np.nan), "finite"),
    (-np.ones((2, 3)), "non-negative"),
])
def test_bad_probabilities(probs, match):
    with pytest.raises(ShapeError, match=match):
        greedy_decode(probs)
    with pytest.raises(ShapeError, match=match):
        beam_search(probs)


def test_bad_blank_and_width():
    with pytest.raises(ShapeError, match="blank index 5"):
        greedy_decode(np.eye(3), blank=5)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(np.eye(3), beam_width=0)
    with pytest.raises(ValueError, match="at least one entry"):
        Lexicon([])


def test_batched_recognition_equals_one_input_at_a_time():
    """Keras' reference pass batches inputs of equal length; every transcript is the one
    the input gets alone, in input order."""
    from zoo.tasks import CTCRecognition, length_batches

    meta = {"blank": 0, "alphabet": "ab", "input": "strokes"}
    calls = []

    def recognizer(feeds):
        x = feeds["strokes"]
        calls.append(x.shape)
        symbol = (x[:, :, :1] > 0).astype(int) + 1  # one symbol per frame from its sign
        return {"probs": np.eye(3, dtype=np.float32)[symbol[..., 0]]}

    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (4, 7, 4, 5, 4, 7)]
    task = CTCRecognition()
    alone = task.predict({"recognizer": recognizer}, inputs, meta)
    assert len(calls) == 6
    calls.clear()
    together = task.predict({"recognizer": recognizer}, inputs, meta, batch_size=2)
    assert together == alone
    assert sorted(calls) == [(1, 4, 3), (1, 5, 3), (2, 4, 3), (2, 7, 3)]
    assert list(length_batches([4, 7, 4, 5, 4, 7], 2)) == [[0, 2], [4], [3], [1, 5]]
