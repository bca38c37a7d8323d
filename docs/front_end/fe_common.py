import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
# single-thread TF everywhere (must happen before the first eager op)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

SR = 8000; FRAME = 200; HOP = 80; NFFT = 256; NBINS = 129; NMEL = 40
FMIN = 20.0; FMAX = 4000.0; EPS = 1e-6

def hann_periodic(n=FRAME):
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)

def _hz_to_mel(f):
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)

def mel_matrix_np():
    """NumPy re-implementation of tf.signal.linear_to_mel_weight_matrix(40,129,8000,20,4000) (HTK)."""
    nyq = SR / 2.0
    lin_hz = np.linspace(0.0, nyq, NBINS)[1:]           # drop DC bin (tf does this)
    lin_mel = _hz_to_mel(lin_hz)[:, None]
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), NMEL + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lo = (lin_mel - lower) / (center - lower)
    hi = (upper - lin_mel) / (upper - center)
    w = np.maximum(0.0, np.minimum(lo, hi))
    return np.pad(w, [[1, 0], [0, 0]]).astype(np.float32)  # (129, 40)

MEL_TF = tf.signal.linear_to_mel_weight_matrix(NMEL, NBINS, SR, FMIN, FMAX).numpy()

def logmel_np(x, mel=MEL_TF):
    x = np.asarray(x, np.float32)
    n = 1 + (len(x) - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    frames = x[idx] * hann_periodic()
    spec = np.fft.rfft(frames, n=NFFT, axis=-1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return np.log(power @ mel + EPS).astype(np.float32)

def logmel_tf(x):
    """x: (..., n) float32 -> (..., frames, 40). tf.signal.stft path."""
    st = tf.signal.stft(x, frame_length=FRAME, frame_step=HOP, fft_length=NFFT,
                        window_fn=lambda n, dtype: tf.signal.hann_window(n, periodic=True, dtype=dtype),
                        pad_end=False)
    power = tf.math.real(st) ** 2 + tf.math.imag(st) ** 2
    mel = tf.tensordot(power, tf.constant(MEL_TF), 1)
    return tf.math.log(mel + EPS)

def logmel_tf_frame(x):
    """Alternative: tf.signal.frame + window + tf.signal.rfft."""
    fr = tf.signal.frame(x, FRAME, HOP, pad_end=False) * tf.signal.hann_window(FRAME, periodic=True)
    spec = tf.signal.rfft(fr, fft_length=[NFFT])
    power = tf.math.real(spec) ** 2 + tf.math.imag(spec) ** 2
    mel = tf.tensordot(power, tf.constant(MEL_TF), 1)
    return tf.math.log(mel + EPS)

def test_signals():
    rng = np.random.default_rng(0)
    out = {}
    for n in (8000, 12345):
        t = np.arange(n) / SR
        out[f"noise_{n}"] = rng.uniform(-1, 1, n).astype(np.float32)
        out[f"chirp_{n}"] = (0.8 * np.sin(2 * np.pi * (50 * t + (3900 - 50) / (2 * t[-1]) * t ** 2))).astype(np.float32)
        sp = rng.normal(0, 0.3, n) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))  # modulated noise, "speech-ish" envelope
        out[f"modnoise_{n}"] = np.clip(sp, -1, 1).astype(np.float32)
    # quiet signal: exercises the log(1e-6) floor
    out["quiet_8000"] = (1e-4 * rng.standard_normal(8000)).astype(np.float32)
    return out

def logmel_tf_abs(x):
    """stft, then |X|^2 via tf.abs (ComplexAbs) -- the only RFFT consumer tf2onnx 1.17 accepts."""
    st = tf.signal.stft(x, frame_length=FRAME, frame_step=HOP, fft_length=NFFT,
                        window_fn=lambda n, dtype: tf.signal.hann_window(n, periodic=True, dtype=dtype),
                        pad_end=False)
    power = tf.square(tf.abs(st))
    mel = tf.tensordot(power, tf.constant(MEL_TF), 1)
    return tf.math.log(mel + EPS)

def dft_mats():
    """Hann-windowed real DFT as two (200,129) matrices (zero padding to 256 is implicit)."""
    n = np.arange(FRAME)[:, None]; k = np.arange(NBINS)[None, :]
    ang = 2 * np.pi * n * k / NFFT
    w = hann_periodic().astype(np.float64)[:, None]
    return (w * np.cos(ang)).astype(np.float32), (-w * np.sin(ang)).astype(np.float32)

_DC, _DS = dft_mats()

def logmel_tf_dftmm(x):
    """No FFT op at all: tf.signal.frame + two matmuls with windowed DFT matrices."""
    fr = tf.signal.frame(x, FRAME, HOP, pad_end=False)
    re = tf.tensordot(fr, tf.constant(_DC), 1)
    im = tf.tensordot(fr, tf.constant(_DS), 1)
    power = re * re + im * im
    mel = tf.tensordot(power, tf.constant(MEL_TF), 1)
    return tf.math.log(mel + EPS)
