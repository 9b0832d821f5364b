"""Start states in overlap space, drawn exactly without drawing the p·N weights.

A student with i.i.d. N(0, q0) weights against a teacher with orthonormal rows times √N (P = I):
projected on the p* teacher rows, W(0) gives a p × p* Gaussian matrix G of variance q0, so
M(0) = G/√N; the rest of W(0) lives in the N − p* orthogonal directions, is independent of G and
contributes q0 times a Wishart matrix with N − p* degrees of freedom to N Q(0), drawn by Bartlett's
construction (a lower-triangular factor with χ² diagonal and Gaussian sub-diagonal entries). The
overlaps returned have exactly the law of those of :func:`quadnet.init_student` weights, at a cost
independent of N.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from .model import make_rng

__all__ = ["gaussian_overlaps", "informed_overlaps"]


def _bartlett(rng: np.random.Generator, R: int, p: int, dof: int) -> np.ndarray:
    """R lower-triangular Bartlett factors A (p × p) with A Aᵀ ~ Wishart_p(I, dof)."""
    A = np.tril(rng.standard_normal((R, p, p)), -1)
    A[:, range(p), range(p)] = np.sqrt(rng.chisquare(dof - np.arange(p), size=(R, p)))
    return A


def gaussian_overlaps(p: int, p_star: int, N: int, replicas: int | None = None, *, q0: float = 1.0, seed: Any = None):
    """Exact initial overlaps of students with i.i.d. N(0, q0) weights against an orthonormal teacher.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    N : int
        Input dimension, N ≥ p + p* (the Wishart part needs N − p* ≥ p degrees of freedom).
    replicas : int or None
        Number of independent students; None for a single one (no batch axis).
    q0 : float > 0
        Variance of the student's weights.
    seed : int, SeedSequence, Generator or None
        Randomness (the ``"start"`` stream of an int seed).

    Returns
    -------
    (Q0, M0, P) : arrays (R, p, p), (R, p, p*), (p*, p*) — without the leading axis when
        ``replicas`` is None — with P = I; float64 NumPy arrays. √N M0 has i.i.d. N(0, q0) entries.

    Examples
    --------
    >>> Q0, M0, P = gaussian_overlaps(4, 2, 10_000, 3, seed=0)
    >>> Q0.shape, M0.shape, P.shape
    ((3, 4, 4), (3, 4, 2), (2, 2))
    """
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    N = v.integer("N", N, minimum=p + p_star)
    R = 1 if replicas is None else v.integer("replicas", replicas)
    q0 = v.positive("q0", q0, array=False)
    rng = make_rng(seed, "numpy", role="start")
    G = np.sqrt(q0) * rng.standard_normal((R, p, p_star))
    A = _bartlett(rng, R, p, N - p_star)
    Q0 = (G @ G.transpose(0, 2, 1) + q0 * A @ A.transpose(0, 2, 1)) / N
    M0 = G / np.sqrt(N)
    if replicas is None:
        Q0, M0 = Q0[0], M0[0]
    return Q0, M0, np.eye(p_star)


def informed_overlaps(O: Any, c: float, N: int, replicas: int | None = None, *, q0: float = 1.0, seed: Any = None):
    """Exact initial overlaps of W(0) = c·O W* + Z, Z i.i.d. N(0, q0), against an orthonormal teacher.

    Then M(0) = c O + G/√N and Q(0) = c² O Oᵀ + c (O Gᵀ + G Oᵀ)/√N + Q_Z, where G is the Gaussian
    part of Z along the teacher rows; as N → ∞, Q(0) → q0 I + c² O Oᵀ and M(0) → c O.

    Parameters
    ----------
    O : array (p, p*)
        Direction of the informed part (e.g. orthonormal columns).
    c : float ≥ 0
        Its size.
    N, replicas, q0, seed
        As in :func:`gaussian_overlaps`.

    Returns
    -------
    (Q0, M0, P) as in :func:`gaussian_overlaps`.

    Examples
    --------
    >>> import numpy as np
    >>> Q0, M0, P = informed_overlaps(np.eye(3)[:, :2], 0.5, 10_000, 2, seed=0)
    >>> np.round(M0[0], 1).tolist()
    [[0.5, 0.0], [0.0, 0.5], [0.0, 0.0]]
    """
    O = v.finite_array("O", O, np, min_ndim=2)
    if O.ndim != 2:
        raise ValueError(f"O must have shape (p, p*), got {O.shape}")
    c = v.positive("c", c, allow_zero=True, array=False)
    p, p_star = O.shape
    Q0, M0, P = gaussian_overlaps(p, p_star, N, replicas, q0=q0, seed=seed)
    Qz, Mz = Q0, M0
    M0 = c * O + Mz
    cross = c * (O @ np.swapaxes(Mz, -1, -2))
    Q0 = c * c * (O @ O.T) + cross + np.swapaxes(cross, -1, -2) + Qz
    return Q0, M0, P
