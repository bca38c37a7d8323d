"""Spoken digit strings for CTC speech recognition, from the human recordings (asterisk,
saytime, FSDD) and espeak-ng voices of :mod:`zoo.datasets.spoken_digits`: 12,000
augmented training strings; held out, ``test`` (300 strings of Allison in English and
Spanish and Menardi in Italian) and ``test_fsdd`` (100 of FSDD's theo).

A sample is a string of 1-5 digits (``"4072"``) and the log-mel frames
(:func:`zoo.audio.log_mel`) of someone saying it, digit by digit, in one of five languages.
The transcript is the digits, whatever the language ("cuatro cero siete dos" is
``"4072"``).

- **train** (and ``calibration``, ``train_small``): each string is said either by an
  espeak-ng voice (the whole string in one request, so the digits run into each other as
  in speech; any of the five languages, voice variant, rate and pitch drawn per string) or
  by one of the *training* speakers (:data:`~zoo.datasets.spoken_digits.ALL_TRAIN` for
  ``train``: the asterisk ones, saytime and three FSDD speakers; the packaged ones only for
  the others), whose single-digit recordings (a random take of each digit where a speaker
  has several) are joined with pauses of 30-400 ms, each digit at its own speed
  (0.85-1.15). The string is then placed in 0.1-0.5 s of leading and trailing
  silence and augmented as the keyword spotter's windows are
  (:func:`~zoo.datasets.spoken_digits.telephone_channel`, level, noise at 5-40 dB SNR);
  training features also get vocal tract length warps and SpecAugment masks.
- **test**: strings said by the *held-out* speakers
  (:data:`~zoo.datasets.spoken_digits.TEST_SPEAKERS`: Allison in English and in Spanish,
  Menardi in Italian), never heard in training: their real recordings joined with
  100-300 ms pauses, 0.2 s of silence around, nothing added. Each speaker recorded each
  digit once, so the test strings are new sequences of 30 recordings, not 30 x 5 new
  recordings; its error rate measures those voices.
- **test_fsdd**: 100 strings built the same way from the held-out FSDD speaker's
  recordings (:data:`zoo.datasets.voices.FSDD_TEST`), a random one of its 50 takes of each
  digit; needs the FSDD folder (:func:`zoo.datasets.voices.fsdd_dir`), as ``train`` does.
- **train_speakers**: 300 strings (60 per speaker) built as the test strings are, from the
  *training* speakers' recordings (the clips training used, in new sequences and pauses,
  unaugmented): what the model does on recordings it heard, to set against the test.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from zoo.audio import SAMPLE_RATE, log_mel, peak_level
from zoo.constants import DIGIT_MAX as MAX_DIGITS
from zoo.constants import DIGIT_MIN as MIN_DIGITS
from zoo.datasets import spoken_digits as sd
from zoo.datasets.catalog import register_dataset
from zoo.datasets.hershey_strokes import StrokeData
from zoo.errors import DataError

LICENSE = (f"{sd.LICENSE}; Free Spoken Digit Dataset CC BY-SA 4.0; saytime GPL "
           "(David C. Dawson)")
# (strings, seed, share said by espeak-ng); test: strings per held-out speaker.
# (strings, seed, share said by espeak-ng, human speakers)
SPLITS = {"train": (12000, 0, 0.6, sd.ALL_TRAIN), "calibration": (200, 1, 0.6, sd.PACKAGED_TRAIN),
          "train_small": (256, 2, 0.0, sd.PACKAGED_TRAIN)}
TEST_PER_SPEAKER = 100
FSDD_TEST_SEED = 3  # the "test_fsdd" split: TEST_PER_SPEAKER strings per held-out FSDD speaker
TRAIN_SPEAKERS_PER_SPEAKER, TRAIN_SPEAKERS_SEED = 60, 7  # the "train_speakers" split


def _digits(rng) -> str:
    return "".join(str(int(d)) for d in rng.integers(0, 10, int(rng.integers(MIN_DIGITS,
                                                                            MAX_DIGITS + 1))))


def join(clips: list[np.ndarray], pauses: list[int], lead: int, trail: int) -> np.ndarray:
    """``clips`` one after another with ``pauses[i]`` samples of silence after clip ``i``
    (the last pause is not used), ``lead`` and ``trail`` samples of silence around."""
    parts = [np.zeros(lead, np.float32)]
    for i, clip in enumerate(clips):
        parts.append(np.asarray(clip, np.float32))
        if i < len(clips) - 1:
            parts.append(np.zeros(pauses[i], np.float32))
    parts.append(np.zeros(trail, np.float32))
    return np.concatenate(parts)


def _augment(rng, x: np.ndarray) -> np.ndarray:
    """Level, a telephone channel and noise, as :func:`spoken_digits.place` augments."""
    x = x / (np.abs(x).max() + 1e-9) * peak_level(rng)
    x = sd.telephone_channel(rng, x)
    x = sd.add_noise(rng, x)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def training_strings(count: int, seed: int, synthetic: float,
                     humans=sd.TRAIN_SPEAKERS) -> tuple[list[np.ndarray], list[str]]:
    """``count`` augmented waveforms and their digit strings; a string is espeak-ng's with
    probability ``synthetic``, else a training speaker's (a random language of the
    speakers', then one of its speakers). Deterministic in its arguments."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng([seed, 11])
    # a language first, then one of its speakers: each language's human speakers share one
    # part of the human strings (the FSDD's three English speakers would otherwise outweigh
    # the one Spanish and the one Italian: measured, Allison's Spanish read at CER 77 %)
    by_language: dict[str, list] = {}
    for s in humans:
        by_language.setdefault(sd.speaker_language(s), []).append(sd.human_clips(s)["takes"])
    clips = list(by_language.values())
    texts, sources, requests = [], [], []
    for _ in range(count):
        text = _digits(rng)
        texts.append(text)
        if rng.random() < synthetic:
            lang = sd.LANGUAGES[int(rng.integers(len(sd.LANGUAGES)))]
            words = " ".join(sd.DIGIT_WORDS[lang][int(d)] for d in text)
            voice = lang + sd.VARIANTS[int(rng.integers(len(sd.VARIANTS)))]
            sources.append(len(requests))
            requests.append((words, voice, int(rng.integers(110, 220)),
                             int(rng.integers(20, 80))))
        else:
            group = clips[int(rng.integers(len(clips)))]
            speaker = group[int(rng.integers(len(group)))]
            said = []
            for d in text:
                speed = float(rng.uniform(0.85, 1.15))
                said.append(resample_poly(_take(rng, speaker[int(d)]), 100,
                                          int(round(100 * speed))))
            pauses = [int(rng.integers(240, 3200)) for _ in text]  # 30-400 ms
            sources.append((said, pauses))
    spoken = sd.synthesize(requests)
    waves = []
    for source in sources:
        lead, trail = (int(rng.integers(800, 4000)) for _ in range(2))  # 0.1-0.5 s
        if isinstance(source, int):
            x = join([spoken[source]], [], lead, trail)
        else:
            x = join(*source, lead, trail)
        waves.append(_augment(rng, x))
    return waves, texts


