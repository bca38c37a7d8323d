"""kws_lstm: the spoken-digit data (real asterisk recordings, espeak-ng), the streaming
step graph, and the tiny spotter exported and streamed frame by frame on LiteRT and ONNX
Runtime."""

import json
import os
import re
import stat

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo import audio
from zoo.errors import DataError, ShapeError
from zoo.graphs import KerasGraph
from zoo.tasks import get_task

pytest.importorskip("espeakng_loader")

from zoo.datasets import spoken_digits as sd  # noqa: E402

TASK = get_task("kws")
META = zoo.get_spec("kws_lstm").meta


def test_speakers_are_split_never_clips():
    assert not set(sd.TEST_SPEAKERS) & set(sd.TRAIN_SPEAKERS)
    # Allison speaks English and Spanish: both recordings are held out together.
    test_people = {sd.SPEAKERS[s].directory.split("_")[-1] for s in sd.TEST_SPEAKERS}
    train_people = {sd.SPEAKERS[s].directory.split("_")[-1] for s in sd.TRAIN_SPEAKERS}
    assert not test_people & train_people


@pytest.mark.parametrize("speaker", sorted(sd.SPEAKERS))
def test_every_speaker_has_ten_real_digits_and_other_words(speaker):
    clips = sd.human_clips(speaker)
    assert len(clips["digits"]) == 10 and len(clips["other"]) >= 30
    for x in clips["digits"]:
        assert x.dtype == np.float32 and 0.15 * audio.SAMPLE_RATE < len(x) < 1.5 * audio.SAMPLE_RATE
        assert 0.05 < np.abs(x).max() <= 1.0  # speech, not silence


def test_test_split_is_the_held_out_speakers_unaugmented():
    waves, labels, names = sd.test_windows()
    assert np.bincount(labels).tolist() == [3] * 10 + [90, 20]
    assert {n.split("/")[0] for n in names} == {*sd.TEST_SPEAKERS, "noise"}
    # a digit window is the recording itself, centred: nothing was added to it
    x = sd.human_clips("allison_en")["digits"][7]
    w = waves[names.index("allison_en/digits/7")]
    start = (len(w) - len(x)) // 2
    np.testing.assert_array_equal(w[start : start + len(x)], x)
    assert not w[:start].any()
    data = sd.load("test")
    assert data.x.shape == (140, audio.frames_for(sd.WINDOW), audio.MELS)


