"""Fixed points of the overlap ODE and their stability (chapter 2): the Jacobian of the right-hand
side, its spectrum up to the symmetry orbit, and the stationary state a run settles at when the
step is above the manifold's γ_m.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import _validate as v
from . import spectral_ode as so
from .analysis import mean_and_stderr
from .backend import get_backend, to_numpy
from .model import default_readouts
from .ode import integrate_ode, ode_rhs
from .sgd import sgd_overlaps
from .summaries import norm_per_unit
from .theory import CriticalStepWarning, plateau

__all__ = [
    "ode_jacobian",
    "quotient_spectrum",
    "StationaryState",
    "stationary_state",
    "PlateauScan",
    "plateau_loss_scan",
    "settled_plateau_q",
]


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


def _plateau_start(p, p_star, a, b, xp):
    """The drift plateau as a start: Q = q_drift I, M = 0, P = I (on the backend ``xp``)."""
    return xp.asarray(plateau(p, p_star, a, b).Q), xp.zeros((p, p_star)), xp.eye(p_star)


def settled_plateau_q(p, p_star, a, b, etas, *, alpha_end=3000.0, backend=None) -> np.ndarray:
    """Plateau norm q = tr Q/p at which the ODE started on the drift plateau settles, at each step.

    The ODE (with its γ² term) starts at Q = q_drift I, M = 0 (``P = I``), on the invariant line
    M = 0, and is integrated to ``alpha_end``; from M = 0 exactly there is no escape, so the
    :class:`~quadnet.theory.CriticalStepWarning` of steps near η_c is silenced (chapter 3, the
    SGD-noise shift of the plateau).

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    etas : sequence of float > 0
        Effective steps η = aγ, each below the critical step a·:func:`~quadnet.critical_lr`.
    alpha_end : float > 0
        Integration horizon.
    backend : str, module or None
        Array backend of the integration (default: the default backend).

    Returns
    -------
    ndarray (len(etas),)
        The settled norm for each step (NumPy).

    Raises
    ------
    ValueError
        A width that is not an integer ≥ 1, or a readout, ``alpha_end`` or a step that is not > 0.

    Examples
    --------
    >>> q = settled_plateau_q(4, 2, 0.25, 0.5, [0.05, 0.125], alpha_end=500.0)
    >>> from quadnet import plateau
    >>> bool(abs(q[1] - plateau(4, 2, 0.25, 0.5, eta=0.125).q) < 1e-6)
    True
    """
    p, p_star = v.integer("p", p), v.integer("p_star", p_star)
    a, b = v.positive("a", a, array=False), v.positive("b", b, array=False)
    alpha_end = v.positive("alpha_end", alpha_end, array=False)
    etas = [v.positive("etas", e, array=False) for e in np.atleast_1d(etas)]
    start = _plateau_start(p, p_star, a, b, get_backend(backend))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CriticalStepWarning)
        return np.array(
            [to_numpy(norm_per_unit(integrate_ode(*start, a, b, e / a, [0.0, alpha_end]).Q[-1])) for e in etas]
        )


@dataclass(frozen=True)
class PlateauScan:
    """The plateau loss against the student width, measured and predicted (:func:`plateau_loss_scan`).

    Attributes
    ----------
    p : ndarray (n,)                 the student widths
    chain_mean, chain_se : ndarray   window-averaged loss of the exact chain: mean and standard error over runs
    ode : ndarray                    window-averaged loss of the ODE from the same start
    drift, full : ndarray            plateau loss of the drift fixed point and of the full ODE's (γ² term)
    """

    p: np.ndarray
    chain_mean: np.ndarray
    chain_se: np.ndarray
    ode: np.ndarray
    drift: np.ndarray
    full: np.ndarray


def plateau_loss_scan(ps, p_star, N, eta, window, *, n_runs, seed, n_times=9, backend=None) -> PlateauScan:
    """Plateau loss for each student width, from the drift plateau: exact chain and ODE (chapter 3).

    For each width p, with the default readouts (a, b) = (1/p, 1/p*) and the same effective step
    η (γ = η/a), the exact chain (:func:`~quadnet.sgd_overlaps`, ``n_runs`` runs, seed ``seed + p``)
    and the ODE start on the drift plateau, Q = q_drift I and M = 0, and their losses are averaged
    over ``n_times`` equally spaced times spanning ``window``.

    Parameters
    ----------
    ps : sequence of int ≥ 1
        Student widths.
    p_star : int ≥ 1
        Teacher width (``P = I``).
    N : int ≥ 1
        Input dimension of the chain.
    eta : float > 0
        Effective step η = aγ, the same for every width.
    window : (float, float)
        First and last time α of the average, 0 < first < last.
    n_runs : int ≥ 2
        Chain runs per width.
    seed : int ≥ 0
        Base seed: width p uses ``seed + p``.
    n_times : int ≥ 1
        Times in the window.
    backend : str, module or None
        Array backend (default: the default backend).

    Returns
    -------
    PlateauScan

    Raises
    ------
    ValueError
        A width, ``N``, ``n_runs`` or ``n_times`` out of range, ``eta`` not > 0, or a window that
        is not 0 < first < last.

    Examples
    --------
    >>> scan = plateau_loss_scan([1, 2], 2, 500, 0.125, (1.0, 2.0), n_runs=2, seed=0, n_times=2)
    >>> bool(abs(scan.ode[0] - scan.drift[0]) < 0.05), scan.chain_mean.shape
    (True, (2,))
    """
    ps = [v.integer("ps", pp) for pp in np.atleast_1d(ps)]
    p_star, N = v.integer("p_star", p_star), v.integer("N", N)
    n_runs, n_times = v.integer("n_runs", n_runs, minimum=2), v.integer("n_times", n_times)
    eta = v.positive("eta", eta, array=False)
    lo, hi = (float(w) for w in window)
    if not 0 < lo < hi:
        raise ValueError(f"window must be (first, last) with 0 < first < last, got {window!r}")
    xp = get_backend(backend)
    alphas = np.concatenate([[0.0], np.linspace(lo, hi, n_times)])
    rows = []
    for pp in ps:
        a_p, b_p = default_readouts(pp, p_star)
        Q0, M0, P = _plateau_start(pp, p_star, a_p, b_p, xp)
        ch = sgd_overlaps(Q0, xp.zeros((n_runs, pp, p_star)), P, N, a_p, b_p, eta / a_p, alphas, seed=seed + pp)
        od = integrate_ode(Q0, M0, P, a_p, b_p, eta / a_p, alphas)
        rows.append(
            [*mean_and_stderr(to_numpy(ch.loss[1:]).mean(0)), to_numpy(od.loss[1:]).mean()]
            + [plateau(pp, p_star, a_p, b_p, g).loss for g in (0, eta / a_p)]
        )
    return PlateauScan(np.array(ps), *np.array(rows).T)
