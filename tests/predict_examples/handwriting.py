"""handwriting_ctc: a pen-stroke file read as its word."""

from export.cli import main

from . import example


@example("handwriting_ctc")
def handwriting(name, out, tmp_path, capsys):
    import json

    from zoo.datasets import hershey_strokes as hs

    # a held-out word in a held-out face, as absolute pen positions; one the shipped
    # model reads right (it reads "adult" as "adutt")
    strokes = [s.tolist() for s in hs.glyph_strokes("acetone", "timesi")]
    path = tmp_path / "acetone.json"
    path.write_text(json.dumps({"strokes": strokes, "body_height": hs.BODY}))
    for backend in ("litert", "onnx"):
        assert main(["predict", str(out), "--input", str(path), "--backend", backend]) == 0
        assert capsys.readouterr().out.strip() == "acetone"
