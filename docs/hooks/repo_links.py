"""mkdocs hook: README.md as the site's home page, and links from the docs to the rest of
the repository checked like links between pages.

The pages are written to be read in the repository as well as on the site: README.md links
``docs/models.md``, a page links ``../benchmarks/results/latest.md``. Here every relative
link is resolved from the file's real place in the repository; a target inside ``docs/`` is
linked as the page it is, a target elsewhere in the repository is copied into the site
under ``repo/`` (as it is, not rendered) and linked there, and a target that does not exist
is a warning, which ``mkdocs build --strict`` makes an error.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.repo_links")
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
FENCE = re.compile(r"^\s*(```|~~~)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
COPIES = "repo"
HOME = "index.md"


class RepoFile(File):
    """A repository file outside docs/, copied into the site as it is (a Markdown report
    is not rendered as a page: its own links point into the repository)."""

    def is_documentation_page(self) -> bool:
        return False


def _roots(config) -> tuple[Path, Path]:
    docs = Path(config.docs_dir).resolve()
    return docs, docs.parent


def _links(text: str):
    """(line index, match) of every inline link outside fenced code."""
    fenced = False
    for i, line in enumerate(text.split("\n")):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            for m in LINK.finditer(line):
                yield i, m


def _target(src: Path, link: str, root: Path) -> tuple[Path, str] | None:
    """The file a relative link names, and its anchor; None for other links."""
    if SCHEME.match(link) or link.startswith(("#", "/")):
        return None
    path, _, anchor = link.partition("#")
    return (src.parent / path).resolve(), ("#" + anchor if anchor else "")


def on_files(files, config):
    docs, root = _roots(config)
    files.append(File.generated(config, HOME, abs_src_path=str(root / "README.md")))
    for page in list(files.documentation_pages()):
        src = Path(page.abs_src_path)
        for _, m in _links(src.read_text(encoding="utf-8")):
            found = _target(src, m.group(2), root)
            if found is None or found[0].is_relative_to(docs):
                continue  # mkdocs checks links between pages itself
            path = found[0]
            if not path.is_relative_to(root) or not path.is_file():
                log.warning(f"{src.relative_to(root)}: link to {m.group(2)}: no such file in "
                            "the repository")
                continue
            uri = f"{COPIES}/{path.relative_to(root).as_posix()}"
            if files.get_file_from_path(uri) is None:
                files.append(RepoFile.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    docs, root = _roots(config)
    src = Path(page.file.abs_src_path)
    here = posixpath.dirname(page.file.src_uri)

    def rewrite(m):
        found = _target(src, m.group(2), root)
        if found is None or not found[0].is_relative_to(root):
            return m.group(0)
        path, anchor = found
        if path.is_relative_to(docs):
            uri = path.relative_to(docs).as_posix()
        elif path.is_file():
            uri = f"{COPIES}/{path.relative_to(root).as_posix()}"
        else:
            return m.group(0)  # already reported by on_files
        return m.group(1) + posixpath.relpath(uri, here or ".") + anchor + m.group(3)

    lines = markdown.split("\n")
    fenced = False
    for i, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines[i] = LINK.sub(rewrite, line)
    return "\n".join(lines)
