"""The task protocol: what the pipeline, ``predict`` and training may ask of a task.

A task turns graph outputs into predictions and a metric, identically on every backend
(Keras, LiteRT, ONNX Runtime). A spec names its task (``spec.task``); the task reads the
spec's ``meta`` (class names, vocabularies, windows). Predictions run one sample at a time
by default, because exported TFLite graphs have batch 1.

A new task subclasses :class:`Task`, implements the required methods and registers itself
with :func:`register_task`; the optional hooks have defaults, so callers use them without
probing for them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from zoo.errors import UnknownTaskError, UnsupportedError


class Task(ABC):
    """Base of every task.

    Attributes (dataclass fields of the concrete tasks):
        name: the registry key, as specs name it (``"classification"``, ``"ctc"``, ...).
        metric: the primary metric of :meth:`score`, the one parity and cards report.
        higher_is_better: the direction of ``metric``.
        calibrated_meta: metric keys of the Keras reference that an export records in the
            bundle's meta for ``predict`` (an anomaly threshold); none by default.
    """

    name: str
    metric: str
    higher_is_better: bool
    calibrated_meta: tuple[str, ...] = ()

    @abstractmethod
    def inputs(self, data) -> Any:
        """The inputs of a loaded dataset split, as :meth:`predict` takes them."""

    @abstractmethod
    def predict(self, graphs, inputs, meta, progress=None, batch_size=1) -> Any:
        """One prediction per input, from ``graphs`` (name -> callable graph)."""

    @abstractmethod
    def score(self, predictions, data, meta) -> dict[str, float]:
        """The metrics of ``predictions`` against a split's truth (``metric`` among them)."""

    @abstractmethod
    def compare(self, a, b) -> dict[str, Any]:
        """How far two backends' predictions are from each other (``disagreements``)."""

    @abstractmethod
    def tensor_inputs(self, test, extra, minimum: int, seed: int = 0) -> Any:
        """At least ``minimum`` real inputs for tensor parity."""

    @abstractmethod
    def parse_input(self, source: str, meta) -> Any:
        """A user's input from a file name (or the text itself), checked."""

    def parse_inputs(self, source: str, meta) -> list:
        """The inputs ``lstm-zoo predict --input`` gives :meth:`predict`: by default the one
        input of :meth:`parse_input` (a text, or an array with a batch axis of one); a task
        whose files can hold a batch (a user model's ``.npy``) returns each sample."""
        item = self.parse_input(source, meta)
        return [item if isinstance(item, str) else item[0]]

    @abstractmethod
    def check_input(self, x, meta, where="input") -> Any:
        """One input as :meth:`predict` takes it, or a :class:`~zoo.errors.ShapeError`."""

    @abstractmethod
    def format(self, prediction, meta) -> str:
        """One prediction as text for a terminal."""

    # Training batches keyed by step (multi-worker training shards them exactly); a task
    # whose batches come from a keras Sequence cannot be sharded so.
    step_keyed = False

    def fit(self, model, data, recipe, spec, verbose=0, *, adapt=True,
            callbacks=()) -> dict[str, float]:
        """Trains ``model`` on a loaded training split with ``recipe`` (see
        :mod:`zoo.tasks.fitting`); returns ``{"loss": last epoch's loss}``. ``adapt``: fit the
        normalisation layers to the data first (from scratch; fine-tuning keeps them)."""
        raise UnsupportedError(f"{self.name} models have no training recipe")

    def split_size(self, data) -> int:
        """How many samples a loaded split holds (of a training split: an epoch's worth)."""
        for field in ("x", "texts", "words", "ids"):
            if hasattr(data, field):
                return len(getattr(data, field))
        return len(data)

    def feed_lengths(self, meta) -> list[int] | None:
        """Time lengths for random parity feeds when the graph's input fixes them; ``None``
        (the default): the graph's time axis is free."""
        return None

    def for_meta(self, meta) -> Task:
        """The task as a bundle of ``meta`` runs it: itself (the default), or an instance
        configured by the meta (a user model's metric)."""
        return self

    def checks(self, metrics: Mapping[str, float], precision: str) -> list[dict]:
        """Checks the task adds on a backend's metrics at ``precision``, each ``{"check",
        "value", "limit", "reason", "passed"}``; none by default."""
        return []

    # Fine-tuning (zoo.finetune): the layers replaced for a new label set (everything else
    # transfers from the parent); none: the task cannot be fine-tuned yet.
    finetune_head: tuple[str, ...] = ()
    # Fine-tuned on padded batches of varying shape: multi-worker sharding is untested.
    padded_batches = False

    def finetune_data(self, spec, parent, config, data, test, alphabet) -> tuple:
        """A user's files for fine-tuning ``spec`` (parent model ``parent``, builder
        ``config``): ``(full, held_out, config, meta)``, the loaded data, its test split
        (``None`` without ``test``), the builder config and the model directory's meta for
        them (:mod:`zoo.userdata`)."""
        raise UnsupportedError(f"{self.name} models cannot be fine-tuned yet")

    def finetune_split(self, full, fraction: float, seed: int):
        """``(train indices, held-out indices)`` of ``full`` for early stopping: stratified
        by label (the default), or random where there are no labels."""
        from zoo.userdata import stratified_split

        return stratified_split(full.y, fraction, seed)

    def transfer(self, spec, parent, model, meta) -> dict[str, str]:
        """Copies ``parent``'s weights into ``model`` where the task keeps them (every
        layer but the :attr:`finetune_head`, by default); what was copied, by layer."""
        from zoo.tasks.transfer import transfer_layers

        return transfer_layers(parent, model, self.finetune_head)

    def normalization_sample(self, data):
        """What the normalisation layers adapt to when fine-tuning: ``data.x``."""
        return data.x

    def phase_batches(self, model, train, val, meta, *, strategy, learning_rate: float,
                      batch: int, key: tuple[int, ...], first_epoch: int, augment=None):
        """One fine-tuning phase's training (:func:`zoo.resumable.run_phase`): ``(model to
        fit, compiled in ``strategy``'s scope; its batches keyed by step from epoch
        ``first_epoch`` on (:func:`zoo.augment.epoch_keyed_dataset`); steps per epoch;
        validation data)``."""
        raise UnsupportedError(f"{self.name} models cannot be fine-tuned yet")

    def decoding_options(self, meta, beam_width: int, lexicon_path: str | None) -> dict:
        """``meta`` with decoding options (beam width, lexicon). Only CTC recognisers and
        seq2seq models decode on the host with options; any other task refuses them."""
        raise UnsupportedError(f"--beam is for CTC recognisers and seq2seq (G2P) models, "
                               f"--lexicon for CTC recognisers; this is a {self.name} model")


