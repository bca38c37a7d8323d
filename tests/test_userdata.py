"""The user's own labelled sequences (zoo.userdata): formats and every refusal."""

import numpy as np
import pytest

from zoo.datasets import basicmotions
from zoo.errors import DataError, ShapeError
from zoo.userdata import check_fits, load_sequences, stratified_split


def write_csv(path, rows, header="id,label,a,b"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_npz_with_string_labels_and_channel_names(tmp_path):
    data = basicmotions.load("train")
    names = np.array(data.classes)[data.y]
    np.savez(tmp_path / "d.npz", x=data.x, y=names, channels=np.array(basicmotions.CHANNELS))
    got = load_sequences(tmp_path / "d.npz")
    assert got.x.shape == (40, 100, 6) and got.x.dtype == np.float32
    assert got.classes == tuple(sorted(data.classes))  # sorted: the same data, the same indices
    assert [got.classes[i] for i in got.y] == list(names)
    assert got.channels == basicmotions.CHANNELS
    assert got.source["series"] == 40 and len(got.source["sha256"]) == 64


def test_npz_one_channel_and_default_names(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((4, 7)), y=np.array([0, 1, 0, 1]))
    got = load_sequences(tmp_path / "d.npz")
    assert got.x.shape == (4, 7, 1) and got.channels == ("x0",) and got.classes == ("0", "1")


def test_long_form_csv(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["s1,up,1,2", "s1,up,3,4", "s2,down,5,6", "s2,down,7,8"])
    got = load_sequences(path)
    assert got.x.shape == (2, 2, 2) and got.channels == ("a", "b")
    np.testing.assert_array_equal(got.x[0], [[1, 2], [3, 4]])
    assert [got.classes[i] for i in got.y] == ["up", "down"]


@pytest.mark.parametrize("rows, error, match", [
    (["s1,up,1,2", "s1,up,3,4", "s2,down,5,6"], ShapeError, "ragged series lengths"),
    (["s1,up,1,2", "s2,down,5,6", "s1,up,3,4"], DataError, "not consecutive"),
    (["s1,up,1,2", "s1,down,3,4"], DataError, "one label per series"),
    (["s1,up,1,x"], ShapeError, "non-numeric"),
    (["s1,up,1"], ShapeError, "3 fields; the header has 4"),
    (["s1,,1,2", "s2,down,1,2"], DataError, "empty label"),
    (["s1,up,1,nan", "s2,down,1,2"], ShapeError, "NaN or infinite"),
    ([], DataError, "no series"),
])
def test_csv_refusals(tmp_path, rows, error, match):
    with pytest.raises(error, match=match):
        load_sequences(write_csv(tmp_path / "d.csv", rows))


def test_csv_header_refusals(tmp_path):
    with pytest.raises(DataError, match="lacks column"):
        load_sequences(write_csv(tmp_path / "d.csv", ["1,2"], header="a,b"))
    with pytest.raises(DataError, match="no feature columns"):
        load_sequences(write_csv(tmp_path / "e.csv", ["s1,up"], header="id,label"))
    (tmp_path / "f.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_sequences(tmp_path / "f.csv")


def test_npz_refusals(tmp_path):
    cases = {
        "missing": ({"x": np.ones((2, 3, 1))}, DataError, r"missing array\(s\) \['y'\]"),
        "rank": ({"x": np.ones((2, 3, 1, 1)), "y": [0, 1]}, ShapeError, r"\(N, T, C\)"),
        "count": ({"x": np.ones((2, 3, 1)), "y": [0, 1, 1]}, ShapeError, "N = 2"),
        "dtype": ({"x": np.array([[["a"]], [["b"]]]), "y": [0, 1]}, ShapeError, "real numbers"),
        "ragged": ({"x": np.array([np.ones(3), np.ones(4)], dtype=object), "y": [0, 1]},
                   ShapeError, "ragged"),
        "names": ({"x": np.ones((2, 3, 2)), "y": [0, 1], "channels": ["a"]}, ShapeError,
                  "channels names 1"),
        "inf": ({"x": np.array([[[1.0]], [[np.inf]]]), "y": [0, 1]}, ShapeError,
                r"series 1, step 0, feature 0"),
        "empty": ({"x": np.ones((2, 0, 1)), "y": [0, 1]}, ShapeError, "length 0"),
    }
    for name, (arrays, error, match) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(error, match=match):
            load_sequences(tmp_path / f"{name}.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_sequences(tmp_path / "bad.npz")


def test_path_and_format_refusals(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_sequences(tmp_path / "nope.npz")
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(DataError, match="unknown data format '.json'"):
        load_sequences(tmp_path / "d.json")


def test_labels_outside_the_training_classes(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.ones((2, 3, 1)), y=np.array(["up", "sideways"]))
    with pytest.raises(DataError, match=r"\['sideways'\] are not among"):
        load_sequences(tmp_path / "t.npz", classes=("down", "up"))


def test_check_fits(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((5, 3, 2)), y=np.array(["a", "a", "a", "b", "c"]))
    data = load_sequences(tmp_path / "d.npz")
    with pytest.raises(DataError, match=r"fewer than 2 samples .*'b': 1, 'c': 1.*larger than"):
        check_fits(data, "d.npz")
    check_fits(data, "d.npz", min_per_class=1)
    with pytest.raises(ShapeError, match="has 2 features per step; expected 6"):
        check_fits(data, "d.npz", min_per_class=1, features=6)
    with pytest.raises(DataError, match="one class"):
        check_fits(data.subset([0, 1, 2]), "d.npz")


def test_stratified_split_holds_out_every_class():
    y = np.array([0] * 10 + [1] * 2 + [2] * 5)
    train, held = stratified_split(y, 0.2, seed=0)
    assert not set(train) & set(held) and len(train) + len(held) == len(y)
    assert sorted(np.bincount(y[held]).tolist()) == [1, 1, 2]
    assert all(np.bincount(y[train]) >= 1)
    np.testing.assert_array_equal(held, stratified_split(y, 0.2, seed=0)[1])  # seeded
    with pytest.raises(DataError, match=r"\(0, 1\)"):
        stratified_split(y, 1.0, seed=0)


def test_a_test_file_may_hold_one_class(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.ones((2, 3, 2)), y=np.array(["up", "up"]))
    data = load_sequences(tmp_path / "t.npz", classes=("down", "up"))
    check_fits(data, "t.npz", min_per_class=0, features=2)
    with pytest.raises(DataError, match="one class"):
        check_fits(data, "t.npz")
