"""handwriting_ctc: the CTC task, its training batches and loss, and the tiny recogniser
exported and verified on LiteRT and ONNX Runtime."""

import json

import numpy as np
import pytest

import zoo
from zoo.errors import DataError, ShapeError
from zoo.tasks import get_task

pytest.importorskip("HersheyFonts")

from zoo.datasets import hershey_strokes as hs  # noqa: E402

META = zoo.get_spec("handwriting_ctc").meta
TASK = get_task("ctc")


def test_labels_and_transcripts_round_trip():
    labels = TASK.labels("zebra", META)
    assert labels == [26, 5, 2, 18, 1]  # blank is 0
    assert TASK.transcript(labels, META) == "zebra"
    with pytest.raises(ShapeError, match=r"\['Z'\] outside the alphabet"):
        TASK.labels("Zebra", META)


def test_score_is_character_error_rate_over_all_characters():
    data = hs.StrokeData(x=[np.zeros((1, 3))] * 2, texts=["cat", "house"], faces=["", ""])
    assert TASK.score(["cot", "house"], data, META) == {"cer": 1 / 8, "word_accuracy": 0.5}
    assert TASK.score(["", "hose"], data, META)["cer"] == 4 / 8


def test_predict_decodes_each_trajectory_greedily():
    frames = np.eye(27, dtype=np.float32)[[1, 0, 1, 1, 2, 0]][None]  # a _ a a b _

    def graph(feeds):
        assert feeds["strokes"].shape == (1, 20, 3)
        return {"probs": frames}

    assert TASK.predict({"recognizer": graph}, [np.zeros((20, 3))], META) == ["aab"]


