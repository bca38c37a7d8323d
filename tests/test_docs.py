"""The README is a newcomer's page: short, and its two set-up commands are the ones CI runs.

``.ci/run`` runs the README's test command one step a line (with ``python -m pip ... -q``);
the check below reads both files and compares them step by step, so a change to either that
the other does not follow fails here. The self-test at the end feeds the check drifted
copies to prove it can fail. Broken links are the docs build's job (``mkdocs build
--strict`` in ``.ci/run``).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
MAX_README_LINES = 300
# Lines of .ci/run that are not steps of the README's test command, each with its reason.
CI_ONLY = (
    "pip install --upgrade pip",  # a fresh venv's pip, before anything is installed
    "ruff check ",  # lint
    'pip install -e ".[docs]"',  # the docs build's tools (not needed to run the tests)
    "mkdocs build --strict ",  # the docs build: broken links fail
    ".ci/aarch64-root",  # qemu and the arm64 root of the aarch64 matrix (CI runs as root)
)


def setup_commands(readme: str) -> tuple[str, str]:
    """The two one-line commands in the README's set-up section."""
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 2, f"expected two bash blocks in the set-up section; got {blocks}"
    commands = [b.strip() for b in blocks]
    assert all("\n" not in c for c in commands), commands
    return commands[0], commands[1]


def normalized(step: str) -> str:
    """A step as the README writes it: ``python -m pip`` is ``pip``, ``-q`` is quiet."""
    words = shlex.split(step)
    if words[:3] == ["python", "-m", "pip"]:
        words = ["pip", *words[3:]]
    if words[:1] == ["pip"]:
        words = [w for w in words if w != "-q"]
    return shlex.join(words).replace("'", '"')


def ci_steps(script: str) -> list[str]:
    """The commands .ci/run runs, in order (comments, ``set``, ``cd`` and ``export`` left
    out: they set up the shell, not the project)."""
    steps = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "set ", "cd ", "export ")):
            continue
        steps.append(normalized(line))
    return steps


def check_in_step(readme: str, script: str) -> None:
    """The README's test command is what .ci/run runs, step by step, last; its first
    command installs a subset of what CI installs and exports a shipped model."""
    first, test = setup_commands(readme)
    want = [normalized(s) for s in test.split(" && ")]
    steps = ci_steps(script)
    unexplained = [s for s in steps if s not in want and not s.startswith(CI_ONLY)]
    assert not unexplained, \
        f".ci/run runs steps the README's test command does not: {unexplained}"
    got = [s for s in steps if s in want]
    assert got == want, f"README's test command {want} but .ci/run runs {got}"
    assert steps[-1] == want[-1], f".ci/run must end with the tests; it ends {steps[-1]!r}"
    first_steps = [normalized(s) for s in first.split(" && ")]
    assert first_steps[:2] == want[:2], (first_steps, want)
    extras = {s: set(re.findall(r"\.\[([^\]]*)\]", s)[0].split(","))
              for s in (first_steps[2], want[2])}
    assert extras[first_steps[2]] <= extras[want[2]], \
        f"the first command installs {first_steps[2]}, more than CI tests ({want[2]})"
    export = shlex.split(first_steps[3])
    assert export[:2] == ["lstm-zoo", "export"], first_steps[3]
    assert list((ROOT / "zoo" / "pretrained").glob(f"{export[2]}.*.weights.h5")), \
        f"the first command exports {export[2]}, which ships no weights"


def test_readme_fits_a_newcomer():
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md is {lines} lines; keep it under " \
        f"{MAX_README_LINES} and move the rest to docs/"


def test_readme_setup_commands_are_what_ci_runs():
    check_in_step(README.read_text(), CI.read_text())


@pytest.mark.parametrize("drift", [
    ("ci", 'pip install -q -e ".[data,dev,bench]"', 'pip install -q -e ".[data,dev]"'),
    ("ci", "python -m pytest -q -n 2 --durations=15", "python -m pytest -q -n 2"),
    ("ci", "lstm-zoo fetch-data\n", ""),
    ("ci", "lstm-zoo fetch-data\n", "lstm-zoo fetch-data\npip install requests\n"),
    ("ci", "python -m pytest -q -n 2 --durations=15", "python -m pytest -q -n 2 "
           "--durations=15\nruff check zoo"),
    ("readme", "&& lstm-zoo fetch-data &&", "&&"),
    ("readme", 'pip install -e ".[data]"', 'pip install -e ".[data,music]"'),
    ("readme", "export bilstm_activity", "export no_such_model"),
])
def test_the_check_fails_when_they_drift(drift):
    where, old, new = drift
    readme, script = README.read_text(), CI.read_text()
    if where == "ci":
        assert old in script
        script = script.replace(old, new, 1)
    else:
        assert old in readme
        readme = readme.replace(old, new, 1)
    with pytest.raises(AssertionError):
        check_in_step(readme, script)


