"""Spoken digits: real human recordings (Debian's asterisk prompt packages, Debian's
saytime, the Free Spoken Digit Dataset) and espeak-ng voices, as 1-second log-mel windows
for keyword spotting: ten digits by meaning in five languages, other words, silence.
Training (24,000 augmented windows) hears nine human speakers and espeak-ng; held out and
never heard: ``test`` (Allison in English and Spanish, Menardi in Italian: 30 digit
recordings, 90 other words, 20 noise windows), ``test_fsdd`` (FSDD's theo: 500 digit takes)
and ``test_speech`` (38 one-second stretches of held-out codec2 sentences).

Human speech (8 kHz, 16-bit, one speaker per directory; ../shared/DATA.md): the asterisk
PBX prompts. Each speaker has ``digits/0..9.wav`` and about a hundred other words
(``letters/``, ``phonetic/``, days and months), which are the "unknown" class. Speakers
are split, never clips: :data:`TEST_SPEAKERS` (Allison in English and in Spanish, Menardi
in Italian) are never heard in training, whose human speakers are June and Armelle (fr),
Carlo (it), the Russian IVR voice and the Colombian Spanish prompts (Armelle's and the
Colombian packages are GSM-encoded: fetch decodes them to WAV with the ffmpeg binary of
``imageio-ffmpeg``). English digits reach training from saytime's speaker and three FSDD
speakers (:mod:`zoo.datasets.voices`) and from espeak-ng (``espeakng-loader``, which
bundles libespeak-ng and its voices: GPL-3 engine, the audio it makes is data), which says
every language's digits, other words and letter names in many voice variants, rates and
pitches.

The recordings are not a Python package: ``lstm-zoo fetch-data`` (or :func:`fetch`) takes
the ``.deb`` files from Debian's archive with ``apt-get download`` and unpacks the word
folders of each speaker into :func:`sounds_root` (``$LSTM_ZOO_SOUNDS``, else
``~/.cache/lstm-zoo/asterisk``; ~30 MB). Nothing is fetched at training or test time.

Classes: the ten digits by meaning (so "three", "tres", "trois", "tre" and "три" are one
class), ``_unknown_`` (another word) and ``_silence_`` (background noise only).
Training windows are augmented: speed (0.85-1.15), level (0.01-0.9), position, a
telephone channel (band-pass, tilt, mu-law) and white/pink/brown noise at 5-40 dB SNR.
License: asterisk-core-sounds CC-BY-SA-3.0 (Allison Smith, June Wallack, Carlo Flora, the
IVR voice); asterisk-prompt-it-menardi CC-BY-SA-3.0 IT (Marco Menardi; voice Paola Dal Zot);
asterisk-prompt-fr-armelle GPL-2+ (Armelle Desjardins' voice, Michel Gutierrez);
asterisk-prompt-es-co GPL; espeak-ng GPL-3.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from zoo.audio import (  # noqa: F401  (noise, add_noise, telephone_channel: used here before)
    SAMPLE_RATE,
    add_noise,
    center,
    log_mel,
    noise,
    peak_level,
    read_wav,
    resample,
    telephone_channel,
    trim_silence,
)
from zoo.constants import SPOKEN_CLASSES as CLASSES
from zoo.constants import SPOKEN_DIGITS as DIGITS  # noqa: F401  (the data's words)
from zoo.constants import SPOKEN_SILENCE as SILENCE
from zoo.constants import SPOKEN_UNKNOWN as UNKNOWN
from zoo.datasets import voices
from zoo.datasets.basicmotions import SequenceData
from zoo.datasets.catalog import Fetch, register_dataset
from zoo.datasets.debian import download as _download
from zoo.datasets.debian import run as _run
from zoo.datasets.debian import sounds_root
from zoo.errors import DataError, MissingExtraError

LICENSE = ("Debian recordings: asterisk-core-sounds and asterisk-prompt-it-menardi "
           "CC-BY-SA-3.0, asterisk-prompt-fr-armelle GPL-2+, asterisk-prompt-es-co GPL; "
           "espeak-ng (GPL-3) synthesised voices")
WINDOW = SAMPLE_RATE  # one second


@dataclass(frozen=True)
class Speaker:
    package: str
    directory: str  # under usr/share/asterisk/sounds in the package, and under sounds_root()
    language: str
    encoding: str = "wav"  # "gsm": GSM 06.10 frames, turned into WAV by fetch()


SPEAKERS = {
    "allison_en": Speaker("asterisk-core-sounds-en-wav", "en_US_f_Allison", "en"),
    "allison_es": Speaker("asterisk-core-sounds-es-wav", "es_MX_f_Allison", "es"),
    "menardi_it": Speaker("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "it"),
    "june_fr": Speaker("asterisk-core-sounds-fr-wav", "fr_CA_f_June", "fr"),
    "carlo_it": Speaker("asterisk-core-sounds-it-wav", "it_IT_m_Carlo", "it"),
    "ivr_ru": Speaker("asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU", "ru"),
    "armelle_fr": Speaker("asterisk-prompt-fr-armelle", "fr", "fr", "gsm"),
    "colombia_es": Speaker("asterisk-prompt-es-co", "es", "es", "gsm"),
}
TEST_SPEAKERS = ("allison_en", "allison_es", "menardi_it")
TRAIN_SPEAKERS = ("june_fr", "armelle_fr", "carlo_it", "ivr_ru", "colombia_es")
FOLDERS = ("digits", "letters", "phonetic")  # those a speaker has are fetched
# Words of digits/ that are no digit: the unknown class, beside letters/ and phonetic/
# ("oh" is left out: it is how English speakers say zero in a number).
OTHER_IN_DIGITS = ("a-m", "p-m", "at", "day-0", "day-1", "day-2", "day-3", "day-4", "day-5",
                   "day-6", "dollars", "hundred", "million", "minus", "mon-0", "mon-1", "mon-2",
                   "mon-3", "mon-4", "mon-5", "mon-6", "mon-7", "mon-8", "mon-9", "mon-10",
                   "mon-11", "oclock", "pound", "star", "thousand", "today", "tomorrow",
                   "yesterday")
# Words of letters/ and phonetic/ that mean a digit, so neither class: "niner" (the
# phonetic alphabet's 9) and the letter O, which English speakers say for zero in a number.
DIGIT_LIKE = ("phonetic/9_p", "letters/o")
LANGUAGES = ("en", "es", "fr", "it", "ru")

from zoo.datasets.speech_words import (  # noqa: E402  (espeak-ng's words, and voices)
    DIGIT_WORDS,
    LETTER_NAMES,
    OTHER_WORDS,
    VARIANTS,
)

# --------------------------------------------------------------------------- the recordings


def speaker_dir(speaker: str) -> Path:
    """The folder of ``speaker``'s recordings, or a :class:`DataError` saying how to get it."""
    if speaker not in SPEAKERS:
        raise DataError(f"unknown speaker {speaker!r}; expected one of {sorted(SPEAKERS)}")
    path = sounds_root() / SPEAKERS[speaker].directory
    if not (path / "digits").is_dir():
        raise DataError(
            f"the recordings of {speaker!r} are not in {path}; fetch them once with "
            f"`lstm-zoo fetch-data` (Debian package {SPEAKERS[speaker].package}, via "
            "apt-get download), or set LSTM_ZOO_SOUNDS to a folder that has them")
    return path


