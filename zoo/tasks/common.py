"""Helpers the tasks share: parity input pools, equal-length batches, per-data caching,
reading and checking user input (texts, series, audio), streaming a step graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ShapeError


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


# The most values a series to forecast from or to score may have: an anomaly detector
# scores every window of it, and a longer file (a log, a whole recording) is refused at once
# rather than read and scored for minutes.
MAX_SERIES = 1_000_000


def check_series(x, minimum: int, where: str, what: str, tail: bool = False) -> np.ndarray:
    """``x`` as a finite 1-D float64 series of ``minimum`` to :data:`MAX_SERIES` values, or
    a :class:`ShapeError` saying what was received (``what``: why ``minimum`` are needed).
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
    if len(x) > MAX_SERIES:
        raise ShapeError(f"{where}: {len(x)} values; a series may have at most {MAX_SERIES:,}")
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


def stream(step, tokens: np.ndarray, widths: dict[str, int], state=None):
    """Feeds ``tokens`` (B, T) through a one-token ``step`` graph from ``state`` (zeros
    when ``None``); yields each step's outputs (``probs`` and the next state)."""
    state = state or {n: np.zeros((len(tokens), w), np.float32) for n, w in widths.items()}
    nexts = [(n, f"{n}_next") for n in widths]
    for column in np.array(tokens, np.int32).T.copy():  # contiguous (B,) per step
        out = step({"token": column, **state})
        state = {n: out[m] for n, m in nexts}
        yield out


def _state_widths(graph, data_input: str = "frame") -> dict[str, int]:
    """The state inputs of a step graph (every input but ``data_input``) and their widths, read
    from its Keras model or its artifact's signature (through wrappers such as
    :class:`export.verification.verify.Recorder`, which keep the graph as ``.graph``)."""
    while hasattr(graph, "graph"):
        graph = graph.graph
    if hasattr(graph, "model"):  # zoo.graphs.KerasGraph
        shapes = {n: t.shape for n, t in zip(graph.model.input_names, graph.model.inputs,
                                             strict=True)}
    else:  # export.verification.runtime runners: the bundle's input signature
        shapes = {i["name"]: i["shape"] for i in graph.inputs}
    return {n: int(shape[-1]) for n, shape in shapes.items() if n != data_input}
