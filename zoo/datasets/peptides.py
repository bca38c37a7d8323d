"""Antimicrobial peptides against random UniProt peptides (modlAMP's ``AMPvsUniProt``: 2,600
from APD3 and 2,600 from UniProt, 4,620 once deduplicated), split by homology with cd-hit:
the 924 test peptides are whole clusters (40 % identity) that no training peptide is in;
and modlAMP's anticancer peptide sets for fine-tuning.

``AMPvsUniProt.csv`` (inside the ``modlamp`` wheel, ``modlamp/data``) holds 2,600
antimicrobial peptides from APD3 (class ``amp``) and 2,600 random UniProt sequences of
7-174 residues (``other``). Only 4,642 of its 5,200 rows are unique: 222 sequences repeat,
22 of them under both labels. The loader keeps each sequence once and drops the 22 whose
label conflicts (4,620 remain).

Two splits of those, both deterministic:

- **homology** (``train`` / ``test``; what the shipped weights use): cd-hit clusters the
  sequences at 40 % identity (``-c 0.4 -n 2``, the shortest word cd-hit allows at that
  threshold; ``-l 5`` keeps the 7-residue peptides that its default would throw away) and
  whole clusters go to one side, so no test peptide has a training relative at or above
  40 % identity to its cluster's representative (cd-hit is greedy: a pair in two clusters
  can still share more than 40 %, but never with the sequence its cluster was built
  around). Clusters are drawn in a seeded order until the test side holds 20 % of the
  sequences.
- **random** (``random_train`` / ``random_test``): 20 % of each class drawn at random, the
  split AMP Scanner vr.2 (Veltri et al. 2018, 91.0 % accuracy) reports on. Near-duplicates
  sit on both sides, so it measures recall of the training families as much as
  generalisation.

The cluster assignment of the shipped data ships beside the weights (:data:`SHIPPED_CLUSTERS`,
one cluster id per sequence, 20 KB), keyed by the sha256 of cd-hit's input and settings: the
homology split loads without cd-hit. Data whose digest differs (another modlamp release) is
clustered by cd-hit once and cached in ``~/.cache/lstm-zoo/peptides``; cd-hit itself is
Debian's package, fetched once by ``lstm-zoo fetch-data`` (``apt-get download cd-hit``) into
``~/.cache/lstm-zoo/cd-hit``. Nothing is downloaded at training or test time.

The anticancer sets (:func:`anticancer`) are for fine-tuning: 413 anticancer peptides
(CancerPPD) against 413 random or 413 transmembrane peptides.

License: modlAMP BSD-3-Clause (Müller et al. 2017); sequences from APD3 (Wang et al. 2016),
UniProt (CC BY 4.0) and CancerPPD (Tyagi et al. 2015).
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from zoo.constants import AMINO_ACID_UNKNOWN, AMINO_ACIDS
from zoo.constants import PEPTIDE_CLASSES as CLASSES  # noqa: F401  (0 other, 1 amp)
from zoo.datasets.catalog import Fetch, package_file, register_dataset
from zoo.datasets.reviews import TextData
from zoo.errors import DataError

LICENSE = ("modlAMP BSD-3-Clause (Müller et al. 2017); peptides from APD3 (Wang et al. 2016) "
           "and UniProt (CC BY 4.0); anticancer sets from CancerPPD (Tyagi et al. 2015)")
EXTRA = "peptides"
AMP_FILE = "data/AMPvsUniProt.csv"
ANTICANCER_FILES = {"random": "data/ACP_CancPPD_vs_Random.csv",
                    "tm": "data/ACP_CancPPD_vs_TM.csv"}
# cd-hit's settings: 40 % identity needs word length 2; -l 5 keeps peptides of 6+ residues
# (the default, 10, throws the shortest APD3 peptides away); one thread, unlimited memory.
CDHIT_ARGS = ("-c", "0.4", "-n", "2", "-l", "5", "-d", "0", "-T", "1", "-M", "0")
TEST_SHARE = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "test", "calibration", "train_small", "random_train", "random_test")
SHIPPED_CLUSTERS = Path(__file__).resolve().parents[1] / "pretrained" / "amp.clusters.txt"


def read_modlamp_csv(path: Path) -> list[tuple[str, int]]:
    """``(sequence, label)`` rows of a modlAMP csv (header ``count,1,negative,positive``;
    label 1 is the positive class); sequences upper-cased and stripped."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    try:
        return [(r[0].strip().upper(), int(r[1])) for r in rows[1:] if r]
    except (IndexError, ValueError) as e:
        raise DataError(f"{path}: expected rows of 'sequence,label'; {e}") from None


