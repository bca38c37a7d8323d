"""A bundle's manifest.json, read as a stranger's: bounded, its schema and format version
checked, and every path it names confined to the bundle, before anything in it is used.

What :func:`read_manifest` guarantees (docs/export-and-parity.md, "A bundle from a
stranger"): ``manifest.json`` is a regular file of at most :data:`MAX_MANIFEST_BYTES`
inside the bundle; its ``format_version`` is one this lstm-zoo reads; it has exactly the
keys the exporter writes (a key it does not know is refused, not ignored: format version 1
is this schema, and a writer that adds a key bumps the version); every file it lists is a
relative path that resolves inside the bundle (no absolute path, no ``..``, no symlink
leaving it) and declares at most :data:`MAX_FILE_BYTES`. Free-form records (``meta``,
``data``, ``tools``, ``source``, ``compression``, ``calibration``, ``auto``, an artifact's
op and fusion counts) are values, never paths: their keys are not checked here.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import ArtifactError

FORMAT_VERSION = 1  # what the exporter writes
FORMAT_VERSIONS = (1,)  # what this lstm-zoo reads
# A manifest is a few KB (3.4 KB for bilstm_activity_tiny; a user model's layer config
# adds tens of KB): 16 MiB is far above any real one and small enough to parse at once.
MAX_MANIFEST_BYTES = 16 << 20
# 2 GiB: the largest ONNX model (a protobuf) or TFLite model (a flatbuffer) without
# external data, which a bundle never has; the reference weights are the same tensors.
MAX_FILE_BYTES = 2 << 30
FORMATS = ("tflite", "onnx")

ANY = None  # a record: any JSON value, never read as a path
_NONE = type(None)
_FILE = {"file": str, "size": int, "sha256": str}
# required keys -> type, optional keys -> type: exactly what export.pipeline.run_export writes
TOP = ({"format_version": int, "model": str, "family": str, "task": str, "meta": dict,
        "data": ANY, "reference": dict, "graphs": list, "calibration": ANY,
        "compression": ANY, "artifacts": list, "tools": ANY, "created": str},
       {"files": list, "auto": dict, "source": ANY})
REFERENCE = (_FILE, {"config": dict, "weights": str, "model_config": dict})
ARTIFACT = ({**_FILE, "graph": str, "format": str, "precision": str,
             "expected_directions": dict, "gzip_size": int, "weight_sparsity": ANY,
             "ops": ANY, "fused_directions": ANY, "loops": ANY, "all_fused": bool,
             "as_expected": bool, "loop_reason": (str, _NONE)}, {"unroll": dict})
EXTRA_FILE = (_FILE, {})
GRAPH = ({"name": str, "inputs": list, "outputs": list, "recurrent": str}, {"fusion": dict})
TENSOR = ({"name": str, "shape": list, "dtype": str}, {})
AUTO = ({"max_drop": (int, float)}, {})
_SHA256 = re.compile(r"[0-9a-f]{64}")
# the dtypes a graph's inputs and outputs may have (numeric; FeedCheck builds np.dtype)
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool")


def read_manifest(root: Path) -> dict[str, Any]:
    """``root/manifest.json``, checked (see the module docstring).

    Raises:
        ArtifactError: not a bundle, an unsupported ``format_version``, a schema error, a
            path that leaves the bundle, or a size over the bounds; the message says what
            was received and what is expected.

    Example:
        >>> import json, tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "manifest.json").write_text(json.dumps({"format_version": 99}))
        >>> read_manifest(root)
        Traceback (most recent call last):
        ...
        zoo.errors.ArtifactError: ...: format_version 99; this lstm-zoo reads format_version 1
    """
    path = root / "manifest.json"
    if not root.is_dir() or not path.is_file():
        raise ArtifactError(f"{root} is not a bundle: no manifest.json (an export that did "
                            "not finish leaves no bundle)")
    confined(root, "manifest.json", path)
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:  # refused before it is read
        raise ArtifactError(f"{path} is {size:,} bytes; a manifest is at most "
                            f"{MAX_MANIFEST_BYTES:,}")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ArtifactError(f"{path} is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: expected a JSON object; got {type(manifest).__name__}")
    version = manifest.get("format_version")
    if type(version) is not int or version not in FORMAT_VERSIONS:
        raise ArtifactError(f"{path}: format_version {version!r}; this lstm-zoo reads "
                            f"format_version {', '.join(map(str, FORMAT_VERSIONS))}")
    check_schema(manifest, root, str(path))
    return manifest


def check_schema(manifest: dict, root: Path, where: str) -> None:
    """The manifest's keys and types, each file entry's path and declared size."""
    _object(manifest, TOP, where)
    graphs = {}
    for i, g in enumerate(manifest["graphs"]):
        at = f"{where}: graphs[{i}]"
        _object(g, GRAPH, at)
        for side in ("inputs", "outputs"):
            for j, t in enumerate(g[side]):
                _tensor(t, f"{at}.{side}[{j}]")
        graphs[g["name"]] = g
    if manifest.get("auto") is not None:
        _object(manifest["auto"], AUTO, f"{where}: auto")
    # what rebuilds the Keras reference: a user model's layer config, a zoo model's builder
    # arguments
    rebuild = "model_config" if manifest["task"] == "user" else "config"
    if rebuild not in manifest["reference"]:
        raise ArtifactError(f"{where}: reference: missing key {rebuild!r} (a "
                            f"{manifest['task'][:40]!r} bundle's Keras model is rebuilt from it)")
    entries = [(manifest["reference"], REFERENCE, "reference")]
    entries += [(a, ARTIFACT, f"artifacts[{i}]") for i, a in enumerate(manifest["artifacts"])]
    entries += [(f, EXTRA_FILE, f"files[{i}]") for i, f in enumerate(manifest.get("files", ()))]
    for entry, schema, name in entries:
        at = f"{where}: {name}"
        _object(entry, schema, at)
        confined(root, entry["file"], at)
        if entry["size"] < 0 or entry["size"] > MAX_FILE_BYTES:
            raise ArtifactError(f"{at}: size {entry['size']:,}; a bundle's file is 0 to "
                                f"{MAX_FILE_BYTES:,} bytes")
        if not _SHA256.fullmatch(entry["sha256"]):
            raise ArtifactError(f"{at}: sha256 {entry['sha256'][:80]!r} is not 64 lower-case "
                                "hex digits")
        if schema is ARTIFACT:
            if entry["format"] not in FORMATS:
                raise ArtifactError(f"{at}: format {entry['format']!r}; expected one of "
                                    f"{FORMATS}")
            if entry["graph"] not in graphs:
                raise ArtifactError(f"{at}: graph {entry['graph']!r} is not one of the "
                                    f"manifest's graphs {sorted(graphs)}")


def confined(root: Path, name: Any, where: str) -> Path:
    """``root / name`` for a relative POSIX path without ``.``/``..`` parts that resolves
    (symlinks followed) inside ``root``; else an :class:`ArtifactError`."""
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"{where}: file {name!r}; expected a relative path inside the "
                            "bundle")
    if (name.startswith("/") or "\\" in name or "\0" in name
            or any(p in ("", ".", "..") for p in name.split("/"))):
        raise ArtifactError(f"{where}: file {name!r} is not a plain relative path inside the "
                            "bundle (absolute, '..', '.', an empty part or a backslash)")
    path = root / name
    try:
        inside, resolved = root.resolve(), path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ArtifactError(f"{where}: file {name!r} cannot be resolved: {e}") from None
    if resolved == inside or not resolved.is_relative_to(inside):
        raise ArtifactError(f"{where}: file {name!r} resolves to {resolved}, outside the "
                            f"bundle {inside} (a symlink leaving it)")
    return path


def _object(value: Any, schema: tuple[Mapping, Mapping], where: str) -> None:
    required, optional = schema
    if not isinstance(value, dict):
        raise ArtifactError(f"{where}: expected an object; got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ArtifactError(f"{where}: missing key(s) {missing}")
    unknown = sorted(k for k in value if k not in required and k not in optional)
    if unknown:
        raise ArtifactError(f"{where}: unknown key(s) {[k[:80] for k in unknown[:5]]} "
                            "(refused, not ignored); the known ones: "
                            f"{sorted({**required, **optional})}")
    for key, kind in {**required, **optional}.items():
        if key in value and kind is not ANY and not _is(value[key], kind):
            raise ArtifactError(f"{where}: {key} must be {_names(kind)}; got "
                                f"{_json_type(value[key])}")


def _tensor(t: Any, where: str) -> None:
    _object(t, TENSOR, where)
    if not all(d is None or (type(d) is int and d >= 0) for d in t["shape"]):
        raise ArtifactError(f"{where}: shape {t['shape']!r}; expected sizes >= 0 or null")
    if t["dtype"] not in DTYPES:
        raise ArtifactError(f"{where}: dtype {t['dtype'][:40]!r}; expected one of {DTYPES}")


def _is(value: Any, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if type(value) is bool:  # JSON true/false is not a number
        return bool in kinds
    return isinstance(value, kinds)


def _names(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_JSON_NAMES[k] for k in kinds)


_JSON_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean",
               dict: "object", list: "array", _NONE: "null"}


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


# The tools a manifest records the versions of (``tools``).
TOOLS = ("tensorflow", "tf-keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert",
         "tensorflow-model-optimization", "numpy", "lstm-zoo")


def tool_versions() -> dict[str, str]:
    """The installed version of every tool an export depends on, and Python's."""
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
