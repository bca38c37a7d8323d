"""Numeric sequences of the user's: labelled (classifiers) and transcribed (CTC recognisers).

See :mod:`zoo.userdata` for the formats.
"""

from __future__ import annotations

import csv
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import DataError, ShapeError
from zoo.weights import sha256_of

FORMATS = (".npz", ".csv")
MAX_SECONDS = 2.0  # the speech models' longest input
# A class needs one sample to train on and one to hold out for early stopping.
MIN_PER_CLASS = 2


@dataclass(frozen=True)
class LabelledSequences:
    """``x`` (N, T, C) float32, ``y`` (N,) int64 indices into ``classes``; ``channels``
    names the C features (CSV header, the NPZ's ``channels``, else ``x0``, ``x1``, ...)."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    source: dict
    channels: tuple[str, ...] = ()

    def subset(self, index) -> LabelledSequences:
        index = np.asarray(index, np.int64)
        return LabelledSequences(self.x[index], self.y[index], self.classes, self.source,
                                 self.channels)


def load_sequences(path: str | Path, *, classes: tuple[str, ...] | None = None
                   ) -> LabelledSequences:
    """Reads and validates labelled sequences from ``path`` (see the module docstring).

    Args:
        classes: the class list to index labels with (a test file must use the training
            file's classes); default: the sorted labels found.

    Raises:
        DataError: missing/unreadable file, unknown format, empty or unknown labels.
        ShapeError: ragged lengths, wrong rank, non-numeric or non-finite values.
    """
    path = Path(path)
    if path.is_dir():
        x, labels, channels = _read_wav_folder(path)
    elif not path.is_file():
        raise DataError(f"data path {str(path)!r} does not exist; expected a .npz "
                        "(x: (N, T, C), y: (N,)), a long-form .csv (id, label, features) or "
                        "a folder of WAV files per label")
    elif path.suffix.lower() not in FORMATS:
        raise DataError(f"{path}: unknown data format {path.suffix!r}; expected one of "
                        f"{list(FORMATS)} or a folder of WAV files per label")
    else:
        x, labels, channels = (_read_npz(path) if path.suffix.lower() == ".npz"
                               else _read_csv(path))
    if len(labels) == 0:
        raise DataError(f"{path}: no series found")
    _check_values(x, path)
    labels = [str(v).strip() for v in labels]
    empty = [i for i, v in enumerate(labels) if not v]
    if empty:
        raise DataError(f"{path}: {len(empty)} series have an empty label (first: series "
                        f"{empty[0]}); every series needs a class name")
    found = tuple(sorted(set(labels)))
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not among the model's classes "
                        f"{list(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in labels], np.int64)
    source = {"path": str(path.resolve()), "sha256": data_sha256(path),
              "format": "wav-folder" if path.is_dir() else path.suffix.lower()[1:],
              "series": int(len(y)),
              "length": int(x.shape[1]), "features": int(x.shape[2])}
    channels = tuple(channels) or tuple(f"x{i}" for i in range(x.shape[2]))
    return LabelledSequences(x.astype(np.float32), y, tuple(classes), source, channels)


def check_fits(data: LabelledSequences, where: str, min_per_class: int = MIN_PER_CLASS,
               features: int | None = None) -> None:
    """The data can train a classifier: two classes or more, each with at least
    ``min_per_class`` series, and ``features`` channels per step when given."""
    if features is not None and data.x.shape[2] != features:
        raise ShapeError(f"{where}: the data has {data.x.shape[2]} features per step; "
                         f"expected {features}")
    if min_per_class == 0:  # data to evaluate on: any classes of the label set will do
        return
    check_classes(data.y, data.classes, where, min_per_class)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): ``fraction`` of each class held out (at least one,
    leaving at least one to train on), by a seeded shuffle."""
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be in (0, 1); got {fraction}")
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        held += list(idx[:n])
        train += list(idx[n:])
    return np.sort(np.array(train, np.int64)), np.sort(np.array(held, np.int64))


def data_sha256(path: str | Path) -> str:
    """sha256 of a data file, or of a WAV folder: over each ``.wav``'s relative path and
    sha256, in sorted order (so renaming, adding or changing a recording changes it)."""
    import hashlib

    path = Path(path)
    if path.suffix.lower() == ".jsonl" and path.is_file() and (wavs := _recordings(path)):
        # a transcript list naming recordings: the list and every recording it names
        digest = hashlib.sha256(sha256_of(path).encode())
        for name in wavs:
            f = path.parent / name
            digest.update(f"{name}\0{sha256_of(f) if f.is_file() else 'missing'}\n".encode())
        return digest.hexdigest()
    if not path.is_dir():
        return sha256_of(path)
    digest = hashlib.sha256()
    for folder in _label_folders(path):  # the files the loader reads
        for f in _wavs(folder):
            digest.update(f"{f.relative_to(path).as_posix()}\0{sha256_of(f)}\n".encode())
    return digest.hexdigest()


def _label_folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _wavs(folder: Path) -> list[Path]:
    """The recordings in ``folder``: ``.wav`` in any case (``.WAV`` from a recorder)."""
    return sorted(f for f in folder.iterdir()
                  if f.suffix.lower() == ".wav" and f.is_file() and not f.name.startswith("."))


def _read_wav_folder(path: Path):
    """``path/<label>/*.wav`` -> log-mel frames (N, T, 40), labels, channel names."""
    from zoo.audio import MELS, SAMPLE_RATE, fit_window, log_mel, read_wav

    stray = [f.name for f in _wavs(path)]
    if stray:
        raise DataError(f"{path}: WAV files directly in the folder ({stray[:3]}); expected "
                        "one subfolder per label: <folder>/<label>/*.wav")
    labels, waves = [], []
    for folder in _label_folders(path):
        files = _wavs(folder)
        if not files:
            raise DataError(f"{folder}: no .wav files; expected recordings of label "
                            f"{folder.name!r}")
        for f in files:
            waves.append(read_wav(f, rate=SAMPLE_RATE, max_seconds=MAX_SECONDS))
            labels.append(folder.name)
    if not waves:
        raise DataError(f"{path}: no label subfolders; expected <folder>/<label>/*.wav")
    # trimmed and centred in (or cut to) one second, as predict and the test split do
    x = np.stack([log_mel(fit_window(w, SAMPLE_RATE)) for w in waves])
    return x.astype(np.float64), labels, [f"mel_{i}" for i in range(MELS)]


def _read_npz(path: Path):
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (not a zip archive); expected "
                        "numpy.savez output with x and y")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x", "y"} - set(f.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {sorted(missing)}; expected x "
                                f"(N, T, C) and y (N,); found {sorted(f.files)}")
            x, y = f["x"], f["y"]
            channels = [str(c) for c in f["channels"]] if "channels" in f.files else []
    except DataError:
        raise
    except ValueError as e:  # object arrays (ragged lists) need pickle, which is refused
        raise ShapeError(f"{path}: cannot read x/y as plain arrays ({e}); ragged series "
                         "(different lengths) must be padded or resampled to one length") \
            from None
    except Exception as e:  # zipfile / format errors
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ShapeError(f"{path}: x must be (N, T, C) (or (N, T) for one channel); got "
                         f"shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ShapeError(f"{path}: y must be (N,) with N = {len(x)} series; got shape "
                         f"{y.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ShapeError(f"{path}: x must hold real numbers; got dtype {x.dtype}")
    if channels and len(channels) != x.shape[2]:
        raise ShapeError(f"{path}: channels names {len(channels)} features; x has "
                         f"{x.shape[2]}")
    return x.astype(np.float64), list(y), channels


def _read_csv(path: Path):
    try:
        return _read_csv_rows(path)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None


def _read_csv_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file; expected a header row") from None
        missing = {"id", "label"} - set(header)
        if missing:
            raise DataError(f"{path}: header lacks column(s) {sorted(missing)}; expected id, "
                            f"label and feature columns; got {header}")
        i_id, i_label = header.index("id"), header.index("label")
        features = [i for i in range(len(header)) if i not in (i_id, i_label)]
        if not features:
            raise DataError(f"{path}: no feature columns besides id and label")
        series: dict[str, list] = {}
        labels: dict[str, str] = {}
        last = None
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                raise ShapeError(f"{path}:{lineno}: {len(row)} fields; the header has "
                                 f"{len(header)}")
            sid, label = row[i_id].strip(), row[i_label].strip()
            if sid != last and sid in series:
                raise DataError(f"{path}:{lineno}: rows of series {sid!r} are not "
                                "consecutive; keep each series' rows together, in time order")
            last = sid
            if labels.setdefault(sid, label) != label:
                raise DataError(f"{path}:{lineno}: series {sid!r} has labels "
                                f"{labels[sid]!r} and {label!r}; one label per series")
            try:
                series.setdefault(sid, []).append([float(row[i]) for i in features])
            except ValueError as e:
                raise ShapeError(f"{path}:{lineno}: non-numeric feature value ({e})") from None
    lengths = Counter(len(v) for v in series.values())
    if len(lengths) > 1:
        raise ShapeError(f"{path}: ragged series lengths {dict(sorted(lengths.items()))} "
                         "(length: count); pad or resample every series to one length")
    names = [header[i] for i in features]
    if not series:
        return np.zeros((0, 1, len(features))), [], names
    return np.array(list(series.values()), np.float64), [labels[s] for s in series], names


def _check_values(x: np.ndarray, path: Path) -> None:
    if x.shape[1] == 0:
        raise ShapeError(f"{path}: series of length 0; expected at least one time step")
    bad = ~np.isfinite(x)
    if bad.any():
        n, t, c = np.argwhere(bad)[0]
        raise ShapeError(f"{path}: {int(bad.sum())} value(s) are NaN or infinite (first: "
                         f"series {n}, step {t}, feature {c}); expected finite numbers")


# --------------------------------------------------------------------------- transcribed

TRANSCRIBED_FORMATS = (".jsonl", ".npz")


@dataclass(frozen=True)
class TranscribedSequences:
    """Variable-length sequences with transcripts, for CTC recognisers: ``x`` a list of
    (T_i, C) float32 arrays, ``texts`` their transcripts, ``alphabet`` the symbols (sorted
    characters found, or the model's)."""

    x: list
    texts: list
    alphabet: str
    source: dict

    def subset(self, index) -> TranscribedSequences:
        return TranscribedSequences([self.x[i] for i in index], [self.texts[i] for i in index],
                                    self.alphabet, self.source)


def load_transcribed(path: str | Path, *, channels: int = 3, alphabet: str | None = None,
                     audio: Mapping | None = None) -> TranscribedSequences:
    """Reads and validates sequences with transcripts (e.g. pen trajectories and words).

    Formats:

    - ``.jsonl``, one sample per line: ``{"text": "word", "points": [[dx, dy, pen_up], ...]}``,
      or with absolute pen positions ``{"text": "word", "strokes": [[[x, y], ...], ...],
      "body_height": h}`` (converted by :func:`zoo.datasets.hershey_strokes.from_points`).
      For a speech model (``audio``), a line may name a recording instead:
      ``{"text": "4072", "wav": "clips/4072.wav"}``, the path relative to the ``.jsonl``'s
      folder, read as ``predict`` reads one (:func:`zoo.audio.speech_frames`:
      mono, resampled, trimmed, padded, log-mel frames).
    - ``.npz`` with ``points`` (sum of T_i, C) (every sample's rows, one after another),
      ``lengths`` (N,) and ``texts`` (N,) strings.

    Args:
        channels: numbers per step the model takes.
        alphabet: the symbols a transcript may use (a test file must stay within the
            training alphabet); default: the sorted characters found.
        audio: a speech model's meta (``sample_rate``, ``max_seconds``,
            ``padding_seconds``, ``max_points``, ``channels``), which lets lines name WAV
            files; ``None`` refuses them.

    Raises:
        DataError: missing/unreadable file, unknown format, empty transcripts, characters
            outside ``alphabet``, a malformed line.
        ShapeError: a sample with another number of channels, no steps, NaN/inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data path {str(path)!r} does not exist; expected a .jsonl of "
                        "{text, points} lines or a .npz with points, lengths and texts")
    if path.suffix.lower() not in TRANSCRIBED_FORMATS:
        raise DataError(f"{path}: unknown data format {path.suffix!r}; expected one of "
                        f"{list(TRANSCRIBED_FORMATS)}")
    x, texts = (_read_jsonl(path, audio) if path.suffix.lower() == ".jsonl"
                else _read_transcribed_npz(path))
    if not texts:
        raise DataError(f"{path}: no samples found")
    for i, (seq, text) in enumerate(zip(x, texts, strict=True)):
        if not text:
            raise DataError(f"{path}: sample {i} has an empty transcript")
        if seq.ndim != 2 or seq.shape[1] != channels or len(seq) == 0:
            raise ShapeError(f"{path}: sample {i} has shape {seq.shape}; expected (time >= 1, "
                             f"{channels})")
        if not np.all(np.isfinite(seq)):
            raise ShapeError(f"{path}: sample {i} has NaN or infinite values")
    found = "".join(sorted(set("".join(texts))))
    if alphabet is None:
        alphabet = found
    unknown = sorted(set(found) - set(alphabet))
    if unknown:
        raise DataError(f"{path}: transcripts use characters {unknown} outside the model's "
                        f"alphabet {alphabet!r}")
    source = {"path": str(path.resolve()), "sha256": data_sha256(path),
              "format": path.suffix.lower()[1:], "samples": len(texts),
              "points": int(sum(len(s) for s in x)), "features": channels}
    return TranscribedSequences([s.astype(np.float32) for s in x], texts, alphabet, source)


def _jsonl_items(path: Path):
    """``(line number, object)`` of each non-blank line of a ``.jsonl`` file."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: not a JSON object ({e})") from None