def fetch(root: str | Path | None = None, speakers=tuple(SPEAKERS)) -> Path:
    """Downloads the speakers' Debian packages with ``apt-get download`` and unpacks their
    word folders into ``root`` (default :func:`sounds_root`). Speakers already there are
    skipped; each speaker's folder appears whole or not at all.

    Raises:
        DataError: ``apt-get`` or ``dpkg-deb`` is missing or fails (the message has its
            output), a package without the expected digits, a speaker folder in the way.
        MissingExtraError: a GSM-encoded speaker is due and ``imageio-ffmpeg`` is missing.
    """
    root = Path(root) if root else sounds_root()
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".fetch-*"):  # left by a fetch that was killed
        shutil.rmtree(stale, ignore_errors=True)
    todo = [s for s in speakers if not (root / SPEAKERS[s].directory / "digits").is_dir()]
    damaged = [s for s in speakers if s not in todo
               and damaged_recording(root / SPEAKERS[s].directory) is not None]
    for s in todo:
        if (root / SPEAKERS[s].directory).exists():
            raise DataError(f"{root / SPEAKERS[s].directory} exists but has no digits/ folder; "
                            "remove it and fetch again")
    for tool in ("apt-get", "dpkg-deb"):
        if todo and shutil.which(tool) is None:
            raise DataError(f"fetching the asterisk recordings needs {tool!r} (Debian or "
                            "Ubuntu); alternatively unpack the packages yourself and set "
                            "LSTM_ZOO_SOUNDS")
    todo += damaged  # fetched again, and swapped in whole for the damaged folder
    if any(SPEAKERS[s].encoding == "gsm" for s in todo):
        _ffmpeg()  # before downloading anything
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        for package in sorted({SPEAKERS[s].package for s in todo}):
            _download(package, tmp)
            deb = next(Path(tmp).glob(f"{package}_*.deb"), None)
            if deb is None:
                raise DataError(f"apt-get download {package} wrote no .deb file")
            unpacked = Path(tmp) / package
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)], cwd=tmp)
            for s in todo:
                spk = SPEAKERS[s]
                if spk.package != package:
                    continue
                source = unpacked / "usr/share/asterisk/sounds" / spk.directory
                staged = Path(tmp) / f"staged-{spk.directory}"
                staged.mkdir()
                for folder in FOLDERS:
                    if not (source / folder).is_dir():
                        continue
                    if spk.encoding == "wav":
                        shutil.copytree(source / folder, staged / folder)
                    else:
                        (staged / folder).mkdir()
                        for f in sorted((source / folder).glob(f"*.{spk.encoding}")):
                            _gsm_to_wav(f, staged / folder / f"{f.stem}.wav")
                digits = staged / "digits"
                if not all((digits / f"{d}.wav").is_file() for d in range(10)):
                    raise DataError(f"{package}: no digits/0..9 recordings under "
                                    f"usr/share/asterisk/sounds/{spk.directory}; the package "
                                    "layout is not the one this loader knows")
                if s in damaged:
                    os.rename(root / spk.directory, Path(tmp) / f"damaged-{spk.directory}")
                staged.rename(root / spk.directory)  # atomic: whole or absent
    return root


