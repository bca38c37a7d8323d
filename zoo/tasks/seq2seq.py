"""Token sequence transduction (``seq2seq``): grapheme-to-phoneme conversion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo._keras import keras, tf
from zoo.augment import epoch_keyed_dataset
from zoo.decoding import beam_decode, greedy_decode
from zoo.errors import ArgumentError, ShapeError, UnsupportedError
from zoo.tasks.base import Task, register_task
from zoo.tasks.common import check_encodable, length_batches
from zoo.tasks.fitting import BatchSequence, adam, run_fit
from zoo.tasks.metrics import edit_distance

# The longest source a seq2seq model takes: the longest it may be trained on (a fine-tuned
# model's, zoo.model_dir; the pretrained G2P's words have at most 20 letters). The encoder
# runs any length, but a longer word is not one the model has learnt to read, and its
# decoder stops at meta["max_output_len"] symbols.
MAX_SOURCE = 40
# The widest beam ``lstm-zoo predict --beam`` takes: each hypothesis is one step-graph call
# per symbol (batch 1, as LiteRT's step graph is exported), so a word costs up to
# width x max_output_len calls (64 x 22: ~1,400); width 8 took 11 ms a word on LiteRT and
# 134 ms on Keras, and gained nothing over width 4 (docs/models.md).
MAX_BEAM = 64
# Beam search ranks its finished hypotheses by log p / (len + 1) ** LENGTH_PENALTY: on the
# pretrained G2P's 2,529 held-out words, alpha 1 gave PER 7.04 % at widths 4 and 8, and the
# summed log-probability (alpha 0, which favours short transcriptions) 7.10 % (greedy:
# 7.21 %; python -m benchmarks.g2p_decoding).
LENGTH_PENALTY = 1.0


@register_task
@dataclass(frozen=True)
class Seq2Seq(Task):
    """Token sequence transduction (G2P); metrics: phoneme error rate, word accuracy."""

    name: str = "seq2seq"
    metric: str = "per"
    higher_is_better: bool = False

    def inputs(self, data) -> list[str]:
        return list(data.words)

    def encode(self, word: str, meta) -> np.ndarray:
        index = {t: i for i, t in enumerate(meta["source_vocab"])}
        word = word.strip().lower()
        if not word:
            raise ShapeError("expected a non-empty word, got an empty string")
        if len(word) > MAX_SOURCE:
            raise ShapeError(f"a word of {len(word)} characters; the model takes at most "
                             f"{MAX_SOURCE}")
        unknown = sorted({ch for ch in word if ch not in index})
        if unknown:
            valid = "".join(meta["source_vocab"][2:])
            raise ShapeError(f"word {word!r} has characters {unknown} outside the model's "
                             f"alphabet {valid!r}")
        return np.array([[index[ch] for ch in word]], dtype=np.int32)

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1):
        """Transcriptions: greedy, or beam search when ``meta["beam_width"]`` > 1 (one word
        at a time; :func:`zoo.decoding.beam_decode`, ranked with
        ``meta["length_penalty"]``, :data:`LENGTH_PENALTY` by default). ``batch_size`` > 1
        groups words of equal length for greedy decoding (Keras)."""
        vocab = meta["target_vocab"]
        width = int(meta.get("beam_width", 1))
        out: list[tuple[str, ...]] = [()] * len(inputs)
        chunks = (length_batches([len(w.strip()) for w in inputs], batch_size) if width == 1
                  else ([i] for i in range(len(inputs))))
        for chunk in chunks:
            source = np.concatenate([self.encode(inputs[i], meta) for i in chunk])
            if width == 1:
                ids = greedy_decode(graphs, source, bos=meta["bos"], eos=meta["eos"],
                                    max_len=meta["max_output_len"])
            else:
                ids = [beam_decode(graphs, source, bos=meta["bos"], eos=meta["eos"],
                                   max_len=meta["max_output_len"], beam_width=width,
                                   length_penalty=float(meta.get("length_penalty",
                                                                 LENGTH_PENALTY)))
                       [0][0]]
            for i, row in zip(chunk, ids, strict=True):
                out[i] = tuple(vocab[t] for t in row)
            if progress:
                progress(len(chunk))
        return out

    def decoding_options(self, meta, beam_width: int, lexicon_path: str | None) -> dict:
        """``meta`` with a beam width (1 .. :data:`MAX_BEAM`; 1 is greedy). A lexicon is
        refused: it limits a CTC recogniser to known words, and a G2P model is for the
        words a lexicon lacks."""
        if lexicon_path is not None:
            raise UnsupportedError("--lexicon is for CTC recognisers; a seq2seq (G2P) model "
                                   "transcribes any word, and takes --beam alone")
        if not 1 <= beam_width <= MAX_BEAM:
            raise ArgumentError(f"beam width must be in 1..{MAX_BEAM} for a seq2seq model; "
                                f"got {beam_width}")
        return {**meta, "beam_width": beam_width}

    def score(self, predictions, data, meta) -> dict[str, float]:
        errors = length = correct = 0
        for pred, refs in zip(predictions, data.references, strict=True):
            best = min(refs, key=lambda r: (edit_distance(pred, r), len(r)))
            errors += edit_distance(pred, best)
            length += len(best)
            correct += tuple(pred) in {tuple(r) for r in refs}
        return {"per": errors / max(length, 1), "word_accuracy": correct / max(len(predictions), 1)}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[str]:
        """The first ``minimum`` held-out test words (their decoder steps, each word's up to
        its end token, are sampled for replay)."""
        return list(test.words[:minimum])

    def compare(self, a, b) -> dict[str, Any]:
        return {"disagreements": sum(x != y for x, y in zip(a, b, strict=True))}

    def check_input(self, word, meta, where="input") -> str:
        """One word as :meth:`predict` takes it, or a :class:`ShapeError`."""
        return check_encodable(self, word, "a word", meta, where).strip().lower()

    def parse_input(self, source: str, meta) -> str:
        return self.check_input(source, meta)

    def format(self, prediction, meta) -> str:
        return " ".join(prediction)

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Teacher forcing (:func:`seq2seq_batches`), cross-entropy of the logits, padding
        weighted 0; validated on the dataset's ``val`` split."""
        from zoo import datasets

        seed = recipe.get("seed", 0)

        def make(epoch):
            rng = np.random.default_rng(seed + epoch)
            return list(seq2seq_batches(data, spec.meta, recipe["batch_size"], rng,
                                        recipe.get("limit")))

        train_seq = BatchSequence(make, epochs=recipe["epochs"])
        val = datasets.load(spec.data.dataset, "val")
        val_batches = list(seq2seq_batches(val, spec.meta, 256, np.random.default_rng(0)))
        recipe = {**recipe, "schedule": "cosine"}  # always: the shipped G2P weights' schedule
        model.compile(optimizer=adam(recipe, len(train_seq)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      weighted_metrics=["accuracy"])
        return run_fit(model, train_seq, recipe, verbose, callbacks, shuffle=False,
                       validation_data=BatchSequence(lambda _: val_batches))

    finetune_head = ("target_embedding", "projection")
    padded_batches = True

    def finetune_data(self, spec, parent, config, data, test, alphabet):
        """The user's source -> target pairs (and test file), the builder config for the new
        target vocabulary and the model directory's meta: the parent's target vocabulary
        first (its symbols keep their ids and weights), then the new symbols, sorted."""
        from zoo.userdata import load_pairs

        inherited = dict(spec.meta)
        limits = {"alphabet": inherited["source_vocab"][2:], "max_source": MAX_SOURCE,
                  "max_target": inherited["max_output_len"] - 2}
        full = load_pairs(data, **limits)
        vocab = list(inherited["target_vocab"])
        vocab += [s for s in full.symbols if s not in vocab]
        # A test symbol the model cannot emit is not refused: scoring compares symbol
        # strings, and the error rate counts it as the miss it is.
        held_out = None if test is None else load_pairs(test, **limits)
        config = {**config, "target_vocab": len(vocab)}
        return full, held_out, config, {**inherited, "target_vocab": vocab}

    def finetune_split(self, full, fraction: float, seed: int):
        from zoo.userdata import random_split

        return random_split(len(full.words), fraction, seed)

    def transfer(self, spec, parent, model, meta) -> dict[str, str]:
        """Every layer but the target side's; the parent's target symbols keep their ids
        and weights there."""
        from zoo.tasks.transfer import transfer_layers, transfer_symbol_prefix

        transferred = transfer_layers(parent, model, self.finetune_head)
        transferred.update(transfer_symbol_prefix(parent, model, self.finetune_head))
        return transferred

    def phase_batches(self, model, train, val, meta, *, strategy, learning_rate, batch, key,
                      first_epoch, augment=None):
        steps = len(list(seq2seq_batches(train, meta, batch, np.random.default_rng(0))))
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          weighted_metrics=["accuracy"])
        ids = tf.TensorSpec((None, None), tf.int32)
        signature = ((ids, ids), ids, tf.TensorSpec((None, None), tf.float32))
        data = epoch_keyed_dataset(lambda rng: list(seq2seq_batches(train, meta, batch, rng)),
                                   signature, key, first_epoch * steps, steps)
        val_batches = list(seq2seq_batches(val, meta, 64, np.random.default_rng(0)))
        return model, data, steps, BatchSequence(lambda _: val_batches)


