"""lstm_forecaster*: the last window of the real series, forecast as Keras does."""

import numpy as np

import zoo
from export.cli import main

from . import example


@example(prefix="lstm_forecaster")
def forecaster(name, out, tmp_path, capsys):
    from zoo.datasets import series

    # the last window of the real series (its CSV, with a header), forecast as Keras does
    meta = zoo.get_spec(name).meta
    values = series.raw(meta["series"])[-meta["window"]:]
    path = tmp_path / "series.csv"
    path.write_text("value\n" + "\n".join(repr(float(v)) for v in values) + "\n")
    expected = zoo.create_model(name, weights="DEFAULT").predict(
        values.astype(np.float32)[None, :, None], verbose=0)[0]
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        got = np.array([float(v) for v in capsys.readouterr().out.split()])
        np.testing.assert_allclose(got, expected, rtol=1e-5)  # printed to 6 digits
