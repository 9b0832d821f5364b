"""Checks of the built site in _build/html (``make test-site``; run after ``make book``).

Every page of _toc.yml is built; no page shows a traceback, an error output or a warning; every
image a page shows exists (and figures from notebooks carry alt text); glued numbers are
rendered; Colab launch links and ``.ipynb`` downloads point at the right notebook; the
bibliography lists every entry; and no page loads anything from another host (MathJax included:
it is served from ``_static/mathjax``). The browser test (tests/site/test_browser.py) checks the same
pages as a reader's browser renders them.

The tests skip when _build/html does not exist.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml
from booktoc import toc_docs
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))

pytestmark = pytest.mark.site


@pytest.fixture(autouse=True, scope="module")
def _built_site():
    """Skip (only the tests that run, not the collection) when there is no built site."""
    if not (HTML / "index.html").is_file():
        pytest.skip("no site in _build/html: run `make book` (or `make test-book`) first")


# ----------------------------------------------------------------------------- the pages


def source(doc: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        if (ROOT / f"{doc}{suffix}").is_file():
            return ROOT / f"{doc}{suffix}"
    return None


DOCS = toc_docs()
NOTEBOOK_DOCS = [d for d in DOCS if source(d) is not None and source(d).suffix == ".ipynb"]


def html_path(doc: str) -> Path:
    return HTML / f"{doc}.html"


@lru_cache(maxsize=None)
def soup(doc: str) -> BeautifulSoup:
    return BeautifulSoup(html_path(doc).read_text(encoding="utf-8"), "html.parser")


def article(doc: str):
    """The page's own content (without the theme's navigation and header)."""
    page = soup(doc)
    return page.find("article") or page.find("main") or page.body


def visible_prose(node) -> str:
    """Text of ``node`` outside code (cell inputs, <pre>, <code>), scripts and styles."""
    node = BeautifulSoup(str(node), "html.parser")
    for tag in node.find_all(["pre", "code", "script", "style", "textarea"]):
        tag.decompose()
    for tag in node.select(".cell_input"):
        tag.decompose()
    return node.get_text(" ")


def is_remote(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return url.startswith("//") or scheme not in {"", "data", "blob", "mailto", "javascript"}


def local_target(page: Path, url: str) -> Path | None:
    """The file in _build/html that a relative URL on ``page`` points at (None for anchors)."""
    path = unquote(urlsplit(url).path)
    if not path:
        return None
    if path.startswith("/"):
        return HTML / path.lstrip("/")
    return Path(posixpath.normpath((page.parent / path).as_posix()))


def notebook_cells(doc: str) -> list:
    return nbformat.read(source(doc), as_version=4).cells


def ids(docs):
    return [d.replace("/", "-") for d in docs]


# ----------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_toc_page_built(doc):
    path = html_path(doc)
    assert path.is_file(), f"{doc}: listed in _toc.yml but {path.relative_to(ROOT)} was not built"
    assert article(doc) is not None and article(doc).get_text(strip=True), f"{doc}: empty page"


def test_site_root_redirects_to_the_book():
    text = (HTML / "index.html").read_text(encoding="utf-8")
    assert f"{TOC['root']}.html" in text, "_build/html/index.html does not lead to the root page"


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_no_tracebacks_errors_or_warnings(doc):
    page = article(doc)
    problems = []
    for node in page.select(".output.traceback, .output.error, .traceback"):
        problems.append(f"error output: {node.get_text(' ', strip=True)[:300]!r}")
    for node in page.select(".output.stderr"):
        text = node.get_text(" ", strip=True)
        if re.search(r"Traceback|\b\w*(Error|Exception|Warning)\b", text):
            problems.append(f"stderr output: {text[:300]!r}")
    for node in page.select(".system-message, .problematic"):
        problems.append(f"docutils problem: {node.get_text(' ', strip=True)[:300]!r}")
    prose = visible_prose(page)
    if "Traceback (most recent call last)" in prose:
        problems.append("the text 'Traceback (most recent call last)' is on the page")
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_images_exist(doc):
    page = html_path(doc)
    missing = []
    for img in soup(doc).find_all("img"):
        src = img.get("src", "")
        assert src, f"{doc}: <img> without src: {img}"
        if src.startswith("data:"):
            assert len(src.split(",", 1)[-1]) > 32, f"{doc}: empty data: image {src[:60]}"
            continue
        assert not is_remote(src), f"{doc}: remote image {src} (the site must work offline)"
        target = local_target(page, src)
        if target is None or not target.is_file() or target.stat().st_size == 0:
            missing.append(src)
    assert not missing, f"{doc}: images missing or empty in _build/html: {missing}"


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS, ids=ids(NOTEBOOK_DOCS))
def test_notebook_figures_have_alt_text(doc):
    """Docutils falls back to the file name as alt; a figure needs a description."""
    bad = []
    for img in article(doc).select(".cell_output img, figure img"):
        alt = (img.get("alt") or "").strip()
        src = img.get("src", "")
        if (
            not alt
            or alt == src
            or alt == posixpath.basename(src)
            or re.search(r"\.(png|jpe?g|svg|gif|webp)$", alt, re.I)
        ):
            bad.append(src[:80])
    assert not bad, (
        f"{doc}: figures without alt text: {bad}. Set it in the cell metadata, e.g. "
        '"mystnb": {"image": {"alt": "..."}} (or "figure": {"caption": ...} with "image": {"alt"})'
    )


GLUE_TEXT = re.compile(r"\{glue:text\}`[^`]+`")
GLUE_ANY = re.compile(r"\{glue(:\w+)?\}`[^`]+`|```\{glue(:\w+)?\}|:::\{glue(:\w+)?\}")


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS, ids=ids(NOTEBOOK_DOCS))
def test_glued_values_rendered(doc):
    markdown = "\n".join(c.source for c in notebook_cells(doc) if c.cell_type == "markdown")
    n_text = len(GLUE_TEXT.findall(markdown))
    uses_glue = bool(GLUE_ANY.search(markdown))
    page = article(doc)
    pasted = page.select(".pasted-text")
    assert len(pasted) >= n_text, (
        f"{doc}: {n_text} {{glue:text}} roles in the notebook but {len(pasted)} pasted-text "
        "spans on the page (unresolved glue)"
    )
    empty = [str(span) for span in pasted if not span.get_text(strip=True)]
    assert not empty, f"{doc}: empty glued values: {empty}"
    if uses_glue:
        assert page.select(".pasted-text, .pasted-math, .pasted-inline, figure, .cell_output"), (
            f"{doc}: uses glue but nothing was pasted"
        )
    assert "{glue" not in visible_prose(page), f"{doc}: literal '{{glue' left in the text"


def _colab_url(doc: str) -> str:
    repo = CONFIG["repository"]["url"].rstrip("/")
    assert repo.startswith("https://github.com/"), f"repository.url {repo!r} is not on GitHub"
    base = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    # the launch buttons open the Colab-ready notebooks, on the branch the theme is told to use
    theme = CONFIG.get("sphinx", {}).get("config", {}).get("html_theme_options", {})
    branch = theme.get("repository_branch") or CONFIG["repository"].get("branch", "main")
    in_repo = posixpath.join(CONFIG["repository"].get("path_to_book", "") or "", f"{doc}.ipynb")
    return f"{base}/github/{repo.removeprefix('https://github.com/')}/blob/{branch}/{in_repo}"


def test_colab_launch_config():
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"
    assert CONFIG["repository"]["branch"] == "main"


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS, ids=ids(NOTEBOOK_DOCS))
def test_colab_link_points_to_this_notebook(doc):
    links = {
        a["href"]
        for a in soup(doc).find_all("a", href=True)
        if a["href"].startswith("https://colab.research.google.com/")
    }
    expected = _colab_url(doc)
    assert links, f"{doc}: no Colab launch link on the page"
    assert links == {expected}, f"{doc}: Colab links {sorted(links)}, expected {expected}"
    assert (ROOT / f"{doc}.ipynb").is_file()


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_source_download(doc):
    """The download button offers the page's source (.ipynb for chapters) from the site itself."""
    page = html_path(doc)
    links = [a["href"] for a in soup(doc).select("a.btn-download-source-button[href]")]
    suffix = source(doc).suffix if source(doc) else ".md"
    assert links, f"{doc}: no download button for the {suffix} source"
    assert all(not is_remote(h) for h in links), f"{doc}: remote download link {links}"
    target = local_target(page, links[0])
    assert target is not None and target.name == Path(doc).name + suffix, (
        f"{doc}: download link {links[0]} is not the {suffix} source"
    )
    assert target.is_file() and target.stat().st_size > 0, f"{doc}: {links[0]} missing on the site"
    if suffix == ".ipynb":
        nb = nbformat.reads(target.read_text(encoding="utf-8"), as_version=4)
        assert nb.cells, f"{doc}: downloaded notebook has no cells"
        assert "google.colab" in "".join(c.source for c in nb.cells if c.cell_type == "code"), (
            f"{doc}: downloaded notebook lacks the Colab install cell"
        )


