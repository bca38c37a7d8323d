"""seq2seq_g2p: a word's phonemes."""

from export.cli import main

from . import example


@example("seq2seq_g2p")
def g2p(name, out, tmp_path, capsys):
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", "computer", "--backend", backend]) == 0
        assert capsys.readouterr().out.strip() == "K AH M P Y UW T ER"
