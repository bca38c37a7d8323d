"""Training helpers the recipes share."""

import numpy as np
import pytest

import zoo
from zoo.datasets import basicmotions
from zoo.tasks.fitting import adapt_normalization


def test_normalization_modes():
    x = np.asarray(basicmotions.load("train").x)
    model = zoo.create_model("bilstm_activity_tiny")
    adapt_normalization(model, x, "channel")
    mean, var, _ = model.get_layer("normalize").get_weights()
    np.testing.assert_allclose(mean.ravel(), x.reshape(-1, 6).mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var.ravel(), x.reshape(-1, 6).var(0), rtol=1e-4)
    adapt_normalization(model, x, "global")
    mean, var, _ = model.get_layer("normalize").get_weights()
    # one mean and variance over every value, the same for each channel
    np.testing.assert_allclose(mean.ravel(), np.full(6, x.mean()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var.ravel(), np.full(6, x.var()), rtol=1e-4)
    with pytest.raises(ValueError, match="'channel' or 'global'"):
        adapt_normalization(model, x, "per-pixel")


def test_shipped_recipes_name_their_normalization():
    for name in zoo.list_models(pretrained=True):
        spec = zoo.get_spec(name)
        if spec.task == "anomaly":
            continue  # one channel: _fit_anomaly fits normalize and denormalize to it
        if "normalize" in [layer.name for layer in zoo.create_model(name).layers]:
            assert spec.recipe["normalize"] in ("channel", "global"), name
