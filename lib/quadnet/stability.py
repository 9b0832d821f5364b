"""Which steps work, from which start: the limits of the step size and their mechanisms (chapter 2).

For P = I and a Gaussian start (Q(0) = q0 I, M(0) small), the N → ∞ dynamics at step γ is decided
by several thresholds, in this order of the story:

``critical`` γ_c (:func:`quadnet.critical_lr`)
    Above it the plateau does not exist: every start with M ≈ 0 diverges while learning the norm.
``basin`` γ_b(q0) (:func:`quadnet.basin_lr`)
    The plateau's basin on the M = 0 line is q0 < q_u(γ); a larger start diverges before anything
    else happens. γ_b(q0) = γ_c for q0 below the basin edge at γ_c.
``trap``
    Close to γ_c the γ²-shifted plateau can have a non-positive escape rate (p ≤ p*): M then decays
    and the student stays on the plateau forever (no divergence, no learning).
``manifold`` γ_m (:func:`quadnet.manifold_critical_lr`)
    Above it the zero-loss manifold repels (the noise term re-injects the unused directions Q⊥):
    the run escapes the plateau and settles at a stationary state of non-zero loss.
``post_escape`` γ_d
    The stationary branch that leaves the manifold at γ_m loses stability in a Hopf bifurcation
    (a complex pair of Jacobian eigenvalues crosses zero); from a little below that step the
    trajectory that leaves the plateau no longer lands on it and diverges *after* the escape.
    Found by integrating the ODE on its commuting subspace (:mod:`quadnet.spectral_ode`) from a
    tiny seed of M and bisecting in γ; independent of q0 and of the seed's size, and weakly of
    its shape (the ratios of the singular values of M(0): a few 1e-3 relative).

:func:`step_limits` computes them all; :func:`warn_unstable_step` is the warning the simulators and
the integrator issue from it; :mod:`quadnet.fixed_points` computes the stationary state and its
stability.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from . import spectral_ode as so
from .theory import (
    CriticalStepWarning,
    _basin_g,
    _critical_g,
    basin_lr,
    critical_lr,
    escape_rate,
    manifold_critical_lr,
    plateau,
)

__all__ = ["StepLimits", "step_limits", "warn_unstable_step"]


def _bisect_rate_zero(p, p_star, a, b, noise, lo, hi, iterations=60):
    """Step in (lo, hi) where the shifted plateau's escape rate turns ≤ 0 (rate(lo) > 0 ≥ rate(hi))."""
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if escape_rate(p, p_star, a, b, mid, noise=noise) > 0:
            lo = mid
        else:
            hi = mid
    return hi


def _trap_lr(p, p_star, a, b, noise, lr_c):
    """Smallest step at which the plateau traps (escape rate ≤ 0), or None below γ_c."""
    top = lr_c * (1 - 1e-12)
    if escape_rate(p, p_star, a, b, top, noise=noise) > 0:
        return None
    return _bisect_rate_zero(p, p_star, a, b, noise, 1e-6 * lr_c, top)


def _diverges_after_escape(lrs, p, p_star, a, b, noise, shape):
    """For each step in ``lrs`` (S,): does the ODE from the plateau with a tiny seed of the given
    singular-value shape diverge? (Trapped or settled steps count as not diverging.)"""
    sp = so.SpectralState(p, p_star)
    S = lrs.size
    q = np.array([plateau(p, p_star, a, b, lr, noise=noise).q for lr in lrs])
    seed = 1e-4 * np.broadcast_to(shape, (S, sp.k))
    y0 = sp.pack(seed, np.repeat(q[:, None], sp.k, axis=1), q)
    rates = np.array([escape_rate(p, p_star, a, b, lr, noise=noise) for lr in lrs])
    # escape from the 1e-4 seed, then a few relaxation times: a divergence after the escape shows at
    # the first overshoot; steps so close to the threshold that it takes longer count as stable
    r_esc = max(np.median(rates[rates > 0]), 0.02) if np.any(rates > 0) else 1.0
    horizon = 1.5 * math.log(1e8) / (2 * r_esc) + 40.0 / (a * lrs.min())

    def rhs(y, rows):
        return so.spectral_rhs(y, p, p_star, a, b, lrs[rows], noise)

    def trace(y):
        _, qj, qp = sp.split(y)
        return qj.sum(-1) + sp.m * qp

    limit = 30 * max(p * q.max(), (b / a) * p_star, 1.0)  # no stationary state is that large: on its way out
    out = so.first_crossing(
        y0,
        rhs,
        lambda y: np.full(y.shape[0], np.inf),
        -np.inf,
        horizon,
        trace=trace,
        limit=limit,
        rtol=1e-7,
        atol=1e-12,
        settle=1e-9,
    )
    return out.diverged