def deduplicate(rows) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Each sequence once, sorted, with its label; sequences given both labels are dropped.

    Returns ``(sequences, labels, counts)``; ``counts``: ``rows``, ``unique``,
    ``duplicated`` (sequences seen more than once) and ``conflicting`` (dropped).

    Example:
        >>> seqs, y, counts = deduplicate([("KK", 1), ("AG", 0), ("KK", 1), ("LL", 0), ("LL", 1)])
        >>> seqs, y.tolist(), counts["conflicting"]
        (['AG', 'KK'], [0, 1], 1)
    """
    labels: dict[str, set[int]] = {}
    seen: dict[str, int] = {}
    for seq, label in rows:
        labels.setdefault(seq, set()).add(int(label))
        seen[seq] = seen.get(seq, 0) + 1
    kept = sorted(s for s, v in labels.items() if len(v) == 1)
    counts = {"rows": len(rows), "unique": len(labels),
              "duplicated": sum(1 for n in seen.values() if n > 1),
              "conflicting": len(labels) - len(kept)}
    return kept, np.array([next(iter(labels[s])) for s in kept], np.int64), counts


@cache
def amp_vs_uniprot() -> tuple[tuple[str, ...], np.ndarray, dict[str, int]]:
    """The deduplicated AMPvsUniProt sequences (sorted), labels and counts."""
    rows = read_modlamp_csv(package_file("modlamp", AMP_FILE, EXTRA))
    allowed = set(AMINO_ACIDS + AMINO_ACID_UNKNOWN)
    bad = sorted({c for s, _ in rows for c in s} - allowed)
    if bad:
        raise DataError(f"{AMP_FILE} has characters {bad} that are no amino-acid code")
    seqs, y, counts = deduplicate(rows)
    return tuple(seqs), y, counts


# --------------------------------------------------------------------------- cd-hit


def cache_root() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "lstm-zoo"


def cdhit_path() -> Path | None:
    """The cd-hit binary: ``$LSTM_ZOO_CDHIT``, else the one ``lstm-zoo fetch-data`` put in
    ``~/.cache/lstm-zoo/cd-hit``; ``None`` if neither is there."""
    if os.environ.get("LSTM_ZOO_CDHIT"):
        path = Path(os.environ["LSTM_ZOO_CDHIT"])
        return path if path.is_file() else None
    path = cache_root() / "cd-hit" / "cd-hit"
    return path if path.is_file() else None


def fetch_cdhit(root: str | Path | None = None) -> Path:
    """Downloads Debian's ``cd-hit`` with ``apt-get download`` and keeps its ``cd-hit``
    binary in ``root`` (default ``~/.cache/lstm-zoo/cd-hit``); an existing one is kept.

    Raises:
        DataError: ``apt-get`` or ``dpkg-deb`` is missing or fails, or the package has no
            ``usr/bin/cd-hit``.
    """
    from zoo.datasets.debian import download as _download
    from zoo.datasets.debian import run as _run

    root = Path(root) if root else cache_root() / "cd-hit"
    if (root / "cd-hit").is_file():
        return root / "cd-hit"
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"fetching cd-hit needs {tool!r} (Debian or Ubuntu); alternatively "
                            "install cd-hit yourself and set LSTM_ZOO_CDHIT to its binary")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        _download("cd-hit", tmp)
        deb = next(Path(tmp).glob("cd-hit_*.deb"), None)
        if deb is None:
            raise DataError("apt-get download cd-hit wrote no .deb file")
        _run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], cwd=tmp)
        # usr/bin/cd-hit is a relative link to usr/lib/cd-hit/cd-hit: keep the file itself
        binary = (Path(tmp) / "x" / "usr" / "bin" / "cd-hit").resolve()
        if not binary.is_file() or not binary.is_relative_to(Path(tmp).resolve()):
            raise DataError(f"{deb.name} has no usr/bin/cd-hit; its layout is not the one this "
                            "loader knows")
        binary.chmod(0o755)
        binary.rename(root / "cd-hit")  # atomic: whole or absent
    return root / "cd-hit"


def _fetch_all(root: str | None) -> str:
    return f"cd-hit (homology splits of the peptides) in {fetch_cdhit(root)}"


FETCH = Fetch(_fetch_all, "cd-hit for the peptides' homology split (Debian's cd-hit, via "
                          "apt-get download)",
              option="--cdhit-to", option_help="folder of the cd-hit binary (default: "
                                               "~/.cache/lstm-zoo/cd-hit)")


def fasta(seqs) -> bytes:
    """cd-hit's input: each sequence under its index as the name."""
    return "".join(f">{i}\n{s}\n" for i, s in enumerate(seqs)).encode()


