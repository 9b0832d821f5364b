"""How long each chapter takes to run, per profile: measured, stored, rendered.

- ``python book/_ext/timings.py --profile quick [--chapters book/01_model ...]`` (``make
  timings``) executes each chapter of _toc.yml in a fresh kernel at that profile, measures the
  wall-clock time and merges it into ``book/timings.json`` with the date, the commit and the
  machine (cores, CPU, load average when the run started), so numbers from different days or
  machines are never mixed up silently.
- As a Sphinx extension it adds the directive ``{timings-table}``, which renders that file as
  a table (chapter x profile) in the teaching guide: no run time is typed by hand. A chapter or
  profile not measured yet shows as a dash.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Relative to the repository root (the Sphinx source directory).
TIMINGS_FILE = "book/timings.json"
PROFILES = ("quick", "default", "paper")


# ------------------------------------------------------------------------------- the records


def load(path: Path) -> dict:
    """The records of ``path`` (``{"chapters": {docname: {profile: record}}}``), empty if absent."""
    path = Path(path)
    if not path.is_file():
        return {"chapters": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("chapters", {})
    return data


def chapter_times(records: dict, docname: str) -> dict[str, dict]:
    """``{profile: record}`` of one chapter, in profile order, only successful runs."""
    mine = records.get("chapters", {}).get(docname, {})
    return {p: mine[p] for p in PROFILES if p in mine and mine[p].get("ok")}


def human(seconds: float) -> str:
    """12.3 -> '12 s', 200 -> '3.3 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def toc_notebooks(root: Path = ROOT) -> list[str]:
    """Docnames of the _toc.yml entries whose source is a notebook, in the book's order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    docs: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                docs.append(str(node["file"]).removesuffix(".ipynb").removesuffix(".md"))
            for key, value in node.items():
                if key != "file":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [d for d in dict.fromkeys([str(toc["root"])] + docs) if (root / f"{d}.ipynb").is_file()]


# ----------------------------------------------------------------------------- measuring


def machine() -> str:
    """One line describing this machine: cores, CPU model, Python and NumPy versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy

    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()}, Python {platform.python_version()}, "
        f"NumPy {numpy.__version__}"
    )


def _commit(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "book", "lib"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+changes" if dirty else "")


def run_chapter(path: Path, profile: str, timeout: int) -> dict:
    """Execute one notebook in a fresh kernel at ``profile``; its wall-clock time and outcome."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "QUADNET_PROFILE": profile}
    env.pop("MPLBACKEND", None)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    t0 = time.perf_counter()
    error = ""
    try:
        client.execute(env=env)
    except Exception as exc:  # a failing chapter is recorded, not timed as if it had run
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    seconds = time.perf_counter() - t0
    record = {
        "seconds": round(seconds, 1),
        "ok": not error,
        "date": _dt.datetime.now().isoformat(timespec="minutes"),
        "load_average_at_start": round(load1, 2),
    }
    if error:
        record["error"] = error[:300]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", action="append", choices=PROFILES, help="profile to measure (repeatable; default: quick)"
    )
    parser.add_argument(
        "--chapters",
        nargs="*",
        default=None,
        help="docnames such as book/01_model (default: every notebook of _toc.yml)",
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--output", default=str(ROOT / TIMINGS_FILE))
    args = parser.parse_args(argv)
    chapters = args.chapters or toc_notebooks(ROOT)
    out = Path(args.output)
    records = load(out)
    records["machines"] = records.get("machines", {})
    here, commit = machine(), _commit(ROOT)
    mid = _machine_id(records, here)
    failed = 0
    for profile in args.profile or ["quick"]:
        for doc in chapters:
            path = ROOT / f"{doc}.ipynb"
            if not path.is_file():
                print(f"timings: no notebook {path}", file=sys.stderr)
                return 2
            record = run_chapter(path, profile, args.timeout)
            record.update(machine=mid, commit=commit)
            records["chapters"].setdefault(doc, {})[profile] = record
            failed += not record["ok"]
            print(
                f"timings: {doc} at {profile}: {record['seconds']:.1f} s"
                + ("" if record["ok"] else f" FAILED ({record['error']})"),
                flush=True,
            )
            out.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if failed else 0


def _machine_id(records: dict, description: str) -> str:
    for key, value in records["machines"].items():
        if value == description:
            return key
    key = f"machine-{len(records['machines']) + 1}"
    records["machines"][key] = description
    return key


# ------------------------------------------------------------------------- Sphinx directive


def setup(app):
    app.add_directive("timings-table", TimingsTable)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def _table(header: list[str], rows: list[list]):
    from docutils import nodes

    table = nodes.table(classes=["timings-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for text in header:
        row += nodes.entry("", nodes.paragraph(text=text))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=str(cell))
            row += entry
        body += row
    return table


try:
    from sphinx.util.docutils import SphinxDirective as _Base
except ImportError:  # the measuring script runs without Sphinx too
    _Base = object


class TimingsTable(_Base):
    """``{timings-table}``: run time of every notebook chapter of _toc.yml, per profile."""

    has_content = False

    def run(self):
        from docutils import nodes
        from sphinx import addnodes

        root = Path(self.env.srcdir)
        path = root / TIMINGS_FILE
        self.env.note_dependency(str(path))
        records = load(path)
        rows = []
        for doc in toc_notebooks(root):
            ref = addnodes.pending_xref(
                "",
                nodes.inline(text=doc),
                refdomain="std",
                reftype="doc",
                reftarget="/" + doc,
                refexplicit=False,
                refdoc=self.env.docname,
            )
            para = nodes.paragraph()
            para += ref
            times = records["chapters"].get(doc, {})
            rows.append([para] + [_cell(times.get(p)) for p in PROFILES])
        notes = nodes.bullet_list()
        for key, text in sorted(records.get("machines", {}).items()):
            runs = [r for ch in records["chapters"].values() for r in ch.values() if r.get("machine") == key]
            if not runs:
                continue
            dates = sorted({r["date"][:10] for r in runs})
            loads = [r["load_average_at_start"] for r in runs if "load_average_at_start" in r]
            busy = f", load average {min(loads):.1f}–{max(loads):.1f} at the start of the runs" if loads else ""
            item = nodes.list_item()
            item += nodes.paragraph(text=f"Measured on {text} ({key}), {', '.join(dates)}{busy}.")
            notes += item
        out = [_table(["Chapter"] + [f"{p}" for p in PROFILES], rows)]
        if notes.children:  # an empty list is invalid LaTeX
            out.append(notes)
        return out


def _cell(record: dict | None):
    if not record:
        return "—"
    if not record.get("ok"):
        return "failed"
    return human(record["seconds"])


if __name__ == "__main__":
    sys.exit(main())
