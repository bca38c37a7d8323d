"""kws_lstm: held-out speakers' spoken digits as WAV files."""

import numpy as np

import zoo
from export.cli import main

from . import example


@example("kws_lstm")
def kws(name, out, tmp_path, capsys):
    from zoo import audio
    from zoo.datasets import spoken_digits as sd

    # held-out speakers' own recordings, as WAV files: the digits Keras gets right
    model = zoo.create_model(name, weights="DEFAULT")
    for speaker in sd.TEST_SPEAKERS:
        clips = sd.human_clips(speaker)["digits"]
        windows = np.stack([audio.log_mel(audio.fit_window(x)) for x in clips])
        right = np.flatnonzero(model.predict(windows, verbose=0).argmax(-1) == np.arange(10))
        assert right.size, speaker  # the model reads at least one of each speaker's digits
        for d in right[:2]:
            path = tmp_path / f"{speaker}_{d}.wav"
            audio.write_wav(path, clips[d])
            for backend in ("litert", "onnx"):
                assert main(["predict", str(out), "--input", str(path),
                             "--backend", backend]) == 0
                assert capsys.readouterr().out.split()[0] == sd.DIGITS[d]
