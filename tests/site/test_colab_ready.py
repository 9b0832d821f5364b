"""The Colab editions of the chapters (``_build/colab/<doc>.ipynb``, written by ``make book``).

A student who opens a chapter from a launch button gets its Colab edition. These checks read
every one of them against its source notebook and the built site:

- no MyST syntax is left in the Markdown (roles, directives, ``(label)=`` targets, MyST
  comments, substitutions);
- every glued number of the source is there, formatted as the site formats it;
- every cross-reference is a link to a page and an anchor that exist on the built site;
- the code is the source's code, cell for cell (so `make test-notebooks` runs it), without
  outputs; solution cells are collapsed;
- a subset of them runs in a kernel where ``import myst_nb`` fails, as on Colab
  (``test_runs_without_myst_nb``; ``QUADNET_COLAB_EXECUTE=all`` runs every one).

The converter's rules are also unit-tested here on small inputs (no build needed).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from booktoc import toc_docs

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "_build"
COLAB = BUILD / "colab"
HTML = BUILD / "html"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
SITE = CONFIG["html"]["baseurl"].rstrip("/") + "/"

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import colab_markdown as cm  # noqa: E402

from quadnet.book import COLAB_INSTALL  # noqa: E402

NOTEBOOK_DOCS = [d for d in toc_docs() if (ROOT / f"{d}.ipynb").is_file()]

# Written here, not imported from the converter, so that the converter cannot agree with itself.
RAW = {
    "role": re.compile(r"\{[A-Za-z][\w:.+-]*\}`"),
    "directive": re.compile(r"^\s*(?:`{3,}|~{3,}|:{3,})\s*\{[^}\n]+\}", re.M),
    "target": re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),
    "MyST comment": re.compile(r"^%", re.M),
    "substitution": re.compile(r"\{\{[^}]*\}\}"),
    "block break": re.compile(r"^\+\+\+\s*$", re.M),
}
GLUE_TEXT = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
REF = re.compile(r"\{(?:ref|numref|eq)\}`([^`]*)`")


def ids(docs):
    return [d.rsplit("/", 1)[-1] for d in docs]


def _colab(doc: str) -> nbformat.NotebookNode:
    path = COLAB / f"{doc}.ipynb"
    assert path.is_file(), f"{path.relative_to(ROOT)} missing: `make book` writes it (book/_ext/colab_export.py)"
    return nbformat.read(path, as_version=4)


def _source(doc: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


# --------------------------------------------------------------------------- the built editions

site = pytest.mark.site
PARAMS = NOTEBOOK_DOCS or [pytest.param(None, marks=pytest.mark.skip(reason="no notebook"))]


@site
def test_every_notebook_chapter_has_a_colab_edition():
    missing = [d for d in NOTEBOOK_DOCS if not (COLAB / f"{d}.ipynb").is_file()]
    assert not missing, f"no Colab edition for {missing} under {COLAB} (run `make book`)"
    extra = sorted(
        str(p.relative_to(COLAB).with_suffix(""))
        for p in COLAB.rglob("*.ipynb")
        if str(p.relative_to(COLAB).with_suffix("")) not in NOTEBOOK_DOCS
    )
    assert not extra, f"Colab editions of documents not in _toc.yml (stale?): {extra}"


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_no_raw_myst_in_markdown(doc):
    problems = []
    for n, text in enumerate(_markdown(_colab(doc))):
        outside_code = re.sub(r"^(`{3,}|~{3,})[^\n]*\n.*?^\1\s*$", "", text, flags=re.M | re.S)
        for what, pattern in RAW.items():
            for m in pattern.finditer(outside_code):
                line = outside_code[: m.start()].count("\n") + 1
                problems.append(f"Markdown cell {n}, line {line}: raw {what} {m.group(0)!r}")
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_code_is_the_sources_code_without_outputs(doc):
    colab, source = _colab(doc), _source(doc)
    code = [re.sub(r"\A#@title [^\n]*\n", "", c) for c in _code(colab)]
    assert code == _code(source), f"{doc}: the Colab edition's code cells differ from the source's"
    assert code and code[0].strip() == COLAB_INSTALL.strip(), f"{doc}: first code cell is not the install cell"
    with_outputs = [i for i, c in enumerate(colab.cells) if c.cell_type == "code" and c.get("outputs")]
    assert not with_outputs, f"{doc}: code cells {with_outputs} carry outputs"


def _glue(doc: str) -> dict:
    path = BUILD / "jupyter_execute" / f"{doc}.glue.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_glued_numbers_are_filled_in(doc):
    """Each {glue:text} of a source cell reads, in the matching Colab cell, as the build's value."""
    from myst_nb.core.variables import format_plain_text

    glue = _glue(doc)
    source = _source(doc).cells
    checked, problems = 0, []
    for cell in _colab(doc).cells:
        index = cell.metadata.get("quadnet", {}).get("source_cell")
        if cell.cell_type != "markdown" or index is None:
            continue
        for key, spec in GLUE_TEXT.findall(source[index].source):
            assert key in glue, f"{doc}: {{glue:text}}`{key}` but no such glued value in the build"
            want = format_plain_text("".join(glue[key]["data"]["text/plain"]), spec or "s")
            checked += 1
            if want not in cell.source:
                problems.append(f"cell {index}: {key}:{spec} -> {want!r} not in its Colab cell")
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)
    assert checked == sum(len(GLUE_TEXT.findall(c.source)) for c in source if c.cell_type == "markdown"), (
        f"{doc}: some Markdown cells with glue have no Colab counterpart"
    )