def test_training_windows_cover_every_class_and_are_augmented():
    waves, labels = sd.training_windows(120, seed=5)
    assert set(labels.tolist()) == set(range(len(sd.CLASSES)))
    assert waves.shape == (120, sd.WINDOW) and np.all(np.abs(waves) <= 1.0)
    again, _ = sd.training_windows(120, seed=5)
    np.testing.assert_array_equal(waves, again)  # a seed fixes every draw
    # one recording placed twice: another speed, level, position, channel and noise
    x = sd.human_clips("june_fr")["digits"][3]
    rng = np.random.default_rng(0)
    a, b = sd.place(rng, x, augment=True), sd.place(rng, x, augment=True)
    assert not np.allclose(a, b, atol=1e-3)
    plain = sd.place(rng, x, augment=False)
    assert not np.any(plain[: (sd.WINDOW - len(x)) // 2])  # unaugmented: silence around it
    placed = [sd.place(rng, x, True) for _ in range(20)]
    starts = [np.flatnonzero(np.abs(w) > 0.3 * np.abs(w).max())[0] for w in placed]
    assert np.ptp(starts) > 800  # the word moves in the window (by more than 100 ms)


def test_predict_and_the_test_split_window_a_recording_alike():
    """fit_window (predict, WAV folders) and place(augment=False) (the test split) agree,
    for a short recording and for one longer than the window."""
    rng = np.random.default_rng(0)
    for x in (sd.human_clips("allison_en")["digits"][0],
              np.concatenate([sd.human_clips("allison_en")["digits"][0]] * 2)):
        np.testing.assert_array_equal(audio.fit_window(x), sd.place(rng, x, augment=False))


@pytest.mark.parametrize("lang", sd.LANGUAGES)
def test_espeak_says_each_languages_digits(lang):
    synth = sd.Synthesizer()
    lengths = [len(synth.say(word, lang + "+m3")) for word in sd.DIGIT_WORDS[lang][:3]]
    assert all(0.15 * audio.SAMPLE_RATE < n < 1.2 * audio.SAMPLE_RATE for n in lengths)
    with pytest.raises(DataError, match="no voice"):
        synth.say("one", "xx-nonexistent")


def test_missing_recordings_say_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_ZOO_SOUNDS", str(tmp_path / "none"))
    with pytest.raises(DataError, match="lstm-zoo fetch-data"):
        sd.speaker_dir("june_fr")


def test_fetch_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    """apt-get fails (a fake one on PATH): a typed error with its output, no folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    calls = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n"
                    "echo 'E: Unable to locate package' >&2\nexit 100\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "sounds"
    with pytest.raises(DataError, match="Unable to locate package"):
        sd.fetch(root, speakers=("june_fr",))
    assert list(root.iterdir()) == []
    expected = ["download asterisk-core-sounds-fr-wav"]
    if os.geteuid() == 0:  # root refreshes the package lists once before giving up
        expected.append("update -qq")
    assert calls.read_text().split("\n")[:-1] == expected


def test_fetch_refuses_a_folder_in_the_way(tmp_path):
    root = tmp_path / "sounds"
    (root / sd.SPEAKERS["june_fr"].directory).mkdir(parents=True)
    with pytest.raises(DataError, match="exists but has no digits/ folder"):
        sd.fetch(root, speakers=("june_fr",))


def test_fetch_skips_speakers_already_there(tmp_path, monkeypatch):
    root = tmp_path / "sounds"
    (root / sd.SPEAKERS["june_fr"].directory / "digits").mkdir(parents=True)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no apt-get: nothing may run
    assert sd.fetch(root, speakers=("june_fr",)) == root


def test_step_graph_is_the_trained_cell():
    from zoo.models.kws_lstm import step_graph

    model = zoo.create_model("kws_lstm_tiny")
    model.get_layer("normalize").adapt(np.random.default_rng(0).normal(size=(4, 9, 40)))
    step = step_graph(model)
    assert step.input_names == ["frame", "h_0", "c_0"]
    assert step.output_names == ["probs", "h_0_next", "c_0_next"]
    x = np.random.default_rng(1).normal(size=(3, 17, 40)).astype(np.float32)
    graphs = {"classifier": KerasGraph(model), "step": KerasGraph(step)}
    both = TASK.predict(graphs, list(x), zoo.get_spec("kws_lstm_tiny").meta, batch_size=3)
    assert both.shape == (3, 2, len(sd.CLASSES))
    np.testing.assert_allclose(both[:, 0], both[:, 1], atol=1e-6)  # float32 rounding


def test_score_counts_streamed_predictions_and_false_accepts():
    data = sd.SequenceData(np.zeros((4, 1, 40)), np.array([3, 3, 10, 11]), sd.CLASSES)
    eye = np.eye(12, dtype=np.float32)
    full = eye[[3, 3, 10, 11]]
    streamed = eye[[3, 5, 2, 11]]  # a wrong digit, and an unknown word taken for "two"
    scores = TASK.score(np.stack([full, streamed], 1), data, META)
    assert scores["accuracy"] == 0.5 and scores["digit_accuracy"] == 0.5
    assert scores["false_accepts"] == 0.5 and scores["stream_max_diff"] == 1.0


@pytest.fixture(scope="module")
def tiny_kws_bundle(tmp_path_factory):
    """The tiny spotter trained for seconds on 512 windows, exported at fp32 + dynamic."""
    from export import export_model
    from zoo.train import train

    root = tmp_path_factory.mktemp("kws")
    meta = train("kws_lstm_tiny", out_dir=root / "w", verbose=0)
    out = root / "bundle"
    report = export_model("kws_lstm_tiny", out, weights=root / "w" / meta["file"],
                          precisions="fp32,dynamic")
    return report, out, root / "w" / meta["file"]


def test_tiny_spotter_streams_like_the_whole_window_on_every_backend(tiny_kws_bundle):
    report, out, _ = tiny_kws_bundle
    assert report["passed"], [r["checks"] for r in report["results"] if not r["passed"]]
    for r in report["results"]:
        if r["precision"] == "fp32":
            # frame by frame through the step artifact == the classifier artifact
            assert r["metrics"]["stream_max_diff"] <= 1e-6, r["backend"]
            assert r["disagreements"] == 0
    assert report["reference"]["metrics"]["stream_max_diff"] <= 1e-6
    manifest = json.loads((out / "manifest.json").read_text())
    steps = [a for a in manifest["artifacts"] if a["graph"] == "step"]
    assert len(steps) == 4 and all(a["all_fused"] and not a["loops"] for a in steps)
    classifiers = [a for a in manifest["artifacts"] if a["graph"] == "classifier"]
    assert all(a["all_fused"] for a in classifiers)


def test_audio_arriving_in_chunks_streams_to_the_whole_window_answer(tiny_kws_bundle):
    """A device: samples arrive in uneven chunks, StreamingLogMel turns them into frames as
    they complete, each frame goes through the step artifact with the state fed back; the
    answer after the last frame is the classifier's over the whole recording."""
    from export.verification.runtime import load_bundle

    _, out, _ = tiny_kws_bundle
    bundle = load_bundle(out)
    recordings = [audio.fit_window(sd.human_clips("menardi_it")["digits"][4]),
                  audio.fit_window(sd.human_clips("allison_en")["other"][0])]
    for backend in ("litert", "onnx"):
        graphs = bundle.runners(backend, "fp32")
        width = graphs["step"].inputs[1]["shape"][-1]
        for wave in recordings:
            stream = audio.StreamingLogMel()
            state = {"h_0": np.zeros((1, width), np.float32),
                     "c_0": np.zeros((1, width), np.float32)}
            seen = 0
            for chunk in np.split(wave, [37, 1237, 1240, 5000, 7919]):  # 37..2960 samples
                for frame in stream.push(chunk):
                    res = graphs["step"]({"frame": frame[None], **state})
                    state = {"h_0": res["h_0_next"], "c_0": res["c_0_next"]}
                    seen += 1
            assert seen == audio.frames_for(len(wave)) == 98
            whole = graphs["classifier"]({"sequence": audio.log_mel(wave)[None]})["probs"]
            np.testing.assert_allclose(res["probs"], whole, atol=1e-6)


def test_cli_predicts_a_wav_file(tiny_kws_bundle, tmp_path, capsys):
    _, out, _ = tiny_kws_bundle
    path = tmp_path / "three.wav"
    audio.write_wav(path, sd.human_clips("allison_en")["digits"][3])
    assert main(["predict", str(out), "--input", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert sorted(c.split()[0] for c in line.split(", ")) == sorted(sd.CLASSES)
    # the same file at 16 kHz is resampled, not refused
    from scipy.signal import resample_poly

    audio.write_wav(tmp_path / "16k.wav", resample_poly(audio.read_wav(path), 2, 1), 16000)
    assert main(["predict", str(out), "--input", str(tmp_path / "16k.wav")]) == 0


@pytest.mark.parametrize("kind, match", [
    ("stereo", "2 channels; expected mono"),
    ("empty", "no samples"),
    ("long", "3.00 s of audio; this model takes at most 2 s"),
    ("text", "not a PCM WAV file"),
    ("mp3", r"expected a .wav file.*'.mp3'"),
])
def test_cli_refuses_bad_audio(tiny_kws_bundle, tmp_path, capsys, kind, match):
    import wave

    _, out, _ = tiny_kws_bundle
    path = tmp_path / ("x.mp3" if kind == "mp3" else "x.wav")
    if kind == "text" or kind == "mp3":
        path.write_text("not audio")
    else:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(2 if kind == "stereo" else 1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"" if kind == "empty" else
                          np.zeros(24000 * (2 if kind == "stereo" else 1), "<i2").tobytes())
    assert main(["predict", str(out), "--input", str(path)]) == 2
    assert "Traceback" not in (err := capsys.readouterr().err)
    assert re.search(match, err), err


def phonetic_folder(root, words=("a", "b", "c")):
    """A user's keyword folder from real recordings: "alpha", "bravo", "charlie" (the
    phonetic alphabet) said by every speaker that has them, one subfolder per word."""
    for w in words:
        (root / w).mkdir(parents=True)
        for s in sd.SPEAKERS:
            f = sd.sounds_root() / sd.SPEAKERS[s].directory / "phonetic" / f"{w}_p.wav"
            if f.is_file():
                (root / w / f"{s}.wav").write_bytes(f.read_bytes())
    return root


def test_finetunes_on_a_folder_of_wavs_per_label(tiny_kws_bundle, tmp_path):
    from zoo.finetune import finetune
    from zoo.userdata import data_sha256, load_sequences

    _, _, weights = tiny_kws_bundle
    folder = phonetic_folder(tmp_path / "words")
    data = load_sequences(folder)
    assert data.classes == ("a", "b", "c") and len(data.y) == 21  # 7 speakers x 3 words
    # trimmed and centred in 1 s, all padded to the longest
    assert data.x.shape[1] >= audio.frames_for(audio.SAMPLE_RATE)
    assert data.x.shape[2] == audio.MELS
    assert data.source["format"] == "wav-folder"
    meta = finetune("kws_lstm_tiny", folder, tmp_path / "m", weights=weights, head_epochs=2,
                    epochs=2, patience=2, verbose=0)
    assert meta["meta"]["classes"] == ["a", "b", "c"]
    assert "stream_max_diff" in meta["metrics"]["val"]  # the task streamed the held-out split
    from zoo import datasets

    val = datasets.load(f"finetuned:{tmp_path / 'm'}", "val")  # what export reads
    assert len(val.y) == len(meta["data"]["split"]["val"]) and val.x.shape[2] == audio.MELS
    assert meta["meta"]["sample_rate"] == 8000  # the parent's front end travels along
    step = zoo.create_model(str(tmp_path / "m"))
    assert step.output_shape == (None, 3)
    before = data_sha256(folder)
    (folder / "a" / "june_fr.wav").write_bytes((folder / "b" / "june_fr.wav").read_bytes())
    assert data_sha256(folder) != before  # a changed recording is noticed


@pytest.mark.parametrize("layout, match", [
    ("stray", r"WAV files directly in the folder"),
    ("empty_label", r"no \.wav files; expected recordings of label 'b'"),
    ("nothing", r"no label subfolders"),
    ("bad_wav", r"not a PCM WAV file"),
    ("truncated", r"truncated: the header announces 4000 samples"),
    ("hidden_only", r"no label subfolders"),
])
def test_wav_folder_refusals(tmp_path, layout, match):
    from zoo.userdata import load_sequences

    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    if layout != "nothing":
        audio.write_wav(root / "a" / "1.wav", np.zeros(4000, np.float32))
    else:
        (root / "a").rmdir()
    if layout == "stray":
        audio.write_wav(root / "x.wav", np.zeros(4000, np.float32))
    if layout == "empty_label":
        (root / "b").mkdir()
    if layout == "bad_wav":
        (root / "a" / "2.wav").write_text("not audio")
    if layout == "truncated":
        data = (root / "a" / "1.wav").read_bytes()
        (root / "a" / "1.wav").write_bytes(data[:-1001])
    if layout == "hidden_only":  # a notebook's checkpoint folder is no label
        (root / "a" / "1.wav").rename(tmp_path / "1.wav")
        (root / "a").rmdir()
        (root / ".ipynb_checkpoints").mkdir()
        (tmp_path / "1.wav").rename(root / ".ipynb_checkpoints" / "1.wav")
    with pytest.raises((DataError, ShapeError), match=match):
        load_sequences(root)


def test_wav_folder_reads_upper_case_suffixes(tmp_path):
    """A recorder's ``.WAV`` files are recordings too: read, hashed, and refused as strays
    directly in the folder, like ``.wav``."""
    from zoo.userdata import data_sha256, load_sequences

    root = tmp_path / "d"
    for label, name in (("a", "1.WAV"), ("a", "2.wav"), ("b", "3.Wav")):
        (root / label).mkdir(parents=True, exist_ok=True)
        audio.write_wav(root / label / name, np.full(4000, 0.1 * len(name), np.float32))
    data = load_sequences(root)
    assert data.classes == ("a", "b") and len(data.y) == 3
    before = data_sha256(root)
    audio.write_wav(root / "a" / "1.WAV", np.zeros(4000, np.float32))
    assert data_sha256(root) != before  # a changed .WAV recording is noticed
    audio.write_wav(root / "x.WAV", np.zeros(4000, np.float32))
    with pytest.raises(DataError, match=r"WAV files directly in the folder \(\['x.WAV'\]\)"):
        load_sequences(root)


def test_streaming_benchmark_times_the_step_graph_on_each_runtime(tiny_kws_bundle):
    from benchmarks import streaming

    _, out, _ = tiny_kws_bundle
    result = streaming.run("kws_lstm_tiny", repeats=2, windows=1, bundle=out)
    rows = {(r["backend"], r["precision"]): r for r in result["rows"]}
    assert set(rows) == {("keras", "fp32"), ("litert", "fp32"), ("onnx", "fp32"),
                         ("litert", "dynamic"), ("onnx", "dynamic")}
    for r in rows.values():
        assert 0 < r["step"]["median_us"] <= r["step"]["p90_us"] and r["window_us"] > 0
    assert result["units"] == [8] and result["frames_timed"] == 98
    assert result["keras_threads"] in ("1", "TensorFlow's default")  # TF may be running
    text = streaming.markdown({"date": "d", "machine": "m", "result": result})
    assert "| litert | dynamic |" in text and "Goal: <= 15 us per step" in text