def test_the_benchmark_summary_is_written_into_its_docs_page():
    from benchmarks.run import MARK_END, MARK_START, SUMMARY_LINKS, SUMMARY_PAGE

    assert SUMMARY_PAGE == ROOT / "docs" / "benchmarks.md"
    page = SUMMARY_PAGE.read_text()
    assert page.count(MARK_START) == 1 and page.count(MARK_END) == 1
    assert page.index(MARK_START) < page.index(MARK_END)
    assert MARK_START not in README.read_text()
    # the generated section's links resolve from the page
    section = page.split(MARK_START, 1)[1].split(MARK_END, 1)[0]
    links = re.findall(r"\]\(([^)]+)\)", section)
    assert links and all(link.startswith(SUMMARY_LINKS + "/") for link in links), links
    for link in links:
        assert (SUMMARY_PAGE.parent / link).is_file(), link


def test_readme_models_table_is_generated():
    """README's models table is what the registry and the shipped weights' metadata give."""
    from export.cards import REFRESH, with_models_table

    readme = README.read_text()
    assert readme == with_models_table(readme), \
        f"README.md's models table differs from the generated one; refresh it with `{REFRESH}`"


def test_docs_models_tables_are_generated():
    """docs/models.md's two per-model tables (details; cards and pages) are what the
    registry, the dataset registry and the shipped weights' metadata give."""
    from export.cards import DOCS_MODELS, REFRESH, with_doc_tables

    assert DOCS_MODELS == ROOT / "docs" / "models.md"
    page = DOCS_MODELS.read_text()
    assert page == with_doc_tables(page), \
        f"docs/models.md's models tables differ from the generated ones; refresh them with " \
        f"`{REFRESH}`"


def test_the_docs_tables_check_fails_on_a_hand_edit():
    from export.cards import (
        DOC_TABLES,
        DOCS_MODELS,
        REFRESH,
        details_table,
        pages_table,
        with_doc_tables,
    )

    page = DOCS_MODELS.read_text()
    tables = {"details": details_table(), "pages": pages_table()}
    for name, (start, end) in DOC_TABLES.items():
        assert REFRESH in start
        assert f"{start}\n{tables[name]}{end}" in page
    for name, old, new in (("details", "| 135,697 |", "| 135,698 |"),
                           ("details", "accuracy 1.000 (40/40)", "accuracy 0.999 (40/40)"),
                           ("pages", "[speech](speech.md)", "[speech](text.md)"),
                           ("pages", "| `bilstm_activity` |", "| `bilstm_activity_v2` |")):
        drifted = page.replace(tables[name], tables[name].replace(old, new, 1))
        assert drifted != page and with_doc_tables(drifted) == page, (name, old)
    # a row lost from the middle of a table comes back
    first_row = tables["pages"].split("\n")[2] + "\n"
    assert with_doc_tables(page.replace(first_row, "", 1)) == page
    for start, end in DOC_TABLES.values():
        with pytest.raises(ValueError, match="once each"):
            with_doc_tables(page.replace(end, ""))
        with pytest.raises(ValueError, match="once each"):
            with_doc_tables(page.replace(start, ""))


def test_every_shipped_models_docs_page_exists():
    """A shipped spec's ``docs`` (when set) is a page under docs/ that the site builds (in
    mkdocs.yml's nav); its tiny variant names the same page."""
    from zoo import get_spec, list_models

    nav = (ROOT / "mkdocs.yml").read_text()
    names = [n for n in list_models(pretrained=True) if get_spec(n).docs]
    assert names, "no shipped spec names its docs page"
    for name in names:
        page = get_spec(name).docs
        assert page.endswith(".md") and not page.startswith(("/", ".")), (name, page)
        assert (ROOT / "docs" / page).is_file(), f"{name}: docs page docs/{page} is missing"
        assert f": {page}" in nav, f"{name}: docs/{page} is not in mkdocs.yml's nav"
        tiny = f"{name}_tiny"
        if tiny in list_models():
            assert get_spec(tiny).docs == page, tiny


