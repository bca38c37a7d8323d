"""Shared fixtures: tiny models trained briefly on slices of the real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under `pytest -n 2` on two cores, each worker's TensorFlow (and the training workers
    # that tests start) computes on one thread: TensorFlow's default pools, a thread per
    # core in each worker, would put four busy threads on two cores. The edge runtimes run
    # on one thread already (export.verification.runtime).
    for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


# Modules whose tests are parametrized by a shipped model's name first (per_model), and
# the shipped models (from their weights' metadata files, without importing TensorFlow).
PER_MODEL_MODULES = ("test_pretrained.py", "test_parity_matrix.py")
SHIPPED = {p.name.split(".")[0]
           for p in (Path(__file__).resolve().parents[1] / "zoo" / "pretrained").glob("*.json")}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """For ``pytest -n 2`` (xdist's default ``--dist load``): every test of one shipped
    model runs on one worker (its export is session-scoped, so it happens once there), and
    every other test on the worker of the rest of its module (a module's fixtures, a tiny
    model trained and exported, are built once; session fixtures once per worker that
    needs them). xdist's ``xdist_group`` marks would need ``--dist loadgroup``, and with
    pytest 9.2 they do not group at all (xdist 3.8 renames ``item._nodeid``, which pytest 9
    no longer reads: measured, every shipped model was exported on both workers). Another
    ``--dist`` keeps xdist's own scheduler."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModelOrModule(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path, _, test = nodeid.partition("::")
            if path.endswith(PER_MODEL_MODULES) and "[" in test:
                model = test[test.index("[") + 1 :].rstrip("]").split("-")[0]
                if model in SHIPPED:
                    return "model:" + model
            return path

    return ByModelOrModule(config, log)


def aarch64_root_or_skip() -> None:
    """Runs where the aarch64 root is built already (.ci/run builds it before the suite:
    about 2 minutes); where it can be built (qemu, debootstrap, root, the network) only
    with LSTM_ZOO_BUILD_AARCH64=1, since two workers would build it at once; skips with
    what is missing otherwise."""
    from export.verification import arch
    from zoo.errors import HostSetupError

    if arch.root_state() is not None:
        try:
            arch.qemu_binary()
            arch.ensure_binfmt()
        except HostSetupError as e:
            pytest.skip(f"an aarch64 root is at {arch.root_path()} but cannot run here: {e}")
        return
    if not os.environ.get("LSTM_ZOO_BUILD_AARCH64"):
        pytest.skip(f"no aarch64 root at {arch.root_path()}; `lstm-zoo verify DIR --arch "
                    "aarch64` builds it once (about 2 min), or set LSTM_ZOO_BUILD_AARCH64=1")
    try:
        arch.qemu_binary()
        arch._check_can_build()
    except HostSetupError as e:
        pytest.skip(f"no aarch64 root at {arch.root_path()} and none can be built here: {e}")


@pytest.fixture(scope="session")
def aarch64_emulation():
    """The emulated aarch64 processes, shared by every aarch64 verification of a worker
    (:func:`export.verification.arch.shared_emulation`)."""
    from export.verification import arch

    with arch.shared_emulation():
        yield


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """``{name: weights path}`` for the tiny variants, trained for seconds on real data.

    Briefly trained rather than random: the classifier's normalisation layer is adapted to
    the real sensor ranges, as every real model's is.
    """
    from zoo.train import train

    out = tmp_path_factory.mktemp("tiny_weights")
    paths = {}
    for name in ("bilstm_activity_tiny", "seq2seq_g2p_tiny"):
        meta = train(name, out_dir=out, verbose=0)
        paths[name] = out / meta["file"]
    return paths


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory, tiny_weights):
    """Exported bundles (tflite+onnx, fp32+dynamic) of the tiny models."""
    from export import export_model

    out = tmp_path_factory.mktemp("bundles")
    bundles, reports = {}, {}
    for name, limit in (("bilstm_activity_tiny", None), ("seq2seq_g2p_tiny", 150)):
        bundles[name] = out / name
        reports[name] = export_model(name, bundles[name], weights=tiny_weights[name],
                                     limit=limit)
    return bundles, reports


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory):
    """A bundle of the tiny classifier with random weights (fp32 TFLite and ONNX, parity on 8
    test samples: seconds), for tests that copy it and edit or corrupt the copy
    (tests/test_bundle_trust.py, tests/test_fuzz.py, tests/test_bad_inputs.py). Never edit it
    in place."""
    from export import export_model

    out = tmp_path_factory.mktemp("random_bundle") / "b"
    export_model("bilstm_activity_tiny", out, weights=None, precisions="fp32", limit=8)
    return out


def per_model(name, *values):
    """The parameters of a test of shipped model ``name``: the name first, so that
    :func:`pytest_xdist_make_scheduler` keeps the model's tests on one worker."""
    return pytest.param(name, *values)


@pytest.fixture(scope="session")
def pretrained_export(tmp_path_factory):
    """``get(name) -> (parity report, bundle dir)``: each shipped model exported once, at
    every precision its spec supports."""
    import zoo
    from export import export_model

    cache, failed = {}, {}

    def get(name):
        if name in failed:  # one failing export fails its tests, it is not redone for each
            raise failed[name]
        if name not in cache:
            out = tmp_path_factory.mktemp("pretrained") / name
            try:
                report = export_model(name, out, precisions=zoo.get_spec(name).precisions)
            except Exception as e:
                failed[name] = e
                raise
            cache[name] = (report, out)
        return cache[name]

    return get


def export_model_dir(model_dir, bundle, finetune_meta, capsys):
    """Exports a fine-tuned model directory at fp32 through the CLI and checks that the
    bundle's verification passed and its Keras reference measures what fine-tuning
    reported on the same test file."""
    import json

    from export.cli import main

    assert main(["export", str(model_dir), "--out", str(bundle), "--precision", "fp32"]) == 0
    capsys.readouterr()
    report = json.loads((bundle / "parity.json").read_text())
    assert report["passed"] and report["reference"]["metrics"] == pytest.approx(
        finetune_meta["metrics"]["test"])
