"""Imports run one way (STYLE.md): ``zoo`` never imports ``export``; the registry and the
datasets never import training; models never import datasets; no two modules of ``zoo``
and ``export`` import each other, directly or around a circle. Function-local imports
count: they run, only later.

The graph is read from the source with :mod:`ast`, so a rule holds without importing
anything. An edge goes to the module an import names: ``from zoo.errors import ShapeError``
to ``zoo.errors``, ``from zoo import ctc`` to ``zoo.ctc`` (a submodule), ``from zoo import
create_model`` to ``zoo`` (the package's ``__init__``). Parent packages, which Python
initialises first, are not edges: every module would otherwise sit on a circle through
its package's ``__init__``.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zoo", "export")
TRAINING = ("zoo.train", "zoo.finetune", "zoo.resumable")


def module_files(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``packages``."""
    out = {}
    for top in packages:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imported(node, module: str, is_package: bool, known) -> list[str]:
    """The modules of ``known`` that one import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    if node.level:  # relative: from the module's package, up level - 1
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if
                                                                         node.module else []))
    else:
        base = node.module
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    plain = len(subs) < len(node.names)  # some names are attributes of ``base`` itself
    return subs + ([base] if plain and base in known else [])


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}, within ``packages``."""
    files = module_files(root, packages)
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, module, path.name == "__init__.py", files):
                    if target != module:
                        edges.setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v):  # recursion depth is bounded by the module count (~100)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def upward(graph, sources, targets, root: Path = ROOT) -> list[str]:
    """``module:line -> target`` for every import from a module in (or under) ``sources``
    of a module in (or under) ``targets``."""
    def within(name, prefixes):
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    files = module_files(root, tuple({m.split(".")[0] for m in graph}))
    return [f"{files[m].relative_to(root)}:{line} -> {t}"
            for m in sorted(graph) if within(m, sources)
            for t, line in sorted(graph[m].items()) if within(t, targets)]


GRAPH = import_graph()


def test_zoo_never_imports_export():
    assert upward(GRAPH, ["zoo"], ["export"]) == []


def test_registry_and_datasets_never_import_training():
    assert upward(GRAPH, ["zoo.registry", "zoo.datasets"], TRAINING) == []


def test_models_never_import_datasets():
    """A family names its dataset (``DataSpec.dataset``); the labels, vocabularies and shapes
    it shares with the loader live in :mod:`zoo.constants`."""
    assert upward(GRAPH, ["zoo.models"], ["zoo.datasets"]) == []


def test_no_import_cycle():
    """No two modules import each other, directly or around a circle (the datasets package
    and its loaders, the registry and the families, the registry and the weights did until
    issue 28)."""
    assert cycles(GRAPH) == []


def test_the_checker_sees_local_relative_and_submodule_imports(tmp_path):
    (tmp_path / "zoo" / "sub").mkdir(parents=True)
    (tmp_path / "export").mkdir()
    files = {
        "zoo/__init__.py": "from zoo.registry import get\n",
        "zoo/registry.py": "def get():\n    from zoo import train\n",
        "zoo/train.py": "from .sub import leaf\n",
        "zoo/sub/__init__.py": "",
        "zoo/sub/leaf.py": "from .. import registry\nimport numpy\n",
        "zoo/datasets.py": "import zoo.finetune\n",
        "zoo/finetune.py": "from zoo import get\n",
        "zoo/clean.py": "def f():\n    import export.cli\n",
        "export/__init__.py": "",
        "export/cli.py": "from zoo.clean import f\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["zoo.registry"] == {"zoo.train": 2}  # function-local, a submodule
    assert graph["zoo.train"] == {"zoo.sub.leaf": 1}  # relative
    assert graph["zoo.sub.leaf"] == {"zoo.registry": 1}  # relative, up one package
    assert graph["zoo.finetune"] == {"zoo": 1}  # a name of the package: its __init__
    assert cycles(graph) == [["export.cli", "zoo.clean"],
                             ["zoo.registry", "zoo.sub.leaf", "zoo.train"]]
    assert upward(graph, ["zoo"], ["export"], tmp_path) == ["zoo/clean.py:2 -> export.cli"]
    assert upward(graph, ["zoo.registry", "zoo.datasets"], TRAINING, tmp_path) == [
        "zoo/datasets.py:1 -> zoo.finetune", "zoo/registry.py:2 -> zoo.train"]
