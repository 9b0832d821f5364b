"""The documents of _toc.yml, shared by the site and browser checks."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))


def toc_docs() -> list[str]:
    """Every document of _toc.yml (root first), as a path without suffix, e.g. 'book/01_model'."""
    docs = [TOC["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                docs.append(node["file"])
            for key, value in node.items():
                if key != "root":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in TOC.items() if k != "root"})
    out = []
    for doc in docs:
        doc = str(Path(doc).with_suffix("")) if Path(doc).suffix in {".ipynb", ".md"} else doc
        if doc not in out:
            out.append(doc)
    return out
