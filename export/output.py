"""An export's output folder: checked before any work, claimed by one export at a time,
written as a hidden sibling, and renamed into place only when complete.

:class:`OutDir` is the claim. On entering, it checks the path (:func:`check_out_dir`),
takes an exclusive ``flock`` on ``.NAME.lock`` beside it (a second export to the same path
gets an :class:`~zoo.errors.ExportError` at once, not a clash at the final rename), and
removes the partial folders of earlier exports to that path that were killed. While it is
held, SIGTERM stops the export as Ctrl-C does (its partial folder removed); on leaving,
whatever was not published is removed, the lock released.

A partial folder is ``.NAME.partial-PID-TOKEN``. One is stale when two things prove it:
this export holds the lock (no live export to this path does) and process ``PID`` no
longer exists (a reused PID only delays the clean-up to a later export). A partial
folder of another form (an older lstm-zoo's) is left alone.

A full disk (ENOSPC, or EDQUOT: a quota) while the bundle is written is an
:class:`~zoo.errors.ExportError` naming the file that could not be written
(:func:`writing`), or, where the write happened inside a library (TensorFlow's SavedModel
in the temporary folder, h5py), the file or folder its message names; either way the
partial folder is removed, so nothing that looks complete is left.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from zoo.errors import ExportError

# Kernel pseudo-filesystems: a bundle written there is not a file on any disk (mkdtemp
# under /proc fails with FileNotFoundError, under /sys with PermissionError, as root).
PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"))


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# How libraries that wrap the write (h5py, TensorFlow's file system) word a full disk.
_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|errno = 28\b")


def is_disk_full(error: BaseException) -> bool:
    """``error`` is a full disk: an OSError with errno ENOSPC or EDQUOT, or another
    library's error (h5py's RuntimeError, a TensorFlow error) whose message says so."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno in DISK_FULL
    return bool(_DISK_FULL_TEXT.search(str(error)))


def disk_full_error(path: str | Path, error: BaseException) -> ExportError:
    """The one-line error for a full disk while writing ``path``: names it (a file of the
    partial folder by its place in the bundle), the errno and the folder to free space in
    (``TMPDIR``'s when ``path`` is in the temporary folder)."""
    quota = (error.errno == errno.EDQUOT if isinstance(error, OSError) and error.errno
             else "quota" in str(error))
    why = "disk quota exceeded (EDQUOT)" if quota else "no space left on device (ENOSPC)"
    path = Path(path)
    shown = bundle_path(path)
    temporary = Path(tempfile.gettempdir()).absolute()
    if shown == path and path.absolute().is_relative_to(temporary):
        hint = f"free space in the temporary folder {temporary} or point TMPDIR elsewhere"
    else:
        hint = "free space there or choose another --out"
    made = ExportError(f"cannot write {shown}: {why}; {hint}; no bundle was written")
    made.disk_full = True
    return made


@contextlib.contextmanager
def writing(path: str | Path):
    """Turns a full disk while writing ``path`` into :func:`disk_full_error`."""
    try:
        yield
    except Exception as e:
        if is_disk_full(e):
            raise disk_full_error(path, e) from None
        raise


def bundle_path(path: Path) -> Path:
    """The path a file being written in an export's partial folder will have in the bundle
    (``d/.b.partial-12-ab/.x.h5.tmp/x.h5`` -> ``d/b/x.h5``); any other path as it is."""
    parts = path.parts
    for i, part in enumerate(parts):
        match = re.fullmatch(r"\.(.+)\.partial-\d+-[0-9a-f]+", part)
        if match:
            rest = [p for p in parts[i + 1:] if not p.startswith(".")]
            return Path(*parts[:i], match[1], *rest)
    return path


def _named_in(error: BaseException, default: Path) -> Path:
    """The file a library's full-disk error names (h5py: ``filename = '...'``; an OSError's
    ``filename``), else ``default``."""
    if isinstance(error, OSError) and error.filename:
        return Path(os.fsdecode(error.filename))
    match = re.search(r"filename = '([^']+)'|(/[^\s:;,'\"]+)", str(error))
    return Path(match[1] or match[2]) if match else default


class Terminated(KeyboardInterrupt):
    """SIGTERM during an export: raised like Ctrl-C's KeyboardInterrupt, so that the same
    clean-up runs (``signum`` says which signal; the CLI exits 128 + it)."""

    signum = signal.SIGTERM