def _anchors(doc: str) -> set[str]:
    page = HTML / f"{doc}.html"
    assert page.is_file(), f"{page} missing"
    return set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_links_to_the_site_reach_existing_pages_and_anchors(doc):
    links = re.findall(r"\]\((" + re.escape(SITE) + r"[^)\s]*)\)", "\n".join(_markdown(_colab(doc))))
    n_refs = sum(len(REF.findall(s)) for s in _markdown(_source(doc)))
    assert len(links) >= n_refs, f"{doc}: {n_refs} cross-references but {len(links)} links to the site"
    problems = []
    for link in links:
        path, _, anchor = link.removeprefix(SITE).partition("#")
        if not path.endswith(".html"):
            problems.append(f"{link}: not a page")
            continue
        target = path.removesuffix(".html")
        if not (HTML / path).is_file():
            problems.append(f"{link}: no page {path} on the built site")
        elif anchor and anchor not in _anchors(target):
            problems.append(f"{link}: no id {anchor!r} on {path}")
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_solutions_are_collapsed(doc):
    source = "\n".join(_markdown(_source(doc)))
    n_solutions = len(re.findall(r"\{solution(?:-start)?\}", source))
    colab = _colab(doc)
    markdown = "\n".join(_markdown(colab))
    assert markdown.count("<details>") >= n_solutions, f"{doc}: {n_solutions} solutions, fewer <details>"
    hidden = [c for c in colab.cells if c.cell_type == "code" and c.metadata.get("cellView") == "form"]
    for cell in hidden:
        assert cell.source.startswith("#@title Solution"), f"{doc}: form cell without a title: {cell.source[:60]!r}"
    if "{solution-start}" in source:
        assert hidden, f"{doc}: gated solutions, but no code cell is collapsed"


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_header_says_where_numbers_and_profiles_come_from(doc):
    colab = _colab(doc)
    headers = [c for c in colab.cells if c.metadata.get("quadnet", {}).get("colab_header")]
    assert len(headers) == 1, f"{doc}: {len(headers)} header cells"
    text = headers[0].source
    assert "QUADNET_PROFILE=quick" in text and "computed by the site's build" in text
    assert f"profile `{headers[0].metadata['quadnet']['build_profile']}`" in text
    first_code = next(i for i, c in enumerate(colab.cells) if c.cell_type == "code")
    assert colab.cells.index(headers[0]) == first_code + 1, f"{doc}: header is not right after the install cell"