@functools.lru_cache(maxsize=256)
def _post_escape_lr(p, p_star, a, b, noise, shape, lo, hi, passes=2, points=24):
    """Smallest step in (lo, hi) from which the run diverges after the escape (None if none does)."""
    shape = np.asarray(shape, dtype=float)
    for refinement in range(passes):
        grid = np.linspace(lo, hi, points)
        div = _diverges_after_escape(grid, p, p_star, a, b, noise, shape)
        if not div.any():  # first pass: none diverges below the top; later: hi (known to diverge) is the answer
            return None if refinement == 0 else float(hi)
        i = int(np.argmax(div))
        if i == 0:
            return float(grid[0])
        lo, hi = grid[i - 1], grid[i]
    return float(0.5 * (lo + hi))


@dataclass(frozen=True)
class StepLimits:
    """The step thresholds for a Gaussian start of scale q0 (P = I), as plain steps γ.

    Attributes
    ----------
    critical : float          γ_c, the plateau exists below it
    manifold : float or None  γ_m, the zero-loss manifold attracts below it (None for p < p*)
    basin : float             largest γ at which Q(0) = q0 I is in the plateau's basin (≤ γ_c)
    trap : float or None      smallest γ at which the plateau traps the student (escape rate ≤ 0)
    post_escape : float or None  smallest γ from which the run diverges after the escape
    a : float                 the student readout (for the ``eta`` view)
    q0 : float                the start's scale
    """

    critical: float
    manifold: float | None
    basin: float
    trap: float | None
    post_escape: float | None
    a: float
    q0: float

    @property
    def stable(self) -> float:
        """Largest step from which the run does not diverge: min(γ_c, basin, post_escape)."""
        return min(x for x in (self.critical, self.basin, self.post_escape) if x is not None)

    @property
    def zero_loss(self) -> float:
        """Largest step from which the run reaches zero loss (the stable range below γ_m and the trap)."""
        return min(x for x in (self.stable, self.manifold, self.trap) if x is not None)

    def eta(self, name: str) -> float | None:
        """A threshold as an effective step η = aγ, e.g. ``limits.eta("stable")``."""
        x = getattr(self, name)
        return None if x is None else self.a * x

    def regime(self, lr: float) -> str:
        """What the N → ∞ dynamics does at step ``lr`` from this start, in words."""
        lr = v.positive("lr", lr, array=False)
        if lr > self.critical:
            return "diverges: above the critical step there is no plateau"
        if lr > self.basin:
            return "diverges: the start lies outside the plateau's basin"
        if self.trap is not None and lr >= self.trap:
            return "trapped: the plateau is stable (escape rate ≤ 0), the student never escapes"
        if self.post_escape is not None and lr >= self.post_escape:
            return "diverges after the escape: the stationary state has lost stability"
        if self.manifold is None:
            return "escapes and settles at the best loss a narrow student can reach"
        if lr > self.manifold:
            return "escapes and settles at a stationary state of non-zero loss"
        return "escapes and converges to the zero-loss manifold"


