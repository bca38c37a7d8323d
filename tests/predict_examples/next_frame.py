"""convlstm_nextframe: a held-out clip's frames as .npy, the predicted frames Keras'."""

import numpy as np

import zoo
from export.cli import main
from zoo import datasets

from . import example


@example("convlstm_nextframe")
def next_frame(name, out, tmp_path, capsys):
    # a held-out clip's 20 frames (the last 10 are read), as uint8 like a camera's
    clip = datasets.load("moving_mnist", "test").frames([0])[0]
    frames = np.rint(clip[..., 0] * 255).astype(np.uint8)
    path = tmp_path / "clip.npy"
    np.save(path, frames)
    expected = zoo.create_model(name, weights="DEFAULT").predict(
        (frames[-10:] / np.float32(255))[None, ..., None], verbose=0)[0]
    for backend in ("litert", "onnx"):
        saved = tmp_path / f"{backend}.npy"
        assert main(["predict", str(out), "--input", str(path), "--backend", backend,
                     "--out", str(saved)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("10 predicted frames of 64x64 pixels")
        np.testing.assert_allclose(np.load(saved), expected, atol=1e-5)
