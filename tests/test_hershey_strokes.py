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


def _lifts(trajectory) -> int:
    return int(trajectory[:, 2].sum())


def test_stroke_variation_redraws_the_same_shapes():
    plain = hs.write("hold", "scripts", hs.WriterStyle(), np.random.default_rng(0))
    assert np.array_equal(plain, hs.write("hold", "scripts", hs.WriterStyle(),
                                          np.random.default_rng(0), hs.StrokeVariation()))
    letters = hs.letter_strokes("hold", "scripts")
    assert sum(map(len, letters)) == len(hs.glyph_strokes("hold", "scripts"))
    cusps = sum(len(hs.cusps(s, 60.0)) for letter in letters for s in letter)
    assert cusps > 0  # script h, o and d turn sharply

    def drawn(**rates):
        return hs.write("hold", "scripts", hs.WriterStyle(), np.random.default_rng(0),
                        hs.StrokeVariation(**rates))

    lifted = drawn(cusp_lift=1.0, cusp_angle=60.0)
    assert _lifts(lifted) == _lifts(plain) + cusps
    # the same ink: the pen ends where it ended, having visited the same points
    np.testing.assert_allclose(hs.absolute(lifted)[-1], hs.absolute(plain)[-1], atol=1e-3)
    shaded = drawn(shade=1.0, shade_offset=1.0)
    long_strokes = sum(hs.length(s) >= 4.0 for letter in letters for s in letter)
    assert _lifts(shaded) == _lifts(plain) + long_strokes
    backwards = drawn(reverse=1.0)
    assert _lifts(backwards) == _lifts(plain) and not np.allclose(backwards, plain)
    spaced = drawn(gap=5.0)
    width = np.ptp(hs.absolute(spaced)[:, 0]) - np.ptp(hs.absolute(plain)[:, 0])
    assert width == pytest.approx(3 * 5.0, abs=0.5)  # three gaps between four letters


def test_stroke_primitives():
    square = np.array([[0, 0], [4, 0], [4, 4], [4, 4], [0, 4]], float)
    assert hs.cusps(square) == [] and hs.cusps(square, angle=80.0) == [1, 3]
    assert hs.length(square) == 12.0 and hs.length(square[:1]) == 0.0
    pieces = hs.split_stroke(square, [1, 3])
    assert [p.tolist() for p in pieces] == [[[0, 0], [4, 0]], [[4, 0], [4, 4], [4, 4]],
                                            [[4, 4], [0, 4]]]
    assert [len(p) for p in hs.split_stroke(square, [3, 0, 4, 9, 1, 3])] == [2, 3, 2]
    assert [len(p) for p in hs.split_stroke(square, [])] == [5]
    np.testing.assert_allclose(hs.shading(square[:2], 1.0), [[0, 1], [4, 1]])


def test_only_training_writers_vary_their_strokes():
    # the held-out faces' test split is written as the fonts draw it: the first sample
    # is exactly write() without a variation, from the loader's own random stream
    rng = np.random.default_rng([0, True])
    words = hs._words("test")
    word, face = words[int(rng.integers(len(words)))], \
        hs.TEST_FACES[int(rng.integers(len(hs.TEST_FACES)))]
    first = hs.load("test", 1)
    assert first.texts == [word] and np.array_equal(
        first.x[0], hs.write(word, face, hs.WriterStyle.sample(rng), rng))
    # training writers lift the pen more often than the fonts do, on average
    train = hs.load("train", 200, seed=4)
    fonts = [len(hs.glyph_strokes(t, f)) for t, f in zip(train.texts, train.faces,
                                                          strict=True)]
    assert sum(map(_lifts, train.x)) > 1.2 * sum(fonts)
    assert sum(_lifts(x) == n for x, n in zip(train.x, fonts, strict=True)) > 0.2 * 200
