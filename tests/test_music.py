"""music_lstm: the chorale encoding (by hand, and back from a decoded score), the split,
MIDI / MusicXML writing, bad --out, and the tiny model generating the same music on every
backend (the pretrained model: test_pretrained.py, test_parity_matrix.py)."""

import json

import numpy as np
import pytest

import zoo
from export.cli import main
from zoo.datasets import chorales
from zoo.errors import DataError, MissingExtraError, ShapeError

music21 = pytest.importorskip("music21")
META = zoo.get_spec("music_lstm").meta


def _score(sharps: int, voices):
    """A score with one part per voice of ``voices``: (name, [(midi or None, quarters)])."""
    score = music21.stream.Score()
    for name, notes in voices:
        part = music21.stream.Part()
        part.partName = name
        part.insert(0, music21.key.KeySignature(sharps))
        offset = 0.0
        for midi, length in notes:
            part.insert(offset, music21.note.Rest(quarterLength=length) if midi is None else
                        music21.note.Note(midi, quarterLength=length))
            offset += length
        score.insert(0, part)
    return score


def test_encoding_by_hand_transposes_to_c_and_holds_and_rests():
    # two sharps (D major): everything moves down 2 semitones, D -> C
    score = _score(2, [("Soprano", [(74, 0.5), (76, 0.25), (None, 0.25)]),
                       ("Alto", [(69, 1.0)]),
                       ("Tenor", [(None, 0.5), (66, 0.5)]),
                       ("Bass", [(50, 0.25), (50, 0.25), (62, 0.5)])])
    p = chorales.pitch_char
    assert chorales.encode_score(score) == "".join(line + "\n" for line in (
        p(72) + p(67) + "." + p(48),
        "--." + p(48),
        p(74) + "-" + p(64) + p(60),
        ".---"))
    # flats: three (E-flat major) move down 3 semitones, E-flat -> C
    assert chorales.encode_score(_score(-3, [(v, [(60, 0.25)]) for v in chorales.VOICES])) \
        == p(57) * 4 + "\n"
    # not the four voices: not a chorale for this model
    assert chorales.encode_score(_score(0, [("Soprano", [(60, 1.0)])])) is None
    with pytest.raises(ShapeError, match="outside the encoded range"):
        chorales.pitch_char(100)


def test_decoding_gives_back_the_frames_and_skips_malformed_lines():
    p = chorales.pitch_char
    text = "\n\n" + "".join(line + "\n" for line in (
        p(72) + p(67) + "." + p(48), "--." + p(48), p(74) + "-" + p(64) + p(60), "-.--",
        "bad", "x" * 4, "..--"))
    score, frames, skipped = chorales.decode(text)
    assert (frames, skipped) == (5, 2)
    assert [p.partName for p in score.parts] == list(chorales.VOICES)
    soprano = [(n.pitch.midi if n.isNote else None, n.quarterLength)
               for n in score.parts[0].flatten().notesAndRests]
    assert soprano == [(72, 0.5), (74, 0.5), (None, 0.25)]
    # decoded music encodes to the same frames (C major: no shift)
    good = [line for line in text.split("\n") if len(line) == 4 and "x" not in line]
    assert chorales.encode_score(score) == "".join(line + "\n" for line in good)
    with pytest.raises(ShapeError, match="no frame of four voices"):
        chorales.decode("abc\n\n12\n")


def test_split_by_chorale_and_vocabulary():
    names = chorales.names()  # 371 listed, 350 distinct, one the same music as another
    assert len(names) == len(set(names)) == 349 and set(chorales.DUPLICATES).isdisjoint(names)
    assert [chorales.split_of(i) for i in (0, 5, 7, 10, 15)] == \
        ["test", "calibration", "train", "test", "calibration"]
    test = chorales.load("test")
    assert test.ids.shape == (128, chorales.CHUNK + 1) and (test.ids > 0).all()
    text = chorales.text("test")
    assert text.startswith("\n") and set(text) <= set(META["chars"]) == set(chorales.CHARS)
    lines = text.split("\n")
    assert all(len(line) in (0, 4) for line in lines)
    assert len(chorales.chorales("test")) == 32  # of 35 test names, 32 have four voices
    # no chorale is in two splits, nor twice in one
    every = [c for split in ("test", "calibration", "train") for c in chorales.chorales(split)]
    assert len(every) == len(set(every)) == 327
    np.testing.assert_allclose(test.naive[0], -np.log(chorales.unigram()[test.ids[0, 1:]])
                               .sum())
    with pytest.raises(DataError, match="splits"):
        chorales.load("valid")


def test_write_midi_and_musicxml_atomically(tmp_path):
    text = chorales.chorales("test")[0]
    for name in ("c.mid", "c.musicxml"):
        frames, skipped = chorales.write(text, tmp_path / name)
        assert skipped == 0 and frames == text.count("\n")
        back = music21.converter.parse(tmp_path / name)
        assert len(back.parts) == 4
    with pytest.raises(ShapeError, match="expected a .mid"):
        chorales.write(text, tmp_path / "c.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mid", "c.musicxml"]


def test_generate_out_is_checked_before_the_model_loads(tmp_path, capsys, monkeypatch):
    assert main(["generate", "char_lm_tiny", "--out", str(tmp_path / "x.mid")]) == 2
    assert "text is written as .txt; got suffix '.mid'" in capsys.readouterr().err
    assert main(["generate", "music_lstm_tiny", "--out", str(tmp_path / "x.wav")]) == 2
    assert "music is written as .mid, .midi, .musicxml, .xml, .txt" in capsys.readouterr().err
    assert main(["generate", "music_lstm_tiny", "--out", str(tmp_path / "no" / "x.mid")]) == 2
    assert "expected a file in an existing folder" in capsys.readouterr().err

    def no_music21():
        raise MissingExtraError("music21 is not installed")

    monkeypatch.setattr(chorales, "require_music21", no_music21)
    assert main(["generate", "music_lstm_tiny", "--out", str(tmp_path / "x.mid")]) == 2
    assert "music21 is not installed" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_tiny_model_generates_the_same_music_everywhere(tmp_path, capsys):
    from export import export_model
    from zoo.generate import generate
    from zoo.graphs import keras_graphs
    from zoo.train import train

    meta = train("music_lstm_tiny", out_dir=tmp_path, verbose=0)
    assert meta["metrics"]["test"]["stream_max_diff"] < 1e-5
    out = tmp_path / "bundle"
    report = export_model("music_lstm_tiny", out, weights=tmp_path / meta["file"],
                          precisions=("fp32",))
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(a["all_fused"] for a in manifest["artifacts"] if a["graph"] == "lm")
    spec = zoo.get_spec("music_lstm_tiny")
    model = zoo.create_model("music_lstm_tiny", weights=tmp_path / meta["file"])
    prompt = chorales.chorales("test")[0][:40]  # eight frames: the file has music
    expected = generate(keras_graphs(spec, model), spec.meta, length=120, prompt=prompt,
                        seed=3, top_k=5)
    assert set(expected) <= set(chorales.CHARS)
    for backend in ("litert", "onnx"):
        mid = tmp_path / f"{backend}.mid"
        assert main(["generate", str(out), "--backend", backend, "--length", "120",
                     "--prompt", prompt, "--top-k", "5", "--seed", "3", "--out",
                     str(mid)]) == 0
        printed = capsys.readouterr().out
        assert printed.startswith(expected + "\n") and f"wrote {mid}" in printed
    # the same text makes the same MIDI file on both backends
    assert (tmp_path / "litert.mid").read_bytes() == (tmp_path / "onnx.mid").read_bytes()
