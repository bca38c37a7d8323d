"""A bundle's artifacts on aarch64 kernels: an arm64 Debian root run under qemu-user.

Devices run aarch64, where LiteRT and ONNX Runtime take other code paths than on x86
(NEON, other int8 and hybrid kernels, other rounding). :func:`ensure_root` builds once an
arm64 Debian root (debootstrap's first stage, minbase, and python3 unpacked; no package
configured under emulation: :func:`build_root`, about 2 minutes) with its own Python and
the aarch64 wheels of the numpy, onnxruntime and ai-edge-litert versions this Python has,
cached under
``~/.cache/lstm-zoo/aarch64-root`` (``LSTM_ZOO_AARCH64_ROOT`` names another folder).
:class:`EmulatedSession` runs artifacts there: one emulated process per bundle (starting one
costs seconds under emulation), asked for a whole batch of feeds at a time; the kernels are
aarch64's, emulated instruction by instruction, so the numbers are the device's and the
times are not.

The root's programs run through ``chroot`` with qemu-aarch64-static registered with
binfmt_misc (registered here, as root, from the qemu-user-static package's own entry when
it is not): so building and running both need root, and building the network (Debian's
mirror, and PyPI through this Python's pip). ``qemu-aarch64-static -L ROOT``, which would
need neither, crashes importing onnxruntime 1.31 (SIGSEGV, measured with qemu 7.2): it
shows the runtimes the host's /proc and /sys, whose x86 CPU lists cpuinfo cannot take
(mounting them into the chroot crashes it the same way). Without them cpuinfo finds no CPU
list, and ONNX Runtime reads the CPU's features from the kernel's hwcaps instead (it warns
so on stderr).

The emulated CPU is a Neoverse N1 (``LSTM_ZOO_AARCH64_CPU`` names another of qemu's:
``cortex-a53``, ``cortex-a72``, ``cortex-a76``, ``max``...): Armv8.2 with the dot-product
instructions, the class of a Cortex-A76 (phones' big cores, Raspberry Pi 5). qemu's
default, ``max``, adds SVE, on which ONNX Runtime's fp32 LSTM took 6.1 s a 100-step
sample under emulation against 0.36 s on the N1 (bilstm_activity), for outputs within
3e-11 of each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from export.output import writing
from export.verification.arch_root import MIRROR, SUITE, VENV, _tool, build_root
from zoo.errors import ExportError, HostSetupError

ARCHES = ("aarch64",)
ROOT_ENV = "LSTM_ZOO_AARCH64_ROOT"
MIRROR_ENV = "LSTM_ZOO_DEBIAN_MIRROR"
CPU_ENV = "LSTM_ZOO_AARCH64_CPU"
CPU = "neoverse-n1"
PINNED = ("numpy", "onnxruntime", "ai-edge-litert")
QEMU = "qemu-aarch64-static"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")  # qemu-user-static's own
MARKER = "lstm-zoo-root.json"
SERVER = Path(__file__).with_name("arch_server.py")
INSTALL = "apt-get install -y qemu-user-static debootstrap"


def root_path() -> Path:
    """Where the aarch64 root lives: ``$LSTM_ZOO_AARCH64_ROOT``, or ``aarch64-root`` in
    lstm-zoo's cache (``$LSTM_ZOO_CACHE``, default ``~/.cache/lstm-zoo``)."""
    from zoo.weights import cache_dir

    given = os.environ.get(ROOT_ENV)
    return Path(given) if given else cache_dir() / "aarch64-root"


def pinned_versions() -> dict[str, str]:
    """The versions of :data:`PINNED` installed beside lstm-zoo: the root gets the same."""
    out = {}
    for name in PINNED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            raise HostSetupError(f"{name} is not installed in this Python; the aarch64 root "
                                 "pins the versions installed here (pip install lstm-zoo)"
                                 ) from None
    return out


def root_state(root: Path | None = None) -> dict | None:
    """The recorded versions of a built root, or ``None`` when there is none (or another
    set of versions: a root built for other pins is rebuilt)."""
    root = root or root_path()
    try:
        state = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("versions") == pinned_versions() else None


def qemu_binary() -> str:
    """The qemu-user binary, or a :class:`HostSetupError` saying how to install it."""
    found = _tool(QEMU)
    if found is None:
        raise HostSetupError(f"{QEMU} not found: aarch64 verification runs the artifacts "
                             f"under qemu-user emulation; on Debian or Ubuntu, as root: {INSTALL}")
    return found


