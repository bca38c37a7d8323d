"""CTC decoders on the exported recognisers: ``python -m benchmarks.ctc_decoding``.

Exports each CTC model (fp32 and dynamic), then decodes the whole test split from the
per-frame probabilities of every backend three ways: greedy best path, prefix beam search
(width 16), and beam search limited to a lexicon (every CMUdict word of 2-8 letters, the
test words among them: a closed-vocabulary setting, which the table says). Reports CER,
word accuracy, decoding time per word (host-side, Python) and whether the fp32 backends
produced the same transcripts as Keras.

Writes benchmarks/results/ctc_decoding.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import RESULTS, save, stamp

MODELS = ("handwriting_ctc",)
BEAM = 16


def lexicon_words() -> list[str]:
    """Every CMUdict word of 2-8 letters a-z (training and test words)."""
    from zoo.datasets import hershey_strokes as hs

    return sorted({*hs._words("train"), *hs._words("test")})


def decoders() -> dict[str, dict]:
    return {"greedy": {}, f"beam {BEAM}": {"beam_width": BEAM},
            f"beam {BEAM} + lexicon": {"beam_width": BEAM, "lexicon": lexicon_words()}}


def run_model(name: str, limit: int | None, weights="DEFAULT") -> dict:
    from export import export_model
    from export.verification.runtime import load_bundle
    from zoo import datasets
    from zoo.registry import get_spec
    from zoo.tasks import get_task

    spec = get_spec(name)
    task = get_task(spec.task)
    test = datasets.load(spec.data.dataset, spec.data.test)
    if limit:
        test = type(test)(test.x[:limit], test.texts[:limit], test.faces[:limit])
    inputs = task.inputs(test)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        export_model(name, out, weights=weights, limit=limit)
        bundle = load_bundle(out)
        cells = [("keras", "fp32"), ("litert", "fp32"), ("onnx", "fp32"),
                 ("litert", "dynamic"), ("onnx", "dynamic")]
        for decoder, options in decoders().items():
            meta = {**bundle.meta, **options}
            reference = None
            for backend, precision in cells:
                graphs = bundle.runners(backend, precision)
                start = time.perf_counter()
                predictions = task.predict(graphs, inputs, meta)
                seconds = time.perf_counter() - start
                if backend == "keras":
                    reference = predictions
                rows.append({
                    "decoder": decoder, "backend": backend, "precision": precision,
                    **task.score(predictions, test, meta),
                    "ms_per_word": 1000 * seconds / len(inputs),
                    "disagreements_with_keras": task.compare(reference, predictions)[
                        "disagreements"],
                })
    return {"model": name, "test_words": len(inputs), "lexicon_words": len(lexicon_words()),
            "rows": rows}


def markdown(results: dict) -> str:
    lines = [f"Measured {results['date']} on {results['machine']}. Decoding runs on the host "
             "(zoo.ctc, Python) from each backend's per-frame probabilities; ms/word includes "
             "the graph call."]
    for model in results["models"]:
        lines += ["", f"### {model['model']}", "",
                  f"{model['test_words']} test words (held-out faces and words); lexicon: "
                  f"{model['lexicon_words']:,} CMUdict words of 2-8 letters, test words "
                  "included (closed vocabulary).", "",
                  "| decoder | backend | precision | CER | word accuracy | ms/word | "
                  "transcripts unlike Keras |", "|---|---|---|---|---|---|---|"]
        for r in model["rows"]:
            lines.append(f"| {r['decoder']} | {r['backend']} | {r['precision']} | "
                         f"{100 * r['cer']:.2f} % | {r['word_accuracy']:.3f} | "
                         f"{r['ms_per_word']:.1f} | {r['disagreements_with_keras']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ctc_decoding", description=__doc__)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--limit", type=int, default=None, help="test words (default: all)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = {**stamp("benchmarks.ctc_decoding", argv),
               "models": [run_model(m, args.limit) for m in args.models.split(",")]}
    save(results, markdown(results), args.out, "ctc_decoding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
