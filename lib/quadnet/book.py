"""Helpers for the chapters: gluing computed numbers into the prose, environment banner."""
from __future__ import annotations

import sys
from typing import Any

from .backend import backend_name, default_backend
from .profiles import profile

__all__ = ["glue", "in_colab", "banner"]


def in_colab() -> bool:
    return "google.colab" in sys.modules


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Glue a computed ``value`` under ``name`` for the prose (``{glue:text}`name:.3g```).

    Numbers are glued as Python numbers (NumPy scalars converted) so the role's format spec
    applies. Falls back to doing nothing when myst-nb is absent (e.g. a bare Colab runtime).
    Returns the value, so ``x = glue('x', compute())`` reads naturally.
    """
    shown = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
    try:
        from myst_nb import glue as _glue
    except Exception:
        return value
    _glue(name, shown, display=display)
    return value


def banner() -> str:
    """One line: which profile and array backend this run uses."""
    xp = default_backend()
    line = f"quadnet: profile={profile().name}, backend={backend_name(xp)}"
    print(line)
    return line
