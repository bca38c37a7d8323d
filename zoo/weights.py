"""Packaged and user weights: sha256-checked loading, metadata, and URL fetching.

Shipped weights live in ``zoo/pretrained`` as ``NAME.TAG.weights.h5`` beside
``NAME.TAG.json`` (sha256, params, dataset, split, metrics, license, recipe, the
builder config). Loading always recomputes the sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
WEIGHTS_SUFFIX = ".weights.h5"


@dataclass(frozen=True)
class WeightsRecord:
    """A weights file and what its metadata says about it."""

    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.metadata.get("config", {}))

    @property
    def sha256(self) -> str | None:
        return self.metadata.get("sha256")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_path(weights_path: str | Path) -> Path:
    """``x.weights.h5`` -> ``x.json``."""
    p = Path(weights_path)
    stem = p.name[: -len(WEIGHTS_SUFFIX)] if p.name.endswith(WEIGHTS_SUFFIX) else p.stem
    return p.with_name(stem + ".json")


def pretrained_path(name: str, tag: str) -> Path:
    return PRETRAINED_DIR / f"{name}.{tag}{WEIGHTS_SUFFIX}"


def read_metadata(weights_path: str | Path) -> dict[str, Any]:
    meta = metadata_path(weights_path)
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError as e:
        raise WeightsError(f"metadata {meta} is not valid JSON: {e}") from None


def resolve(spec, weights: str | Path) -> WeightsRecord:
    """Turns a ``weights`` argument of :func:`zoo.create_model` into a checked record."""
    if weights == "DEFAULT":
        if spec.default_weights is None:
            raise WeightsError(
                f"{spec.name} has no pretrained weights; pretrained models: "
                f"{_pretrained_names()}"
            )
        weights = spec.default_weights
    if isinstance(weights, str) and weights in spec.weights:
        path = (Path(spec.weights_dir) / f"{weights}{WEIGHTS_SUFFIX}" if spec.weights_dir
                else pretrained_path(spec.name, weights))
        if not path.is_file():
            raise WeightsError(
                f"{spec.name}.{weights}: weights file {path} is missing; reproduce it with "
                f"`lstm-zoo train {spec.name}`"
            )
        record = WeightsRecord(path, read_metadata(path))
        if not record.sha256:
            raise WeightsError(f"{metadata_path(path)} is missing or has no sha256")
    elif isinstance(weights, str) and weights.startswith(("http://", "https://")):
        record = fetch(weights)
    else:
        path = Path(weights)
        if not path.is_file():
            tags = list(spec.weights) or "none"
            raise WeightsError(
                f"{spec.name}: weights {str(weights)!r} is neither a file nor a known tag "
                f"(tags: {tags}; or 'DEFAULT', or an http(s) URL)"
            )
        record = WeightsRecord(path, read_metadata(path))
    if record.sha256:
        actual = sha256_of(record.path)
        if actual != record.sha256:
            raise WeightsError(
                f"sha256 of {record.path} is {actual}, but its metadata says {record.sha256}: "
                "the file is corrupt or was replaced"
            )
    model_name = record.metadata.get("model")
    if model_name and model_name != (spec.base or spec.name):
        raise WeightsError(f"{record.path} holds weights of {model_name!r}, not "
                           f"{spec.base or spec.name!r}")
    return record


def load_into(model, record: WeightsRecord) -> None:
    try:
        model.load_weights(str(record.path))
    except (ValueError, OSError, TypeError, KeyError, RuntimeError) as e:
        # h5py raises TypeError ("Unknown string encoding"), KeyError or RuntimeError for a
        # damaged file it opened, not only OSError (measured: bit flips in a weights file)
        raise WeightsError(
            f"cannot load {record.path} into {model.name} (the weights were trained with "
            f"config {record.config}): {e}"
        ) from None


def _pretrained_names() -> list[str]:
    """The models whose weights ship in :data:`PRETRAINED_DIR` (``NAME.TAG.weights.h5``)."""
    return sorted({p.name.split(".")[0] for p in PRETRAINED_DIR.glob(f"*{WEIGHTS_SUFFIX}")})


def cache_dir() -> Path:
    root = os.environ.get("LSTM_ZOO_CACHE") or Path.home() / ".cache" / "lstm-zoo"
    return Path(root)


def fetch(url: str, *, timeout: float = 30.0) -> WeightsRecord:
    """Downloads ``url`` (a ``.weights.h5``) and its ``.json`` metadata into the cache.

    The metadata must carry the weights' sha256; the weights are checked against it
    before they are moved into place, so the cache never holds a partial or wrong file.
    """
    if not url.endswith(WEIGHTS_SUFFIX):
        raise WeightsError(f"weights URL must end with {WEIGHTS_SUFFIX!r}; got {url!r}")
    name = url.rsplit("/", 1)[-1]
    target = cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    meta_url = url[: -len(WEIGHTS_SUFFIX)] + ".json"
    metadata = json.loads(_download(meta_url, timeout))
    expected = metadata.get("sha256")
    if not expected:
        raise WeightsError(f"{meta_url} has no sha256; refusing unverifiable weights")
    if not (target.is_file() and sha256_of(target) == expected):
        data = _download(url, timeout)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise WeightsError(f"{url}: downloaded sha256 {actual} != expected {expected}")
        atomic_write_bytes(target, data)
    atomic_write_bytes(metadata_path(target), json.dumps(metadata, indent=2).encode())
    return WeightsRecord(target, metadata)


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as e:
        raise WeightsError(f"cannot download {url}: {e}") from None


def save_weights_atomic(model, path: str | Path) -> None:
    """``model.save_weights`` to ``path`` (a ``.weights.h5`` name) through a rename.

    Keras picks the weights format from the file name, so the temporary file gets the
    final name inside a temporary sibling directory.
    """
    path = Path(path)
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise WeightsError(f"weights files are named *{WEIGHTS_SUFFIX}; got {path.name!r}")
    if getattr(model, "optimizer", None) is not None:
        # A compiled model would also save its optimizer slots (3x the size).
        from zoo._keras import keras

        clean = keras.models.clone_model(model)
        clean.set_weights(model.get_weights())
        model = clean
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        model.save_weights(str(tmp_dir / path.name))
        os.chmod(tmp_dir / path.name, 0o644)
        os.replace(tmp_dir / path.name, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
