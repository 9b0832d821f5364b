"""Sphinx extension: what the PDF (``make pdf``, LaTeX builder) shows differently from the site.

- Solutions are omitted: a printed course book keeps its exercises and leaves the answers to
  the site, where they sit collapsed under each exercise, and to the notebooks, where their code
  runs. Each solution (``solution`` or ``solution-start`` ... ``solution-end``, code cells
  included) is replaced by one line pointing to the chapter on the published site.

The HTML build is untouched.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict:
    app.connect("doctree-resolved", _omit_solutions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def _omit_solutions(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "latex":
        return
    try:
        from sphinx_exercise.nodes import solution_node
    except ImportError:
        return
    site = (app.config.html_baseurl or "").rstrip("/")
    registry = getattr(app.env, "sphinx_exercise_registry", {})
    for node in list(doctree.findall(solution_node)):
        exercise = node.get("target_label", "")
        doc = registry.get(exercise, {}).get("docname") or registry.get(node.get("label"), {}).get("docname")
        para = nodes.paragraph()
        para += nodes.emphasis(text="Solution: ")
        if site and doc:
            url = f"{site}/{doc}.html" + (f"#{exercise}" if exercise else "")
            para += nodes.Text("on the book's site, ")
            para += nodes.reference(url, url, refuri=url)
            para += nodes.Text(", and in the chapter's notebook.")
        else:
            para += nodes.Text("on the book's site and in the chapter's notebook.")
        node.replace_self(para)