def test_ctc_batches_pad_at_the_end_and_count_each_samples_frames():
    from zoo.tasks.ctc_recognition import ctc_batches

    data = hs.load("train", 40, seed=3)
    batches = ctc_batches(data, META, 8, 4, np.random.default_rng(0))
    seen = []
    for x, (labels, label_length, frames) in batches:
        assert x.dtype == np.float32 and x.shape[1] % 4 == 0 and len(x) <= 8
        for r in range(len(x)):
            text = TASK.transcript(labels[r, : label_length[r]].tolist(), META)
            assert not labels[r, label_length[r]:].any()
            assert not x[r, frames[r] * 4 :].any()  # nothing but padding after its frames
            seen.append((text, int(frames[r])))
    expected = [(t, -(-len(x) // 4)) for t, x in zip(data.texts, data.x, strict=True)]
    assert sorted(seen) == sorted(expected)


def test_ctc_training_lowers_the_loss():
    from zoo._keras import keras, tf
    from zoo.tasks.ctc_recognition import CTCTrainer, ctc_batches

    keras.utils.set_random_seed(0)
    model = zoo.create_model("handwriting_ctc_tiny", units=(16,))
    data = hs.load("train", 64, seed=1)
    batches = ctc_batches(data, META, 16, 4, np.random.default_rng(0))
    trainer = CTCTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    train_step = tf.function(trainer.train_step, reduce_retracing=True)

    def loss():
        return float(np.mean([trainer._loss(b, False) for b in batches]))

    before = loss()
    assert np.isfinite(before) and before > 0
    for _ in range(8):
        for b in batches:
            train_step(b)
    assert loss() < 0.8 * before


def test_from_points_resamples_absolute_strokes():
    strokes = [s.tolist() for s in hs.glyph_strokes("pen", "futural")]
    rows = hs.from_points(strokes, hs.BODY)
    np.testing.assert_array_equal(rows, hs.write("pen", "futural", hs.WriterStyle(),
                                                 np.random.default_rng(0)))
    doubled = hs.from_points([[[2 * x, 2 * y] for x, y in s] for s in strokes], 2 * hs.BODY)
    np.testing.assert_allclose(doubled, rows, atol=1e-6)  # units cancel out


@pytest.mark.parametrize("strokes, height, match", [
    ([], 1.0, "non-empty list of strokes"),
    ([[]], 1.0, r"stroke 0: expected a non-empty list of \[x, y\] pairs"),
    ([[[0, 0], [1]]], 1.0, r"stroke 0 is not a list of \[x, y\] pairs"),
    ([[[0, 0], [1, float("nan")]]], 1.0, "stroke 0 has NaN"),
    ([[[0, 0], [1, 1]]], 0, "body_height must be a positive number; got 0"),
])
def test_from_points_refuses_bad_strokes(strokes, height, match):
    with pytest.raises(DataError, match=match):
        hs.from_points(strokes, height)


@pytest.fixture(scope="module")
def tiny_ctc_bundle(tmp_path_factory):
    """The tiny recogniser, briefly trained, exported at fp32 + dynamic on 60 test words."""
    from export import export_model
    from zoo.train import train

    root = tmp_path_factory.mktemp("ctc")
    meta = train("handwriting_ctc_tiny", out_dir=root / "w", verbose=0)
    out = root / "bundle"
    report = export_model("handwriting_ctc_tiny", out, weights=root / "w" / meta["file"],
                          limit=60)
    return report, out, root / "w" / meta["file"]


def test_tiny_recognizer_exports_fused_with_parity(tiny_ctc_bundle):
    report, out, _ = tiny_ctc_bundle
    assert report["passed"], report["failures"]
    assert {(r["format"], r["precision"]) for r in report["results"]} == {
        ("tflite", "fp32"), ("onnx", "fp32"), ("tflite", "dynamic"), ("onnx", "dynamic")}
    for r in report["results"]:
        if r["precision"] == "fp32":
            assert r["disagreements"] == 0 and r["metric_drop"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])


def test_predict_reads_npy_and_json_strokes(tiny_ctc_bundle, tmp_path, capsys):
    from export.cli import main
    from export.verification.runtime import load_bundle

    _, out, _ = tiny_ctc_bundle
    strokes = [s.tolist() for s in hs.glyph_strokes("zoo", "timesi")]
    rows = hs.from_points(strokes, hs.BODY)
    expected = load_bundle(out).predict([rows], backend="keras")[0]
    files = {"s.npy": None, "rows.json": rows.tolist(),
             "abs.json": {"strokes": strokes, "body_height": hs.BODY}}
    for name, content in files.items():
        path = tmp_path / name
        if content is None:
            np.save(path, rows)
        else:
            path.write_text(json.dumps(content))
        for backend in ("litert", "onnx"):
            assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
            assert capsys.readouterr().out.strip() == expected


@pytest.mark.parametrize("name, content, match", [
    ("nan.npy", np.array([[0, 0, 1], [np.nan, 0, 0]]), "1 value.s. are NaN"),
    ("flat.npy", np.zeros(5), r"expected shape \(time, 3\)"),
    ("empty.npy", np.zeros((0, 3)), r"time >= 1, got \(0, 3\)"),
    ("long.npy", np.tile([[0.01, 0.0, 0.0]], (4001, 1)), "4001 points; the model takes at most "
                                                         "4000"),
    ("pen.npy", np.array([[0, 0, 1], [0.1, 0, 0.5]]), r"pen_up must be 0 or 1; got values \[0.5\]"),
    ("bad.json", "{not json", "cannot read a trajectory"),
    ("keys.json", {"strokes": [[[0, 0]]]}, r"expected keys \['body_height', 'strokes'\]"),
    ("height.json", {"strokes": [[[0, 0]]], "body_height": -1}, "body_height must be a positive"),
    ("s.wav", b"RIFF", "expected a .npy or .json stroke file"),
    ("missing.npy", None, "does not exist"),
])
def test_predict_refuses_bad_stroke_files(tiny_ctc_bundle, tmp_path, capsys, name, content,
                                          match):
    import re

    from export.cli import main

    _, out, _ = tiny_ctc_bundle
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, dict):
        path.write_text(json.dumps(content))
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    assert main(["predict", str(out), "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(match, err), err


def test_beam_search_gives_the_same_transcripts_on_every_backend(tiny_ctc_bundle):
    from export.verification.runtime import load_bundle
    from zoo import datasets

    _, out, _ = tiny_ctc_bundle
    bundle = load_bundle(out)
    inputs = TASK.inputs(datasets.load("hershey_strokes", "test"))[:8]
    meta = {**bundle.meta, "beam_width": 8}
    got = {backend: TASK.predict(bundle.runners(backend, "fp32"), inputs, meta)
           for backend in ("keras", "litert", "onnx")}
    assert got["keras"] == got["litert"] == got["onnx"]
    words = ["zoo", "pen", "lstm"]
    meta["lexicon"] = words
    assert set(TASK.predict(bundle.runners("onnx", "fp32"), inputs, meta)) <= {*words, ""}


def test_predict_with_a_lexicon(tiny_ctc_bundle, tmp_path, capsys):
    from export.cli import main

    _, out, _ = tiny_ctc_bundle
    strokes = tmp_path / "s.npy"
    np.save(strokes, hs.write("zoo", "timesi", hs.WriterStyle(), np.random.default_rng(0)))
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("zoo\n\nlstm\n")
    assert main(["predict", str(out), "--input", str(strokes), "--lexicon", str(lexicon),
                 "--beam", "4"]) == 0
    assert capsys.readouterr().out.strip() in {"zoo", "lstm", ""}
    for args, match in [(["--beam", "0"], "beam width must be in 1..64 for a CTC recogniser; "
                                          "got 0"),
                        (["--lexicon", str(tmp_path / "none.txt")], "does not exist"),
                        (["--lexicon", str(strokes.with_name("bad.txt"))], "line 2: text 'Zoo'")]:
        strokes.with_name("bad.txt").write_text("zoo\nZoo\n")
        assert main(["predict", str(out), "--input", str(strokes), *args]) == 2
        assert match in capsys.readouterr().err


def test_beam_options_are_refused_for_classifiers(tiny_bundles, tmp_path, capsys):
    from export.cli import main

    bundles, _ = tiny_bundles
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((20, 6), np.float32))
    assert main(["predict", str(bundles["bilstm_activity_tiny"]), "--input", str(x),
                 "--beam", "4"]) == 2
    assert "--beam is for CTC recognisers and seq2seq (G2P) models" in capsys.readouterr().err


# --------------------------------------------------------------------------- fine-tuning

WORDS = ["bad", "cab", "dab", "bead", "deed", "ace", "fade", "cafe", "bee", "dace"]


def write_jsonl(path, count, faces, seed=0, absolute=False):
    """``count`` transcribed trajectories of words over the alphabet "abcdef"."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(count):
            word, face = WORDS[i % len(WORDS)], faces[i % len(faces)]
            if absolute:
                item = {"strokes": [s.tolist() for s in hs.glyph_strokes(word, face)],
                        "body_height": hs.BODY}
            else:
                item = {"points": hs.write(word, face, hs.WriterStyle.sample(rng), rng).tolist()}
            f.write(json.dumps({"text": word, **item}) + "\n")
    return path


def test_ctc_recogniser_fine_tunes_to_a_new_alphabet(tiny_ctc_bundle, tmp_path):
    from export import export_model
    from zoo.finetune import finetune

    *_, parent = tiny_ctc_bundle
    data = write_jsonl(tmp_path / "train.jsonl", 30, ["futural", "timesr"])
    test = write_jsonl(tmp_path / "test.jsonl", 6, ["timesi"], seed=1, absolute=True)
    meta = finetune("handwriting_ctc_tiny", data, tmp_path / "m", weights=parent, test=test,
                    head_epochs=2, epochs=2, alphabet="fedcba", verbose=0)
    assert meta["meta"]["alphabet"] == "fedcba" and meta["config"]["alphabet_size"] == 6
    assert meta["transferred_layers"]["logits"] == ("partial: the blank and 6 of 6 symbols "
                                                    "from the parent")
    assert meta["transferred_layers"]["bilstm_0"] == "all"
    assert meta["transferred_layers"]["normalize"] == "all"  # same channels: kept
    assert [p["phase"] for p in meta["phases"]] == ["head", "unfrozen"]
    assert set(meta["metrics"]) == {"val", "test"} and 0 <= meta["metrics"]["test"]["cer"]
    model = zoo.create_model(str(tmp_path / "m"), weights="DEFAULT")
    assert model.output_shape == (None, None, 7)
    report = export_model(str(tmp_path / "m"), tmp_path / "b")
    assert report["passed"], report["failures"]
    assert report["reference"]["metrics"] == pytest.approx(meta["metrics"]["test"])


def test_ctc_fine_tuning_keeps_the_parents_letters_and_their_head_columns(tiny_ctc_bundle,
                                                                          tmp_path):
    from zoo.finetune import finetune

    *_, parent = tiny_ctc_bundle
    data = write_jsonl(tmp_path / "train.jsonl", 12, ["futural"])
    # no training at all (0 epochs is refused; 1 epoch at a vanishing rate): the head is
    # the parent's for every letter, so the model reads as the parent does
    meta = finetune("handwriting_ctc_tiny", data, tmp_path / "m", weights=parent,
                    head_epochs=1, epochs=1, learning_rate=1e-12, verbose=0)
    assert meta["meta"]["alphabet"] == hs.ALPHABET  # the data's 6 letters lack 20 of them
    assert meta["transferred_layers"]["logits"] == ("partial: the blank and 26 of 26 "
                                                    "symbols from the parent")
    before = zoo.create_model("handwriting_ctc_tiny", weights=parent).get_layer("logits")
    after = zoo.create_model(str(tmp_path / "m"), weights="DEFAULT").get_layer("logits")
    for w0, w1 in zip(before.get_weights(), after.get_weights(), strict=True):
        np.testing.assert_allclose(w0, w1, atol=1e-6)


def test_ctc_fine_tuning_refusals(tiny_ctc_bundle, tmp_path):
    from zoo.errors import UnsupportedError
    from zoo.finetune import finetune

    *_, parent = tiny_ctc_bundle
    data = write_jsonl(tmp_path / "train.jsonl", 6, ["futural"])
    with pytest.raises(UnsupportedError, match="multi-worker fine-tuning of ctc models"):
        finetune("handwriting_ctc_tiny", data, tmp_path / "m", weights=parent,
                 strategy="multiworker", verbose=0)
    other = tmp_path / "test.jsonl"
    other.write_text(json.dumps({"text": "zoo", "points": [[0, 0, 1]]}) + "\n")
    with pytest.raises(DataError, match=r"characters \['o', 'z'\] outside the model's alphabet "
                                        "'abcde'"):
        finetune("handwriting_ctc_tiny", data, tmp_path / "m", weights=parent, test=other,
                 alphabet="abcde", verbose=0)
    with pytest.raises(DataError, match="without repeats; got 'aab'"):
        finetune("handwriting_ctc_tiny", data, tmp_path / "m", weights=parent,
                 alphabet="aab", verbose=0)
    assert not any(p.name.startswith((".m", "m")) for p in tmp_path.iterdir())


@pytest.mark.parametrize("name, content, error, match", [
    ("none.jsonl", None, DataError, "does not exist"),
    ("d.csv", "text,points\n", DataError, "unknown data format '.csv'"),
    ("e.jsonl", "", DataError, "no samples found"),
    ("j.jsonl", "{oops\n", DataError, r"j.jsonl:1: not a JSON object"),
    ("k.jsonl", '{"text": "a"}\n', DataError, r"k.jsonl:1: expected"),
    ("t.jsonl", '{"text": " ", "points": [[0, 0, 1]]}\n', DataError, "sample 0 has an empty "
                                                                      "transcript"),
    ("c.jsonl", '{"text": "a", "points": [[0, 1]]}\n', ShapeError, r"sample 0 has shape \(1, 2\)"),
    ("z.jsonl", '{"text": "a", "points": []}\n', ShapeError, r"expected \(time >= 1, 3\)"),
    ("n.jsonl", '{"text": "a", "points": [[0, NaN, 1]]}\n', ShapeError, "NaN or infinite"),
    ("r.jsonl", '{"text": "a", "points": [[0, 1, 1], [2]]}\n', ShapeError,
     "cannot read the points"),
])
def test_transcribed_data_refusals(tmp_path, name, content, error, match):
    from zoo.userdata import load_transcribed

    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=match):
        load_transcribed(path)


def test_transcribed_npz(tmp_path):
    from zoo.userdata import load_transcribed

    a, b = np.zeros((4, 3)), np.ones((2, 3))
    np.savez(tmp_path / "d.npz", points=np.concatenate([a, b]), lengths=[4, 2],
             texts=["ab", "c"])
    data = load_transcribed(tmp_path / "d.npz")
    assert data.alphabet == "abc" and data.texts == ["ab", "c"]
    assert [x.shape for x in data.x] == [(4, 3), (2, 3)]
    np.savez(tmp_path / "bad.npz", points=np.zeros((5, 3)), lengths=[4, 2], texts=["a", "b"])
    with pytest.raises(ShapeError, match="the lengths must add up to the points' rows"):
        load_transcribed(tmp_path / "bad.npz")


@pytest.mark.parametrize("backend", ["torch", "torch-onnx"])
def test_torch_peer_computes_the_same_probabilities(tiny_ctc_bundle, tmp_path, backend):
    pytest.importorskip("torch")
    from benchmarks import torch_peer
    from export.verification.runtime import load_bundle
    from zoo import datasets

    _, out, _ = tiny_ctc_bundle
    bundle = load_bundle(out)
    torch_peer.save_inputs(bundle, tmp_path)
    peer = torch_peer.graphs(bundle, backend, 1, tmp_path)["recognizer"]
    reference = bundle.runners("onnx", "fp32")["recognizer"]
    # lengths on both sides of a multiple of the stride exercise Keras' "same" padding
    x = datasets.load("hershey_strokes", "test").x[0]
    for length in (1, 7, 8, 9, 10, 101, len(x)):
        feed = {"strokes": x[None, :length]}
        np.testing.assert_allclose(peer(feed)["probs"], reference(feed)["probs"], atol=1e-5)


@pytest.mark.parametrize("technique, kwargs", [
    ("prune", {"prune": 0.5}),
    ("structured", {"structured": 0.5}),
    ("cluster", {"cluster": 8}),
    ("qat", {"qat": True, "precisions": "fp32,int8"}),
])
def test_every_compression_technique_runs_on_the_recogniser(tiny_ctc_bundle, tmp_path,
                                                           technique, kwargs):
    """The CTC loss trains through tfmot's wrappers and the smaller rebuilt model; the
    strided Conv1D front end has a structured-pruning rule (its filters are kept) and a QAT
    rule (per output channel)."""
    from export import export_model

    *_, weights = tiny_ctc_bundle
    report = export_model("handwriting_ctc_tiny", tmp_path / "b", weights=weights,
                          finetune_epochs=1, finetune_limit=64, limit=20, **kwargs)
    assert report["passed"], report["failures"]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])
    if technique == "prune":
        assert all(a["weight_sparsity"]["sparsity"] == pytest.approx(0.5, abs=0.02)
                   for a in manifest["artifacts"])
    if technique == "structured":
        assert manifest["reference"]["config"]["units"] == [4]  # 8 -> 4 per direction