def damaged_recording(folder: Path) -> str | None:
    """The first recording of a speaker's folder whose WAV header announces more samples
    than the file holds (a copy cut short), or that is no WAV file, with what is wrong;
    ``None`` when every one is whole."""
    import wave

    for path in sorted(folder.glob("*/*.wav")):
        try:
            with wave.open(str(path), "rb") as w:
                want = w.getnframes() * w.getsampwidth() * w.getnchannels()
                got = len(w.readframes(w.getnframes()))
        except (wave.Error, EOFError, OSError) as e:
            return f"{path}: not a WAV file ({e})"
        if got != want:
            return f"{path}: cut short ({got} of {want} bytes of samples)"
    return None


def _fetch_all(root: str | None) -> str:
    where = fetch(root)
    more = voices.fetch(where)
    return (f"asterisk recordings of {len(SPEAKERS)} speakers"
            f"{', ' + ' and '.join(more) if more else ''} in {where}")


FETCH = Fetch(_fetch_all, "the speech recordings (Debian's asterisk sound packages, "
                          "saytime and codec2-examples, via apt-get download)",
              option="--to", option_help="folder of the recordings (default: "
                                         "$LSTM_ZOO_SOUNDS, else ~/.cache/lstm-zoo/asterisk)")


def _gsm_to_wav(source: Path, target: Path) -> None:
    """Decodes raw GSM 06.10 frames (asterisk's .gsm, 8 kHz) to 16-bit WAV with the ffmpeg
    binary that the ``imageio-ffmpeg`` wheel carries."""
    _run([_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "gsm",
          "-ar", str(SAMPLE_RATE), "-i", str(source), "-ac", "1", "-c:a", "pcm_s16le",
          str(target)], cwd=str(target.parent))


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MissingExtraError("two speakers' recordings are GSM-encoded; decoding them needs "
                                "the 'imageio-ffmpeg' package: pip install 'lstm-zoo[speech]'"
                                ) from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def speaker_language(speaker: str) -> str:
    """The language ``speaker`` says its digits in (``"en"`` for saytime and FSDD)."""
    if speaker in SPEAKERS:
        return SPEAKERS[speaker].language
    if speaker == voices.SAYTIME or speaker.startswith("fsdd_"):
        return "en"
    raise DataError(f"unknown speaker {speaker!r}")


