"""The ``lstm-zoo`` command line: one function per subcommand, each adding its parser and
arguments; :func:`build_parser` takes the handler of each (``export.cli``'s ``cmd_*``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

# Fine-tuning settings on the command line; their defaults are zoo.finetune.DEFAULTS.
FINETUNE_SETTINGS = {
    "head_epochs": (int, "most epochs with the backbone frozen (default 30)"),
    "epochs": (int, "most epochs with every layer trainable (default 100)"),
    "learning_rate": (float, "of the head phase (default 0.002)"),
    "unfreeze_factor": (float, "unfrozen phase learning rate = this x the head's (default 0.1)"),
    "patience": (int, "epochs without a lower held-out loss before a phase stops (default 15)"),
    "val_fraction": (float, "share of each class held out for early stopping (default 0.2)"),
    "batch_size": (int, "training batch size (default 8)"),
    "seed": (int, "seed of the split, the augmentation and new weights (default 0)"),
}


def build_parser(handlers: Mapping[str, Callable], description: str) -> argparse.ArgumentParser:
    """The parser of every subcommand; ``handlers`` maps each name (``"export"``) to its
    function, set as the parsed arguments' ``fn``."""
    from zoo import __version__

    p = argparse.ArgumentParser(prog="lstm-zoo", description=description)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _fetch_data(sub, handlers["fetch-data"])
    _list(sub, handlers["list"])
    _info(sub, handlers["info"])
    _train(sub, handlers["train"])
    _finetune(sub, handlers["finetune"])
    _export(sub, handlers["export"])
    _inspect(sub, handlers["inspect"])
    _verify(sub, handlers["verify"])
    _predict(sub, handlers["predict"])
    _generate(sub, handlers["generate"])
    return p


def _fetch_data(sub, fn) -> None:
    from zoo.datasets import fetches

    s = sub.add_parser("fetch-data", help="fetch, once, the data no installed package holds: "
                                          + "; ".join(f.help for f in fetches()))
    for fetch in fetches():
        if fetch.option:
            s.add_argument(fetch.option, default=None, help=fetch.option_help)
    s.set_defaults(fn=fn)


def _list(sub, fn) -> None:
    s = sub.add_parser("list", help="registered models")
    s.add_argument("pattern", nargs="?", default="*",
                   help="a glob, e.g. 'bilstm*', or a part of a name, e.g. g2p")
    s.set_defaults(fn=fn)


def _info(sub, fn) -> None:
    s = sub.add_parser("info", help="a model's card: spec, data, measured metrics, exports")
    s.add_argument("name")
    s.set_defaults(fn=fn)


def _train(sub, fn) -> None:
    s = sub.add_parser("train", help="reproduce a model's pretrained weights with its recipe")
    s.add_argument("name")
    s.add_argument("--out", default="lstm-zoo-weights",
                   help="output directory (maintainers: zoo/pretrained refreshes the shipped "
                        "weights)")
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--limit", type=int, default=None, help="at most N training samples")
    s.add_argument("--strategy", default="default",
                   help="tf.distribute strategy: default (reproduces the shipped weights), "
                        "mirrored, or multiworker (every worker runs this command with its "
                        "own TF_CONFIG)")
    s.set_defaults(fn=fn)