@site
@pytest.mark.parametrize("doc", PARAMS, ids=ids(NOTEBOOK_DOCS) or None)
def test_launch_button_opens_this_colab_edition(doc):
    """The chapter page's Colab link is blob/<Colab branch>/<doc>.ipynb of the repository: the
    path at which the publishing workflow puts this edition on that branch."""
    theme = CONFIG["sphinx"]["config"]["html_theme_options"]
    repo = CONFIG["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    expected = f"https://colab.research.google.com/github/{repo}/blob/{theme['repository_branch']}/{doc}.ipynb"
    page = (HTML / f"{doc}.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page))
    assert links == {expected}, f"{doc}: Colab links {sorted(links)}, expected {expected}"
    assert (COLAB / f"{doc}.ipynb").is_file()


# ------------------------------------------------------------------- executed without myst-nb

BLOCKER = """raise ImportError("myst_nb is not installed on Colab (tests/site/test_colab_ready.py blocks it)")\n"""
PROBE = (
    "try:\n    import myst_nb\nexcept ImportError:\n    pass\n"
    "else:\n    raise AssertionError('myst_nb importable: the Colab environment is not emulated')"
)


def _execute_list() -> list[str]:
    """Colab editions to execute: QUADNET_COLAB_EXECUTE=all | docnames (space or comma separated).

    The default is chapter 1, the pilot with exercises: the code of every edition is the source's
    code (test_code_is_the_sources_code_without_outputs), which `make test-notebooks` executes,
    so what only this test can catch is a dependence on myst-nb or on the build's files, which
    one chapter exercises as well as all (glue goes through quadnet.book.glue everywhere)."""
    wanted = os.environ.get("QUADNET_COLAB_EXECUTE", "book/01_model").replace(",", " ").split()
    return NOTEBOOK_DOCS if wanted == ["all"] else [d for d in wanted if d in NOTEBOOK_DOCS]


@site
@pytest.mark.parametrize(
    "doc",
    _execute_list() or [pytest.param(None, marks=pytest.mark.skip(reason="none selected"))],
    ids=ids(_execute_list()) or None,
)
def test_runs_without_myst_nb(doc, tmp_path):
    """The Colab edition runs, at the quick profile, in a fresh kernel that cannot import myst_nb,
    in an empty working directory (Colab has none of the repository's files)."""
    import nbclient

    blocker = tmp_path / "blocked" / "myst_nb"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(BLOCKER, encoding="utf-8")
    workdir = tmp_path / "content"
    workdir.mkdir()
    nb = _colab(doc)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first_code + 1, nbformat.v4.new_code_cell(PROBE))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(
        QUADNET_PROFILE="quick",
        PYTHONPATH=os.pathsep.join([str(blocker.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=env)
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "quadnet: profile=quick" in texts, "the banner did not report the quick profile"


# ------------------------------------------------------------------- the converter's rules


def _ctx(**kw) -> cm.Context:
    labels = {
        "ch-a": cm.Target("book/a", "ch-a", "1. Chapter A"),
        "fig-x": cm.Target("book/a", "fig-x", "", "Fig. 2"),
        "eq-y": cm.Target("book/a", "equation-eq-y", "(3)", "(3)"),
        "ex-1": cm.Target("book/a", "ex-1", "Exercise 1", "Exercise 1"),
    }
    base = dict(
        docname="book/a",
        site_url="https://example.org/book/",
        labels=labels,
        titles={"book/a": "1. Chapter A", "book/bibliography": "Bibliography", "book/b": "2. B"},
        glue={"x": {"data": {"text/plain": "0.123456"}}, "n": {"data": {"text/plain": "200"}}},
        citations={"k1": ("Bocchi et al.", "2026"), "k2": ("Saad and Solla", "1995")},
    )
    base.update(kw)
    return cm.Context(**base)


def _md(text: str, ctx=None) -> str:
    return cm.convert_markdown(text, ctx or _ctx())[0]


def test_glue_text_uses_the_format_spec():
    assert _md("r = {glue:text}`x:.3f`, N = {glue:text}`n`") == "r = 0.123, N = 200"


def test_glue_key_missing_is_an_error():
    with pytest.raises(cm.UnsupportedMyST, match="no glued value 'zz'"):
        _md("{glue:text}`zz:.2f`")


def test_references_become_links_to_the_published_page():
    assert _md("see {ref}`ch-a`") == "see [1. Chapter A](https://example.org/book/book/a.html#ch-a)"
    assert _md("{numref}`fig-x`") == "[Fig. 2](https://example.org/book/book/a.html#fig-x)"
    assert _md("{ref}`this one <ex-1>`") == "[this one](https://example.org/book/book/a.html#ex-1)"
    assert _md("{eq}`eq-y`") == "[(3)](https://example.org/book/book/a.html#equation-eq-y)"
    assert _md("[B](b.md)") == "[B](https://example.org/book/book/b.html)"
    with pytest.raises(cm.UnsupportedMyST, match="no such label"):
        _md("{ref}`nowhere`")


def test_citations_become_author_year_text():
    bib = "https://example.org/book/book/bibliography.html"
    assert _md("{cite:p}`k1,k2`") == f"([Bocchi et al., 2026; Saad and Solla, 1995]({bib}))"
    assert _md("{cite:t}`k1`") == f"[Bocchi et al.]({bib}) (2026)"
    assert _md("{cite}`k2`") == f"([Saad and Solla, 1995]({bib}))"


def test_targets_comments_and_breaks_are_removed_and_math_kept():
    out = _md("(ch-a)=\n# Title\n% a comment\n+++\nText with $\\{a\\}_{glue}$ and `{not a role}`.")
    assert out == "# Title\nText with $\\{a\\}_{glue}$ and `{not a role}`."


def test_directives_become_plain_markdown():
    out = _md("```{note}\nBe careful: {glue:text}`n`.\n```")
    assert out == "> **Note**\n>\n> Be careful: 200."
    out = _md(":::{dropdown} More\nHidden text.\n:::")
    assert out == "<details>\n<summary>More</summary>\n\nHidden text.\n\n</details>"
    out = _md("```{math}\n:label: eq-y\na = b\n```")
    assert out == "$$\na = b \\tag{3}\n$$"
    out = _md("```{exercise} Pen and paper: derive it\n:label: ex-1\n\nShow that $a = b$.\n```")
    assert out == "> **Exercise 1 — Pen and paper: derive it**\n>\n> Show that $a = b$."
    with pytest.raises(cm.UnsupportedMyST, match="directive .list-table"):
        _md("```{list-table}\n* - a\n```")


def test_plain_code_blocks_are_left_alone():
    text = "```python\nx = {glue:text}`not resolved in code`\n```"
    assert _md(text) == text


def test_gated_solution_spans_cells_and_collapses_its_code():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(COLAB_INSTALL),
            nbformat.v4.new_markdown_cell(
                "```{exercise} Predict, then run: x\n:label: ex-1\nDo it.\n```\n\n"
                "````{solution-start} ex-1\n:class: dropdown\n````\nHere is how."
            ),
            nbformat.v4.new_code_cell("assert 1 + 1 == 2"),
            nbformat.v4.new_markdown_cell("More of the solution.\n\n````{solution-end}\n````\n\nAfter it."),
            nbformat.v4.new_code_cell("print('not a solution')"),
        ]
    )
    out = cm.convert_notebook(nb, _ctx())
    md = [c.source for c in out.cells if c.cell_type == "markdown"]
    assert md[0].startswith("> **Exercise 1 — Predict, then run: x**")
    assert "<details>\n<summary><b>Solution to Exercise 1</b> (click to show)</summary>\n\nHere is how." in md[0]
    assert md[1] == (
        "<details>\n<summary><b>Solution to Exercise 1</b> (continued)</summary>\n\n"
        "More of the solution.\n\n</details>\n\nAfter it."
    )
    code = [c for c in out.cells if c.cell_type == "code"]
    assert code[1].metadata["cellView"] == "form" and code[1].source.startswith("#@title Solution to Exercise 1")
    assert "cellView" not in code[2].metadata and code[2].source == "print('not a solution')"
    for text in md:
        for pattern in RAW.values():
            assert not pattern.search(text), text
