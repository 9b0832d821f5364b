"""Measurements behind the chapter "Beyond the main line" (chapter 8, book/09_regimes.ipynb).

The predictions live in :mod:`quadnet.regimes` (fixed points, rates, lifetimes); this module
runs the ODE and the exact chain and measures what those predictions are compared with:

* :func:`stationary_scan`: the stationary state of :func:`~quadnet.stationary_loss` along a
  grid of steps (NaN where none exists).
* :func:`lifetime_run`: the exact chain at the stationary state under label noise, and the
  measured decay time of the alignment with the start (compare :func:`~quadnet.bias_lifetime`).
* :func:`staircase_escape_times`, :func:`staircase_run`, :func:`plateau_rates`: the escape
  time of each direction of an anisotropic teacher, the batched ODE from one Gaussian draw at
  several N, and the growth rate of each direction on each plateau (compare
  :func:`~quadnet.staircase`).
* :func:`paired_escapes`, :func:`escape_growth`: the chain and the ODE from the same starts,
  and how their escape times grow with ln N.
* :func:`end_frames`, :func:`row_projector`: where a staircase lands (Procrustes or
  Gram–Schmidt frame), and the subspace of teacher directions a student sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .analysis import alignment, escape_time, line_fit, log_slope
from .backend import to_numpy
from .manifold import polar
from .ode import Trajectory, integrate_ode
from .regimes import (
    AlignmentDecay,
    BiasLifetime,
    Staircase,
    alignment_decay,
    bias_lifetime,
    sequential_frame,
    staircase,
    stationary_loss,
)
from .sgd import sgd_overlaps
from .starts import gaussian_overlaps

__all__ = [
    "StationaryScan",
    "stationary_scan",
    "LifetimeRun",
    "lifetime_run",
    "staircase_escape_times",
    "StaircaseRun",
    "staircase_run",
    "plateau_rates",
    "PairedEscapes",
    "paired_escapes",
    "EscapeGrowth",
    "escape_growth",
    "EndFrames",
    "end_frames",
    "row_projector",
]


# --------------------------------------------------------------------------- stationary states


@dataclass(frozen=True)
class StationaryScan:
    """The stationary state along a grid of steps (see :func:`stationary_scan`).

    Attributes
    ----------
    eta : ndarray (K,)
        The effective steps η = aγ.
    loss, excess, q_perp : ndarray (K,)
        :attr:`~quadnet.regimes.Stationary.loss`, ``.excess`` (ε − σ²/2) and ``.q_perp`` at
        each step; NaN where no stationary state near the teacher exists.
    """

    eta: Any
    loss: Any
    excess: Any
    q_perp: Any


def stationary_scan(p, p_star, a, b, *, eta, noise=0.0):
    """:func:`~quadnet.stationary_loss` at each of a grid of steps (P = I), NaN where it has none.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    eta : array (K,) of float > 0, keyword-only
        Effective steps η = aγ.
    noise : float ≥ 0
        Label-noise standard deviation σ.

    Returns
    -------
    StationaryScan

    Raises
    ------
    ValueError
        Widths not integers ≥ 1, a or b ≤ 0, noise < 0, a step ≤ 0 or not finite.

    Examples
    --------
    >>> sc = stationary_scan(2, 2, 0.5, 0.5, eta=[0.05, 0.1, 0.3], noise=1.0)
    >>> sc.excess.round(4).tolist()          # η b p* σ² / (1 − η/η_m), η_m = 0.25; none beyond η_m
    [0.0625, 0.1667, nan]
    """
    p, p_star = v.integer("p", p), v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    etas = np.atleast_1d(np.asarray(v.positive("eta", np.asarray(eta, dtype=float)), dtype=float))
    if etas.ndim != 1:
        raise ValueError(f"eta must be a 1-d array of steps, got shape {etas.shape}")
    out = np.full((3, etas.size), np.nan)
    for i, e in enumerate(etas):
        try:
            st = stationary_loss(p, p_star, a, b, eta=float(e), noise=noise)
        except ValueError:  # the inputs are valid: no stationary state at this step
            continue
        out[:, i] = st.loss, st.excess, st.q_perp
    return StationaryScan(eta=etas, loss=out[0], excess=out[1], q_perp=out[2])


# --------------------------------------------------------------------------- lifetime of the bias


@dataclass(frozen=True)
class LifetimeRun:
    """Replicas of the exact chain under label noise and the measured lifetime of the bias.

    Attributes
    ----------
    predicted : BiasLifetime
        The prediction at this setting (τ = ∞ at σ = 0).
    alpha : ndarray (T,)
        Output times.
    lags : tuple (min_lag, max_lag)
        The lags given to :func:`~quadnet.alignment_decay`.
    fit : AlignmentDecay
        The measured decay of the lagged alignment, from α ≥ α_T/10 on.
    align : ndarray (T,)
        Alignment with the polar factor of the start, averaged over the replicas.
    diverged : int
        Replicas that diverged (dropped from ``fit`` and ``align``).
    """

    predicted: BiasLifetime
    alpha: Any
    lags: tuple
    fit: AlignmentDecay
    align: Any
    diverged: int

    @property
    def tau(self) -> float:
        """The predicted decay time τ."""
        return self.predicted.tau

    @property
    def ratio(self) -> float:
        """τ measured / τ predicted."""
        return self.fit.tau / self.predicted.tau

    @property
    def ratio_se(self) -> float:
        """Standard error of :attr:`ratio` (from the replicas' spread)."""
        return self.fit.tau_se / self.predicted.tau


def lifetime_run(
    p, p_star, a, b, lr=None, noise=0.0, *, N, replicas, start_seed, seed, eta=None, length=None, alpha=None, lags=None
):
    """Run the exact chain from Gaussian starts and measure how fast it forgets its Procrustes point.

    ``replicas`` students from :func:`~quadnet.gaussian_overlaps` (P = I) run on
    :func:`~quadnet.sgd_overlaps` for α up to ``length`` × the predicted τ (401 outputs). From
    α_T/10 on (escape and relaxation done) :func:`~quadnet.alignment_decay` measures the decay
    time of the lagged alignment, over lags from 3 relaxation times of the slowest mode off the
    orbit to 5 % of τ beyond. With ``noise = 0`` (τ = ∞, a control) give ``alpha`` and ``lags``.

    Parameters
    ----------
    p, p_star : int, p ≥ p* ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    lr : float > 0, optional
        Plain step γ (exactly one of ``lr``, ``eta``).
    noise : float ≥ 0
        Label-noise standard deviation σ.
    N : int, keyword-only
        Input dimension, ≥ p + p*.
    replicas : int ≥ 2, keyword-only
        Number of independent students.
    start_seed, seed : int, keyword-only
        Seeds of the starts and of the chain's noise.
    eta : float > 0, optional, keyword-only
        Effective step η = aγ.
    length : float > 0, optional
        Run length in units of the predicted τ (when ``alpha`` is not given).
    alpha : array (T,), optional
        Uniformly spaced output times, instead of ``length``.
    lags : (float, float), optional
        (min_lag, max_lag) for :func:`~quadnet.alignment_decay`, instead of the default.

    Returns
    -------
    LifetimeRun

    Raises
    ------
    ValueError
        As :func:`~quadnet.bias_lifetime` and :func:`~quadnet.alignment_decay`; neither or both
        of ``length`` and ``alpha``; no ``alpha`` and ``lags`` where τ or the relaxation rate is
        not finite (σ = 0).

    Examples
    --------
    >>> run = lifetime_run(2, 2, 0.5, 0.5, eta=0.1, noise=1.4, N=40, replicas=4, start_seed=1, seed=2,
    ...                    length=0.3)
    >>> run.alpha.shape, run.align.shape, bool(run.fit.tau > 0)
    ((401,), (401,), True)
    """
    pred = bias_lifetime(p, p_star, a, b, lr, noise, N=N, eta=eta)
    replicas = v.integer("replicas", replicas, minimum=2)
    if (length is None) == (alpha is None):
        raise ValueError("give exactly one of length (in units of the predicted tau) and alpha")
    if alpha is None:
        length = v.positive("length", length, array=False)
        if not math.isfinite(pred.tau):
            raise ValueError("the predicted tau is infinite here (noise = 0): give alpha and lags")
        alpha = np.linspace(0, length * pred.tau, 401)
    al = v.alphas(alpha)
    if lags is None:
        if not (math.isfinite(pred.tau) and pred.relaxation > 0):
            raise ValueError("no finite tau or relaxation rate here (noise = 0): give lags")
        lag0 = 3 / pred.relaxation  # off-orbit jitter relaxed
        lags = (lag0, lag0 + 0.05 * pred.tau)
    st = pred.stationary
    Q0, M0, P = gaussian_overlaps(p, p_star, N, replicas, seed=start_seed)
    run = sgd_overlaps(Q0, M0, P, N, st.a, st.b, st.lr, al, noise=st.noise, seed=seed)
    ok = ~to_numpy(run.diverged)
    M = to_numpy(run.M)[:, ok]
    fit = alignment_decay(al, M, start=0.1 * al[-1], min_lag=lags[0], max_lag=lags[1])
    align = alignment(M, M0[ok][None]).mean(axis=1)
    return LifetimeRun(predicted=pred, alpha=al, lags=tuple(lags), fit=fit, align=align, diverged=int((~ok).sum()))


# --------------------------------------------------------------------------- the staircase


def staircase_escape_times(alpha, loss, levels):
    """Escape time of each direction of a staircase: the first α at which the loss falls below
    the midpoint between consecutive ``levels``.

    Parameters
    ----------
    alpha : array (T,)
        Output times.
    loss : array (T, *batch)
        Losses, time first.
    levels : array (J + 1,)
        The plateau levels followed by the final loss (``np.append(sc.levels, sc.final_loss)``
        of a :class:`~quadnet.Staircase`), decreasing, ≥ 0.

    Returns
    -------
    ndarray (*batch, J)
        Escape k at [..., k]; NaN where the loss never falls below that midpoint.

    Raises
    ------
    ValueError
        Fewer than two levels, levels not finite, not decreasing or negative; as
        :func:`~quadnet.escape_time`.

    Examples
    --------
    >>> al = np.arange(4.0)
    >>> staircase_escape_times(al, np.array([1.0, 0.5, 0.1, 0.0]), [1.0, 0.2, 0.0])
    array([0.8, 2. ])
    """
    lev = np.asarray(to_numpy(levels), dtype=float)
    if lev.ndim != 1 or lev.size < 2 or not np.all(np.isfinite(lev)):
        raise ValueError(f"levels must be a finite 1-d array of at least 2 values, got {lev!r}")
    if np.any(np.diff(lev) >= 0) or lev[-1] < 0:
        raise ValueError(f"levels must be decreasing and ≥ 0, got {lev}")
    mids = 0.5 * (lev[:-1] + lev[1:])
    return np.stack([escape_time(alpha, loss, m) for m in mids], axis=-1)


def _sqrt_psd(P):
    """Symmetric square root of a positive definite P (elementwise, hence exact, when diagonal)."""
    if np.array_equal(P, np.diag(np.diagonal(P))):
        return np.sqrt(P)
    lam, V = np.linalg.eigh(P)
    return (V * np.sqrt(lam)) @ V.T


@dataclass(frozen=True)
class StaircaseRun:
    """The ODE of a staircase from one Gaussian draw at several N (see :func:`staircase_run`).

    Attributes
    ----------
    staircase : Staircase
        The prediction.
    N : ndarray (B,)
        Input dimensions (the batch axis of the runs).
    M0 : ndarray (B, p, p*)
        Starts, G/√N · √P for one standard Gaussian draw G.
    trajectory : Trajectory
        The batched ODE run (loss of shape (T, B)).
    escape_times : ndarray (B, J)
        :func:`staircase_escape_times` of each run.
    """

    staircase: Staircase
    N: Any
    M0: Any
    trajectory: Trajectory
    escape_times: Any

    @property
    def levels(self):
        """Plateau levels followed by the final loss."""
        return np.append(self.staircase.levels, self.staircase.final_loss)


def staircase_run(p, p_star, a, b, lr=None, P=None, *, N, alphas, seed, eta=None, rtol=1e-9, atol=1e-12):
    """Integrate the ODE of a staircase from Q = I and M(0) = G/√N · √P, G one Gaussian draw, at
    each N in one batched call, and measure the escape time of every direction.

    Parameters
    ----------
    p, p_star, a, b, lr, P, eta
        As in :func:`~quadnet.staircase` (σ = 0).
    N : array (B,) of float ≥ 1, keyword-only
        Input dimensions.
    alphas : array (T,), keyword-only
        Output times.
    seed : int, keyword-only
        Seed of ``numpy.random.default_rng`` drawing G of shape (p, p*).
    rtol, atol : float
        Tolerances of :func:`~quadnet.integrate_ode` (M(0) ~ N^{-1/2} needs a small ``atol``).

    Returns
    -------
    StaircaseRun

    Raises
    ------
    ValueError
        As :func:`~quadnet.staircase` and :func:`~quadnet.integrate_ode`; N not ≥ 1.

    Examples
    --------
    >>> run = staircase_run(3, 2, 1 / 3, 0.5, eta=0.05, P=np.diag([1.5, 0.5]), N=[1e4], alphas=np.linspace(0, 400, 401),
    ...                     seed=0)
    >>> run.escape_times.shape, bool(run.escape_times[0, 0] < run.escape_times[0, 1])
    ((1, 2), True)
    """
    sc = staircase(p, p_star, a, b, lr, P, eta=eta)
    P = np.eye(p_star) if P is None else np.asarray(to_numpy(P), dtype=float)
    N = np.atleast_1d(np.asarray(v.positive("N", np.asarray(N, dtype=float)), dtype=float))
    if N.ndim != 1 or np.any(N < 1):
        raise ValueError(f"N must be a 1-d array of input dimensions ≥ 1, got {N}")
    G = np.random.default_rng(seed).standard_normal((p, p_star))
    M0 = G / np.sqrt(N)[:, None, None] @ _sqrt_psd(P)
    g = v.step(lr, eta, a)
    tr = integrate_ode(np.eye(p), M0, P, a, b, g, alphas, rtol=rtol, atol=atol)
    esc = staircase_escape_times(tr.alpha, tr.loss, np.append(sc.levels, sc.final_loss))
    return StaircaseRun(staircase=sc, N=N, M0=M0, trajectory=tr, escape_times=esc)


def plateau_rates(alpha, loss, M, levels, *, window=0.01):
    """Growth rate of each teacher direction on each plateau, fitted on one run.

    On plateau j (where |loss/levels[j] − 1| < ``window``) the rate of direction k ≥ j is the
    slope of ln‖M e_k‖ over the second half of the plateau (:func:`~quadnet.log_slope`); the
    columns of M must be in the eigenbasis of P (P diagonal, largest eigenvalue first).

    Parameters
    ----------
    alpha : array (T,)
        Output times.
    loss : array (T,)
        Loss of one run.
    M : array (T, p, p*)
        Student–teacher overlaps of that run.
    levels : array (J,)
        Plateau levels (:attr:`~quadnet.Staircase.levels`), J ≤ p*.
    window : float in (0, 1)
        Relative width of the band that defines a plateau.

    Returns
    -------
    ndarray (J, p*)
        rates[j, k], NaN for k < j (directions already learned).

    Raises
    ------
    ValueError
        Shapes that do not match, more levels than directions, ``window`` outside (0, 1), a
        plateau with fewer than 2 points in the second half of its band.

    Examples
    --------
    >>> al = np.linspace(0, 10, 101)
    >>> M = np.stack([np.exp(0.3 * al), np.exp(0.1 * al)], axis=-1)[:, None, :]      # (T, 1, 2)
    >>> plateau_rates(al, np.ones(101), M, [1.0]).round(6).tolist()
    [[0.3, 0.1]]
    """
    al = np.asarray(to_numpy(alpha), dtype=float)
    L = np.asarray(to_numpy(loss), dtype=float)
    M = np.asarray(to_numpy(M), dtype=float)
    lev = np.asarray(to_numpy(levels), dtype=float)
    if al.ndim != 1 or L.shape != al.shape or M.ndim != 3 or M.shape[0] != al.size:
        raise ValueError(f"alpha (T,), loss (T,) and M (T, p, p*) must match, got {al.shape}, {L.shape}, {M.shape}")
    ps = M.shape[-1]
    if lev.ndim != 1 or not 1 <= lev.size <= ps or np.any(lev <= 0):
        raise ValueError(f"levels must be 1 to p* = {ps} positive plateau losses, got {lev}")
    if not 0 < window < 1:
        raise ValueError(f"window must lie in (0, 1), got {window}")
    cols = np.linalg.norm(M, axis=-2)  # (T, p*)
    rates = np.full((lev.size, ps), np.nan)
    for j in range(lev.size):
        on = np.flatnonzero(np.abs(L / lev[j] - 1) < window)
        late = on[on >= (on[0] + on[-1]) // 2] if on.size else on  # second half of the plateau
        if late.size < 2:
            raise ValueError(f"plateau {j} (loss {lev[j]:.4g}) holds fewer than 2 points of its second half")
        for k in range(j, ps):
            rates[j, k] = log_slope(al[late], cols[late, k])
    return rates


@dataclass(frozen=True)
class PairedEscapes:
    """The chain and the ODE from the same starts (see :func:`paired_escapes`).

    Attributes
    ----------
    alpha : ndarray (T,)
        Output times.
    loss : ndarray (T, R)
        The chain's loss per replica.
    chain, ode : ndarray (R, J)
        Escape times of each direction, per replica, on the chain and on the ODE.
    """

    alpha: Any
    loss: Any
    chain: Any
    ode: Any


def paired_escapes(Q0, M0, P, N, a, b, lr=None, alphas=None, *, levels, seed, eta=None):
    """Run the exact chain and the ODE from the same starts and measure each one's escape times.

    Parameters
    ----------
    Q0, M0, P : arrays (R, p, p), (R, p, p*), (p*, p*)
        Starts of R replicas and the teacher overlap.
    N : int
        Input dimension of the chain.
    a, b, lr, eta
        Readouts and step (exactly one of ``lr``, ``eta``).
    alphas : array (T,)
        Output times.
    levels : array (J + 1,), keyword-only
        As in :func:`staircase_escape_times`.
    seed : int, keyword-only
        Seed of the chain's noise.

    Returns
    -------
    PairedEscapes

    Raises
    ------
    ValueError
        As :func:`~quadnet.sgd_overlaps`, :func:`~quadnet.integrate_ode` and
        :func:`staircase_escape_times`.

    Examples
    --------
    >>> from quadnet.starts import gaussian_overlaps
    >>> Q0, M0, P = gaussian_overlaps(2, 1, 200, 3, seed=0)
    >>> pe = paired_escapes(Q0, M0, P, 200, 0.5, 1.0, eta=0.1, alphas=np.arange(0, 60, 0.5), levels=[1.0, 0.0],
    ...                     seed=1)
    >>> pe.chain.shape, pe.ode.shape
    ((3, 1), (3, 1))
    """
    g = v.step(lr, eta, v.positive("a", a, array=False))
    run = sgd_overlaps(Q0, M0, P, N, a, b, g, alphas, seed=seed)
    loss = to_numpy(run.loss)
    al = v.alphas(alphas)
    same = integrate_ode(Q0, M0, P, a, b, g, al).loss
    return PairedEscapes(
        alpha=al,
        loss=loss,
        chain=staircase_escape_times(al, loss, levels),
        ode=staircase_escape_times(al, same, levels),
    )


@dataclass(frozen=True)
class EscapeGrowth:
    """How the escape times of the chain, and the chain minus the ODE, grow with ln N.

    Attributes
    ----------
    chain_mean, chain_se : ndarray (n, J)
        Mean escape time of each direction over the replicas, and its standard error, per N.
    chain_fit : tuple of LineFit (J,)
        Line of the mean against ln N, weighted by the standard errors.
    ode_slope : ndarray (J,)
        Slope against ln N of the ODE's mean escape time from the same starts.
    diff, diff_se : ndarray (n, J)
        Mean and standard error of the paired difference chain − ODE.
    diff_fit : tuple of LineFit (J,)
        Line of that difference against ln N (slope 0 if the chain's noise only shifts the
        escape times).
    """

    chain_mean: Any
    chain_se: Any
    chain_fit: tuple
    ode_slope: Any
    diff: Any
    diff_se: Any
    diff_fit: tuple


def escape_growth(N, chain, ode):
    """Fit the growth with ln N of the chain's escape times and of their difference from the ODE.

    Parameters
    ----------
    N : sequence (n,) of int, n ≥ 2
        Input dimensions.
    chain, ode : sequences (n,) of arrays (R, J)
        Escape times per replica and direction at each N (:attr:`PairedEscapes.chain`, ``.ode``),
        the replicas paired. NaN (never escaped) is left out of the means.

    Returns
    -------
    EscapeGrowth

    Raises
    ------
    ValueError
        Fewer than 2 values of N, lengths or shapes that do not match.

    Examples
    --------
    >>> N = [10, 100]
    >>> ode = [np.log(n) * np.ones((3, 1)) for n in N]
    >>> chain = [t + [[0.0], [0.5], [1.0]] for t in ode]         # the chain shifted by 0.5 on average
    >>> g = escape_growth(N, chain, ode)
    >>> round(g.chain_fit[0].slope, 6), round(float(g.ode_slope[0]), 6), round(g.diff_fit[0].slope, 6)
    (1.0, 1.0, 0.0)
    """
    N = list(N)
    if len(N) < 2 or len(chain) != len(N) or len(ode) != len(N):
        raise ValueError(f"N, chain and ode must have the same length ≥ 2, got {len(N)}, {len(chain)}, {len(ode)}")
    chain = [np.asarray(c, dtype=float) for c in chain]
    ode = [np.asarray(o, dtype=float) for o in ode]
    if any(c.ndim != 2 or c.shape != o.shape or c.shape[1:] != chain[0].shape[1:] for c, o in zip(chain, ode)):
        raise ValueError("chain and ode must hold arrays (R, J) of matching shapes at each N")
    J = chain[0].shape[1]
    logN = np.log(N)
    diff = np.array([np.nanmean(c - o, axis=0) for c, o in zip(chain, ode)])
    diff_se = np.array([np.nanstd(c - o, axis=0, ddof=1) / np.sqrt(c.shape[0]) for c, o in zip(chain, ode)])
    mean = np.array([np.nanmean(c, axis=0) for c in chain])
    se = np.array([np.nanstd(c, axis=0, ddof=1) / np.sqrt(c.shape[0]) for c in chain])
    ones = np.ones(len(N))
    return EscapeGrowth(
        chain_mean=mean,
        chain_se=se,
        chain_fit=tuple(line_fit(logN, mean[:, k], sigma=se[:, k]) for k in range(J)),
        ode_slope=np.array(
            [line_fit(logN, np.nanmean([o[:, k] for o in ode], axis=1), sigma=ones).slope for k in range(J)]
        ),
        diff=diff,
        diff_se=diff_se,
        diff_fit=tuple(line_fit(logN, diff[:, k], sigma=diff_se[:, k]) for k in range(J)),
    )


# --------------------------------------------------------------------------- where students land


@dataclass(frozen=True)
class EndFrames:
    """End frames of ODE runs against the Procrustes and the Gram–Schmidt frame of their starts.

    Attributes
    ----------
    procrustes, sequential : ndarray (R,)
        1 − alignment of the end frame polar(M(∞) P⁻¹) with polar(M(0)) and with
        :func:`~quadnet.sequential_frame` of M(0).
    loss : ndarray (R,)
        Loss at the end.
    """

    procrustes: Any
    sequential: Any
    loss: Any


def end_frames(Q0, M0, P, a, b, lr=None, *, alpha, eta=None):
    """Integrate the ODE to ``alpha`` and compare the end frame with the two candidate frames.

    Parameters
    ----------
    Q0, M0 : arrays (R, p, p), (R, p, p*), p ≥ p*
        Starts.
    P : array (p*, p*)
        Teacher overlap, symmetric positive definite.
    a, b, lr, eta
        Readouts and step (exactly one of ``lr``, ``eta``).
    alpha : float > 0, keyword-only
        End time (long enough to reach the zero-loss set).

    Returns
    -------
    EndFrames

    Raises
    ------
    ValueError
        As :func:`~quadnet.integrate_ode` and :func:`~quadnet.sequential_frame`; ``alpha`` ≤ 0.

    Examples
    --------
    >>> M0 = np.array([[[1.0, 0.5], [0.2, 1.0], [0.1, 0.3]]]) * 0.1
    >>> ef = end_frames(np.eye(3)[None], M0, np.diag([1.5, 0.5]), 1 / 3, 0.5, eta=0.1, alpha=400.0)
    >>> bool(ef.sequential[0] < 1e-3 < ef.procrustes[0]), bool(ef.loss[0] < 1e-4)
    (True, True)
    """
    alpha = v.positive("alpha", alpha, array=False)
    end = integrate_ode(Q0, M0, P, a, b, lr, np.array([0.0, alpha]), eta=eta)
    O_end = polar(end.M[-1] @ np.linalg.inv(P))
    return EndFrames(
        procrustes=1 - alignment(O_end, M0),
        sequential=1 - alignment(O_end, sequential_frame(M0, P)),
        loss=end.loss[-1],
    )


def row_projector(M, rank=None):
    """Projector onto the row space of M (the span of its top ``rank`` right singular vectors):
    the subspace of teacher directions a student sees.

    Parameters
    ----------
    M : array (..., p, p*)
        Student–teacher overlaps.
    rank : int, optional
        Number of singular vectors, 1 ≤ rank ≤ min(p, p*) (default min(p, p*)).

    Returns
    -------
    ndarray (..., p*, p*)
        Symmetric projectors of trace ``rank``.

    Raises
    ------
    ValueError
        M with fewer than 2 axes or not finite; ``rank`` outside [1, min(p, p*)].

    Examples
    --------
    >>> row_projector(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])).round(12).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    M = v.finite_array("M", to_numpy(M), np, min_ndim=2)
    k = min(M.shape[-2:]) if rank is None else v.integer("rank", rank, maximum=min(M.shape[-2:]))
    _, _, Vt = np.linalg.svd(M)
    return np.einsum("...ki,...kj->...ij", Vt[..., :k, :], Vt[..., :k, :])
