"""The audio front end: WAV reading and log-mel features, one definition for training and
inference.

Speech models take log-mel frames, not samples: the front end runs on the host (NumPy),
before the exported graph. One function, :func:`log_mel`, computes the features for the
training data, the Keras reference, every exported artifact and ``lstm-zoo predict``, so
they cannot drift apart. It equals TensorFlow's ``tf.signal`` pipeline with the same
parameters (``tests/test_audio.py`` checks it against ``tf.signal.stft`` and
``tf.signal.linear_to_mel_weight_matrix``).

Definition (8 kHz telephone-band audio, as the asterisk recordings are):
  frames of 200 samples (25 ms) every 80 samples (10 ms), no padding; periodic Hann
  window; 256-point FFT; power spectrum (129 bins); 40 triangular mel filters (HTK mel
  scale, 20-4000 Hz); ``log(mel + 1e-6)``.
"""

from __future__ import annotations

import functools
import io
import wave
from pathlib import Path

import numpy as np

from zoo.errors import ShapeError

SAMPLE_RATE = 8000
FRAME = 200
HOP = 80
FFT = 256
MELS = 40
LOW_HZ, HIGH_HZ = 20.0, 4000.0
LOG_FLOOR = 1e-6


def frames_for(samples: int) -> int:
    """Feature frames of a waveform of ``samples`` samples (0 if shorter than a frame)."""
    return 0 if samples < FRAME else 1 + (samples - FRAME) // HOP


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_matrix(bins: int = FFT // 2 + 1, mels: int = MELS, rate: int = SAMPLE_RATE,
               low: float = LOW_HZ, high: float = HIGH_HZ, warp: float = 1.0) -> np.ndarray:
    """(bins, mels) triangular filters on the HTK mel scale, as
    ``tf.signal.linear_to_mel_weight_matrix`` builds them (the DC bin gets no weight).
    ``warp`` != 1 scales the frequency axis (vocal tract length perturbation, for training
    data only: a speaker with a shorter or longer vocal tract)."""
    freqs = np.linspace(0.0, rate / 2.0, bins)[1:] * warp
    spectrum_mel = _hz_to_mel(freqs)[:, None]
    edges = np.linspace(_hz_to_mel(low), _hz_to_mel(high), mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (spectrum_mel - lower) / (center - lower)
    down = (upper - spectrum_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(up, down))
    return np.pad(weights, ((1, 0), (0, 0))).astype(np.float32)


_WINDOW = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(FRAME) / FRAME)).astype(np.float32)
_MEL = mel_matrix()


