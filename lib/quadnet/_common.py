"""Small array helpers shared by the modules (private): traces, transposes, norms over the last
two axes, and the lifting of scalar parameters for matrix broadcasting.

Imports nothing from the package, so every module may use it.
"""
from __future__ import annotations

from typing import Any

__all__ = ["tr", "T", "fro2", "squeeze"]


def tr(A: Any, xp: Any) -> Any:
    """Trace over the last two axes: (..., n, n) -> (...)."""
    return xp.trace(A, axis1=-2, axis2=-1)


def T(A: Any, xp: Any) -> Any:
    """Transpose of the last two axes."""
    return xp.swapaxes(A, -1, -2)


def fro2(A: Any, xp: Any) -> Any:
    """Squared Frobenius norm over the last two axes: (..., n, m) -> (...)."""
    return xp.sum(A * A, axis=(-2, -1))


def squeeze(x: Any) -> Any:
    """Undo the (..., 1, 1) lifting of a batched scalar parameter (plain floats pass through)."""
    return x[..., 0, 0] if hasattr(x, "ndim") and x.ndim >= 2 else x