def _recordings(path: Path) -> list[str]:
    """The ``wav`` paths a transcript list names, in line order (malformed lines are the
    reader's to report)."""
    try:
        return [str(item["wav"]) for _, item in _jsonl_items(path)
                if isinstance(item, dict) and "wav" in item]
    except DataError:
        return []


def _read_jsonl(path: Path, audio: Mapping | None = None):
    from zoo.audio import speech_frames
    from zoo.datasets.hershey_strokes import from_points

    x, texts = [], []
    for lineno, item in _jsonl_items(path):
        keys = set(item) if isinstance(item, dict) else set()
        if "wav" in keys and audio is None:
            raise DataError(f"{path}:{lineno}: names a recording (\"wav\"), but this model "
                            "reads pen trajectories; expected \"points\" or \"strokes\"")
        if "text" not in keys or not ("points" in keys or "wav" in keys
                                      or {"strokes", "body_height"} <= keys):
            raise DataError(f"{path}:{lineno}: expected " + (
                "{\"text\", \"wav\"} or {\"text\", \"points\"}" if audio is not None else
                "{\"text\", \"points\"} or {\"text\", \"strokes\", \"body_height\"}"))
        if "wav" in keys:
            wav = path.parent / str(item["wav"])
            if not wav.is_file():
                raise DataError(f"{path}:{lineno}: recording {str(item['wav'])!r} not found "
                                f"(looked for {wav})")
            try:
                x.append(speech_frames(str(wav), audio).astype(np.float64))
            except (DataError, ShapeError) as e:
                raise type(e)(f"{path}:{lineno}: {e}") from None
            texts.append(str(item["text"]).strip())
            continue
        try:
            if "points" in item:
                seq = np.asarray(item["points"], np.float64)
            else:
                seq = from_points(item["strokes"], item["body_height"])
        except (TypeError, ValueError) as e:
            raise ShapeError(f"{path}:{lineno}: cannot read the points ({e})") from None
        x.append(seq)
        texts.append(str(item["text"]).strip())
    return x, texts


