"""lstm_autoencoder*: a stretch of the real series holding its labelled anomaly, as a
CSV: the windows Keras flags are the ones flagged."""

import numpy as np

import zoo
from export.cli import main

from . import example


@example(prefix="lstm_autoencoder")
def anomaly(name, out, tmp_path, capsys):
    import json

    from zoo.datasets import ecg, ucr_anomaly
    from zoo.tasks import get_task

    # 2,000 samples of the real series holding its labelled anomaly (the ECG's last:
    # 6,936-7,287; the UCR file's 3,500-5,499: 4,187-4,198) and the normal beats around
    # it, as a CSV: the windows Keras flags are the ones flagged
    values, _ = (ecg if name == "lstm_autoencoder" else ucr_anomaly).raw()
    start = len(values) - 2000 if name == "lstm_autoencoder" else 3500
    path = tmp_path / "ecg.csv"
    path.write_text("value\n" + "\n".join(repr(float(v))
                                           for v in values[start : start + 2000]) + "\n")
    meta = json.loads((out / "manifest.json").read_text())["meta"]
    starts = get_task("anomaly").series_starts(2000, meta["window"], meta["stride"])
    windows = np.stack([values[start + s : start + s + meta["window"]] for s in starts])
    scores = zoo.create_model(name, weights="DEFAULT").predict(
        windows.astype(np.float32)[..., None], verbose=0)[1]
    flagged = scores > meta["threshold"]
    assert flagged.any() and not flagged.all()
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        lines = capsys.readouterr().out.splitlines()[1:-1]
        assert [int(line.split()[0]) for line in lines] == list(starts)
        assert ["ANOMALY" in line for line in lines] == list(flagged)
