"""Closed-form results at P = I: the plateau, the critical step, the escape rate.

Write B = b p*, g = aγ (the effective step η) and u = a q. On the plateau M = 0, Q = q I the
M-equation vanishes and the Q-equation, divided by 4aγ q, reads

    (B − p u) − 2u + g [ (B − p u)² + 2b²p* + σ² + 2p u² − 4u (B − p u) + 8u² ] = 0,

i.e. the quadratic g(p+2)(p+4) u² − (p+2)(1 + 2gB) u + B + gK = 0 with K = B² + 2b²p* + σ².
At g = 0 (drift only) u = B/(p+2). The physical root is the one continuous with g → 0; it
exists while the discriminant is ≥ 0, i.e. below g_c, the positive root of
4[(p+4)K − (p+2)B²] g² + 8B g − (p+2) = 0.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v

__all__ = ["CriticalStepWarning", "Plateau", "plateau", "critical_lr", "escape_rate", "late_time_loss", "escape_time_estimate", "manifold_critical_lr"]


def _check(p, p_star, a, b, noise=0.0):
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    return p, p_star, a, b, noise


def _critical_g(p, p_star, b, noise):
    B = b * p_star
    K = B * B + 2 * b * b * p_star + noise * noise
    A = 4 * ((p + 4) * K - (p + 2) * B * B)  # > 0
    return (-8 * B + math.sqrt(64 * B * B + 4 * A * (p + 2))) / (2 * A)


def critical_lr(p, p_star, a, b, *, noise=0.0):
    """Step γ_c above which the plateau fixed point of the full (γ²) ODE ceases to exist (P = I).

    Returns γ_c = g_c / a, with g_c = aγ_c the critical effective step.
    """
    p, p_star, a, b, noise = _check(p, p_star, a, b, noise)
    return _critical_g(p, p_star, b, noise) / a


@dataclass(frozen=True)
class Plateau:
    """The plateau fixed point M = 0, Q = q I (P = I).

    Attributes: ``q`` (diagonal of Q), ``loss`` (ε_g there, label noise included),
    ``Q`` (p, p) and ``M`` (p, p*) as NumPy arrays, and the parameters it was computed for.
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
    def Q(self):
        return self.q * np.eye(self.p)

    @property
    def M(self):
        return np.zeros((self.p, self.p_star))

    @property
    def trace_D(self) -> float:
        return self.b * self.p_star - self.a * self.p * self.q


def plateau(p, p_star, a, b, lr=0.0, *, noise=0.0):
    """The plateau (uninformative fixed point) of the overlap ODEs at P = I.

    ``lr = 0`` gives the fixed point of the drift, q = b p*/(a (p+2)); ``lr > 0`` the fixed point of
    the full ODE with its γ² term (q shifted upward). Raises ``ValueError`` above the critical step
    :func:`critical_lr`, where the fixed point does not exist.
    """
    p, p_star, a, b, noise = _check(p, p_star, a, b, noise)
    lr = v.positive("lr", lr, allow_zero=True, array=False)
    B = b * p_star
    g = a * lr
    if g == 0:
        u = B / (p + 2)
    else:
        gc = _critical_g(p, p_star, b, noise)
        if g > gc:
            raise ValueError(
                f"lr = {lr:g} is above the critical step γ_c = {gc / a:.6g} (aγ_c = {gc:.6g}) for "
                f"p = {p}, p* = {p_star}, b = {b:g}: the plateau does not exist; lr must be ≤ γ_c"
            )
        K = B * B + 2 * b * b * p_star + noise * noise
        lin = (p + 2) * (1 + 2 * g * B)
        disc = max(lin * lin - 4 * g * (p + 2) * (p + 4) * (B + g * K), 0.0)
        u = 2 * (B + g * K) / (lin + math.sqrt(disc))  # the small root, stable as g → 0
    q = u / a
    trD = B - p * u
    loss = 0.5 * trD * trD + b * b * p_star + p * u * u + 0.5 * noise * noise
    return Plateau(p=p, p_star=p_star, a=a, b=b, lr=lr, noise=noise, q=q, loss=loss)


def escape_rate(p, p_star, a, b, lr, *, drift_only=False, noise=0.0):
    """Growth rate r of M at the plateau: dM/dα = r M to linear order (P = I).

    r = 2aγ [tr D + 2b − 2aq] evaluated at the plateau; at the drift plateau this is 4abγ,
    independent of p at fixed η = aγ. With ``drift_only=False`` the γ²-shifted plateau is used
    (slightly smaller rate). The loss leaves the plateau as e^{2rα}. Close to the critical step the
    shifted q can be large enough that r ≤ 0: M then decays and the plateau traps the student.
    """
    lr = v.positive("lr", lr, array=False)
    pl = plateau(p, p_star, a, b, 0.0 if drift_only else lr, noise=noise)
    return 2 * a * lr * (pl.trace_D + 2 * pl.b - 2 * pl.a * pl.q)