def seq2seq_batches(data, meta, batch_size, rng, limit=None):
    """Teacher-forcing batches grouped by source length (no source padding).

    Yields ((graphemes, phonemes_in), phonemes_out, weights); targets are padded with
    ``pad`` and the padding gets weight 0.
    """
    src_index = {t: i for i, t in enumerate(meta["source_vocab"])}
    tgt_index = {t: i for i, t in enumerate(meta["target_vocab"])}
    words, targets = list(data.words), list(data.targets)
    if limit:
        words, targets = words[:limit], targets[:limit]
    by_len: dict[int, list[int]] = {}
    for i, w in enumerate(words):
        by_len.setdefault(len(w), []).append(i)
    batches = []
    for idx in by_len.values():
        idx = list(rng.permutation(idx))
        batches += [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    for idx in batches:
        src = np.array([[src_index[ch] for ch in words[i]] for i in idx], np.int32)
        tgt = [[tgt_index[p] for p in targets[i]] for i in idx]
        width = max(len(t) for t in tgt) + 1
        t_in = np.full((len(idx), width), meta["pad"], np.int32)
        t_out = np.full((len(idx), width), meta["pad"], np.int32)
        for r, t in enumerate(tgt):
            t_in[r, : len(t) + 1] = [meta["bos"], *t]
            t_out[r, : len(t) + 1] = [*t, meta["eos"]]
        yield (src, t_in), t_out, (t_out != meta["pad"]).astype(np.float32)
