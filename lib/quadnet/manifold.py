"""The zero-loss manifold (P = I, p ≥ p*) and the solution closest to the initialization.

Zero loss ⇔ a WᵀW = b W*ᵀW* ⇔ W = √(b/a) O W* with OᵀO = I_{p*}: in overlaps M = √(b/a) O,
Q = (b/a) O Oᵀ, a Stiefel manifold of dimension p p* − p*(p*+1)/2. The point closest to W(0)
maximizes tr(Oᵀ M(0)) (orthogonal Procrustes): O* = polar(M(0)). Chapters 5 and 6 of the book.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module

__all__ = [
    "RankDeficientWarning",
    "polar",
    "closest_solution",
    "distance_to_manifold_min",
    "stiefel_dimension",
    "solution_overlaps",
]


class RankDeficientWarning(RuntimeWarning):
    """:func:`polar` met a matrix of rank < p*: its polar factor is not unique, NaN is returned."""


def polar(M: Any) -> Any:
    """Orthogonal polar factor U Vᵀ of M (..., p, p*) from the thin SVD M = U Σ Vᵀ.

    For p ≥ p* and M of full rank p* this is the unique O with OᵀO = I maximizing tr(Oᵀ M)
    (the Procrustes point of chapter 5).

    Parameters
    ----------
    M : array (..., p, p*), p ≥ p* ≥ 1
        Student–teacher overlaps, batched over leading axes (NumPy or CuPy).

    Returns
    -------
    array (..., p, p*)
        The polar factor, same array module as M. Batch elements of numerical rank < p*
        (smallest singular value ≤ max(p, p*)·ε_machine × the largest, e.g. M = 0) have no unique
        polar factor: they are NaN, and a :class:`RankDeficientWarning` says how many.

    Raises
    ------
    TypeError
        M is not an array of real numbers.
    ValueError
        Non-finite entries, fewer than 2 axes, or p < p*.

    Warns
    -----
    RankDeficientWarning
        Some batch element has rank < p* (its result is NaN).

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> O = qn.polar(np.array([[2.0, 0.0], [0.0, 0.5], [0.0, 0.0]]))
    >>> O
    array([[1., 0.],
           [0., 1.],
           [0., 0.]])
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", qn.RankDeficientWarning)
    ...     bool(np.isnan(qn.polar(np.zeros((3, 2)))).all())
    True
    """
    return _polar(M, "M")


def _polar(M: Any, name: str) -> Any:
    """:func:`polar` with the parameter named ``name`` in messages (shared with ``alignment``)."""
    xp = array_module(M)
    M = v.finite_array(name, M, xp, min_ndim=2)
    if M.shape[-2] < M.shape[-1] or M.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., p, p*) with p ≥ p* ≥ 1, got {M.shape}")
    U, s, Vt = xp.linalg.svd(M, full_matrices=False)
    O = U @ Vt
    deficient = s[..., -1] <= max(M.shape[-2:]) * np.finfo(np.float64).eps * s[..., 0]
    if bool(xp.any(deficient)):
        count, total = int(xp.sum(deficient)), int(deficient.size)
        warnings.warn(
            f"polar: {count} of {total} {name} matrices have rank < p* = {M.shape[-1]} (e.g. {name} = 0), so their "
            "polar factor is not unique; NaN returned for them",
            RankDeficientWarning,
            stacklevel=3,
        )
        O = xp.where(deficient[..., None, None], xp.nan, O)
    return O


def closest_solution(M0: Any, a: Any, b: Any) -> Any:
    """M on the zero-loss manifold closest to the initialization: √(b/a) polar(M0).

    Parameters
    ----------
    M0 : array (..., p, p*), p ≥ p*
        Initial student–teacher overlap (teacher with P = I).
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    array, shape of M0
        √(b/a) O* with O* = polar(M0); NaN (with a :class:`RankDeficientWarning`) where M0 has
        rank < p*.

    Raises
    ------
    TypeError, ValueError
        As :func:`polar` (naming M0), and a, b not in (0, 1e50].

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> qn.closest_solution(np.array([[0.1], [0.0]]), a=0.5, b=2.0)
    array([[2.],
           [0.]])
    """
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    return (b / a) ** 0.5 * _polar(M0, "M0")


def solution_overlaps(O: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """(Q, M) of the zero-loss point W = √(b/a) O W* (P = I): Q = (b/a) O Oᵀ, M = √(b/a) O.

    Parameters
    ----------
    O : array (..., p, p*)
        Orthonormal columns, OᵀO = I (to 1e-6), so p ≥ p*; e.g. ``polar(M)``.
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    (Q, M) : arrays (..., p, p), (..., p, p*)

    Raises
    ------
    TypeError, ValueError
        O not a finite real array of orthonormal columns; a, b not in (0, 1e50].

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Q, M = qn.solution_overlaps(np.eye(3)[:, :2], a=1 / 3, b=1 / 2)
    >>> bool(qn.population_loss(Q, M, np.eye(2), 1 / 3, 1 / 2) < 1e-15)  # zero up to rounding of Q, M
    True
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
    to the closest zero-loss point, per input dimension.

    Parameters
    ----------
    Q0 : array (..., p, p)
        Initial student–student overlap.
    M0 : array (..., p, p*), p ≥ p*
        Initial student–teacher overlap, against an orthonormal teacher: [[Q0, M0], [M0ᵀ, I]]
        must be positive semidefinite.
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    array of the batch shape (‖·‖_* is the nuclear norm, the sum of singular values).

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: shapes, non-finite values, not overlaps of actual weights, p < p*,
        a, b not in (0, 1e50].

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> float(qn.distance_to_manifold_min(np.eye(2), np.zeros((2, 1)), 1.0, 1.0))  # tr Q0 + p*
    3.0
    """
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
    """Dimension p p* − p*(p*+1)/2 of the zero-loss manifold (p ≥ p*).

    Parameters
    ----------
    p, p_star : int ≥ 1 (integral floats accepted)
        Student and teacher widths, p ≥ p*.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        Not integers ≥ 1, or p < p*.

    Examples
    --------
    >>> import quadnet as qn
    >>> qn.stiefel_dimension(4, 2)
    5
    """
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    if p < p_star:
        raise ValueError(f"p must be ≥ p_star for a zero-loss manifold, got p = {p}, p* = {p_star}")
    return p * p_star - p_star * (p_star + 1) // 2
