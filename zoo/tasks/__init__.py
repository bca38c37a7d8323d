"""Tasks: how graph outputs become predictions and a metric, for every backend alike.

A spec names its task; the task reads the spec's ``meta`` (class names, vocabularies).
Predictions run one sample at a time, because exported TFLite graphs have batch 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo import ctc
from zoo.decoding import greedy_decode
from zoo.errors import DataError, ShapeError


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def parity_pool(task, test, extra, minimum: int) -> list:
    """Tensor-parity inputs: every test input, then the ``extra`` (calibration) split's
    inputs until there are ``minimum``."""
    pool = list(task.inputs(test))
    if len(pool) < minimum:
        pool += list(task.inputs(extra))[: minimum - len(pool)]
    return pool


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices of inputs in batches of at most ``batch_size`` whose lengths are equal,
    shortest first: inputs of one length stack into a batch without padding."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(int(n), []).append(i)
    for _, idx in sorted(by_length.items()):
        for start in range(0, len(idx), batch_size):
            yield idx[start : start + batch_size]


_PER_DATA: dict[int, tuple[Any, dict[str, Any]]] = {}


def once_per_data(data, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, once per live ``data`` object and ``key`` (a split's baseline metrics,
    scored again with every backend's predictions). Data that cannot be weakly referenced
    is computed every time."""
    import weakref

    entry = _PER_DATA.get(id(data))
    if entry is None or entry[0]() is not data:  # new, or an id reused after collection
        try:
            entry = (weakref.ref(data), {})
        except TypeError:
            return compute()
        _PER_DATA[id(data)] = entry
        weakref.finalize(data, _PER_DATA.pop, id(data), None)
    if key not in entry[1]:
        entry[1][key] = compute()
    return entry[1][key]


def check_encodable(task, value, what: str, meta, where: str) -> str:
    """``value`` if it is a str that ``task.encode`` takes, else a :class:`ShapeError`
    prefixed with ``where`` (``what``: "a word", "a text")."""
    if not isinstance(value, str):
        raise ShapeError(f"{where}: expected {what} (str), got {type(value).__name__}")
    try:
        task.encode(value, meta)
    except ShapeError as e:
        raise ShapeError(f"{where}: {e}") from None
    return value


def read_text_source(source: str) -> tuple[str, str]:
    """``(text, where)``: the text of a ``.txt`` file (UTF-8; ``where`` is its path), or
    ``source`` itself as the text (``where`` "input") unless it names another existing
    file, which is refused rather than read as words."""
    path = Path(source)
    try:
        other_file = path.suffix.lower() != ".txt" and path.is_file()
    except OSError:  # a text longer than a file name can be (ENAMETOOLONG)
        other_file = False
    if other_file:
        raise ShapeError(f"{source}: a file, but not a .txt file; give a UTF-8 .txt file or "
                         "the text itself")
    if path.suffix.lower() != ".txt":
        return source, "input"
    if not path.is_file():
        raise ShapeError(f"input file {source!r} does not exist; expected a UTF-8 .txt file "
                         "or the text itself")
    try:
        return path.read_text(encoding="utf-8"), source
    except UnicodeDecodeError as e:
        raise ShapeError(f"{source}: not UTF-8 text ({e})") from None


def read_series(source: str, expected: str) -> np.ndarray:
    """A 1-D series from ``.npy`` or ``.csv`` (one value per line, or the last column; a
    non-numeric first line is taken as a header; an empty line or field is a gap, NaN).
    ``expected`` completes the error message of a missing file ("a series of ...")."""
    path = Path(source)
    if not path.is_file():
        raise ShapeError(f"input file {source!r} does not exist; expected a .npy or .csv "
                         f"series of {expected}")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix.lower() != ".csv":
            raise ShapeError(f"{source}: expected a .npy or .csv file, got {path.suffix!r}")
        lines = path.read_text().rstrip("\n").splitlines()
        first = lines[0].split(",")[-1].strip() if lines else ""
        try:
            float(first or "nan")  # an empty first value is a gap, not a header
        except ValueError:
            lines = lines[1:]  # a header
        # an empty line or field is a gap (NaN), refused by the task's check_input
        return np.array([float(v.split(",")[-1]) if v.split(",")[-1].strip() else np.nan
                         for v in lines], np.float64)
    except ShapeError:
        raise
    except Exception as e:  # numpy / float() raise several types for malformed files
        raise ShapeError(f"{source}: cannot read a series from it ({e})") from None


def check_series(x, minimum: int, where: str, what: str, tail: bool = False) -> np.ndarray:
    """``x`` as a finite 1-D float64 series of at least ``minimum`` values, or a
    :class:`ShapeError` saying what was received (``what``: why ``minimum`` are needed).
    ``tail``: keep (and check) only the last ``minimum`` values."""
    x = np.asarray(x)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ShapeError(f"{where}: expected one series (a column of values), got shape "
                         f"{x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ShapeError(f"{where}: expected real numbers, got dtype {x.dtype}")
    if len(x) < minimum:
        raise ShapeError(f"{where}: {len(x)} values; {what}, so give at least {minimum}")
    offset = len(x) - minimum if tail else 0
    x = x[offset:].astype(np.float64)
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.isfinite(x))
        part = f"the last {minimum} values" if tail else "the values"
        raise ShapeError(f"{where}: {len(bad)} of {part} are missing, NaN or infinite "
                         f"(first at position {offset + bad[0]}); fill the gaps first")
    return x


def is_wav(source: str, meta) -> bool:
    """Whether an audio model's input file is a recording (``.wav``) rather than log-mel
    frames (``.npy`` / ``.csv``); another suffix or a missing file is a
    :class:`ShapeError`."""
    suffix = Path(source).suffix.lower()
    if suffix not in (".wav", ".npy", ".csv"):
        raise ShapeError(f"{source}: expected a .wav file (or log-mel frames as .npy or .csv), "
                         f"got {Path(source).suffix!r}")
    if not Path(source).is_file():
        raise ShapeError(f"input file {source!r} does not exist; expected a .wav file (or "
                         f"log-mel frames as .npy or .csv, shape (time, "
                         f"{len(meta['channels'])}))")
    return suffix == ".wav"


