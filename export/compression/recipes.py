"""The fine-tuning recipe of each compression stage, read from a model's spec.

Shared by the stages (:mod:`export.compression.prune`,
:mod:`export.compression.qat`) so that neither imports the other for it, with the spec and
training data every stage starts from.
"""

from __future__ import annotations

from typing import Any


def stage_recipe(spec, stage: str, epochs: int | None = None, limit: int | None = None
                 ) -> dict[str, Any]:
    """The training recipe of one fine-tuning stage: the spec's recipe, overridden by its
    ``finetune`` entries, overridden by ``finetune[stage]`` ("structured", "prune",
    "qat"), overridden by ``epochs`` / ``limit`` (the CLI's, or the tests')."""
    base = spec.recipe or {}
    finetune = base.get("finetune", {})
    recipe = {**base, **{k: v for k, v in finetune.items() if not isinstance(v, dict)},
              **finetune.get(stage, {})}
    recipe.pop("finetune", None)
    if epochs is not None:
        recipe["epochs"] = int(epochs)
    if limit is not None:
        recipe["limit"] = int(limit)
    return recipe


def schedule_of(recipe: dict) -> dict[str, Any]:
    return {k: recipe[k] for k in ("epochs", "learning_rate", "batch_size")}


def resolve_spec(name_or_spec):
    """The :class:`zoo.registry.ModelSpec` of a registered name, or the spec itself (a user
    model's, :func:`export.user.spec.user_spec`)."""
    if isinstance(name_or_spec, str):
        from zoo.registry import get_spec

        return get_spec(name_or_spec)
    return name_or_spec


def training_data(spec, data=None):
    """``data`` if given, else the spec's training split (a zoo model's; a user model
    brings its own)."""
    if data is not None:
        return data
    from zoo import datasets

    return datasets.load(spec.data.dataset, spec.data.train)
