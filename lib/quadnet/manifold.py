"""The zero-loss manifold (P = I, p ≥ p*) and the solution closest to the initialization.

Zero loss ⇔ a WᵀW = b W*ᵀW* ⇔ W = √(b/a) O W* with OᵀO = I_{p*}: in overlaps M = √(b/a) O,
Q = (b/a) O Oᵀ, a Stiefel manifold of dimension p p* − p*(p*+1)/2. The point closest to W(0)
maximizes tr(Oᵀ M(0)) (orthogonal Procrustes): O* = polar(M(0)).
"""
from __future__ import annotations

from typing import Any

from . import _validate as v
from .backend import array_module

__all__ = [
    "polar",
    "closest_solution",
    "distance_to_manifold_min",
    "stiefel_dimension",
    "solution_overlaps",
]


def polar(M: Any) -> Any:
    """Orthogonal polar factor U Vᵀ of M (..., p, p*) from the thin SVD M = U Σ Vᵀ.

    For p ≥ p* and M of full rank p* this is the unique O with OᵀO = I maximizing tr(Oᵀ M).
    Shape (..., p, p*), same array module as M.
    """
    return _polar(M, "M")


def _polar(M: Any, name: str) -> Any:
    xp = array_module(M)
    M = v.finite_array(name, M, xp, min_ndim=2)
    if M.shape[-2] < M.shape[-1] or M.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., p, p*) with p ≥ p* ≥ 1, got {M.shape}")
    U, _, Vt = xp.linalg.svd(M, full_matrices=False)
    return U @ Vt


def closest_solution(M0: Any, a: Any, b: Any) -> Any:
    """M on the zero-loss manifold closest to the initialization: √(b/a) polar(M0), shape of M0."""
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    return (b / a) ** 0.5 * _polar(M0, "M0")


def solution_overlaps(O: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """(Q, M) of the zero-loss point W = √(b/a) O W* (P = I): Q = (b/a) O Oᵀ, M = √(b/a) O.

    O (..., p, p*) must have orthonormal columns, OᵀO = I (to 1e-6), so p ≥ p*.
    """
    xp = array_module(O)
    O = v.finite_array("O", O, xp, min_ndim=2)
    if O.shape[-2] < O.shape[-1] or O.shape[-1] < 1:
        raise ValueError(f"O must have shape (..., p, p*) with p ≥ p* ≥ 1, got {O.shape}")
    if not bool(xp.all(xp.abs(xp.swapaxes(O, -1, -2) @ O - xp.eye(O.shape[-1])) <= 1e-6)):
        raise ValueError("O must have orthonormal columns (OᵀO = I to 1e-6), e.g. polar(M)")
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    return (b / a) * (O @ xp.swapaxes(O, -1, -2)), (b / a) ** 0.5 * O


def distance_to_manifold_min(Q0: Any, M0: Any, a: Any, b: Any) -> Any:
    """d²_min / N = tr Q(0) + (b/a) p* − 2 √(b/a) ‖M(0)‖_* (P = I): squared distance from W(0)
    to the closest zero-loss point, per input dimension. Shape = batch shape.

    Q0 (..., p, p) and M0 (..., p, p*) with p ≥ p* must be overlaps of actual weights against an
    orthonormal teacher: [[Q0, M0], [M0ᵀ, I]] positive semidefinite (else ``ValueError``)."""
    xp = array_module(Q0, M0)
    M0 = v.finite_array("M0", M0, xp, min_ndim=2)
    Q0, M0, _ = v.overlap_triple(Q0, M0, xp.eye(max(M0.shape[-1], 1)), xp, names=("Q0", "M0", "P"))
    if M0.shape[-2] < M0.shape[-1]:
        raise ValueError(f"M0 must have shape (..., p, p*) with p ≥ p* for a zero-loss manifold, got {M0.shape}")
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    nuc = xp.sum(xp.linalg.svd(M0, compute_uv=False), axis=-1)
    return xp.trace(Q0, axis1=-2, axis2=-1) + (b / a) * M0.shape[-1] - 2 * (b / a) ** 0.5 * nuc


def stiefel_dimension(p: int, p_star: int) -> int:
    """Dimension p p* − p*(p*+1)/2 of the zero-loss manifold (p ≥ p*)."""
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    if p < p_star:
        raise ValueError(f"p must be ≥ p_star for a zero-loss manifold, got p = {p}, p* = {p_star}")
    return p * p_star - p_star * (p_star + 1) // 2