def test_the_models_table_check_fails_on_a_hand_edit():
    from export.cards import MODELS_END, MODELS_START, REFRESH, models_table, with_models_table

    readme = README.read_text()
    table = models_table()
    assert REFRESH in MODELS_START
    assert f"{MODELS_START}\n{table}{MODELS_END}" in readme
    for old, new in (("accuracy 1.000 (40/40)", "accuracy 0.999 (40/40)"),
                     ("| `bilstm_activity` |", "| `bilstm_activity_v2` |")):
        drifted = readme.replace(table, table.replace(old, new, 1))
        assert drifted != readme and with_models_table(drifted) == readme
    with pytest.raises(ValueError, match="once each"):
        with_models_table(readme.replace(MODELS_END, ""))


def assert_data_table_current(page: str) -> None:
    """docs/data.md (``page``) holds the datasets table that the dataset registry, the
    loader modules' docstrings and the shipped specs give."""
    from export.cards import REFRESH, with_data_table

    assert page == with_data_table(page), \
        f"docs/data.md's datasets table differs from the generated one; refresh it with " \
        f"`{REFRESH}`"


def test_docs_data_table_is_generated():
    from export.cards import DOCS_DATA

    assert DOCS_DATA == ROOT / "docs" / "data.md"
    assert_data_table_current(DOCS_DATA.read_text())


def test_the_data_table_has_a_row_per_dataset_and_each_shipped_model_once():
    """A row per registered dataset: its loader module's docstring's first paragraph and
    the registry's license; each shipped model linked to its card in its dataset's row."""
    from export.cards import DOCS_DATA, data_table, dataset_description
    from zoo import get_spec, list_models
    from zoo.datasets import get_dataset, list_datasets

    rows = data_table().splitlines()[2:]
    assert len(rows) == len(list_datasets())
    for name, row in zip(list_datasets(), rows, strict=True):
        assert row.startswith(f"| `{name}` "), (name, row)
        description = dataset_description(name)
        assert description and "\n" not in description and "``" not in description, name
        assert f"| {description} |" in row and f"| {get_dataset(name).license} |" in row
    for model in list_models(pretrained=True):
        link = f"../benchmarks/results/cards/{model}.md"
        hits = [row for row in rows if f"]({link})" in row]
        assert len(hits) == 1, (model, hits)
        assert hits[0].startswith(f"| `{get_spec(model).data.dataset}` "), (model, hits)
        assert (DOCS_DATA.parent / link).is_file(), link


def test_the_data_table_check_fails_when_stale(monkeypatch):
    """A hand-edited row, a lost row or a loader docstring changed without refreshing the
    table fails the check, naming the command; without its markers the page is refused."""
    import zoo.datasets.basicmotions as basicmotions
    from export.cards import (
        DATA_END,
        DATA_START,
        DOCS_DATA,
        REFRESH,
        data_table,
        with_data_table,
    )

    page = DOCS_DATA.read_text()
    table = data_table()
    assert REFRESH in DATA_START
    assert f"{DATA_START}\n{table}{DATA_END}" in page
    for old, new in (("40 series to train", "41 series to train"),
                     ("| `co2` (", "| `co3` ("),
                     ("research use |", "MIT |"),
                     ("[`kws_lstm`](", "[`kws_lstm_v2`](")):
        drifted = page.replace(table, table.replace(old, new, 1))
        assert drifted != page and with_data_table(drifted) == page, old
        with pytest.raises(AssertionError, match=re.escape(REFRESH)):
            assert_data_table_current(drifted)
    first_row = table.split("\n")[2] + "\n"
    assert with_data_table(page.replace(first_row, "", 1)) == page
    monkeypatch.setattr(basicmotions, "__doc__",
                        "BasicMotions, split otherwise.\n\n" + basicmotions.__doc__)
    with pytest.raises(AssertionError, match=re.escape(REFRESH)):
        assert_data_table_current(page)
    monkeypatch.undo()
    for marker in (DATA_START, DATA_END):
        with pytest.raises(ValueError, match="once each"):
            with_data_table(page.replace(marker, ""))
