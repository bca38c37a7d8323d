"""Texts of the user's, in UTF-8 TSV files: labelled texts (text classifiers) and source ->
target pairs (seq2seq models).

See :mod:`zoo.userdata` for the formats.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import DataError
from zoo.weights import sha256_of

TEXT_FORMATS = (".tsv",)


@dataclass(frozen=True)
class LabelledTexts:
    """Texts and labels, for text classifiers: ``y`` (N,) int64 indices into ``classes``."""

    texts: list
    y: np.ndarray
    classes: tuple[str, ...]
    source: dict

    def subset(self, index) -> LabelledTexts:
        index = np.asarray(index, np.int64)
        return LabelledTexts([self.texts[i] for i in index], self.y[index], self.classes,
                             self.source)


def load_texts(path: str | Path, *, classes: tuple[str, ...] | None = None) -> LabelledTexts:
    """Reads labelled texts from a UTF-8 ``.tsv`` file whose header names a ``text`` and a
    ``label`` column (other columns are ignored). A field that holds a tab or a line break,
    or starts with ``"``, is quoted whole with inner quotes doubled, as spreadsheets and
    pandas write TSV (:func:`_read_tsv`). Example::

        text	label
        Arrived stale and crushed.	other
        Best coffee I have had in years!	great

    Args:
        classes: the class list to index labels with (a test file must use the training
            file's classes); default: the sorted labels found.

    Raises:
        DataError: a missing or unreadable file, another format, missing columns, a row
            with an empty label or a text without words, labels outside ``classes``.
    """
    from zoo.datasets.reviews import tokenize

    path = Path(path)
    rows = _read_tsv(path, ("text", "label"), TEXT_FORMATS, "text classifiers")
    texts, labels = [], []
    for line, row in rows:
        text, label = row["text"] or "", (row["label"] or "").strip()
        if not label:
            raise DataError(f"{path}, line {line}: empty label; every text needs a class name")
        if not tokenize(text):
            raise DataError(f"{path}, line {line}: the text {text[:40]!r} has no words "
                            "(letters or digits)")
        texts.append(text)
        labels.append(label)
    found = tuple(sorted(set(labels)))
    classes = found if classes is None else tuple(classes)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not among the model's classes "
                        f"{list(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    source = {"path": str(path.resolve()), "sha256": sha256_of(path), "format": "tsv",
              "series": len(texts)}
    return LabelledTexts(texts, np.array([index[v] for v in labels], np.int64), classes,
                         source)


PAIR_FORMATS = (".tsv",)


@dataclass(frozen=True)
class TranscribedWords:
    """Source strings and their target symbol sequences, for seq2seq models: the fields of
    :class:`zoo.datasets.cmudict.G2PData` (``references``: the one target of each word)."""

    words: tuple
    targets: tuple
    source: dict

    @property
    def references(self) -> tuple:
        return tuple((t,) for t in self.targets)

    @property
    def symbols(self) -> list[str]:
        """The target symbols used, sorted."""
        return sorted({s for t in self.targets for s in t})

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, index) -> TranscribedWords:
        return TranscribedWords(tuple(self.words[i] for i in index),
                                tuple(self.targets[i] for i in index), self.source)


def load_pairs(path: str | Path, *, alphabet, max_source: int, max_target: int
               ) -> TranscribedWords:
    """Reads source -> target pairs from a UTF-8 ``.tsv`` whose header names a ``source``
    and a ``target`` column; the target is symbols separated by spaces. Example (G2P with
    stress marks)::

        source	target
        lidar	L AY1 D AA0 R
        zoom	Z UW1 M

    Sources are lower-cased and stripped.

    Args:
        alphabet: the characters a source may use (the model's source vocabulary).
        max_source / max_target: the longest source (characters) and target (symbols).

    Raises:
        DataError: a missing or unreadable file, another format, missing columns, an empty
            source or target, characters outside ``alphabet``, a source or target longer
            than the limits.
    """
    path = Path(path)
    rows = _read_tsv(path, ("source", "target"), PAIR_FORMATS, "seq2seq models")
    alphabet = set(alphabet)
    words, targets = [], []
    for line, row in rows:
        word, target = (row["source"] or "").strip().lower(), (row["target"] or "").split()
        where = f"{path}, line {line}"
        if not word or not target:
            raise DataError(f"{where}: empty {'source' if not word else 'target'}; every row "
                            "needs both")
        bad = sorted(set(word) - alphabet)
        if bad:
            raise DataError(f"{where}: source {word!r} has characters {bad} outside the "
                            f"model's alphabet {''.join(sorted(alphabet))!r}")
        if len(word) > max_source or len(target) > max_target:
            raise DataError(f"{where}: {len(word)} characters -> {len(target)} symbols; the "
                            f"model takes at most {max_source} -> {max_target}")
        words.append(word)
        targets.append(tuple(target))
    source = {"path": str(path.resolve()), "sha256": sha256_of(path), "format": "tsv",
              "series": len(words)}
    return TranscribedWords(tuple(words), tuple(targets), source)


def _read_tsv(path: Path, columns: tuple[str, ...], formats: tuple[str, ...], who: str
              ) -> list[tuple[int, dict]]:
    """``(line, row)`` for each row of a UTF-8 TSV file (a byte-order mark is allowed) with
    a header that names ``columns``; ``line`` is the file line the row starts on. Quoting
    is the spreadsheet and pandas convention: a field that holds a tab, a line break or
    starts with ``"`` is quoted whole, inner quotes doubled; anything else is refused.
    ``formats``: the suffixes taken, ``who``: the models that take them (for errors)."""
    named = " and ".join(repr(c) for c in columns)
    if not path.is_file():
        raise DataError(f"data path {str(path)!r} {_not_a_file(path)}; expected a .tsv file "
                        f"with a header naming {named} columns")
    if path.suffix.lower() not in formats:
        raise DataError(f"{path}: unknown data format {path.suffix!r}; {who} take "
                        f"{list(formats)} (columns {', '.join(columns)})")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="\t", strict=True)
            header = reader.fieldnames
            end = reader.line_num
            for row in reader:
                rows.append((end + 1, row))
                end = reader.line_num
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    except csv.Error as e:
        raise DataError(f"{path}, line {reader.line_num}: malformed quoting ({e}); a field "
                        "that starts with a quote or holds a tab or line break must be "
                        "quoted whole, with inner quotes doubled") from None
    if not header:
        raise DataError(f"{path}: empty; expected a header ({', '.join(columns)}) and one "
                        "row per sample")
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: the header has columns {[c for c in header if c]}; "
                        f"expected {named} (missing {missing})")
    if not rows:
        raise DataError(f"{path}: no rows; expected a header ({', '.join(columns)}) and one "
                        "row per sample")
    return rows


def _not_a_file(path: Path) -> str:
    return "is a directory" if path.is_dir() else "does not exist"