def check_out_dir(out: Path) -> None:
    """Refuses an output path that exists (a folder, even empty, a file, or a symlink,
    dangling or not), lies under /proc or /sys, or whose nearest existing ancestor is not
    a writable folder (missing parents are created when the export claims the path).

    Raises:
        ExportError: says which of these and names the path.

    Example:
        >>> check_out_dir(Path("/proc/x"))
        Traceback (most recent call last):
        ...
        zoo.errors.ExportError: cannot write a bundle to /proc/x: /proc is a kernel ...
    """
    if out.is_symlink():
        raise ExportError(f"output directory {out} is a symlink (to {os.readlink(out)}); "
                          "give a new path, not a link")
    if out.exists():
        raise ExportError(f"output directory {out} already exists; choose a new path or "
                          "remove it")
    ancestor = out.absolute().parent
    while not ancestor.exists() and not ancestor.is_symlink():
        ancestor = ancestor.parent
    real = ancestor.resolve()
    for pseudo in PSEUDO_FILESYSTEMS:
        if real == pseudo or real.is_relative_to(pseudo):
            raise ExportError(f"cannot write a bundle to {out}: {pseudo} is a kernel "
                              "pseudo-filesystem")
    if not ancestor.is_dir():
        raise ExportError(f"cannot create {out}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write into {ancestor} (permission denied)")


class OutDir:
    """The claim of one export on its output path (a context manager; see the module).

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "bundle"
        >>> with OutDir(out) as claim:
        ...     partial = claim.partial()
        ...     _ = (partial / "manifest.json").write_text("{}")
        ...     bundle = claim.publish(partial)
        >>> sorted(p.name for p in out.parent.iterdir())
        ['bundle']
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        check_out_dir(self.out)
        self._lock = self.out.absolute().parent / f".{self.out.name}.lock"
        self._fd: int | None = None
        self._made: list[Path] = []  # parents this claim created
        self._partials: list[Path] = []
        self._published = False
        self._sigterm = None

    def __enter__(self) -> OutDir:
        self._make_parents()
        try:
            self._fd = _flock(self._lock)
            if self._fd is None:
                raise ExportError(f"another export is writing {self.out} now (it holds "
                                  f"{self._lock}); wait for it or choose another path")
            check_out_dir(self.out)  # an export that finished while this one waited
            self._remove_stale()
        except BaseException:
            self._release()
            raise
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
            # only where nothing else handles SIGTERM: a server's own handler is kept
            self._sigterm = signal.signal(signal.SIGTERM, _terminate)
        return self

    def __exit__(self, kind, error, trace) -> None:
        self._release()
        if isinstance(error, Exception) and not getattr(error, "disk_full", False) \
                and is_disk_full(error):
            # a write that no writing() wrapped: a library's, in the partial folder or the
            # temporary folder (also one a converter already turned into an ExportError)
            raise disk_full_error(_named_in(error, self.out), error) from None

    def partial(self) -> Path:
        """A new hidden sibling folder to write the bundle in, with the user's umask
        (``os.mkdir``; ``tempfile.mkdtemp`` makes 0700)."""
        while True:
            path = self._lock.with_name(f".{self.out.name}.partial-{os.getpid()}-"
                                        f"{secrets.token_hex(4)}")
            try:
                os.mkdir(path, 0o777)
            except FileExistsError:
                continue
            except OSError as e:
                raise ExportError(f"cannot create {path}: {e.strerror}") from None
            self._partials.append(path)
            return path

    def publish(self, partial: Path, *, failed: bool = False) -> Path:
        """Renames ``partial`` to the output path (or, ``failed``, to ``NAME.failed``,
        replacing an earlier one) and returns it."""
        target = self.out.with_name(self.out.name + ".failed") if failed else self.out
        if failed:
            if target.is_symlink():
                target.unlink()
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists() or target.is_symlink():
            # made by something other than an lstm-zoo export (those take the lock)
            raise ExportError(f"{target} appeared while exporting to it; nothing was written")
        try:
            os.rename(partial, target)
        except OSError as e:
            raise ExportError(f"cannot rename {partial.name} to {target}: {e.strerror}") \
                from None
        self._partials.remove(partial)
        self._published = self._published or not failed
        return target

    def _make_parents(self) -> None:
        missing = []
        parent = self.out.absolute().parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            except OSError as e:
                self._remove_parents()
                raise ExportError(f"cannot create {folder}: {e.strerror}") from None
            self._made.append(folder)

    def _remove_stale(self) -> None:
        pattern = re.compile(rf"\.{re.escape(self.out.name)}\.partial-(\d+)-[0-9a-f]+")
        for path in self._lock.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_dir() and not path.is_symlink() \
                    and not _alive(int(match[1])):
                shutil.rmtree(path, ignore_errors=True)

    def _release(self) -> None:
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None
        for path in self._partials:
            shutil.rmtree(path, ignore_errors=True)
        self._partials = []
        if self._fd is not None:
            self._lock.unlink(missing_ok=True)  # while locked: see _flock
            os.close(self._fd)
            self._fd = None
        if not self._published:
            self._remove_parents()

    def _remove_parents(self) -> None:
        for folder in reversed(self._made):
            try:
                folder.rmdir()  # only if empty: another export may have written there
            except OSError:
                break
        self._made = []


def _flock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive flock, or ``None`` when another
    process holds it. The holder unlinks the file before closing it, so a lock taken on a
    file that was unlinked meanwhile is retried on the new one."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise ExportError(f"cannot create {path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process: never proven dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _terminate(signum, frame):
    raise Terminated()