def _finetune(sub, fn) -> None:
    s = sub.add_parser("finetune", help="fine-tune a pretrained model on your own labelled "
                                        "data; writes a model directory")
    s.add_argument("name", help="a pretrained classifier, CTC recogniser or seq2seq model, "
                                "or a fine-tuned model directory")
    s.add_argument("--data", required=True,
                   help="classifiers: .npz (x: (N, T, C), y: (N,) labels[, channels]) or "
                        "long-form .csv (id, label, feature columns); keyword spotters: also a "
                        "folder with one subfolder of .wav files per label; text classifiers: "
                        ".tsv (text, label); CTC recognisers: .jsonl ({text, points} per "
                        "line) or .npz (points, lengths, texts); seq2seq models: .tsv "
                        "(source, target symbols separated by spaces)")
    s.add_argument("--out", required=True, help="model directory to create (must not exist)")
    s.add_argument("--test", default=None, help="labelled file to report the metric on "
                                                 "(never trained on)")
    s.add_argument("--alphabet", default=None,
                   help="CTC recognisers: the output symbols, e.g. 0123456789 (default: the "
                        "parent's, plus new characters of the transcripts)")
    s.add_argument("--weights", default="DEFAULT",
                   help="parent weights: DEFAULT, a tag, a .weights.h5 path or URL")
    s.add_argument("--from-scratch", action="store_true",
                   help="same architecture, data and stopping rule, random initial weights "
                        "(the baseline fine-tuning should beat)")
    s.add_argument("--strategy", default="default",
                   help="tf.distribute strategy: default, mirrored, or multiworker (every "
                        "worker runs this command with its own TF_CONFIG)")
    for key, (kind, help_) in FINETUNE_SETTINGS.items():
        s.add_argument("--" + key.replace("_", "-"), type=kind, default=None, help=help_)
    s.set_defaults(fn=fn)


def _export(sub, fn) -> None:
    s = sub.add_parser("export", help="export a registered model, or your own .keras / .h5 "
                                      "model, to a verified LiteRT/ONNX bundle")
    s.add_argument("name", help="a registered name, or the path of your model (.keras from "
                                "tf_keras or Keras 3, .h5)")
    s.add_argument("--samples", default=None, metavar="FILE",
                   help="your model: .npy (one input) or .npz (one array per input name), "
                        "at least 16 samples: parity and calibration data")
    s.add_argument("--labels", default=None, metavar="FILE",
                   help="your model: .npy of the samples' labels, for --metric")
    s.add_argument("--metric", default=None,
                   help="your model: accuracy, top5, mse, mae, f1 or auc, measured per "
                        "artifact (needs --labels; without it, agreement with the model's "
                        "own fp32 outputs)")
    s.add_argument("--model-name", default=None,
                   help="your model: its name in the bundle (default: the file's stem)")
    s.add_argument("--out", required=True, help="bundle directory to create (must not exist)")
    s.add_argument("--formats", default=None, help="comma-separated (default: all supported)")
    s.add_argument("--precision", default=None,
                   help="comma-separated subset of fp32,dynamic,float16,int8,int16x8 "
                        "(default: fp32,dynamic), or 'auto': per format the smallest artifact "
                        "within --max-drop")
    s.add_argument("--max-drop", type=float, default=None,
                   help="metric budget of --precision auto, in metric units (default 0.005)")
    s.add_argument("--calibration", default=None, metavar="FILE",
                   help="int8/int16x8 calibration samples: .npy (N, time, channels) or a .txt "
                        "of words (default: the model's calibration split)")
    s.add_argument("--prune", type=float, default=None, metavar="SPARSITY",
                   help="magnitude-prune to this sparsity in [0, 1), fine-tuning on the "
                        "model's training data")
    s.add_argument("--schedule", default="polynomial", choices=("polynomial", "constant"),
                   help="pruning schedule (default polynomial)")
    s.add_argument("--structured", type=float, default=None, metavar="FRACTION",
                   help="remove this fraction of every LSTM/GRU layer's hidden units (0, 1) "
                        "and fine-tune the smaller model (runs faster; before --prune)")
    s.add_argument("--cluster", type=int, default=None, metavar="N",
                   help="cluster each kernel into N weight values (>= 2)")
    s.add_argument("--qat", action="store_true",
                   help="quantization-aware fine-tuning of the weights for the int8 "
                        "artifacts (needs int8 or auto in --precision; after --prune)")
    s.add_argument("--finetune-epochs", type=int, default=None,
                   help="fine-tuning epochs for --structured/--prune/--cluster/--qat (default: "
                        "the recipe's; your model: 3)")
    s.add_argument("--train", default=None, metavar="FILE",
                   help="your model: .npz of training data (x and y, or one array per input "
                        "and output name) for --structured/--prune/--cluster/--qat")
    s.add_argument("--loss", default=None,
                   help="your model: the Keras loss to fine-tune with, by name (default: the "
                        "one it was compiled with)")
    s.add_argument("--learning-rate", type=float, default=None,
                   help="your model: fine-tuning learning rate (default 1e-4)")
    s.add_argument("--batch-size", type=int, default=None,
                   help="your model: fine-tuning batch size (default 32)")
    s.add_argument("--unroll", default=None, choices=("auto", "never"),
                   help="your model: 'auto' (default) also converts recurrent layers over a "
                        "fixed time axis (<= 64 steps) unrolled and keeps the TFLite artifact "
                        "that runs faster; 'never': fused ops only")
    s.add_argument("--weights", default="DEFAULT",
                   help="DEFAULT, a weights tag, a .weights.h5 path or URL, or 'none'")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="builder override")
    s.add_argument("--limit", type=int, default=None, help="verify on the first N test samples")
    s.set_defaults(fn=fn)


