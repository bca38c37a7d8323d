"""speech_ctc: spoken digit strings from the real recordings, and the tiny recogniser
exported, verified and fed WAV files on LiteRT and ONNX Runtime."""

import json
import re
import wave

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo import audio
from zoo.constants import DIGIT_ALPHABET
from zoo.errors import DataError, ShapeError
from zoo.tasks import get_task

pytest.importorskip("espeakng_loader")

from zoo.datasets import digit_strings as ds  # noqa: E402
from zoo.datasets import spoken_digits as sd  # noqa: E402

TASK = get_task("ctc")
META = zoo.get_spec("speech_ctc").meta


def test_join_puts_pauses_between_clips_and_silence_around():
    a, b = np.ones(5, np.float32), 2 * np.ones(3, np.float32)
    x = ds.join([a, b], [4, 99], lead=2, trail=1)
    np.testing.assert_array_equal(x, [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 0])


def test_held_out_strings_are_the_test_speakers_recordings():
    waves, texts, who = ds.held_out_strings(per_speaker=4)
    assert who == [s for s in sd.TEST_SPEAKERS for _ in range(4)]
    assert all(re.fullmatch(r"[0-9]{1,5}", t) for t in texts)
    pad = 1600  # 0.2 s each side, the padding the WAV reader puts back (META)
    assert pad == int(META["padding_seconds"] * META["sample_rate"])
    for x, text, s in zip(waves, texts, who, strict=True):
        clips = sd.human_clips(s)["digits"]
        assert not np.any(x[:pad]) and not np.any(x[-pad:])
        # the first digit's recording starts the string, unaltered
        first = clips[int(text[0])]
        np.testing.assert_array_equal(x[pad : pad + len(first)], first)
        speech = sum(len(clips[int(d)]) for d in text)
        pauses = len(x) - 2 * pad - speech
        assert 800 * (len(text) - 1) <= pauses <= 2400 * (len(text) - 1)
    again = ds.held_out_strings(per_speaker=4)
    assert again[1] == texts
    assert all(np.array_equal(p, q) for p, q in zip(again[0], waves, strict=True))


def test_training_strings_are_reproducible_and_bounded():
    waves, texts = ds.training_strings(6, seed=3, synthetic=0.5)
    again, texts2 = ds.training_strings(6, seed=3, synthetic=0.5)
    assert texts == texts2 and all(np.array_equal(p, q) for p, q in zip(waves, again, strict=True))
    for x, text in zip(waves, texts, strict=True):
        assert x.dtype == np.float32 and np.all(np.abs(x) <= 1.0)
        # at least the leading and trailing silence and ~0.1 s per digit
        assert len(x) >= 1600 + 800 * len(text)
    with pytest.raises(DataError, match=r"splits \['calibration', 'test', 'test_fsdd', 'train', "):
        ds.load("validation")


def test_a_wav_file_reads_as_the_test_strings_were_made(tmp_path):
    waves, _, _ = ds.held_out_strings(per_speaker=1)
    path = tmp_path / "s.wav"
    audio.write_wav(path, waves[0])
    got = TASK.read_speech(str(path), META)
    # trimming takes only what is 35 dB below the loudest 10 ms (the string's own 0.2 s
    # of silence, a recording's fading tail), and the padding is put back
    wave = audio.read_wav(path)
    trimmed = audio.trim_silence(wave)
    start = next(i for i in range(len(wave)) if np.array_equal(wave[i : i + 50], trimmed[:50]))
    cut = np.concatenate([wave[:start], wave[start + len(trimmed):]])
    assert len(cut) >= 2 * (1600 - 400) and np.abs(cut).max() < 10 ** (-30 / 20) * np.abs(
        wave).max()
    pad = np.zeros(int(META["padding_seconds"] * META["sample_rate"]), np.float32)
    np.testing.assert_array_equal(got, audio.log_mel(np.concatenate([pad, trimmed, pad])))
    assert abs(len(got) - len(audio.log_mel(waves[0]))) <= 2


@pytest.fixture(scope="module")
def tiny_speech_bundle(tmp_path_factory):
    """The tiny recogniser, briefly trained on the training speakers' strings, exported at
    fp32 + dynamic and verified on 24 held-out strings."""
    from export import export_model
    from zoo.train import train

    root = tmp_path_factory.mktemp("speech_ctc")
    meta = train("speech_ctc_tiny", out_dir=root / "w", verbose=0)
    out = root / "bundle"
    report = export_model("speech_ctc_tiny", out, weights=root / "w" / meta["file"],
                          precisions=("fp32", "dynamic"), limit=24)
    return report, out, root / "w" / meta["file"]


