"""tf_keras is the one Keras, imported in one place."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    ROOT / "zoo" / "_keras.py",
    # The Keras 3 comparison peer of the benchmarks: importing Keras 3 is its point.
    ROOT / "benchmarks" / "keras3_peer.py",
    # Keras 3 -> tf_keras translation: it runs Keras 3 (lazily) to compare the twin with it.
    ROOT / "export" / "user" / "keras3.py",
    ROOT / "tests" / "test_keras3.py",
    # Bring-your-own export: the round-trip matrix builds every model in both Keras.
    ROOT / "tests" / "test_byo_roundtrip.py",
    # The bring-your-own benchmark builds the Keras 3 classifier (in a Keras 3 child process).
    ROOT / "benchmarks" / "byo.py",
}


def python_files():
    for top in ("zoo", "export", "tests", "benchmarks"):
        yield from sorted((ROOT / top).rglob("*.py"))


def direct_keras_imports(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute) and node.attr == "keras":
            # tf.keras.<...> used through an attribute
            base = node.value
            is_tf = isinstance(base, ast.Name) and base.id in {"tf", "tensorflow"}
            names = ["tf.keras"] if is_tf else []
        else:
            continue
        for n in names:
            if n in {"keras", "tf_keras", "tensorflow.keras", "tf.keras"} or n.startswith(
                ("keras.", "tf_keras.", "tensorflow.keras")
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {n}")
    return found


def test_only_zoo_keras_imports_keras():
    offenders = [hit for p in python_files() if p not in ALLOWED for hit in direct_keras_imports(p)]
    assert offenders == []


def test_the_checker_catches_each_form(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import keras\nfrom tensorflow import keras\nimport tf_keras as k\n"
                   "import tensorflow as tf\nx = tf.keras.layers.Dense\n")
    hits = direct_keras_imports(bad, tmp_path)
    assert len(hits) == 4, hits


def test_legacy_keras_is_selected():
    import os

    from zoo._keras import keras

    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert keras.__name__ == "tf_keras"
    assert keras.__version__.startswith("2.21")
