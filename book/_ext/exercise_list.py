"""Sphinx extension: ``{exercise-list}``, every exercise of the book grouped by kind.

The teaching guide uses it to say which exercises suit homework. An exercise's kind is the
start of its title, by the authors' convention (book/AUTHORING.md): ``Pen and paper: ...``,
``Predict, then run: ...``, ``Open question: ...``. The list is built from sphinx-exercise's
registry once every document has been read, so exercises added to any chapter appear here
without editing the guide.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Kinds in the order the guide lists them, with what each suits.
KINDS = {
    "Pen and paper": "homework: a derivation to hand in, checked in class against the solution's run",
    "Predict, then run": "a lab session or the end of a lecture: predict on paper, then run the cell",
    "Open question": "a project or take-home: the tools are in quadnet, the answer is not in the text",
}
OTHER = "Other"


class exercise_list_node(nodes.General, nodes.Element):
    """Placeholder, replaced once all exercises are known."""


class ExerciseList(SphinxDirective):
    has_content = False

    def run(self):
        return [exercise_list_node()]


def setup(app: Sphinx) -> dict:
    app.add_node(exercise_list_node)
    app.add_directive("exercise-list", ExerciseList)
    app.connect("doctree-resolved", _fill)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def kind_of(title: str) -> tuple[str, str]:
    """('Pen and paper', "Wick's theorem") from "Pen and paper: Wick's theorem"."""
    head, sep, rest = title.partition(":")
    if sep and head.strip() in KINDS:
        return head.strip(), rest.strip()
    return OTHER, title.strip()


def _fill(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    placeholders = list(doctree.findall(exercise_list_node))
    if not placeholders:
        return
    registry = getattr(app.env, "sphinx_exercise_registry", {})
    order = {doc: i for i, doc in enumerate(_toc_order(app))}
    groups: dict[str, list] = {k: [] for k in [*KINDS, OTHER]}
    for label, entry in registry.items():
        if not str(entry.get("type", "")).startswith("exercise"):
            continue
        text = _title(entry.get("node")) or label
        kind, rest = kind_of(text)
        parts = _title_parts(entry.get("node"), strip_kind=kind in KINDS) or [nodes.Text(rest)]
        groups[kind].append((order.get(entry["docname"], 10**6), entry["docname"], label, rest, parts))
    out = nodes.container(classes=["exercise-list"])
    for kind, items in groups.items():
        if not items:
            continue
        para = nodes.paragraph()
        para += nodes.strong(text=f"{kind}")
        if kind in KINDS:
            para += nodes.Text(f" ({KINDS[kind]}):")
        out += para
        bullets = nodes.bullet_list()
        for _, doc, label, _rest, parts in sorted(items, key=lambda item: item[:4]):
            item = nodes.list_item()
            p = nodes.paragraph()
            ref = nodes.reference("", "", internal=True)
            ref["refuri"] = app.builder.get_relative_uri(fromdocname, doc) + "#" + label
            for part in parts:  # the title's own nodes: its math stays math
                ref += part.deepcopy()
            p += ref
            p += nodes.Text(f" ({app.env.titles[doc].astext()})")
            item += p
            bullets += item
        out += bullets
    if not any(groups.values()):
        out += nodes.paragraph(text="No exercise yet.")
    for node in placeholders:
        node.replace_self(out.deepcopy())


def _title_parts(node, strip_kind: bool) -> list:
    """The nodes of an exercise's title (text and math), without its parentheses and, with
    ``strip_kind``, without the leading ``Kind:``; [] if it has none."""
    if node is None:
        return []
    from sphinx_exercise.nodes import exercise_subtitle

    sub = next(iter(node.findall(exercise_subtitle)), None)
    if sub is None or not sub.children:
        return []
    parts = [child.deepcopy() for child in sub.children]
    if isinstance(parts[0], nodes.Text):
        first = str(parts[0]).lstrip().lstrip("(")
        if strip_kind:
            first = first.partition(":")[2].lstrip()
        parts[0] = nodes.Text(first)
    if isinstance(parts[-1], nodes.Text):
        parts[-1] = nodes.Text(str(parts[-1]).rstrip().rstrip(")"))
    return [p for p in parts if not (isinstance(p, nodes.Text) and not str(p))]


def _title(node) -> str:
    """The title given to an exercise directive (its argument), '' if none."""
    if node is None:
        return ""
    from sphinx_exercise.nodes import exercise_subtitle

    sub = next(iter(node.findall(exercise_subtitle)), None)
    return sub.astext().strip().strip("()").strip() if sub is not None else ""


def _toc_order(app: Sphinx) -> list[str]:
    """Documents in reading order (the root's toctree, depth first)."""
    seen: list[str] = []

    def walk(doc: str) -> None:
        if doc in seen:
            return
        seen.append(doc)
        for child in app.env.toctree_includes.get(doc, []):
            walk(child)

    walk(app.config.root_doc)
    return seen


__all__ = ["ExerciseList", "kind_of", "KINDS"]
