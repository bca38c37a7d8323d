"""bilstm_text: the reviews data, the tokenizer and vocabulary, variable-length input, and
the tiny model's export and predict (the pretrained model: test_pretrained.py,
test_parity_matrix.py)."""

import json

import numpy as np
import pytest
from conftest import export_model_dir

import zoo
from export.cli import main
from zoo.datasets import reviews
from zoo.errors import DataError, ShapeError, UnsupportedError
from zoo.models.bilstm_text import unmasked
from zoo.tasks import get_task
from zoo.tasks.classification import text_batches

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


def test_word_index_is_built_once_per_vocabulary():
    vocab = ["great", "it's"]
    index = reviews.word_index(vocab)
    assert reviews.word_index(vocab) is index  # the same object: not rebuilt
    other = reviews.word_index(["it's", "great"])  # another list: its own ids
    assert other == {"it's": 2, "great": 3} and index == {"great": 2, "it's": 3}
    vocab.append("buy")  # grown in place: rebuilt
    assert reviews.word_index(vocab) == {"great": 2, "it's": 3, "buy": 4}
    for k in range(20):  # the cache stays bounded and still right after evictions
        assert reviews.word_index([f"w{k}"]) == {f"w{k}": 2}
    assert len(reviews._INDEXES) <= reviews._MAX_INDEXES


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
    from export import export_model
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
    for source in (str(text), "Stale and overpriced.", "Too sweet. " * 40):  # 440 characters
        assert main(["predict", str(out), "--input", source]) == 0
        assert capsys.readouterr().out.split()[0] in ("great", "other")
    for source, match in ((str(tmp_path / "missing.txt"), "does not exist"),
                          ("...", "has no words"),
                          (str(tmp_path / meta["file"]), "not a .txt file")):
        assert main(["predict", str(out), "--input", source]) != 0
        assert match in capsys.readouterr().err


def test_padding_benchmark_measures_every_variant_on_both_runtimes():
    """The machinery of ``python -m benchmarks.text_padding`` (its figures: the shipped
    model, benchmarks/results/text_padding.md), on the tiny model with random weights."""
    from benchmarks import text_padding

    result = text_padding.run("bilstm_text_tiny", weights=None, limit=12, timing=3)
    rows = {(r["variant"], r["format"]): r for r in result["rows"]}
    assert set(rows) == {(v, f) for v in text_padding.VARIANTS for f in ("tflite", "onnx")}
    assert not [r for r in rows.values() if "error" in r]
    # exact length and the mask compute the masked model's function; the fixed-shape
    # graph without a mask computes another one
    for variant in ("exact", "masked"):
        for fmt in ("tflite", "onnx"):
            assert rows[variant, fmt]["max_diff_vs_masked_keras"] <= 1e-5
    assert rows["exact", "tflite"]["recurrent_ops"] == {"UNIDIRECTIONAL_SEQUENCE_LSTM": 2}
    assert "WHILE" in rows["masked", "tflite"]["recurrent_ops"]
    assert rows["pad_post", "onnx"]["max_diff_vs_masked_keras"] > 1e-4
    text = text_padding.markdown({"date": "d", "machine": "m", "result": result})
    assert text.count("\n| ") == 1 + 8 and "random weights" in text  # header + 8 rows


# --------------------------------------------------------------------------- fine-tuning


def write_tsv(path, texts, labels):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels, strict=True))
    return path


def review_task(directory, n_train=80, n_test=60):
    """The user's own data: held-out test reviews (never trained on by the shipped model),
    labelled with new class names, as TSV files."""
    test = reviews.load("test")
    names = np.array(["meh", "love"])[test.y]
    return (write_tsv(directory / "train.tsv", test.texts[:n_train], names[:n_train]),
            write_tsv(directory / "test.tsv", test.texts[n_train:n_train + n_test],
                      names[n_train:n_train + n_test]))


def test_load_texts_reads_quoted_fields_and_indexes_sorted_classes(tmp_path):
    from zoo.userdata import load_texts

    path = tmp_path / "t.tsv"
    path.write_text('id\ttext\tlabel\n1\t"Tabs\tand\nbreaks, quoted"\tb\n2\tplain\ta\n',
                    encoding="utf-8")
    data = load_texts(path)
    assert data.texts == ["Tabs\tand\nbreaks, quoted", "plain"]
    assert data.classes == ("a", "b") and data.y.tolist() == [1, 0]
    assert data.source["format"] == "tsv" and data.source["series"] == 2


