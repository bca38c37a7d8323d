"""Verification on aarch64 kernels (export.verification.arch): what is missing is said, with
how to get it, and where an aarch64 root is cached (or can be built), a tiny bundle runs
there within its x86 tolerances."""

from __future__ import annotations

import io
import os
import shutil
import socket

import pytest
from conftest import aarch64_root_or_skip

from export.verification import arch
from zoo.errors import HostSetupError, UnsupportedError


def _no_qemu(monkeypatch):
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, **kw: None if name == arch.QEMU
                        else which(name, **kw))


def test_no_qemu_is_said_before_any_work(monkeypatch, tmp_path, capsys):
    from export.cli import main
    from export.pipeline import verify_bundle

    _no_qemu(monkeypatch)
    with pytest.raises(HostSetupError, match="apt-get install -y qemu-user-static"):
        verify_bundle(tmp_path / "not-a-bundle", arch="aarch64")  # qemu first: no bundle read
    assert main(["verify", str(tmp_path), "--arch", "aarch64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: qemu-aarch64-static not found"), err


def test_unknown_arch_is_refused(tmp_path):
    from export.pipeline import verify_bundle

    with pytest.raises(UnsupportedError, match="aarch64"):
        verify_bundle(tmp_path, arch="riscv64")


def test_not_root(monkeypatch, tmp_path):
    monkeypatch.setenv(arch.ROOT_ENV, str(tmp_path / "root"))
    monkeypatch.setattr(shutil, "which", lambda name, **kw: f"/usr/bin/{name}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HostSetupError, match=r"needs root: .* chroot \(`sudo lstm-zoo"):
        arch.ensure_root()
    from export.pipeline import verify_bundle

    with pytest.raises(HostSetupError, match="needs root"):  # said before the bundle is read
        verify_bundle(tmp_path / "not-a-bundle", arch="aarch64")


def test_building_needs_debootstrap(monkeypatch, tmp_path):
    monkeypatch.setenv(arch.ROOT_ENV, str(tmp_path / "root"))
    monkeypatch.setattr(shutil, "which", lambda name, **kw: None if name == "debootstrap"
                        else f"/usr/bin/{name}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(arch, "ensure_binfmt", lambda: None)
    with pytest.raises(HostSetupError, match="debootstrap not found.*apt-get install"):
        arch.ensure_root()


def test_unregistered_binfmt_says_the_commands(monkeypatch, tmp_path):
    monkeypatch.setattr(arch, "BINFMT", tmp_path)  # no qemu-aarch64 entry there
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HostSetupError, match=r"not registered with binfmt_misc; as root: "
                                             r"mount -t binfmt_misc .* > .*/register"):
        arch.ensure_binfmt()


def test_first_build_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv(arch.ROOT_ENV, str(tmp_path / "root"))
    monkeypatch.setattr(shutil, "which", lambda name, **kw: f"/usr/bin/{name}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(arch, "ensure_binfmt", lambda: None)

    def refused(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refused)
    with pytest.raises(HostSetupError, match="cannot reach deb.debian.org .*"
                                             + arch.MIRROR_ENV):
        arch.ensure_root()
    assert not (tmp_path / "root").exists()


def test_a_root_for_other_versions_is_not_used(monkeypatch, tmp_path):
    import json

    monkeypatch.setenv(arch.ROOT_ENV, str(tmp_path))
    (tmp_path / arch.MARKER).write_text(json.dumps({"versions": {"numpy": "1.0"}}))
    assert arch.root_state() is None
    (tmp_path / arch.MARKER).write_text(json.dumps({"versions": arch.pinned_versions()}))
    assert arch.root_state() is not None


def test_the_table_shows_emulated_rows():
    from export.cli import print_table

    row = {"format": "tflite", "precision": "fp32", "backend": "litert", "size_bytes": 2048,
           "tensor_max_abs": 2e-7, "metrics": {"accuracy": 1.0}, "per_sample_ms": 0.5,
           "passed": True, "checks": [{"check": "tensor max_abs", "value": 2e-7,
                                       "limit": 1e-5, "passed": True}]}
    parity = {"reference": {"metrics": {"accuracy": 1.0}}, "results": [row],
              "arch_results": [{**row, "arch": "aarch64", "per_sample_ms": None,
                                "max_abs_vs_host": 1.2e-7, "emulated_feeds": 56}]}
    out = io.StringIO()
    print_table(parity, out)
    lines = out.getvalue().splitlines()
    assert lines[3].split()[:3] == ["tflite", "fp32", "litert@aarch64"]
    assert "emulated" in lines[3] and lines[3].endswith("PASS")
    assert "from the" in lines[4] and "1.20e-07 (56 feeds)" in lines[4]


def test_an_emulated_runner_has_the_host_runners_signature(tmp_path):
    """A step-graph task (char_lm, kws_lstm) reads its state inputs' widths from a runner's
    input signature: the emulated runner has the host runner's."""
    from zoo.tasks.common import _state_widths

    class Host:
        backend, input_names, output_names = "onnx", ("frame", "h_0", "c_0"), ("probs",)
        inputs = [{"name": "frame", "shape": [None, 4], "dtype": "float32"},
                  {"name": "h_0", "shape": [None, 8], "dtype": "float32"},
                  {"name": "c_0", "shape": [None, 8], "dtype": "float32"}]

    runner = arch.EmulatedRunner(None, "onnx", tmp_path / "step.onnx", Host())
    assert _state_widths(runner) == {"h_0": 8, "c_0": 8}


def test_tiny_bundle_on_aarch64(tmp_path, monkeypatch):
    """A tiny BiLSTM (random weights), fp32 both formats, on 8 test samples: every feed the
    x86 run had runs on aarch64 in one request per artifact, within the fp32 tolerance of
    Keras, and close to the x86 run of the same artifact."""
    # outside the worker's session-wide sharing (conftest's aarch64_emulation, which the
    # parity matrix's aarch64 cells open first on this worker in a full run): this test
    # checks that its own shared_emulation keeps its processes, then closes them
    monkeypatch.setattr(arch, "_shared", None)
    import json

    from export import export_model
    from export.pipeline import verify_bundle

    aarch64_root_or_skip()
    bundle = tmp_path / "b"
    export_model("bilstm_activity_tiny", bundle, weights=None, precisions=("fp32",), limit=8)
    report = verify_bundle(bundle, limit=8, arch="aarch64")
    assert report["passed"], report["failures"]
    rows = report["arch_results"]
    assert {(r["format"], r["arch"]) for r in rows} == {("tflite", "aarch64"),
                                                        ("onnx", "aarch64")}
    for r in rows:
        assert r["one_by_one"] == 0  # a classifier's feeds do not depend on its outputs
        assert r["max_abs_vs_host"] < 1e-5 and r["per_sample_ms"] is None
    assert report["arch_runtimes"]["aarch64"]["machine"] == "aarch64"
    saved = json.loads((bundle / "parity.json").read_text())
    assert [r["arch"] for r in saved["arch_results"]] == ["aarch64", "aarch64"]
    with arch.shared_emulation():  # twice more, the emulated processes kept between them
        verify_bundle(bundle, limit=8, arch="aarch64")
        (pool,) = arch._shared.values()
        pids = [s.process.pid for s in pool]
        verify_bundle(bundle, limit=8, arch="aarch64")  # its rows replace the first run's
        assert [s.process.pid for s in pool] == pids and all(
            s.process.poll() is None and not s._artifacts for s in pool)
    assert all(s.process.poll() is not None for s in pool)  # closed at the end
    assert len(json.loads((bundle / "parity.json").read_text())["arch_results"]) == 2


def test_parity_json_gets_the_rows_and_a_strange_one_is_left(tmp_path):
    import json

    from export.progress import Silent
    from export.verification.arch import record_results

    said = []

    class Say(Silent):
        def say(self, msg):
            said.append(msg)

    path = tmp_path / "parity.json"
    path.write_text(json.dumps({"results": [], "arch_results": [{"arch": "aarch64", "x": 1}]}))
    record_results(path, "aarch64", [{"arch": "aarch64", "x": 2}], {"numpy": "2"}, Say())
    saved = json.loads(path.read_text())
    assert saved["arch_results"] == [{"arch": "aarch64", "x": 2}] and not said
    assert saved["arch_runtimes"] == {"aarch64": {"numpy": "2"}}
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    path.unlink()
    path.symlink_to(elsewhere)  # a link out of the bundle: neither followed nor replaced
    record_results(path, "aarch64", [], {}, Say())
    assert path.is_symlink() and elsewhere.read_text() == "{}"
    assert "not updated" in said[0]


def test_tensor_samples_must_be_a_positive_count(tmp_path):
    from export.pipeline import verify_bundle
    from zoo.errors import ArgumentError

    with pytest.raises(ArgumentError, match="tensor_samples"):
        verify_bundle(tmp_path, tensor_samples=0)  # said before the bundle is read
