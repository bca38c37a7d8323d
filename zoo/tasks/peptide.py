"""Peptide classification (``peptide``): amino-acid sequences in, class probabilities out.

A text classifier whose tokens are residues: :meth:`PeptideClassification.encode` maps the
20 standard amino acids to ids 2-21 and the IUPAC codes of an ambiguous or non-standard
residue (B, J, O, U, X, Z) to the unknown id 1, from the alphabet in the bundle's meta, the
same on every backend; anything else is refused. Training, batching (one length per batch,
padding masked) and scoring are the text task's; the input is FASTA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import ShapeError
from zoo.tasks.base import register_task
from zoo.tasks.classification import TextClassification
from zoo.tasks.common import once_per_data

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".txt")
# white space inside a sequence (a FASTA record's line wraps) is ignored
_SPACE = re.compile(r"\s+")
MAX_SEQUENCES = 100_000  # a FASTA of more is refused at once rather than read for minutes


@register_task
@dataclass(frozen=True)
class PeptideClassification(TextClassification):
    """Peptide classification over residue ids; metric: accuracy (and the always-majority
    rate of the same split, ``naive_accuracy``).

    ``meta``: ``classes``, ``alphabet`` (ids 2..), ``unknown`` (codes read as id 1),
    ``max_length``, and ``positive`` (the class whose probability :meth:`format` prints).
    """

    name: str = "peptide"
    baseline: str = "always answering the majority class"

    @staticmethod
    def index(meta) -> dict[str, int]:
        index = {c: i + 2 for i, c in enumerate(meta["alphabet"])}
        index.update({c: 1 for c in meta["unknown"]})
        return index

    def encode(self, text: str, meta, index=None) -> np.ndarray:
        """Residue ids (T,) of one sequence (case and white space ignored).

        Raises:
            ShapeError: an empty sequence, a character that is no amino-acid code, or more
                than ``meta["max_length"]`` residues.

        Example:
            >>> from zoo import get_spec
            >>> meta = get_spec("amp_bilstm_tiny").meta
            >>> PeptideClassification().encode("gk x", meta).tolist()
            [7, 10, 1]
        """
        if not isinstance(text, str):
            raise ShapeError(f"expected a peptide sequence (str), got {type(text).__name__}")
        seq = _SPACE.sub("", text).upper()
        if not seq:
            raise ShapeError("empty sequence; expected at least one amino-acid code")
        index = self.index(meta) if index is None else index
        bad = sorted({c for c in seq if c not in index})
        if bad:
            shown = seq if len(seq) <= 40 else seq[:37] + "..."
            raise ShapeError(f"sequence {shown!r} has {bad}, which are not amino-acid codes; "
                             f"expected {''.join(meta['alphabet'])} (or "
                             f"{''.join(meta['unknown'])} for an unknown residue)")
        if len(seq) > meta["max_length"]:
            raise ShapeError(f"sequence of {len(seq)} residues; the model was trained on at "
                             f"most {meta['max_length']}")
        return np.array([index[c] for c in seq], np.int32)

    def check_input(self, text, meta, where="input") -> str:
        """One sequence as :meth:`predict` takes it, or a :class:`ShapeError`."""
        if not isinstance(text, str):
            raise ShapeError(f"{where}: expected a peptide sequence (str), got "
                             f"{type(text).__name__}")
        try:
            self.encode(text, meta)
        except ShapeError as e:
            raise ShapeError(f"{where}: {e}") from None
        return text

    def parse_input(self, source: str, meta) -> str:
        """The first sequence of :meth:`parse_inputs`."""
        return self.parse_inputs(source, meta)[0]

    def parse_inputs(self, source: str, meta) -> list[str]:
        """Every sequence of a FASTA file (records of ``>name`` lines and sequence lines;
        without ``>``, one sequence per line), or ``source`` itself as one sequence."""
        path = Path(source)
        try:
            is_file = path.is_file()
        except OSError:  # a sequence longer than a file name can be
            is_file = False
        if not is_file:
            if path.suffix.lower() in FASTA_SUFFIXES:
                raise ShapeError(f"input file {source!r} does not exist; expected a FASTA file "
                                 "or a sequence")
            return [self.check_input(source, meta)]
        if path.suffix.lower() not in FASTA_SUFFIXES:
            raise ShapeError(f"{source}: a file, but not FASTA ({', '.join(FASTA_SUFFIXES)}); "
                             "give a FASTA file or the sequence itself")
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as e:
            raise ShapeError(f"{source}: cannot read it as FASTA text ({e})") from None
        records = read_fasta(text, source)
        return [self.check_input(seq, meta, f"{source}, {name}") for name, seq in records]

    def score(self, predictions, data, meta) -> dict[str, float]:
        scores = super().score(predictions, data, meta)
        y = np.asarray(data.y)
        scores["naive_accuracy"] = once_per_data(
            data, "naive_accuracy", lambda: float(np.bincount(y).max() / len(y)))
        return scores

    def format(self, prediction, meta) -> str:
        classes = list(meta["classes"])
        positive = meta.get("positive")
        if positive not in classes:  # a fine-tuned model's own classes: the likeliest
            positive = classes[int(np.argmax(prediction))]
        return f"{positive} {prediction[classes.index(positive)]:.3f}"


def read_fasta(text: str, where: str) -> list[tuple[str, str]]:
    """``(name, sequence)`` of each record of FASTA ``text``; a file without ``>`` lines
    holds one sequence per line (named ``line N``).

    Raises:
        ShapeError: no sequence, a record without a sequence, text before the first
            record, too many sequences.

    Example:
        >>> read_fasta(">a toxin\\nGIGK\\nFLHS\\n>b\\nKWK\\n", "x.fasta")
        [('a toxin', 'GIGKFLHS'), ('b', 'KWK')]
    """
    lines = text.splitlines()
    if not any(line.startswith(">") for line in lines):
        records = [(f"line {i}", line.strip()) for i, line in enumerate(lines, 1)
                   if line.strip()]
    else:
        records, name, parts = [], None, []
        for i, line in enumerate(lines, 1):
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(parts)))
                name, parts = line[1:].strip() or f"record at line {i}", []
            elif name is None and line.strip():
                raise ShapeError(f"{where}, line {i}: sequence text before the first '>' "
                                 "header; not a FASTA file")
            elif line.strip():
                parts.append(line.strip())
        records.append((name, "".join(parts)))
        empty = [n for n, s in records if not s]
        if empty:
            raise ShapeError(f"{where}: record {empty[0]!r} has no sequence")
    if not records:
        raise ShapeError(f"{where}: no sequence in it; expected FASTA or one sequence per line")
    if len(records) > MAX_SEQUENCES:
        raise ShapeError(f"{where}: {len(records)} sequences; give at most {MAX_SEQUENCES:,}")
    return records
