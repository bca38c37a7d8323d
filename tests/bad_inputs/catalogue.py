"""Bad inputs, each with where it goes in, the typed error it must give and a fragment of
the message (what was received or what is expected). tests/test_bad_inputs.py runs every
case; each one is a distinct input (a test fails on a duplicate).

Where:
    cli: ``lstm-zoo ARGV`` in-process: exit 2 and one ``error:`` line holding the fragment
        (argparse's own usage errors included). ``{bundle}`` is a bundle of the tiny
        classifier, ``{good}`` a good (20, 6) sequence for it, ``{tmp}`` an empty folder.
    check_input: ``get_task(TASK).check_input(value, meta)`` with a tiny model's meta.
    parse_input: ``get_task(TASK).parse_inputs(source, meta)``; a source ``FILE.SUFFIX:
        CONTENT`` is a file written with that content (bytes), another source is given as
        is.
    predict: ``Bundle.predict(value)`` of a bundle of MODEL's task and meta (its artifacts
        are never loaded: the inputs are refused first).
    config: ``get_spec(MODEL).config(**value)``: builder overrides.
    manifest: the tiny bundle's manifest.json with ``value`` = (key path, new value), loaded.
    decoding: ``get_task(TASK).decoding_options(meta, *value)`` with a tiny model's meta:
        ``value`` = (beam width, lexicon file), as ``predict --beam/--lexicon`` give them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Case(NamedTuple):
    where: str
    target: str  # the task, model or subcommand
    value: object
    error: str  # a class name in zoo.errors (cli: the exit code's error line)
    match: str  # a regular expression found in the message

    def key(self) -> str:
        return f"{self.where}:{self.target}:{_show(self.value)}"


def _show(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}{value.dtype}:{value.flat[:3].tolist()}"
    return repr(value)


CASES: list[Case] = []


def add(where, target, error, match, *values):
    for value in values:
        CASES.append(Case(where, target, value, error, match))


# --- the command line -----------------------------------------------------------------------

USAGE = "ArgumentParser"  # argparse's own: `lstm-zoo CMD: error: ...`
for argv, match in [
    ([], "required: command"), (["nope"], "invalid choice: 'nope'"),
    (["--nope"], "required: command|unrecognized"), (["list", "a", "b"], "unrecognized"),
    (["export"], "required: name, --out|required"), (["export", "x"], "required: --out"),
    (["export", "x", "--out"], "expected one argument"),
    (["export", "x", "--out", "o", "--prune", "half"], "invalid float value: 'half'"),
    (["export", "x", "--out", "o", "--cluster", "2.5"], "invalid int value: '2.5'"),
    (["export", "x", "--out", "o", "--limit", "ten"], "invalid int value: 'ten'"),
    (["export", "x", "--out", "o", "--schedule", "cubic"], "invalid choice: 'cubic'"),
    (["export", "x", "--out", "o", "--unroll", "always"], "invalid choice: 'always'"),
    (["export", "x", "--out", "o", "--max-drop", "1%"], "invalid float value"),
    (["export", "x", "--out", "o", "--learning-rate", "fast"], "invalid float value"),
    (["export", "x", "--out", "o", "--batch-size", "8.0"], "invalid int value"),
    (["export", "x", "--out", "o", "--finetune-epochs", "x"], "invalid int value"),
    (["export", "x", "--out", "o", "--structured", ""], "invalid float value: ''"),
    (["verify"], "required: bundle"), (["verify", "b", "--limit", "2.5"], "invalid int"),
    (["verify", "b", "--limit"], "expected one argument"),
    (["predict", "b"], "required: --input"),
    (["predict", "b", "--input", "x", "--backend", "tflite"], "invalid choice: 'tflite'"),
    (["predict", "b", "--input", "x", "--backend", "ort"], "invalid choice: 'ort'"),
    (["predict", "b", "--input", "x", "--beam", "wide"], "invalid int value: 'wide'"),
    (["generate"], "required: model"), (["generate", "m", "--length", "1e3"], "invalid int"),
    (["generate", "m", "--temperature", "hot"], "invalid float"),
    (["generate", "m", "--top-k", "-"], "expected one argument|invalid int"),
    (["generate", "m", "--seed", "0x10"], "invalid int value"),
    (["generate", "m", "--backend", "tflite"], "invalid choice"),
    (["train"], "required: name"), (["train", "m", "--epochs", "1.5"], "invalid int"),
    (["train", "m", "--limit", "many"], "invalid int"),
    (["finetune", "m"], "required: --data, --out"), (["finetune", "m", "--data", "d"],
                                                      "required: --out"),
    (["finetune", "m", "--data", "d", "--out", "o", "--patience", "1.5"], "invalid int"),
    (["finetune", "m", "--data", "d", "--out", "o", "--val-fraction", "a"], "invalid float"),
    (["finetune", "m", "--data", "d", "--out", "o", "--seed", "s"], "invalid int"),
    (["info"], "required: name"), (["inspect"], "required: model"),
    (["fetch-data", "--nope"], "unrecognized arguments: --nope"),
]:
    add("cli", USAGE, "usage", match, argv)

for argv, match in [
    (["list", "nothing_like_it"], "no registered model matches 'nothing_like_it'"),
    (["list", "[x"], "no registered model matches"),
    (["info", "nope"], "unknown model 'nope'"), (["info", ""], "unknown model ''"),
    (["info", "../../etc/passwd"], "unknown model"),
    (["export", "nope", "--out", "{tmp}/b"], "unknown model 'nope'"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}"], "already exists"),
    (["export", "bilstm_activity_tiny", "--out", "/proc/x"], "pseudo-filesystem"),
    (["export", "bilstm_activity_tiny", "--out", "/sys/x"], "pseudo-filesystem"),
    (["export", "bilstm_activity_tiny", "--out", "{good}"], "already exists"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--formats", "tfjs"],
     "unknown format"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--formats", ""], "format"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--precision", "fp8"],
     "unknown precision"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--precision", "auto,fp32"],
     "'auto' chooses the precision itself"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--max-drop", "0.1"],
     "max_drop applies to precisions='auto' only"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--precision", "auto",
      "--max-drop", "2"], "max_drop must be in"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--limit", "0"],
     "limit must be a positive number"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--prune", "1.5"], "sparsity"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--prune", "-0.1"], "sparsity"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--cluster", "1"],
     "cluster count must be an integer >= 2; got 1"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--structured", "1"],
     "structured"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--samples", "x.npy"],
     "--samples: for a model file"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--unroll", "never"],
     "--unroll: for a model file"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--weights", "nope"],
     "neither a file nor a known tag"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--weights", "none", "--set",
      "units"], "must look like NAME=VALUE"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--weights", "none", "--set",
      "nope=1"], "nope"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--weights", "none", "--set",
      "dropout=2"], "dropout must be a number in"),
    (["export", "bilstm_activity_tiny", "--out", "{tmp}/b", "--weights", "none",
      "--calibration", "{tmp}/none.npy"], "calibration file .* does not exist"),
    (["export", "{good}", "--out", "{tmp}/b"], "give --samples FILE"),
    (["export", "{good}", "--out", "{tmp}/b", "--weights", "none"], "--weights: for "
                                                                     "registered models"),
    (["verify", "{tmp}"], "is not a bundle: no manifest.json"),
    (["verify", "/nonexistent"], "is not a bundle"), (["verify", "{good}"], "not a bundle"),
    (["verify", "{bundle}", "--limit", "-1"], "limit must be a positive number"),
    (["predict", "{tmp}", "--input", "{good}"], "not a bundle"),
    (["predict", "{bundle}", "--input", "{tmp}/none.npy"], "does not exist"),
    (["predict", "{bundle}", "--input", "{tmp}"], "does not exist"),
    (["predict", "{bundle}", "--input", "hello"], "does not exist"),
    (["predict", "{bundle}", "--input", ""], "does not exist"),
    (["predict", "{bundle}", "--input", "{good}", "--precision", "int8"],
     "no tflite artifacts at precision 'int8'"),
    (["predict", "{bundle}", "--input", "{good}", "--backend", "onnx", "--precision", "x"],
     "no onnx artifacts at precision 'x'"),
    (["predict", "{bundle}", "--input", "{good}", "--beam", "4"], "for CTC recognisers"),
    (["predict", "{bundle}", "--input", "{good}", "--lexicon", "w.txt"],
     "for CTC recognisers"),
    (["predict", "{bundle}", "--input", "{good}", "--out", "{tmp}/p.txt"],
     "--out writes a .npy file"),
    (["generate", "nope"], "unknown model 'nope'"),
    (["generate", "seq2seq_g2p_tiny"], "generate is for language models"),
    (["generate", "{bundle}"], "generate is for language models"),
    (["generate", "seq2seq_g2p_tiny", "--backend", "onnx"], "needs an exported bundle"),
    (["generate", "char_lm_tiny", "--length", "0"], "length"),
    (["generate", "char_lm_tiny", "--length", "-5"], "length"),
    (["generate", "char_lm_tiny", "--temperature", "0"], "temperature"),
    (["generate", "char_lm_tiny", "--temperature", "nan"], "temperature"),
    (["generate", "char_lm_tiny", "--top-k", "-1"], "top"),
    (["generate", "char_lm_tiny", "--out", "{tmp}/x.mid"], "text is written as .txt"),
    (["generate", "char_lm_tiny", "--out", "{tmp}/no/x.txt"], "existing folder"),
    (["train", "nope"], "unknown model 'nope'"),
    (["train", "bilstm_activity_tiny", "--epochs", "0"], "epochs must be a positive"),
    (["train", "bilstm_activity_tiny", "--epochs", "-3"], "epochs must be a positive"),
    (["train", "bilstm_activity_tiny", "--limit", "0"], "limit must be a positive"),
    (["train", "bilstm_activity_tiny", "--limit", "-5"], "limit must be a positive"),
    (["train", "bilstm_activity_tiny", "--strategy", "x"], "strategy"),
    (["finetune", "nope", "--data", "{good}", "--out", "{tmp}/m"], "unknown model"),
    (["finetune", "bilstm_activity_tiny", "--data", "{tmp}/none.npz", "--out", "{tmp}/m"],
     "bilstm_activity_tiny has no pretrained weights"),
    (["finetune", "bilstm_activity", "--data", "{tmp}/none.npz", "--out", "{tmp}/m"],
     "none.npz"),
    (["finetune", "bilstm_activity_tiny", "--data", "{good}", "--out", "{tmp}/m",
      "--epochs", "0"], "epochs"),
    (["finetune", "bilstm_activity_tiny", "--data", "{good}", "--out", "{tmp}/m",
      "--learning-rate", "-1"], "learning_rate"),
    (["finetune", "bilstm_activity_tiny", "--data", "{good}", "--out", "{tmp}/m",
      "--batch-size", "0"], "batch"),
    (["inspect", "{tmp}/none.keras"], "none.keras"), (["inspect", "{good}"], "good.npy"),
]:
    add("cli", "lstm-zoo", "ZooError", match, argv)

# --- one input, per task --------------------------------------------------------------------

SEQUENCE_TASKS = ("classification", "kws", "ctc")  # (time, channels)
SERIES_TASKS = ("forecast", "anomaly")  # one series
TEXT_TASKS = ("text", "lm", "seq2seq", "peptide")  # a str
NAN = np.full((20, 6), np.nan, np.float32)
for task in SEQUENCE_TASKS:
    add("check_input", task, "ShapeError", r"inputs\[0\]: expected shape", None, 5, "hello",
        [], np.zeros((0, 3)), np.zeros((20,)), np.zeros((2, 20, 3)), np.zeros((1, 2, 3, 4)),
        np.zeros((20, 7)), np.zeros(())
        )
    add("check_input", task, "ShapeError", r"inputs\[0\]: .*(real numbers|NaN|numeric)",
        np.zeros((20, 40 if task == "kws" else 3 if task == "ctc" else 6), np.complex64),
        np.full((20, 40 if task == "kws" else 3 if task == "ctc" else 6), "a"))
for task in SERIES_TASKS:
    add("check_input", task, "ShapeError", r"inputs\[0\]: ", None, "hello", [], [1.0, 2.0],
        np.zeros((3, 3)), np.zeros((2, 2, 2)), np.zeros((5000,), np.complex64),
        np.full((5000,), "a"), np.full((5000,), np.nan), np.r_[np.zeros(4999), np.inf],
        np.zeros(1_000_001))
for task in TEXT_TASKS:
    add("check_input", task, "ShapeError", r"inputs\[0\]: expected a", None, 5, 5.0,
        b"zoo", ["zoo"], np.zeros(3), {"text": "zoo"})
add("check_input", "seq2seq", "ShapeError", r"inputs\[0\]: ", "", "a" * 41, "zoo\x00",
    "数字", "z o o")
add("check_input", "peptide", "ShapeError", r"inputs\[0\]: .*(empty|not amino-acid|at most 200)",
    "", " \n", "GIGK1FLHS", "GIGK-FLHS", "KWK*", "数字", "GIGK.", "A" * 201, "a" * 500)
add("check_input", "lm", "ShapeError", r"inputs\[0\]: ", "", np.array([3]), np.array([1.5, 2]),
    np.array([-1, 2]), np.array([0, 10**6]))  # a character it does not know is "unknown"
add("check_input", "nextframe", "ShapeError", r"inputs\[0\]: ", None, 5, "frames",
    np.zeros((9, 64, 64)), np.zeros((10, 64, 64, 2)), np.zeros((10, 32, 32, 1)),
    np.zeros((0, 64, 64, 1)), np.full((10, 64, 64, 1), np.nan),
    np.zeros((10, 64, 64, 1), np.complex64))
add("check_input", "user", "ShapeError", r"inputs\[0\]: the model takes 2 inputs",
    np.zeros((20, 6)), [1, 2])

# files and texts: FILE.SUFFIX:CONTENT
for task, suffixes in [("classification", (".npy", ".csv")), ("nextframe", (".npy",)),
                       ("forecast", (".npy", ".csv")), ("anomaly", (".npy", ".csv")),
                       ("ctc", (".npy", ".json")), ("kws", (".wav", ".npy", ".csv")),
                       ("user", (".npy", ".npz"))]:
    add("parse_input", task, "ZooError", r"\S", "missing" + suffixes[0], "",
        *(f"f{s}:" for s in suffixes), *(f"f{s}:junk\x00\xff" for s in suffixes), "f.xlsx:1")
add("parse_input", "classification", "ShapeError", "f.csv", "f.csv:1,2,3\n4,5,6\n",
    "f.csv:a,b\n", "f.csv:1,,2,3,4,5\n")
add("parse_input", "forecast", "ShapeError", "f.csv", "f.csv:1\n2\n3\n", "f.csv:1\nx\n2\n",
    "f.csv:" + "nan\n" * 40, "f.csv:" + "1e999\n" * 40)
add("parse_input", "kws", "ShapeError", "f.wav", "f.wav:RIFF\x00\x00\x00\x00WAVEfmt ")
add("parse_input", "ctc", "ShapeError", "f.json", "f.json:[[0, 0]]", "f.json:{}",
    'f.json:{"points": "x"}', "f.json:[1, 2, 3]")
add("parse_input", "text", "ShapeError", r"\S", "f.txt:\xff\xfe", "f.npy:1", "")
add("parse_input", "seq2seq", "ShapeError", r"\S", "", "a" * 41, "zoo zoo", "123")
add("parse_input", "lm", "ShapeError", r"\S", "f.txt:\xff\xfe", "f.csv:1")
add("parse_input", "peptide", "ShapeError", r"\S", "missing.fasta", "", "f.fasta:",
    "f.fasta:\xff\xfe>a\nKK\n", "f.fa:>a\n", "f.fa:>a\nKK\n>b\n", "f.fa:KK\n>b\nGG\n",
    "f.fasta:>a\nGIG1K\n", "f.fasta:GIGK\nKW@K\n", "f.faa:>a\n" + "A" * 201 + "\n",
    "f.npy:1", "f.csv:GIGK", "GIGK FLHS 7")

# --- Bundle.predict: the list of inputs -------------------------------------------------------

for model in ("bilstm_activity", "seq2seq_g2p", "lstm_forecaster_co2", "bilstm_text",
              "char_lm", "amp_bilstm"):
    add("predict", model, "ArgumentError", "inputs", "zoo", b"zoo", None, 5, [], (),
        np.zeros(()), {"x": 1}, 3.5)

# --- builder overrides ------------------------------------------------------------------------

for model, bad in [
    ("bilstm_activity", [{"units": 0}, {"units": [64, -1]}, {"units": 1.5},
                         {"num_classes": 1}, {"num_classes": -4}, {"num_classes": "4"},
                         {"dropout": -0.1}, {"dropout": "0.1"}, {"dropout": float("inf")},
                         {"cell": "LSTM"}, {"cell": None}]),
    ("seq2seq_g2p", [{"encoder_units": 0}, {"encoder_units": None},
                     {"encoder_units": 1.0}, {"encoder_units": [64]}]),
    ("lstm_forecaster", [{"season": -1}, {"season": 1.5}, {"units": []}, {"units": "32"},
                         {"dropout": 1}]),
    ("bilstm_text", [{"mask": "yes"}, {"mask": None}, {"mask": 0}]),
    ("amp_bilstm", [{"units": 0}, {"units": []}, {"embedding_dim": 0}, {"mask": "no"},
                    {"dropout": 1.5}]),
    ("convlstm_nextframe", [{"kernel": -3}, {"kernel": "3"}]),
    ("char_lm", [{"units": 0}, {"units": (0,)}, {"units": None}]),
]:
    add("config", model, "ArgumentError", f"{model}: ", *bad)
add("config", "bilstm_activity", "TypeError", "unknown|valid", {"nope": 1}, {"Units": (8,)})

# --- decoding options: predict --beam / --lexicon, per task -----------------------------------

add("decoding", "seq2seq", "ArgumentError", r"beam width must be in 1\.\.64 .*; got",
    (0, None), (-1, None), (65, None), (100000, None))
add("decoding", "seq2seq", "UnsupportedError", "--lexicon is for CTC recognisers",
    (16, "words.txt"))
add("decoding", "ctc", "ArgumentError", r"beam width must be in 1\.\.64 .*; got",
    (0, None), (-1, None), (65, None), (100000, None))
add("decoding", "ctc", "ShapeError", "does not exist", (16, "none/words.txt"))
for task in ("classification", "forecast", "lm"):
    add("decoding", task, "UnsupportedError", "for CTC recognisers and seq2seq", (4, None))

# --- manifests ----------------------------------------------------------------------------------

add("manifest", "bilstm_activity_tiny", "ArtifactError", r"format_version",
    (("format_version",), 2), (("format_version",), -1), (("format_version",), 1.5),
    (("format_version",), [1]), (("format_version",), "v1"))
add("manifest", "bilstm_activity_tiny", "ArtifactError", r"must be|expected|missing",
    (("model",), 5), (("task",), None), (("meta",), "x"), (("graphs",), {}),
    (("artifacts",), {}), (("reference",), []), (("created",), 0),
    (("artifacts", 0), "fp32/classifier.onnx"), (("artifacts", 0, "size"), 1.5),
    (("artifacts", 0, "size"), None), (("artifacts", 0, "sha256"), 5),
    (("artifacts", 0, "format"), 5), (("artifacts", 0, "precision"), None),
    (("artifacts", 0, "all_fused"), "yes"), (("graphs", 0, "name"), 1),
    (("graphs", 0, "inputs"), {}), (("graphs", 0, "inputs", 0), "sequence"),
    (("graphs", 0, "inputs", 0, "shape"), "(1, 20, 6)"),
    (("graphs", 0, "inputs", 0, "shape"), [None, 1.5, 6]),
    (("graphs", 0, "inputs", 0, "dtype"), "str"), (("graphs", 0, "inputs", 0, "dtype"), 1),
    (("reference", "size"), "51680"), (("reference", "config"), []))
add("manifest", "bilstm_activity_tiny", "ArtifactError", r"path|relative|outside|must be",
    (("reference", "file"), "/etc/passwd"), (("reference", "file"), "../b/x.h5"),
    (("reference", "file"), "a/../reference.weights.h5"), (("reference", "file"), "."),
    (("reference", "file"), "C:\\x.h5"), (("reference", "file"), 7),
    (("reference", "file"), "x\x00.h5"))
add("manifest", "bilstm_activity_tiny", "ArtifactError", r"sha256|bytes|missing",
    (("reference", "sha256"), "0" * 64), (("reference", "size"), 1),
    (("reference", "file"), "parity.json"), (("artifacts", 0, "file"), "fp32/none.onnx"))
add("manifest", "bilstm_activity_tiny", "ArtifactError", r"unknown key",
    (("artifacts", 0, "url"), "http://x"), (("graphs", 0, "code"), "import os"),
    (("graphs", 0, "inputs", 0, "min"), 0), (("python",), "exec"))
add("manifest", "bilstm_activity_tiny", "UnknownTaskError", r"unknown task",
    (("task",), "magic"))
