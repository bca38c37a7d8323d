import numpy as np
import pytest

from zoo import datasets
from zoo.datasets import basicmotions, cmudict
from zoo.errors import DataError, MissingExtraError


def test_basicmotions_official_split():
    train, test = basicmotions.load("train"), basicmotions.load("test")
    assert train.x.shape == test.x.shape == (40, 100, 6)
    assert np.bincount(test.y).tolist() == [10, 10, 10, 10]
    assert train.classes == ("Standing", "Running", "Walking", "Badminton")
    assert np.isfinite(train.x).all()
    assert not np.array_equal(train.x, test.x)


def test_parse_ts_rejects_garbage():
    with pytest.raises(DataError, match="no @data"):
        basicmotions.parse_ts("@problemName x\n")
    with pytest.raises(DataError, match="line 3"):
        basicmotions.parse_ts("@classLabel true a b\n@data\n1,x:a\n")


def test_cmudict_splits_are_disjoint_and_stressless():
    splits = {s: set(cmudict.load(s).words) for s in cmudict.SPLITS}
    assert not splits["train"] & splits["test"] and not splits["val"] & splits["test"]
    test = cmudict.load("test")
    assert len(test) > 2000
    phones = {p for t in test.targets for p in t}
    assert phones <= set(cmudict.PHONEMES)
    # alternative pronunciations are kept as references
    assert any(len(r) > 1 for r in test.references)


def test_unknown_split_and_dataset():
    with pytest.raises(DataError, match="splits"):
        cmudict.load("dev")
    with pytest.raises(DataError, match="unknown dataset"):
        datasets.load("mnist", "train")


def test_every_model_names_a_registered_dataset_and_carries_its_license_and_extra():
    from zoo import get_spec, list_models

    for name in list_models():
        data = get_spec(name).data
        registered = datasets.get_dataset(data.dataset)
        assert (data.license, data.extra) == (registered.license, registered.extra), name
    assert sorted(datasets.list_datasets()) == datasets.list_datasets()
    with pytest.raises(ValueError, match="already registered"):
        datasets.register_dataset("basicmotions", license="")(basicmotions.load)


def test_fetch_data_runs_each_registered_fetch_once_optional_last(monkeypatch, capsys):
    from export.cli import main
    from zoo.datasets import Dataset, Fetch, catalog

    calls = []
    later = Fetch(lambda root: calls.append(("later", root)) or "later: skipped", "later",
                  optional=True)
    files = Fetch(lambda root: calls.append(("files", root)) or f"files in {root}", "files",
                  option="--files-to", option_help="where the files go")
    monkeypatch.setattr(catalog, "_DATASETS", {
        "a": Dataset("a", None, "", "", later), "b": Dataset("b", None, "", "", files),
        "c": Dataset("c", None, "", "", files), "d": Dataset("d", None, "", "data")})
    assert main(["fetch-data", "--files-to", "/somewhere"]) == 0
    assert calls == [("files", "/somewhere"), ("later", None)]  # b and c share one fetch
    assert capsys.readouterr().out == "files in /somewhere\nlater: skipped\n"


def test_missing_package_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"lstm-zoo\[speech\]"):
        datasets.package_file("no_such_pkg_lstm_zoo", "x.csv", "speech")


def test_japanese_vowels_official_split_and_resampling():
    from zoo.datasets import japanese_vowels

    train, test = japanese_vowels.load("train"), japanese_vowels.load("test")
    assert len(train.x) == 270 and len(test.x) == 370 and len(train.classes) == 9
    assert np.bincount(train.y).tolist() == [30] * 9
    lengths = [len(x) for x in train.x + test.x]
    assert min(lengths) == 7 and max(lengths) == 29 and train.x[0].shape[1] == 12
    fixed = japanese_vowels.resample(train.x[:3], 29)
    assert fixed.shape == (3, 29, 12)
    # the end points are kept exactly; a series already 29 long is unchanged
    np.testing.assert_allclose(fixed[:, 0], [x[0] for x in train.x[:3]], atol=1e-6)
    np.testing.assert_allclose(fixed[:, -1], [x[-1] for x in train.x[:3]], atol=1e-6)
    longest = next(x for x in test.x if len(x) == 29)
    np.testing.assert_allclose(japanese_vowels.resample([longest], 29)[0], longest, atol=1e-6)
    with pytest.raises(DataError, match="splits"):
        japanese_vowels.load("val")


def test_mnist_rows_split_is_stratified_and_disjoint():
    from zoo.datasets import mnist_rows

    train, test = mnist_rows.load("train"), mnist_rows.load("test")
    assert train.x.shape == (4000, 28, 28) and test.x.shape == (1000, 28, 28)
    assert np.bincount(train.y).tolist() == [400] * 10
    assert np.bincount(test.y).tolist() == [100] * 10
    assert train.x.min() == 0 and train.x.max() == 255 and train.classes[3] == "3"
    seen = {x.tobytes() for x in train.x}
    assert not any(x.tobytes() in seen for x in test.x)
    with pytest.raises(DataError, match="splits"):
        mnist_rows.load("val")


def test_shifted_batches_translate_images():
    from zoo.datasets import mnist_rows
    from zoo.tasks.classification import shifted_batches

    data = mnist_rows.load("test")
    x, y = np.asarray(data.x[:64]), np.asarray(data.y[:64])
    xb, yb = next(shifted_batches(x, y, 16, np.random.default_rng(0), shift=2))
    assert xb.shape == (16, 28, 28) and xb.dtype == np.float32
    for image, label in zip(xb, yb, strict=True):
        # each output is one input (with its own label) moved by at most 2 pixels
        candidates = [(dy, dx) for i in np.flatnonzero(y == label)
                      for dy in range(-2, 3) for dx in range(-2, 3)
                      if np.array_equal(np.roll(x[i], (dy, dx), (0, 1)), image)]
        assert candidates, "not a shifted input image"
