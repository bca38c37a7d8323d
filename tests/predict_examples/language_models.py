"""The language models, char_lm and music_lstm: ``generate`` with a seed gives Keras'
text (music) on both runtimes."""

import zoo
from export.cli import main

from . import example


@example("char_lm")
def char_lm(name, out, tmp_path, capsys):
    from zoo.generate import generate
    from zoo.graphs import keras_graphs

    # the same seed gives Keras' text on both runtimes
    spec = zoo.get_spec(name)
    expected = generate(keras_graphs(spec, zoo.create_model(name, weights="DEFAULT")),
                        spec.meta, length=300, prompt="HAMLET.\n", temperature=0.8,
                        top_k=20, seed=3)
    for backend in ("litert", "onnx"):
        assert main(["generate", str(out), "--backend", backend, "--length", "300",
                     "--prompt", "HAMLET.\n", "--temperature", "0.8", "--top-k", "20",
                     "--seed", "3"]) == 0
        assert capsys.readouterr().out == expected + "\n"
        assert main(["predict", str(out), "--input", "To be, or not to be",
                     "--backend", backend]) == 0
        assert "bits per character" in capsys.readouterr().out


@example("music_lstm")
def music_lstm(name, out, tmp_path, capsys):
    from zoo.datasets import chorales
    from zoo.generate import generate
    from zoo.graphs import keras_graphs

    # a held-out chorale's first bar as the prompt: the same seed gives Keras' music on
    # both runtimes, and the same MIDI file
    spec = zoo.get_spec(name)
    prompt = chorales.chorales("test")[1][:80]
    expected = generate(keras_graphs(spec, zoo.create_model(name, weights="DEFAULT")),
                        spec.meta, length=400, prompt=prompt, temperature=0.9, seed=5)
    for backend in ("litert", "onnx"):
        mid = tmp_path / f"{backend}.mid"
        assert main(["generate", str(out), "--backend", backend, "--length", "400",
                     "--prompt", prompt, "--temperature", "0.9", "--seed", "5",
                     "--out", str(mid)]) == 0
        printed = capsys.readouterr().out
        assert printed.startswith(expected + "\n") and f"wrote {mid}" in printed
    assert (tmp_path / "litert.mid").read_bytes() == (tmp_path / "onnx.mid").read_bytes()
    _, frames, skipped = chorales.decode(prompt + expected)
    assert frames >= 90 and skipped <= 2  # 96 lines of 4 voices; a trained model keeps
    # to the format
