"""bilstm_text: the reviews data, the tokenizer and vocabulary, variable-length input, and
the tiny model's export and predict (the pretrained model: test_pretrained.py,
test_parity_matrix.py)."""

import numpy as np
import pytest

import zoo
from zoo.datasets import reviews
from zoo.errors import DataError, ShapeError
from zoo.models.bilstm_text import unmasked
from zoo.tasks import get_task
from zoo.train import text_batches

TASK = get_task("text")
META = zoo.get_spec("bilstm_text").meta


def test_splits_are_the_real_reviews_and_never_overlap():
    train, test = reviews.load("train"), reviews.load("test")
    assert (len(train), len(test)) == (4000, 993)
    assert not set(train.texts) & set(test.texts)  # the 7 repeated test reviews are dropped
    assert set(np.unique(test.y)) == {0, 1}
    # "great" (index 1) is the majority: the naive baseline the model must beat
    assert np.mean(test.y == 1) == pytest.approx(655 / 993)
    assert reviews.load("calibration").texts == train.texts[:200]
    assert reviews.load("train_small").texts == train.texts[:512]
    with pytest.raises(DataError, match="splits"):
        reviews.load("validation")


def test_shipped_vocabulary_is_rebuilt_from_the_training_split():
    vocab = reviews.build_vocabulary(reviews.load("train").texts)
    assert tuple(vocab) == reviews.vocabulary() == tuple(META["vocab"])
    assert len(vocab) == 7303 and vocab[:3] == ["the", "i", "and"]
    assert zoo.create_model("bilstm_text").get_layer("embedding").input_dim == len(vocab) + 2


def test_tokenizer():
    assert reviews.tokenize("It's GREAT!<br /><br />Don't&amp;buy 2x") == [
        "it's", "great", "don't", "buy", "2x"]
    index = reviews.word_index(["great", "it's"])
    ids = reviews.encode("It's great, zzzqx great", index)
    assert ids.tolist() == [3, 2, reviews.UNKNOWN, 2] and ids.dtype == np.int32
    # only the first max_tokens words are read
    assert len(reviews.encode("great " * 300, index, max_tokens=256)) == 256


@pytest.mark.parametrize("text, match", [
    ("", "has no words"),
    ("   ", "has no words"),
    ("!!! ... <br />", "has no words"),
    (None, "expected a text"),
    (42, "expected a text"),
])
def test_text_without_words_is_refused(text, match):
    with pytest.raises(ShapeError, match=match):
        TASK.check_input(text, META)


def test_unknown_words_are_one_id_not_an_error():
    ids = TASK.encode("qwertyuiop asdfghjkl", META)
    assert ids.tolist() == [reviews.UNKNOWN, reviews.UNKNOWN]


def test_batches_pad_with_zeros_and_cover_every_text_once():
    ids = [np.arange(2, 2 + n, dtype=np.int32) for n in (5, 1, 9, 3, 7, 2, 4)]
    y = np.arange(7)
    batches = text_batches(ids, y, 3, np.random.default_rng(0))
    assert sorted(int(v) for _, yb in batches for v in yb) == list(range(7))
    for tokens, yb in batches:
        for row, label in zip(tokens, yb, strict=True):
            n = len(ids[label])
            assert row[:n].tolist() == ids[label].tolist() and not row[n:].any()


def test_the_unmasked_graph_on_one_text_is_the_masked_model_on_a_padded_batch():
    """Why export needs no mask: a text fed alone at its own length gets the probabilities
    the trained (masked) model gives it inside a padded batch."""
    model = zoo.create_model("bilstm_text_tiny", units=(8, 8))
    rng = np.random.default_rng(0)
    for layer in model.layers:  # random weights, large enough that padding would show
        layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    texts = [rng.integers(2, 50, n).astype(np.int32) for n in (3, 11, 1, 7)]
    padded = np.zeros((len(texts), 11), np.int32)
    for r, t in enumerate(texts):
        padded[r, : len(t)] = t
    batch = model(padded).numpy()
    graph = unmasked(model)
    assert not graph.get_layer("embedding").mask_zero
    for r, t in enumerate(texts):
        np.testing.assert_allclose(graph(t[None]).numpy()[0], batch[r], atol=1e-6)
    # without the mask the padding changes the answer: the mask is doing work
    assert np.abs(graph(padded).numpy() - batch).max() > 1e-3


def test_tiny_export_is_fused_and_predicts(tmp_path, capsys):
    import json

    from export import export_model
    from export.cli import main
    from zoo.train import train

    meta = train("bilstm_text_tiny", out_dir=tmp_path, verbose=0)  # 2 epochs, 512 reviews
    assert meta["split"]["train_samples"] == 512 and meta["metrics"]["test"]["accuracy"] > 0
    out = tmp_path / "bundle"
    report = export_model("bilstm_text_tiny", out, weights=tmp_path / meta["file"], limit=60)
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["meta"]["vocab"] == list(reviews.vocabulary())
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])
    text = tmp_path / "review.txt"
    text.write_text("Delicious, my kids love it.", encoding="utf-8")
    for source in (str(text), "Stale and overpriced."):
        assert main(["predict", str(out), "--input", source]) == 0
        assert capsys.readouterr().out.split()[0] in ("great", "other")
    for source, match in ((str(tmp_path / "missing.txt"), "does not exist"),
                          ("...", "has no words")):
        assert main(["predict", str(out), "--input", source]) != 0
        assert match in capsys.readouterr().err