_TASKS: dict[str, Task] = {}
TASKS: Mapping[str, Task] = MappingProxyType(_TASKS)


def register_task(task):
    """Registers a task under its ``name``: an instance, or a class built with no
    arguments (so it works as a class decorator). Returns its argument.

    Example:
        >>> from dataclasses import dataclass
        >>> from zoo.tasks import Classification, get_task, register_task
        >>> @register_task
        ... @dataclass(frozen=True)
        ... class Gestures(Classification):
        ...     name: str = "doctest_gestures"
        >>> get_task("doctest_gestures").metric
        'accuracy'
    """
    instance = task() if isinstance(task, type) else task
    if not isinstance(instance, Task):
        raise TypeError(f"register_task takes a zoo.tasks.Task (a subclass or an instance); "
                        f"got {type(instance).__name__}")
    known = _TASKS.get(instance.name)
    if known is not None and type(known) is not type(instance):
        raise ValueError(f"task {instance.name!r} is already registered "
                         f"({type(known).__name__})")
    _TASKS[instance.name] = instance
    return task


def get_task(name: str) -> Task:
    """The registered task ``name``.

    Raises:
        UnknownTaskError: ``name`` is not registered (the message lists the known tasks).

    Example:
        >>> from zoo.tasks import get_task
        >>> get_task("forecast").metric
        'mase'
    """
    try:
        return _TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known: {sorted(_TASKS)}") from None
