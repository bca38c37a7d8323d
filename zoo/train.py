"""Training recipes: ``lstm-zoo train NAME`` reproduces the shipped weights.

A recipe is data on the spec (epochs, batch size, learning rate, seed, target); each
task trains with its own :meth:`~zoo.tasks.base.Task.fit` (:mod:`zoo.tasks.fitting`).
After training, the task metric is measured on the real test split with the same graphs
that get exported, and the weights are written with their metadata (sha256, params,
dataset, split, metrics, license, recipe, builder config).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from zoo import datasets
from zoo._keras import keras, tf
from zoo.errors import DataError, UnsupportedError
from zoo.graphs import keras_graphs
from zoo.registry import get_spec, jsonable_config
from zoo.tasks import TASKS, get_task
from zoo.weights import (
    WEIGHTS_SUFFIX,
    atomic_write_bytes,
    pretrained_path,
    read_metadata,
    save_weights_atomic,
    sha256_of,
)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def count_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights))


def train(
    name: str,
    *,
    out_dir: str | Path = "lstm-zoo-weights",
    tag: str | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    strategy: str = "default",
    verbose: int = 1,
) -> dict[str, Any]:
    """Trains ``name`` with its recipe, evaluates it on the test split, writes weights.

    Args:
        name: a registered model with a recipe.
        out_dir: where ``NAME.TAG.weights.h5`` and ``NAME.TAG.json`` go (maintainers
            refresh the shipped weights with ``zoo/pretrained``).
        tag: weights tag (default: the spec's default tag, else the dataset name).
        epochs / limit: override the recipe (limit: at most this many training samples).
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"`` (:mod:`zoo.distribute`;
            every worker writes the same weights to its own ``out_dir``). Only
            ``"default"`` reproduces the shipped weights bit for bit: the others draw
            classification batches keyed by step (:mod:`zoo.resumable`), sharded across
            workers.
        verbose: 0 silent, 1 progress bars.

    TensorBoard logs go to ``out_dir/logs/NAME.TAG``.

    Returns:
        The metadata written beside the weights, plus ``reproduction``: for a shipped
        weights tag, each metric against the shipped value and the recipe's tolerance.

    Raises:
        ArgumentError: ``epochs`` or ``limit`` given and not an int >= 1.
    """
    from zoo.distribute import get_strategy, worker_faults

    spec, task = _check_request(name, epochs, limit, strategy)
    # First, before TensorFlow runs an op: multi-worker collectives are set up here.
    distribution, cluster = get_strategy(strategy)
    recipe = dict(spec.recipe)
    if epochs is not None:
        recipe["epochs"] = int(epochs)
    if limit is not None:
        recipe["limit"] = int(limit)
    seed_everything(recipe.get("seed", 0))
    config = spec.config()
    with distribution.scope():
        model = spec.builder(**config)
    train_data = datasets.load(spec.data.dataset, spec.data.train)
    test_data = datasets.load(spec.data.dataset, spec.data.test)
    tag = tag or spec.default_weights or spec.data.dataset
    out_dir = Path(out_dir)
    log_dir = out_dir / "logs" / f"{name}.{tag}"
    if strategy != "default":
        recipe["batches"] = "keyed by step"
    start = time.time()
    with distribution.scope(), worker_faults(cluster, "no weights were written"):
        history = task.fit(model, train_data, recipe, spec, verbose,
                           callbacks=[keras.callbacks.TensorBoard(str(log_dir))])
    seconds = time.time() - start
    predictions = task.predict(keras_graphs(spec, model), task.inputs(test_data), spec.meta,
                               batch_size=256)
    metrics = task.score(predictions, test_data, spec.meta)
    shipped = read_metadata(pretrained_path(name, tag)) if tag in spec.weights else {}
    weights_path = out_dir / f"{name}.{tag}{WEIGHTS_SUFFIX}"
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights_atomic(model, weights_path)
    metadata = _metadata(spec, tag, weights_path, model, config, recipe, seconds, history,
                         metrics, split_sizes=(min(task.split_size(train_data),
                                                   recipe.get("limit") or 10**9),
                                               task.split_size(test_data)),
                         strategy=strategy, cluster=cluster, log_dir=log_dir)
    atomic_write_bytes(weights_path.with_name(f"{name}.{tag}.json"),
                       (json.dumps(metadata, indent=2) + "\n").encode())
    return {**metadata, "reproduction": reproduction(recipe, shipped, spec.data.test, metrics)}


def _check_request(name, epochs, limit, strategy):
    """The model's spec and task, once the request is checked (before anything runs)."""
    from zoo.arguments import check_count
    from zoo.distribute import check_strategy

    # before anything runs: --epochs 0 trained nothing and wrote the random weights, --limit
    # 0 used every sample and --limit -5 all but the last five
    if epochs is not None:
        check_count(epochs, "epochs", "training epochs")
    if limit is not None:
        check_count(limit, "limit", "training samples")
    check_strategy(strategy)
    spec = get_spec(name)
    if not spec.recipe:
        raise DataError(f"{name} has no training recipe")
    task = get_task(spec.task)
    if strategy == "multiworker" and not task.step_keyed:
        raise UnsupportedError(
            f"{name}: multi-worker training of {spec.task} models is not supported yet: their "
            "batches come from a keras Sequence, which multi-worker training cannot shard "
            f"exactly; use --strategy mirrored or default (multi-worker: {step_keyed_tasks()})")
    return spec, task


def _metadata(spec, tag, weights_path, model, config, recipe, seconds, history, metrics, *,
              split_sizes, strategy, cluster, log_dir) -> dict[str, Any]:
    """What ``lstm-zoo train`` writes beside the weights: their sha256, the data and its
    split, the metrics, the recipe and how the training ran."""
    name = spec.name
    return {
        "model": name,
        "tag": tag,
        "file": weights_path.name,
        "sha256": sha256_of(weights_path),
        "params": count_params(model),
        "config": jsonable_config(config),
        "dataset": spec.data.dataset,
        "split": {"train": spec.data.train, "test": spec.data.test,
                  "train_samples": split_sizes[0], "test_samples": split_sizes[1]},
        "metrics": {spec.data.test: metrics},
        "license": {"data": spec.data.license, "weights": "Apache-2.0"},
        "recipe": {**recipe, "command": f"lstm-zoo train {name}"},
        "training": {"seconds": round(seconds, 1), "final_loss": history.get("loss"),
                     "machine": f"{platform.machine()}, {platform.python_version()}",
                     "tensorflow": tf.__version__, "tf_keras": keras.__version__,
                     "strategy": strategy, "workers": cluster.size, "worker": cluster.index,
                     "logs": str(log_dir)},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def reproduction(recipe, shipped: dict, split: str, metrics: dict) -> dict[str, dict]:
    """Each metric with a reproduce tolerance: shipped value, new value, and whether the
    new one is within the tolerance the recipe states."""
    if not shipped:
        return {}
    out = {}
    for metric, tol in recipe.get("reproduce_tolerance", {}).items():
        before, now = shipped["metrics"][split][metric], metrics[metric]
        out[metric] = {"shipped": before, "now": now, "tolerance": tol,
                       "within": abs(now - before) <= tol}
    return out


def step_keyed_tasks() -> list[str]:
    """Tasks whose training batches can be keyed by step, so multi-worker training shards
    them."""
    return sorted(name for name, task in TASKS.items() if task.step_keyed)