@cache
def human_clips(speaker: str) -> dict[str, list]:
    """``speaker``'s clips, trimmed: ``{"digits": [10 waveforms, 0..9], "takes": [per
    digit, every take], "other": [...]}``. An asterisk speaker has one take of each digit
    and, as other words, every letter and phonetic-alphabet word but :data:`DIGIT_LIKE`,
    and :data:`OTHER_IN_DIGITS`; an FSDD speaker (``fsdd_*``) 50 takes and no other
    words; the saytime speaker: :func:`zoo.datasets.voices.saytime_clips`."""
    if speaker == voices.SAYTIME:
        return voices.saytime_clips()
    if speaker.startswith("fsdd_"):
        takes = voices.fsdd_takes(speaker)
        return {"digits": [t[0] for t in takes], "takes": takes, "other": []}
    path = speaker_dir(speaker)

    def read(file: Path) -> np.ndarray:  # cut short or not a WAV: the cache is damaged
        return voices.read_recording(file, f"run `lstm-zoo fetch-data`, which fetches "
                                           f"{speaker!r} again")

    digits = [trim_silence(read(path / "digits" / f"{d}.wav")) for d in range(10)]
    files = [p for folder in ("letters", "phonetic") for p in sorted((path / folder).glob("*.wav"))
             if f"{folder}/{p.stem}" not in DIGIT_LIKE]
    files += [path / "digits" / f"{w}.wav" for w in OTHER_IN_DIGITS
              if (path / "digits" / f"{w}.wav").is_file()]
    other = [trim_silence(read(p)) for p in files]
    other = [x for x in other if len(x) >= SAMPLE_RATE // 10]  # drop clicks and blanks
    return {"digits": digits, "takes": [[x] for x in digits], "other": other}


# --------------------------------------------------------------------------- espeak-ng


class Synthesizer:
    """espeak-ng through ctypes (``espeakng-loader``), resampled to 8 kHz. One per
    process: the library keeps global state."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            instance = super().__new__(cls)
            instance._init()  # cached only once it works
            cls._instance = instance
        return cls._instance

    def _init(self):
        import ctypes

        try:
            import espeakng_loader
        except ImportError:
            raise MissingExtraError("espeak-ng voices come from the 'espeakng-loader' package, "
                                    "which is not installed; install it with: pip install "
                                    "'lstm-zoo[speech]'") from None
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        # AUDIO_OUTPUT_SYNCHRONOUS = 2: espeak_Synth returns when the text is spoken.
        self.rate = self._lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.rate <= 0:
            raise DataError(f"espeak-ng failed to initialise (returned {self.rate})")
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                         ctypes.c_int, ctypes.c_void_p)

        def collect(wav, count, _events):
            if count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
            return 0

        self._callback = callback_type(collect)  # kept: the library holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def say(self, text: str, voice: str, rate: int = 160, pitch: int = 50) -> np.ndarray:
        """``text`` spoken by ``voice`` (e.g. ``"fr+m3"``), float32 at 8 kHz."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"espeak-ng has no voice {voice!r}")
        self._lib.espeak_SetParameter(1, int(rate), 0)  # espeakRATE, words per minute
        self._lib.espeak_SetParameter(3, int(pitch), 0)  # espeakPITCH, 0-100
        self._chunks.clear()
        data = text.encode()
        # position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
        self._lib.espeak_Synchronize()
        if status != 0 or not self._chunks:
            raise DataError(f"espeak-ng said nothing for {text!r} in voice {voice!r} "
                            f"(espeak_Synth returned {status})")
        x = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        return trim_silence(resample(x, self.rate, SAMPLE_RATE, f"espeak-ng {voice!r}"))


def draw_voice(rng, words, languages=LANGUAGES) -> tuple[tuple[str, str, int, int], int]:
    """A random espeak-ng request for a random entry of ``words[lang]``:
    ((text, voice, rate, pitch), index of the word)."""
    lang = languages[int(rng.integers(len(languages)))]
    k = int(rng.integers(len(words[lang])))
    voice = lang + VARIANTS[int(rng.integers(len(VARIANTS)))]
    return (words[lang][k], voice, int(rng.integers(110, 220)), int(rng.integers(20, 80))), k


def synthesize(requests: list[tuple[str, str, int, int]]) -> list[np.ndarray]:
    """Speaks each ``(text, voice, rate, pitch)`` request, in a fresh process.

    espeak-ng's output depends on what the process synthesised before (measured: "three"
    said four times in a row by en+m3 came out 2,911, 2,801, 2,919 and 2,914 samples long,
    the same four in every new process; neither ``espeak_ng_SetRandSeed`` nor
    re-initialising the library made calls repeatable). A new process per batch of
    requests, with espeak-ng's noise generator seeded, makes a split a function of its
    seed alone (``tests/test_kws.py`` draws one twice)."""
    if not requests:
        return []
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_synthesize_here, (requests,))


