"""The registry of tests/predict_examples/, the examples that
tests/test_pretrained.py::test_cli_predicts_with_the_pretrained_bundle runs: every shipped
model has one, a family's own or a sequence classifier's default. Nothing is exported."""

import predict_examples
import pytest
from predict_examples import Registry

import zoo

# the shipped models with their family's own example, and its module
OWN = {
    "seq2seq_g2p": "g2p", "handwriting_ctc": "handwriting", "kws_lstm": "kws",
    "speech_ctc": "speech_ctc", "bilstm_text": "text", "amp_bilstm": "peptides",
    "lstm_forecaster": "forecaster", "lstm_forecaster_co2": "forecaster",
    "char_lm": "language_models", "music_lstm": "language_models",
    "lstm_autoencoder": "anomaly", "lstm_autoencoder_ucr": "anomaly",
    "convlstm_nextframe": "next_frame",
}


@pytest.mark.parametrize("name", zoo.list_models(pretrained=True))
def test_every_shipped_model_has_an_example(name):
    found = predict_examples.resolve(name)
    assert callable(found)
    if name in OWN:
        assert found is not predict_examples.default
        assert found.__module__ == f"predict_examples.{OWN[name]}"
    else:  # the default predicts a class per series: only a sequence classifier's
        assert found is predict_examples.default
        assert zoo.get_spec(name).task == "classification"


def test_own_examples_are_of_shipped_models():
    shipped = set(zoo.list_models(pretrained=True))
    assert set(OWN) <= shipped
    for name in predict_examples.REGISTRY.names:
        assert name in shipped, name
    for prefix in predict_examples.REGISTRY.prefixes:
        assert any(n.startswith(prefix) for n in shipped), prefix


def test_name_then_longest_prefix_then_default():
    def default(*_):
        pass

    registry = Registry(default)

    @registry.example(prefix="lstm")
    def lstm(*_):
        pass

    @registry.example(prefix="lstm_forecaster")
    def forecaster(*_):
        pass

    @registry.example("lstm_forecaster_co2", "other")
    def co2(*_):
        pass

    assert registry.resolve("lstm_forecaster") is forecaster
    assert registry.resolve("lstm_forecaster_new") is forecaster
    assert registry.resolve("lstm_forecaster_co2") is co2
    assert registry.resolve("other") is co2
    assert registry.resolve("lstm_autoencoder") is lstm
    assert registry.resolve("bilstm_activity") is default
    assert registry.resolve("lst") is default


def test_a_duplicate_registration_raises():
    registry = Registry(lambda *_: None)
    registry.example("a", prefix="p")(lambda *_: None)
    for names, prefix in [(("a",), None), (("b",), "p"), (("c", "c"), None)]:
        with pytest.raises(ValueError, match="registered already"):
            registry.example(*names, prefix=prefix)(lambda *_: None)
    assert set(registry.names) == {"a"} and set(registry.prefixes) == {"p"}  # nothing kept
    with pytest.raises(ValueError, match="a model name or a prefix"):
        registry.example()
    # the package's own registry refuses a second example for a shipped model
    with pytest.raises(ValueError, match="registered already for seq2seq_g2p"):
        predict_examples.example("seq2seq_g2p")(lambda *_: None)
    with pytest.raises(ValueError, match="registered already for prefix lstm_forecaster"):
        predict_examples.example(prefix="lstm_forecaster")(lambda *_: None)


def test_pytest_does_not_collect_the_examples():
    from pathlib import Path

    package = Path(predict_examples.__file__).parent
    assert not [p.name for p in package.glob("*.py")
                if p.name.startswith("test_") or p.stem.endswith("_test")]
    examples = {*predict_examples.REGISTRY.names.values(),
                *predict_examples.REGISTRY.prefixes.values(), predict_examples.default}
    assert not [f.__name__ for f in examples if f.__name__.startswith("test")]
