"""Greedy against beam search on the exported G2P model: ``python -m benchmarks.g2p_decoding``.

Exports ``seq2seq_g2p`` (fp32, its shipped weights) and transcribes the held-out CMUdict
words with each decoder: greedy, then beam search of each ``--widths`` width, ranked by the
summed log-probability and, for each ``--length-penalties`` alpha, by
``log p / (len + 1) ** alpha``. Keras decodes every word; each other ``--backends`` backend
decodes them too and is compared with Keras word by word (fp32: identical transcriptions
expected). Reports PER, word accuracy and decoding time per word (host-side beam search,
one batch-1 step call per hypothesis). ``lstm-zoo predict --beam W`` ranks with length
penalty 1 (:data:`zoo.tasks.seq2seq.LENGTH_PENALTY`), chosen on these figures.

Writes benchmarks/results/g2p_decoding.{json,md}; ``lstm-zoo info seq2seq_g2p`` shows the
Keras rows (:mod:`export.cards`, through export/card_figures.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import RESULTS, save, stamp, write_card_figures

MODEL = "seq2seq_g2p"


def decoders(widths, penalties) -> dict[str, dict]:
    """Decoder name -> the meta options :meth:`zoo.tasks.Seq2Seq.predict` reads."""
    out = {"greedy": {}}
    for width in widths:  # ranked by the summed log-probability
        out[f"beam {width}"] = {"beam_width": width, "length_penalty": 0.0}
        for alpha in penalties:
            out[f"beam {width}, length penalty {alpha:g}"] = {"beam_width": width,
                                                              "length_penalty": alpha}
    return out


def run_model(name: str = MODEL, *, limit: int | None = None, widths=(4, 8),
              penalties=(1.0,), backends=("onnx",), weights="DEFAULT") -> dict:
    """Exports ``name`` (fp32) and decodes its test split (the first ``limit`` words) with
    :func:`decode`."""
    from export import export_model
    from zoo import datasets
    from zoo.registry import get_spec

    spec = get_spec(name)
    test = datasets.load(spec.data.dataset, spec.data.test)
    if limit:
        test = type(test)(test.words[:limit], test.targets[:limit], test.references[:limit])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        export_model(name, out, weights=weights, precisions="fp32", limit=limit or 200)
        return decode(out, test, widths=widths, penalties=penalties, backends=backends)


def decode(bundle_dir, test, *, widths, penalties, backends) -> dict:
    """Each decoder's rows on a bundle's fp32 graphs: Keras, then each of ``backends``
    compared with it word by word."""
    from export.verification.runtime import load_bundle

    bundle = load_bundle(bundle_dir)
    task = bundle.task
    inputs = task.inputs(test)
    graphs = {b: bundle.runners(b, "fp32") for b in ("keras", *backends)}
    rows = []
    for decoder, options in decoders(widths, penalties).items():
        meta = {**bundle.meta, **options}
        reference = None
        for backend, runners in graphs.items():
            start = time.perf_counter()
            predictions = task.predict(runners, inputs, meta)
            seconds = time.perf_counter() - start
            reference = predictions if reference is None else reference
            rows.append({"decoder": decoder, "backend": backend, "precision": "fp32",
                         **options, **task.score(predictions, test, meta),
                         "ms_per_word": 1000 * seconds / len(inputs),
                         "disagreements_with_keras": task.compare(reference, predictions)[
                             "disagreements"]})
            print(rows[-1], file=sys.stderr, flush=True)
    return {"model": bundle.model_name, "test_words": len(inputs), "rows": rows}


def markdown(results: dict) -> str:
    lines = [f"Measured {results['date']} on {results['machine']}: `{results['command']}`. "
             "Decoding runs on the host (zoo.decoding, Python) over each backend's fp32 "
             "encoder and decoder_step graphs; ms/word includes the graph calls."]
    for model in results["models"]:
        lines += ["", f"### {model['model']}", "",
                  f"{model['test_words']:,} held-out CMUdict words.", "",
                  "| decoder | backend | PER | word accuracy | ms/word | "
                  "transcriptions unlike Keras |", "|---|---|---|---|---|---|"]
        for r in model["rows"]:
            lines.append(f"| {r['decoder']} | {r['backend']} | {100 * r['per']:.2f} % | "
                         f"{100 * r['word_accuracy']:.2f} % | {r['ms_per_word']:.1f} | "
                         f"{r['disagreements_with_keras']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.g2p_decoding", description=__doc__)
    p.add_argument("--limit", type=int, default=None, help="test words (default: all)")
    p.add_argument("--widths", default="4,8", help="beam widths (comma-separated)")
    p.add_argument("--length-penalties", default="1",
                   help="alphas ranked besides the plain log-probability (comma-separated; "
                        "empty: none)")
    p.add_argument("--backends", default="onnx",
                   help="fp32 backends compared with Keras (comma-separated: litert, onnx; "
                        "empty: Keras only)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    split = lambda text, kind: tuple(kind(v) for v in text.split(",") if v)  # noqa: E731
    results = {**stamp("benchmarks.g2p_decoding", argv), "models": [run_model(
        limit=args.limit, widths=split(args.widths, int),
        penalties=split(args.length_penalties, float), backends=split(args.backends, str))]}
    save(results, markdown(results), args.out, "g2p_decoding")
    write_card(args.out)
    return 0


def write_card(out: Path, name: str = MODEL) -> None:
    """The card figures (``lstm-zoo info``; export/card_figures.json for the project's own
    results) and ``name``'s card in ``out/cards``, with the decoding table."""
    from export.cards import card_markdown
    from zoo.weights import atomic_write_bytes

    figures = write_card_figures(out)
    (out / "cards").mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "cards" / f"{name}.md", card_markdown(name, figures).encode())


if __name__ == "__main__":
    sys.exit(main())