def _synthesize_here(requests):
    synth = Synthesizer()
    # Whispered and Klatt voices add noise from the C library's rand(), which espeak-ng
    # seeds from the clock when it starts: fix it.
    synth._lib.espeak_ng_SetRandSeed(0)
    return [synth.say(text, voice, rate, pitch) for text, voice, rate, pitch in requests]


# --------------------------------------------------------------------------- windows


def place(rng, speech: np.ndarray | None, augment: bool) -> np.ndarray:
    """A 1-second window holding ``speech`` (None: noise only).

    With ``augment``: speed 0.85-1.15, peak level 0.01-0.9 (:func:`zoo.audio.peak_level`),
    a random position, a random telephone channel (:func:`telephone_channel`), and noise at
    5-40 dB SNR (none for a fifth of the windows). Without: the clip as recorded, centred,
    nothing added (longer clips keep their middle second)."""
    from scipy.signal import resample_poly

    out = np.zeros(WINDOW, np.float32)
    if speech is not None and not augment:
        out = center(speech, WINDOW)  # as zoo.audio.fit_window windows a user's recording
    elif speech is not None:
        x = speech.astype(np.float32)
        speed = float(rng.uniform(0.85, 1.15))
        x = resample_poly(x, 100, int(round(100 * speed))).astype(np.float32)
        x = x / (np.abs(x).max() + 1e-9) * peak_level(rng)
        if len(x) > WINDOW:
            cut = int(rng.integers(len(x) - WINDOW + 1))
            x = x[cut : cut + WINDOW]
        start = int(rng.integers(WINDOW - len(x) + 1))
        out[start : start + len(x)] = x
    if augment and speech is not None:
        out = telephone_channel(rng, out)
    if augment or speech is None:
        if speech is None:
            level = float(10 ** rng.uniform(-4, -1))
            out += level * noise(rng, WINDOW)
        else:
            out = add_noise(rng, out)
    return np.clip(out, -1.0, 1.0)


