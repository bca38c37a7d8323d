"""Synthetic pen trajectories from the Hershey fonts (the handwriting data of issue 4)."""

import numpy as np
import pytest

from zoo.datasets import hershey_strokes as hs
from zoo.errors import DataError

pytest.importorskip("HersheyFonts")


def test_trajectory_encodes_the_glyph_strokes():
    rng = np.random.default_rng(0)
    trajectory = hs.write("pen", "futural", hs.WriterStyle(), rng)
    strokes = hs.glyph_strokes("pen", "futural")
    assert trajectory.dtype == np.float32 and trajectory.shape[1] == 3
    assert trajectory[0].tolist() == [0.0, 0.0, 1.0]  # pen down at the origin
    starts = np.flatnonzero(trajectory[:, 2] == 1)
    assert len(starts) == len(strokes) and set(np.unique(trajectory[:, 2])) <= {0.0, 1.0}
    # back to font units: each stroke starts and ends where the glyph's does
    points = hs.absolute(trajectory) + strokes[0][0]
    ends = [*starts[1:] - 1, len(trajectory) - 1]
    for stroke, start, end in zip(strokes, starts, ends, strict=True):
        np.testing.assert_allclose(points[start], stroke[0], atol=1e-3)
        np.testing.assert_allclose(points[end], stroke[-1], atol=1e-3)
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)[trajectory[1:, 2] == 0]
    assert steps.max() <= hs.WriterStyle().step + 1e-6  # the pen speed


def test_writer_style_changes_the_trajectory():
    base = hs.write("ink", "scripts", hs.WriterStyle(), np.random.default_rng(0))
    slanted = hs.write("ink", "scripts", hs.WriterStyle(slant=0.3), np.random.default_rng(0))
    slow = hs.write("ink", "scripts", hs.WriterStyle(step=0.5), np.random.default_rng(0))
    # shear moves every point off the upright glyph (and lengthens strokes: more points)
    upright, sheared = hs.absolute(base), hs.absolute(slanted)
    assert not np.allclose(upright[-1], sheared[-1], atol=1e-2)
    assert len(slow) > 2 * len(base)


def test_splits_hold_out_faces_and_words():
    train, test = hs.load("train", 40), hs.load("test", 20)
    assert set(train.faces) <= set(hs.TRAIN_FACES) and set(test.faces) <= set(hs.TEST_FACES)
    assert not set(hs.TRAIN_FACES) & set(hs.TEST_FACES)
    assert not set(hs._words("train")) & set(hs._words("test"))
    assert all(set(t) <= set(hs.ALPHABET) and 2 <= len(t) <= 8 for t in train.texts)
    assert all(np.isfinite(x).all() and len(x) >= 2 for x in train.x + test.x)
    again = hs.load("train", 40)
    assert again.texts == train.texts and all(
        np.array_equal(a, b) for a, b in zip(again.x, train.x, strict=True))


def test_distinct_faces_draw_distinct_glyphs():
    faces = hs.TRAIN_FACES + hs.TEST_FACES
    drawn = {f: str([s.tolist() for s in hs.glyph_strokes(hs.ALPHABET, f)]) for f in faces}
    assert len(set(drawn.values())) == len(faces)


@pytest.mark.parametrize("call, match", [
    (lambda: hs.glyph_strokes("Hi!", "futural"), "only"),
    (lambda: hs.glyph_strokes("", "futural"), "non-empty"),
    (lambda: hs.glyph_strokes("hi", "gothgbt"), "unknown face"),  # = gothiceng
    (lambda: hs.load("val", 3), "splits"),
    (lambda: hs.load("train", 0), "count"),
])
def test_refusals(call, match):
    with pytest.raises(DataError, match=match):
        call()


def test_fresh_draws_of_the_training_split(monkeypatch):
    monkeypatch.setitem(hs.SPLITS, "train", ("train", 20, 0))  # the real one has 16,000
    hs._fixed.cache_clear()
    try:
        first = hs.load_split("train:1")
        assert first.texts == hs.load_split("train:1").texts  # deterministic
        assert hs.load_split("train:0") is hs.load_split("train")
        assert first.texts != hs.load_split("train").texts
        assert len(first.x) == 20 and set(first.faces) <= set(hs.TRAIN_FACES)
    finally:
        hs._fixed.cache_clear()
    for bad in ("test:1", "train:x", "val"):
        with pytest.raises(DataError, match="splits"):
            hs.load_split(bad)