def _read_transcribed_npz(path: Path):
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"points", "lengths", "texts"} - set(f.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {sorted(missing)}; expected points "
                                f"(sum T, C), lengths (N,), texts (N,); found {sorted(f.files)}")
            points, lengths, texts = f["points"], f["lengths"], f["texts"]
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if points.ndim != 2 or lengths.ndim != 1 or texts.shape != lengths.shape \
            or (lengths < 0).any() or int(lengths.sum()) != len(points):
        raise ShapeError(f"{path}: points {points.shape}, lengths {lengths.shape} summing to "
                         f"{int(lengths.sum())}, texts {texts.shape}: the lengths must add up "
                         "to the points' rows, one length and one text per sample")
    cuts = np.cumsum(lengths)[:-1]
    return np.split(points.astype(np.float64), cuts), [str(t).strip() for t in texts]


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): ``fraction`` of ``n`` samples held out (at least one,
    leaving at least one), by a seeded shuffle."""
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be in (0, 1); got {fraction}")
    if n < 2:
        raise DataError(f"{n} sample(s): fine-tuning needs at least 2 (one to train on, one "
                        "to hold out)")
    idx = np.random.default_rng(seed).permutation(n)
    k = min(max(1, int(round(fraction * n))), n - 1)
    return np.sort(idx[k:]), np.sort(idx[:k])


def check_classes(y: np.ndarray, classes: tuple[str, ...], where: str,
                  min_per_class: int = MIN_PER_CLASS) -> None:
    """Two classes or more, each with at least ``min_per_class`` samples."""
    counts = Counter(classes[i] for i in y)
    if len(counts) < 2:
        raise DataError(f"{where}: found one class ({list(counts)}); a classifier needs at "
                        "least 2")
    few = {c: counts.get(c, 0) for c in classes if counts.get(c, 0) < min_per_class}
    if few:
        raise DataError(f"{where}: classes with fewer than {min_per_class} samples (one to "
                        f"train on, one to hold out): {few}; the label set is larger than "
                        "the data supports")