def _inspect(sub, fn) -> None:
    s = sub.add_parser("inspect", help="what each layer of your model becomes in TFLite and "
                                       "ONNX, before converting")
    s.add_argument("model", help="a .keras (tf_keras or Keras 3) or .h5 model file")
    s.set_defaults(fn=fn)


def _verify(sub, fn) -> None:
    s = sub.add_parser("verify", help="re-run a bundle's parity checks from disk")
    s.add_argument("bundle")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--arch", default=None, choices=("aarch64",),
                   help="also run every artifact on this CPU's kernels, emulated by qemu-user "
                        "in a Debian root built once (root needed then) and cached: the "
                        "numbers a device computes, not its timing")
    s.set_defaults(fn=fn)


def _predict(sub, fn) -> None:
    s = sub.add_parser("predict", help="run a bundle on a .npy/.csv sequence, a stroke file "
                                       "or a word")
    s.add_argument("bundle")
    s.add_argument("--input", required=True,
                   help="a .npy/.csv sequence; for handwriting a .npy/.json stroke file; a "
                        "word for G2P")
    s.add_argument("--backend", default="litert", choices=("litert", "onnx", "keras"))
    s.add_argument("--precision", default=None,
                   help="default: fp32, or the one precision a --precision auto bundle "
                        "kept for the backend's format")
    s.add_argument("--beam", type=int, default=None, metavar="WIDTH",
                   help="CTC models: prefix beam search of this width; G2P (seq2seq): beam "
                        "search of this width, at most 64 (default: greedy)")
    s.add_argument("--lexicon", default=None, metavar="FILE",
                   help="CTC models: only words of this file (one per line); implies --beam "
                        "16 unless given")
    s.add_argument("--out", default=None, metavar="FILE.npy",
                   help="also write the prediction array (predicted frames, a forecast) to "
                        "this .npy file")
    s.set_defaults(fn=fn)


def _generate(sub, fn) -> None:
    s = sub.add_parser("generate", help="sample text from a character language model")
    s.add_argument("model", help="a bundle directory, or a registered name (runs on Keras "
                                 "with its shipped weights)")
    s.add_argument("--length", type=int, default=300, help="characters to generate")
    s.add_argument("--prompt", default="", help="text to continue")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="> 0; below 1 the likely characters get likelier")
    s.add_argument("--top-k", type=int, default=0, help="sample among the K likeliest "
                                                        "characters (0: all)")
    s.add_argument("--seed", type=int, default=0, help="the same seed gives the same text "
                                                       "on every fp32 backend")
    s.add_argument("--backend", default=None, choices=("litert", "onnx", "keras"),
                   help="for a bundle (default litert)")
    s.add_argument("--precision", default="fp32")
    s.add_argument("--out", default=None, metavar="FILE",
                   help="also write the prompt and sample: .txt, or for a music model "
                        ".mid / .midi (MIDI) or .musicxml / .xml (MusicXML)")
    s.set_defaults(fn=fn)
