"""Hessian of the population loss in weight space, and its predicted spectrum (P = I).

With D = (b W*ᵀW* − a WᵀW)/N and ε = ½(tr D)² + tr D² (no label noise), the second variation
along V ∈ ℝ^{p×N} is

    Hess[V, V] = (a/N)² [4⟨W, V⟩² + 2‖WᵀV + VᵀW‖²] − (2a/N) [tr D ‖V‖² + 2 tr(V D Vᵀ)],

so, flattening W row-major (index i·N + n),

    H[(i,n),(j,m)] = (4a²/N²) [W_in W_jm + W_im W_jn + (WWᵀ)_ij δ_nm]
                     − (2a/N) tr D δ_ij δ_nm − (4a/N) δ_ij D_nm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module, to_numpy
from .model import make_rng

__all__ = ["SpectrumCheck", "hessian", "loss_gradient", "predicted_spectrum", "special_point", "special_point_spectrum"]


def _D(W, W_star, a, b, xp):
    """D = (b W*ᵀW* − a WᵀW)/N, (N, N)."""
    N = W.shape[-1]
    return (b * W_star.T @ W_star - a * W.T @ W) / N


def _check_w(W, W_star, a, b):
    """Validated (W, W_star, a, b, xp) for the weight-space functions (2-d weights, same N)."""
    xp = array_module(W, W_star)
    W = v.finite_array("W", W, xp, min_ndim=2)
    W_star = v.finite_array("W_star", W_star, xp, min_ndim=2)
    if W.ndim != 2 or W_star.ndim != 2:
        raise ValueError(f"W and W_star must be 2-d (p, N) and (p*, N), got {W.shape} and {W_star.shape}")
    if W.shape[1] != W_star.shape[1]:
        raise ValueError(f"W and W_star must share N, got {W.shape} and {W_star.shape}")
    if min(W.shape + W_star.shape) < 1:
        raise ValueError(
            f"W and W_star must have p ≥ 1, p* ≥ 1 rows and N ≥ 1 columns, got {W.shape} and {W_star.shape}"
        )
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    return W, W_star, a, b, xp


def loss_gradient(W: Any, W_star: Any, a: Any, b: Any) -> Any:
    """Gradient of the population loss in weight space, ∇_W ε_g = −(2a/N)(tr D W + 2 W D).

    Parameters
    ----------
    W : array (p, N)
        Student weights.
    W_star : array (p*, N)
        Teacher weights.
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    array (p, N), same array module as W.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: weights not 2-d real finite arrays with the same N, a, b not in
        (0, 1e50].

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(1, 4, seed=0, backend="numpy")
    >>> bool(np.allclose(qn.loss_gradient(Ws, Ws, 1.0, 1.0), 0))  # W = W*: a minimum
    True
    """
    W, W_star, a, b, xp = _check_w(W, W_star, a, b)
    D = _D(W, W_star, a, b, xp)
    return -(2 * a / W.shape[1]) * (xp.trace(D) * W + 2 * W @ D)


def hessian(W: Any, W_star: Any, a: Any, b: Any) -> Any:
    """The (pN × pN) Hessian of ε_g with respect to the entries of W (chapter 7 of the book).

    Parameters
    ----------
    W : array (p, N)
        Student weights, flattened row-major (index i·N + n).
    W_star : array (p*, N)
        Teacher weights.
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    array (p·N, p·N), symmetric. Memory is (pN)² floats (and its construction peaks at about 3.6
    times that): meant for the small N at which spectra are inspected.

    Raises
    ------
    TypeError, ValueError
        As :func:`loss_gradient`; ``ValueError`` when the matrix would exceed 2 GiB.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> H = qn.hessian(np.zeros((2, 3)), qn.teacher(1, 3, seed=0, backend="numpy"), 0.5, 1.0)
    >>> H.shape, bool(np.allclose(H, H.T))
    ((6, 6), True)
    """
    W, W_star, a, b, xp = _check_w(W, W_star, a, b)
    p, N = W.shape
    if (p * N) ** 2 * 8 > 2**31:
        raise ValueError(
            f"p·N = {p * N} gives a Hessian over 2 GiB (its construction peaks at ~3.6× that); "
            f"use N ≤ {int(2**14 / p)} for spectra"
        )
    D = _D(W, W_star, a, b, xp)
    c = 4 * a * a / (N * N)
    eye_p, eye_N = xp.eye(p), xp.eye(N)
    H = c * (xp.einsum("in,jm->injm", W, W) + xp.einsum("im,jn->injm", W, W) + xp.einsum("ij,nm->injm", W @ W.T, eye_N))
    H -= (2 * a / N) * xp.trace(D) * xp.einsum("ij,nm->injm", eye_p, eye_N)
    H -= (4 * a / N) * xp.einsum("ij,nm->injm", eye_p, D)
    return H.reshape(p * N, p * N)


def special_point(where: str, W_star: Any, p: int, a: Any, b: Any, *, seed: Any = None):
    """Weights W (p, N) at the origin, the drift plateau or a random point of the manifold (P = I).

    Parameters
    ----------
    where : {'origin', 'plateau', 'manifold'}
        The plateau point has orthogonal rows of norm √(qN), orthogonal to the teacher (needs
        N ≥ p + p*); the manifold point is √(b/a) O W* with O a random p × p* matrix with
        orthonormal columns (needs p ≥ p*).
    W_star : array (p*, N)
        Teacher weights with orthonormal rows times √N.
    p : int ≥ 1
        Student width.
    a, b : float > 0
        Student and teacher readouts.
    seed : int ≥ 0, SeedSequence, numpy Generator or None
        Randomness of the plateau and manifold points (the ``"hessian"`` stream of an int seed).

    Returns
    -------
    array (p, N), same array module as W_star.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: an unknown ``where``, bad shapes or sizes, a bad seed.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(1, 6, seed=0, backend="numpy")
    >>> W = qn.special_point("manifold", Ws, 2, 0.5, 1.0, seed=1)
    >>> float(qn.population_loss(*qn.overlaps_from_weights(W, Ws), 0.5, 1.0)) < 1e-12
    True
    """
    _check_where(where)
    xp = array_module(W_star)
    W_star = v.finite_array("W_star", W_star, xp, min_ndim=2)
    if W_star.ndim != 2 or min(W_star.shape) < 1:
        raise ValueError(f"W_star must be 2-d (p*, N) with p*, N ≥ 1, got shape {W_star.shape}")
    p = v.integer("p", p)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    ps, N = W_star.shape
    rng = make_rng(seed, "numpy", role="hessian")
    if where == "origin":
        return xp.zeros((p, N))
    if where == "plateau":
        if N < p + ps:
            raise ValueError(f"N must be ≥ p + p* = {p + ps} for a plateau point, got N = {N}")
        q = b * ps / (a * (p + 2))
        G = xp.asarray(rng.standard_normal((N, p)))
        T = xp.linalg.qr(W_star.T)[0]
        G = G - T @ (T.T @ G)  # orthogonal to the teacher rows
        U = xp.linalg.qr(G)[0]
        return (q * N) ** 0.5 * U.T
    if where == "manifold":
        if p < ps:
            raise ValueError(f"p must be ≥ p* for the manifold, got p = {p}, p* = {ps}")
        O = xp.asarray(np.linalg.qr(rng.standard_normal((p, ps)))[0])
        return (b / a) ** 0.5 * O @ W_star
    raise ValueError(f"where must be 'origin', 'plateau' or 'manifold', got {where!r}")


def _check_where(where: Any) -> None:
    """ValueError unless ``where`` is one of the three special points."""
    if not isinstance(where, str) or where not in ("origin", "plateau", "manifold"):
        raise ValueError(f"where must be 'origin', 'plateau' or 'manifold', got {where!r}")


def predicted_spectrum(where: str, p: int, p_star: int, N: int, a: Any, b: Any):
    """Predicted Hessian spectrum at a special point (P = I, drift plateau; chapter 7 of the book).

    Parameters
    ----------
    where : {'origin', 'plateau', 'manifold'}
        The special point.
    p, p_star : int ≥ 1
        Student and teacher widths (p ≥ p* on the manifold).
    N : int
        Input dimension: N ≥ p* (N ≥ p + p* at the plateau).
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    list of (eigenvalue, multiplicity)
        Sorted by eigenvalue, in the units of :func:`hessian` (the N·λ values of the theory
        divided by N); multiplicities add up to p·N; zero-multiplicity entries are dropped.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: an unknown ``where``, sizes not integers or too small.

    Examples
    --------
    >>> import quadnet as qn
    >>> qn.predicted_spectrum("origin", 1, 1, 3, 1.0, 1.0)
    [(-2.0, 1), (-0.6666666666666666, 2)]
    """
    _check_where(where)
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    N = v.integer("N", N)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    ps = p_star
    if N < ps:
        raise ValueError(f"N must be ≥ p* = {ps} (orthonormal teacher rows), got N = {N}")
    if where == "origin":
        rows = [(-2 * a * b * (ps + 2), p * ps), (-2 * a * b * ps, p * (N - ps))]
    elif where == "plateau":
        if N < p + ps:
            raise ValueError(f"N must be ≥ p + p* = {p + ps}, got {N}")
        q = b * ps / (a * (p + 2))
        rows = [
            (-4 * a * b, p * ps),
            (4 * a * b * ps, 1),
            (8 * a * a * q, p * (p + 1) // 2 - 1),
            (0.0, p * (p - 1) // 2 + p * (N - p - ps)),
        ]
    elif where == "manifold":
        if p < ps:
            raise ValueError(f"p must be ≥ p* on the manifold, got p = {p}, p* = {ps}")
        rows = [
            (4 * a * b * (ps + 2), 1),
            (8 * a * b, ps * (ps + 1) // 2 - 1),
            (4 * a * b, ps * (N - ps)),
            (0.0, ps * (ps - 1) // 2 + (p - ps) * N),
        ]
    else:
        raise ValueError(f"where must be 'origin', 'plateau' or 'manifold', got {where!r}")
    merged: dict[float, int] = {}
    for val, mult in rows:
        if mult > 0:
            merged[val / N] = merged.get(val / N, 0) + mult
    return sorted(merged.items())


@dataclass(frozen=True)
class SpectrumCheck:
    """Numerical and predicted Hessian spectra at one special point (NumPy, host).

    Attributes
    ----------
    where : str
        The special point: ``'origin'``, ``'plateau'`` or ``'manifold'``.
    numerical : ndarray (p·N,)
        Eigenvalues of :func:`hessian`, ascending.
    predicted : ndarray (p·N,)
        The eigenvalues of :func:`predicted_spectrum`, each repeated by its multiplicity, ascending.
    values, multiplicities : ndarray
        The distinct predicted eigenvalues and their multiplicities (int), as listed by
        :func:`predicted_spectrum`.
    """

    where: str
    numerical: np.ndarray
    predicted: np.ndarray
    values: np.ndarray
    multiplicities: np.ndarray

    @property
    def max_error(self) -> float:
        """Largest |numerical − predicted| eigenvalue, in the units of :func:`hessian`."""
        return float(np.abs(self.numerical - self.predicted).max())


def special_point_spectrum(where: str, W_star: Any, p: int, a: Any, b: Any, *, seed: Any = None) -> SpectrumCheck:
    """The Hessian spectrum at a special point, computed and predicted (chapter 7 of the book).

    Builds the weights with :func:`special_point`, diagonalizes :func:`hessian` on the host and
    expands :func:`predicted_spectrum` into one entry per eigenvalue, both sorted, so that they
    can be compared entry by entry.

    Parameters
    ----------
    where : {'origin', 'plateau', 'manifold'}
        The special point.
    W_star : array (p*, N)
        Teacher weights with orthonormal rows times √N (P = I, as the prediction assumes).
    p : int ≥ 1
        Student width (p ≥ p* on the manifold; N ≥ p + p* at the plateau).
    a, b : float > 0
        Student and teacher readouts.
    seed : int ≥ 0, SeedSequence, numpy Generator or None
        Randomness of the point, as in :func:`special_point`.

    Returns
    -------
    SpectrumCheck
        ``numerical`` and ``predicted`` eigenvalues (ascending, length p·N), the distinct predicted
        ``values`` with their ``multiplicities``.

    Raises
    ------
    TypeError, ValueError
        As :func:`special_point` and :func:`hessian`, naming the parameter.

    Examples
    --------
    >>> import quadnet as qn
    >>> from quadnet.hessian import special_point_spectrum
    >>> Ws = qn.teacher(1, 5, seed=0, backend="numpy")
    >>> spec = special_point_spectrum("plateau", Ws, 2, 0.5, 1.0, seed=1)
    >>> spec.numerical.shape, spec.max_error < 1e-12
    ((10,), True)
    """
    W = special_point(where, W_star, p, a, b, seed=seed)
    numerical = np.linalg.eigvalsh(to_numpy(hessian(W, W_star, a, b)))
    p_star, N = W_star.shape
    values, mult = np.array(predicted_spectrum(where, p, p_star, N, a, b)).T
    mult = mult.astype(int)
    return SpectrumCheck(where, numerical, np.repeat(values, mult), values, mult)
