"""Building the arm64 Debian root of :mod:`export.verification.arch` (about 2 minutes):
debootstrap's first stage, python3 unpacked, ``ldconfig``, and the aarch64 wheels of the
pinned runtimes installed by the host's pip. Nothing of the root runs here but ``ldconfig``
under emulation."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from zoo.errors import ExportError

MIRROR = "http://deb.debian.org/debian"
# Debian 12: its Python 3.11 has aarch64 wheels of every pinned runtime (ai-edge-litert
# 2.3 publishes cp310-cp313 manylinux aarch64 wheels)
SUITE = "bookworm"
VENV = "/opt/lstm-zoo"  # inside the root


def _tool(name: str) -> str | None:
    """A program's path, looked up in the system folders too (root's tools live in sbin,
    often outside a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def build_root(target: Path, pins: dict[str, str], mirror: str = MIRROR) -> dict:
    """Builds the root in ``target`` without running anything of it but ``ldconfig`` under
    emulation; the seconds of each stage.

    1. ``debootstrap --foreign`` (minbase, plus python3): downloads the packages and unpacks
       the required ones, merged /usr; its second stage, which configures every package
       under emulation (most of the 13-17 minutes a full debootstrap took), is not run:
       nothing here needs a configured package.
    2. The rest of its package list (python3 and its libraries) unpacked the way
       debootstrap unpacks (``dpkg-deb --fsys-tarfile | tar``, keeping /lib -> usr/lib).
    3. ``ldconfig`` in the root (emulated, a fraction of a second): the dynamic loader
       finds the libraries in /usr/lib/aarch64-linux-gnu through its cache.
    4. The aarch64 wheels of the pins (and what they need), downloaded by this Python's
       pip for the root's Python (``--platform``), installed with ``--target`` into a venv
       made by hand (its python a copy of the root's, a pyvenv.cfg, site-packages).
    """
    stages = {}
    t = time.monotonic()
    _run([_tool("debootstrap"), "--foreign", "--arch=arm64", "--variant=minbase",
          "--include=python3", SUITE, str(target), mirror], "debootstrap --foreign")
    stages["debootstrap_foreign"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    paths = dict(line.split(maxsplit=1) for line in
                 (target / "debootstrap/debpaths").read_text().splitlines() if line.strip())
    for package in (target / "debootstrap/base").read_text().split():
        _unpack(target / paths[package].strip().lstrip("/"), target)
    for deb in (target / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()  # unpacked: 40 MB the root does not need
    stages["unpack"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    _run([_tool("chroot"), str(target), "/sbin/ldconfig"], "ldconfig")
    python = _root_python(target)
    stages["ldconfig"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    _install_wheels(target, pins, python)
    stages["wheels"] = round(time.monotonic() - t, 1)
    return stages


def _unpack(deb: Path, target: Path) -> None:
    """A .deb's files into ``target``, as debootstrap extracts (no maintainer scripts);
    --keep-directory-symlink: a package's /lib/... goes through the merged /usr link."""
    data = subprocess.Popen([_tool("dpkg-deb"), "--fsys-tarfile", str(deb)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tar = subprocess.run([_tool("tar"), "--keep-directory-symlink", "-xf", "-", "-C",
                          str(target)], stdin=data.stdout, capture_output=True, text=True)
    data.stdout.close()
    err = data.stderr.read().decode(errors="replace")
    data.stderr.close()
    if data.wait() != 0 or tar.returncode != 0:
        raise ExportError(f"building the aarch64 root: unpacking {deb.name} failed: "
                          f"{(err + tar.stderr).strip()[-300:]}")


def _root_python(target: Path) -> str:
    """The root's Python version, ``"3.11"``, from its /usr/bin/python3 link."""
    link = os.readlink(target / "usr/bin/python3")  # python3.11
    return link.removeprefix("python")


# manylinux tags the root's glibc (Debian 12: 2.36) takes, for pip download --platform
PLATFORMS = ["manylinux2014_aarch64", *(f"manylinux_2_{v}_aarch64" for v in range(17, 37))]


def _install_wheels(target: Path, pins: dict[str, str], python: str) -> None:
    import sys

    venv = target / VENV.lstrip("/")
    site = venv / f"lib/python{python}/site-packages"
    (venv / "bin").mkdir(parents=True)
    site.mkdir(parents=True)
    # a copy, not a link to /usr/bin/python3: a link would be resolved by the host kernel
    # to the host's own python when qemu -L starts it
    shutil.copy2(target / f"usr/bin/python{python}", venv / "bin/python3")
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = false\n"
                                     f"version = {python}\n")
    platform = [a for tag in PLATFORMS for a in ("--platform", tag)]
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "--only-binary=:all:", "--target", str(site), "--python-version", python,
          "--implementation", "cp", *platform, *(f"{k}=={v}" for k, v in pins.items())],
         "pip install --platform (the aarch64 wheels)")


def _run(cmd: list[str], what: str, env: dict | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-6:])
        raise ExportError(f"building the aarch64 root: {what} failed (exit "
                          f"{done.returncode}):\n{tail}")
