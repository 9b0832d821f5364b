"""Fixed points of the overlap ODE and their stability (chapter 2): the Jacobian of the right-hand
side, its spectrum up to the symmetry orbit, and the stationary state a run settles at when the
step is above the manifold's γ_m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _validate as v
from . import spectral_ode as so
from .ode import ode_rhs

__all__ = ["ode_jacobian", "quotient_spectrum", "StationaryState", "stationary_state"]


def _sym_coords(Q, M):
    iu = np.triu_indices(Q.shape[-1])
    return np.concatenate([Q[iu], M.ravel()]), iu


def _from_coords(y, p, p_star, iu):
    Q = np.zeros((p, p))
    Q[iu] = y[: len(iu[0])]
    Q = Q + np.triu(Q, 1).T
    return Q, y[len(iu[0]) :].reshape(p, p_star)


def ode_jacobian(Q, M, P, a, b, lr=None, *, eta=None, noise=0.0, drift_only=False, h=1e-6):
    """Jacobian of the overlap ODE at (Q, M), in the coordinates (upper triangle of Q, entries of M).

    Central differences of :func:`quadnet.ode_rhs` with step ``h`` (error O(h²) on a polynomial
    right-hand side: about 1e-10 for overlaps of order one). P is held fixed.

    Parameters
    ----------
    Q, M, P : arrays (p, p), (p, p*), (p*, p*)
        The point (unbatched).
    a, b, lr, eta, noise, drift_only
        As in :func:`quadnet.ode_rhs`.
    h : float > 0
        Difference step.

    Returns
    -------
    ndarray (n, n), n = p(p+1)/2 + p p*

    Examples
    --------
    >>> import numpy as np
    >>> J = ode_jacobian(2 * np.eye(2)[:, :1] @ np.eye(2)[:1], np.sqrt(2) * np.eye(2)[:, :1], np.eye(1), 0.5, 1.0, 0.2)
    >>> J.shape
    (5, 5)
    """
    a = v.positive("a", a, array=False)
    lr = v.step(lr, eta, a)
    Q, M, P = (np.asarray(x, dtype=float) for x in (Q, M, P))
    if Q.ndim != 2 or M.ndim != 2:
        raise ValueError(f"ode_jacobian takes one point: Q (p, p) and M (p, p*), got {Q.shape} and {M.shape}")
    p, p_star = M.shape
    y0, iu = _sym_coords(Q, M)
    cols = []
    for e in np.eye(y0.size):
        plus = ode_rhs(*_from_coords(y0 + h * e, p, p_star, iu), P, a, b, lr, noise=noise, drift_only=drift_only)
        minus = ode_rhs(*_from_coords(y0 - h * e, p, p_star, iu), P, a, b, lr, noise=noise, drift_only=drift_only)
        cols.append((_sym_coords(*plus)[0] - _sym_coords(*minus)[0]) / (2 * h))
    return np.array(cols).T


def _orbit_tangent(Q, M):
    """Orthonormal basis (n, r) of the tangent space of the symmetry orbit through (Q, M) (P = I):
    Q → O Q Oᵀ, M → O M V with O ∈ O(p), V ∈ O(p*), in the coordinates of :func:`ode_jacobian`."""
    p, p_star = M.shape
    vecs = []
    for i in range(p):
        for j in range(i + 1, p):
            A = np.zeros((p, p))
            A[i, j], A[j, i] = 1.0, -1.0
            vecs.append(_sym_coords(A @ Q - Q @ A, A @ M)[0])
    for i in range(p_star):
        for j in range(i + 1, p_star):
            B = np.zeros((p_star, p_star))
            B[i, j], B[j, i] = 1.0, -1.0
            vecs.append(_sym_coords(np.zeros((p, p)), M @ B)[0])
    if not vecs:
        return np.zeros((_sym_coords(Q, M)[0].size, 0))
    U, sv, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    return U[:, sv > 1e-9 * max(sv.max(), 1.0)]


def quotient_spectrum(J, Q, M):
    """Eigenvalues of the Jacobian ``J`` (from :func:`ode_jacobian` at (Q, M), P = I) with the exact
    zero modes of the symmetry orbit removed: the spectrum on the complement of the orbit's tangent
    space (which J maps into itself), i.e. the stability of the state up to symmetry.

    Parameters
    ----------
    J : ndarray (n, n)
        The Jacobian at (Q, M), n = p(p+1)/2 + p p*.
    Q, M : ndarray (p, p), (p, p*)
        The point; the orbit is Q → O Q Oᵀ, M → O M V, O ∈ O(p), V ∈ O(p*).

    Returns
    -------
    ndarray (n − dim orbit,) complex

    Examples
    --------
    >>> import numpy as np
    >>> Q, M = 2 * np.eye(2)[:, :1] @ np.eye(2)[:1], np.sqrt(2) * np.eye(2)[:, :1]   # a manifold point, p = 2, p* = 1
    >>> J = ode_jacobian(Q, M, np.eye(1), 0.5, 1.0, 0.2)
    >>> len(np.linalg.eigvals(J)) - len(quotient_spectrum(J, Q, M))    # one rotation removed
    1
    """
    T = _orbit_tangent(np.asarray(Q, float), np.asarray(M, float))
    n = J.shape[0]
    if T.shape[1] == 0:
        return np.linalg.eigvals(J)
    U, _, _ = np.linalg.svd(np.eye(n) - T @ T.T)
    C = U[:, : n - T.shape[1]]
    return np.linalg.eigvals(C.T @ J @ C)


@dataclass(frozen=True)
class StationaryState:
    """Where the N → ∞ dynamics from a Gaussian start settles (P = I).

    Attributes
    ----------
    Q, M : ndarray (p, p), (p, p*)   the state (in the basis of M's singular vectors)
    loss : float
    singular_values : ndarray (k,)   of M
    residual_eigenvalues : ndarray (p,)  of Q − M Mᵀ: zero on the manifold; the unused units keep a norm off it
    top_eigenvalue : complex         the eigenvalue of largest real part of the ODE Jacobian there, the
                                     zero modes of the symmetry orbit removed (:func:`quotient_spectrum`)
    diverged : bool                  True if the run diverged instead (then the arrays are NaN)
    """

    Q: np.ndarray
    M: np.ndarray
    loss: float
    singular_values: np.ndarray
    residual_eigenvalues: np.ndarray
    top_eigenvalue: complex
    diverged: bool


def stationary_state(p, p_star, a, b, lr=None, *, eta=None, q0=1.0, noise=0.0, alpha_max=None) -> StationaryState:
    """The state at which the N → ∞ ODE from a Gaussian start (equal singular values) settles.

    Integrates the ODE on its commuting subspace to ``alpha_max`` (default: long enough for the
    slowest relaxation met in the book) and polishes the end point as a fixed point (Newton on the
    spectral right-hand side), then computes the full ODE Jacobian there (:func:`ode_jacobian`).

    Parameters
    ----------
    p, p_star, a, b, lr, eta, q0, noise
        As in :func:`step_limits` (one step: exactly one of ``lr``/``eta``).
    alpha_max : float or None
        Horizon of the integration.

    Returns
    -------
    StationaryState

    Examples
    --------
    >>> st = stationary_state(4, 2, 0.25, 0.5, eta=0.27)          # between η_m = 0.25 and η_d
    >>> st.loss > 0.1 and st.top_eigenvalue.real < 0
    True
    """
    from scipy.optimize import root

    a = v.positive("a", a, array=False)
    lr = v.step(lr, eta, a)
    p, p_star = v.integer("p", p), v.integer("p_star", p_star)
    sp = so.SpectralState(p, p_star)
    y0 = sp.pack(np.full(sp.k, 1e-4), np.full(sp.k, q0), q0)
    horizon = alpha_max or 5000.0 / (a * lr)
    y = _integrate_to(y0, p, p_star, a, b, lr, noise, horizon)
    if y is None:
        nan = np.full((p, p), np.nan)
        return StationaryState(
            nan,
            np.full((p, p_star), np.nan),
            math.nan,
            np.full(sp.k, np.nan),
            np.full(p, np.nan),
            complex(math.nan),
            True,
        )
    sol = root(lambda z: so.spectral_rhs(z, p, p_star, a, b, lr, noise), y, tol=1e-14)
    y = sol.x if sol.success and np.abs(sol.x - y).max() < 1e-3 else y
    s, qj, qp = sp.split(y)
    Q = np.diag(np.concatenate([qj, np.full(sp.m, qp)]))
    M = np.zeros((p, p_star))
    M[range(sp.k), range(sp.k)] = s
    ev = quotient_spectrum(ode_jacobian(Q, M, np.eye(p_star), a, b, lr, noise=noise), Q, M)
    return StationaryState(
        Q=Q,
        M=M,
        loss=float(so.spectral_loss(y, p, p_star, a, b, noise)),
        singular_values=s,
        residual_eigenvalues=np.linalg.eigvalsh(Q - M @ M.T),
        top_eigenvalue=complex(ev[np.argmax(ev.real)]),
        diverged=False,
    )


def _integrate_to(y0, p, p_star, a, b, lr, noise, horizon):
    """End state of the spectral ODE at ``horizon`` (None if it diverged)."""
    from scipy.integrate import solve_ivp

    sp = so.SpectralState(p, p_star)

    def blowup(t, y):
        _, qj, qp = sp.split(y)
        return 1e4 * max(p, b / a * p_star) - (qj.sum() + sp.m * qp)

    blowup.terminal = True
    sol = solve_ivp(
        lambda t, y: so.spectral_rhs(y, p, p_star, a, b, lr, noise),
        (0, horizon),
        y0,
        method="LSODA",
        rtol=1e-10,
        atol=1e-14,
        events=blowup,
    )
    return None if sol.status == 1 or not np.all(np.isfinite(sol.y[:, -1])) else sol.y[:, -1]
