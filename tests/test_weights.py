"""Weights metadata is recomputed, and URL fetching works against a local server."""

import functools
import http.server
import json
import shutil
import threading

import pytest

import zoo
from zoo import weights as weights_mod
from zoo.errors import WeightsError
from zoo.train import count_params

PRETRAINED = [(n, t) for n in zoo.list_models(pretrained=True) for t in zoo.get_spec(n).weights]


@pytest.mark.parametrize("name, tag", PRETRAINED)
def test_shipped_metadata_is_true(name, tag):
    path = weights_mod.pretrained_path(name, tag)
    meta = weights_mod.read_metadata(path)
    assert meta["sha256"] == weights_mod.sha256_of(path)
    spec = zoo.get_spec(name)
    model = zoo.create_model(name, weights=tag)
    assert meta["params"] == count_params(model)
    assert meta["model"] == name and meta["dataset"] == spec.data.dataset
    for key in ("license", "recipe", "metrics", "split", "config"):
        assert meta[key]
    assert meta["recipe"]["command"] == f"lstm-zoo train {name}"
    assert spec.data.test in meta["metrics"]


@pytest.fixture()
def server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def publish(tiny_weights, root, corrupt=False):
    src = tiny_weights["bilstm_activity_tiny"]
    dst = root / src.name
    shutil.copy(src, dst)
    meta_src = weights_mod.metadata_path(src)
    shutil.copy(meta_src, weights_mod.metadata_path(dst))
    if corrupt:
        dst.write_bytes(dst.read_bytes()[:-10] + b"0123456789")
    return dst.name


def test_fetch_from_url(server, tiny_weights, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    name = publish(tiny_weights, root)
    model = zoo.create_model("bilstm_activity_tiny", weights=f"{base}/{name}")
    reference = zoo.create_model("bilstm_activity_tiny",
                                 weights=tiny_weights["bilstm_activity_tiny"])
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        assert (a == b).all()
    cached = list((tmp_path / "cache").rglob("*.weights.h5"))
    assert len(cached) == 1 and not list((tmp_path / "cache").rglob("*.tmp"))


def test_fetch_refuses_corrupt_download(server, tiny_weights, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    name = publish(tiny_weights, root, corrupt=True)
    with pytest.raises(WeightsError, match="sha256"):
        zoo.create_model("bilstm_activity_tiny", weights=f"{base}/{name}")
    assert not list((tmp_path / "cache").rglob("*.weights.h5"))


def test_fetch_needs_metadata_with_sha(server, tiny_weights, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    name = publish(tiny_weights, root)
    meta_file = weights_mod.metadata_path(root / name)
    meta_file.write_text(json.dumps({"model": "bilstm_activity_tiny"}))
    with pytest.raises(WeightsError, match="no sha256"):
        zoo.create_model("bilstm_activity_tiny", weights=f"{base}/{name}")
    with pytest.raises(WeightsError, match="cannot download"):
        zoo.create_model("bilstm_activity_tiny", weights=f"{base}/missing.weights.h5")