def late_time_loss(p, p_star, a, lr, alpha):
    """Gradient-flow (drift-only) late-time law for p > p* at P = I:
    ε(α) ≈ (p − p*)(p* + 2) / (64 a² γ² (p + 2) α²).

    The approach to the manifold is algebraic because the unused p − p* directions are marginal
    (the loss is quartic there). With the SGD-noise (γ²) term the exponent stays −2 but the
    prefactor changes; the solution-manifold chapter measures by how much.
    """
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    if p <= p_star:
        raise ValueError(f"p must be > p_star for the algebraic law, got p = {p}, p* = {p_star}")
    a = v.positive("a", a, array=False)
    lr = v.positive("lr", lr, array=False)
    if isinstance(alpha, (str, bytes)) or alpha is None:
        raise TypeError(f"alpha must be a real number or array, got {type(alpha).__name__}")
    try:
        alpha = np.asarray(alpha, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("alpha must be a real number or an array of real numbers") from None
    if np.any(~np.isfinite(alpha)) or np.any(alpha <= 0):
        raise ValueError("alpha must be finite and > 0")
    return (p - p_star) * (p_star + 2) / (64 * a * a * lr * lr * (p + 2) * alpha**2)


def escape_time_estimate(p, p_star, a, b, lr, N, *, q0=1.0, drift_only=False, noise=0.0):
    """Leading-order escape time α_esc ≈ [ln N − ln(p p* q0)] / (2r), r = :func:`escape_rate`.

    From ε_pl − ε(α) ∝ ‖M(0)‖² e^{2rα} with ‖M(0)‖²_F ≈ p p* q0 / N; an O(1)/(2r) offset (the time
    to cross the plateau and to leave it by an O(1) amount) is not included. At the drift plateau
    2r = 8abγ. The slope of α_esc against ln N is 1/(2r). Needs N > p + p* (an integer); the
    estimate is meaningful for N ≫ p p* q0 (it is ≤ 0 below that). Raises ``ValueError`` above the
    critical step, where there is no plateau to escape from.
    """
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    N = v.integer("N", N, minimum=p + p_star + 1)
    q0 = v.positive("q0", q0, array=False)
    r = escape_rate(p, p_star, a, b, lr, drift_only=drift_only, noise=noise)
    return (math.log(N) - math.log(p * p_star * q0)) / (2 * r)


def manifold_critical_lr(p_star, a, b):
    """Step above which the zero-loss manifold stops attracting the full ODE (P = I):
    γ_m = 1 / (2ab(p* + 2)), i.e. η_m = aγ_m = 1 / (2b(p* + 2)), independent of p.

    It is where γ_m·Nλ_max = 2 for the stiffest Hessian eigenvalue on the manifold,
    Nλ_max = 4ab(p* + 2) (the classic step-size bound of gradient descent), entering the
    overlap ODE through its γ² term. Found numerically (the Jacobian of the full ODE at the
    manifold changes sign there; see the dynamics chapter); no closed derivation is claimed.
    Between γ_m and the plateau's γ_c (:func:`critical_lr`) the ODE settles at a non-zero loss.
    """
    p_star = v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    return 1.0 / (2 * a * b * (p_star + 2))


class CriticalStepWarning(RuntimeWarning):
    """The step is above the critical step γ_c of the plateau (P = I, :func:`quadnet.critical_lr`):
    the dynamics is expected to diverge (the ``diverged`` flags report what actually happens).
    Silence it where that is the point: ``warnings.simplefilter("ignore", qn.CriticalStepWarning)``."""


def warn_above_critical(func: str, P: Any, xp: Any, p: int, p_star: int, a: float, b: float, lr: float,
                        noise: float, *, stacklevel: int = 3) -> None:
    """Warn (:class:`CriticalStepWarning`) when P ≈ I (every batch element, to 1e-6) and lr > γ_c."""
    if P.shape[-1] != p_star:
        return
    if not bool(xp.all(xp.abs(P - xp.eye(p_star)) <= 1e-6)):
        return
    lr_c = critical_lr(p, p_star, a, b, noise=noise)
    if lr > lr_c:
        warnings.warn(
            f"{func}: lr = {lr:.6g} is above the critical step γ_c = {lr_c:.6g} for p = {p}, p* = {p_star}, "
            f"a = {a:g}, b = {b:g}, σ = {noise:g} (P = I): the plateau does not exist and the run is expected "
            f"to diverge (see the trajectory's `diverged`); lr ≤ γ_c is the stable range",
            CriticalStepWarning, stacklevel=stacklevel,
        )


CriticalStepWarning.__module__ = "quadnet"  # shown (and filtered) as quadnet.CriticalStepWarning
