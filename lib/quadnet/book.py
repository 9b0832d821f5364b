"""Helpers for the chapters: gluing computed numbers into the prose, environment banner."""
from __future__ import annotations

import sys
from typing import Any

from .backend import backend_name, default_backend
from .profiles import profile

__all__ = ["glue", "in_colab", "banner", "COLAB_INSTALL", "REPOSITORY_URL"]

#: The repository the Colab install cell installs from (also ``repository.url`` in _config.yml).
REPOSITORY_URL = "https://github.com/quadnet-book/quadnet"

#: The first code cell of every notebook (tests/site/test_colab.py checks each notebook against it).
COLAB_INSTALL = (
    "# Colab: install quadnet from the repository (a no-op elsewhere)\n"
    "import sys\n"
    'if "google.colab" in sys.modules:\n'
    f'    !pip install -q "quadnet @ git+{REPOSITORY_URL}"'
)


def in_colab() -> bool:
    return "google.colab" in sys.modules


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue a computed ``value`` under ``name`` for the prose (``{glue:text}`name:.3g```).

    Numbers are glued as Python numbers (NumPy scalars converted) so the role's format spec
    applies. Falls back to doing nothing when myst-nb is absent (e.g. a bare Colab runtime).
    Returns None, so a ``glue(...)`` on the last line of a cell prints nothing.
    """
    shown = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
    try:
        from myst_nb import glue as _glue
    except Exception:
        return None
    _glue(name, shown, display=display)
    return None


def banner() -> str:
    """One line: which profile and array backend this run uses."""
    xp = default_backend()
    line = f"quadnet: profile={profile().name}, backend={backend_name(xp)}"
    print(line)
    return line
