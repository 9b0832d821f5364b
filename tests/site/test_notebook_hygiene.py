"""Hygiene of the book's notebooks and of the table of contents.

Chapters are committed without outputs, open with a Colab install cell that the site hides
(tag ``remove-cell``), and close with a cell of checks (``assert``). Every notebook in book/
is in _toc.yml and every _toc.yml entry exists.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
TOC = ROOT / "_toc.yml"


def _tracked_notebooks() -> set[Path]:
    """Notebooks under book/ known to git (empty when git or the repository is unavailable)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--", "book/*.ipynb"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {ROOT / line for line in out.splitlines() if line.strip()}


def _notebooks() -> list[Path]:
    present = set(BOOK.glob("*.ipynb"))
    return sorted(present | _tracked_notebooks())


NOTEBOOKS = _notebooks()
NO_NOTEBOOK = pytest.mark.skipif(not NOTEBOOKS, reason="no notebook in book/ yet")
PARAMS = NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip(reason="no notebook in book/ yet"))]


def _id(path: Path | None) -> str:
    return path.name if path is not None else "none"


def _read(path: Path) -> nbformat.NotebookNode:
    assert path.exists(), f"{path.relative_to(ROOT)} is tracked by git but missing"
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _code_cells(nb: nbformat.NotebookNode) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _toc_files() -> list[str]:
    """Every document named in _toc.yml (root and all `file:` entries), without suffix."""
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [str(Path(f).with_suffix("")) if Path(f).suffix in {".ipynb", ".md"} else f for f in files]


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_valid_nbformat_v4(path):
    nb = _read(path)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_committed_without_outputs(path):
    nb = _read(path)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; clear all outputs in the "
        "editor before committing"
    )


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_first_code_cell_is_hidden(path):
    cells = _code_cells(_read(path))
    assert cells, f"{path.name}: no code cell"
    first = cells[0]
    tags = first.get("metadata", {}).get("tags", [])
    assert "remove-cell" in tags, f"{path.name}: first code cell must be tagged 'remove-cell' (tags: {tags})"
    # its exact text (quadnet.book.COLAB_INSTALL) is checked in test_colab.py


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_last_code_cell_checks_claims(path):
    cells = _code_cells(_read(path))
    assert cells, f"{path.name}: no code cell"
    assert "assert" in cells[-1].source, f"{path.name}: last code cell must be the checks cell (assert ...)"


def _image_alt(cell) -> str:
    image = cell.get("metadata", {}).get("mystnb", {}).get("image", {})
    return (image.get("alt") or "").strip() if isinstance(image, dict) else ""


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_alt_text_sits_on_the_cell_that_draws(path):
    """A figure's alt text (cell metadata ``mystnb.image.alt``) must be on the cell that shows it
    (``plt.show()``): splitting a cell can leave it on a neighbour, and the page then shows the figure
    with its file name as alt (the built site's check finds that only after a full build)."""
    cells = _code_cells(_read(path))
    drawn_bare = [i for i, c in enumerate(cells) if "plt.show()" in c.source and not _image_alt(c)]
    alt_unused = [i for i, c in enumerate(cells) if _image_alt(c) and "plt.show()" not in c.source]
    assert not drawn_bare and not alt_unused, (
        f"{path.name}: code cells (counted from 0) that show a figure without alt text: {drawn_bare}; "
        f"that carry alt text but show no figure: {alt_unused}"
    )


_BLOCK_START = re.compile(r"\s*([-+*]|\d+[.)]|>|#+)\s")


def _lines_opening_a_block_inside_math(text: str) -> list[str]:
    """Lines of a paragraph that start like a list item, quote or heading while an inline ``$...$``
    is open: Markdown ends the math there and the reader sees raw TeX (chapter 4 had one)."""
    bad, inside = [], False
    for line in text.splitlines():
        if not line.strip():
            inside = False
            continue
        if inside and _BLOCK_START.match(line):
            bad.append(line[:80])
        if line.replace("$$", "").replace("\\$", "").count("$") % 2:
            inside = not inside
    return bad


def test_block_start_inside_inline_math_is_caught():
    assert _lines_opening_a_block_inside_math("a $x\n- y$ b") == ["- y$ b"]
    assert _lines_opening_a_block_inside_math("a $x -\ny$ b\n- item") == []


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_no_line_breaks_inline_math(path):
    nb = _read(path)
    bad = [
        line
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in _lines_opening_a_block_inside_math(cell.source)
    ]
    assert not bad, f"{path.name}: a line inside inline math starts like a list or heading: {bad}"


@NO_NOTEBOOK
def test_every_notebook_in_toc():
    listed = set(_toc_files())
    missing = [p.name for p in NOTEBOOKS if str(p.relative_to(ROOT).with_suffix("")) not in listed]
    assert not missing, f"notebooks not listed in _toc.yml: {missing}"


@NO_NOTEBOOK
def test_every_toc_entry_exists():
    absent = [
        entry
        for entry in _toc_files()
        if not any((ROOT / f"{entry}{suffix}").is_file() for suffix in (".ipynb", ".md"))
    ]
    assert not absent, f"_toc.yml entries with no .ipynb or .md file: {absent}"