def log_mel(wave_: np.ndarray, warp: float = 1.0) -> np.ndarray:
    """Log-mel features (frames, 40) float32 of a mono 8 kHz waveform in [-1, 1].

    ``warp``: the frequency warp of :func:`mel_matrix` (training augmentation; inference
    always uses 1).

    Raises:
        ShapeError: not a 1-D finite waveform, or shorter than one 25 ms frame.
    """
    x = np.asarray(wave_)
    if x.ndim != 1:
        raise ShapeError(f"expected a mono waveform of shape (samples,), got {x.shape}")
    if x.size < FRAME:
        raise ShapeError(f"expected at least {FRAME} samples ({FRAME / SAMPLE_RATE * 1e3:.0f} ms "
                         f"at {SAMPLE_RATE} Hz), got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ShapeError("the waveform has NaN or infinite samples; expected finite values")
    x = x.astype(np.float32)
    n = frames_for(x.size)
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    spectrum = np.fft.rfft(x[idx] * _WINDOW, n=FFT, axis=-1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    mel = _MEL if warp == 1.0 else _warped_mel(round(float(warp), 3))
    return np.log(power @ mel + LOG_FLOOR).astype(np.float32)


@functools.cache
def _warped_mel(warp: float) -> np.ndarray:
    return mel_matrix(warp=warp)


def trim_silence(x: np.ndarray, floor_db: float = 35.0, margin: int = 400) -> np.ndarray:
    """``x`` without its leading and trailing silence: samples outside the first and last
    10 ms frame within ``floor_db`` of the loudest frame, keeping ``margin`` samples."""
    hop = SAMPLE_RATE // 100
    if len(x) < hop:
        return x
    energy = frame_energy(x, hop) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > -floor_db)
    start = max(0, loud[0] * hop - margin)
    stop = min(len(x), (loud[-1] + 1) * hop + margin)
    return x[start:stop]


def frame_energy(x: np.ndarray, hop: int = SAMPLE_RATE // 100) -> np.ndarray:
    """Mean square of each whole ``hop``-sample frame of ``x`` (10 ms by default)."""
    n = len(x) // hop
    return (x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1)


def center(x: np.ndarray, window: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` centred in ``window`` samples of silence, or, if longer, its middle ``window``
    samples."""
    x = np.asarray(x, np.float32)
    if len(x) >= window:
        cut = (len(x) - window) // 2
        return x[cut : cut + window]
    start = (window - len(x)) // 2
    return np.pad(x, (start, window - len(x) - start))


def fit_window(x: np.ndarray, window: int = SAMPLE_RATE) -> np.ndarray:
    """A recording as the speech models were tested on it: leading and trailing silence
    trimmed (:func:`trim_silence`), then :func:`center`-ed in ``window`` samples (the test
    split's recordings are trimmed when loaded and centred the same way)."""
    return center(trim_silence(np.asarray(x, np.float32)), window)


def resample(x: np.ndarray, source_rate: int, rate: int = SAMPLE_RATE,
             where: str = "audio") -> np.ndarray:
    """``x`` from ``source_rate`` to ``rate`` Hz with a polyphase filter
    (``scipy.signal.resample_poly``); float32. ``where`` names the source in errors."""
    if source_rate == rate:
        return np.asarray(x, np.float32)
    from math import gcd

    try:
        from scipy.signal import resample_poly
    except ImportError:
        from zoo.errors import MissingExtraError

        raise MissingExtraError(f"{where}: {source_rate} Hz audio must be resampled to "
                                f"{rate} Hz, which needs scipy: pip install "
                                "'lstm-zoo[speech]' (or resample the file first)") from None
    g = gcd(source_rate, rate)
    return resample_poly(x, rate // g, source_rate // g).astype(np.float32)


class StreamingLogMel:
    """:func:`log_mel` as audio arrives, for a device feeding the step graph: ``push`` takes
    the next chunk of samples (any length) and returns the frames it completed, possibly
    none. The frames of all chunks are those of :func:`log_mel` over their concatenation.

    Example:
        >>> import numpy as np
        >>> from zoo.audio import StreamingLogMel, log_mel
        >>> x = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
        >>> stream = StreamingLogMel()
        >>> frames = np.concatenate([stream.push(c) for c in np.split(x, [150, 4001])])
        >>> frames.shape == log_mel(x).shape and bool(np.allclose(frames, log_mel(x), atol=1e-5))
        True
    """

    def __init__(self):
        self._pending = np.zeros(0, np.float32)  # samples of frames not yet complete

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk)
        if chunk.ndim != 1 or not np.all(np.isfinite(chunk)):
            raise ShapeError(f"expected a 1-D chunk of finite samples, got shape {chunk.shape}")
        x = np.concatenate([self._pending, chunk.astype(np.float32)])
        n = frames_for(len(x))
        if n == 0:
            self._pending = x
            return np.zeros((0, MELS), np.float32)
        self._pending = x[HOP * n :]  # the next frame starts there
        return log_mel(x[: FRAME + HOP * (n - 1)])


def read_wav(source, *, rate: int = SAMPLE_RATE, max_seconds: float | None = None,
             where: str | None = None) -> np.ndarray:
    """Reads a PCM WAV file (path or bytes) as a mono float32 waveform at ``rate`` Hz.

    8-, 16-, 24- and 32-bit integer PCM are read; another sample rate is resampled with a
    polyphase filter (``scipy.signal.resample_poly``).

    Raises:
        ShapeError: not a WAV file, not PCM, more than one channel, no samples, or longer
            than ``max_seconds``; each message says what was received and what was expected.
    """
    where = where or (str(source) if not isinstance(source, bytes) else "WAV data")
    if isinstance(source, bytes):
        handle = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ShapeError(f"{where}: no such file; expected a mono PCM .wav file")
        handle = path.open("rb")
    try:
        with handle, wave.open(handle, "rb") as w:
            channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            count = w.getnframes()
            # a recording longer than the model takes is refused before it is read
            too_long = max_seconds is not None and src_rate > 0 and count > max_seconds * src_rate
            raw = b"" if too_long else w.readframes(count)
    except (wave.Error, EOFError) as e:
        raise ShapeError(f"{where}: not a PCM WAV file ({e}); expected a mono 16-bit PCM "
                         f".wav file") from None
    if channels != 1:
        raise ShapeError(f"{where}: {channels} channels; expected mono (1 channel): mix it "
                         "down first, e.g. `sox in.wav -c 1 out.wav`")
    if src_rate <= 0:
        raise ShapeError(f"{where}: sample rate {src_rate} Hz; expected a positive rate")
    if too_long:
        raise ShapeError(f"{where}: {count / src_rate:.2f} s of audio; this model takes at "
                         f"most {max_seconds:g} s")
    if count == 0 or not raw:
        raise ShapeError(f"{where}: the WAV file has no samples; expected mono audio at "
                         f"{rate} Hz")
    if len(raw) != count * width:
        raise ShapeError(f"{where}: truncated: the header announces {count} samples of "
                         f"{width} bytes, the file holds {len(raw)} bytes of them")
    return resample(_pcm_to_float(raw, width, where), src_rate, rate, where)


def _pcm_to_float(raw: bytes, width: int, where: str) -> np.ndarray:
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float32) / float(1 << 23)
    if width == 4:
        return np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    raise ShapeError(f"{where}: {8 * width}-bit samples; expected 8-, 16-, 24- or 32-bit PCM")


def write_wav(path, wave_: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Writes a mono float waveform in [-1, 1] as 16-bit PCM (tests, examples)."""
    pcm = np.clip(np.round(np.asarray(wave_, np.float64) * 32767.0), -32768, 32767)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def speech_frames(source, meta) -> np.ndarray:
    """Log-mel frames (T, mels) of a ``.wav`` file as a speech recogniser (``meta``) was
    tested on its strings: mono PCM (another sample rate is resampled), at most
    ``meta["max_seconds"]``, leading and trailing silence trimmed and
    ``meta["padding_seconds"]`` of silence put back on each side; a :class:`ShapeError`
    beyond ``meta["max_points"]`` frames."""
    rate = meta["sample_rate"]
    wave_ = trim_silence(read_wav(source, rate=rate, max_seconds=meta["max_seconds"]))
    pad = int(round(meta["padding_seconds"] * rate))
    x = log_mel(np.pad(wave_.astype(np.float32), (pad, pad)))
    if len(x) > meta["max_points"]:
        raise ShapeError(f"{source}: {len(x)} frames; the model takes at most "
                         f"{meta['max_points']} per input")
    return x


# --------------------------------------------------------------------------- augmentation


def noise(rng, n: int) -> np.ndarray:
    """White, pink or brown noise of unit RMS."""
    kind = int(rng.integers(3))
    white = rng.standard_normal(n)
    if kind == 0:
        x = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1.0
        spectrum /= f ** (0.5 if kind == 1 else 1.0)
        x = np.fft.irfft(spectrum, n)
    x = x - x.mean()
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def telephone_channel(rng, x: np.ndarray) -> np.ndarray:
    """A random telephone-like channel: band-pass (low cut 80-400 Hz, high cut 2.8-3.9 kHz,
    2nd-order Butterworth), a spectral tilt (first-order pre- or de-emphasis), and G.711
    mu-law companding for half the windows. espeak-ng's clean output and the prompt
    recordings differ most here."""
    from scipy.signal import butter, lfilter

    low, high = float(rng.uniform(80, 400)), float(rng.uniform(2800, 3900))
    b, a = butter(2, [low, high], btype="bandpass", fs=SAMPLE_RATE)
    y = lfilter(b, a, x)
    tilt = float(rng.uniform(-0.7, 0.7))
    y = lfilter([1.0, -tilt], [1.0], y) if tilt >= 0 else lfilter([1.0], [1.0, tilt], y)
    peak = np.abs(y).max()
    if peak > 0:
        y = y / peak * np.abs(x).max()
    if rng.random() < 0.5:
        mu = 255.0
        q = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127.0) / 127.0
        y = np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu
    return y.astype(np.float32)


def peak_level(rng) -> float:
    """A random peak level for a training recording, log-uniform in 0.01-0.9 (-40 to -1
    dBFS): quiet speakers are common (the FSDD's theo peaks at 0.01-0.07)."""
    return float(10 ** rng.uniform(-2.0, np.log10(0.9)))


def add_noise(rng, x: np.ndarray) -> np.ndarray:
    """``x`` with noise (:func:`noise`) at 5-40 dB SNR against its non-silent part, or
    unchanged for a fifth of the draws."""
    if rng.random() < 0.2:
        return x
    rms = np.sqrt(np.mean(x[x != 0] ** 2)) if np.any(x) else 0.1
    snr = float(rng.uniform(5, 40))
    return (x + rms * 10 ** (-snr / 20) * noise(rng, len(x))).astype(x.dtype, copy=False)
