"""The audio front end: log-mel features equal tf.signal's, WAV reading refuses what it
cannot read with typed errors."""

import io
import wave

import numpy as np
import pytest

from zoo import audio
from zoo._keras import tf
from zoo.errors import ShapeError


def tf_log_mel(x):
    """The same definition written with tf.signal, as the docstring of zoo.audio states."""
    stft = tf.signal.stft(x, audio.FRAME, audio.HOP, audio.FFT,
                          window_fn=tf.signal.hann_window, pad_end=False)
    mel = tf.signal.linear_to_mel_weight_matrix(audio.MELS, audio.FFT // 2 + 1,
                                                audio.SAMPLE_RATE, audio.LOW_HZ, audio.HIGH_HZ)
    return tf.math.log(tf.matmul(tf.abs(stft) ** 2, mel) + audio.LOG_FLOOR).numpy()


@pytest.mark.parametrize("n", [200, 279, 280, 8000, 12345])
def test_log_mel_equals_tf_signal(n):
    rng = np.random.default_rng(n)
    t = np.arange(n) / audio.SAMPLE_RATE
    x = (0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(n))
    x = x.astype(np.float32)
    got, ref = audio.log_mel(x), tf_log_mel(x)
    assert got.shape == ref.shape == (audio.frames_for(n), audio.MELS)
    # float32 FFTs (pocketfft vs TF's) round differently; in log space the difference is
    # relative: 4e-5 measured on noise + chirp, bins whose power is near the 1e-6 floor
    # included.
    np.testing.assert_allclose(got, ref, atol=2e-4)


def test_mel_matrix_equals_tf():
    ref = tf.signal.linear_to_mel_weight_matrix(40, 129, 8000, 20.0, 4000.0).numpy()
    # TF builds it in float32, we in float64: 5.9e-6 measured
    np.testing.assert_allclose(audio.mel_matrix(), ref, atol=2e-5)


def test_log_mel_refuses_bad_waveforms():
    with pytest.raises(ShapeError, match=r"at least 200 samples.*got 199"):
        audio.log_mel(np.zeros(199, np.float32))
    with pytest.raises(ShapeError, match=r"mono waveform.*\(2, 8000\)"):
        audio.log_mel(np.zeros((2, 8000), np.float32))
    x = np.zeros(8000, np.float32)
    x[5] = np.nan
    with pytest.raises(ShapeError, match="NaN"):
        audio.log_mel(x)


def wav_bytes(samples, rate=8000, channels=1, width=2):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples)
    return buf.getvalue()


def test_read_wav_round_trip_and_widths(tmp_path):
    x = (0.5 * np.sin(np.linspace(0, 200, 4000))).astype(np.float32)
    audio.write_wav(tmp_path / "a.wav", x)
    got = audio.read_wav(tmp_path / "a.wav")
    np.testing.assert_allclose(got, x, atol=1 / 32767)  # 16-bit quantisation
    pcm16 = np.round(x * 32767).astype("<i2")
    pcm8 = (np.round(x * 127) + 128).astype(np.uint8).tobytes()
    pcm32 = (pcm16.astype("<i4") << 16).tobytes()
    pcm24 = b"".join((int(v) << 8).to_bytes(3, "little", signed=True) for v in pcm16)
    for width, raw, tol in ((1, pcm8, 1 / 100), (3, pcm24, 1e-4), (4, pcm32, 1e-4)):
        np.testing.assert_allclose(audio.read_wav(wav_bytes(raw, width=width)), x, atol=tol)


def test_read_wav_resamples_another_rate():
    t = np.arange(16000) / 16000.0
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    got = audio.read_wav(wav_bytes(np.round(tone * 32767).astype("<i2").tobytes(), rate=16000))
    assert len(got) == 8000
    spectrum = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spectrum) * 8000 / len(got) - 440) <= 1  # the tone stays at 440 Hz


@pytest.mark.parametrize("data, match", [
    (wav_bytes(np.zeros(1000, "<i2").tobytes(), channels=2), r"2 channels; expected mono"),
    (wav_bytes(b""), r"no samples"),
    (wav_bytes(np.zeros(8000 * 3, "<i2").tobytes()), r"3.00 s of audio; this model takes at "
                                                    r"most 2 s"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 30, r"not a PCM WAV file"),
    (b"%PDF-1.4 not audio at all", r"not a PCM WAV file"),
])
def test_read_wav_refusals(data, match):
    with pytest.raises(ShapeError, match=match):
        audio.read_wav(data, max_seconds=2.0)


def test_read_wav_missing_file(tmp_path):
    with pytest.raises(ShapeError, match="no such file"):
        audio.read_wav(tmp_path / "absent.wav")