def _bib_entries() -> set[str]:
    keys = set()
    for name in CONFIG.get("bibtex_bibfiles", []):
        text = (ROOT / name).read_text(encoding="utf-8")
        keys |= set(re.findall(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", text, re.M))
    return keys


def test_bibliography_page_lists_entries():
    pages = [d for d in DOCS if source(d) and "{bibliography}" in source(d).read_text("utf-8")]
    assert pages, "no page of _toc.yml has a {bibliography} directive"
    entries = _bib_entries()
    assert entries, "no entries in the bibtex_bibfiles of _config.yml"
    for doc in pages:
        cites = article(doc).select(".citation")
        assert cites, f"{doc}: bibliography page has no entries"
        if ":all:" in source(doc).read_text("utf-8"):
            assert len(cites) == len(entries), f"{doc}: {len(cites)} entries shown, {len(entries)} in the .bib files"
        for cite in cites:
            assert cite.get_text(strip=True), f"{doc}: empty bibliography entry"


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_local_links_resolve(doc):
    """Every link to a page of the site (citations included) reaches an existing file and id."""
    page = html_path(doc)
    broken = []
    for a in soup(doc).find_all("a", href=True):
        href = a["href"]
        if is_remote(href) or href.startswith(("mailto:", "javascript:")):
            continue
        target = local_target(page, href)
        fragment = urlsplit(href).fragment
        if target is None:
            target = page
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(href)
            continue
        if fragment and target.suffix == ".html" and target.is_relative_to(HTML):
            rel = target.relative_to(HTML).with_suffix("").as_posix()
            other = soup(rel) if rel in DOCS else BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser")
            if other.find(id=unquote(fragment)) is None and other.find(attrs={"name": unquote(fragment)}) is None:
                broken.append(href)
    assert not broken, f"{doc}: links to missing files or anchors: {broken}"


def _all_html() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts)


def test_no_remote_scripts_or_styles():
    """Nothing a page loads comes from another host (the site must work with no network)."""
    remote = []
    for path in _all_html():
        page = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        for tag, attr in (
            ("script", "src"),
            ("link", "href"),
            ("img", "src"),
            ("iframe", "src"),
            ("source", "src"),
            ("video", "src"),
            ("audio", "src"),
            ("embed", "src"),
            ("object", "data"),
        ):
            for node in page.find_all(tag):
                url = node.get(attr)
                if tag == "link" and set(node.get("rel") or []) & {"canonical", "alternate"}:
                    continue
                if url and is_remote(url):
                    remote.append(f"{path.relative_to(HTML)}: <{tag} {attr}={url}>")
        for style in page.find_all("style"):
            for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", style.get_text()):
                if is_remote(url):
                    remote.append(f"{path.relative_to(HTML)}: <style> url({url})")
    assert not remote, "remote resources:\n  " + "\n  ".join(remote)


def test_no_remote_urls_in_stylesheets():
    remote = []
    for css in sorted((HTML / "_static").rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", text) + re.findall(r"@import\s+['\"]([^'\"]+)", text):
            if is_remote(url):
                remote.append(f"{css.relative_to(HTML)}: {url}")
    assert not remote, "stylesheets that load from other hosts:\n  " + "\n  ".join(remote)


def test_mathjax_served_locally():
    script = HTML / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert script.is_file() and script.stat().st_size > 100_000, (
        "_static/mathjax/tex-mml-chtml.js missing: `make book` fetches MathJax (make mathjax)"
    )
    fonts = list((HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) > 10, "MathJax CHTML fonts missing from _static/mathjax"
    with_math = 0
    for doc in DOCS:
        page = soup(doc)
        if not page.select(".math"):
            continue
        with_math += 1
        srcs = [s.get("src", "") for s in page.find_all("script") if "mathjax" in s.get("src", "")]
        assert len(srcs) == 1 and not is_remote(srcs[0]), f"{doc}: MathJax scripts {srcs}"
        assert local_target(html_path(doc), srcs[0]) == script, f"{doc}: MathJax from {srcs[0]}"
        config = [s.get_text() for s in page.find_all("script") if "window.MathJax" in s.get_text()]
        assert config, f"{doc}: MathJax configuration (mathjax3_config) missing"
    assert with_math, "no page of the book has any math"


EXPLORER = "book/08_explorer"


@pytest.mark.skipif(EXPLORER not in DOCS, reason=f"{EXPLORER} is not in _toc.yml yet")
def test_explorer_page_loads_its_scripts_from_the_site():
    """The explorer computes in the reader's browser: its scripts, the worker, the styles and
    uPlot (pinned in the Makefile) are on the site, loaded in order, and no frame is precomputed."""
    page = html_path(EXPLORER)
    box = soup(EXPLORER).select("div.qn-explorer")
    assert len(box) == 1, f"{EXPLORER}: expected one <div class='qn-explorer'>, got {len(box)}"
    assert not box[0].find("img") and "data:image" not in str(box[0]), f"{EXPLORER}: precomputed frames"
    srcs = [
        s.get("src", "")
        for s in soup(EXPLORER).find_all("script")
        if "qn-explorer" in s.get("src", "") or "uPlot" in s.get("src", "")
    ]
    names = [posixpath.basename(urlsplit(s).path) for s in srcs]
    assert names == ["uPlot.iife.min.js", "qn-explorer-core.js", "qn-explorer.js"], names
    for src in srcs:
        assert not is_remote(src), src
        target = local_target(page, src)
        assert target is not None and target.is_file() and target.stat().st_size > 1000, f"{src} missing"
    static = HTML / "_static"
    for name in ("qn-explorer-worker.js", "qn-explorer.css", "uplot/uPlot.min.css", "uplot/LICENSE"):
        assert (static / name).is_file(), f"_static/{name} missing: `make book` copies book/explorer and uPlot"
    version = re.search(r"^UPLOT_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    banner = (static / "uplot" / "uPlot.iife.min.js").read_text(encoding="utf-8")[:200]
    assert f"(v{version})" in banner, f"uPlot on the site is not the pinned {version}: {banner[:80]!r}"