def cluster_key(seqs) -> str:
    """sha256 of cd-hit's input and settings: what a cluster assignment is valid for."""
    return hashlib.sha256(fasta(seqs) + " ".join(CDHIT_ARGS).encode()).hexdigest()


def run_cdhit(seqs, binary: Path | None = None) -> np.ndarray:
    """The cd-hit cluster of each sequence (ids in cd-hit's order), run with
    :data:`CDHIT_ARGS`.

    Raises:
        DataError: no cd-hit (run ``lstm-zoo fetch-data``), or cd-hit failed.
    """
    binary = binary or cdhit_path()
    if binary is None:
        raise DataError("the peptides' homology split needs cd-hit, which is not in "
                        f"{cache_root() / 'cd-hit'}; fetch it once with `lstm-zoo fetch-data` "
                        "(Debian's cd-hit, via apt-get download), or set LSTM_ZOO_CDHIT to a "
                        "cd-hit binary")
    with tempfile.TemporaryDirectory(prefix="lstm-zoo-cdhit-") as tmp:
        (Path(tmp) / "in.fa").write_bytes(fasta(seqs))
        proc = subprocess.run([str(binary), "-i", "in.fa", "-o", "out", *CDHIT_ARGS],
                              cwd=tmp, capture_output=True, text=True)
        clstr = Path(tmp) / "out.clstr"
        if proc.returncode or not clstr.is_file():
            raise DataError(f"cd-hit failed ({proc.returncode}): "
                            f"{(proc.stderr or proc.stdout).strip()[-400:]}")
        return parse_clusters(clstr.read_text(), len(seqs))


def parse_clusters(text: str, n: int) -> np.ndarray:
    """Cluster ids (n,) from cd-hit's ``.clstr`` file, whose members are named by index."""
    out = np.full(n, -1, np.int64)
    cluster = -1
    for line in text.splitlines():
        if line.startswith(">Cluster"):
            cluster = int(line.split()[1])
        elif line.strip():
            out[int(line.split(">", 1)[1].split("...", 1)[0])] = cluster
    if (out < 0).any():
        raise DataError(f"cd-hit left {int((out < 0).sum())} of {n} sequences unclustered")
    return out


def write_clusters(path: Path, key: str, clusters: np.ndarray) -> None:
    from zoo.weights import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{c}\n" for c in clusters)
    atomic_write_bytes(path, f"# sha256 {key} cd-hit {' '.join(CDHIT_ARGS)}\n{body}".encode())


def read_clusters(path: Path, key: str, n: int) -> np.ndarray | None:
    """The assignment in ``path`` if it is the one for ``key`` (and ``n`` sequences)."""
    if not path.is_file():
        return None
    first, *lines = path.read_text().splitlines()
    if first.split()[:3] != ["#", "sha256", key] or len(lines) != n:
        return None
    return np.array([int(v) for v in lines], np.int64)


@cache
def clusters() -> np.ndarray:
    """The 40 %-identity cluster of each deduplicated sequence: the shipped assignment
    when the data is the shipped one, else the cached one, else cd-hit's (then cached)."""
    seqs = amp_vs_uniprot()[0]
    key = cluster_key(seqs)
    cached = cache_root() / "peptides" / f"clusters-{key[:16]}.txt"
    for path in (SHIPPED_CLUSTERS, cached):
        found = read_clusters(path, key, len(seqs))
        if found is not None:
            return found
    out = run_cdhit(seqs)
    write_clusters(cached, key, out)
    return out


