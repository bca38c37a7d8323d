"""amp_bilstm: held-out peptides in a FASTA file, one probability each."""

import numpy as np

import zoo
from export.cli import main
from zoo import datasets

from . import example


@example("amp_bilstm")
def peptides(name, out, tmp_path, capsys):
    from zoo.tasks import get_task

    # held-out peptides (clusters never seen in training) as one FASTA file: one
    # probability each, Keras' to the 3 printed decimals, on both runtimes
    test = datasets.load("amp", "test")
    task, meta = get_task("peptide"), zoo.get_spec(name).meta
    model = zoo.create_model(name, weights="DEFAULT")
    picked = [*range(4), *(i for i in range(len(test)) if len(test.texts[i]) >= 100)][:6]
    path = tmp_path / "held_out.fasta"
    path.write_text("".join(f">test {i}\n{test.texts[i]}\n" for i in picked))
    expected = [float(model.predict(task.encode(test.texts[i], meta)[None],
                                    verbose=0)[0, 1]) for i in picked]
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[1] for line in lines] == ["amp"] * len(picked)
        got = [float(line.split()[2]) for line in lines]
        np.testing.assert_allclose(got, expected, atol=6e-4)  # printed to 3 decimals