def step_limits(p, p_star, a, b, *, q0=1.0, noise=0.0, shape=None) -> StepLimits:
    """The thresholds of the step for a Gaussian start of scale q0 (P = I), with their mechanisms.

    See the module docstring for each threshold. The post-escape threshold needs integrations
    of the ODE on its commuting subspace (a fraction of a second; cached per setting).

    Parameters
    ----------
    p, p_star : int ≥ 1
        Widths.
    a, b : float > 0
        Readouts.
    q0 : float > 0
        Scale of the start, weights i.i.d. N(0, q0).
    noise : float ≥ 0
        Label noise σ.
    shape : array (min(p, p*),) or None
        Relative singular values of √N M(0) used for the post-escape threshold; default equal.

    Returns
    -------
    StepLimits

    Examples
    --------
    >>> lim = step_limits(2, 1, 0.5, 1.0)
    >>> lim.manifold < lim.post_escape < lim.critical          # (2, 1): diverges after the escape
    True
    >>> lim.regime(0.38)
    'diverges after the escape: the stationary state has lost stability'
    """
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    q0 = v.positive("q0", q0, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    k = min(p, p_star)
    shape = np.ones(k) if shape is None else v.finite_array("shape", shape, np)
    if shape.shape != (k,) or np.any(shape <= 0):
        raise ValueError(f"shape must hold min(p, p*) = {k} positive relative singular values, got {shape}")
    lr_c = critical_lr(p, p_star, a, b, noise=noise)
    lr_m = manifold_critical_lr(p_star, a, b) if p >= p_star else None
    trap = _trap_lr(p, p_star, a, b, noise, lr_c)
    top = (trap if trap is not None else lr_c) * (1 - 1e-9)
    lo = min(lr_m, top) * 0.999 if lr_m is not None else 0.5 * top
    post = _post_escape_lr(p, p_star, a, b, noise, tuple(shape / shape.max()), lo, top)
    return StepLimits(
        critical=lr_c,
        manifold=lr_m,
        basin=basin_lr(p, p_star, a, b, q0, noise=noise),
        trap=trap,
        post_escape=post,
        a=a,
        q0=q0,
    )


def _near_identity(P, xp, tol=0.05):
    ev = np.linalg.eigvalsh(np.asarray(P if xp is np else P.get(), dtype=float))
    return bool(np.all(np.abs(ev - 1) <= tol))


def warn_unstable_step(
    func: str,
    P: Any,
    xp: Any,
    p: int,
    p_star: int,
    a: float,
    b: float,
    lr: float,
    noise: float,
    *,
    trQ0: Any = None,
    stacklevel: int = 3,
) -> None:
    """Warn (:class:`~quadnet.CriticalStepWarning`) when the run is expected to diverge.

    The rule (P within 5 % of I in every eigenvalue, every batch element; no warning otherwise,
    where no theory is available): the step is above γ_c computed for this teacher's traces
    (exact on the M = 0 line), or the start is outside the plateau's basin (its largest
    tr Q(0)/p ≥ q_u, the exact criterion for Q(0) = q0 I; ``trQ0`` holds tr Q(0) per replica), or
    the step is at or above the post-escape threshold of :func:`step_limits` (computed only when
    γ_m < lr ≤ γ_c).
    """
    Ph = np.asarray(P if xp is np else P.get(), dtype=float).reshape((-1, p_star, p_star))
    if not all(_near_identity(Pi, np) for Pi in Ph):
        return
    trP = float(np.mean(np.trace(Ph, axis1=-2, axis2=-1)))
    trP2 = float(np.mean(np.sum(Ph * Ph, axis=(-2, -1))))
    lr_c = _critical_g(p, b, trP, trP2, noise) / a
    q0 = 0.0 if trQ0 is None else float(np.max(np.asarray(trQ0 if xp is np else xp.asnumpy(trQ0), dtype=float))) / p
    where = f"for p = {p}, p* = {p_star}, a = {a:g}, b = {b:g}, σ = {noise:g} (P ≈ I)"
    msg = None
    if lr > lr_c:
        msg = f"lr = {lr:.6g} is above the critical step γ_c = {lr_c:.6g} {where}: the plateau does not exist"
    elif q0 > 0 and lr > _basin_g(p, b, trP, trP2, noise, a * q0) / a:
        msg = (
            f"the start's scale tr Q(0)/p = {q0:.4g} is outside the plateau's basin at lr = {lr:.6g} "
            f"(the largest stable step from it is {_basin_g(p, b, trP, trP2, noise, a * q0) / a:.6g}) {where}"
        )
    elif p >= p_star and lr > manifold_critical_lr(p_star, a, b):
        lim = step_limits(p, p_star, a, b, noise=noise)
        if lim.post_escape is not None and lr >= lim.post_escape and (lim.trap is None or lr < lim.trap):
            msg = (
                f"lr = {lr:.6g} is at or above the post-escape divergence step {lim.post_escape:.6g} {where}: "
                "after the escape the stationary state is unstable (stable range: lr < that step)"
            )
    if msg:
        warnings.warn(
            f"{func}: {msg}; the run is expected to diverge (see the trajectory's `diverged`)",
            CriticalStepWarning,
            stacklevel=stacklevel,
        )
