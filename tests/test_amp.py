"""amp_bilstm: the peptide data (deduplicated, conflicts dropped, homology split by cd-hit
clusters), FASTA input and its refusals, and the tiny variant trained, exported to both
formats and verified."""

from __future__ import annotations

import json

import numpy as np
import pytest

import zoo
from zoo.datasets import peptides
from zoo.errors import DataError, ShapeError
from zoo.tasks import get_task

META = zoo.get_spec("amp_bilstm_tiny").meta


# --- the data ---------------------------------------------------------------------------------


def test_rows_are_deduplicated_and_conflicting_labels_dropped():
    seqs, y, counts = peptides.amp_vs_uniprot()
    assert counts == {"rows": 5200, "unique": 4642, "duplicated": 222, "conflicting": 22}
    assert len(seqs) == len(set(seqs)) == 4620 == len(y)
    rows = peptides.read_modlamp_csv(peptides.package_file("modlamp", peptides.AMP_FILE,
                                                           "peptides"))
    labels = {}
    for s, label in rows:
        labels.setdefault(s, set()).add(label)
    conflicting = {s for s, v in labels.items() if len(v) > 1}
    assert not conflicting & set(seqs)
    assert all(y[i] in labels[s] for i, s in enumerate(seqs))


def test_no_cluster_spans_train_and_test_and_the_splits_partition_the_data():
    seqs = peptides.amp_vs_uniprot()[0]
    cluster = dict(zip(seqs, peptides.clusters(), strict=True))
    train, test = peptides.load("train"), peptides.load("test")
    assert not {cluster[s] for s in train.texts} & {cluster[s] for s in test.texts}
    assert sorted(train.texts + test.texts) == list(seqs)
    assert len(test.texts) == round(peptides.TEST_SHARE * len(seqs))
    rtrain, rtest = peptides.load("random_train"), peptides.load("random_test")
    assert not set(rtrain.texts) & set(rtest.texts)
    assert len(rtrain.texts) + len(rtest.texts) == len(seqs)
    assert peptides.load("calibration").texts == train.texts[:200]
    assert peptides.load("train_small").texts == train.texts[:512]


def test_the_shipped_cluster_assignment_is_the_one_for_the_data(tmp_path, monkeypatch):
    """The shipped assignment is keyed by the data's digest: another key is not read, and
    without cd-hit the loader says how to fetch it."""
    seqs = peptides.amp_vs_uniprot()[0]
    key = peptides.cluster_key(seqs)
    assert peptides.read_clusters(peptides.SHIPPED_CLUSTERS, key, len(seqs)) is not None
    assert peptides.read_clusters(peptides.SHIPPED_CLUSTERS, "0" * 64, len(seqs)) is None
    monkeypatch.setenv("LSTM_ZOO_CDHIT", str(tmp_path / "none"))
    with pytest.raises(DataError, match="lstm-zoo fetch-data"):
        peptides.run_cdhit(["GIGK", "KWKK"])


@pytest.mark.skipif(peptides.cdhit_path() is None, reason="cd-hit not fetched "
                    "(lstm-zoo fetch-data)")
def test_cdhit_recomputes_the_shipped_cluster_assignment():
    assert np.array_equal(peptides.run_cdhit(peptides.amp_vs_uniprot()[0]),
                          peptides.clusters())


def test_homology_mask_takes_whole_clusters():
    groups = np.repeat(np.arange(50), np.arange(1, 51))
    mask = peptides.homology_test_mask(groups, 0.2)
    assert mask.sum() == round(0.2 * len(groups))
    for g in range(50):
        assert len(set(mask[groups == g])) == 1


def test_anticancer_peptides_leave_out_what_pretraining_saw(tmp_path):
    acp = peptides.anticancer()
    assert not set(acp.texts) & set(peptides.amp_vs_uniprot()[0])
    assert len(set(acp.texts)) == len(acp.texts) and set(acp.y.tolist()) == {0, 1}
    path = peptides.write_tsv(tmp_path / "acp.tsv", acp)
    assert path.read_text().splitlines()[:1] == ["text\tlabel"]


