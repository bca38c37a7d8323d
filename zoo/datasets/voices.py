"""More human voices for the speech models, beside the asterisk prompts of
:mod:`zoo.datasets.spoken_digits`.

- **FSDD** (the Free Spoken Digit Dataset, CC BY-SA 4.0): four speakers, each saying every
  English digit 50 times (8 kHz WAV, ``{digit}_{speaker}_{take}.wav``). It is no package:
  the folder is a setting, :func:`fsdd_dir` (``$LSTM_ZOO_FSDD``, else
  ``../shared/data/fsdd/recordings`` beside the project when it is there). Speakers are
  split, never takes: :data:`FSDD_TEST` (theo) is never heard in training.
- **saytime** (Debian package ``saytime``, GPL; David C. Dawson's voice): one English
  speaker saying 0-20, 30, 40, 50, "oh" and a few time words, headerless 8 kHz mu-law.
  Its digits (and "oh", for zero) train the digit classes; the teens, tens and time
  words, some of them close to a digit ("thirteen", "thirty"), the unknown class.
- **codec2-examples** (Debian, LGPL-2.1): sentences read by several speakers, the
  codec's reference recordings (8 kHz). Cut into windows, they are other speech: the
  training files add to the unknown class, the held-out ones (:data:`CODEC2_TEST`) measure
  false accepts on running speech. Radio recordings, which say call signs with digits, are
  left out.

``lstm-zoo fetch-data`` takes the two Debian packages (``apt-get download``) and writes
their recordings as 16-bit WAV into ``saytime/`` and ``codec2/`` under
:func:`~zoo.datasets.debian.sounds_root`; each folder appears whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from zoo.audio import SAMPLE_RATE, frame_energy, read_wav, trim_silence, write_wav
from zoo.errors import DataError, ShapeError

FSDD_SPEAKERS = ("jackson", "nicolas", "theo", "yweweler")
FSDD_TRAIN = ("fsdd_jackson", "fsdd_nicolas", "fsdd_yweweler")
FSDD_TEST = ("fsdd_theo",)  # chosen before any training run: a native (USA) English voice
FSDD_TAKES = 50
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"
SAYTIME = "saytime_en"
SAYTIME_DIGITS = {"0": 0, "oh": 0, **{str(d): d for d in range(1, 10)}}
SAYTIME_OTHER = (*(str(n) for n in range(10, 21)), "30", "40", "50", "am", "pm", "and",
                 "exactly", "hour", "hours", "minute", "minutes", "oclock", "second",
                 "seconds", "the_time_is")
# The codec's reference recordings: sentences, no digits. Files of one recording (hts1 and
# its first 3 s hts1a, forig and its coded f2400) stay on one side of the split.
CODEC2_TRAIN = ("wav/david4", "wav/big_dog", "wav/mmt1", "wav/forig", "wav/f2400",
                "raw/kristoff", "raw/cross")
CODEC2_TEST = ("wav/hts1a", "wav/hts2a", "wav/morig", "wav/m2400", "raw/hts1", "raw/hts2")
LICENSE = ("Free Spoken Digit Dataset CC BY-SA 4.0; saytime GPL (David C. Dawson); "
           "codec2-examples LGPL-2.1")


# --------------------------------------------------------------------------- FSDD


def fsdd_dir() -> Path:
    """The FSDD recordings folder: ``$LSTM_ZOO_FSDD``, else ``../shared/data/fsdd`` (its
    ``recordings/``) from the working directory or from the project's root.

    Raises:
        DataError: the folder is not there; the message says where to get the dataset.
    """
    where = os.environ.get("LSTM_ZOO_FSDD")
    candidates = [Path(where)] if where else [
        Path.cwd().parent / "shared" / "data" / "fsdd",
        Path(__file__).resolve().parents[3] / "shared" / "data" / "fsdd"]
    for c in candidates:
        for folder in (c / "recordings", c):
            if (folder / "0_theo_0.wav").is_file() or (folder / "0_jackson_0.wav").is_file():
                return folder
    raise DataError(
        f"the Free Spoken Digit Dataset is not at {' or '.join(map(str, candidates))}; get "
        f"it from {FSDD_URL} (CC BY-SA 4.0; its recordings/ folder of "
        "{digit}_{speaker}_{take}.wav files) and set LSTM_ZOO_FSDD to that folder")


def fsdd_missing() -> str | None:
    """Why the FSDD recordings cannot be read here, or ``None`` when they can."""
    try:
        fsdd_dir()
    except DataError as e:
        return str(e)
    return None


@cache
def fsdd_takes(speaker: str) -> list[list[np.ndarray]]:
    """``speaker``'s (``"fsdd_theo"``, ...) trimmed recordings: ten lists, one per digit,
    of its 50 takes in take order."""
    name = speaker.removeprefix("fsdd_")
    if not speaker.startswith("fsdd_") or name not in FSDD_SPEAKERS:
        raise DataError(f"unknown FSDD speaker {speaker!r}; expected one of "
                        f"{['fsdd_' + s for s in FSDD_SPEAKERS]}")
    folder = fsdd_dir()
    takes = []
    for d in range(10):
        files = [folder / f"{d}_{name}_{k}.wav" for k in range(FSDD_TAKES)]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataError(f"{folder}: {len(missing)} of {speaker!r}'s recordings of {d} "
                            f"are missing ({', '.join(missing[:3])}...); expected "
                            f"{FSDD_TAKES} takes of each digit, as the dataset has them")
        takes.append([trim_silence(read_recording(f)) for f in files])
    return takes


def read_recording(path: Path, advice: str = "replace the file from the dataset, or run "
                                    "`lstm-zoo fetch-data` for the Debian ones") -> np.ndarray:
    """The WAV file at ``path``; a cut-short or non-WAV file is a :class:`DataError` that
    gives ``advice``."""
    try:
        return read_wav(path)
    except ShapeError as e:
        raise DataError(f"a damaged recording ({e}); {advice}") from None


# --------------------------------------------------------------------------- Debian packages


def mulaw_to_float(raw: bytes) -> np.ndarray:
    """G.711 mu-law bytes (Sun ``/dev/audio``) to float32 samples in [-1, 1]."""
    u = ~np.frombuffer(raw, np.uint8)
    exponent = ((u >> 4) & 7).astype(np.int32)
    magnitude = ((((u & 0x0F).astype(np.int32) << 3) + 0x84) << exponent) - 0x84
    return (np.where(u & 0x80, -magnitude, magnitude) / 32768.0).astype(np.float32)


def _write_saytime(unpacked: Path, staged: Path) -> None:
    source = unpacked / "usr" / "share" / "saytime"
    for name in (*SAYTIME_DIGITS, *SAYTIME_OTHER):
        file = source / f"{name}.au"
        if not file.is_file():
            raise DataError(f"saytime: no {file.name} under usr/share/saytime; the package "
                            "layout is not the one this loader knows")
        write_wav(staged / f"{name}.wav", mulaw_to_float(file.read_bytes()))


def _write_codec2(unpacked: Path, staged: Path) -> None:
    source = unpacked / "usr" / "share" / "codec2"
    for name in (*CODEC2_TRAIN, *CODEC2_TEST):
        folder, stem = name.split("/")
        file = source / folder / f"{stem}.{folder}"
        if not file.is_file():
            raise DataError(f"codec2-examples: no {folder}/{file.name} under usr/share/codec2; "
                            "the package layout is not the one this loader knows")
        if folder == "raw":  # headerless 16-bit little-endian, 8 kHz
            wave = np.frombuffer(file.read_bytes(), "<i2").astype(np.float32) / 32768.0
        else:
            wave = read_recording(file)
        write_wav(staged / f"{stem}.wav", wave)


PACKAGES = {"saytime": _write_saytime, "codec2-examples": _write_codec2}
FOLDERS = {"saytime": "saytime", "codec2-examples": "codec2"}


def fetch(root: Path) -> list[str]:
    """Fetches the packages whose folder is not yet under ``root``; returns their names.

    Raises:
        DataError: ``apt-get`` or ``dpkg-deb`` is missing or fails, or a package's layout is
            not the expected one.
    """
    from zoo.datasets.debian import unpacked

    todo = [p for p in PACKAGES if not (root / FOLDERS[p] / ".complete").is_file()]
    for tool in ("apt-get", "dpkg-deb"):
        if todo and shutil.which(tool) is None:
            raise DataError(f"fetching {', '.join(todo)} needs {tool!r} (Debian or Ubuntu)")
    for package in todo:
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
            staged = Path(tmp) / "staged"
            staged.mkdir()
            PACKAGES[package](unpacked(package, tmp), staged)
            (staged / ".complete").write_text(package + "\n")
            if (root / FOLDERS[package]).exists():  # a folder without its mark: replaced
                os.rename(root / FOLDERS[package], Path(tmp) / "stale")
            staged.rename(root / FOLDERS[package])  # atomic: whole or absent
    return todo


def _folder(name: str) -> Path:
    from zoo.datasets.debian import sounds_root

    path = sounds_root() / name
    if not (path / ".complete").is_file():
        raise DataError(f"the {name} recordings are not in {path}; fetch them once with "
                        "`lstm-zoo fetch-data`, or set LSTM_ZOO_SOUNDS to a folder that has "
                        "them")
    return path


@cache
def saytime_clips() -> dict[str, list]:
    """The saytime speaker as :func:`~zoo.datasets.spoken_digits.human_clips` gives a
    speaker: ``digits`` (one take of each, 0..9), ``takes`` (per digit: "0" and "oh" for
    zero, one take of the others) and ``other`` (the teens, tens and time words)."""
    path = _folder("saytime")
    takes: list[list[np.ndarray]] = [[] for _ in range(10)]
    for name, digit in SAYTIME_DIGITS.items():
        takes[digit].append(trim_silence(read_recording(path / f"{name}.wav")))
    other = [trim_silence(read_recording(path / f"{name}.wav")) for name in SAYTIME_OTHER]
    return {"digits": [t[0] for t in takes], "takes": takes, "other": other}


@cache
def sentences(split: str) -> tuple[np.ndarray, ...]:
    """The codec2 recordings of ``split`` (``"train"`` or ``"test"``), whole."""
    names = {"train": CODEC2_TRAIN, "test": CODEC2_TEST}.get(split)
    if names is None:
        raise DataError(f"codec2 sentences have splits ['test', 'train']; got {split!r}")
    path = _folder("codec2")
    return tuple(read_recording(path / f"{n.split('/')[1]}.wav") for n in names)


def speech_windows(split: str, window: int = SAMPLE_RATE, hop: int = SAMPLE_RATE // 2,
                   ) -> list[np.ndarray]:
    """Every ``window``-sample stretch of ``split``'s sentences, ``hop`` apart, that holds
    speech (its loudest 10 ms within 30 dB of the recording's loudest); these are other
    speech, the unknown class."""
    out = []
    for x in sentences(split):
        peak = np.max(frame_energy(x))
        for start in range(0, max(1, len(x) - window + 1), hop):
            piece = np.zeros(window, np.float32)
            chunk = x[start : start + window]
            piece[: len(chunk)] = chunk
            if np.max(frame_energy(piece)) > peak * 1e-3:
                out.append(piece)
    return out