def held_out_strings(speakers=sd.TEST_SPEAKERS, per_speaker: int = TEST_PER_SPEAKER,
                 seed: int = 0) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Strings of ``speakers``' digit recordings (the held-out speakers unless given),
    unaugmented: waveforms, digit strings, and who said each."""
    rng = np.random.default_rng([seed, 12])
    waves, texts, who = [], [], []
    for s in speakers:
        takes = sd.human_clips(s)["takes"]
        for _ in range(per_speaker):
            text = _digits(rng)
            pauses = [int(rng.integers(800, 2400)) for _ in text]  # 100-300 ms
            waves.append(join([_take(rng, takes[int(d)]) for d in text], pauses, 1600, 1600))
            texts.append(text)
            who.append(s)
    return waves, texts, who


def _take(rng, takes: list[np.ndarray]) -> np.ndarray:
    """A random take of a digit (an asterisk speaker has one: no draw, so its strings are
    what they were before speakers had several takes)."""
    return takes[int(rng.integers(len(takes)))] if len(takes) > 1 else takes[0]


@register_dataset("digit_strings", license=LICENSE, extra="speech", fetch=sd.FETCH)
@cache
def load(split: str) -> StrokeData:
    """``"train"`` (12,000 augmented strings, 60 % espeak-ng; needs the FSDD folder),
    ``"calibration"`` (200 more, another seed, packaged voices, features without
    augmentation: what inference sees), ``"train_small"`` (256 strings of the packaged
    training speakers only, for the tiny test model) or ``"test"`` (300 strings of the
    held-out asterisk speakers) or ``"test_fsdd"`` (100 of the held-out FSDD speaker) or
    ``"train_speakers"`` (300 built the same way from the asterisk training speakers'
    recordings). ``x``: (frames, 40) log-mel features per
    string; ``texts``: the digits; ``faces``: the speaker who said a test or
    train_speakers string, ``"train"`` for the other splits."""
    held_out = {"test": (), "test_fsdd": (sd.voices.FSDD_TEST, TEST_PER_SPEAKER, FSDD_TEST_SEED),
                "train_speakers": (sd.TRAIN_SPEAKERS, TRAIN_SPEAKERS_PER_SPEAKER,
                                   TRAIN_SPEAKERS_SEED)}
    if split in held_out:
        waves, texts, who = held_out_strings(*held_out[split])
        return StrokeData([log_mel(w) for w in waves], texts, who)
    if split not in SPLITS:
        raise DataError(f"spoken digit strings have splits {sorted([*SPLITS, *held_out])}; "
                        f"got {split!r}")
    count, seed, synthetic, humans = SPLITS[split]
    waves, texts = training_strings(count, seed, synthetic, humans)
    if split == "calibration":
        x = [log_mel(w) for w in waves]
    else:
        x = list(augmented_features(waves, seed))
    return StrokeData(x, texts, ["train"] * len(texts))


def augmented_features(waves: list[np.ndarray], seed: int):
    """Training features of variable-length waveforms: a vocal tract length warp
    (0.85-1.15) per string, then up to two bands of 1-6 mel bins and up to two spans of
    1-10 frames per second of audio set to the string's mean (SpecAugment-style)."""
    rng = np.random.default_rng([seed, 13])
    for w in waves:
        x = log_mel(w, warp=float(rng.uniform(0.85, 1.15)))
        frames, mels = x.shape
        mean = x.mean()
        for _ in range(int(rng.integers(0, 3))):
            width = int(rng.integers(1, 7))
            start = int(rng.integers(0, mels - width + 1))
            x[:, start : start + width] = mean
        for _ in range(int(rng.integers(0, 2 * max(1, len(w) // SAMPLE_RATE) + 1))):
            width = min(int(rng.integers(1, 11)), frames)
            start = int(rng.integers(0, frames - width + 1))
            x[start : start + width] = mean
        yield x
