"""MyST Markdown -> plain (Colab-flavoured) Markdown, from what a Sphinx build resolved.

Pure functions, no Sphinx import: `colab_export.py` fills a :class:`Context` from the build
environment and calls :func:`convert_notebook`; tests call the same functions on small inputs.

What becomes what (see book/AUTHORING.md for the authors' side):

- ``{glue:text}`key:fmt``` and the other glue roles -> the value glued by the executed build;
- ``{ref}``, ``{numref}``, ``{eq}``, ``{doc}`` and links to ``.md``/``.ipynb`` files -> Markdown
  links to the page on the published site;
- ``{cite}``/``{cite:p}``/``{cite:t}``... -> author-year text linked to the bibliography page;
- ``(label)=`` targets, ``% comment`` lines and ``+++`` breaks -> removed;
- directives: admonitions -> block quotes, ``dropdown`` and solutions -> ``<details>`` blocks,
  ``exercise`` -> a numbered block quote, ``math`` -> ``$$`` display math (numbered with
  ``\\tag``), ``figure``/``image`` -> images from the site, ``code-block`` -> fenced code,
  ``glue`` directives -> the glued value (figures as cell attachments). A code cell inside a
  gated solution (``solution-start`` ... ``solution-end``) is collapsed in Colab with
  ``cellView: form`` and a ``#@title`` line.

Anything else raises :class:`UnsupportedMyST`, naming the construct, so the build fails instead
of showing a student raw syntax.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "Context",
    "Target",
    "UnsupportedMyST",
    "convert_markdown",
    "convert_notebook",
    "format_glue_text",
    "RAW_MYST",
]

#: Patterns of MyST syntax that must not survive the conversion (the tests use them too).
RAW_MYST = {
    "role": re.compile(r"\{[A-Za-z][\w:.+-]*\}`"),
    "directive": re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{[A-Za-z][\w:.+-]*\}", re.M),
    "label": re.compile(r"^\s*\([A-Za-z0-9_.:-][^()\s]*\)=\s*$", re.M),
    "substitution": re.compile(r"\{\{\s*[A-Za-z_][\w.-]*\s*\}\}"),
    "comment": re.compile(r"^%", re.M),
}

ADMONITIONS = {
    "note",
    "tip",
    "hint",
    "important",
    "warning",
    "caution",
    "attention",
    "danger",
    "error",
    "seealso",
    "admonition",
    "margin",
    "sidebar",
    "topic",
    "epigraph",
}
GLUE_ROLES = {"glue", "glue:", "glue:any", "glue:text", "glue:md", "glue:math"}
CITE_ROLES = {
    "cite",
    "cite:p",
    "cite:ps",
    "cite:t",
    "cite:ts",
    "cite:author",
    "cite:year",
    "cite:alp",
    "cite:text",
    "cite:label",
}

ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:.+-]*)\}`(?P<body>[^`]*)`")
FENCE = re.compile(
    r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,}|:{3,})\s*(?:\{(?P<name>[A-Za-z][\w:.+-]*)\})?\s*(?P<arg>.*?)\s*$"
)
LABEL_LINE = RAW_MYST["label"]
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


class UnsupportedMyST(ValueError):
    """A MyST construct the converter does not know how to render as plain Markdown."""


@dataclass(frozen=True)
class Target:
    """Where a label points on the published site: document, anchor, title, number."""

    docname: str
    anchor: str = ""
    title: str = ""
    number: str = ""  # "Exercise 2", "Fig. 3", "(4)": what {numref}/{eq} print


@dataclass
class Context:
    """Everything the conversion of one notebook needs from the build.

    Attributes
    ----------
    docname : str
        The document being converted, e.g. ``"book/01_model"``.
    site_url : str
        The published site, ending in ``/`` (``html.baseurl`` of _config.yml).
    labels : dict of str to Target
        Every reference target of the book (sections, figures, equations, exercises).
    titles : dict of str to str
        Title of every document, by docname (for ``{doc}`` and links to other files).
    glue : dict of str to dict
        The glued outputs of this document: key -> ``{"data": {mime: value}, ...}``.
    citations : dict of str to tuple of (str, str)
        Bibliography key -> (authors as cited, year), e.g. ``("Bocchi et al.", "2026")``.
    substitutions : dict of str to str
        ``myst_substitutions`` of the configuration.
    bibliography_doc : str
        The document holding the bibliography (citations link there).
    """

    docname: str
    site_url: str
    labels: dict[str, Target] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    glue: dict[str, dict] = field(default_factory=dict)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    bibliography_doc: str = "book/bibliography"

    def url(self, docname: str, anchor: str = "") -> str:
        """The published URL of ``docname`` (and ``#anchor``)."""
        return f"{self.site_url}{docname}.html" + (f"#{anchor}" if anchor else "")


# ---------------------------------------------------------------------------------------------
# glue


def format_glue_text(value: str, spec: str) -> str:
    """A glued ``text/plain`` value formatted like myst-nb's ``{glue:text}`` role.

    myst-nb (``myst_nb.core.variables.format_plain_text``) evaluates the text as a Python
    literal when a format spec is given and formats it; a spec of ``s`` prints the text as is.
    """
    try:
        from myst_nb.core.variables import format_plain_text
    except ImportError:  # the same rule, for use without myst-nb
        import ast

        def format_plain_text(text: str, fmt_spec: str) -> str:
            if fmt_spec == "s":
                return text
            return f"{ast.literal_eval(text):{fmt_spec}}"

    return format_plain_text(value, spec)


def _glue_value(ctx: Context, key: str, role: str) -> str:
    if "::" in key:
        raise UnsupportedMyST(f"{ctx.docname}: glue from another document ({key!r}) is not supported")
    spec = "s"
    if role == "glue:text" and ":" in key:
        key, spec = key.rsplit(":", 1)
    if key not in ctx.glue:
        raise UnsupportedMyST(f"{ctx.docname}: no glued value {key!r} in the executed notebook")
    data = ctx.glue[key].get("data", {})
    if role == "glue:md" and "text/markdown" in data:
        return _text(data["text/markdown"])
    if role == "glue:math" and "text/latex" in data:
        return f"${_text(data['text/latex']).strip('$')}$"
    if "text/plain" not in data:
        raise UnsupportedMyST(f"{ctx.docname}: glued value {key!r} has no text/plain form for {role}")
    text = _text(data["text/plain"])
    return format_glue_text(text, spec) if role == "glue:text" else text


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


# ---------------------------------------------------------------------------------------------
# inline roles


def _explicit(body: str) -> tuple[str | None, str]:
    """``text <target>`` -> (text, target); ``target`` -> (None, target)."""
    m = EXPLICIT.match(body.strip())
    if m and m.group("text"):
        return m.group("text").strip(), m.group("target").strip()
    return None, body.strip()


def _target(ctx: Context, label: str, role: str) -> Target:
    key = label.lower() if label.lower() in ctx.labels else label
    if key not in ctx.labels:
        raise UnsupportedMyST(f"{ctx.docname}: {{{role}}}`{label}`: no such label in the build")
    return ctx.labels[key]


def _ref(ctx: Context, role: str, body: str) -> str:
    text, label = _explicit(body)
    target = _target(ctx, label, role)
    if role == "numref":
        number = target.number or target.title
        shown = (
            text.replace("%s", number.split(" ", 1)[-1]).replace("{number}", number.split(" ", 1)[-1])
            if text
            else number
        )
    elif role == "eq":
        shown = text or target.number
    else:
        shown = text or target.title or target.number
    return f"[{shown}]({ctx.url(target.docname, target.anchor)})"


def _doc(ctx: Context, body: str) -> str:
    text, path = _explicit(body)
    docname = _resolve_doc(ctx, path)
    return f"[{text or ctx.titles.get(docname, docname)}]({ctx.url(docname)})"


def _resolve_doc(ctx: Context, path: str) -> str:
    path = re.sub(r"\.(md|ipynb)$", "", path)
    if path.startswith("/"):
        doc = path.lstrip("/")
    else:
        base = ctx.docname.rsplit("/", 1)[0] if "/" in ctx.docname else ""
        parts = (base.split("/") if base else []) + path.split("/")
        out: list[str] = []
        for part in parts:
            if part == "..":
                if out:
                    out.pop()
            elif part not in ("", "."):
                out.append(part)
        doc = "/".join(out)
    if ctx.titles and doc not in ctx.titles:
        raise UnsupportedMyST(f"{ctx.docname}: link to {path!r}: no such document in the build")
    return doc


def _cite(ctx: Context, role: str, body: str) -> str:
    keys = [k.strip() for k in body.split(",") if k.strip()]
    url = ctx.url(ctx.bibliography_doc)
    missing = [k for k in keys if k not in ctx.citations]
    if missing:
        raise UnsupportedMyST(f"{ctx.docname}: citation keys not in the bibliography: {missing}")
    authors = [ctx.citations[k] for k in keys]
    if role in ("cite:t", "cite:ts"):
        return "; ".join(f"[{who}]({url}) ({year})" for who, year in authors)
    if role == "cite:author":
        return ", ".join(f"[{who}]({url})" for who, _ in authors)
    if role == "cite:year":
        return ", ".join(f"[{year}]({url})" for _, year in authors)
    inner = "; ".join(f"{who}, {year}" for who, year in authors)
    return f"([{inner}]({url}))" if role not in ("cite:alp", "cite:text") else f"[{inner}]({url})"


def _role(ctx: Context, m: re.Match) -> str:
    name, body = m.group("name"), m.group("body")
    if name in GLUE_ROLES:
        return _glue_value(ctx, body.strip(), "glue:any" if name in ("glue", "glue:") else name)
    if name in ("ref", "numref", "eq"):
        return _ref(ctx, name, body)
    if name == "doc":
        return _doc(ctx, body)
    if name in CITE_ROLES:
        return _cite(ctx, name, body)
    if name == "math":
        return f"${body}$"
    if name in ("sub", "sup"):
        return f"<{name}>{body}</{name}>"
    if name in ("kbd", "code", "command", "file", "samp", "literal"):
        return f"`{body}`"
    if name in ("abbr", "term", "index", "guilabel", "menuselection", "emphasis", "strong"):
        text, _ = _explicit(body) if name != "abbr" else (re.sub(r"\s*\(.*\)\s*$", "", body), "")
        text = text or body
        return {"emphasis": f"*{text}*", "strong": f"**{text}**"}.get(name, text)
    raise UnsupportedMyST(f"{ctx.docname}: role {{{name}}} is not supported in the Colab notebooks")


def _links(ctx: Context, text: str) -> str:
    """Relative links to other documents (``x.md``, ``x.ipynb``, ``#label``) -> published URLs."""

    def repl(m: re.Match) -> str:
        label, target = m.group("text"), m.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:, attachment:
            return m.group(0)
        if target.startswith("#"):
            name = target[1:]
            if name in ctx.labels:
                t = ctx.labels[name]
                return f"[{label}]({ctx.url(t.docname, t.anchor)})"
            return f"[{label}]({ctx.url(ctx.docname, name)})"
        path, _, anchor = target.partition("#")
        if re.search(r"\.(md|ipynb)$", path):
            return f"[{label}]({ctx.url(_resolve_doc(ctx, path), anchor)})"
        if path in ctx.labels:  # MyST: [text](label)
            t = ctx.labels[path]
            return f"[{label}]({ctx.url(t.docname, t.anchor)})"
        return f"[{label}]({ctx.site_url}{_resolve_doc_dir(ctx)}{target})"

    return LINK.sub(repl, text)


def _resolve_doc_dir(ctx: Context) -> str:
    return ctx.docname.rsplit("/", 1)[0] + "/" if "/" in ctx.docname else ""


def _substitutions(ctx: Context, text: str) -> str:
    def repl(m: re.Match) -> str:
        key = m.group(0)[2:-2].strip()
        if key not in ctx.substitutions:
            raise UnsupportedMyST(f"{ctx.docname}: substitution {{{{ {key} }}}} is not defined")
        return str(ctx.substitutions[key])

    return RAW_MYST["substitution"].sub(repl, text)


_MATH_SPLIT = re.compile(r"(\$\$.*?\$\$|(?<!\\)\$[^$\n]+?(?<!\\)\$|`[^`\n]*`)", re.S)


def convert_inline(text: str, ctx: Context) -> str:
    """Resolve roles, substitutions and links in one paragraph-level chunk of Markdown.

    Math (``$...$``, ``$$...$$``) and code spans are left as they are, except that a code
    span that is the body of a role is part of that role.
    """
    text = ROLE.sub(lambda m: _role(ctx, m), text)
    pieces = _MATH_SPLIT.split(text)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:  # math or code span: untouched
            out.append(piece)
        else:
            out.append(_links(ctx, _substitutions(ctx, piece)))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# block structure: fences and directives


@dataclass
class _Directive:
    name: str
    arg: str
    options: dict[str, str]
    body: list[str]


def _split_options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``:key: value`` lines (or a ``---`` YAML block) -> options, rest -> body."""
    options: dict[str, str] = {}
    i = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is None:
            raise UnsupportedMyST("unterminated --- option block in a directive")
        for line in lines[1:end]:
            if ":" in line:
                key, value = line.split(":", 1)
                options[key.strip()] = value.strip()
        i = end + 1
    else:
        while i < len(lines) and re.match(r"^\s*:[\w-]+:", lines[i]):
            key, _, value = lines[i].strip()[1:].partition(":")
            options[key.strip()] = value.strip()
            i += 1
    return options, lines[i:]


def _parse_blocks(lines: list[str]) -> list[str | _Directive]:
    """Split lines into text lines and directives (fenced ``{name}`` blocks, nested ok).

    Plain fenced code (no ``{name}``) is kept verbatim as text.
    """
    out: list[str | _Directive] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        fence, indent = m.group("fence"), m.group("indent")
        char, width = fence[0], len(fence)
        j = i + 1
        while j < len(lines):
            c = FENCE.match(lines[j])
            if (
                c
                and c.group("fence")[0] == char
                and len(c.group("fence")) >= width
                and not c.group("name")
                and not c.group("arg")
            ):
                break
            j += 1
        if j == len(lines) and m.group("name") not in ("solution-start", "solution-end"):
            raise UnsupportedMyST(f"unclosed fence {fence} opened by {lines[i].strip()!r}")
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : j]]
        if m.group("name"):
            options, body = _split_options(body)
            out.append(_Directive(m.group("name"), m.group("arg"), options, body))
        else:
            out.extend(lines[i : j + 1])  # plain code block
        i = j + 1
    return out


@dataclass
class _State:
    """Conversion state that spans cells: the gated solution being rendered, if any."""

    solution: str | None = None  # label of the exercise whose solution is open
    solution_title: str = ""
    attachments: dict[str, dict] = field(default_factory=dict)


def _exercise_title(ctx: Context, label: str) -> str:
    target = ctx.labels.get(label)
    return target.number if target and target.number else "the exercise"


def _quote(text: str) -> str:
    return "\n".join(("> " + line) if line.strip() else ">" for line in text.splitlines())


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{body.strip()}\n\n</details>"


def _render_directive(d: _Directive, ctx: Context, state: _State) -> str:
    name = d.name
    if name in ADMONITIONS:
        title = d.arg if name in ("admonition", "topic", "sidebar") and d.arg else name.capitalize()
        if name == "seealso":
            title = "See also"
        body = _convert_lines(d.body, ctx, state)
        if "dropdown" in d.options.get("class", ""):
            return _details(f"<b>{convert_inline(title, ctx)}</b>", body)
        return _quote(f"**{convert_inline(title, ctx)}**\n\n{body}")
    if name == "dropdown":
        return _details(convert_inline(d.arg or "Details", ctx), _convert_lines(d.body, ctx, state))
    if name == "exercise":
        label = d.options.get("label", "")
        number = _exercise_title(ctx, label) if label else "Exercise"
        title = f"**{number}" + (f" — {convert_inline(d.arg, ctx)}" if d.arg else "") + "**"
        return _quote(f"{title}\n\n{_convert_lines(d.body, ctx, state)}")
    if name == "solution":
        return _details(
            f"<b>Solution to {_exercise_title(ctx, d.arg.strip())}</b> (click to show)",
            _convert_lines(d.body, ctx, state),
        )
    if name in ("math", "equation"):
        label = d.options.get("label", "")
        tag = ""
        if label and label in ctx.labels and ctx.labels[label].number:
            tag = f" \\tag{{{ctx.labels[label].number.strip('()')}}}"
        return "$$\n" + "\n".join(d.body).strip() + tag + "\n$$"
    if name in ("code-block", "code", "sourcecode", "code-cell"):
        return f"```{d.arg}\n" + "\n".join(d.body) + "\n```"
    if name in ("figure", "image"):
        return _image(d, ctx, state)
    if name in ("glue", "glue:", "glue:any", "glue:figure", "glue:math", "glue:md", "glue:text"):
        return _glue_block(d, ctx, state)
    if name == "raw" and d.arg.strip() in ("html", "markdown"):
        return "\n".join(d.body)
    if name == "only":
        return _convert_lines(d.body, ctx, state) if d.arg.strip() in ("html", "colab") else ""
    raise UnsupportedMyST(
        f"{ctx.docname}: directive {{{name}}} is not supported in the Colab "
        "notebooks (add a rule to book/_ext/colab_markdown.py)"
    )


def _image(d: _Directive, ctx: Context, state: _State) -> str:
    src = d.arg.strip()
    if not re.match(r"^https?://", src):
        src = f"{ctx.site_url}_images/{src.rsplit('/', 1)[-1]}"
    alt = d.options.get("alt", "")
    caption = _convert_lines(d.body, ctx, state).strip()
    return f"![{alt}]({src})" + (f"\n\n*{caption}*" if caption else "")


def _glue_block(d: _Directive, ctx: Context, state: _State) -> str:
    key = d.arg.strip()
    if key not in ctx.glue:
        raise UnsupportedMyST(f"{ctx.docname}: no glued value {key!r} in the executed notebook")
    data = ctx.glue[key].get("data", {})
    caption = _convert_lines(d.body, ctx, state).strip()
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            name = f"{key}.{mime.split('/')[1]}"
            state.attachments[name] = {mime: _text(data[mime]).replace("\n", "")}
            return f"![{caption or key}](attachment:{name})" + (f"\n\n*{caption}*" if caption else "")
    if d.name == "glue:math" and "text/latex" in data:
        return "$$\n" + _text(data["text/latex"]).strip().strip("$") + "\n$$"
    if "text/markdown" in data:
        return _text(data["text/markdown"])
    if "text/plain" in data:
        return _text(data["text/plain"])
    raise UnsupportedMyST(f"{ctx.docname}: glued value {key!r} has no image or text form")


def _convert_lines(lines: list[str], ctx: Context, state: _State) -> str:
    return _convert_blocks(_parse_blocks(lines), ctx, state)


def _convert_blocks(blocks: list, ctx: Context, state: _State) -> str:
    """Render parsed blocks; a ``solution-start`` opens a collapsed block that runs to the
    matching ``solution-end`` or to the end of the cell (then ``state`` keeps it open)."""
    parts: list[str] = []
    text: list[str] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if isinstance(block, str):
            text.append(block)
            i += 1
            continue
        parts.append(_text_block(text, ctx) if text else "")
        text = []
        if block.name == "solution-start":
            state.solution = block.arg.strip()
            state.solution_title = _exercise_title(ctx, state.solution)
            end = _solution_end(blocks, i + 1)
            body = _convert_blocks(blocks[i + 1 : end], ctx, state)
            parts.append(_details(f"<b>Solution to {state.solution_title}</b> (click to show)", body))
            if end < len(blocks):
                state.solution = None
            i = end
        elif block.name == "solution-end":
            state.solution = None
        else:
            parts.append(_render_directive(block, ctx, state))
        i += 1
    parts.append(_text_block(text, ctx) if text else "")
    return "\n\n".join(p for p in parts if p.strip())


def _solution_end(blocks: list, start: int) -> int:
    return next(
        (
            k
            for k in range(start, len(blocks))
            if isinstance(blocks[k], _Directive) and blocks[k].name == "solution-end"
        ),
        len(blocks),
    )


_EQ_LABEL = re.compile(r"\$\$\s*\((?P<label>[A-Za-z][\w:.-]*)\)\s*$")


def _text_block(lines: list[str], ctx: Context) -> str:
    """Plain Markdown lines: drop targets, comments and breaks; number labelled $$ math."""
    kept = []
    in_code = False
    for line in lines:
        if re.match(r"^\s*(`{3,}|~{3,})", line):
            in_code = not in_code
            kept.append(line)
            continue
        if in_code:
            kept.append(line)
            continue
        if LABEL_LINE.match(line) or line.startswith("%") or line.strip() == "+++":
            continue
        m = _EQ_LABEL.search(line)
        if m:
            label = m.group("label")
            number = ctx.labels[label].number.strip("()") if label in ctx.labels else ""
            line = line[: m.start()] + (f"\\tag{{{number}}} $$" if number else "$$")
        kept.append(line)
    return _inline_outside_code("\n".join(kept).strip("\n"), ctx)


def _inline_outside_code(text: str, ctx: Context) -> str:
    parts = re.split(r"(^\s*(?:`{3,}|~{3,}).*?^\s*(?:`{3,}|~{3,})\s*$)", text, flags=re.M | re.S)
    return "".join(p if i % 2 else convert_inline(p, ctx) for i, p in enumerate(parts))


def convert_markdown(source: str, ctx: Context, state: _State | None = None) -> tuple[str, dict]:
    """One Markdown cell's source -> (plain Markdown, attachments for the cell).

    Parameters
    ----------
    source : str
        MyST Markdown of one cell.
    ctx : Context
        What the build resolved.
    state : optional
        Carried between the cells of one notebook (gated solutions span cells).

    Returns
    -------
    tuple of (str, dict)
        The converted Markdown and the cell's attachments (glued figures), possibly empty.

    Raises
    ------
    UnsupportedMyST
        On a role, directive, label or substitution it cannot render.
    """
    state = state if state is not None else _State()
    state.attachments = {}
    blocks = _parse_blocks(source.splitlines())
    if state.solution:
        # a Markdown cell inside a solution that spans cells: collapsed up to its solution-end
        end = _solution_end(blocks, 0)
        head = _convert_blocks(blocks[:end], ctx, state)
        rest = _convert_blocks(blocks[end:], ctx, state)
        title = f"<b>Solution to {state.solution_title}</b> (continued)"
        body = "\n\n".join(p for p in (_details(title, head) if head.strip() else "", rest) if p)
    else:
        body = _convert_blocks(blocks, ctx, state)
    return body, dict(state.attachments)


def convert_notebook(nb: Any, ctx: Context, header: Callable[[Any], list] | None = None) -> Any:
    """A Colab-ready copy of notebook ``nb`` (nbformat v4): Markdown converted, outputs dropped.

    Code cells keep their source; a code cell inside a gated solution is collapsed in Colab
    (``cellView: form`` and a ``#@title`` first line) and in Jupyter (``source_hidden``).
    ``header(nb)`` may return cells to insert after the first code cell (the install cell).
    """
    out = copy.deepcopy(nb)
    state = _State()
    cells = []
    for index, cell in enumerate(out.cells):
        if cell.cell_type == "markdown":
            text, attachments = convert_markdown(cell.source, ctx, state)
            if not text.strip():
                continue
            cell.source = text
            cell.metadata["quadnet"] = {"source_cell": index}  # for the checks of the editions
            if attachments:
                cell["attachments"] = {k: v for k, v in attachments.items()}
            cell.metadata.pop("tags", None)
        elif cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("mystnb", None)
            if state.solution:
                cell.metadata["cellView"] = "form"
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
                cell.source = (
                    f"#@title Solution to {state.solution_title} (run it, or Show code to read it)\n" + cell.source
                )
        cells.append(cell)
    if header is not None:
        first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), -1)
        cells[first_code + 1 : first_code + 1] = header(out)
    out.cells = cells
    out.metadata.setdefault("colab", {})["provenance"] = []
    out.metadata["colab"]["toc_visible"] = True
    return out
