"""Every family, from the registry: each ``*_tiny`` variant is built, trained for one
step, exported to both formats and verified, and its spec is complete. A new family (its
module, weights and tiny variant) is covered here without a line added; its own test
module checks what is particular to it.

The export is fp32 on a few test samples: the mechanics of every family in seconds (the
precisions and the metrics are the shipped models' tests, tests/test_pretrained.py and
tests/test_parity_matrix.py).
"""

import inspect
import json
import math

import pytest

import zoo
from zoo.registry import get_spec
from zoo.specs import RECURRENT_FORMS

TINY = zoo.list_models("*_tiny")
TINY_SUFFIX = "_tiny"


def test_every_family_has_a_tiny_variant():
    """Every family has a tiny variant (the default test run's stand-in for its models)
    of the same family and task."""
    full = [n for n in zoo.list_models() if not get_spec(n).tiny]
    missing = [n for n in full if f"{n}{TINY_SUFFIX}" not in TINY
               and get_spec(n).family not in {get_spec(t).family for t in TINY}]
    assert missing == []
    for name in TINY:
        tiny, base = get_spec(name), get_spec(name.removesuffix(TINY_SUFFIX))
        assert tiny.tiny and (tiny.family, tiny.task) == (base.family, base.task)


@pytest.mark.parametrize("name", TINY)
def test_spec_is_complete(name):
    """What export, verification and the cards read from a spec is there, with reasons."""
    from zoo.tasks import get_task

    spec = get_spec(name)
    base = get_spec(name.removesuffix(TINY_SUFFIX))
    get_task(spec.task)  # registered
    params = inspect.signature(spec.builder).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert spec.data.license and spec.data.extra is not None
    assert spec.graphs and all(g.recurrent in RECURRENT_FORMS for g in spec.graphs)
    assert "fp32" in spec.precisions
    for precision in spec.precisions:
        tolerance = spec.tensor_tolerance.get(precision)
        if tolerance is not None:
            assert tolerance.reason and tolerance.value >= 0, precision
        assert spec.metric_drop[precision].reason, precision
    assert all(reason for reason in spec.precision_gaps.values())
    assert not set(spec.precision_gaps) & set(spec.precisions)
    # the shipped model's recipe names its targets (the pretrained tests hold the weights
    # to them); the tiny one's trains in seconds
    assert base.recipe and base.recipe.get("target"), base.name
    assert spec.recipe and spec.recipe.get("epochs", 1) <= 3
    assert base.description and base.intended_use and base.limitations


@pytest.mark.parametrize("name", TINY)
def test_builds_trains_a_step_exports_and_verifies(name, tmp_path):
    from export import export_model
    from zoo import datasets
    from zoo.tasks import get_task

    spec = get_spec(name)
    task = get_task(spec.task)
    model = zoo.create_model(name)
    assert model.__class__.__name__ == "Functional"
    assert all(model.input_names) and all(model.output_names)

    # one epoch of the tiny recipe on the first 64 training items (a language model's are
    # characters: two of its windows): the task's fit runs on the family's real data
    train = datasets.load(spec.data.dataset, spec.data.train)
    recipe = {**spec.recipe, "epochs": 1}
    recipe["limit"] = max(64, 2 * recipe.get("length", 0) + 2)
    if "steps" in recipe:
        recipe["steps"] = 1
    history = task.fit(model, train, recipe, spec, verbose=0)
    assert math.isfinite(history["loss"])
    weights = tmp_path / f"{name}.weights.h5"
    model.save_weights(str(weights))

    out = tmp_path / "bundle"
    report = export_model(name, out, weights=weights, precisions="fp32", limit=4)
    assert report["passed"], report["failures"]
    manifest = json.loads((out / "manifest.json").read_text())
    artifacts = {(a["graph"], a["format"]) for a in manifest["artifacts"]}
    assert artifacts == {(g.name, f) for g in spec.graphs for f in spec.formats}
    assert all(a["as_expected"] for a in manifest["artifacts"])
    backends = {r["backend"] for r in report["results"]}
    assert backends == {"litert", "onnx"} & {{"tflite": "litert", "onnx": "onnx"}[f]
                                             for f in spec.formats}
    assert all(task.metric in r["metrics"] for r in report["results"])