@pytest.mark.parametrize("name, content, match", [
    ("t.tsv", "text\tlabel\n", "no rows"),
    ("t.tsv", "", "empty; expected a header"),
    ("t.tsv", "review\tlabel\nnice\ta\n", r"expected 'text' and 'label' \(missing \['text'\]\)"),
    ("t.tsv", "text\tlabel\nnice\t\n", "line 2: empty label"),
    ("t.tsv", "text\tlabel\nnice\ta\n...\tb\n", "line 3: the text '...' has no words"),
    ("t.txt", "text\tlabel\nnice\ta\n", "unknown data format '.txt'"),
])
def test_load_texts_refusals(tmp_path, name, content, match):
    from zoo.userdata import load_texts

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        load_texts(path)


def test_load_texts_quoting_line_numbers_and_byte_order_mark(tmp_path):
    from zoo.userdata import load_texts

    bom = tmp_path / "bom.tsv"
    bom.write_bytes("text\tlabel\nnice\ta\n".encode("utf-8-sig"))
    assert load_texts(bom).texts == ["nice"]
    quoted = tmp_path / "q.tsv"
    quoted.write_text('text\tlabel\n"""Yum"" said my kid"\ta\n', encoding="utf-8")
    assert load_texts(quoted).texts == ['"Yum" said my kid']
    # a quote that opens a field but does not close it is refused, not merged with rows
    for content in ('text\tlabel\n"Yum" said my kid\ta\n',
                    'text\tlabel\n"unclosed\ta\nnext\tb\n'):
        quoted.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match="malformed quoting"):
            load_texts(quoted)
    # the line an error names is the file's line, after a quoted multi-line field too
    multi = tmp_path / "m.tsv"
    multi.write_text('text\tlabel\n"one\ntwo\nthree"\ta\n...\tb\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 5: the text '...' has no words"):
        load_texts(multi)
    with pytest.raises(DataError, match="is a directory"):
        load_texts(tmp_path)


def test_load_texts_refuses_other_encodings_missing_files_and_unknown_labels(tmp_path):
    from zoo.userdata import load_texts

    latin = tmp_path / "latin.tsv"
    latin.write_bytes("text\tlabel\ncaf\xe9\ta\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_texts(latin)
    with pytest.raises(DataError, match="does not exist"):
        load_texts(tmp_path / "missing.tsv")
    ok = write_tsv(tmp_path / "ok.tsv", ["good", "bad"], ["a", "c"])
    with pytest.raises(DataError, match=r"labels \['c'\] are not among"):
        load_texts(ok, classes=("a", "b"))


def test_shipped_text_model_fine_tunes_on_a_tsv_and_exports(tmp_path, capsys):
    from zoo.finetune import METADATA

    train, test = review_task(tmp_path)
    out = tmp_path / "mine"
    assert main(["finetune", "bilstm_text", "--data", str(train), "--test", str(test),
                 "--out", str(out), "--head-epochs", "2", "--epochs", "2", "--patience", "2",
                 "--batch-size", "16"]) == 0
    assert "measured on test" in capsys.readouterr().out
    meta = json.loads((out / METADATA).read_text())
    assert meta["meta"]["classes"] == ["love", "meh"]
    assert meta["meta"]["vocab"] == list(reviews.vocabulary())  # the parent's word ids
    assert meta["transferred_layers"] == {"embedding": "all", "bilstm_0": "all"}
    assert meta["data"]["train"]["format"] == "tsv"
    assert 0 <= meta["metrics"]["test"]["accuracy"] <= 1
    bundle = tmp_path / "bundle"
    export_model_dir(out, bundle, meta, capsys)
    assert main(["predict", str(bundle), "--input", "Wonderful, I love it!"]) == 0
    assert capsys.readouterr().out.split()[0] in ("love", "meh")


def test_text_fine_tuning_refusals_leave_nothing(tmp_path):
    from zoo.finetune import finetune

    one_class = write_tsv(tmp_path / "one.tsv", ["good", "fine", "great"], ["a"] * 3)
    with pytest.raises(DataError, match="found one class"):
        finetune("bilstm_text", one_class, tmp_path / "out", verbose=0)
    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.zeros((4, 3, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="text classifiers take"):
        finetune("bilstm_text", npz, tmp_path / "out", verbose=0)
    ok = write_tsv(tmp_path / "ok.tsv", ["good", "fine", "bad", "awful"], ["a", "a", "b", "b"])
    with pytest.raises(UnsupportedError, match="multi-worker fine-tuning of text models"):
        finetune("bilstm_text", ok, tmp_path / "out", strategy="multiworker", verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tsv", "one.tsv", "x.npz"]