def training_windows(count: int, seed: int, humans=TRAIN_SPEAKERS,
                     synthetic: float = 0.6, other_speech: bool = False,
                     digits: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """``count`` augmented windows (waveforms) and labels: 10 digits (a share ``digits``),
    unknown (up to 90 %), silence 10 %; a digit or unknown word is espeak-ng's with
    probability ``synthetic``, else a training speaker's recording: a random take of the
    digit, or another word (that speaker's, or, for a speaker without other words, any
    training speaker's; a quarter of them, when ``other_speech``, a 0.3-1 s stretch of the
    codec2 training sentences instead). The same arguments give the same windows."""
    rng = np.random.default_rng(seed)
    clips = [human_clips(s) for s in humans]
    words = [w for c in clips for w in c["other"]]
    sentences = _training_sentences() if other_speech else ()
    labels = np.zeros(count, np.int64)
    sources: list = []  # a recording, an index into ``requests``, or None (silence)
    requests = []
    for i in range(count):
        r = rng.random()
        human = clips[int(rng.integers(len(clips)))] if rng.random() >= synthetic else None
        if r < 0.9 and human is None:
            request, k = draw_voice(rng, DIGIT_WORDS if r < digits else OTHER_AND_LETTERS)
            labels[i] = k if r < digits else CLASSES.index(UNKNOWN)
            sources.append(len(requests))
            requests.append(request)
        elif r < digits:
            labels[i] = int(rng.integers(10))
            takes = human["takes"][labels[i]]
            sources.append(takes[int(rng.integers(len(takes)))] if len(takes) > 1 else takes[0])
        elif r < 0.9:
            labels[i] = CLASSES.index(UNKNOWN)
            pool = human["other"] or words
            if sentences and (not pool or rng.random() < 0.25):
                sources.append(_stretch(rng, sentences))
            elif pool:
                sources.append(pool[int(rng.integers(len(pool)))])
            else:
                raise DataError(f"no other words to train the {UNKNOWN!r} class on: the "
                                f"speakers {list(humans)} have none; add a speaker who has "
                                "(an asterisk one, saytime) or other_speech=True")
        else:
            labels[i] = CLASSES.index(SILENCE)
            sources.append(None)
    spoken = synthesize(requests)
    waves = np.zeros((count, WINDOW), np.float32)
    for i, source in enumerate(sources):
        speech = spoken[source] if isinstance(source, int) else source
        waves[i] = place(rng, speech, augment=True)
    return waves, labels


def _training_sentences() -> tuple[np.ndarray, ...]:
    return voices.sentences("train")


def _stretch(rng, sentences) -> np.ndarray:
    """A random 0.3-1 s stretch of a random sentence."""
    x = sentences[int(rng.integers(len(sentences)))]
    n = min(len(x), int(rng.integers(SAMPLE_RATE * 3 // 10, SAMPLE_RATE + 1)))
    start = int(rng.integers(len(x) - n + 1))
    return x[start : start + n]


def test_windows(speakers=TEST_SPEAKERS, others_per_speaker: int = 30, silences: int = 20,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Held-out human recordings, unaugmented: every digit of each speaker, a fixed sample
    of ``others_per_speaker`` other words each, and ``silences`` noise-only windows.
    Returns waveforms, labels and a description of each window."""
    rng = np.random.default_rng(seed)
    waves, labels, names = [], [], []
    for s in speakers:
        clips = human_clips(s)
        for d, x in enumerate(clips["digits"]):
            waves.append(place(rng, x, augment=False))
            labels.append(d)
            names.append(f"{s}/digits/{d}")
        pick = rng.choice(len(clips["other"]), min(others_per_speaker, len(clips["other"])),
                          replace=False)
        for k in sorted(pick):
            waves.append(place(rng, clips["other"][k], augment=False))
            labels.append(CLASSES.index(UNKNOWN))
            names.append(f"{s}/other/{k}")
    for k in range(silences):
        waves.append(place(rng, None, augment=False))
        labels.append(CLASSES.index(SILENCE))
        names.append(f"noise/{k}")
    return np.stack(waves), np.asarray(labels, np.int64), names


def features(waves: np.ndarray) -> np.ndarray:
    """(N, samples) -> (N, frames, 40) log-mel features (:func:`zoo.audio.log_mel`)."""
    return np.stack([log_mel(w) for w in waves])


def augmented_features(waves: np.ndarray, seed: int) -> np.ndarray:
    """Training features: each window's log-mel with a random vocal tract length warp
    (0.85-1.15), then SpecAugment-style masks: up to two bands of 1-6 mel bins and up to
    two spans of 1-10 frames set to the window's mean."""
    rng = np.random.default_rng([seed, 7])
    out = np.stack([log_mel(w, warp=float(rng.uniform(0.85, 1.15))) for w in waves])
    frames, mels = out.shape[1:]
    for x in out:
        mean = x.mean()
        for _ in range(int(rng.integers(0, 3))):
            width = int(rng.integers(1, 7))
            start = int(rng.integers(0, mels - width + 1))
            x[:, start : start + width] = mean
        for _ in range(int(rng.integers(0, 3))):
            width = int(rng.integers(1, 11))
            start = int(rng.integers(0, frames - width + 1))
            x[start : start + width] = mean
    return out


OTHER_AND_LETTERS = {lang: OTHER_WORDS[lang] + LETTER_NAMES[lang] for lang in LANGUAGES}
# Packaged human voices: the asterisk training speakers and saytime (lstm-zoo fetch-data);
# the full training split adds the FSDD training speakers, a folder the user supplies.
PACKAGED_TRAIN = (*TRAIN_SPEAKERS, voices.SAYTIME)
ALL_TRAIN = (*PACKAGED_TRAIN, *voices.FSDD_TRAIN)
# split: (windows, seed, human speakers, share said by espeak-ng, share of digits)
SPLITS = {"train": (24000, 0, ALL_TRAIN, 0.5, 0.6),
          "calibration": (200, 1, PACKAGED_TRAIN, 0.6, 0.7),
          "train_small": (512, 2, PACKAGED_TRAIN, 0.6, 0.7)}
TESTS = ("test", "test_fsdd", "test_speech")


def fsdd_test_windows(speakers=voices.FSDD_TEST) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every take of every digit of the held-out FSDD speakers, centred, unaugmented."""
    waves, labels, names = [], [], []
    for s in speakers:
        for d, takes in enumerate(human_clips(s)["takes"]):
            for k, x in enumerate(takes):
                waves.append(place(None, x, augment=False))
                labels.append(d)
                names.append(f"{s}/digits/{d}/{k}")
    return np.stack(waves), np.asarray(labels, np.int64), names


@register_dataset("spoken_digits", license=f"{LICENSE}; {voices.LICENSE}", extra="speech",
                  fetch=FETCH)
@cache
def load(split: str) -> SequenceData:
    """``"train"`` (24,000 augmented windows: espeak-ng voices and the training speakers,
    FSDD's included, so it needs :func:`zoo.datasets.voices.fsdd_dir`),
    ``"calibration"`` (200 more, another seed, packaged voices only), ``"train_small"``
    (512, packaged voices, for the tiny test model) or a held-out test, unaugmented:
    ``"test"`` (the held-out asterisk speakers' digits and other words, and noise),
    ``"test_fsdd"`` (the held-out FSDD speaker's 500 digit recordings), ``"test_speech"``
    (1-second stretches of the held-out codec2 sentences: other speech). ``x``: (N, 98
    frames, 40) log-mel features; ``y``: indices into :data:`CLASSES`."""
    if split in TESTS:
        if split == "test_speech":
            waves = np.stack(voices.speech_windows("test"))
            labels = np.full(len(waves), CLASSES.index(UNKNOWN), np.int64)
        else:
            waves, labels, _ = test_windows() if split == "test" else fsdd_test_windows()
        return SequenceData(features(waves), labels, CLASSES)
    if split not in SPLITS:
        raise DataError(f"spoken digits have splits {sorted([*SPLITS, *TESTS])}; got {split!r}")
    count, seed, humans, synthetic, digits = SPLITS[split]
    waves, labels = training_windows(count, seed, humans, synthetic, other_speech=True,
                                     digits=digits)
    if split == "calibration":  # calibration sees what inference sees: plain features
        return SequenceData(features(waves), labels, CLASSES)
    return SequenceData(augmented_features(waves, seed), labels, CLASSES)
