"""The overlap ODE on its commuting subspace: singular values of M and eigenvalues of Q.

With P = I and Q commuting with M Mᵀ (the N → ∞ limit of a Gaussian start, Q(0) = q0 I), every
term of the ODE stays in the algebra of M Mᵀ (chapter 6), so the singular vectors of M are frozen
and the state reduces to k = min(p, p*) singular values s_j of M, the eigenvalues q_j of Q along
the matching left singular vectors, and one eigenvalue q⊥ shared by the p − k other directions.
With g = aγ, tr D = b p* − a(Σ q_j + (p − k) q⊥) and G_j = b s_j² − a q_j²,

    ds_j/dα = 2g [ tr D s_j + 2 (b − a q_j) s_j ]
    dq_j/dα = 4g [ tr D q_j + 2 G_j ]
            + 4g² [ (2ε₀ + σ²) q_j + 4 tr D G_j + 8 (b² s_j² − 2ab s_j² q_j + a² q_j³) ]
    dq⊥/dα  = 4g [ tr D q⊥ − 2a q⊥² ] + 4g² [ (2ε₀ + σ²) q⊥ − 4a tr D q⊥² + 8a² q⊥³ ]

and ε₀ = ½ tr D² + b² p* − 2ab Σ s_j² + a² (Σ q_j² + (p − k) q⊥²). A batch of thousands of starts
is a (S, 2k + 1) array, integrated together by a vectorized Dormand–Prince 5(4) method that stops
each start when its loss crosses a level: the escape-time law of chapter 4 costs milliseconds per
start, whatever N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SpectralState", "spectral_rhs", "spectral_loss", "spectral_state", "first_crossing"]


@dataclass(frozen=True)
class SpectralState:
    """Sizes of the commuting-subspace problem: k = min(p, p*) singular values, m = p − k others."""

    p: int
    p_star: int

    @property
    def k(self) -> int:
        return min(self.p, self.p_star)

    @property
    def m(self) -> int:
        return self.p - self.k

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s, q, q⊥) views of states y (..., 2k + 1)."""
        k = self.k
        return y[..., :k], y[..., k : 2 * k], y[..., 2 * k]

    def pack(self, s: Any, q: Any, q_perp: Any) -> np.ndarray:
        """States (..., 2k + 1) from s (..., k), q (..., k), q⊥ (...)."""
        s, q = np.asarray(s, dtype=float), np.asarray(q, dtype=float)
        q_perp = np.broadcast_to(np.asarray(q_perp, dtype=float), s.shape[:-1])
        return np.concatenate([s, q, q_perp[..., None]], axis=-1)


def _trace_d(shape: SpectralState, q, q_perp, b):
    return b * shape.p_star - (q.sum(-1) + shape.m * q_perp)


def spectral_loss(y: Any, p: int, p_star: int, a: float, b: float, noise: float = 0.0) -> np.ndarray:
    """Population loss ε_g of spectral states y (..., 2k + 1) (label noise adds σ²/2)."""
    shape = SpectralState(p, p_star)
    s, q, qp = shape.split(np.asarray(y, dtype=float))
    trD = b * p_star - a * (q.sum(-1) + shape.m * qp)
    return (
        0.5 * trD**2
        + b * b * p_star
        - 2 * a * b * (s * s).sum(-1)
        + a * a * ((q * q).sum(-1) + shape.m * qp * qp)
        + 0.5 * noise**2
    )


