"""bilstm_text: held-out reviews classified, as a .txt file and as the text itself."""

import numpy as np

import zoo
from export.cli import main
from zoo import datasets

from . import example


@example("bilstm_text")
def text(name, out, tmp_path, capsys):
    from zoo.tasks import get_task

    # held-out reviews the Keras model gets right, one of each class, given as a .txt
    # file and as the text itself
    test = datasets.load("reviews", "test")
    task = get_task("text")
    model = zoo.create_model(name, weights="DEFAULT")
    meta = zoo.get_spec(name).meta
    for c, label in enumerate(meta["classes"]):
        i = next(i for i in range(len(test)) if test.y[i] == c and int(np.argmax(
            model.predict(task.encode(test.texts[i], meta)[None], verbose=0))) == c)
        path = tmp_path / f"review{i}.txt"
        path.write_text(test.texts[i], encoding="utf-8")
        for source in (str(path), test.texts[i]):
            for backend in ("litert", "onnx"):
                assert main(["predict", str(out), "--input", source,
                             "--backend", backend]) == 0
                assert capsys.readouterr().out.split()[0] == label