@dataclass(frozen=True)
class Classification:
    """Sequence classification; metric: accuracy."""

    name: str = "classification"
    metric: str = "accuracy"
    higher_is_better: bool = True

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, dtype=np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["classifier"]
        probs = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], dtype=np.float32)
            probs.append(graph({"sequence": batch})["probs"])
            if progress:
                progress(len(probs[-1]))
        return np.concatenate(probs)

    def score(self, predictions, data, meta) -> dict[str, float]:
        labels = np.argmax(predictions, axis=-1)
        return {"accuracy": float(np.mean(labels == np.asarray(data.y)))}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> np.ndarray | list:
        """At least ``minimum`` real inputs for tensor parity.

        The test series, then the ``extra`` (calibration) series, then random real
        crops (length 50-100 % of a series) of both, which also exercise the dynamic
        time axis. Crops of unequal length are returned as a list.
        """
        pool = [*np.asarray(test.x, np.float32), *np.asarray(extra.x, np.float32)]
        out = list(pool)
        rng = np.random.default_rng(seed)
        while len(out) < minimum:
            x = pool[int(rng.integers(len(pool)))]
            length = int(rng.integers(len(x) // 2, len(x) + 1))
            start = int(rng.integers(0, len(x) - length + 1))
            out.append(x[start : start + length])
        return out

    def compare(self, a, b) -> dict[str, Any]:
        """How far two backends' predictions are from each other."""
        la, lb = np.argmax(a, -1), np.argmax(b, -1)
        return {"disagreements": int(np.sum(la != lb))}

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Reads a (T, C) sequence from a ``.npy`` or ``.csv`` file."""
        path = Path(source)
        if not path.is_file():
            raise ShapeError(f"input file {source!r} does not exist; expected a .npy or .csv "
                             f"file of shape (time, {len(meta['channels'])})")
        try:
            if path.suffix.lower() == ".npy":
                x = np.load(path, allow_pickle=False)
            elif path.suffix.lower() == ".csv":
                x = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
            else:
                raise ShapeError(f"{source}: expected a .npy or .csv file, got {path.suffix!r}")
        except ShapeError:
            raise
        except Exception as e:  # numpy raises several types for malformed files
            raise ShapeError(f"{source}: cannot read numbers from it ({e})") from None
        return self.check_sequence(x, meta, source)

    def check_sequence(self, x, meta, where="input") -> np.ndarray:
        channels = len(meta["channels"])
        x = np.asarray(x)
        if x.ndim == 3 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 2 or x.shape[1] != channels or x.shape[0] < 1:
            raise ShapeError(f"{where}: expected shape (time, {channels}) with time >= 1, "
                             f"got {x.shape}")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise ShapeError(f"{where}: expected real numbers, got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            bad = int(np.sum(~np.isfinite(x)))
            raise ShapeError(f"{where}: {bad} value(s) are NaN or infinite; expected finite")
        return x.astype(np.float32)[None]

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """One sequence (T, C) as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return self.check_sequence(x, meta, where)[0]

    def format(self, prediction, meta) -> str:
        order = np.argsort(prediction)[::-1]
        return ", ".join(f"{meta['classes'][i]} {prediction[i]:.3f}" for i in order)


@dataclass(frozen=True)
class Seq2Seq:
    """Token sequence transduction (G2P); metrics: phoneme error rate, word accuracy."""

    name: str = "seq2seq"
    metric: str = "per"
    higher_is_better: bool = False

    def inputs(self, data) -> list[str]:
        return list(data.words)

    def encode(self, word: str, meta) -> np.ndarray:
        index = {t: i for i, t in enumerate(meta["source_vocab"])}
        word = word.strip().lower()
        if not word:
            raise ShapeError("expected a non-empty word, got an empty string")
        unknown = sorted({ch for ch in word if ch not in index})
        if unknown:
            valid = "".join(meta["source_vocab"][2:])
            raise ShapeError(f"word {word!r} has characters {unknown} outside the model's "
                             f"alphabet {valid!r}")
        return np.array([[index[ch] for ch in word]], dtype=np.int32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        """Greedy transcriptions. ``batch_size`` > 1 groups words of equal length (Keras)."""
        vocab = meta["target_vocab"]
        out: list[tuple[str, ...]] = [()] * len(inputs)
        for chunk in length_batches([len(w.strip()) for w in inputs], batch_size):
            source = np.concatenate([self.encode(inputs[i], meta) for i in chunk])
            ids = greedy_decode(graphs, source, bos=meta["bos"], eos=meta["eos"],
                                max_len=meta["max_output_len"])
            for i, row in zip(chunk, ids, strict=True):
                out[i] = tuple(vocab[t] for t in row)
            if progress:
                progress(len(chunk))
        return out

    def score(self, predictions, data, meta) -> dict[str, float]:
        errors = length = correct = 0
        for pred, refs in zip(predictions, data.references, strict=True):
            best = min(refs, key=lambda r: (edit_distance(pred, r), len(r)))
            errors += edit_distance(pred, best)
            length += len(best)
            correct += tuple(pred) in {tuple(r) for r in refs}
        return {"per": errors / max(length, 1), "word_accuracy": correct / max(len(predictions), 1)}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[str]:
        """The first ``minimum`` held-out test words (their decoder steps, each word's up to
        its end token, are sampled for replay)."""
        return list(test.words[:minimum])

    def compare(self, a, b) -> dict[str, Any]:
        return {"disagreements": sum(x != y for x, y in zip(a, b, strict=True))}

    def check_input(self, word, meta, where="input") -> str:
        """One word as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return check_encodable(self, word, "a word", meta, where).strip().lower()

    def parse_input(self, source: str, meta) -> str:
        return self.check_input(source, meta)

    def format(self, prediction, meta) -> str:
        return " ".join(prediction)


@dataclass(frozen=True)
class CTCRecognition:
    """Sequence recognition with CTC: the graph ``recognizer`` gives per-frame probabilities
    over the blank (index ``meta["blank"]`` = 0) and ``meta["alphabet"]``, and the
    transcript is decoded on the host (:mod:`zoo.ctc`, greedy best path), identically for
    every backend. Metrics: character error rate, word accuracy.

    The graph's input is ``meta["input"]`` (default ``strokes``: pen trajectories); a
    model with a ``meta["sample_rate"]`` reads speech (log-mel frames of a WAV file)."""

    name: str = "ctc"
    metric: str = "cer"
    higher_is_better: bool = False

    def inputs(self, data) -> list[np.ndarray]:
        return [np.asarray(x, np.float32) for x in data.x]

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> list[str]:
        """Transcripts. ``batch_size`` > 1 groups inputs of equal length (Keras; the
        recurrent layers see no padding).

        Greedy best path unless ``meta["beam_width"]`` > 1: CTC prefix beam search, limited
        to the words of ``meta["lexicon"]`` if given (an empty transcript when no word
        survives the beam)."""
        graph, name = graphs["recognizer"], meta.get("input", "strokes")
        width = int(meta.get("beam_width", 1))
        lexicon = None
        if meta.get("lexicon"):
            lexicon = ctc.Lexicon(self.labels(w, meta) for w in meta["lexicon"])
        out = [""] * len(inputs)
        # batch 1 (the runtimes, calibration recording) keeps the inputs' order
        chunks = (length_batches([len(x) for x in inputs], batch_size) if batch_size > 1
                  else ([i] for i in range(len(inputs))))
        for chunk in chunks:
            batch = np.stack([np.asarray(inputs[i], np.float32) for i in chunk])
            for i, probs in zip(chunk, graph({name: batch})["probs"], strict=True):
                if width > 1 or lexicon is not None:
                    beams = ctc.beam_search(probs, width, meta["blank"], lexicon)
                    symbols = beams[0][0] if beams else []
                else:
                    symbols = ctc.greedy_decode(probs, meta["blank"])
                out[i] = self.transcript(symbols, meta)
            if progress:
                progress(len(chunk))
        return out

    def decoding_options(self, meta, beam_width: int, lexicon_path: str | None) -> dict:
        """``meta`` with a beam width and a lexicon read from a file of words, one per line
        (every word checked against the alphabet)."""
        if beam_width < 1:
            raise ShapeError(f"beam width must be >= 1; got {beam_width}")
        out = {**meta, "beam_width": beam_width}
        if lexicon_path is not None:
            path = Path(lexicon_path)
            if not path.is_file():
                raise ShapeError(f"lexicon file {lexicon_path!r} does not exist; expected a "
                                 f"text file of words, one per line")
            words = [w.strip() for w in path.read_text().splitlines() if w.strip()]
            if not words:
                raise ShapeError(f"lexicon file {lexicon_path!r} has no words")
            for i, w in enumerate(words):
                try:
                    self.labels(w, meta)
                except ShapeError as e:
                    raise ShapeError(f"{lexicon_path}, line {i + 1}: {e}") from None
            out["lexicon"] = words
        return out

    @staticmethod
    def transcript(symbols, meta) -> str:
        """Symbol indices (blank 0 excluded) as text."""
        return "".join(meta["alphabet"][s - 1] for s in symbols)

    @staticmethod
    def labels(text: str, meta) -> list[int]:
        """Text as symbol indices (1 + its position in the alphabet)."""
        index = {ch: i + 1 for i, ch in enumerate(meta["alphabet"])}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ShapeError(f"text {text!r} has characters {unknown} outside the alphabet "
                             f"{meta['alphabet']!r}")
        return [index[ch] for ch in text]

    def score(self, predictions, data, meta) -> dict[str, float]:
        errors = sum(edit_distance(p, t) for p, t in zip(predictions, data.texts, strict=True))
        length = sum(len(t) for t in data.texts)
        correct = sum(p == t for p, t in zip(predictions, data.texts, strict=True))
        return {"cer": errors / max(length, 1),
                "word_accuracy": correct / max(len(predictions), 1)}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test trajectories, then calibration ones, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    def compare(self, a, b) -> dict[str, Any]:
        return {"disagreements": sum(x != y for x, y in zip(a, b, strict=True))}

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Reads a trajectory: ``.npy`` (T, 3) rows of ``(dx, dy, pen_up)``; ``.json``, the
        same rows as a list, or ``{"strokes": [[[x, y], ...], ...], "body_height": h}``
        (absolute pen positions per stroke, converted by
        :func:`zoo.datasets.hershey_strokes.from_points`). Speech models read a ``.wav``
        file (:meth:`read_speech`) or log-mel frames as ``.npy`` / ``.csv``."""
        if "sample_rate" in meta:
            if is_wav(source, meta):
                return self.read_speech(source, meta)[None]
            frames = Classification().parse_input(source, meta)[0]
            return self.check_input(frames, meta, source)[None]
        import json

        channels = len(meta["channels"])
        path = Path(source)
        expected = (f"a .npy or .json stroke file: rows (time, {channels}) of "
                    f"{tuple(meta['channels'])}, or JSON {{\"strokes\": [[[x, y], ...], ...], "
                    f"\"body_height\": h}}")
        if not path.is_file():
            raise ShapeError(f"input file {source!r} does not exist; expected {expected}")
        try:
            if path.suffix.lower() == ".npy":
                x = np.load(path, allow_pickle=False)
            elif path.suffix.lower() == ".json":
                value = json.loads(path.read_text())
                if isinstance(value, dict):
                    from zoo.datasets.hershey_strokes import from_points

                    if set(value) != {"strokes", "body_height"}:
                        raise ShapeError(f"{source}: expected keys ['body_height', 'strokes'], "
                                         f"got {sorted(value)}")
                    x = from_points(value["strokes"], value["body_height"])
                else:
                    x = np.asarray(value, dtype=np.float64)
            else:
                raise ShapeError(f"{source}: expected {expected}; got {path.suffix!r}")
        except (ShapeError, DataError) as e:
            raise type(e)(f"{source}: {e}" if not str(e).startswith(source) else str(e)) \
                from None
        except Exception as e:  # json / numpy raise several types for malformed files
            raise ShapeError(f"{source}: cannot read a trajectory from it ({e})") from None
        return self.check_input(x, meta, source)[None]

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """One trajectory (T, C) as :meth:`predict` takes it, or a :class:`ShapeError`."""
        x = Classification().check_sequence(x, meta, where)[0]
        if len(x) > meta["max_points"]:
            raise ShapeError(f"{where}: {len(x)} {'frames' if 'sample_rate' in meta else 'points'}"
                             f"; the model takes at most {meta['max_points']} per input")
        if "pen_up" not in meta["channels"]:
            return x
        pen = x[:, meta["channels"].index("pen_up")]
        if not np.all((pen == 0) | (pen == 1)):
            raise ShapeError(f"{where}: pen_up must be 0 or 1; got values "
                             f"{sorted(set(pen.tolist()) - {0.0, 1.0})[:5]}")
        return x

    @staticmethod
    def read_speech(source: str, meta) -> np.ndarray:
        """Log-mel frames (T, mels) of a ``.wav`` file as the speech recogniser was tested
        on its strings: mono PCM (another sample rate is resampled), at most
        ``meta["max_seconds"]``, leading and trailing silence trimmed and
        ``meta["padding_seconds"]`` of silence put back on each side."""
        from zoo.audio import log_mel, read_wav, trim_silence

        rate = meta["sample_rate"]
        wave = trim_silence(read_wav(source, rate=rate, max_seconds=meta["max_seconds"]))
        pad = int(round(meta["padding_seconds"] * rate))
        x = log_mel(np.pad(wave.astype(np.float32), (pad, pad)))
        return CTCRecognition().check_input(x, meta, source)

    def format(self, prediction, meta) -> str:
        return prediction


@dataclass(frozen=True)
class KeywordSpotting(Classification):
    """Keyword spotting over log-mel frames, whole-window and streamed; metric: accuracy.

    Each prediction is a (2, classes) array: row 0 from the ``classifier`` graph over the
    whole window, row 1 from the ``step`` graph fed the same frames one at a time from zero
    state (the path a device runs). Accuracy is scored on the streamed row; the metrics
    also report ``stream_max_diff``, the largest difference between the two rows, which
    must stay at float32 rounding on every backend.
    """

    name: str = "kws"

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        full = Classification.predict(self, graphs, inputs, meta, None, batch_size)
        step = graphs["step"]
        widths = _state_widths(step)
        streamed = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], dtype=np.float32)
            feed = {n: np.zeros((len(batch), w), np.float32) for n, w in widths.items()}
            for t in range(batch.shape[1]):
                out = step({"frame": batch[:, t], **feed})
                feed = {n: out[f"{n}_next"] for n in widths}
            streamed.append(out["probs"])
            if progress:
                progress(len(batch))
        return np.stack([full, np.concatenate(streamed)], axis=1)

    def score(self, predictions, data, meta) -> dict[str, float]:
        predictions = np.asarray(predictions)
        labels = np.argmax(predictions[:, 1], axis=-1)
        truth = np.asarray(data.y)
        scores = {"accuracy": float(np.mean(labels == truth))}
        # Keywords are the classes that are not "_unknown_" / "_silence_" (the pretrained
        # spotter's digits; a fine-tuned spotter's own words).
        keyword = np.array([not c.startswith("_") for c in meta["classes"]])
        keywords, others = keyword[truth], ~keyword[truth]
        if keywords.any() and others.any():
            scores["digit_accuracy" if "zero" in meta["classes"] else "keyword_accuracy"] = \
                float(np.mean(labels[keywords] == truth[keywords]))
            # a window of another word or of silence taken for a keyword
            scores["false_accepts"] = float(np.mean(keyword[labels[others]]))
        scores["stream_max_diff"] = float(np.abs(predictions[:, 0] - predictions[:, 1]).max())
        return scores

    def compare(self, a, b) -> dict[str, Any]:
        la, lb = np.argmax(np.asarray(a)[:, 1], -1), np.argmax(np.asarray(b)[:, 1], -1)
        return {"disagreements": int(np.sum(la != lb))}

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Reads a ``.wav`` file (mono PCM; another sample rate is resampled; at most
        ``meta["max_seconds"]``), trims its silence and centres it in the model's window as
        the test recordings were (:func:`zoo.audio.fit_window`), and computes its log-mel
        frames; or reads frames from ``.npy`` / ``.csv``."""
        if not is_wav(source, meta):
            return super().parse_input(source, meta)
        from zoo.audio import fit_window, log_mel, read_wav

        wave = read_wav(source, rate=meta["sample_rate"], max_seconds=meta["max_seconds"])
        window = int(round(meta["window_seconds"] * meta["sample_rate"]))
        return self.check_sequence(log_mel(fit_window(wave, window)), meta, source)

    def format(self, prediction, meta) -> str:
        return super().format(np.asarray(prediction)[1], meta)


@dataclass(frozen=True)
class TextClassification(Classification):
    """Text classification over word ids; metric: accuracy.

    Inputs are texts; :meth:`encode` turns one into ids with the tokenizer and vocabulary
    in ``meta`` (:mod:`zoo.datasets.reviews`), the same on every backend. The graph
    ``classifier`` takes ``tokens (B, T)`` int32; a batch holds texts of one length only,
    so nothing is padded.
    """

    name: str = "text"

    def inputs(self, data) -> list[str]:
        return list(data.texts)

    @staticmethod
    def index(meta) -> dict[str, int]:
        from zoo.datasets.reviews import word_index

        return word_index(meta["vocab"])

    def encode(self, text: str, meta, index=None) -> np.ndarray:
        """Token ids (T,) of ``text``; a :class:`ShapeError` for a text without words."""
        from zoo.datasets.reviews import encode

        return encode(text, self.index(meta) if index is None else index,
                      meta["tokenizer"]["max_tokens"])

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["classifier"]
        index = self.index(meta)
        ids = [self.encode(t, meta, index) for t in inputs]
        out: list[np.ndarray | None] = [None] * len(ids)
        for chunk in length_batches([len(x) for x in ids], batch_size):
            probs = graph({"tokens": np.stack([ids[i] for i in chunk])})["probs"]
            for i, p in zip(chunk, probs, strict=True):
                out[i] = p
            if progress:
                progress(len(chunk))
        return np.stack(out) if out else np.zeros((0, len(meta["classes"])), np.float32)

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[str]:
        """The test texts, then the ``extra`` (calibration) ones, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    def check_input(self, text, meta, where="input") -> str:
        """One text as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return check_encodable(self, text, "a text", meta, where)

    def parse_input(self, source: str, meta) -> str:
        """The text of a ``.txt`` file or the text itself (see :func:`read_text_source`)."""
        text, where = read_text_source(source)
        return self.check_input(text, meta, where)


@dataclass(frozen=True)
class Forecasting:
    """Multi-step forecasting: the graph ``forecaster`` maps ``history (B, window, 1)`` to
    ``forecast (B, horizon)``, both in the series' own units. Metrics: MASE (the primary:
    mean absolute error over the seasonal naive method's in-sample error) and sMAPE (%),
    each also for the seasonal naive forecast of the same windows (``naive_*``)."""

    name: str = "forecast"
    metric: str = "mase"
    higher_is_better: bool = False
    baseline: str = "the seasonal naive forecast"

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["forecaster"]
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], np.float32)
            out.append(graph({"history": batch})["forecast"])
            if progress:
                progress(len(batch))
        return np.concatenate(out) if out else np.zeros((0, meta["horizon"]), np.float32)

    @staticmethod
    def errors(forecast, actual, scale) -> dict[str, float]:
        forecast, actual = np.asarray(forecast, np.float64), np.asarray(actual, np.float64)
        absolute = np.abs(forecast - actual)
        denominator = np.abs(actual) + np.abs(forecast)
        smape = 200.0 * np.mean(np.where(denominator > 0, absolute / np.where(
            denominator > 0, denominator, 1.0), 0.0))
        return {"mase": float(absolute.mean() / scale), "smape": float(smape)}

    def score(self, predictions, data, meta) -> dict[str, float]:
        model = self.errors(predictions, data.y, data.scale)
        naive = self.errors(data.naive, data.y, data.scale)
        return {**model, "naive_mase": naive["mase"], "naive_smape": naive["smape"]}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test windows, then calibration windows, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    @staticmethod
    def feed_lengths(meta) -> list[int]:
        """The window length, which the graph's input fixes, for random parity feeds."""
        return [int(meta["window"])]

    def compare(self, a, b) -> dict[str, Any]:
        """Windows whose forecasts differ by more than 1e-5 of the value (+1e-5)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        far = np.abs(a - b) > 1e-5 * (np.abs(a) + 1.0)
        return {"disagreements": int(np.sum(far.any(axis=-1)))}

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """The last ``meta["window"]`` values of a 1-D series as (window, 1), or a
        :class:`ShapeError` (too short, not numbers, gaps)."""
        window = int(meta["window"])
        x = check_series(x, window, where, f"the model forecasts from the last {window} "
                                           f"({meta['step']}s)", tail=True)
        return x.astype(np.float32)[:, None]

    def parse_input(self, source: str, meta) -> np.ndarray:
        """A series from ``.npy`` or ``.csv`` (see :func:`read_series`)."""
        return self.check_input(read_series(source, f"at least {meta['window']} values"),
                                meta, source)[None]

    def format(self, prediction, meta) -> str:
        return " ".join(f"{v:.6g}" for v in np.asarray(prediction).ravel())


def detection_scores(scores, labels, n_calibration: int) -> dict[str, float]:
    """Window decisions at the threshold set on the first ``n_calibration`` (normal)
    scores: their maximum, so no calibration window is flagged. Returns precision, recall,
    F1 of the flagged windows against ``labels`` (of the rest), ROC AUC of the scores,
    ``top_hit`` (1 if the highest-scoring window is anomalous) and the threshold."""
    scores = np.asarray(scores, np.float64)
    if not 0 < n_calibration < len(scores):
        raise ShapeError(f"anomaly scoring needs threshold windows and scored windows after "
                         f"them; got {len(scores)} scores of which {n_calibration} set the "
                         "threshold")
    labels = np.asarray(labels)[n_calibration:].astype(bool)
    threshold = float(scores[:n_calibration].max())
    test = scores[n_calibration:]
    flagged = test > threshold
    tp = int(np.sum(flagged & labels))
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / max(int(labels.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    # ROC AUC: the chance that an anomalous window outscores a normal one (ties count half)
    pos, neg = test[labels], test[~labels]
    auc = float(np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))) \
        if len(pos) and len(neg) else float("nan")
    return {"f1": float(f1), "precision": float(precision), "recall": float(recall),
            "auc": auc, "top_hit": float(labels[int(np.argmax(test))]),
            "threshold": threshold}


@dataclass(frozen=True)
class AnomalyDetection:
    """Anomaly detection by reconstruction: the graph ``autoencoder`` maps ``window (B, W,
    1)`` to ``reconstruction`` and ``score (B,)``. An input is one window (W, 1), or a
    whole 1-D series, which is cut into windows every ``meta["stride"]`` values (the last
    one ends at the series' end) and gives ``{"starts", "scores"}``.

    Scoring (:func:`detection_scores`): each backend sets its threshold on its own scores
    of the normal calibration windows that lead the test split, as a device calibrating
    itself would; the metric is the F1 of the flagged test windows. ``naive_*``: the
    dataset's baseline scores, thresholded the same way. The exported bundle records the
    Keras reference's threshold in its meta (``threshold``) for ``predict``."""

    name: str = "anomaly"
    metric: str = "f1"
    higher_is_better: bool = True
    baseline: str = "reconstructing the training mean"
    calibrated_meta: tuple[str, ...] = ("threshold",)

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, np.float32)

    @staticmethod
    def series_starts(length: int, window: int, stride: int) -> np.ndarray:
        starts = list(range(0, length - window + 1, stride))
        if starts[-1] != length - window:
            starts.append(length - window)
        return np.asarray(starts, np.int64)

    def _scores(self, graph, windows, batch_size, progress=None) -> np.ndarray:
        out = []
        for i in range(0, len(windows), batch_size):
            batch = np.asarray(windows[i : i + batch_size], np.float32)
            out.append(np.asarray(graph({"window": batch})["score"]).reshape(-1))
            if progress:
                progress(len(batch))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        graph = graphs["autoencoder"]
        if all(np.ndim(x) == 2 for x in inputs):
            return self._scores(graph, inputs, batch_size, progress)
        out = []
        for x in inputs:
            x = np.asarray(x, np.float32)
            if x.ndim == 2:
                out.append(self._scores(graph, [x], 1)[0])
                continue
            starts = self.series_starts(len(x), int(meta["window"]), int(meta["stride"]))
            windows = np.stack([x[s : s + int(meta["window"])] for s in starts])[..., None]
            out.append({"starts": starts, "scores": self._scores(graph, windows, batch_size)})
            if progress:
                progress(1)
        return out

    def score(self, predictions, data, meta) -> dict[str, float]:
        model = detection_scores(predictions, data.labels, data.n_calibration)
        naive = detection_scores(data.naive, data.labels, data.n_calibration)
        return {**model, **{f"naive_{k}": naive[k] for k in ("f1", "auc", "top_hit")}}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test split's windows (calibration ones first), then calibration windows."""
        return parity_pool(self, test, extra, minimum)

    @staticmethod
    def feed_lengths(meta) -> list[int]:
        """The window length, which the graph's input fixes, for random parity feeds."""
        return [int(meta["window"])]

    def compare(self, a, b) -> dict[str, Any]:
        """Windows whose scores differ by more than 1e-5 of the score (+1e-6)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return {"disagreements": int(np.sum(np.abs(a - b) > 1e-5 * np.abs(a) + 1e-6))}

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """A 1-D series of at least one window, finite, as float32, or a
        :class:`ShapeError`."""
        window = int(meta["window"])
        seconds = f" ({window / meta['rate']:.2g} s)" if meta.get("rate") else ""
        return check_series(x, window, where, f"the model scores windows of {window} values"
                                              f"{seconds}").astype(np.float32)

    def parse_input(self, source: str, meta) -> np.ndarray:
        """A series from ``.npy`` or ``.csv`` (see :func:`read_series`), in ``meta["unit"]``
        sampled at ``meta["rate"]`` Hz."""
        return self.check_input(read_series(source, f"at least {meta['window']} values"),
                                meta, source)[None]

    def format(self, prediction, meta) -> str:
        if not isinstance(prediction, dict):
            return f"score {float(prediction):.6g}"
        window, rate = int(meta["window"]), meta.get("rate")  # rate None: not known
        threshold = meta.get("threshold")
        starts, scores = prediction["starts"], np.asarray(prediction["scores"])
        lines = [f"{len(starts)} windows of {window} values"
                 + (f" ({window / rate:.3g} s)" if rate else "") + f" every {meta['stride']}; "
                 "threshold " + (f"{threshold:.6g} (the largest score on held-out normal data)"
                                 if threshold is not None else "unknown (not calibrated)")]
        for start, value in zip(starts, scores, strict=True):
            flag = " ANOMALY" if threshold is not None and value > threshold else ""
            when = f" {start / rate:9.3f} s" if rate else ""
            lines.append(f"{start:>8}{when}  score {value:.6g}{flag}")
        if threshold is not None:
            lines.append(f"{int(np.sum(scores > threshold))} of {len(scores)} windows over the "
                         "threshold")
        return "\n".join(lines)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-x**2 / (2 * sigma**2))
    return g / g.sum()


def ssim(a, b, max_value: float = 1.0) -> np.ndarray:
    """Structural similarity of image pairs ``(..., H, W)``, one value per pair: Wang et
    al.'s SSIM with an 11-pixel Gaussian window (sigma 1.5) over the valid positions,
    K1 = 0.01, K2 = 0.03, as ``tf.image.ssim`` computes it (tests hold the two together).

    The Gaussian blurs are two float32 matrix products with banded matrices (one per
    axis), the four blurred images of a chunk in one product: 2.4x faster than float64
    sliding windows on 2,560 frames of 64x64 (0.23 s against 0.56 s) and within 4e-8 of
    them, where the constants K1, K2 keep the variance differences away from float32's
    cancellation."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape or a.ndim < 2:
        raise ShapeError(f"ssim: got image arrays of shapes {a.shape} and {b.shape}; "
                         "expected two arrays of one shape (..., H, W)")
    h, w = a.shape[-2:]
    g = _gaussian_window(min(11, h, w))
    n = len(g)

    def band(size):  # (size - n + 1, size): row i holds the window at columns i..i+n-1
        m = np.zeros((size - n + 1, size), np.float32)
        for i in range(size - n + 1):
            m[i, i : i + n] = g
        return m

    rows, cols = band(h), band(w)
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    flat_a, flat_b = a.reshape(-1, h, w), b.reshape(-1, h, w)
    out = np.empty(len(flat_a), np.float64)
    # a few MB at a time: whole test splits (2,560 frames) as one array spent more time
    # faulting in fresh memory than multiplying
    chunk = max(1, (1 << 20) // (h * w))
    for i in range(0, len(flat_a), chunk):
        x, y = flat_a[i : i + chunk], flat_b[i : i + chunk]
        stack = np.stack([x, y, x * y, x * x + y * y])  # (4, len(x), h, w)
        blurred = (stack.reshape(-1, w) @ cols.T).reshape(4, len(x), h, len(cols))
        blurred = np.swapaxes(blurred, -1, -2).reshape(-1, h) @ rows.T
        mean_a, mean_b, blur_ab, blur_sq = np.swapaxes(
            blurred.reshape(4, len(x), len(cols), len(rows)), -1, -2)
        num0, den0 = 2 * mean_a * mean_b, mean_a**2 + mean_b**2
        value = (num0 + c1) / (den0 + c1) * (2 * blur_ab - num0 + c2) / (blur_sq - den0 + c2)
        out[i : i + len(x)] = value.mean(axis=(-2, -1), dtype=np.float64)
    return out.reshape(a.shape[:-2])


@dataclass(frozen=True)
class NextFrame:
    """Video prediction: the graph ``nextframe`` maps ``frames (B, observed, S, S, 1)`` to
    ``future (B, horizon, S, S, 1)``, pixel intensities in [0, 1]. Metrics over every
    predicted frame of the test clips: ``mse`` per pixel (the primary), ``mse_frame`` (its
    sum over a frame's pixels, as the Moving-MNIST literature reports it), ``ssim``;
    ``mse_first`` / ``mse_last`` for the first and last predicted frame; each ``naive_*``
    for copying the last observed frame; ``blank_mse`` for predicting empty frames."""

    name: str = "nextframe"
    metric: str = "mse"
    higher_is_better: bool = False
    baseline: str = "copying the last observed frame"

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.x, np.float32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> np.ndarray:
        graph = graphs["nextframe"]
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], np.float32)
            out.append(np.asarray(graph({"frames": batch})["future"], np.float32))
            if progress:
                progress(len(batch))
        size = int(meta["size"])
        return (np.concatenate(out) if out else
                np.zeros((0, int(meta["horizon"]), size, size, 1), np.float32))

    @staticmethod
    def errors(predicted, actual) -> dict[str, float]:
        # float32 pixels (what every backend returns), sums in float64: float64 copies of
        # a test split's 10.5 M predicted pixels took longer than the arithmetic
        predicted, actual = np.asarray(predicted, np.float32), np.asarray(actual, np.float32)
        if predicted.shape != actual.shape or predicted.ndim != 5:
            raise ShapeError(f"predicted frames {predicted.shape} and actual {actual.shape}: "
                             "expected two arrays of one shape (clips, frames, S, S, 1)")
        per_frame = np.square(predicted - actual).sum(axis=(2, 3, 4), dtype=np.float64)
        pixels = int(np.prod(predicted.shape[2:]))
        return {"mse": float(per_frame.mean() / pixels),
                "mse_frame": float(per_frame.mean()),
                "ssim": float(ssim(predicted[..., 0], actual[..., 0]).mean()),
                "mse_first": float(per_frame[:, 0].mean() / pixels),
                "mse_last": float(per_frame[:, -1].mean() / pixels)}

    def score(self, predictions, data, meta) -> dict[str, float]:
        actual = np.asarray(data.y, np.float32)
        model = self.errors(predictions, actual)
        # the baseline's SSIM over the test clips takes ~1 s, and an export scores 5 times
        naive = once_per_data(data, "nextframe naive", lambda: self.errors(data.naive, actual))
        return {**model, **{f"naive_{k}": v for k, v in naive.items()},
                "blank_mse": float(np.mean(np.square(actual, dtype=np.float64)))}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test clips, then calibration clips, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    @staticmethod
    def feed_lengths(meta) -> list[int]:
        """The observed frames, which the graph's input fixes, for random parity feeds."""
        return [int(meta["observed"])]

    def compare(self, a, b) -> dict[str, Any]:
        """Clips with a predicted pixel more than 1e-5 apart (fp32's tensor bound)."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        far = np.abs(a - b) > 1e-5
        return {"disagreements": int(np.sum(far.reshape(len(a), -1).any(axis=1)))}

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """Frames ``(T, S, S)`` or ``(T, S, S, 1)``, ``T >= observed`` (the last
        ``observed`` are used), uint8 0-255 or floats in [0, 1], as ``(observed, S, S,
        1)`` float32; anything else is a :class:`ShapeError` saying what it received."""
        observed, size = int(meta["observed"]), int(meta["size"])
        x = np.asarray(x)
        want = (f"expected frames shaped (T, {size}, {size}) or (T, {size}, {size}, 1) with T "
                f">= {observed} (the last {observed} are used)")
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[1:] != (size, size):
            raise ShapeError(f"{where}: got an array of shape {x.shape}; {want}")
        if len(x) < observed:
            raise ShapeError(f"{where}: {len(x)} frames; {want}")
        x = x[-observed:]
        if x.dtype == np.uint8:
            return (x / np.float32(255.0)).astype(np.float32)[..., None]
        if not np.issubdtype(x.dtype, np.floating):
            raise ShapeError(f"{where}: got dtype {x.dtype}; expected uint8 (0-255) or "
                             "floats in [0, 1]")
        if not np.all(np.isfinite(x)):
            raise ShapeError(f"{where}: {int(np.sum(~np.isfinite(x)))} pixels are NaN or "
                             "infinite")
        if x.min() < 0 or x.max() > 1:
            raise ShapeError(f"{where}: float pixels range over [{x.min():.3g}, "
                             f"{x.max():.3g}]; expected [0, 1] (or uint8 0-255)")
        return x.astype(np.float32)[..., None]

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Frames from a ``.npy`` file (see :meth:`check_input`)."""
        path = Path(source)
        if path.suffix.lower() != ".npy" or not path.is_file():
            raise ShapeError(f"{source}: expected an existing .npy file of frames "
                             f"(T, {meta['size']}, {meta['size']})")
        try:
            x = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises several types for malformed files
            raise ShapeError(f"{source}: cannot read frames from it ({e})") from None
        return self.check_input(x, meta, source)[None]

    def format(self, prediction, meta) -> str:
        """Each predicted frame as a line of its mean intensity, then the last one drawn
        in characters (one per 2x2 pixels)."""
        frames = np.asarray(prediction)[..., 0]
        lines = [f"{len(frames)} predicted frames of {frames.shape[1]}x{frames.shape[2]} "
                 "pixels (mean intensity, pixels over 0.5):"]
        lines += [f"  t+{t + 1:<3} {f.mean():.4f} {int(np.sum(f > 0.5)):>5}"
                  for t, f in enumerate(frames)]
        lines.append(f"t+{len(frames)}:")
        shades = " .:-=+*#%@"
        small = frames[-1][: frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
        small = small.reshape(small.shape[0] // 2, 2, small.shape[1] // 2, 2).mean(axis=(1, 3))
        lines += ["".join(shades[min(int(v * len(shades)), len(shades) - 1)] for v in row)
                  for row in small]
        return "\n".join(lines)


def _nll(picked: np.ndarray) -> np.ndarray:
    """Summed negative log-likelihood (nats) per row of ``picked`` (B, T), the
    probabilities given to the characters that came, in float64."""
    return -np.log(picked.astype(np.float64)).sum(axis=1)


def stream(step, tokens: np.ndarray, widths: dict[str, int], state=None):
    """Feeds ``tokens`` (B, T) through a one-token ``step`` graph from ``state`` (zeros
    when ``None``); yields each step's outputs (``probs`` and the next state)."""
    state = state or {n: np.zeros((len(tokens), w), np.float32) for n, w in widths.items()}
    nexts = [(n, f"{n}_next") for n in widths]
    for column in np.array(tokens, np.int32).T.copy():  # contiguous (B,) per step
        out = step({"token": column, **state})
        state = {n: out[m] for n, m in nexts}
        yield out


@dataclass(frozen=True)
class LanguageModel:
    """Character language modelling; metric: bits per character (lower is better).

    An evaluation input is a chunk of character ids (T + 1,); its prediction is a pair of
    summed negative log-likelihoods (nats) of the chunk's last T characters: from the
    ``lm`` graph over the whole chunk, and from the ``step`` graph fed one character at a
    time from zero state (the path generation runs). Bits per character are scored on the
    streamed one; ``stream_max_diff`` (nats per character) is the largest difference
    between the two, which must stay at float32 rounding on every backend. ``naive_bpc``:
    the unigram model on the same chunks. A text (str) input gives
    ``{"bits", "chars", "next"}``: its bits per character and the distribution of the
    character after it.
    """

    name: str = "lm"
    metric: str = "bpc"
    higher_is_better: bool = False
    baseline: str = "the unigram model (training character frequencies)"
    tensor_chars: int = 32  # characters per tensor-parity input (every step is recorded)

    @staticmethod
    def encode(text: str, meta) -> np.ndarray:
        index = {c: i + 1 for i, c in enumerate(meta["chars"])}
        return np.fromiter((index.get(c, 0) for c in text), np.int32, len(text))

    def inputs(self, data) -> np.ndarray:
        return np.asarray(data.ids, np.int32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        if len(inputs) and isinstance(inputs[0], str):
            return [self._text(graphs["step"], text, meta) for text in inputs]
        lm, step = graphs["lm"], graphs["step"]
        widths = _state_widths(step, "token")
        out = []
        for i in range(0, len(inputs), batch_size):
            batch = np.asarray(inputs[i : i + batch_size], np.int32)
            x, y = batch[:, :-1], batch[:, 1:]
            rows = np.arange(len(batch))
            probs = np.asarray(lm({"ids": x})["probs"])
            whole = _nll(np.take_along_axis(probs, y[..., None], -1)[..., 0])
            # each step's probability of the next character, gathered as the step returns
            # it; the logs and the sum once at the end, in float64 like the whole pass
            # (per step, the float64 copy and log were 5 µs of a 20 µs LiteRT step: 1.3 ms
            # of music_lstm's 9.2 ms chunk, measured)
            picked = np.empty(y.shape, np.float32)
            for t, o in enumerate(stream(step, x, widths)):
                picked[:, t] = o["probs"][rows, y[:, t]]
            out.append(np.stack([whole, _nll(picked)], axis=1))
            if progress:
                progress(len(batch))
        return np.concatenate(out) if out else np.zeros((0, 2))

    def _text(self, step, text: str, meta) -> dict:
        ids = self.encode("\n" + text, meta)  # after a line break, where lines begin
        bits = 0.0
        for t, o in enumerate(stream(step, ids[None], _state_widths(step, "token"))):
            probs = np.asarray(o["probs"], np.float64)[0]
            if t + 1 < len(ids):
                bits -= np.log2(probs[ids[t + 1]])
        return {"bits": float(bits), "chars": len(text), "next": probs}

    def score(self, predictions, data, meta) -> dict[str, float]:
        nll = np.asarray(predictions, np.float64)
        count = nll.shape[0] * (np.asarray(data.ids).shape[1] - 1)
        return {"bpc": float(nll[:, 1].sum() / count / np.log(2)),
                "bpc_whole": float(nll[:, 0].sum() / count / np.log(2)),
                "stream_max_diff": float(np.max(np.abs(nll[:, 0] - nll[:, 1]))
                                         / (np.asarray(data.ids).shape[1] - 1)),
                "naive_bpc": float(np.sum(data.naive) / count / np.log(2))}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The first ``tensor_chars + 1`` characters of the test chunks, then of the
        calibration chunks, until ``minimum`` (the step graph is recorded at every
        character, so whole chunks would only repeat its feeds)."""
        return [c[: self.tensor_chars + 1] for c in parity_pool(self, test, extra, minimum)]

    def compare(self, a, b) -> dict[str, Any]:
        """Chunks whose log-likelihoods differ by more than 1e-5 of their value."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return {"disagreements": int(np.sum((np.abs(a - b) > 1e-5 * np.abs(a) + 1e-6)
                                            .any(axis=-1)))}

    def check_input(self, text, meta, where="input"):
        """A non-empty text (str), or a chunk of character ids (1-D ints in the vocabulary,
        at least 2: an evaluation or calibration input); else a :class:`ShapeError`."""
        if isinstance(text, str):
            if not text:
                raise ShapeError(f"{where}: the text is empty; give at least one character")
            return text
        ids = np.asarray(text)
        vocab = len(meta["chars"]) + 1
        if ids.ndim != 1 or len(ids) < 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ShapeError(f"{where}: expected a text (str) or a 1-D chunk of at least 2 "
                             f"character ids, got {type(text).__name__} of shape {ids.shape} "
                             f"and dtype {ids.dtype}")
        if ids.min() < 0 or ids.max() >= vocab:
            raise ShapeError(f"{where}: character ids must be in 0..{vocab - 1}; got "
                             f"{int(ids.min())}..{int(ids.max())}")
        return ids.astype(np.int32)

    def parse_input(self, source: str, meta) -> str:
        """The text of a ``.txt`` file or the text itself (see :func:`read_text_source`)."""
        text, where = read_text_source(source)
        return self.check_input(text, meta, where)

    def format(self, prediction, meta) -> str:
        chars = meta["chars"]
        top = np.argsort(-prediction["next"], kind="stable")[:5]
        shown = ", ".join(f"{(chars[i - 1] if i else '<unknown>')!r} {prediction['next'][i]:.3f}"
                          for i in top)
        return (f"{prediction['bits'] / prediction['chars']:.4f} bits per character over "
                f"{prediction['chars']} characters; next: {shown}")


def _state_widths(graph, data_input: str = "frame") -> dict[str, int]:
    """The state inputs of a step graph (every input but ``data_input``) and their widths, read
    from its Keras model or its artifact's signature (through wrappers such as
    :class:`export.verify.Recorder`, which keep the graph as ``.graph``)."""
    while hasattr(graph, "graph"):
        graph = graph.graph
    if hasattr(graph, "model"):  # zoo.graphs.KerasGraph
        shapes = {n: t.shape for n, t in zip(graph.model.input_names, graph.model.inputs,
                                             strict=True)}
    else:  # export.runtime runners: the bundle's input signature
        shapes = {i["name"]: i["shape"] for i in graph.inputs}
    return {n: int(shape[-1]) for n, shape in shapes.items() if n != data_input}


TASKS: Mapping[str, Any] = {"classification": Classification(), "seq2seq": Seq2Seq(),
                            "ctc": CTCRecognition(), "kws": KeywordSpotting(),
                            "text": TextClassification(), "forecast": Forecasting(),
                            "anomaly": AnomalyDetection(), "lm": LanguageModel(),
                            "nextframe": NextFrame()}


def get_task(name: str):
    return TASKS[name]
