"""ExportConfig: the export's options validated once, before any model is built."""

import pytest

from export.config import DEFAULT_MAX_DROP, ExportConfig
from zoo.errors import UnsupportedError
from zoo.registry import get_spec


def test_normalises_comma_lists_and_auto():
    cfg = ExportConfig(formats="onnx, tflite,onnx", precisions=["fp32", "dynamic"])
    assert cfg.formats == ("onnx", "tflite") and cfg.precisions == ("fp32", "dynamic")
    assert not cfg.auto and not cfg.compressing
    auto = ExportConfig(precisions="auto")
    assert auto.auto and auto.max_drop == DEFAULT_MAX_DROP


@pytest.mark.parametrize("options, message", [
    ({"formats": "coreml"}, "unknown format(s) ['coreml']"),
    ({"precisions": "fp32,int4"}, "unknown precision(s) ['int4']"),
    ({"precisions": "auto,fp32"}, "cannot be combined"),
    ({"precisions": "auto", "max_drop": 1.5}, "max_drop must be in [0, 1)"),
    ({"max_drop": 0.01}, "applies to precisions='auto' only"),
    ({"prune": 1.2}, "sparsity must be in [0, 1)"),
    ({"cluster": 1}, "cluster count must be an integer >= 2"),
    ({"qat": True, "cluster": 4}, "qat cannot follow cluster"),
    ({"limit": 0}, "limit must be a positive number"),
])
def test_refuses_bad_options_with_the_value(options, message):
    with pytest.raises(UnsupportedError) as e:
        ExportConfig(**options)
    assert message in str(e.value)


def test_of_names_unknown_keywords():
    with pytest.raises(TypeError, match=r"unknown export option\(s\) \['precision'\]"):
        ExportConfig.of(precision="fp32")
    base = ExportConfig(formats="onnx")
    assert ExportConfig.of(base, limit=3) == ExportConfig(formats="onnx", limit=3)


def test_for_spec_checks_the_model():
    spec = get_spec("bilstm_activity_tiny")
    assert ExportConfig().for_spec(spec) == (tuple(spec.formats), ("fp32", "dynamic"))
    with pytest.raises(UnsupportedError, match="qat trains the weights for int8"):
        ExportConfig(qat=True, precisions="fp32").for_spec(spec)