def test_tiny_recognizer_exports_fused_with_parity(tiny_speech_bundle):
    import json

    report, out, _ = tiny_speech_bundle
    assert report["passed"], report["failures"]
    for r in report["results"]:
        if r["precision"] == "fp32":
            assert r["disagreements"] == 0 and r["metric_drop"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(a["all_fused"] and not a["loops"] for a in manifest["artifacts"])


def test_predict_reads_a_wav_file_on_every_backend(tiny_speech_bundle, tmp_path, capsys):
    from scipy.signal import resample_poly

    from export.verification.runtime import load_bundle

    _, out, _ = tiny_speech_bundle
    waves, _, _ = ds.held_out_strings(per_speaker=1)
    path = tmp_path / "digits.wav"
    audio.write_wav(path, waves[1])
    expected = load_bundle(out).predict([TASK.read_speech(str(path), META)], backend="keras")[0]
    assert set(expected) <= set(DIGIT_ALPHABET)
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        assert capsys.readouterr().out.strip() == expected
    # 16 kHz is resampled, not refused; a digit-string grammar as a lexicon
    audio.write_wav(tmp_path / "16k.wav", resample_poly(audio.read_wav(path), 2, 1), 16000)
    lexicon = tmp_path / "pins.txt"
    lexicon.write_text("1234\n0000\n")
    assert main(["predict", str(out), "--input", str(tmp_path / "16k.wav"), "--lexicon",
                 str(lexicon)]) == 0
    assert capsys.readouterr().out.strip() in {"1234", "0000", ""}


@pytest.mark.parametrize("kind, match", [
    ("stereo", "2 channels; expected mono"),
    ("empty", "no samples"),
    ("long", "11.00 s of audio; this model takes at most 10 s"),
    ("text", "not a PCM WAV file"),
    ("mp3", r"expected a .wav file \(or log-mel frames as .npy or .csv\), got '.mp3'"),
    ("nan", "1 value.s. are NaN"),
    ("shape", r"expected shape \(time, 40\)"),
    ("csv", r"expected shape \(time, 40\) with time >= 1, got \(2, 3\)"),
    ("frames", "1039 frames; the model takes at most 1038"),
    ("missing", r"does not exist; expected a .wav file \(or log-mel frames as .npy or .csv, "
                r"shape \(time, 40\)\)"),
])
def test_predict_refuses_bad_audio(tiny_speech_bundle, tmp_path, capsys, kind, match):
    _, out, _ = tiny_speech_bundle
    suffix = {"mp3": ".mp3", "nan": ".npy", "shape": ".npy", "frames": ".npy",
              "missing": ".NPY", "csv": ".csv"}.get(kind, ".wav")
    path = tmp_path / f"x{suffix}"
    if kind == "missing":
        pass
    elif kind in ("text", "mp3"):
        path.write_text("not audio")
    elif kind == "csv":
        path.write_text("1,2,3\n4,5,6\n")
    elif kind == "nan":
        x = np.zeros((3, 40))
        x[1, 2] = np.nan
        np.save(path, x)
    elif kind in ("shape", "frames"):
        np.save(path, np.zeros((5, 3) if kind == "shape" else (META["max_points"] + 1, 40)))
    else:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(2 if kind == "stereo" else 1)
            w.setsampwidth(2)
            w.setframerate(8000)
            samples = {"empty": 0, "stereo": 8000, "long": 88000}[kind]
            w.writeframes(np.zeros(samples * (2 if kind == "stereo" else 1), "<i2").tobytes())
    assert main(["predict", str(out), "--input", str(path)]) == 2
    assert "Traceback" not in (err := capsys.readouterr().err)
    assert re.search(match, err), err


def test_predict_takes_the_longest_recording_allowed(tiny_speech_bundle, tmp_path, capsys):
    """10 s with no silence to trim, padded as the test strings are: not refused."""
    _, out, _ = tiny_speech_bundle
    path = tmp_path / "ten.wav"
    noise = np.random.default_rng(0).normal(0, 0.1, 10 * META["sample_rate"])
    audio.write_wav(path, np.clip(noise, -1, 1).astype(np.float32))
    assert len(TASK.read_speech(str(path), META)) == META["max_points"]
    assert main(["predict", str(out), "--input", str(path)]) == 0
    assert set(capsys.readouterr().out.strip()) <= set(DIGIT_ALPHABET)


def test_fine_tunes_on_the_users_strings_and_reads_their_wav_files(tiny_speech_bundle,
                                                                    tmp_path):
    """A user's transcribed strings as log-mel frames (.npz: points, lengths, texts, the CTC
    recognisers' format); the fine-tuned model keeps the parent's front end and digits."""
    from zoo.finetune import finetune

    *_, parent = tiny_speech_bundle
    waves, texts, _ = ds.held_out_strings(per_speaker=4)
    frames = [audio.log_mel(w) for w in waves]
    np.savez(tmp_path / "mine.npz", points=np.concatenate(frames),
             lengths=[len(f) for f in frames], texts=texts)
    meta = finetune("speech_ctc_tiny", tmp_path / "mine.npz", tmp_path / "m", weights=parent,
                    head_epochs=1, epochs=1, verbose=0)
    assert meta["meta"]["alphabet"] == DIGIT_ALPHABET
    assert meta["meta"]["sample_rate"] == META["sample_rate"]
    assert meta["transferred_layers"]["bilstm_0"] == "all"
    path = tmp_path / "s.wav"
    audio.write_wav(path, waves[0])
    x = TASK.parse_input(str(path), meta["meta"])
    np.testing.assert_array_equal(x[0], TASK.read_speech(str(path), META))
    model = zoo.create_model(str(tmp_path / "m"), weights="DEFAULT")
    assert model.predict(x, verbose=0).shape[-1] == len(DIGIT_ALPHABET) + 1


def _transcribed_wavs(folder, waves, texts):
    """WAV files in ``folder/clips`` and a transcript list naming them."""
    (folder / "clips").mkdir(parents=True)
    lines = []
    for i, (w, t) in enumerate(zip(waves, texts, strict=True)):
        audio.write_wav(folder / "clips" / f"{i}.wav", w)
        lines.append(json.dumps({"text": t, "wav": f"clips/{i}.wav"}))
    (folder / "mine.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "mine.jsonl"


def test_fine_tunes_on_transcribed_wav_files(tiny_speech_bundle, tmp_path):
    """A .jsonl of {"text", "wav"} lines: each recording read as predict reads it; the data
    record covers the recordings, so changing one is noticed."""
    from zoo.finetune import finetune, load_split
    from zoo.userdata import data_sha256, load_transcribed

    *_, parent = tiny_speech_bundle
    waves, texts, _ = ds.held_out_strings(per_speaker=4)
    path = _transcribed_wavs(tmp_path, waves, texts)
    data = load_transcribed(path, channels=40, audio=META)
    assert data.texts == texts
    np.testing.assert_array_equal(data.x[3], TASK.read_speech(str(tmp_path / "clips/3.wav"),
                                                              META))
    meta = finetune("speech_ctc_tiny", path, tmp_path / "m", weights=parent, head_epochs=1,
                    epochs=1, verbose=0)
    train = meta["data"]["train"]
    assert train["samples"] == len(texts) and train["format"] == "jsonl"
    before = data_sha256(path)
    assert train["sha256"] == before
    val = load_split(str(tmp_path / "m"), "val")  # as export reads the held-out share back
    assert len(val.x) == len(meta["data"]["split"]["val"]) and val.x[0].shape[1] == 40
    audio.write_wav(tmp_path / "clips/3.wav", waves[4])  # the list unchanged, a recording not
    assert data_sha256(path) != before
    with pytest.raises(DataError, match="changed since fine-tuning"):
        load_split(str(tmp_path / "m"), "val")


@pytest.mark.parametrize("kind, error, match", [
    ("missing", DataError, r"mine.jsonl:2: recording 'clips/9.wav' not found"),
    ("stereo", ShapeError, r"mine.jsonl:2: .*2 channels; expected mono"),
    ("no_text", DataError, r"mine.jsonl:2: expected \{\"text\", \"wav\"\}"),
    ("handwriting", DataError, r"mine.jsonl:1: names a recording \(\"wav\"\), but this model "
                               r"reads pen trajectories"),
])
def test_transcribed_wav_files_refused(tmp_path, kind, error, match):
    from zoo.userdata import load_transcribed

    waves, texts, _ = ds.held_out_strings(per_speaker=1)
    path = _transcribed_wavs(tmp_path, waves[:2], texts[:2])
    lines = path.read_text().splitlines()
    if kind == "missing":
        lines[1] = json.dumps({"text": "1", "wav": "clips/9.wav"})
    elif kind == "stereo":
        with wave.open(str(tmp_path / "clips/1.wav"), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(np.zeros(1600, "<i2").tobytes())
    elif kind == "no_text":
        lines[1] = json.dumps({"wav": "clips/1.wav"})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(error, match=match):
        load_transcribed(path, channels=40 if kind != "handwriting" else 3,
                         audio=None if kind == "handwriting" else META)