# --- input --------------------------------------------------------------------------------------


def test_fasta_and_a_sequence_are_read(tmp_path):
    task = get_task("peptide")
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text(">magainin 2\nGIGKFLHSAKK\nFGKAFVGEIMNS\n>b\nkwkl fkki\n")
    assert task.parse_inputs(str(fasta), META) == ["GIGKFLHSAKKFGKAFVGEIMNS", "kwkl fkki"]
    lines = tmp_path / "seqs.txt"
    lines.write_text("GIGK\n\nKWKX\n")
    assert task.parse_inputs(str(lines), META) == ["GIGK", "KWKX"]
    assert task.parse_inputs("GLFDIIKKIAESF", META) == ["GLFDIIKKIAESF"]
    assert task.encode("ACDY", META).tolist() == [2, 3, 4, 21]


@pytest.mark.parametrize("text, match", [
    ("", "empty sequence"), ("GIG1K", r"\['1'\], which are not amino-acid codes"),
    ("A" * 201, "201 residues; the model was trained on at most 200")])
def test_bad_sequences_are_refused(text, match):
    with pytest.raises(ShapeError, match=match):
        get_task("peptide").check_input(text, META)


# --- the tiny model, trained, exported, predicted -------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from export import export_model
    from zoo.train import train

    out = tmp_path_factory.mktemp("amp")
    meta = train("amp_bilstm_tiny", out_dir=out, verbose=0, epochs=1)
    report = export_model("amp_bilstm_tiny", out / "bundle", weights=out / meta["file"],
                          limit=64)
    return out / "bundle", report


def test_tiny_exports_fused_and_passes_parity(bundle):
    root, _ = bundle
    parity = json.loads((root / "parity.json").read_text())
    assert parity["passed"], parity
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["task"] == "peptide" and manifest["meta"]["alphabet"] == META["alphabet"]
    assert all(a["all_fused"] for a in manifest["artifacts"])


def test_cli_predicts_one_probability_per_sequence(bundle, tmp_path, capsys):
    from export.cli import main

    fasta = tmp_path / "seqs.fasta"
    fasta.write_text(">a\nGIGKFLHSAKKFGKAFVGEIMNS\n>b\nMSTNPKPQRKTKRNTNRRPQDVKFPG\n")
    assert main(["predict", str(bundle[0]), "--input", str(fasta)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["[0]", "amp"], ["[1]", "amp"]]
    assert all(0.0 <= float(line.split()[2]) <= 1.0 for line in lines)


@pytest.mark.parametrize("content, match", [
    (">a\nGIG1K\n", "not amino-acid codes"), (">a\n\n", "has no sequence"),
    (">a\n" + "K" * 201 + "\n", "at most 200"), (b"\xff\xfe>a\nKK", "cannot read it"),
    ("", "no sequence")])
def test_cli_refuses_bad_fasta_with_one_error_line(bundle, tmp_path, capsys, content, match):
    from export.cli import main

    fasta = tmp_path / "bad.fasta"
    (fasta.write_bytes if isinstance(content, bytes) else fasta.write_text)(content)
    try:
        code = main(["predict", str(bundle[0]), "--input", str(fasta)])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and errors[0].startswith("error: ") and match in errors[0], err


def test_finetune_refuses_a_bad_peptide_by_line_before_training(tmp_path):
    """A training run of fine-tuning is benchmarks/transfer.py's (amp_bilstm); here, the
    peptide TSV is read and each sequence checked by the task's encoder first."""
    from zoo.finetune import finetune

    acp = peptides.anticancer()
    pick = [*np.flatnonzero(acp.y == 0)[:10], *np.flatnonzero(acp.y == 1)[:10]]
    data = peptides.write_tsv(tmp_path / "acp.tsv", type(acp)(
        tuple("GIGK7K" if i == pick[3] else acp.texts[i] for i in pick), acp.y[pick]))
    with pytest.raises(ShapeError, match=r"acp.tsv, line 5: .*\['7'\]"):
        finetune("amp_bilstm_tiny", data, tmp_path / "model", from_scratch=True, verbose=0)
    assert not (tmp_path / "model").exists()
