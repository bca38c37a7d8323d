"""Taking files out of Debian packages: ``apt-get download`` and ``dpkg-deb -x``, shared by
the loaders whose data a Debian package ships (the speech recordings, cd-hit)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from zoo.errors import DataError


def run(cmd: list[str], cwd: str) -> None:
    """Runs ``cmd``; a failure is a :class:`DataError` with the end of its output."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise DataError(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[-400:]}")


def download(package: str, where: str) -> None:
    """``apt-get download``; when the package lists lack it (a fresh container) and we may,
    refresh them once with ``apt-get update`` and retry."""
    try:
        run(["apt-get", "download", package], cwd=where)
    except DataError:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            raise
        run(["apt-get", "update", "-qq"], cwd=where)
        run(["apt-get", "download", package], cwd=where)


def unpacked(package: str, where: str) -> Path:
    """Downloads ``package`` into ``where`` and unpacks it there; returns the unpacked root.

    Raises:
        DataError: ``apt-get`` or ``dpkg-deb`` fails, or no ``.deb`` file was written.
    """
    download(package, where)
    deb = next(Path(where).glob(f"{package}_*.deb"), None)
    if deb is None:
        raise DataError(f"apt-get download {package} wrote no .deb file")
    root = Path(where) / f"unpacked-{package}"
    run(["dpkg-deb", "-x", str(deb), str(root)], cwd=where)
    return root


def sounds_root() -> Path:
    """Where :func:`fetch` puts the recordings: ``$LSTM_ZOO_SOUNDS``, else
    ``$XDG_CACHE_HOME/lstm-zoo/asterisk`` (``~/.cache/lstm-zoo/asterisk``)."""
    if os.environ.get("LSTM_ZOO_SOUNDS"):
        return Path(os.environ["LSTM_ZOO_SOUNDS"])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "lstm-zoo" / "asterisk"