def spectral_rhs(
    y: Any, p: int, p_star: int, a: float, b: float, lr: Any, noise: float = 0.0, drift_only: bool = False
) -> np.ndarray:
    """dy/dα of spectral states y (..., 2k + 1) = (s_1..s_k, q_1..q_k, q⊥); see the module docstring.

    ``lr`` is a float or an array broadcasting against the batch shape ``y.shape[:-1]`` (one step
    per start, e.g. to scan steps in one integration). For p ≤ p* there is no q⊥ direction and its
    derivative is set to 0.
    """
    shape = SpectralState(p, p_star)
    y = np.asarray(y, dtype=float)
    s, q, qp = shape.split(y)
    g = a * np.asarray(lr, dtype=float)
    g1 = g[..., None]
    trD = b * p_star - a * (q.sum(-1) + shape.m * qp)
    T = trD[..., None]
    s2 = s * s
    G = b * s2 - a * q * q
    ds = 2 * g1 * (T * s + 2 * (b - a * q) * s)
    dq = 4 * g1 * (T * q + 2 * G)
    dqp = 4 * g * (trD * qp - 2 * a * qp * qp)
    if not drift_only:
        two_eps = (
            trD**2
            + 2 * b * b * p_star
            - 4 * a * b * s2.sum(-1)
            + 2 * a * a * ((q * q).sum(-1) + shape.m * qp * qp)
            + noise**2
        )
        dq = dq + 4 * g1 * g1 * (
            two_eps[..., None] * q + 4 * T * G + 8 * (b * b * s2 - 2 * a * b * s2 * q + a * a * q**3)
        )
        dqp = dqp + 4 * g * g * (two_eps * qp - 4 * a * trD * qp * qp + 8 * a * a * qp**3)
    if shape.m == 0:
        dqp = np.zeros_like(dqp)
    dqp = np.broadcast_to(dqp, ds.shape[:-1])
    return np.concatenate([ds, dq, dqp[..., None]], axis=-1)


def spectral_state(Q: Any, M: Any) -> np.ndarray:
    """Spectral state (2k + 1,) of commuting overlaps (Q, M) with P = I: singular values of M, the
    eigenvalues of Q along its left singular vectors, and the mean of the others (q⊥).

    Exact when Q commutes with M Mᵀ and the other eigenvalues of Q are equal (e.g. Q = q0 I);
    otherwise a projection.
    """
    Q, M = np.asarray(Q, dtype=float), np.asarray(M, dtype=float)
    p, p_star = M.shape[-2:]
    k = min(p, p_star)
    U, s, _ = np.linalg.svd(M, full_matrices=True)
    Qu = np.swapaxes(U, -1, -2) @ Q @ U
    diag = np.diagonal(Qu, axis1=-2, axis2=-1)
    q_perp = diag[..., k:].mean(-1) if p > k else np.zeros(diag.shape[:-1])
    return SpectralState(p, p_star).pack(s[..., :k], diag[..., :k], q_perp)


# --------------------------------------------------------------------------- integration

# Dormand–Prince 5(4) tableau
_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1])
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_E = np.array([71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])


def _dopri_step(f, rows, y, k1, h):
    """One Dormand–Prince step of size h from y (the states of starts ``rows``) with f(y, rows) = k1;
    returns (y_new, f(y_new), error)."""
    ks = [k1]
    for i in range(1, 7):
        yi = y + h * sum(c * kj for c, kj in zip(_A[i], ks) if c)
        ks.append(f(yi, rows))
    y_new = y + h * sum(c * kj for c, kj in zip(_A[6], ks[:6]) if c)
    err = h * sum(e * kj for e, kj in zip(_E, ks) if e)
    return y_new, ks[6], err


def _hermite(y0, f0, y1, f1, h, theta):
    """Cubic Hermite interpolant between (y0, f0) and (y1, f1) at fractions theta (S, 1)."""
    t2, t3 = theta * theta, theta**3
    return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0 + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1