def preflight() -> None:
    """What running (and, with no root built, building) lacks, said before any work:
    qemu, root, binfmt_misc; debootstrap and the network.

    Raises:
        HostSetupError: the first thing missing, and how to get it.
    """
    _check_can_run()
    if root_state() is None:
        _check_can_build()


def ensure_root(progress=None) -> Path:
    """The aarch64 root, built on first use (:func:`build_root`: 110 s measured on 2
    shared cores, against 998 s for a full debootstrap; then cached).

    Raises:
        HostSetupError: what the build lacks (qemu, debootstrap, root, binfmt_misc, the
            network), and how to get it.
        ExportError: a build step failed (its last output lines).
    """
    root = root_path()
    _check_can_run()
    if root_state(root) is not None:
        return root
    say = progress.say if progress is not None else (lambda _msg: None)
    pins = pinned_versions()
    _check_can_build()
    if root.exists():
        say(f"rebuilding the aarch64 root at {root} (its versions differ from {pins})")
    partial = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    mirror = os.environ.get(MIRROR_ENV, MIRROR)
    try:
        say(f"building the aarch64 root (Debian {SUITE} arm64 from {mirror}; once, cached "
            f"at {root})")
        stages = build_root(partial, pins, mirror)
        versions = _server_versions(partial)
        stages["check"] = round(time.monotonic() - start - sum(stages.values()), 1)
        (partial / MARKER).write_text(json.dumps(
            {"versions": pins, "runtime": versions, "suite": SUITE,
             "build_seconds": round(time.monotonic() - start, 1), "stages": stages},
            indent=2) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        os.replace(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    say(f"aarch64 root built in {time.monotonic() - start:.0f} s")
    return root


def _check_can_run() -> None:
    qemu_binary()
    if os.geteuid() != 0:
        raise HostSetupError("verifying on aarch64 needs root: the emulated runtimes run in "
                             "a chroot (`sudo lstm-zoo verify DIR --arch aarch64`)")
    ensure_binfmt()


def _check_can_build() -> None:
    _check_can_run()
    if _tool("debootstrap") is None:
        raise HostSetupError(f"debootstrap not found: building the aarch64 root (once) needs "
                             f"it; as root: {INSTALL}")
    host = urlparse(os.environ.get(MIRROR_ENV, MIRROR)).hostname or ""
    try:
        socket.create_connection((host, 80), timeout=10).close()
    except OSError as e:
        raise HostSetupError(f"cannot reach {host} ({e}): building the aarch64 root (once) "
                             f"downloads Debian packages and wheels; set {MIRROR_ENV} to a "
                             "reachable Debian mirror, or build where the network is") from None


def ensure_binfmt() -> None:
    """qemu-aarch64 registered with binfmt_misc (so chroot runs the root's arm64 programs),
    registered here from qemu-user-static's own entry when it is not.

    Raises:
        HostSetupError: it is not, and it cannot be (not root, no entry, no binfmt_misc).
    """
    entry = BINFMT / "qemu-aarch64"
    if entry.is_file() and entry.read_text().startswith("enabled"):
        return
    how = (f"mount -t binfmt_misc binfmt_misc {BINFMT} && cat {BINFMT_ENTRY} > "
           f"{BINFMT}/register")
    if os.geteuid() != 0:
        raise HostSetupError(f"qemu-aarch64 is not registered with binfmt_misc; as root: {how}")
    if not BINFMT_ENTRY.is_file():
        raise HostSetupError(f"{BINFMT_ENTRY} is missing (qemu-user-static installs it): "
                             f"{INSTALL}")
    try:
        if not (BINFMT / "register").exists():
            subprocess.run([_tool("mount"), "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                           check=True, capture_output=True)
        (BINFMT / "register").write_text(BINFMT_ENTRY.read_text().strip() + "\n")
    except subprocess.CalledProcessError as e:
        why = e.stderr.decode(errors="replace").strip()
        raise HostSetupError(f"cannot mount binfmt_misc ({why}); a container may need it "
                             f"done on its host: {how}") from None
    except OSError as e:
        raise HostSetupError(f"cannot register qemu-aarch64 with binfmt_misc ({e}); a "
                             f"container may need it done on its host: {how}") from None


def _server_versions(root: Path) -> dict:
    session = EmulatedSession(root)
    try:
        return session.versions
    finally:
        session.close()


class EmulatedSession:
    """One emulated Python in ``root`` running artifacts on request (export.verification.
    arch_server): :meth:`run` sends a batch of feeds through a file in a folder inside
    the root and reads the outputs back."""

    def __init__(self, root: Path):
        self.root = root
        self.work = Path(tempfile.mkdtemp(prefix="lstm-zoo-", dir=root / "tmp"))
        shutil.copyfile(SERVER, self.work / "server.py")
        self._calls = 0
        self._artifacts: dict[Path, Path] = {}
        # qemu-user reads QEMU_CPU (the chroot's programs start through binfmt_misc)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
               "QEMU_CPU": os.environ.get(CPU_ENV, CPU)}
        # stderr to a file: the runtimes' warnings would fill a pipe nobody reads
        self.log = self.work / "stderr.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [_tool("chroot"), str(root), f"{VENV}/bin/python3", "-I",
                 self._inside(self.work / "server.py")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        self.versions = {**self._answer("starting the emulated runtime")["versions"],
                         "cpu": f"{env['QEMU_CPU']} (qemu-user)"}

    def _inside(self, path: Path) -> str:
        """``path`` as the chrooted process sees it."""
        return "/" + str(path.relative_to(self.root))

    def _answer(self, what: str) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            err = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ExportError(f"aarch64: {what}: the emulated Python exited "
                              f"({self.process.returncode}): {' | '.join(err)}")
        answer = json.loads(line)
        if "error" in answer:
            raise ExportError(f"aarch64: {what}: {answer['error']}")
        return answer

    def artifact(self, path: Path) -> Path:
        """``path`` copied into the root (once): the emulated runtime reads it there."""
        if path not in self._artifacts:
            target = self.work / f"artifact{len(self._artifacts)}{path.suffix}"
            shutil.copyfile(path, target)
            self._artifacts[path] = target
        return self._artifacts[path]

    def run(self, fmt: str, path: Path, feeds: list[dict]) -> list[dict]:
        """Every feed through the artifact at ``path`` on aarch64; the outputs, in order."""
        self._calls += 1
        request = self.work / f"feeds{self._calls}.npz"
        out = self.work / f"outputs{self._calls}.npz"
        np.savez(request, **{f"{i}/{k}": v for i, f in enumerate(feeds) for k, v in f.items()})
        self.process.stdin.write(json.dumps(
            {"artifact": self._inside(self.artifact(path)), "format": fmt,
             "feeds": self._inside(request), "count": len(feeds),
             "out": self._inside(out)}) + "\n")
        self.process.stdin.flush()
        self._answer(f"running {path.name}")
        results: list[dict] = [{} for _ in feeds]
        with np.load(out) as data:
            for name in data.files:
                i, _, output = name.partition("/")
                results[int(i)][output] = data[name]
        request.unlink()
        out.unlink()
        return results

    def reset(self) -> None:
        """Lets go of the artifacts run so far (the process, started once, is kept for the
        next bundle's: :func:`shared_emulation`)."""
        self.process.stdin.write(json.dumps({"reset": True}) + "\n")
        self.process.stdin.flush()
        self._answer("resetting")
        for path in self._artifacts.values():
            path.unlink(missing_ok=True)
        self._artifacts.clear()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        shutil.rmtree(self.work, ignore_errors=True)


class _Recording:
    """A host runner that keeps each distinct feed it is called with and its output."""

    def __init__(self, runner):
        self.graph, self.seen = runner, {}

    def __call__(self, feeds):
        out = self.graph(feeds)
        key = _feed_key(feeds)
        if key not in self.seen:
            self.seen[key] = ({k: np.array(v) for k, v in feeds.items()}, out)
        return out


class EmulatedRunner:
    """An artifact on aarch64, with the Runner interface: answers a feed from the outputs
    computed in advance for it (:meth:`prefetch`, one batch), and a feed it has not seen
    (a decoder fed its own aarch64 outputs) by asking the emulated process for that one.
    Keeps every output's difference from the host's run of the same artifact on the same
    feed (``vs_host``)."""

    backend_suffix = "@aarch64"

    def __init__(self, session: EmulatedSession, fmt: str, path: Path, host_runner):
        from export.verification.runtime import FeedCheck

        self.session, self.fmt, self.path, self.host = session, fmt, path, host_runner
        self.backend = host_runner.backend
        # the input signature: a step-graph task reads its state widths from it
        # (zoo.tasks.common._state_widths); without it char_lm, music_lstm and kws_lstm
        # failed after their emulated feeds had run
        self.inputs = host_runner.inputs
        self.input_names = host_runner.input_names
        self.output_names = host_runner.output_names
        self._check = FeedCheck(host_runner.inputs, str(path))
        self._table: dict[bytes, dict] = {}
        self.vs_host: dict = {}
        self.one_by_one = 0

    def prefetch(self, recorded: dict[bytes, tuple[dict, dict]]) -> None:
        """Runs every recorded ``{key: (feed, host output)}`` in one request."""
        keys = [k for k in recorded if k not in self._table]
        if not keys:
            return
        outs = self.session.run(self.fmt, self.path,
                                [self._check(recorded[k][0]) for k in keys])
        for key, out in zip(keys, outs, strict=True):
            self._keep(key, out, recorded[key][1])

    def _keep(self, key: bytes, out: dict, host_out: dict) -> None:
        from export.verification.verify import diff_stats

        diff_stats(host_out, out, self.vs_host)
        self._table[key] = out

    def __call__(self, feeds):
        key = _feed_key(feeds)
        if key not in self._table:
            self.one_by_one += 1
            out = self.session.run(self.fmt, self.path, [self._check(feeds)])[0]
            self._keep(key, out, self.host(feeds))
        return self._table[key]


def _feed_key(feeds) -> bytes:
    from export.verification.verify import _feed_key as key

    return key(feeds)


def record_feeds(spec, task, reference, host_runners: dict) -> dict[str, dict]:
    """Every distinct feed the host runners get in a parity check (the task pass on the
    test split, the reference's recorded and random feeds, the latency feed), with the
    host's output: ``{graph: {key: (feed, output)}}``."""
    recording = {g: _Recording(r) for g, r in host_runners.items()}
    task.predict(recording, reference.test_inputs, spec.meta)
    for g, rec in recording.items():
        for feed in [*reference.feeds.get(g, ()), reference.latency_feeds.get(g)]:
            if feed is not None:
                rec(feed)
    return {g: rec.seen for g, rec in recording.items()}


_shared: dict[Path, list[EmulatedSession]] | None = None  # see shared_emulation


@contextlib.contextmanager
def shared_emulation():
    """Within it, verifications on aarch64 share their emulated processes: started by the
    first that needs them, reset between bundles, closed at its end. Starting one costs
    about 14 s under emulation (Python, numpy and both runtimes imported), per bundle
    without this; a matrix over every shipped model keeps them."""
    global _shared
    if _shared is not None:  # nested: the outer one's
        yield
        return
    _shared = {}
    try:
        yield
    finally:
        pool, _shared = _shared, None
        for sessions in pool.values():
            for session in sessions:
                session.close()


class Emulation:
    """Emulated processes in a root, one per CPU core (at most one per artifact group),
    shared by the groups' runners: :meth:`runners` makes a group's, :meth:`prefetch` runs
    every group's recorded feeds, the processes side by side. Within
    :func:`shared_emulation` the processes are the pool's, and are reset, not closed."""

    def __init__(self, root: Path, groups: int):
        wanted = max(1, min(groups, os.cpu_count() or 1))
        self._pool = None if _shared is None else _shared.setdefault(root, [])
        self.sessions: list[EmulatedSession] = list((self._pool or [])[:wanted])
        try:
            while len(self.sessions) < wanted:
                self.sessions.append(EmulatedSession(root))
                if self._pool is not None:
                    self._pool.append(self.sessions[-1])
        except BaseException:
            self.close()
            raise
        self.versions = self.sessions[0].versions
        self._planned: list[tuple[EmulatedRunner, dict]] = []
        self._groups = 0

    def runners(self, fmt: str, paths: dict[str, Path], host_runners: dict, spec, task,
                reference) -> dict[str, EmulatedRunner]:
        """A group's runners, its feeds recorded from the host runners for :meth:`prefetch`."""
        # by group, not by graph: with two graphs a group (an encoder and its decoder
        # step), counting graphs put every group of a model on the first process
        session = self.sessions[self._groups % len(self.sessions)]
        self._groups += 1
        runners = {g: EmulatedRunner(session, fmt, paths[g], r) for g, r in host_runners.items()}
        for g, seen in record_feeds(spec, task, reference, host_runners).items():
            self._planned.append((runners[g], seen))
        return runners

    def prefetch(self) -> int:
        """Runs every planned group's feeds, each process its share in turn; the count."""
        from concurrent.futures import ThreadPoolExecutor

        def work(session):
            for runner, seen in self._planned:
                if runner.session is session:
                    runner.prefetch(seen)

        with ThreadPoolExecutor(len(self.sessions)) as pool:
            list(pool.map(work, self.sessions))  # list(): a worker's error is raised here
        return sum(len(seen) for _, seen in self._planned)

    def close(self) -> None:
        for session in self.sessions:
            if self._pool is None:
                session.close()
                continue
            try:
                session.reset()
            except (ExportError, OSError):  # a process that died is not kept
                session.close()
                self._pool.remove(session)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_emulated(spec, task, reference, test_data, emulated: dict[str, EmulatedRunner],
                   precision: str, metric_drop=None, progress=None) -> dict:
    """Parity of one (format, precision) group on aarch64, judged as the host's run is
    (:func:`export.verification.verify.check_backend`, the same limits), plus each
    output's max |diff| from the host's run of the same artifact (``vs_host``).

    The runners answer the task pass and the reference feeds from their prefetched
    outputs (:meth:`Emulation.prefetch`); a feed the aarch64 outputs lead to, and the
    host's did not (a decoder fed its own outputs), is run on its own.
    """
    from export.verification.verify import check_backend, finish_stats

    result = check_backend(spec, task, reference, test_data, emulated, precision, progress,
                           metric_drop)
    vs_host = {g: finish_stats(r.vs_host) for g, r in emulated.items()}
    result.update(
        latency_ms=None, per_sample_ms=None,  # emulated: the times are not the device's
        tensors_vs_host=vs_host,
        max_abs_vs_host=max(s["max_abs"] for g in vs_host.values() for s in g.values()),
        emulated_feeds=sum(len(r._table) for r in emulated.values()),
        one_by_one=sum(r.one_by_one for r in emulated.values()))
    return result


def record_results(path: Path, arch: str, rows: list[dict], versions: dict, progress) -> None:
    """Puts ``arch``'s rows into a bundle's parity.json (which the manifest does not list),
    replacing those of an earlier run. The file is a stranger's like the rest of the
    bundle: one that is not a regular file of at most the manifest's bound, or not a JSON
    object, is left as it is (said), and the new file replaces it, never a link's target."""
    from export.verification.manifest import MAX_MANIFEST_BYTES

    try:
        if path.is_symlink() or not path.is_file() or \
                path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValueError("not a regular file of at most "
                             f"{MAX_MANIFEST_BYTES >> 20} MiB")
        parity = json.loads(path.read_text())
        if not isinstance(parity, dict) or not isinstance(parity.get("arch_results", []),
                                                          list):
            raise ValueError("not the object export writes")
        parity["arch_results"] = [r for r in parity.get("arch_results", [])
                                  if not isinstance(r, dict) or r.get("arch") != arch] + rows
        runtimes = parity.get("arch_runtimes")
        parity["arch_runtimes"] = {**(runtimes if isinstance(runtimes, dict) else {}),
                                   arch: versions}
        tmp = path.with_name(f".{path.name}.tmp")
        with writing(tmp):
            tmp.write_text(json.dumps(parity, indent=2, default=str) + "\n")
        tmp.replace(path)
    except (OSError, ValueError) as e:
        progress.say(f"{path} not updated with the {arch} results ({e})")


def main() -> int:
    """``python -m export.verification.arch``: the aarch64 root built (or found cached),
    its path and build seconds printed; .ci/run builds it so before the test suite."""
    import sys

    class Say:
        def say(self, msg):
            print(msg, file=sys.stderr, flush=True)

    try:
        root = ensure_root(Say())
    except (HostSetupError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    state = root_state(root) or {}
    print(json.dumps({"root": str(root), "build_seconds": state.get("build_seconds"),
                      "stages": state.get("stages"), "runtime": state.get("runtime")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
