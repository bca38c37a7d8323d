"""The handwriting error analysis' pure helpers (benchmarks/handwriting_errors.py): the
alignment and its counts, the trajectory changes and the font-stroke changes. No model."""

import numpy as np
import pytest

from benchmarks import handwriting_errors as he
from zoo.tasks.metrics import edit_distance


def kinds(ref, hyp):
    return "".join(op[0] for op in he.align(ref, hyp))


def test_align_names_each_edit():
    assert kinds("abc", "abc") == "==="
    assert he.align("abc", "axc")[1] == ("S", "b", "x")
    assert he.align("abc", "ac") == [("=", "a", "a"), ("D", "b", None), ("=", "c", "c")]
    assert he.align("abc", "abxc")[2] == ("I", None, "x")
    assert kinds("ab", "") == "DD" and kinds("", "ab") == "II" and he.align("", "") == []


def test_align_costs_the_edit_distance():
    rng = np.random.default_rng(0)
    for _ in range(200):
        ref = "".join(rng.choice(list("abcd"), rng.integers(0, 7)))
        hyp = "".join(rng.choice(list("abcd"), rng.integers(0, 7)))
        ops = he.align(ref, hyp)
        assert sum(k != "=" for k, _, _ in ops) == edit_distance(ref, hyp)
        assert "".join(r for _, r, _ in ops if r) == ref
        assert "".join(h for _, _, h in ops if h) == hyp


def test_tally_and_confusions():
    pairs = [("hello", "hcllo"), ("ab", "ab"), ("ale", "atle"), ("lead", "tead")]
    t = he.tally(pairs)
    assert (t["substitutions"], t["deletions"], t["insertions"]) == (2, 0, 1)
    assert t["chars"] == 14 and t["cer"] == pytest.approx(3 / 14)
    assert t["word_accuracy"] == 0.25
    c = he.confusions(pairs)
    assert sorted(map(tuple, c["substitutions"])) == [("e", "c", 1), ("l", "t", 1)]
    assert c["insertions"] == [("t", 1)] and c["deletions"] == []


def test_by_position_by_length_by_letter():
    pairs = [("abcd", "xbd"), ("ab", "abz"), ("ab", "zab")]
    p = he.by_position(pairs)
    assert p["first"] == {"letters": 3, "errors": 1, "rate": pytest.approx(1 / 3)}
    assert p["middle"] == {"letters": 2, "errors": 1, "rate": 0.5}
    assert p["last"]["errors"] == 0
    assert p["insertions"] == {"before": 1, "inside": 0, "after": 1}
    assert he.by_length(pairs)[2]["cer"] == pytest.approx(2 / 4)
    assert he.by_length(pairs)[4]["word_accuracy"] == 0
    letters = he.by_letter(pairs)
    assert letters["a"] == {"count": 3, "rate": pytest.approx(1 / 3)}
    assert letters["c"]["rate"] == 1.0


def test_bootstrap_interval_and_vote():
    pairs = [("abcd", "abcd")] * 10 + [("abcd", "xbcd")] * 10
    lo, hi = he.bootstrap_cer(pairs, samples=200)
    assert lo <= 0.125 <= hi
    assert he.bootstrap_cer([("ab", "ab")] * 5, samples=10) == [0.0, 0.0]
    assert he.vote(["ab", "cd", "cd", "ab"]) == "ab"  # a tie: the earliest
    assert he.vote(["ab", "cd", "cd"]) == "cd"


def test_trajectory_changes():
    x = np.array([[0, 0, 1], [0.1, 0.2, 0], [0.1, -0.1, 0], [0.5, 0, 1], [0, 0.3, 0]],
                 np.float32)
    out = he.affine(x, scale=2.0, shear=-0.5, width=1.5)
    np.testing.assert_allclose(out[:, 0], (x[:, 0] - 0.5 * x[:, 1]) * 1.5 * 2.0, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], 2 * x[:, 1])
    assert out[:, 2].tolist() == x[:, 2].tolist()
    strokes = he.split_strokes(x)
    assert [len(s) for s in strokes] == [3, 2]
    again = he.resample(x, 1.0)
    assert again[:, 2].sum() == 2  # the same pen lifts
    ends = [s[[0, -1]] for s in he.split_strokes(again)]
    for a, b in zip(ends, strokes, strict=True):  # strokes keep their ends
        np.testing.assert_allclose(a - ends[0][0], b[[0, -1]] - strokes[0][0], atol=1e-5)


def test_stroke_changes_on_the_font():
    pytest.importorskip("HersheyFonts")
    from zoo.datasets import hershey_strokes as hs

    style = hs.WriterStyle.sample(np.random.default_rng(1))
    for face in ("scripts", "scriptc", "futuram"):
        groups = hs.letter_strokes("handset", face)
        assert len(groups) == 7 and sum(map(len, groups)) == len(hs.glyph_strokes("handset",
                                                                                  face))
        np.testing.assert_array_equal(  # the loader's writer, the same draws
            hs.write_strokes(he.flatten(groups), style, np.random.default_rng(4)),
            hs.write("handset", face, style, np.random.default_rng(4)))
    scripts = hs.letter_strokes("handset", "scripts")
    assert he.thin(scripts) == (scripts, 0)  # single-line: nothing drawn twice
    thinned, dropped = he.thin(hs.letter_strokes("handset", "futuram"))
    assert dropped > 0 and [len(g) for g in thinned] == [
        len(g) for g in he.thin(thinned)[0]]  # idempotent
    assert sum(map(len, he.duplex(scripts))) == 2 * sum(map(len, scripts))
    assert all(len(g) == 1 for g in he.chain(hs.letter_strokes("handset", "scriptc")))
    assert sum(map(len, he.split_middle(scripts))) > sum(map(len, scripts))
    assert sum(map(len, he.split_cusps(scripts))) > sum(map(len, scripts))
    moved = he.spaced(scripts, 5.0)
    np.testing.assert_allclose(moved[2][0] - scripts[2][0], [[10.0, 0.0]] * len(moved[2][0]))
    np.testing.assert_allclose(he.reverse(scripts)[0][0], scripts[0][0][::-1])


def test_font_table_finds_duplicates_and_no_free_face():
    pytest.importorskip("HersheyFonts")
    rows = {r["face"]: r for r in he.font_table()}
    assert rows["cursive"]["same_as"] == "scripts" and rows["cursive"]["script_like"]
    assert rows["scriptc"]["role"] == "test" and rows["scripts"]["role"] == "training"
    assert "leak" in rows["music"]["role"]  # draws timesi's lowercase
    assert rows["greek"]["script"] == "Greek"


def test_paired_change():
    before = [("abcd", "abcd")] * 10 + [("abcd", "xbcd")] * 10
    after = [("abcd", "abcd")] * 20
    d, lo, hi = he.paired_change(before, after, samples=200)
    assert d == pytest.approx(-10 / 80) and lo <= d <= hi <= 0
    assert he.paired_change(before, before, samples=10) == [0.0, 0.0, 0.0]


def test_spearman():
    assert he.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert he.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert he.spearman([1, 1, 2], [1, 1, 2]) == pytest.approx(1.0)  # ties
