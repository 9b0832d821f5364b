"""Closed-form results: the plateau, its basin, the critical steps, the escape rate, the late-time law.

Write B = b tr P, g = aγ (the effective step η) and u = a q. With M = 0 the line Q = q I is
invariant (chapter 3), and the Q-equation on it reads dq/dα = 4g q Φ(u) with

    Φ(u) = (B − p u) − 2u + g [ (B − p u)² + 2b² tr P² + σ² + 2p u² − 4u (B − p u) + 8u² ]
         = g(p+2)(p+4) u² − (p+2)(1 + 2gB) u + B + gK,        K = B² + 2b² tr P² + σ².

At g = 0 (drift only) the plateau is u = B/(p+2). For g > 0 Φ has two roots u₋ < u₊: u₋ is the
plateau (stable along the line), u₊ the edge of its basin — a start Q(0) = q0 I with a q0 ≥ u₊
has its norm diverge before anything else happens. The roots exist while the discriminant is ≥ 0,
i.e. below g_c, the positive root of 4[(p+4)K − (p+2)B²] g² + 8B g − (p+2) = 0. The book's
teacher has P = I (tr P = tr P² = p*); the private helpers take (tr P, tr P²), so the same
formulas hold for any teacher on the M = 0 line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _validate as v

__all__ = [
    "CriticalStepWarning",
    "Plateau",
    "plateau",
    "critical_lr",
    "plateau_basin_q",
    "basin_lr",
    "escape_rate",
    "late_time_loss",
    "manifold_critical_lr",
]


def _check(p, p_star, a, b, noise=0.0):
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    return p, p_star, a, b, noise


def _BK(b, trP, trP2, noise):
    B = b * trP
    return B, B * B + 2 * b * b * trP2 + noise * noise


def _critical_g(p, b, trP, trP2, noise):
    """g_c = aγ_c for a teacher with traces (tr P, tr P²)."""
    B, K = _BK(b, trP, trP2, noise)
    A = 4 * ((p + 4) * K - (p + 2) * B * B)  # > 0
    return (-8 * B + math.sqrt(64 * B * B + 4 * A * (p + 2))) / (2 * A)


def _line_roots(p, b, trP, trP2, noise, g):
    """The roots (u₋, u₊) of Φ on the M = 0 line (u₊ = ∞ for g = 0); None above g_c."""
    B, K = _BK(b, trP, trP2, noise)
    if g == 0:
        return B / (p + 2), math.inf
    lin = (p + 2) * (1 + 2 * g * B)
    disc = lin * lin - 4 * g * (p + 2) * (p + 4) * (B + g * K)
    if disc < 0:
        return None
    root = math.sqrt(disc)
    return 2 * (B + g * K) / (lin + root), (lin + root) / (2 * g * (p + 2) * (p + 4))


def _above_critical(p, p_star, a, b, lr, noise):
    gc = _critical_g(p, b, p_star, p_star, noise)
    return ValueError(
        f"lr = {lr:g} (η = {a * lr:g}) is above the critical step γ_c = {gc / a:.6g} (η_c = {gc:.6g}) for "
        f"p = {p}, p* = {p_star}, b = {b:g}, σ = {noise:g}: the plateau does not exist; lr must be ≤ γ_c"
    )


def critical_lr(p, p_star, a, b, *, noise=0.0):
    """Step γ_c above which the plateau of the full (γ²) ODE ceases to exist (P = I).

    Above γ_c every start with M ≈ 0 diverges during the norm-learning phase; below it the plateau
    exists, but whether a run from a given start converges is decided by other, smaller steps
    (:func:`basin_lr`, :func:`quadnet.step_limits`; chapter 2).

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    noise : float ≥ 0
        Label-noise standard deviation σ.

    Returns
    -------
    float
        γ_c = g_c / a, with g_c = aγ_c = η_c the critical effective step.

    Examples
    --------
    >>> critical_lr(2, 2, 0.5, 0.5)          # η_c = 1/4 exactly for p = p* = 2
    0.5
    """
    p, p_star, a, b, noise = _check(p, p_star, a, b, noise)
    return _critical_g(p, b, p_star, p_star, noise) / a


@dataclass(frozen=True)
class Plateau:
    """The plateau fixed point M = 0, Q = q I (P = I).

    Attributes
    ----------
    p, p_star, a, b, lr, noise
        The setting (``lr`` = 0 for the drift-only plateau).
    q : float
        Diagonal of Q.
    loss : float
        ε_g there, label noise included.
    """

    p: int
    p_star: int
    a: float
    b: float
    lr: float
    noise: float
    q: float
    loss: float

    @property
    def eta(self) -> float:
        """The effective step η = aγ."""
        return self.a * self.lr

    @property
    def Q(self) -> np.ndarray:
        """Q = q I, shape (p, p)."""
        return self.q * np.eye(self.p)

    @property
    def M(self) -> np.ndarray:
        """M = 0, shape (p, p*)."""
        return np.zeros((self.p, self.p_star))

    @property
    def trace_D(self) -> float:
        """tr D = b p* − a p q."""
        return self.b * self.p_star - self.a * self.p * self.q


def plateau(p, p_star, a, b, lr=None, *, eta=None, noise=0.0):
    """The plateau (uninformative fixed point) of the overlap ODEs at P = I.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    lr, eta : float ≥ 0, optional
        The step as γ (``lr``) or η = aγ (``eta``), at most one. Neither, or 0, gives the fixed
        point of the drift, q = b p*/(a (p+2)); a positive step the fixed point of the full ODE
        with its γ² term (q shifted upward).
    noise : float ≥ 0
        Label-noise standard deviation σ.

    Returns
    -------
    Plateau

    Raises
    ------
    ValueError
        Above the critical step :func:`critical_lr`, where the fixed point does not exist.

    Examples
    --------
    >>> pl = plateau(4, 2, 0.25, 0.5)            # drift plateau: q = B/(a(p+2)), loss 1/p* + 1/(p+2)
    >>> round(pl.q, 6), round(pl.loss, 6)
    (0.666667, 0.666667)
    """
    p, p_star, a, b, noise = _check(p, p_star, a, b, noise)
    if lr is not None and eta is not None:
        raise TypeError("give the step as lr (γ) or as eta (η = aγ), not both")
    if eta is not None:
        lr = v.positive("eta", eta, allow_zero=True, array=False) / a
    lr = 0.0 if lr is None else v.positive("lr", lr, allow_zero=True, array=False)
    roots = _line_roots(p, b, p_star, p_star, noise, a * lr)
    if roots is None:
        raise _above_critical(p, p_star, a, b, lr, noise)
    u = roots[0]
    trD = b * p_star - p * u
    loss = 0.5 * trD * trD + b * b * p_star + p * u * u + 0.5 * noise * noise
    return Plateau(p=p, p_star=p_star, a=a, b=b, lr=lr, noise=noise, q=u / a, loss=loss)


def plateau_basin_q(p, p_star, a, b, lr=None, *, eta=None, noise=0.0) -> float:
    """Edge of the plateau's basin on the M = 0 line: starts Q(0) = q0 I reach the plateau iff q0 < q_u.

    q_u = u₊/a is the larger root of Φ (module docstring); above it the norm term of the
    ODE wins and tr Q diverges before M can grow (chapter 2). At g = 0 (drift only) q_u = ∞.

    Parameters
    ----------
    p, p_star, a, b, lr, eta, noise
        As in :func:`plateau` (``lr = 0``/None: the drift line).

    Returns
    -------
    float (math.inf for the drift)

    Raises
    ------
    ValueError
        Above the critical step.

    Examples
    --------
    >>> 3 < plateau_basin_q(4, 2, 0.25, 0.5, eta=0.125) < 10
    True
    """
    pl = plateau(p, p_star, a, b, lr, eta=eta, noise=noise)
    return _line_roots(pl.p, pl.b, pl.p_star, pl.p_star, pl.noise, pl.a * pl.lr)[1] / pl.a


def _basin_g(p, b, trP, trP2, noise, u0):
    """Largest g at which u0 = a q0 lies in the basin (u0 < u₊), capped at g_c."""
    gc = _critical_g(p, b, trP, trP2, noise)
    u_c = _line_roots(p, b, trP, trP2, noise, gc * (1 - 1e-12))[1]
    if u0 <= u_c:
        return gc
    B, K = _BK(b, trP, trP2, noise)
    return ((p + 2) * u0 - B) / ((p + 2) * (p + 4) * u0 * u0 - 2 * B * (p + 2) * u0 + K)


def basin_lr(p, p_star, a, b, q0, *, noise=0.0) -> float:
    """Largest step γ at which a start Q(0) = q0 I (M ≈ 0) lies in the plateau's basin (P = I).

    Solves q0 = :func:`plateau_basin_q` for γ in closed form: g = aγ =
    ((p+2)u − B)/((p+2)(p+4)u² − 2B(p+2)u + K) at u = a q0. Starts with q0 below the basin edge at
    the critical step are in the basin for every step up to γ_c, which is then returned.

    Parameters
    ----------
    p, p_star, a, b, noise
        As in :func:`critical_lr`.
    q0 : float > 0
        Scale of the start (weights i.i.d. N(0, q0)).

    Returns
    -------
    float (≤ γ_c)

    Examples
    --------
    >>> gamma = basin_lr(4, 2, 0.25, 0.5, q0=10.0)        # the issue's q0 = 10 diverges at γ = 0.5
    >>> gamma < 0.5 < basin_lr(4, 2, 0.25, 0.5, q0=3.0)
    True
    """
    p, p_star, a, b, noise = _check(p, p_star, a, b, noise)
    q0 = v.positive("q0", q0, array=False)
    return _basin_g(p, b, p_star, p_star, noise, a * q0) / a


def escape_rate(p, p_star, a, b, lr=None, *, eta=None, drift_only=False, noise=0.0):
    """Growth rate r of M at the plateau: dM/dα = r M to linear order (P = I).

    r = 2aγ [tr D + 2b − 2aq] at the plateau; at the drift plateau this is 4abγ = 4bη,
    independent of p at fixed η. With ``drift_only=False`` the γ²-shifted plateau is used
    (slightly smaller rate). The loss leaves the plateau as e^{2rα}. Close to the critical step the
    shifted q can be large enough that r ≤ 0: M then decays and the plateau traps the student.

    Parameters
    ----------
    p, p_star, a, b, noise
        As in :func:`critical_lr`.
    lr, eta : float > 0
        The step as γ or η = aγ (exactly one).
    drift_only : bool
        Evaluate at the drift plateau (no γ² shift).

    Returns
    -------
    float (per unit α)

    Examples
    --------
    >>> escape_rate(4, 2, 0.25, 0.5, eta=0.125, drift_only=True)     # 4 b η
    0.25
    """
    p, p_star, a, b, noise = _check(p, p_star, a, b, noise)
    lr = v.step(lr, eta, a)
    pl = plateau(p, p_star, a, b, 0.0 if drift_only else lr, noise=noise)
    return 2 * a * lr * (pl.trace_D + 2 * pl.b - 2 * pl.a * pl.q)


def late_time_loss(p, p_star, a, lr=None, alpha=None, *, eta=None):
    """Gradient-flow (drift-only) late-time law for p > p* at P = I:
    ε(α) ≈ (p − p*)(p* + 2) / (64 a² γ² (p + 2) α²).

    The approach to the manifold is algebraic because the unused p − p* directions are marginal
    (the loss is quartic there). With the SGD-noise (γ²) term the exponent stays −2 but the
    prefactor changes; the solution-manifold chapter measures by how much.

    Parameters
    ----------
    p, p_star : int, p > p*
    a : float > 0
    lr, eta : float > 0
        The step as γ or η = aγ (exactly one).
    alpha : float or array, > 0

    Returns
    -------
    float or ndarray, the shape of ``alpha``

    Examples
    --------
    >>> round(float(late_time_loss(4, 2, 0.25, eta=0.125, alpha=100.0)), 8)
    0.00013333
    """
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    if p <= p_star:
        raise ValueError(f"p must be > p_star for the algebraic law, got p = {p}, p* = {p_star}")
    a = v.positive("a", a, array=False)
    lr = v.step(lr, eta, a)
    if isinstance(alpha, (str, bytes)) or alpha is None:
        raise TypeError(f"alpha must be a real number or array, got {type(alpha).__name__}")
    try:
        alpha = np.asarray(alpha, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("alpha must be a real number or an array of real numbers") from None
    if np.any(~np.isfinite(alpha)) or np.any(alpha <= 0):
        raise ValueError("alpha must be finite and > 0")
    return (p - p_star) * (p_star + 2) / (64 * a * a * lr * lr * (p + 2) * alpha**2)


def manifold_critical_lr(p_star, a, b):
    """Step γ_m above which the zero-loss manifold stops attracting the full ODE (P = I):
    γ_m = 1 / (2ab(p* + 2)), i.e. η_m = aγ_m = 1 / (2b(p* + 2)), independent of p.

    Derivation (chapter 2 and the derivations appendix, A.10): at a point of the manifold the
    eigenvalues w of Q − M Mᵀ along the directions the solution uses (zero on the manifold) obey a
    closed linear equation. The drift contracts them at rate 8abγ, but the loss is linear in them
    (ε₀ ≈ 2ab Σ w), so the γ² term re-injects them; their sum grows at
    λ(γ) = −8abγ + 16a²b²(p* + 2)γ², which changes sign at γ_m. For p = p* = 2, γ_m equals the
    plateau's γ_c. Above γ_m the run from a Gaussian start settles at a non-zero loss or diverges:
    :func:`quadnet.step_limits` says which, from which start.

    Parameters
    ----------
    p_star : int ≥ 1
    a, b : float > 0

    Returns
    -------
    float

    Examples
    --------
    >>> manifold_critical_lr(2, 0.25, 0.5)       # η_m = 1/(2b(p*+2)) = 1/4
    1.0
    """
    p_star = v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    return 1.0 / (2 * a * b * (p_star + 2))


class CriticalStepWarning(RuntimeWarning):
    """The step is outside the range from which the run is expected to converge (P ≈ I): above the
    plateau's critical step, outside the plateau's basin for this start, or above the step at which
    the dynamics diverges after the escape (:func:`quadnet.step_limits`). The ``diverged`` flags of
    the trajectory report what actually happens. Silence it where that is the point:
    ``warnings.simplefilter("ignore", qn.CriticalStepWarning)``."""


CriticalStepWarning.__module__ = "quadnet"  # shown (and filtered) as quadnet.CriticalStepWarning
