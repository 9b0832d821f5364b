"""The escape from the plateau, predicted with nothing fitted (chapter 4).

A Gaussian start (weights i.i.d. N(0, q0), P = I) has Q(0) ≈ q0 I and √N M(0) = √q0 G, G a standard
Gaussian p × p* matrix. Three stages decide when the loss leaves the plateau:

1. **The norm-learning transient.** M = 0 is invariant, so before the escape Q(α) = q(α) I follows
   the closed M = 0 ODE from q0, and M grows at the instantaneous rate
   r(α) = 2aγ [b p* − a p q(α) + 2b − 2a q(α)], which tends to the plateau rate r_pl. The transient
   multiplies M by e^{Δ(q0)} relative to a start on the plateau, Δ(q0) = ∫₀^∞ (r(α) − r_pl) dα;
   for q0 above the plateau's q the trace mismatch is negative at first and M *shrinks* (Δ < 0).
2. **The noise seed.** In the exact chain, near M = 0 the rescaled overlap m = √N M obeys
   dm = r(α) m dα + √s(α) dB with independent noise per entry, s(α) = 4a²γ² E[e² λ₁² ν₁²] at
   Q = q(α) I, M = 0 (e = y − ŷ + σξ). At the plateau exit m = e^{∫r} (m(0) + noise), the noise
   being i.i.d. N(0, κ) with κ = ∫₀^∞ s(α) e^{−2∫₀^α r} dα. So the chain leaves the plateau as the
   ODE does from the *inflated seed* √N M(0) = √(q0 + κ) G.
3. **The nonlinear end**, from the exponential growth to the escape level (half the plateau's
   loss above the noise floor): integrated exactly, for each seed, by the ODE on its commuting
   subspace (:mod:`quadnet.spectral_ode`: the singular values of M and the eigenvalues of Q).

Hence :func:`escape_time_law`: samples of the chain's escape time, drawn as ODE escape times from
Q(0) = q0 I and √N M(0) = √(q0 + κ) G at a cost independent of N, and :func:`escape_time_estimate`,
their mean. Asymptotically exact as N → ∞ (O(N^{-1/2}) corrections: Q's fluctuations, the
noise met during the nonlinear end); nothing is fitted to simulations.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from . import _validate as v
from . import spectral_ode as so
from .analysis import escape_time, log_slope, mean_and_stderr
from .backend import to_numpy
from .model import default_readouts, make_rng
from .ode import integrate_ode
from .sgd import sgd_overlaps
from .starts import gaussian_overlaps
from .theory import critical_lr, escape_rate, manifold_critical_lr, plateau, plateau_basin_q

__all__ = [
    "EscapeTimes",
    "chain_escape_times",
    "gaussian_escape_times",
    "escape_level",
    "NormTransient",
    "norm_transient",
    "transient_log_gain",
    "noise_seed_variance",
    "escape_time_law",
    "escape_time_estimate",
    "EscapeComparison",
    "compare_escape_time",
    "GrowthRate",
    "chain_growth_rate",
    "ode_escape_times",
]

#: samples behind escape_time_estimate's mean (Monte Carlo error ≈ sd / 45, a few 1e-2 in α)
ESTIMATE_SAMPLES = 2048
_ESTIMATE_SEED = 20260403


def _setting(p, p_star, a, b, lr, eta, noise):
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.step(lr, eta, a)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    return p, p_star, a, b, lr, noise


def escape_level(p, p_star, a, b, lr=None, *, eta=None, noise=0.0) -> float:
    """The loss level that defines the escape: half-way from the plateau down to the noise floor.

    level = σ²/2 + (ε_pl − σ²/2)/2, with ε_pl the plateau loss of the full ODE at this step
    (:func:`quadnet.plateau`, label noise included). Without label noise it is half the plateau
    loss; with label noise the loss never falls below σ²/2, so the level is half the plateau's
    excess above that floor. Every escape tool and chapter of the book uses this level.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    lr, eta : float > 0
        The step, as the plain γ (``lr``) or as η = aγ (``eta``): exactly one.
    noise : float ≥ 0
        Label-noise standard deviation σ.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Above the critical step, where there is no plateau.

    Examples
    --------
    >>> round(escape_level(4, 2, 0.25, 0.5, eta=0.125), 4)
    0.3392
    """
    p, p_star, a, b, lr, noise = _setting(p, p_star, a, b, lr, eta, noise)
    return _level(p, p_star, a, b, lr, noise)


def _level(p, p_star, a, b, lr, noise):
    floor = 0.5 * noise**2
    return floor + 0.5 * (plateau(p, p_star, a, b, lr, noise=noise).loss - floor)


def _second_moment(q, p, p_star, a, b, noise):
    """E[e² X Y] with e = b|ν|² − a|λ|² + σξ, X = ν₁², Y = λ₁²/q, at Q = qI, M = 0, P = I
    (χ² moments: E X = 1, E X² = 3, E X³ = 15)."""
    A1, A2 = p_star - 1, (p_star - 1) * (p_star + 1)  # the other p* − 1 teacher fields
    C1, C2 = p - 1, (p - 1) * (p + 1)  # the other p − 1 student fields (in units of q)
    u = a * q
    own = 15 * b * b - 18 * b * u + 15 * u * u
    cross = 2 * (3 * b - 3 * u) * (b * A1 - u * C1)
    rest = b * b * A2 - 2 * b * u * A1 * C1 + u * u * C2
    return own + cross + rest + noise**2


@dataclass(frozen=True)
class NormTransient:
    """The norm-learning transient from Q = q0 I, M = 0 (P = I) and the numbers it sets.

    Attributes
    ----------
    alpha : ndarray (T,)       times of the tabulated solution
    q : ndarray (T,)           q(α), Q = q(α) I along the M = 0 solution
    rate : ndarray (T,)        r(α) = 2aγ [b p* − a p q + 2b − 2a q], the growth rate of M
    plateau_rate : float       r_pl, the limit of r(α) (:func:`quadnet.escape_rate`)
    log_gain : float           Δ(q0) = ∫₀^∞ (r(α) − r_pl) dα
    kappa : float              κ = ∫₀^∞ s(α) e^{−2∫₀^α r} dα, the variance of the chain's noise seed of √N M
    growth : ndarray (T,)      ∫₀^α r: M(α) ≈ e^{growth} × its seed while linear
    seed_variance : ndarray (T,)  ∫₀^α s e^{−2∫r}: the variance per entry of √N M(α) e^{−growth} − √N M(0)
    q0, lr, eta, noise : float the setting
    p, p_star : int            the widths
    """

    alpha: np.ndarray
    q: np.ndarray
    rate: np.ndarray
    plateau_rate: float
    log_gain: float
    kappa: float
    growth: np.ndarray
    seed_variance: np.ndarray
    q0: float
    lr: float
    eta: float
    noise: float
    p: int
    p_star: int


def _line_rate(q, p, p_star, a, b, lr, noise, drift_only):
    """dq/dα on the M = 0 line Q = q I (P = I): 4g q Φ(aq) (see :mod:`quadnet.theory`)."""
    g, u, B = a * lr, a * q, b * p_star
    phi = (B - p * u) - 2 * u
    if not drift_only:
        phi += g * ((B - p * u) ** 2 + 2 * b * b * p_star + noise**2 + 2 * p * u * u - 4 * u * (B - p * u) + 8 * u * u)
    return 4 * g * q * phi


def _line_relaxation(p, p_star, a, b, lr, noise, q_pl, drift_only):
    """Relaxation rate of q to the plateau along the M = 0 line: −d(dq/dα)/dq at q_pl (→ 0 at γ_c)."""
    h = 1e-6 * q_pl
    return -(
        _line_rate(q_pl + h, p, p_star, a, b, lr, noise, drift_only)
        - _line_rate(q_pl - h, p, p_star, a, b, lr, noise, drift_only)
    ) / (2 * h)


def _transient_rhs(t, y, p, p_star, a, b, lr, noise, r_pl, drift_only):
    """(q, ∫(r − r_pl), ∫r, κ integrand) along the M = 0 line."""
    q, log_m = y[0], y[2]
    g = a * lr
    r = 2 * g * (b * p_star - a * p * q + 2 * b - 2 * a * q)
    s = 0.0 if drift_only else 4 * g * g * q * _second_moment(q, p, p_star, a, b, noise)
    return [_line_rate(q, p, p_star, a, b, lr, noise, drift_only), r - r_pl, r, s * math.exp(-2 * log_m)]


def norm_transient(p, p_star, a, b, lr=None, *, eta=None, q0=1.0, noise=0.0, drift_only=False) -> NormTransient:
    """Integrate the M = 0 transient from Q = q0 I and return q(α), r(α), Δ(q0) and κ.

    Parameters
    ----------
    p, p_star, a, b, lr, eta, noise
        As in :func:`escape_level`.
    q0 : float > 0
        Initial scale, Q(0) = q0 I (weights i.i.d. N(0, q0)). Must lie in the plateau's basin,
        q0 < q_u (:func:`quadnet.plateau_basin_q`): above it the norm diverges before any escape.
    drift_only : bool
        The drift-only ODE (gradient flow): no γ² term and no SGD noise (κ = 0).

    Returns
    -------
    NormTransient

    Raises
    ------
    ValueError
        For q0 outside the basin, a step above the critical one, or a plateau that traps the student
        (r_pl ≤ 0 close to the critical step: there is no escape to predict).

    Examples
    --------
    >>> tr = norm_transient(4, 2, 0.25, 0.5, eta=0.125, q0=1.0)
    >>> round(tr.log_gain, 3), round(tr.kappa, 3)
    (-0.141, 0.484)
    """
    p, p_star, a, b, lr, noise = _setting(p, p_star, a, b, lr, eta, noise)
    q0 = v.positive("q0", q0, array=False)
    lr_pl = 0.0 if drift_only else lr
    r_pl = escape_rate(p, p_star, a, b, lr, noise=noise, drift_only=drift_only)
    if r_pl <= 0:
        raise ValueError(
            f"the plateau traps the student at lr = {lr:g} (its escape rate r = {r_pl:.3g} ≤ 0): "
            "there is no escape; take a smaller step"
        )
    q_u = plateau_basin_q(p, p_star, a, b, lr_pl, noise=noise)
    if q0 >= q_u:
        raise ValueError(
            f"q0 = {q0:g} is outside the plateau's basin at this step (q0 must be < {q_u:.6g}): "
            "the norm of the student diverges before it can escape"
        )
    q_pl = plateau(p, p_star, a, b, lr_pl, noise=noise).q
    relax = _line_relaxation(p, p_star, a, b, lr, noise, q_pl, drift_only)
    horizon = 60.0 / r_pl + 40.0 / relax * max(1.0, abs(math.log(q0 / q_pl)))
    if horizon > 2e4 / (a * lr):
        raise ValueError(
            f"lr = {lr:g} is too close to the critical step ({critical_lr(p, p_star, a, b, noise=noise):.6g}) for a "
            f"prediction: the norm relaxes at rate {relax:.3g} and M grows at {r_pl:.3g}, so the transient does not "
            "settle before the escape (the law assumes it does); lr must be smaller"
        )
    sol = solve_ivp(
        _transient_rhs,
        (0.0, horizon),
        [q0, 0.0, 0.0, 0.0],
        method="DOP853",
        rtol=1e-11,
        atol=1e-13,
        dense_output=True,
        args=(p, p_star, a, b, lr, noise, r_pl, drift_only),
    )
    if sol.status != 0:
        raise RuntimeError(f"norm_transient: the M = 0 integration failed: {sol.message}")
    alpha = np.linspace(0.0, min(horizon, 30.0 / (a * lr)), 601)
    y = sol.sol(alpha)
    rate = 2 * a * lr * (b * p_star - a * p * y[0] + 2 * b - 2 * a * y[0])
    return NormTransient(
        alpha=alpha,
        q=y[0],
        rate=rate,
        plateau_rate=float(r_pl),
        log_gain=float(sol.y[1, -1]),
        kappa=float(sol.y[3, -1]),
        growth=y[2],
        seed_variance=y[3],
        q0=q0,
        lr=lr,
        eta=a * lr,
        noise=noise,
        p=p,
        p_star=p_star,
    )


def transient_log_gain(p, p_star, a, b, lr=None, *, eta=None, q0=1.0, noise=0.0) -> float:
    """Δ(q0) = ∫₀^∞ (r(α) − r_pl) dα: the log-factor by which the norm-learning transient from
    Q = q0 I multiplies M, relative to a start on the plateau (see :func:`norm_transient`).

    Parameters
    ----------
    p, p_star, a, b, lr, eta, q0, noise
        As in :func:`norm_transient`.

    Returns
    -------
    float
        Negative for q0 above the plateau's q (M shrinks while the excess norm is unlearned).

    Examples
    --------
    >>> [round(transient_log_gain(4, 2, 0.25, 0.5, eta=0.125, q0=q0), 3) for q0 in (0.1, 3.0)]
    [1.071, -1.127]
    """
    return norm_transient(p, p_star, a, b, lr, eta=eta, q0=q0, noise=noise).log_gain


def noise_seed_variance(p, p_star, a, b, lr=None, *, eta=None, q0=1.0, noise=0.0) -> float:
    """κ: the variance per entry of the SGD noise that the exact chain adds to √N M(0) before the
    escape, referred back to α = 0 (see :func:`norm_transient`). Independent of N.

    Parameters
    ----------
    p, p_star, a, b, lr, eta, q0, noise
        As in :func:`norm_transient`.

    Returns
    -------
    float
        κ ≥ 0; the chain escapes as the ODE does from √N M(0) = √(q0 + κ) G.

    Examples
    --------
    >>> round(noise_seed_variance(4, 2, 0.25, 0.5, eta=0.125), 3)
    0.484
    """
    return norm_transient(p, p_star, a, b, lr, eta=eta, q0=q0, noise=noise).kappa


def _seed_singular_values(p, p_star, samples, seed):
    rng = make_rng(seed, "numpy", role="law")
    G = rng.standard_normal((samples, p, p_star))
    return np.linalg.svd(G, compute_uv=False)  # (samples, k), descending


def _ode_escape_times(sv, scale, p, p_star, a, b, lr, q0, noise, drift_only, level, horizon):
    """ODE escape times from Q = q0 I, M with singular values scale·sv (rows of sv)."""
    shape = so.SpectralState(p, p_star)
    y0 = shape.pack(scale * sv, np.full(sv.shape, q0), np.full(sv.shape[0], q0))

    def rhs(y, rows):
        return so.spectral_rhs(y, p, p_star, a, b, lr, noise, drift_only)

    def loss(y):
        return so.spectral_loss(y, p, p_star, a, b, noise)

    def trace(y):
        s, q, qp = shape.split(y)
        return q.sum(-1) + shape.m * qp

    limit = 1e3 * max(p * q0, (b / a) * p_star, 1.0)
    return so.first_crossing(y0, rhs, loss, level, horizon, trace=trace, limit=limit, stop_on_divergence=True)


def escape_time_law(
    p,
    p_star,
    a,
    b,
    lr=None,
    N=None,
    *,
    eta=None,
    q0=1.0,
    noise=0.0,
    samples=1000,
    seed=None,
    drift_only=False,
    kappa=None,
) -> np.ndarray:
    """Samples from the predicted law of the exact chain's escape time from a Gaussian start.

    Each sample is the escape time (first α with loss below :func:`escape_level`) of the ODE from
    Q(0) = q0 I and √N M(0) = √(q0 + κ) G, G a standard Gaussian p × p* matrix and κ the
    variance of the noise seed (:func:`noise_seed_variance`); computed on the commuting subspace,
    at a cost independent of N (a few ms per sample). Nothing is fitted to simulations.

    Parameters
    ----------
    p, p_star, a, b, lr, eta, noise
        As in :func:`escape_level`.
    p, p_star : int
        Widths. A narrow student (p < p*) has no zero-loss point, but its loss still leaves the
        plateau and crosses the escape level on its way to the narrow fixed point (chapter 8), and
        the law holds for it too (tested against the chain at p = 2, p* = 3).
    N : int
        Input dimension (only through ln N: the whole law shifts by ln 10/(2 r_pl) per decade).
        Must exceed p + p*; the law is asymptotic in N (chapter 4 measures from which N it holds).
    q0 : float > 0
        Scale of the start, weights i.i.d. N(0, q0); inside the plateau's basin.
    samples : int
        Number of samples.
    seed : int, SeedSequence, Generator or None
        Randomness for G (the ``"law"`` stream of an int seed).
    drift_only : bool
        Predict the drift-only ODE (gradient flow) from the plain seed instead (κ = 0, no γ² term).
    kappa : float ≥ 0 or None
        Override the noise seed: None (the chain's κ), or e.g. 0 for the full ODE from the plain
        Gaussian start, √N M(0) = √q0 G (what the N → ∞ ODE does from the chain's start overlaps).

    Returns
    -------
    ndarray (samples,)
        Escape times in units of α.

    Raises
    ------
    ValueError
        Bad parameters, q0 outside the basin, a trapping plateau, a step above the critical one or
        too close to it, a step at which the run diverges after the escape or settles above the
        escape level, or label noise so large that the loss settles above the escape level.

    Notes
    -----
    Measured accuracy (``benchmarks/escape_law.py``: 1000 chain replicas against 4000 law samples
    per setting, (p, p*) in {(2, 1), (4, 2), (3, 3), (8, 2)}, q0 in {0.3, 1, 3}, η in {0.05, 0.125},
    σ in {0, 0.3}). At η = 0.125 the mean is within 0.9 % at N = 10⁴ and no KS test rejects at
    1e-3. At η = 0.05 the chain is off by up to 1.4 % (later without label noise from q0 = 0.3,
    earlier with σ = 0.3 from q0 = 1), and the deviation does not shrink with N (10³, 10⁴, 10⁵),
    so KS tests with 1000 replicas reject in 4 of 24 settings: an O(1) error of the law at small
    steps, not yet explained.

    Examples
    --------
    >>> t = escape_time_law(4, 2, 0.25, 0.5, N=10_000, eta=0.125, samples=200, seed=1)
    >>> t.shape, bool(20 < t.mean() < 25)
    ((200,), True)
    """
    tr = norm_transient(p, p_star, a, b, lr, eta=eta, q0=q0, noise=noise, drift_only=drift_only)
    p, p_star, a, b, lr = tr.p, tr.p_star, float(a), float(b), tr.lr
    N = v.integer("N", N, minimum=p + p_star + 1)
    samples = v.integer("samples", samples)
    sv = _seed_singular_values(p, p_star, samples, seed)
    level = _level(p, p_star, a, b, 0.0 if drift_only else lr, noise)
    kap = tr.kappa if kappa is None else v.positive("kappa", kappa, allow_zero=True, array=False)
    _check_level_reachable(p, p_star, a, b, lr, noise, level)
    scale = math.sqrt((q0 + kap) / N)
    horizon = (2 * math.log(N) + 20) / tr.plateau_rate + 80.0 / (a * lr)
    out = _ode_escape_times(sv, scale, p, p_star, a, b, lr, q0, noise, drift_only, level, horizon)
    if out.diverged.any():
        raise ValueError(
            f"at lr = {lr:g} the run diverges after leaving the plateau, before reaching the escape level "
            f"(the step is beyond the post-escape threshold, quadnet.step_limits): lr must be smaller"
        )
    if np.isnan(out.alpha).any():
        lr_m = manifold_critical_lr(p_star, a, b)
        why = (
            (
                f"above the manifold's step (γ_m = {lr_m:.6g}) the run settles at a stationary state of non-zero loss "
                "(quadnet.stationary_state); lr must be smaller"
            )
            if lr > lr_m
            else "the loss settles above it"
        )
        raise ValueError(
            f"at lr = {lr:g} some runs never reach the escape level {level:.4g} by α = {horizon:.4g}: {why}"
        )
    return out.alpha


def _check_level_reachable(p, p_star, a, b, lr, noise, level):
    """ValueError when label noise keeps the loss above the escape level (stationary loss ≥ level)."""
    if noise == 0:
        return
    from .regimes import stationary_loss

    try:
        floor = stationary_loss(p, p_star, a, b, lr, noise).loss
    except ValueError:  # outside the near-manifold fixed point's own domain: nothing to compare
        return
    if floor >= level:
        raise ValueError(
            f"with noise = {noise:g} the loss settles at {floor:.4g}, above the escape level {level:.4g}: "
            "the student never escapes by that criterion; noise must be smaller"
        )


def escape_time_estimate(p, p_star, a, b, lr=None, N=None, *, eta=None, q0=1.0, noise=0.0, drift_only=False) -> float:
    """Predicted mean escape time of the exact chain from a Gaussian start (weights i.i.d. N(0, q0), P = I).

    The mean of :func:`escape_time_law` over a fixed set of 2048 Gaussian seeds (a deterministic
    number, cached per setting; Monte Carlo error ≈ sd/45, a few 1e-2 in α). It includes every O(1) term: the
    norm-learning transient Δ(q0), the noise seed κ and the nonlinear end to the half-plateau level
    (:func:`escape_level`). To leading order in N it reads

        α_esc ≈ [ln N − ln(q0 + κ) + c_end(G)] / (2 r_pl) − Δ(q0) / r_pl,

    with c_end(G) set by the singular values of the Gaussian seed G and the nonlinear end (not by N
    or q0): the slope against ln N is 1/(2 r_pl).

    Parameters
    ----------
    p, p_star, a, b, lr, eta, N, q0, noise
        As in :func:`escape_time_law`.
    drift_only : bool
        The prediction for the drift-only ODE (gradient flow) from the plain Gaussian seed.

    Returns
    -------
    float (units of α)

    Examples
    --------
    >>> round(escape_time_estimate(4, 2, 0.25, 0.5, N=10_000, eta=0.125), 1)
    22.1
    """
    p, p_star, a, b, lr, noise = _setting(p, p_star, a, b, lr, eta, noise)
    N = v.integer("N", N, minimum=p + p_star + 1)
    q0 = v.positive("q0", q0, array=False)
    return _estimate(p, p_star, a, b, lr, N, q0, noise, bool(drift_only))


@functools.lru_cache(maxsize=1024)
def _estimate(p, p_star, a, b, lr, N, q0, noise, drift_only):
    t = escape_time_law(
        p, p_star, a, b, lr, N, q0=q0, noise=noise, samples=ESTIMATE_SAMPLES, seed=_ESTIMATE_SEED, drift_only=drift_only
    )
    return float(t.mean())


@dataclass(frozen=True)
class EscapeTimes:
    """Escape times measured on the exact chain, one per replica.

    Attributes
    ----------
    alpha : ndarray (R,)     first α with loss below ``level`` (NaN if diverged or not by ``alpha_max``)
    diverged : ndarray (R,) bool
    censored : ndarray (R,) bool   still on the plateau at ``alpha_max``
    level : float            the escape level used
    N : int
    """

    alpha: np.ndarray
    diverged: np.ndarray
    censored: np.ndarray
    level: float
    N: int


def _root_seed(seed):
    """A SeedSequence whose children seed the stretches of a chain run (int ≥ 0, SeedSequence or None)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int ≥ 0, a SeedSequence or None, got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.SeedSequence(seed)


def _chain_stretch(state, live, N, a, b, lr, noise, seed, start, stop, dalpha, level):
    """Run replicas ``live`` from α = start to stop; returns (escape times, diverged, last Q, last M)."""
    Q, M, P = state
    al = start + dalpha * np.arange(max(int(round((stop - start) / dalpha)), 1) + 1)
    run = sgd_overlaps(Q[live], M[live], P[live], N, a, b, lr, al - start, noise=noise, seed=seed)
    return escape_time(al, run.loss, level), np.asarray(run.diverged), run.Q[-1], run.M[-1]


def chain_escape_times(
    Q0, M0, P, N, a, b, lr=None, *, eta=None, noise=0.0, seed=None, level=None, alpha_max=None, dalpha=None
) -> EscapeTimes:
    """Escape times of the exact finite-N chain (:func:`quadnet.sgd_overlaps`) from given overlaps.

    The chain runs in stretches and drops each replica once it has escaped or diverged, so no
    replica runs much past its escape; the chain is Markov, so continuing a replica from its last
    state with fresh random numbers leaves its law unchanged.

    Parameters
    ----------
    Q0, M0, P : arrays (R, p, p), (R, p, p*), (p*, p*) or (R, p*, p*)
        Start overlaps of R replicas (e.g. :func:`quadnet.gaussian_overlaps`).
    N : int
        Input dimension.
    a, b, lr, eta, noise
        Readouts, step (γ or η, exactly one) and label noise.
    seed : int ≥ 0, SeedSequence or None
        Randomness; each stretch draws from its own child stream.
    level : float or None
        Escape level; default :func:`escape_level` of this setting.
    alpha_max : float or None
        Give up after this α (censored); default 3× the predicted mean escape time + 20/r (P = I)
        or 400/(aγ).
    dalpha : float or None
        Resolution of the recorded loss (escape times are interpolated linearly); default 0.05·4/(4bη)
        clipped to [0.02, 0.25].

    Returns
    -------
    EscapeTimes

    Examples
    --------
    >>> Q0, M0, P = gaussian_overlaps(4, 2, 2000, 8, seed=0)
    >>> out = chain_escape_times(Q0, M0, P, 2000, 0.25, 0.5, eta=0.125, seed=1)
    >>> out.alpha.shape, bool(np.isfinite(out.alpha).all())
    ((8,), True)
    """
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.step(lr, eta, a)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    N = v.integer("N", N)
    Q0, M0, P = (np.asarray(x, dtype=float) for x in (Q0, M0, P))
    if Q0.ndim != 3 or M0.ndim != 3:
        raise ValueError(f"Q0 and M0 must be batches (R, p, p) and (R, p, p*), got {Q0.shape} and {M0.shape}")
    R, p, p_star = M0.shape
    P = np.broadcast_to(P, (R, p_star, p_star))
    if level is None:
        level = escape_level(p, p_star, a, b, lr, noise=noise)
    r = escape_rate(p, p_star, a, b, lr, noise=noise) if np.allclose(P, np.eye(p_star)) else 4 * b * a * lr
    if alpha_max is None:
        alpha_max = 3 * (math.log(N) / (2 * max(r, 1e-3)) + 20 / max(r, 1e-3))
    dalpha = dalpha or float(np.clip(0.05 / (4 * b * a * lr) * 0.5, 0.02, 0.25))
    root = _root_seed(seed)
    t = np.full(R, np.nan)
    diverged = np.zeros(R, dtype=bool)
    Q, M = Q0.copy(), M0.copy()
    live, start, stop, k = np.arange(R), 0.0, min(alpha_max, 0.6 * math.log(N) / (2 * max(r, 1e-3))), 0
    while live.size and start < alpha_max:
        t_live, div, Q[live], M[live] = _chain_stretch(
            (Q, M, P), live, N, a, b, lr, noise, root.spawn(1)[0], start, stop, dalpha, level
        )
        t[live], diverged[live] = t_live, div
        live = live[np.isnan(t_live) & ~div]
        start, stop, k = stop, min(alpha_max, stop + 0.5 / max(r, 1e-3)), k + 1
    censored = np.isnan(t) & ~diverged
    return EscapeTimes(alpha=t, diverged=diverged, censored=censored, level=float(level), N=N)


def _readouts(p, p_star, a, b):
    """(a, b), each defaulting to the book's readouts (:func:`~quadnet.default_readouts`) when None."""
    a0, b0 = default_readouts(v.integer("p", p), v.integer("p_star", p_star))
    return (a0 if a is None else a), (b0 if b is None else b)


def gaussian_escape_times(
    p, p_star, N, replicas, lr=None, *, eta=None, a=None, b=None, q0=1.0, noise=0.0, seed=None, **kwargs
) -> EscapeTimes:
    """Escape times of the exact chain from Gaussian starts: :func:`quadnet.gaussian_overlaps` (weights
    i.i.d. N(0, q0), P = I) followed by :func:`chain_escape_times`.

    Parameters
    ----------
    p, p_star, N : int
        Widths and input dimension.
    replicas : int
        Number of independent students.
    lr, eta : float
        The step, as γ or η = aγ (exactly one).
    a, b : float or None
        Readouts; default 1/p and 1/p*.
    q0, noise : float
        Initialization scale and label noise.
    seed : int or None
        One seed for the starts and the chain (they draw from different streams).
    **kwargs
        Passed on to :func:`chain_escape_times` (``level``, ``alpha_max``, ``dalpha``).

    Returns
    -------
    EscapeTimes

    Examples
    --------
    >>> out = gaussian_escape_times(4, 2, 2000, 8, eta=0.125, seed=0)
    >>> bool(np.isfinite(out.alpha).all())
    True
    """
    a, b = _readouts(p, p_star, a, b)
    start = gaussian_overlaps(p, p_star, N, replicas, q0=q0, seed=seed)
    return chain_escape_times(*start, N, a, b, lr, eta=eta, noise=noise, seed=seed, **kwargs)


@dataclass(frozen=True)
class EscapeComparison:
    """The mean escape time of the exact chain against its prediction, for one setting (chapter 4).

    Attributes
    ----------
    times : EscapeTimes    the chain's escape times, one per replica
    mean, stderr : float   mean ± standard error over the replicas that escaped (NaN if fewer than two did)
    predicted : float      :func:`escape_time_estimate` (NaN outside the plateau's basin, or not asked for)
    diverged : float       the fraction of replicas that diverged
    """

    times: EscapeTimes
    mean: float
    stderr: float
    predicted: float
    diverged: float

    @property
    def alpha(self) -> np.ndarray:
        """The escape times of the replicas, ``times.alpha``."""
        return self.times.alpha

    @property
    def relative_error(self) -> float:
        """mean / predicted − 1: the relative error of the prediction."""
        return self.mean / self.predicted - 1

    def agrees(self, n_se: float = 3.0, rel: float = 0.01) -> bool:
        """|mean − predicted| < n_se · stderr + rel · predicted: the prediction inside the error bar
        widened by a relative allowance for the O(N^{-1/2}) corrections (chapter 4's criterion)."""
        return bool(abs(self.mean - self.predicted) < n_se * self.stderr + rel * self.predicted)


def compare_escape_time(
    p, p_star, N, replicas, lr=None, *, eta=None, a=None, b=None, q0=1.0, noise=0.0, seed=None, predict=True, **kwargs
) -> EscapeComparison:
    """Measure the escape time of the exact chain from Gaussian starts and set it beside its prediction.

    :func:`gaussian_escape_times` (the measurement), the mean ± standard error over the replicas
    that escaped, the fraction that diverged, and :func:`escape_time_estimate` (nothing fitted).

    Parameters
    ----------
    p, p_star, N, replicas, lr, eta, a, b, q0, noise, seed, **kwargs
        As in :func:`gaussian_escape_times` (readouts default to 1/p and 1/p*).
    predict : bool
        Compute the prediction (a few seconds per new setting); False leaves it NaN.

    Returns
    -------
    EscapeComparison
        ``predicted`` is NaN for a start outside the plateau's basin (q0 ≥ :func:`quadnet.plateau_basin_q`),
        where the runs diverge and there is no escape to predict.

    Raises
    ------
    ValueError, TypeError
        Bad parameters (from :func:`gaussian_escape_times` and :func:`escape_time_estimate`).

    Examples
    --------
    >>> c = compare_escape_time(4, 2, 500, 4, eta=0.125, seed=3, predict=False)
    >>> c.alpha.shape, bool(c.mean > 0), c.diverged
    ((4,), True, 0.0)
    """
    times = gaussian_escape_times(
        p, p_star, N, replicas, lr, eta=eta, a=a, b=b, q0=q0, noise=noise, seed=seed, **kwargs
    )
    a, b = _readouts(p, p_star, a, b)
    escaped = times.alpha[np.isfinite(times.alpha)]
    mean, se = mean_and_stderr(escaped) if escaped.size > 1 else (np.nan, np.nan)
    predicted = np.nan
    if predict:
        lr = v.step(lr, eta, a)
        if q0 < plateau_basin_q(p, p_star, a, b, lr, noise=noise):
            predicted = escape_time_estimate(p, p_star, a, b, lr, N, q0=q0, noise=noise)
    return EscapeComparison(times, float(mean), float(se), float(predicted), float(times.diverged.mean()))


@dataclass(frozen=True)
class GrowthRate:
    """The exponential growth rate of M on the plateau, fitted on the exact chain (chapter 4).

    Attributes
    ----------
    alpha : ndarray (T,)       times of the recorded overlaps
    m2 : ndarray (T, R)        ‖M‖_F² of each replica
    rates : ndarray (R,)       the rate of each replica: half the slope of ln ‖M‖_F² in its linear window
    mean, stderr : float       mean ± standard error of ``rates``
    theory : float             the plateau rate r_pl (:func:`quadnet.escape_rate`, noise-shifted plateau)
    window_start : float       the α after which the norm-learning transient is over
    """

    alpha: np.ndarray
    m2: np.ndarray
    rates: np.ndarray
    mean: float
    stderr: float
    theory: float
    window_start: float


def chain_growth_rate(
    p,
    p_star,
    N,
    replicas,
    lr=None,
    *,
    eta=None,
    a=None,
    b=None,
    q0=1.0,
    seed=None,
    upper=0.03,
    settle=0.01,
    dalpha=0.25,
) -> GrowthRate:
    """Fit the growth rate of M on the exact chain from Gaussian starts, in the window where the
    linearization around the plateau holds.

    The chain (:func:`quadnet.sgd_overlaps` from :func:`quadnet.gaussian_overlaps`) is recorded
    every ``dalpha`` up to the predicted mean escape time. Each replica's rate is half the slope of
    ln ‖M‖_F² (:func:`quadnet.log_slope`) over the samples where three conditions hold: the
    norm-learning transient is over (its rate r(α) within ``settle`` of r_pl, :func:`norm_transient`),
    ‖M‖_F² has grown tenfold above its start p p* q0 / N, and ‖M‖_F² < ``upper``.

    Parameters
    ----------
    p, p_star, N : int
        Widths and input dimension.
    replicas : int
        Independent students.
    lr, eta : float
        The step, as γ or η = aγ (exactly one).
    a, b : float or None
        Readouts; default 1/p and 1/p*.
    q0 : float > 0
        Initialization scale (weights i.i.d. N(0, q0)).
    seed : int or None
        One seed for the starts and the chain (different streams).
    upper : float > 0
        Upper end of the linear window in ‖M‖_F².
    settle : float in (0, 1)
        Relative distance of r(α) from r_pl at which the transient counts as over.
    dalpha : float > 0
        Recording interval in α.

    Returns
    -------
    GrowthRate

    Raises
    ------
    ValueError
        Bad parameters, or a replica with fewer than two samples in its window (N too small for
        the linear regime to show, or ``upper`` too low).

    Examples
    --------
    >>> g = chain_growth_rate(4, 2, 10_000, 2, eta=0.125, seed=4)
    >>> g.rates.shape, bool(abs(g.mean / g.theory - 1) < 0.1)
    ((2,), True)
    """
    a, b = _readouts(p, p_star, a, b)
    lr = v.step(lr, eta, v.positive("a", a, array=False))
    upper = v.positive("upper", upper, array=False)
    settle = v.positive("settle", settle, array=False, maximum=1.0)
    dalpha = v.positive("dalpha", dalpha, array=False)
    tr = norm_transient(p, p_star, a, b, lr, q0=q0)
    t_on = tr.alpha[np.argmax(np.abs(tr.rate / tr.plateau_rate - 1) < settle)]
    al = np.arange(0, escape_time_estimate(p, p_star, a, b, lr, N, q0=q0), dalpha)
    run = sgd_overlaps(*gaussian_overlaps(p, p_star, N, replicas, q0=q0, seed=seed), N, a, b, lr, al, seed=seed)
    m2 = to_numpy(np.sum(run.M**2, axis=(-2, -1)))
    on = (al > t_on)[:, None] & (m2 > 10 * p * p_star * q0 / N) & (m2 < upper)
    if np.any(on.sum(axis=0) < 2):
        raise ValueError(
            f"some replicas have fewer than 2 samples in the linear window (N = {N}, upper = {upper:g}): "
            "N must be larger (or upper higher) for the exponential growth to show"
        )
    rates = np.array([log_slope(al[on[:, i]], m2[on[:, i], i]) / 2 for i in range(m2.shape[1])])
    mean, se = mean_and_stderr(rates)
    return GrowthRate(al, m2, rates, float(mean), float(se), tr.plateau_rate, float(t_on))


def ode_escape_times(
    Q0, M0, P, a, b, lr=None, *, eta=None, alpha_max, dalpha=0.05, noise=0.0, level=None
) -> np.ndarray:
    """Escape times of the N → ∞ ODE (:func:`quadnet.integrate_ode`) from given start overlaps.

    The ODE is recorded on the grid ``numpy.arange(0, alpha_max, dalpha)`` and the escape time is
    the first crossing of ``level`` (:func:`quadnet.escape_time`, linear interpolation). With the
    chain's own starts it keeps the initial randomness and drops the SGD noise (chapter 4).

    Parameters
    ----------
    Q0, M0, P : arrays (R, p, p), (R, p, p*), (p*, p*) or (R, p*, p*)
        Start overlaps of R replicas.
    a, b, lr, eta, noise
        Readouts, step (γ or η = aγ, exactly one) and label noise.
    alpha_max : float > 0
        End of the recorded grid; replicas that have not escaped by then get NaN.
    dalpha : float > 0
        Grid spacing.
    level : float or None
        Escape level; default :func:`escape_level` of this setting.

    Returns
    -------
    ndarray (R,)

    Examples
    --------
    >>> Q0, M0, P = gaussian_overlaps(4, 2, 1000, 3, seed=0)
    >>> t = ode_escape_times(Q0, M0, P, 0.25, 0.5, eta=0.125, alpha_max=60.0)
    >>> t.shape, bool(np.isfinite(t).all())
    ((3,), True)
    """
    a = v.positive("a", a, array=False)
    lr = v.step(lr, eta, a)
    alpha_max = v.positive("alpha_max", alpha_max, array=False)
    dalpha = v.positive("dalpha", dalpha, array=False)
    M0 = np.asarray(M0)
    if level is None:
        level = escape_level(M0.shape[-2], M0.shape[-1], a, b, lr, noise=noise)
    al = np.arange(0, alpha_max, dalpha)
    return escape_time(al, to_numpy(integrate_ode(Q0, M0, P, a, b, lr, al, noise=noise).loss), level)
