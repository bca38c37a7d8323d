"""Typed errors. Each says what was received and what was expected.

The CLI turns any :class:`ZooError` into a one-line message and a non-zero exit,
never a traceback.
"""


class ZooError(Exception):
    """Base class of every error lstm-zoo raises on purpose."""


class UnknownModelError(ZooError, KeyError):
    """A model name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ShapeError(ZooError, ValueError):
    """An input with the wrong shape, dtype, or non-finite values."""


class DataError(ZooError, ValueError):
    """Data that cannot be loaded or does not fit the model."""


class MissingExtraError(ZooError, ImportError):
    """A dataset needs an optional dependency group that is not installed."""


class WeightsError(ZooError, ValueError):
    """Weights that are missing, unknown, or whose sha256 does not match."""


class ExportError(ZooError, RuntimeError):
    """A conversion or an artifact check failed."""


class UnsupportedError(ZooError, ValueError):
    """A format, precision or layer that the pipeline does not support (with the reason)."""


class ArtifactError(ZooError, ValueError):
    """A bundle or an artifact file on disk that is missing, truncated, not what the manifest
    says, or not to be trusted (a manifest off its schema or format version, a path leaving
    the bundle, a size over the bounds)."""


class ParityError(ZooError, AssertionError):
    """An exported artifact whose outputs or task metric disagree with Keras."""


class ConfigError(ZooError, ValueError):
    """A training configuration that cannot run: an unknown strategy, a malformed TF_CONFIG."""


class UnsupportedLayerError(UnsupportedError):
    """A layer of a user's model that lstm-zoo does not translate (names the layer, its class)."""


class WorkerLostError(ZooError, RuntimeError):
    """A peer of a multi-worker run that died or cannot be reached mid-training: names the
    worker (index and address) and what to rerun. ``worker`` is its index (``None``: the
    collective did not say which)."""

    def __init__(self, message: str, worker: int | None = None):
        super().__init__(message)
        self.worker = worker


class ArgumentError(ZooError, TypeError, ValueError):
    """An argument a function does not take: an unknown builder override, one of the wrong
    type or outside its range, a string where a list is expected, a count below 1. Both a
    TypeError and a ValueError (Python raises either for a bad argument), so a caller's
    ``except`` of either catches it."""


class UnknownTaskError(ZooError, KeyError):
    """A task name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class HostSetupError(ZooError, RuntimeError):
    """This machine lacks something a command needs (a program, root, a kernel feature, the
    network): says what, and the command that gets it."""
