"""The chapters run in Google Colab.

Every notebook in book/ opens with the one canonical install cell (the repository URL in it is
_config.yml's ``repository.url``), and imports nothing that a Colab runtime lacks beyond what
that cell installs: the standard library, ``quadnet`` and its dependencies (pyproject.toml), and
the packages Colab ships (COLAB_SHIPS). ``myst_nb`` is not on Colab: only ``quadnet.book`` may
import it, behind a fallback. The README badge and the preface's link open a chapter that exists,
in the repository of _config.yml, on the branch of the Colab editions (the launch buttons'
``html_theme_options.repository_branch``), which holds them at the repository's paths.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"].rstrip("/")

# The canonical first code cell of every notebook lives in one place, quadnet.book.
from quadnet.book import COLAB_INSTALL  # noqa: E402

# Importable on a fresh Colab runtime without installing anything (top-level module names).
# cycler and mpl_toolkits come with matplotlib.
COLAB_SHIPS = {"numpy", "scipy", "matplotlib", "mpl_toolkits", "cycler", "ipywidgets", "tqdm", "IPython", "google"}
NOT_ON_COLAB = {"myst_nb"}


def _notebooks() -> list[Path]:
    return sorted(BOOK.glob("*.ipynb"))


NOTEBOOKS = _notebooks()
PARAMS = NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip(reason="no notebook yet"))]


def _id(path):
    return path.name if path is not None else "none"


def _code_cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def _distribution_module(requirement: str) -> str:
    """'scikit-learn>=1' -> 'sklearn'-style guess: the import name of a requirement."""
    name = re.split(r"[<>=!~;\[ @]", requirement.strip(), maxsplit=1)[0]
    return {"pillow": "PIL", "pyyaml": "yaml", "scikit-learn": "sklearn"}.get(name.lower(), name.replace("-", "_"))


def _installed_by_the_cell() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {project["name"]} | {_distribution_module(r) for r in project.get("dependencies", [])}


ALLOWED = set(sys.stdlib_module_names) | COLAB_SHIPS | _installed_by_the_cell()


def _python_source(cell: str) -> str:
    """A code cell as plain Python: IPython magics and shell escapes become `pass`."""
    lines = []
    for line in cell.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("!", "%")):
            lines.append(line[: len(line) - len(stripped)] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines)


def _imports(tree: ast.AST, skip_guarded: bool = False, skip_functions: bool = False):
    """Yield (node, guarded) for every import statement; ``guarded`` when it sits in a
    ``try``/``if`` (an optional import with a fallback). Imports inside functions and classes
    (run only when called) are left out with ``skip_functions``, guarded ones with
    ``skip_guarded``."""

    def visit(node, guarded):
        for child in ast.iter_child_nodes(node):
            if skip_functions and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            inner = guarded or isinstance(child, (ast.Try, ast.If))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if not (skip_guarded and guarded):
                    yield child, guarded
            yield from visit(child, inner)

    yield from visit(tree, False)


def _absolute_modules(node) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module] if node.level == 0 and node.module else []


def _repository_modules() -> set[str]:
    """Python modules of this repository that a notebook may import when they are present
    (not on Colab, where only the package is installed): they must be guarded."""
    return {p.stem for d in ("benchmarks", "book") for p in (ROOT / d).glob("*.py")}


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_first_code_cell_is_the_colab_install_cell(path):
    cells = _code_cells(path)
    assert cells, f"{path.name}: no code cell"
    assert cells[0].strip() == COLAB_INSTALL.strip(), (
        f"{path.name}: the first code cell must be exactly the Colab install cell:\n"
        f"{COLAB_INSTALL}\n--- found:\n{cells[0]}"
    )


def test_install_cell_installs_from_this_repository():
    urls = re.findall(r"git\+(\S+?)[\"'@\s]", COLAB_INSTALL + " ")
    assert urls == [REPO_URL], (
        f"the Colab install cell installs from {urls}, _config.yml's repository.url is {REPO_URL}"
    )
    assert 'if "google.colab" in sys.modules:' in COLAB_INSTALL


@pytest.mark.parametrize("path", PARAMS, ids=_id)
def test_notebook_imports_are_available_on_colab(path):
    problems = []
    local = _repository_modules()
    for n, cell in enumerate(_code_cells(path)):
        try:
            tree = ast.parse(_python_source(cell))
        except SyntaxError as exc:
            problems.append(f"cell {n}: not valid Python once magics are removed: {exc}")
            continue
        for node, guarded in _imports(tree):
            for module in (m.split(".")[0] for m in _absolute_modules(node)):
                where = f"cell {n}, line {node.lineno}: imports {module}"
                if module in NOT_ON_COLAB:
                    problems.append(f"{where}, which Colab lacks (use quadnet.book.glue, which falls back without it)")
                elif module in ALLOWED or (guarded and module in local):
                    continue
                elif module in local:
                    problems.append(
                        f"{where}, a file of the repository that Colab does not "
                        "have: import it only behind a check (if/try) with a fallback"
                    )
                else:
                    problems.append(
                        f"{where}, neither standard library, quadnet or its dependencies, nor shipped by Colab"
                    )
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def _quadnet_modules_used_by_notebooks() -> set[str]:
    used = {"quadnet"}
    for path in NOTEBOOKS:
        for cell in _code_cells(path):
            try:
                tree = ast.parse(_python_source(cell))
            except SyntaxError:
                continue
            for node, _ in _imports(tree):
                for name in _absolute_modules(node):
                    if name.split(".")[0] == "quadnet":
                        used.add(name)
                        if isinstance(node, ast.ImportFrom):  # from quadnet import explorer
                            used |= {f"{name}.{a.name}" for a in node.names}
    return used


def _package_imports_at_import_time() -> list[tuple[str, str]]:
    """(file:line, top-level module) of every third-party import, outside try/if, in quadnet and
    the submodules the notebooks use, following the package's own modules imported at module
    level (functions' imports count: the notebooks call them)."""
    package = ROOT / "lib" / "quadnet"

    def resolve(name: str) -> Path | None:
        rel = Path(*name.split("."))
        for candidate in (package.parent / f"{rel}.py", package.parent / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    found, seen = [], set()
    todo = [r for r in map(resolve, sorted(_quadnet_modules_used_by_notebooks())) if r]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        here = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        pkg = here if path.name == "__init__.py" else here.rpartition(".")[0]
        pkg = pkg.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = {id(n) for n, _ in _imports(tree, skip_functions=True)}
        for node, _ in _imports(tree, skip_guarded=True):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                targets = _absolute_modules(node)
            for target in targets:
                if target.split(".")[0] == "quadnet":
                    # follow the package's own modules imported at module level; one imported
                    # inside a function (e.g. an optional fused kernel) is the caller's to guard
                    if id(node) in module_level and (resolved := resolve(target)) is not None:
                        todo.append(resolved)
                elif target.split(".")[0] != "__future__":
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", target.split(".")[0]))
    return found


def test_quadnet_imports_are_available_on_colab():
    """What importing quadnet (and the submodules the notebooks use) pulls in is on Colab or
    installed with quadnet (pyproject.toml)."""
    problems = [
        f"{where}: import {name}"
        for where, name in _package_imports_at_import_time()
        if name not in ALLOWED or name in NOT_ON_COLAB
    ]
    assert not problems, (
        "`import quadnet` needs packages neither installed with it nor "
        "shipped by Colab (guard them with try/except):\n  " + "\n  ".join(problems)
    )


def _colab_links(text: str) -> list[str]:
    return re.findall(r"https://colab\.research\.google\.com/github/[^\s)\"'>]+", text)


def colab_branch() -> str:
    """The branch the launch buttons open: the Colab editions the publishing workflow pushes."""
    theme = CONFIG.get("sphinx", {}).get("config", {}).get("html_theme_options", {})
    return theme.get("repository_branch") or CONFIG["repository"].get("branch", "main")


def test_launch_buttons_open_the_colab_editions():
    """The launch buttons and the publishing workflow agree on the branch, and it is not main
    (main holds the MyST sources, which Colab shows raw)."""
    branch = colab_branch()
    assert branch != CONFIG["repository"].get("branch", "main"), branch
    workflow = (ROOT / ".github" / "workflows" / "publish.yml").read_text(encoding="utf-8")
    assert f"COLAB_BRANCH: {branch}" in workflow, (
        f"publish.yml does not push the Colab editions to the branch {branch!r}"
    )


@pytest.mark.parametrize("doc", ["README.md", "book/index.md"])
def test_colab_links_open_an_existing_chapter(doc):
    links = _colab_links((ROOT / doc).read_text(encoding="utf-8"))
    assert links, f"{doc}: no 'Open in Colab' link"
    repo = REPO_URL.removeprefix("https://github.com/")
    branch = colab_branch()
    for link in links:
        prefix = f"https://colab.research.google.com/github/{repo}/blob/{branch}/"
        assert link.startswith(prefix), f"{doc}: {link} is not under {prefix}"
        target = ROOT / link.removeprefix(prefix)
        assert target.suffix == ".ipynb" and target.is_file(), f"{doc}: {link}: no such notebook"


def test_site_pages_show_no_remote_badge():
    """The README may show Colab's badge image; the book's pages must not load it (offline)."""
    for page in BOOK.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"!\[[^\]]*\]\(https?://", text), f"{page.name}: remote image"
        assert not re.search(r"<img[^>]+src=[\"']https?://", text), f"{page.name}: remote image"
