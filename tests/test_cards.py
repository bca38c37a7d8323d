"""The figures `lstm-zoo info` shows ship inside the package: an installed lstm-zoo has no
benchmarks/ folder, and its cards keep their measured exports and transfer tables."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from export.cards import FIGURES, card_figures, load_benchmarks

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def test_the_shipped_figures_are_the_benchmark_results():
    """export/card_figures.json is what `python -m benchmarks`, its transfer run and its G2P
    decoding run wrote last (benchmarks.run.write_card_figures), not a copy that drifted."""
    read = [json.loads((RESULTS / f).read_text())
            for f in ("latest.json", "transfer.json", "g2p_decoding.json")]
    assert load_benchmarks() == card_figures(*read)


def test_the_cards_are_generated():
    """benchmarks/results/cards/ holds a card per shipped model, each what card_markdown
    writes from the spec, the weights' metadata and the shipped figures."""
    from export.cards import CARDS, card_markdown
    from zoo import list_models

    shipped = list_models(pretrained=True)
    assert sorted(p.stem for p in CARDS.glob("*.md")) == shipped
    figures = load_benchmarks()
    stale = [n for n in shipped if (CARDS / f"{n}.md").read_text() != card_markdown(n, figures)]
    assert not stale, f"cards {stale} differ from the generated ones; refresh them with " \
        "`python -m export.cards --cards`"


def test_info_works_from_the_installed_package_alone(tmp_path):
    """A wheel built from pyproject.toml, zoo/ and export/ (no benchmarks/), unpacked and
    run from elsewhere: the card has its measured exports and its transfer table."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("zoo", "export"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    if build.returncode:
        pytest.fail(f"pip wheel failed: {build.stderr[-2000:]}")
    site = tmp_path / "site"
    with zipfile.ZipFile(next((tmp_path / "dist").glob("lstm_zoo-*.whl"))) as wheel:
        wheel.extractall(site)
    assert (site / "export" / FIGURES.name).is_file()
    code = ("import sys, export.cards; print(export.cards.__file__, file=sys.stderr); "
            "from export.cli import main; sys.exit(main(['info', 'bilstm_activity']))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert str(site) in proc.stderr  # the unpacked wheel's, not this checkout's
    for section in ("## Exported (batch 1, 1 thread)", "| litert | fp32 |",
                    "## Fine-tuned to another task (measured)"):
        assert section in proc.stdout
    assert "No benchmark results found" not in proc.stdout