def _crossing_fraction(loss, y0, f0, y1, f1, h, level, iterations=30):
    """Fraction θ ∈ [0, 1] of the step where loss(interpolant) = level, by bisection (loss(θ=0) ≥ level)."""
    lo = np.zeros((y0.shape[0], 1))
    hi = np.ones_like(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = loss(_hermite(y0, f0, y1, f1, h, mid)) < level
        hi = np.where(below[:, None], mid, hi)
        lo = np.where(below[:, None], lo, mid)
    return 0.5 * (lo + hi)[:, 0]


@dataclass(frozen=True)
class Crossings:
    """Result of :func:`first_crossing`: per start, the first α where the loss fell below the level
    (NaN if never by ``alpha_max``), and whether the run diverged (trace beyond the bound)."""

    alpha: np.ndarray
    diverged: np.ndarray
    steps: int
    settled: np.ndarray | None = None


def first_crossing(
    y0: Any,
    rhs,
    loss,
    level: float,
    alpha_max: float,
    *,
    trace=None,
    limit: float = np.inf,
    rtol: float = 1e-9,
    atol: float = 1e-13,
    h0: float = 1e-2,
    settle: float | None = None,
    stop_on_divergence: bool = False,
) -> Crossings:
    """Integrate a batch of states and return each one's first crossing of ``loss < level``.

    Parameters
    ----------
    y0 : array (S, n)
        Start states.
    rhs : callable (y (S', n), rows (S',)) -> (S', n)
        Vectorized right-hand side (autonomous) of the states y of starts ``rows`` (indices into
        y0, so per-start parameters can be looked up).
    loss : callable (S', n) -> (S',)
        The loss of states.
    level : float
        The level; a start already below it crosses at α = 0.
    alpha_max : float > 0
        Horizon: starts that have not crossed by then get NaN.
    trace : callable (S', n) -> (S',) or None
        A size (e.g. tr Q) whose exceeding ``limit`` or turning non-finite marks divergence.
    rtol, atol, h0 : float
        Error control of the common adaptive step (Dormand–Prince 5(4), max-norm over the batch)
        and the first step.
    settle : float or None
        If given, a start whose right-hand side falls below ``settle`` (max-norm) has reached a
        fixed point: it stops there (``settled``), neither crossed nor diverged.
    stop_on_divergence : bool
        Return as soon as one start diverges (the others are left unfinished: NaN).

    Returns
    -------
    Crossings
    """
    y = np.array(y0, dtype=float, copy=True)
    S = y.shape[0]
    out = np.full(S, np.nan)
    diverged = np.zeros(S, dtype=bool)
    settled = np.zeros(S, dtype=bool)
    live = np.arange(S)
    start_below = loss(y) < level
    out[start_below] = 0.0
    live = live[~start_below]
    y = y[live]
    t, h, steps = 0.0, h0, 0
    f = rhs(y, live) if live.size else None
    while live.size and t < alpha_max:
        h = min(h, alpha_max - t)
        y1, f1, err = _dopri_step(rhs, live, y, f, h)
        scale = atol + rtol * np.maximum(np.abs(y), np.abs(y1))
        with np.errstate(invalid="ignore", over="ignore"):
            e = np.max(np.abs(err) / scale)
        if not np.isfinite(e) or e > 1:
            if not np.isfinite(e) and h < 1e-12:
                raise FloatingPointError("first_crossing: the step size underflowed (a non-finite state)")
            h *= 0.2 if not np.isfinite(e) else max(0.2, 0.9 * e**-0.2)
            continue
        steps += 1
        L1 = loss(y1)
        crossed = L1 < level
        if crossed.any():
            theta = _crossing_fraction(loss, y[crossed], f[crossed], y1[crossed], f1[crossed], h, level)
            out[live[crossed]] = t + theta * h
        bad = np.zeros_like(crossed)
        if trace is not None:
            with np.errstate(invalid="ignore"):
                bad = ~(trace(y1) <= limit) & ~crossed
            diverged[live[bad]] = True
            if stop_on_divergence and bad.any():
                break
        done = np.zeros_like(crossed)
        if settle is not None:
            done = (np.max(np.abs(f1), axis=-1) < settle) & ~crossed & ~bad
            settled[live[done]] = True
        keep = ~crossed & ~bad & ~done
        live, y, f = live[keep], y1[keep], f1[keep]
        t += h
        h *= min(5.0, 0.9 * max(e, 1e-10) ** -0.2)
    return Crossings(alpha=out, diverged=diverged, steps=steps, settled=settled)
