"""Build the tf_keras models used in step 2/3. Deterministic weights (seed 0)."""
from fe_common import *
import tf_keras as keras

N_FIXED = 8000
T_FIXED = 1 + (N_FIXED - FRAME) // HOP  # 98

FE_FUNCS = {"stft": logmel_tf, "frame_rfft": logmel_tf_frame, "abs": logmel_tf_abs, "dftmm": logmel_tf_dftmm}

def build_backend(t=T_FIXED):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(t, NMEL), batch_size=1, name="feats")
    h = keras.layers.LSTM(64, name="lstm")(inp)
    out = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    return keras.Model(inp, out, name="backend")

def build_frontend(n=N_FIXED, fe="stft"):
    inp = keras.Input(shape=(n,), batch_size=1, name="waveform")
    f = keras.layers.Lambda(FE_FUNCS[fe], name="logmel")(inp)
    return keras.Model(inp, f, name="frontend")

def build_full(n=N_FIXED, fe="stft", with_feats=True, reshape=False):
    """waveform -> log-mel (tf.signal, Lambda) -> LSTM(64) -> Dense(10). Weights identical to build_backend()."""
    backend = build_backend(None if n is None else 1 + (n - FRAME) // HOP)
    inp = keras.Input(shape=(n,), batch_size=1, name="waveform")
    f = keras.layers.Lambda(FE_FUNCS[fe], name="logmel")(inp)
    if reshape:
        f = keras.layers.Lambda(lambda t: tf.reshape(t, [1, -1, NMEL]), name="fix_shape")(f)
    p = backend(f)
    outs = [p, f] if with_feats else p
    return keras.Model(inp, outs, name="full")
