from fe_common import *
print("hann == tf.signal.hann_window(200, periodic=True):",
      np.abs(hann_periodic() - tf.signal.hann_window(200, periodic=True).numpy()).max())
print("mel_matrix_np vs tf.signal.linear_to_mel_weight_matrix max abs diff:",
      np.abs(mel_matrix_np() - MEL_TF).max(), "shape", MEL_TF.shape)
print(f"{'signal':16s} {'frames':>6s} {'np vs stft':>12s} {'np vs frame+rfft':>16s} {'np(own mel) vs stft':>20s} {'rel(lin mel) np vs stft':>24s}")
for name, x in test_signals().items():
    a = logmel_np(x)
    b = logmel_tf(tf.constant(x)).numpy()
    c = logmel_tf_frame(tf.constant(x)).numpy()
    d = logmel_np(x, mel_matrix_np())
    assert a.shape == b.shape == (1 + (len(x) - 200) // 80, 40), (a.shape, b.shape)
    rel = np.abs(np.exp(a) - np.exp(b)).max() / np.exp(b).max()
    print(f"{name:16s} {a.shape[0]:6d} {np.abs(a-b).max():12.3e} {np.abs(a-c).max():16.3e} {np.abs(d-b).max():20.3e} {rel:24.3e}")

# where do the chirp differences come from?
x = test_signals()["chirp_8000"]
a = logmel_np(x); b = logmel_tf(tf.constant(x)).numpy()
i = np.unravel_index(np.abs(a - b).argmax(), a.shape)
print("chirp_8000 worst cell", i, "np log-mel", a[i], "tf log-mel", b[i], "(mel power ~", float(np.exp(b[i])), ")")
for thr in (-10, -5, 0):
    m = b > thr
    print(f"  cells with log-mel > {thr}: {m.mean()*100:.1f}%  max abs diff {np.abs(a-b)[m].max():.3e}")
print("numpy rfft dtype for float32 input:", np.fft.rfft(np.zeros(256, np.float32)).dtype)
