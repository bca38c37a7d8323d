"""Sequence recognition with CTC (``ctc``): handwriting trajectories and speech.

(Named for the task, not ``ctc.py``, so it is never read as :mod:`zoo.ctc`, the decoders it
calls.)"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo import ctc
from zoo._keras import keras, tf
from zoo.augment import epoch_keyed_dataset
from zoo.errors import ArgumentError, DataError, ShapeError
from zoo.tasks.base import Task, register_task
from zoo.tasks.classification import Classification
from zoo.tasks.common import is_wav, length_batches, parity_pool
from zoo.tasks.fitting import BatchSequence, adam, adapt_normalization, run_fit
from zoo.tasks.metrics import edit_distance

# The widest beam ``lstm-zoo predict --beam`` takes. Prefix beam search costs time linear
# in the width, in Python on the host: 0.15 s at width 16 and 0.54 s at width 64 for a
# 120-frame input (a handwriting word), 1.6 s at 256 (measured, random probabilities,
# one busy core); width 16 read the handwriting test words within 0.05 pt of greedy's CER
# (benchmarks/results/ctc_decoding.md). A mistyped 100000 would take ~10 minutes an
# input at that rate.
MAX_BEAM = 64


@register_task
@dataclass(frozen=True)
class CTCRecognition(Task):
    """Sequence recognition with CTC: the graph ``recognizer`` gives per-frame probabilities
    over the blank (index ``meta["blank"]`` = 0) and ``meta["alphabet"]``, and the
    transcript is decoded on the host (:mod:`zoo.ctc`, greedy best path), identically for
    every backend. Metrics: character error rate, word accuracy.

    The graph's input is ``meta["input"]`` (default ``strokes``: pen trajectories); a
    model with a ``meta["sample_rate"]`` reads speech (log-mel frames of a WAV file)."""

    name: str = "ctc"
    metric: str = "cer"
    higher_is_better: bool = False

    def inputs(self, data) -> list[np.ndarray]:
        return [np.asarray(x, np.float32) for x in data.x]

    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> list[str]:
        """Transcripts. ``batch_size`` > 1 groups inputs of equal length (Keras; the
        recurrent layers see no padding).

        Greedy best path unless ``meta["beam_width"]`` > 1: CTC prefix beam search, limited
        to the words of ``meta["lexicon"]`` if given (an empty transcript when no word
        survives the beam)."""
        graph, name = graphs["recognizer"], meta.get("input", "strokes")
        width = int(meta.get("beam_width", 1))
        lexicon = None
        if meta.get("lexicon"):
            lexicon = ctc.Lexicon(self.labels(w, meta) for w in meta["lexicon"])
        out = [""] * len(inputs)
        # batch 1 (the runtimes, calibration recording) keeps the inputs' order
        chunks = (length_batches([len(x) for x in inputs], batch_size) if batch_size > 1
                  else ([i] for i in range(len(inputs))))
        for chunk in chunks:
            batch = np.stack([np.asarray(inputs[i], np.float32) for i in chunk])
            for i, probs in zip(chunk, graph({name: batch})["probs"], strict=True):
                if width > 1 or lexicon is not None:
                    beams = ctc.beam_search(probs, width, meta["blank"], lexicon)
                    symbols = beams[0][0] if beams else []
                else:
                    symbols = ctc.greedy_decode(probs, meta["blank"])
                out[i] = self.transcript(symbols, meta)
            if progress:
                progress(len(chunk))
        return out

    def decoding_options(self, meta, beam_width: int, lexicon_path: str | None) -> dict:
        """``meta`` with a beam width (1 .. :data:`MAX_BEAM`) and a lexicon read from a file
        of words, one per line (every word checked against the alphabet)."""
        if not 1 <= beam_width <= MAX_BEAM:
            raise ArgumentError(f"beam width must be in 1..{MAX_BEAM} for a CTC recogniser; "
                                f"got {beam_width}")
        out = {**meta, "beam_width": beam_width}
        if lexicon_path is not None:
            path = Path(lexicon_path)
            if not path.is_file():
                raise ShapeError(f"lexicon file {lexicon_path!r} does not exist; expected a "
                                 f"text file of words, one per line")
            words = [w.strip() for w in path.read_text().splitlines() if w.strip()]
            if not words:
                raise ShapeError(f"lexicon file {lexicon_path!r} has no words")
            for i, w in enumerate(words):
                try:
                    self.labels(w, meta)
                except ShapeError as e:
                    raise ShapeError(f"{lexicon_path}, line {i + 1}: {e}") from None
            out["lexicon"] = words
        return out

    @staticmethod
    def transcript(symbols, meta) -> str:
        """Symbol indices (blank 0 excluded) as text."""
        return "".join(meta["alphabet"][s - 1] for s in symbols)

    @staticmethod
    def labels(text: str, meta) -> list[int]:
        """Text as symbol indices (1 + its position in the alphabet)."""
        index = {ch: i + 1 for i, ch in enumerate(meta["alphabet"])}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ShapeError(f"text {text!r} has characters {unknown} outside the alphabet "
                             f"{meta['alphabet']!r}")
        return [index[ch] for ch in text]

    def score(self, predictions, data, meta) -> dict[str, float]:
        errors = sum(edit_distance(p, t) for p, t in zip(predictions, data.texts, strict=True))
        length = sum(len(t) for t in data.texts)
        correct = sum(p == t for p, t in zip(predictions, data.texts, strict=True))
        return {"cer": errors / max(length, 1),
                "word_accuracy": correct / max(len(predictions), 1)}

    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> list[np.ndarray]:
        """The test trajectories, then calibration ones, until ``minimum``."""
        return parity_pool(self, test, extra, minimum)

    def compare(self, a, b) -> dict[str, Any]:
        return {"disagreements": sum(x != y for x, y in zip(a, b, strict=True))}

    def parse_input(self, source: str, meta) -> np.ndarray:
        """Reads a trajectory: ``.npy`` (T, 3) rows of ``(dx, dy, pen_up)``; ``.json``, the
        same rows as a list, or ``{"strokes": [[[x, y], ...], ...], "body_height": h}``
        (absolute pen positions per stroke, converted by
        :func:`zoo.datasets.hershey_strokes.from_points`). Speech models read a ``.wav``
        file (:meth:`read_speech`) or log-mel frames as ``.npy`` / ``.csv``."""
        if "sample_rate" in meta:
            if is_wav(source, meta):
                return self.read_speech(source, meta)[None]
            frames = Classification().parse_input(source, meta)[0]
            return self.check_input(frames, meta, source)[None]
        import json

        channels = len(meta["channels"])
        path = Path(source)
        expected = (f"a .npy or .json stroke file: rows (time, {channels}) of "
                    f"{tuple(meta['channels'])}, or JSON {{\"strokes\": [[[x, y], ...], ...], "
                    f"\"body_height\": h}}")
        if not path.is_file():
            raise ShapeError(f"input file {source!r} does not exist; expected {expected}")
        try:
            if path.suffix.lower() == ".npy":
                x = np.load(path, allow_pickle=False)
            elif path.suffix.lower() == ".json":
                value = json.loads(path.read_text())
                if isinstance(value, dict):
                    from zoo.datasets.hershey_strokes import from_points

                    if set(value) != {"strokes", "body_height"}:
                        raise ShapeError(f"{source}: expected keys ['body_height', 'strokes'], "
                                         f"got {sorted(value)}")
                    x = from_points(value["strokes"], value["body_height"])
                else:
                    x = np.asarray(value, dtype=np.float64)
            else:
                raise ShapeError(f"{source}: expected {expected}; got {path.suffix!r}")
        except (ShapeError, DataError) as e:
            raise type(e)(f"{source}: {e}" if not str(e).startswith(source) else str(e)) \
                from None
        except Exception as e:  # json / numpy raise several types for malformed files
            raise ShapeError(f"{source}: cannot read a trajectory from it ({e})") from None
        return self.check_input(x, meta, source)[None]

    def check_input(self, x, meta, where="input") -> np.ndarray:
        """One trajectory (T, C) as :meth:`predict` takes it, or a :class:`ShapeError`."""
        x = Classification().check_sequence(x, meta, where)[0]
        if len(x) > meta["max_points"]:
            raise ShapeError(f"{where}: {len(x)} {'frames' if 'sample_rate' in meta else 'points'}"
                             f"; the model takes at most {meta['max_points']} per input")
        if "pen_up" not in meta["channels"]:
            return x
        pen = x[:, meta["channels"].index("pen_up")]
        if not np.all((pen == 0) | (pen == 1)):
            raise ShapeError(f"{where}: pen_up must be 0 or 1; got values "
                             f"{sorted(set(pen.tolist()) - {0.0, 1.0})[:5]}")
        return x

    @staticmethod
    def read_speech(source: str, meta) -> np.ndarray:
        """Log-mel frames (T, mels) of a ``.wav`` file as the speech recogniser was tested
        on its strings (:func:`zoo.audio.speech_frames`), checked as any input is."""
        from zoo.audio import speech_frames

        return CTCRecognition().check_input(speech_frames(source, meta), meta, source)

    def format(self, prediction, meta) -> str:
        return prediction

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """CTC loss (blank 0) on the logits (:class:`CTCTrainer`), over batches of
        trajectories of similar length (:func:`ctc_batches`); validated on the calibration
        split. ``recipe["fresh_draws"]``: the training split is synthetic and each epoch
        draws new writers and words from it (``"train:K"``, see
        :mod:`zoo.datasets.hershey_strokes`)."""
        from zoo import datasets

        stride = frame_stride(model)
        if adapt:  # from scratch: per-channel statistics over every training point
            points = np.concatenate([np.asarray(x, np.float32) for x in data.x])[None]
            adapt_normalization(model, points, recipe.get("normalize", "channel"))
        seed = recipe.get("seed", 0)

        def make(epoch):
            drawn = data
            if recipe.get("fresh_draws") and epoch:
                drawn = datasets.load(spec.data.dataset, f"{spec.data.train}:{epoch}")
            return ctc_batches(drawn, spec.meta, recipe["batch_size"], stride,
                               np.random.default_rng([seed, epoch]), recipe.get("limit"))

        train_seq = BatchSequence(make, epochs=recipe["epochs"])
        val = datasets.load(spec.data.dataset, spec.data.calibration)
        val_batches = ctc_batches(val, spec.meta, 64, stride, np.random.default_rng(0))
        trainer = CTCTrainer(model)
        trainer.compile(optimizer=adam(recipe, len(train_seq)))
        return run_fit(trainer, train_seq, recipe, verbose, callbacks, shuffle=False,
                       validation_data=BatchSequence(lambda _: val_batches))

    finetune_head = ("logits",)
    padded_batches = True

    def finetune_data(self, spec, parent, config, data, test, alphabet):
        """The user's transcribed sequences (and test file), the builder config for the
        alphabet and the model directory's meta (alphabet).

        The alphabet is ``alphabet`` if given (every transcript must stay within it), else
        the parent's symbols followed by any new characters the data uses (sorted), so a
        few words of a new style or writer do not cost the model the letters they happen
        to lack.
        """
        from zoo.userdata import load_transcribed

        channels = int(parent.input_shape[-1])
        inherited_meta = dict(spec.meta)
        audio = inherited_meta if "sample_rate" in inherited_meta else None  # lines name WAVs
        if alphabet is not None:
            if not alphabet or len(set(alphabet)) != len(alphabet):
                raise DataError(f"alphabet must be non-empty characters without repeats; got "
                                f"{alphabet!r}")
            full = load_transcribed(data, channels=channels, alphabet=alphabet, audio=audio)
        else:
            full = load_transcribed(data, channels=channels, audio=audio)
            inherited = inherited_meta["alphabet"]
            alphabet = inherited + "".join(sorted(set(full.alphabet) - set(inherited)))
            full = replace(full, alphabet=alphabet)
        held_out = None
        if test is not None:
            held_out = load_transcribed(test, channels=channels, alphabet=alphabet, audio=audio)
        config = {**config, "alphabet_size": len(alphabet)}
        return full, held_out, config, {**inherited_meta, "alphabet": alphabet}

    def finetune_split(self, full, fraction: float, seed: int):
        from zoo.userdata import random_split

        return random_split(len(full.texts), fraction, seed)

    def transfer(self, spec, parent, model, meta) -> dict[str, str]:
        """Every layer but the output (same input channels and units: the parent's
        normalisation statistics too); the output's columns of the symbols both alphabets
        share."""
        from zoo.tasks.transfer import transfer_layers, transfer_symbols

        transferred = transfer_layers(parent, model, self.finetune_head,
                                      keep_normalization=True)
        transferred["logits"] = transfer_symbols(parent, model, spec.meta["alphabet"],
                                                 meta["alphabet"])
        return transferred

    def normalization_sample(self, data):
        return np.concatenate(data.x)[None]  # sequences of other lengths: one long series

    def phase_batches(self, model, train, val, meta, *, strategy, learning_rate, batch, key,
                      first_epoch, augment=None):
        stride = frame_stride(model)
        with strategy.scope():
            fitted = CTCTrainer(model)
            fitted.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0))
        # ctc_batches sorts by length within chunks of 20 batches: the count can differ
        steps = len(ctc_batches(train, meta, batch, stride, np.random.default_rng(0)))
        channels = train.x[0].shape[1]
        signature = (tf.TensorSpec((None, None, channels), tf.float32),
                     (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32),
                      tf.TensorSpec((None,), tf.int32)))
        data = epoch_keyed_dataset(lambda rng: ctc_batches(train, meta, batch, stride, rng),
                                   signature, key, first_epoch * steps, steps)
        val_batches = ctc_batches(val, meta, 64, stride, np.random.default_rng(0))
        return fitted, data, steps, BatchSequence(lambda _: val_batches)


def ctc_batches(data, meta, batch_size: int, stride: int, rng, limit=None) -> list:
    """One epoch of CTC training batches: trajectories of similar length together (each
    chunk of 20 batches is sorted by length), zero rows padded at the end to a multiple of
    ``stride``, batch order shuffled. A batch is
    ``(x (B, T, C), (labels (B, L) padded with 0, label_length (B,), frames (B,)))`` where
    ``frames`` is each trajectory's own number of output frames, so the loss never reads
    the padding's frames."""
    x, texts = list(data.x), list(data.texts)
    if limit:
        x, texts = x[:limit], texts[:limit]
    order = rng.permutation(len(x))
    chunk = 20 * batch_size
    groups = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(x[i]))
        groups += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(groups)
    batches = []
    for idx in groups:
        lengths = np.array([len(x[i]) for i in idx], np.int32)
        width = int(math.ceil(lengths.max() / stride) * stride)
        xb = np.zeros((len(idx), width, x[idx[0]].shape[1]), np.float32)
        for r, i in enumerate(idx):
            xb[r, : len(x[i])] = x[i]
        labels = [CTCRecognition.labels(texts[i], meta) for i in idx]
        lb = np.zeros((len(idx), max(map(len, labels))), np.int32)
        for r, lab in enumerate(labels):
            lb[r, : len(lab)] = lab
        frames = -(-lengths // stride)
        batches.append((xb, (lb, np.array([len(la) for la in labels], np.int32), frames)))
    return batches


def CTCTrainer(model):  # noqa: N802 (a class to its callers)
    """A keras Model that trains ``model``, a recogniser whose last layer is the softmax
    over its logits: CTC loss (blank 0) on the logits, each sample over its own number of
    frames. (The class is made on first use: importing the tasks imports no TensorFlow.)"""
    return _ctc_trainer()(model)


@functools.cache
def _ctc_trainer():
    class _CTCTrainer(keras.Model):
        def __init__(self, model):
            super().__init__(name="ctc_trainer")
            self.net = model
            # the input of the final softmax in *this* model's graph (a cloned model, e.g.
            # tfmot's pruning wrapper, shares the unwrapped softmax layer with the original)
            layer, node_index, _ = model.outputs[0]._keras_history
            self.logits = keras.Model(model.inputs,
                                      layer._inbound_nodes[node_index].input_tensors)
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, x, training=False):
            return self.logits(x, training=training)

        def _loss(self, data, training):
            x, (labels, label_length, frames) = data
            logits = self.logits(x, training=training)
            return tf.reduce_mean(tf.nn.ctc_loss(labels, logits, label_length, frames,
                                                 logits_time_major=False, blank_index=0))

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss = self._loss(data, True)
            variables = self.logits.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables,
                                               strict=True))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        def test_step(self, data):
            self.loss_tracker.update_state(self._loss(data, False))
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker]

    return _CTCTrainer


def frame_stride(model) -> int:
    """Input steps per output frame of a recogniser: the strides of its Conv1D layers (also
    inside tfmot's pruning or clustering wrappers)."""
    stride = 1
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner) is keras.layers.Conv1D:
            stride *= int(inner.strides[0])
    return stride