# --------------------------------------------------------------------------- splits


def homology_test_mask(groups: np.ndarray, share: float = TEST_SHARE,
                       seed: int = SPLIT_SEED) -> np.ndarray:
    """Test membership drawing whole clusters in a seeded order until ``share`` of the
    sequences are test; a cluster that would overshoot is skipped.

    Example:
        >>> mask = homology_test_mask(np.array([0, 0, 1, 2, 2, 2, 3, 4, 5, 6]), 0.3)
        >>> int(mask.sum())
        3
    """
    rng = np.random.default_rng(seed)
    ids, sizes = np.unique(groups, return_counts=True)
    goal = int(round(share * len(groups)))
    chosen, total = [], 0
    for k in rng.permutation(len(ids)):
        if total + sizes[k] <= goal:
            chosen.append(ids[k])
            total += sizes[k]
        if total == goal:
            break
    return np.isin(groups, chosen)


def random_test_mask(y: np.ndarray, share: float = TEST_SHARE, seed: int = SPLIT_SEED
                     ) -> np.ndarray:
    """``share`` of each class drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        mask[rng.choice(idx, int(round(share * len(idx))), replace=False)] = True
    return mask


def _ordered(seqs, y, mask, seed: int) -> TextData:
    """The masked sequences in a seeded order (so ``calibration`` and ``train_small``, the
    first of ``train``, mix both classes)."""
    idx = np.flatnonzero(mask)
    idx = idx[np.random.default_rng(seed).permutation(len(idx))]
    return TextData(tuple(seqs[i] for i in idx), y[idx])


@register_dataset("amp", license=LICENSE, extra=EXTRA, fetch=FETCH)
@cache
def load(split: str) -> TextData:
    """``"train"`` / ``"test"`` (homology split, 80/20 by cd-hit cluster), ``"calibration"``
    (the first 200 of train), ``"train_small"`` (the first 512, for tiny variants),
    ``"random_train"`` / ``"random_test"`` (80/20 at random, per class)."""
    if split not in SPLITS:
        raise DataError(f"amp has splits {list(SPLITS)}; got {split!r}")
    seqs, y, _ = amp_vs_uniprot()
    if split.startswith("random_"):
        test = random_test_mask(y)
        return _ordered(seqs, y, test if split == "random_test" else ~test, SPLIT_SEED)
    test = homology_test_mask(clusters())
    if split == "test":
        return _ordered(seqs, y, test, SPLIT_SEED)
    train = _ordered(seqs, y, ~test, SPLIT_SEED)
    size = {"calibration": 200, "train_small": 512}.get(split)
    return TextData(train.texts[:size], train.y[:size]) if size else train


def anticancer(negatives: str = "random") -> TextData:
    """The anticancer peptides (class ``acp``) against ``"random"`` or ``"tm"``
    (transmembrane) peptides (class ``other``), deduplicated, in file order, without the
    sequences of the AMPvsUniProt set: the pretrained model saw those (70 of the 413
    anticancer peptides are antimicrobial peptides it trained on), a model trained from
    scratch did not."""
    if negatives not in ANTICANCER_FILES:
        raise DataError(f"anticancer negatives are {sorted(ANTICANCER_FILES)}; got {negatives!r}")
    rows = read_modlamp_csv(package_file("modlamp", ANTICANCER_FILES[negatives], EXTRA))
    seen = set(amp_vs_uniprot()[0])
    keep, out = set(), []
    for seq, label in rows:
        if seq not in seen and seq not in keep:
            keep.add(seq)
            out.append((seq, label))
    return TextData(tuple(s for s, _ in out), np.array([label for _, label in out], np.int64))


ACP_CLASSES = ("other", "acp")


def write_tsv(path: str | Path, data: TextData, classes=ACP_CLASSES) -> Path:
    """``data`` as the ``text``/``label`` TSV that ``lstm-zoo finetune --data`` reads."""
    path = Path(path)
    path.write_text("text\tlabel\n" + "".join(f"{s}\t{classes[int(c)]}\n"
                                               for s, c in zip(data.texts, data.y, strict=True)),
                    encoding="utf-8")
    return path

