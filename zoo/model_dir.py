"""Fine-tuned model directories: their spec, their data splits, found by name.

A directory written by :func:`zoo.finetune.finetune` holds ``finetuned.json`` (the base
model, config, meta and the recorded data files) beside its weights. Reading one needs no
training code, so this module sits below :mod:`zoo.finetune`; on import (``import zoo``
imports it) it registers a spec resolver with :mod:`zoo.registry` and a dataset prefix
with :mod:`zoo.datasets`, so ``get_spec(directory)`` and ``datasets.load("finetuned:" +
directory, split)`` work without either importing upward.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from zoo.datasets import register_dataset_prefix
from zoo.errors import DataError
from zoo.registry import DataSpec, ModelSpec, get_spec, register_spec_resolver
from zoo.tasks.seq2seq import MAX_SOURCE
from zoo.userdata import (
    LabelledSequences,
    LabelledTexts,
    TranscribedSequences,
    TranscribedWords,
    data_sha256,
    load_pairs,
    load_sequences,
    load_texts,
    load_transcribed,
)

TAG = "finetuned"
METADATA = f"{TAG}.json"
DATASET_PREFIX = "finetuned:"


def is_model_dir(name: str | os.PathLike) -> bool:
    """Whether ``name`` is a directory holding a fine-tuned model's ``finetuned.json``."""
    return (Path(name) / METADATA).is_file()


def derived_spec(spec: ModelSpec, config: dict, meta: dict, path: Path | None = None,
                 metadata: dict | None = None) -> ModelSpec:
    """The spec of a model fine-tuned from ``spec`` (or from its base): with ``path`` and
    its ``metadata``, the model directory's, whose data is the directory's recorded split;
    without, the spec a fine-tuning run trains under."""
    base = get_spec(spec.base) if spec.base else spec
    name = str(path) if path is not None else f"{base.name} (fine-tuning)"
    data = base.data
    if path is not None:
        evaluation = metadata["data"]["evaluation"]
        data = DataSpec(dataset=DATASET_PREFIX + str(path), train="train", test=evaluation,
                        calibration="train", extra=base.data.extra,
                        license="the user's data (see the model directory's finetuned.json)")
    source = metadata["data"]["train"]["path"] if metadata else "the user's data"
    return replace(
        base,
        name=name,
        base=base.name,
        description=f"{base.name} fine-tuned on {source} (" + (
            f"alphabet {meta['alphabet']!r})" if base.task == "ctc"
            else f"{len(meta['target_vocab']) - 3} target symbols)" if base.task == "seq2seq"
            else f"{len(meta['classes'])} classes)"),
        defaults=dict(config),
        meta={**dict(base.meta), **meta},
        weights=(TAG,) if path is not None else (),
        weights_dir=str(path) if path is not None else None,
        data=data,
        recipe=None,
        tiny=False,
    )


def model_dir_spec(path: str | os.PathLike) -> ModelSpec:
    """The spec of a fine-tuned model directory (built on its base model's spec)."""
    path = Path(path).resolve()
    try:
        metadata = json.loads((path / METADATA).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is not a readable model directory ({e})") from None
    base = get_spec(metadata["model"])
    config = base.config(**metadata["config"])
    return derived_spec(base, config, metadata["meta"], path, metadata)


def load_split(path: str, split: str
               ) -> LabelledSequences | TranscribedSequences | LabelledTexts | TranscribedWords:
    """Split ``"train"``, ``"val"`` or ``"test"`` of a model directory's data, read from the
    recorded files (their sha256 must still match)."""
    directory = Path(path)
    metadata = json.loads((directory / METADATA).read_text())
    record = metadata["data"]
    if split == "test":
        source = record["test"]
        if source is None:
            raise DataError(f"{directory}: fine-tuned without a test file; splits: train, val")
    elif split in ("train", "val"):
        source = record["train"]
    else:
        raise DataError(f"{directory}: unknown split {split!r}; expected train, val or test")
    if not Path(source["path"]).exists():  # a file, or a folder of WAV files
        raise DataError(f"{directory}: its data file {source['path']} is gone; the model "
                        "directory needs it to evaluate (export, verify)")
    if data_sha256(source["path"]) != source["sha256"]:
        raise DataError(f"{source['path']} changed since fine-tuning (sha256 differs); the "
                        "recorded split no longer applies")
    if "vocab" in metadata["meta"]:
        data = load_texts(source["path"], classes=tuple(metadata["meta"]["classes"]))
    elif "target_vocab" in metadata["meta"]:
        meta = metadata["meta"]
        data = load_pairs(source["path"], alphabet=meta["source_vocab"][2:],
                          max_source=MAX_SOURCE, max_target=meta["max_output_len"] - 2)
    elif "alphabet" in metadata["meta"] and "classes" not in metadata["meta"]:
        meta = metadata["meta"]
        data = load_transcribed(source["path"], channels=len(meta["channels"]),
                                alphabet=meta["alphabet"],
                                audio=meta if "sample_rate" in meta else None)
    else:
        data = load_sequences(source["path"], classes=tuple(metadata["meta"]["classes"]))
    if split == "test":
        return data
    return data.subset(record["split"][split])


register_spec_resolver(lambda name: model_dir_spec(name) if is_model_dir(name) else None)
register_dataset_prefix(DATASET_PREFIX, load_split)
