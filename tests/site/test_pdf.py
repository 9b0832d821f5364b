"""The PDF of the book (``make pdf``: _build/latex/quadnet.pdf, copied to the site's root).

Read back with poppler's tools (Debian's poppler-utils, installed by .ci/run): its page count,
every document's title, its embedded images, its exercises (solutions left out), its
bibliography, and no raw markup in its prose: no ``$``, ``\\(`` or ``\\[`` left from the
mathematics and no MyST role, directive or target. Code keeps its own characters (a matplotlib
label such as ``r"$\\theta$"`` is code, not raw mathematics): text set in the monospace font is
told apart with ``pdftohtml -xml``, which reports each run of text with its font.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
from booktoc import toc_docs

ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "_build" / "latex" / "quadnet.pdf"
SITE_PDF = ROOT / "_build" / "html" / "quadnet.pdf"
TOOLS = ("pdftotext", "pdfinfo", "pdfimages", "pdftohtml")

pytestmark = pytest.mark.site


def _need_tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} missing in CI: .ci/run installs poppler-utils")
        pytest.skip(f"{missing} not installed (Debian: apt-get install poppler-utils)")
    assert PDF.is_file(), f"{PDF.relative_to(ROOT)} missing: run `make pdf` (make test does)"


def _run(*args: str) -> str:
    _need_tools()
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


@lru_cache(maxsize=1)
def _text() -> str:
    return _run("pdftotext", "-enc", "UTF-8", str(PDF), "-")


def _norm(text: str) -> str:
    """Lower case, letters and digits only: titles survive small caps, line breaks, ligatures."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[^0-9a-z]+", "", text)


def _pages() -> int:
    return int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(PDF)), re.M).group(1))


def _title(doc: str) -> str:
    path = ROOT / f"{doc}.ipynb"
    if path.is_file():
        cells = nbformat.read(path, as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    else:
        text = (ROOT / f"{doc}.md").read_text(encoding="utf-8")
    m = re.search(r"^#\s+(.+)$", text, re.M)
    assert m, f"{doc}: no title"
    return re.sub(r"\$[^$]*\$", "", m.group(1))  # math in a title: compared without it


def test_page_count():
    docs = toc_docs()
    pages = _pages()
    # at least the title, contents and one page per document; a book this size is far below 2000
    assert len(docs) + 2 <= pages <= 2000, f"{pages} pages for {len(docs)} documents"


def test_site_serves_the_same_pdf():
    _need_tools()
    assert SITE_PDF.is_file(), "the site's preface links quadnet.pdf: `make pdf` copies it to _build/html"
    assert SITE_PDF.read_bytes() == PDF.read_bytes(), "_build/html/quadnet.pdf is not the PDF just built"


@pytest.mark.parametrize("doc", toc_docs(), ids=lambda d: d.rsplit("/", 1)[-1])
def test_every_title_is_in_the_pdf(doc):
    title = _norm(_title(doc))
    assert title and title in _norm(_text()), f"{doc}: title {_title(doc)!r} not found in the PDF"


def _site_figures() -> int:
    """Figures on the built site's pages (images under _images/, the executed cells' outputs)."""
    html = ROOT / "_build" / "html"
    return sum(
        len(re.findall(r'<img[^>]*src="[^"]*_images/', (html / f"{doc}.html").read_text(encoding="utf-8")))
        for doc in toc_docs()
        if (html / f"{doc}.html").is_file()
    )


def test_figures_are_embedded():
    lines = _run("pdfimages", "-list", str(PDF)).splitlines()[2:]
    images = [line for line in lines if line.split() and line.split()[2] == "image"]
    expected = _site_figures()
    assert expected > 0, "no figure on the built site: is _build/html there (make book)?"
    # every figure of the site is in the PDF (an image with transparency also has a soft mask,
    # listed as 'smask': only the 'image' rows count)
    assert len(images) >= expected, f"{len(images)} images in the PDF, {expected} figures on the site"


@lru_cache(maxsize=1)
def _prose() -> str:
    """The PDF's text outside the monospace font (code cells, their outputs, inline code)."""
    xml = _run("pdftohtml", "-xml", "-i", "-q", "-stdout", "-enc", "UTF-8", str(PDF))
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", xml))
    mono = {
        f.get("id") for f in root.iter("fontspec") if re.search(r"mono|courier|typewriter", f.get("family", ""), re.I)
    }
    assert mono, "no monospace font found in the PDF: cannot tell code from prose"
    lines = ["".join(t.itertext()) for t in root.iter("text") if t.get("font") not in mono]
    assert len(lines) > 100, "hardly any prose read from the PDF"
    return "\n".join(lines)


RAW = {
    "dollar": re.compile(r"\$"),
    "\\( or \\[": re.compile(r"\\[(\[]"),
    "MyST role": re.compile(r"\{[A-Za-z][\w:.-]*\}`?"),
    "MyST target": re.compile(r"^\s*\([\w.:-]+\)=\s*$", re.M),
    "directive fence": re.compile(r"(```|:::)\s*\{"),
}


@pytest.mark.parametrize("what", RAW, ids=list(RAW))
def test_no_raw_markup_in_the_prose(what):
    prose = _prose()
    hits = [prose[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ") for m in RAW[what].finditer(prose)]
    assert not hits, f"raw {what} in the PDF's prose ({len(hits)}), e.g. {hits[:5]}"


def _exercise_directives() -> tuple[int, int]:
    n_ex = n_sol = 0
    for doc in toc_docs():
        path = ROOT / f"{doc}.ipynb"
        text = ""
        if path.is_file():
            text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
        elif (ROOT / f"{doc}.md").is_file():
            text = (ROOT / f"{doc}.md").read_text(encoding="utf-8")
        n_ex += len(re.findall(r"^\s*(?:`{3,}|:{3,})\{exercise\}", text, re.M))
        n_sol += len(re.findall(r"^\s*(?:`{3,}|:{3,})\{solution(?:-start)?\}", text, re.M))
    return n_ex, n_sol


def test_exercises_are_in_and_solutions_are_out():
    n_ex, n_sol = _exercise_directives()
    text = _text()
    numbered = set(re.findall(r"Exercise (\d+)", text))
    # an exercise's heading starts a line, after the admonition's icon
    assert len(re.findall(r"^\W*Exercise \d+ ", text, re.M)) >= n_ex, f"{n_ex} exercises in the sources"
    assert n_ex == 0 or numbered, "no numbered exercise in the PDF"
    flat = re.sub(r"\s+", " ", text)
    # each solution becomes "*Solution:* on the book's site, <url>, and in the chapter's notebook."; the
    # parts are counted apart because pdftotext may move the italic label within a wrapped line
    for part in ("Solution:", "on the book's site", "in the chapter's notebook"):
        assert flat.count(part) == n_sol, (
            f"{n_sol} solutions in the sources, {flat.count(part)} times {part!r} in the PDF: "
            "each solution should be replaced by a pointer to the site"
        )


def test_bibliography_lists_every_entry():
    from pybtex.database import parse_file

    text = _norm(_text())
    entries = parse_file(str(ROOT / "references.bib")).entries
    missing = [key for key, e in entries.items() if _norm(re.sub(r"[{}]", "", e.fields.get("title", ""))) not in text]
    assert not missing, f"bibliography entries missing from the PDF: {missing}"
