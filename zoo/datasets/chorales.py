"""Bach's four-part chorales for a music language model, from music21's corpus, transposed
to C major / A minor and split by chorale: 260 train, 32 test.

``music21`` (an optional extra: ``pip install -e ".[music]"``) ships the chorales as
MusicXML; :func:`names` lists the 350 distinct entries of ``corpus.chorales.Iterator`` (it
lists 371) but one duplicate (:data:`DUPLICATES`), and the 327 with four parts (soprano,
alto, tenor, bass) are used. Each is read once and cached as text
(:func:`cache_root`: ``$LSTM_ZOO_CHORALES``, else ``~/.cache/lstm-zoo/chorales``), since
music21 takes about half a second to parse one; ``lstm-zoo fetch-data`` encodes them all
(:func:`prepare`). The test and calibration splits need the training split too (the
unigram baseline is its symbol frequencies).

Encoding (one character per voice per sixteenth note, BachBot-style): a chorale is
transposed so that its key signature has no sharps or flats (C major / A minor), cut into
sixteenth-note frames, and each frame is a line of four characters, soprano to bass: a
pitch character where a note starts (:func:`pitch_char`, MIDI 28-90), ``-`` where the
voice holds its note, ``.`` where it rests. Chorales are separated by a blank line, so a
chorale starts after two line breaks. :func:`decode` turns such text back into a music21
score (and so MIDI or MusicXML).

Split by chorale (every tenth is test, every tenth from the fifth calibration, the rest
train), each chorale once, so no test chorale was trained on; several chorales harmonize
the same hymn tune, so a test melody may have a trained harmonization. Evaluation chunks
and the unigram baseline are as for :mod:`zoo.datasets.shakespeare` (the task is the
same).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from functools import cache
from pathlib import Path

import numpy as np

from zoo.constants import CHORALE_CHARS as CHARS
from zoo.constants import CHORALE_FRAME as FRAME
from zoo.constants import CHORALE_HIGH as HIGH
from zoo.constants import CHORALE_HOLD as HOLD
from zoo.constants import CHORALE_LOW as LOW
from zoo.constants import CHORALE_REST as REST
from zoo.datasets.catalog import Fetch, register_dataset
from zoo.datasets.shakespeare import Chunks, Corpus, chunks_of, encode
from zoo.errors import DataError, MissingExtraError, ShapeError

LICENSE = ("Bach's chorales (public domain music); the encodings ship in the music21 package, "
           "under its license")
VOICES = ("Soprano", "Alto", "Tenor", "Bass")
STEP = 0.25  # quarter notes per frame
CHUNK = 256  # symbols per evaluation chunk (51 frames, three bars of 4/4)
CHUNKS = {"test": 128, "calibration": 96}  # tensor parity takes 200 of these 224
SPLITS = ("train", "calibration", "test", "train_small")
SMALL = 12  # training chorales in train_small (tests)
VERSION = 1  # of the encoding: bump to re-encode cached chorales


def require_music21():
    """The music21 module, or a :class:`MissingExtraError` naming the extra."""
    try:
        import music21
    except ImportError:
        raise MissingExtraError("the Bach chorales (and MIDI writing) need the music21 "
                                "package, which is not installed; install it with: pip "
                                "install 'lstm-zoo[music]'") from None
    return music21


def pitch_char(midi: int) -> str:
    """The character of MIDI pitch ``midi`` (:data:`LOW`..:data:`HIGH`)."""
    if not LOW <= midi <= HIGH:
        raise ShapeError(f"pitch {midi} is outside the encoded range {LOW}..{HIGH}")
    return chr(ord("0") + midi - LOW)


def char_pitch(c: str) -> int:
    return ord(c) - ord("0") + LOW


def cache_root() -> Path:
    """``$LSTM_ZOO_CHORALES``, else ``$XDG_CACHE_HOME/lstm-zoo/chorales``."""
    if os.environ.get("LSTM_ZOO_CHORALES"):
        return Path(os.environ["LSTM_ZOO_CHORALES"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lstm-zoo" / "chorales"


# A chorale whose encoding is another's (measured: the same notes, so the same text);
# kept out so that no chorale is in two splits.
DUPLICATES = {"bach/bwv69.6-a": "bach/bwv69.6"}


@cache
def names() -> tuple[str, ...]:
    """music21's chorale corpus names (``bach/bwv269``, ...), each once, sorted, without
    :data:`DUPLICATES` (the iterator lists 371 entries, 350 distinct)."""
    listed = require_music21().corpus.chorales.Iterator(returnType="filename")
    return tuple(sorted(set(listed) - set(DUPLICATES)))


def split_of(index: int) -> str:
    return {0: "test", 5: "calibration"}.get(index % 10, "train")


def encode_score(score) -> str | None:
    """A chorale's frames (see the module docstring), or None when it does not have the
    four voices."""
    m21 = require_music21()
    parts = {p.partName or "": p for p in score.parts}
    if sorted(parts) != sorted(VOICES) or len(score.parts) != 4:
        return None
    signatures = list(score.recurse().getElementsByClass(m21.key.KeySignature))
    sharps = signatures[0].sharps if signatures else 0
    shift = -((sharps * 7) % 12)  # the major tonic's pitch class to C
    if shift < -6:
        shift += 12
    length = int(round(score.highestTime / STEP))
    grid = np.full((4, length), REST, dtype="<U1")
    for v, name in enumerate(VOICES):
        for note in parts[name].stripTies().flatten().notes:
            if note.duration.quarterLength <= 0:  # grace notes
                continue
            pitch = max(p.midi for p in note.pitches) + shift  # a chord (rare): its top
            start = int(round(note.offset / STEP))
            end = max(start + 1, int(round((note.offset + note.duration.quarterLength) / STEP)))
            if start >= length:
                continue
            grid[v, start] = pitch_char(pitch)
            grid[v, start + 1 : end] = HOLD
    return "".join("".join(grid[:, t]) + FRAME for t in range(length))


_WELL_FORMED = re.compile(f"(?:[{re.escape(CHARS[1:])}]{{4}}{re.escape(FRAME)})*")


def _cached(name: str) -> str:
    """The encoded text of chorale ``name`` ("" without four voices), from the cache or
    parsed and cached (written whole or not at all)."""
    m21 = require_music21()
    key = hashlib.sha256(f"{name} {m21.__version__} {VERSION}".encode()).hexdigest()[:16]
    path = cache_root() / f"{name.replace('/', '_')}.{key}.txt"
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and _WELL_FORMED.fullmatch(text):
            return text
        # cut short or damaged (the cache is written through a rename, so not by a kill):
        # encoded again from music21's copy, which is the source
        print(f"[lstm-zoo] {path} is damaged (not whole frames of four voices); encoding "
              f"{name} again", file=sys.stderr, flush=True)
    text = encode_score(m21.corpus.parse(name)) or ""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise DataError(f"cannot cache the encoded chorales in {cache_root()} ({e}); set "
                        "LSTM_ZOO_CHORALES to a writable folder") from None
    return text


def prepare() -> int:
    """Encodes every chorale into the cache (what ``lstm-zoo fetch-data`` does, so that
    loading a split later parses nothing); returns how many have the four voices.

    Raises:
        MissingExtraError: music21 is not installed.
    """
    return sum(1 for n in names() if _cached(n))


def _prepare_all(_root: str | None) -> str:
    try:  # music21 ships the chorales: they are encoded once (a few minutes the first time)
        count = prepare()
    except MissingExtraError as e:
        return f"skipped Bach's chorales: {e}"
    return f"Bach's chorales ({count} of four voices, from music21) encoded in {cache_root()}"


FETCH = Fetch(_prepare_all, "encode music21's Bach chorales", optional=True)


def chorales(split: str) -> list[str]:
    """The encoded chorales of ``split`` (``train_small``: the first :data:`SMALL` training
    ones), four-part only."""
    picked = [n for i, n in enumerate(names())
              if split_of(i) == ("train" if split == "train_small" else split)]
    if split == "train_small":
        picked = picked[: SMALL + 3]  # a few are not four-part
    texts = [t for t in (_cached(n) for n in picked) if t]
    return texts[:SMALL] if split == "train_small" else texts


@cache
def text(split: str) -> str:
    """The chorales of ``split``, each after a blank line (as a chorale starts in training
    and generation)."""
    return "".join(FRAME + c for c in chorales(split))


@cache
def unigram() -> np.ndarray:
    """Training frequency of each id (add-one smoothed), the baseline model."""
    counts = np.bincount(encode(text("train"), CHARS), minlength=len(CHARS) + 1) + 1.0
    return counts / counts.sum()


@register_dataset("chorales", license=LICENSE, extra="music", fetch=FETCH)
def load(split: str) -> Corpus | Chunks:
    """``train`` / ``train_small``: a :class:`~zoo.datasets.shakespeare.Corpus`; ``test`` /
    ``calibration``: :class:`~zoo.datasets.shakespeare.Chunks` of ``CHUNK + 1`` symbols."""
    if split not in SPLITS:
        raise DataError(f"chorales has splits {list(SPLITS)}; got {split!r}")
    return _load(split)


@cache
def _load(split: str):
    ids = encode(text(split), CHARS)
    if split in ("train", "train_small"):
        return Corpus(ids)
    return chunks_of(ids, CHUNKS[split], CHUNK, unigram())


def decode(text: str, *, tempo: int = 80):
    """A music21 score of generated text: four parts, a chorale per blank-line-separated
    block run one after the other. Returns ``(score, frames, skipped)``: lines that are not four
    known symbols are skipped and counted; a hold with nothing to hold is a rest.

    Raises:
        ShapeError: no frame at all in ``text``.
    """
    m21 = require_music21()
    frames = []
    skipped = 0
    for line in text.split(FRAME):
        if not line:
            continue
        if len(line) == 4 and all(c in CHARS[1:] for c in line):
            frames.append(line)
        else:
            skipped += 1
    if not frames:
        raise ShapeError(f"no frame of four voices in the text ({skipped} malformed lines); "
                         "expected lines like '<;74' (soprano to bass, '-' hold, '.' rest)")
    score = m21.stream.Score()
    for v, name in enumerate(VOICES):
        part = m21.stream.Part(id=name)
        part.partName = name
        if v == 0:
            part.insert(0, m21.tempo.MetronomeMark(number=tempo))
        current = None  # the note or rest that a hold (or a further rest) lengthens
        for t, frame in enumerate(frames):
            c = frame[v]
            rest = c == REST or (c == HOLD and isinstance(current, m21.note.Rest))
            if current is not None and (c == HOLD or (rest and current.isRest)):
                current.quarterLength += STEP
                continue
            current = (m21.note.Rest(quarterLength=STEP) if rest or c == HOLD else
                       m21.note.Note(char_pitch(c), quarterLength=STEP))
            part.insert(t * STEP, current)
        score.insert(0, part)
    return score, len(frames), skipped


def write(text: str, path: str | Path) -> tuple[int, int]:
    """Writes generated text as MIDI (``.mid``, ``.midi``) or MusicXML (``.musicxml``,
    ``.xml``), atomically. Returns ``(frames written, lines skipped)``.

    Raises:
        ShapeError: another suffix, or no frame in ``text``.
    """
    path = Path(path)
    fmt = {".mid": "midi", ".midi": "midi", ".musicxml": "musicxml", ".xml": "musicxml"}.get(
        path.suffix.lower())
    if fmt is None:
        raise ShapeError(f"{path}: expected a .mid, .midi, .musicxml or .xml file to write "
                         f"the music to; got suffix {path.suffix!r}")
    score, frames, skipped = decode(text)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        score.write(fmt, fp=str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return frames, skipped
