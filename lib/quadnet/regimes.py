"""Off the main line: label noise, anisotropic teachers, narrow students (chapter 8, book/09_regimes.ipynb).

Three fixed-point computations on the overlap ODEs (see :mod:`quadnet.ode`), each reduced by the
symmetry of its state to a few scalar equations. Write g = η = aγ and work with the rescaled
eigenvalues u = a q (of Q on a learned direction), w = a μ (μ = squared singular value of M) and
v = a s (of Q on an unused student unit); the readout a then drops out.

* :func:`stationary_loss` (P = I). Where the dynamics settles: with n = min(p, p*) learned
  directions, M = m O and Q = q O Oᵀ + s (I − O Oᵀ). The M equation fixes the trace mismatch,
  tr D = 2(u − b), and the Q equation, written with δ = u − w (= a·Q⊥ on the learned block), is
  *linear* in δ:  δ = g u (2ε' + σ²) / (2b (1 − 2g(n+2)u)), ε' the loss at δ = 0. For p ≤ p*
  that is the whole answer (closed form); for p > p* the unused units carry s > 0 under label
  noise and one scalar equation in s is solved by bracketing.
* :func:`escape_rates` (any positive definite P). The plateau and the intermediate plateaus of
  the staircase, and the growth rate of M along each eigen-direction of P there.
* :func:`bias_lifetime` (P = I, p ≥ p*, σ > 0). The decay time of the alignment with the
  Procrustes point at finite N: the diffusion of the polar factor of M along the symmetry orbit,
  driven by the per-step noise of the overlaps at the stationary point.

The chapter "Beyond the main line" of the book derives every formula used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .backend import to_numpy

__all__ = [
    "Stationary",
    "stationary_loss",
    "EscapeRates",
    "escape_rates",
    "Staircase",
    "staircase",
    "sequential_frame",
    "BiasLifetime",
    "bias_lifetime",
    "AlignmentDecay",
    "alignment_decay",
]


# --------------------------------------------------------------------------- shared checks


def _widths(p, p_star):
    return v.integer("p", p), v.integer("p_star", p_star)


def _setting(p, p_star, a, b, lr, eta, noise):
    p, p_star = _widths(p, p_star)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.step(lr, eta, a)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    return p, p_star, a, b, lr, noise


# --------------------------------------------------------------------------- the stationary state


@dataclass(frozen=True)
class Stationary:
    """The stationary state of the full ODE at P = I (label noise included).

    Attributes
    ----------
    p, p_star, a, b, lr, eta, noise
        The setting (γ = ``lr``, η = aγ = ``eta``, σ = ``noise``).
    q : float
        Eigenvalue of Q on the n = min(p, p*) learned directions.
    m : float
        Singular value of M (its n non-zero singular values are equal).
    s : float
        Eigenvalue of Q on the p − p* unused student units (0 when p ≤ p* or σ = 0).
    q_perp : float
        Q⊥ = q − m² on a learned direction, the part of the student the teacher cannot see
        (computed directly, not as a difference).
    trace_D : float
        Trace mismatch tr D = b p* − a tr Q.
    loss : float
        Population loss ε_g there, σ²/2 included.
    Q, M : ndarray (p, p), (p, p*)
        A representative of the state (NumPy): M = m E, Q = q E Eᵀ + s (I − E Eᵀ), E the first n
        unit vectors. Every rotation (U Q Uᵀ, U M V), U ∈ O(p), V ∈ O(p*), is stationary as well.
    """

    p: int
    p_star: int
    a: float
    b: float
    lr: float
    eta: float
    noise: float
    q: float
    m: float
    s: float
    q_perp: float
    trace_D: float
    loss: float
    Q: Any
    M: Any

    @property
    def excess(self) -> float:
        """ε_g − σ²/2: what the network itself gets wrong."""
        return self.loss - 0.5 * self.noise**2


def _state(p, p_star, b, g, s2, v_):
    """(u, δ, tr D, ε₀) of the stationary ansatz at a given rescaled unused eigenvalue v (scalars)."""
    n, k = min(p, p_star), max(p - p_star, 0)
    u = (b * (p_star + 2) - k * v_) / (n + 2)  # the M equation: tr D + 2b − 2u = 0
    trD = 2 * (b * (p_star - n) - k * v_) / (n + 2)  # = 2(u − b), without the cancellation
    eps_free = 0.5 * trD**2 + b * b * p_star - 2 * b * n * u + n * u * u + k * v_ * v_  # ε₀ at δ = 0
    denom = 2 * b * (1 - 2 * g * (n + 2) * u)
    delta = g * u * (2 * eps_free + s2) / denom if denom > 0 else math.inf
    return u, delta, trD, eps_free + 2 * b * n * delta


def _unused_residual(v_, p, p_star, b, g, s2):
    """The Q equation on an unused unit divided by 4aγ s: zero at the stationary v = a s."""
    _, delta, trD, eps0 = _state(p, p_star, b, g, s2, v_)
    if not math.isfinite(delta):
        return -math.inf
    return trD - 2 * v_ + g * (2 * eps0 + s2 - 4 * trD * v_ + 8 * v_ * v_)


def _solve_unused(p, p_star, b, g, s2):
    """The smallest positive root v of :func:`_unused_residual` (p > p*, σ > 0)."""
    from scipy.optimize import brentq

    # leading order in g: v ≈ g (σ² + 2ε₀)(p* + 2) / (2 (p + 2)); bracket outwards from a tenth of it
    lo = 0.0
    hi = max(g * s2 * (p_star + 2) / (2 * (p + 2)), 1e-300) / 10
    while _unused_residual(hi, p, p_star, b, g, s2) > 0:
        lo, hi = hi, 2 * hi
        if hi > b * (p_star + 2) / (p - p_star):  # u would turn negative: no stationary state
            return None
    if _unused_residual(hi, p, p_star, b, g, s2) == 0:
        return hi
    return brentq(
        _unused_residual, lo, hi, args=(p, p_star, b, g, s2), xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500
    )


def stationary_loss(p, p_star, a, b, lr=None, noise=0.0, *, eta=None):
    """The state at which the full overlap ODE settles at P = I, solved as a fixed point.

    With label noise σ > 0 the loss stays above σ²/2: the SGD-noise term of the Q equation
    re-injects a part Q⊥ of the student that the teacher does not see. With n = min(p, p*),
    ρ = 2bη(p* + 2) and ε_d = b²(p* − p)(p* + 2)/(p + 2) for p < p* (0 otherwise), for p ≤ p*

        ε = ε_d + σ²/2 + η b n (p* + 2)(2ε_d + σ²) / ((n + 2)(1 − ρ))          (exact),

    i.e. ε − σ²/2 = η b p* σ²/(1 − ρ) at p = p*. For p > p* the unused units fill up to
    s = O(ησ²) and one scalar equation is solved numerically (to 1e-15); to first order in η
    the excess is η b p* σ² again. For a narrow student (p < p*) the unlearned part of the
    teacher acts on the learned part like label noise of variance 2ε_d. At σ = 0 and p ≥ p* the
    state is the zero-loss manifold.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    lr : float > 0, optional
        Plain SGD step γ (give exactly one of ``lr`` and ``eta``).
    noise : float ≥ 0
        Label-noise standard deviation σ.
    eta : float > 0, optional, keyword-only
        Effective step η = aγ.

    Returns
    -------
    Stationary
        With the loss, q, m, s, tr D and a representative (Q, M).

    Raises
    ------
    ValueError
        Invalid parameters (naming them), or no stationary state near the teacher: η at or above
        η_m = 1/(2b(p* + 2)), where the manifold stops attracting, or noise so strong for the step
        that the stationary m² = q − Q⊥ would be ≤ 0 (for p = p*: ησ² ≥ 2b(1 − η/η_m)).
    TypeError
        Both or neither of ``lr`` and ``eta``; non-numbers.

    Examples
    --------
    >>> st = stationary_loss(3, 3, 1 / 3, 1 / 3, eta=0.05, noise=0.5)
    >>> round(st.excess / (0.05 * 0.5**2), 4)          # η b p* σ² / (1 − ρ) / (η σ²) = 1/(1 − ρ), ρ = 1/6
    1.2
    """
    p, p_star, a, b, lr, noise = _setting(p, p_star, a, b, lr, eta, noise)
    g, s2 = a * lr, noise * noise
    eta_m = 1.0 / (2 * b * (p_star + 2))
    if g >= eta_m:
        raise ValueError(
            f"the step η = aγ = {g:.6g} must be below η_m = 1/(2b(p*+2)) = {eta_m:.6g}: above it the ODE has no "
            f"stationary state near the teacher (lr must be < {eta_m / a:.6g})"
        )
    v_ = 0.0
    if p > p_star and s2 > 0:
        v_ = _solve_unused(p, p_star, b, g, s2)
        if v_ is None:
            raise ValueError(
                f"no stationary state with positive overlaps at σ = {noise:g}, η = {g:g}: reduce noise or the step"
            )
    u, delta, trD, eps0 = _state(p, p_star, b, g, s2, v_)
    w = u - delta
    if not (w > 0):
        why = "label noise" if p >= p_star else "label noise plus the unlearnable part of the teacher"
        raise ValueError(
            f"no stationary state near the teacher at η = {g:g}, σ = {noise:g}: the {why} would make the "
            f"stationary M vanish (m² = {w / a:.3g} ≤ 0); reduce noise or the step"
        )
    n = min(p, p_star)
    q, m, s = u / a, math.sqrt(w / a), v_ / a
    Q = np.diag([q] * n + [s] * (p - n))
    M = np.zeros((p, p_star))
    M[range(n), range(n)] = m
    return Stationary(
        p=p,
        p_star=p_star,
        a=a,
        b=b,
        lr=lr,
        eta=g,
        noise=noise,
        q=q,
        m=m,
        s=s,
        q_perp=delta / a,
        trace_D=trD,
        loss=eps0 + 0.5 * s2,
        Q=Q,
        M=M,
    )


# --------------------------------------------------------------------------- anisotropic teacher


@dataclass(frozen=True)
class EscapeRates:
    """Growth rates of M along the eigen-directions of P at a plateau of the staircase.

    Attributes
    ----------
    rates : ndarray (p*,)
        dM/dα = r_k M along teacher eigen-direction k, per unit α, in the order of
        ``eigenvalues``; NaN for the ``learned`` directions already learned.
    eigenvalues : ndarray (p*,)
        Eigenvalues λ_k of P, largest first (the order in which the directions are learned).
    directions : ndarray (p*, p*)
        The matching unit eigenvectors of P, as columns: M @ directions gives M per direction.
    learned : int
        How many directions (the first ones) are learned at this plateau.
    q : float
        Eigenvalue of Q on the student units not yet used (the plateau's q when learned = 0).
    loss : float
        Population loss at this plateau (σ²/2 included).
    Q, M : ndarray (p, p), (p, p*)
        A representative of the plateau (NumPy): learned unit i carries teacher direction i, the
        other units are at q; any rotation U Q Uᵀ, U M (U ∈ O(p)) is one as well.
    """

    rates: Any
    eigenvalues: Any
    directions: Any
    learned: int
    q: float
    loss: float
    Q: Any
    M: Any


def _teacher_overlap(P, p_star):
    """Check P (p*, p*): finite, symmetric, positive definite. Returns (P, eigenvalues desc, vectors)."""
    if P is None:
        P = np.eye(p_star)
    P = v.finite_array("P", P, np, min_ndim=2)
    if P.shape != (p_star, p_star):
        raise ValueError(f"P must have shape (p*, p*) = ({p_star}, {p_star}), got {P.shape}")
    if not np.allclose(P, P.T, rtol=1e-10, atol=1e-12 * max(np.abs(P).max(), 1e-300)):
        raise ValueError("P must be symmetric (the teacher overlap W* W*ᵀ/N)")
    lam, vec = np.linalg.eigh(0.5 * (P + P.T))
    if lam[0] <= 0:
        raise ValueError(
            f"P must be positive definite (teacher rows linearly independent), got smallest eigenvalue {lam[0]:.4g}"
        )
    return P, lam[::-1].copy(), vec[:, ::-1].copy()


def _plateau_u(p, B, K, g):
    """Rescaled plateau u = a q with M = 0: the small root of g(p+2)(p+4)u² − (p+2)(1+2gB)u + B + gK,
    B = b tr P, K = B² + 2b² tr P² + σ² (None above the critical step)."""
    if g == 0:
        return B / (p + 2)
    lin = (p + 2) * (1 + 2 * g * B)
    disc = lin * lin - 4 * g * (p + 2) * (p + 4) * (B + g * K)
    if disc < 0:
        return None
    return 2 * (B + g * K) / (lin + math.sqrt(disc))


def _staircase_residual(y, lam, j, p, b, g, s2):
    """Fixed-point equations of the plateau with the top j directions of P learned, each by one
    student unit, the p − j other units at u' = a q'. Unknowns y = (u', w_1..w_j) (just w when
    j = p: no unit left). Returns (residuals, tr D, ε₀): the Q equation on an unused unit divided
    by 4aγq', then on each learned unit, the M equation being solved for u_i exactly."""
    free = p - j
    up, w = (y[0], y[1:]) if free else (0.0, y)
    # M equation on learned unit i: tr D + 2bλ_i − 2u_i = 0 with tr D = b trP − Σu_i − (p − j)u'
    trD = (b * lam.sum() - b * lam[:j].sum() - free * up) / (1 + j / 2)
    ui = (trD + 2 * b * lam[:j]) / 2
    eps0 = 0.5 * trD**2 + b * b * (lam**2).sum() - 2 * b * w.sum() + (ui**2).sum() + free * up * up
    G = b * w - ui**2
    r_le = (
        trD * ui + 2 * G + g * ((2 * eps0 + s2) * ui + 4 * trD * G + 8 * (b * b * lam[:j] * w - 2 * b * w * ui + ui**3))
    )
    if not free:
        return r_le, trD, eps0
    r_un = trD - 2 * up + g * (2 * eps0 + s2 - 4 * up * trD + 8 * up * up)
    return np.concatenate([[r_un], r_le]), trD, eps0


def _staircase(lam, j, p, b, g, s2):
    """(u', u_i, w_i, tr D, ε₀) of the plateau where the top j eigen-directions of P are learned (None if it
    does not exist). j = 0 is the plateau (closed form), j = min(p, p*) with p < p* the final
    state of a narrow student."""
    from scipy.optimize import root

    if j == 0:
        trP, trP2 = lam.sum(), (lam**2).sum()
        up = _plateau_u(p, b * trP, (b * trP) ** 2 + 2 * b * b * trP2 + s2, g)
        if up is None:
            return None
        trD = b * trP - p * up
        return up, np.zeros(0), np.zeros(0), trD, 0.5 * trD**2 + b * b * trP2 + p * up * up
    # start from the drift solution: tr D = 2b(trP − Σ_{i≤j} λ_i)/(p + 2), u' = tr D/2, w_i = λ_i u_i
    trD0 = 2 * b * (lam.sum() - lam[:j].sum()) / (p + 2)
    w0 = lam[:j] * (trD0 + 2 * b * lam[:j]) / 2
    y0 = np.concatenate([[trD0 / 2], w0]) if p > j else w0
    y = root(lambda y: _staircase_residual(y, lam, j, p, b, g, s2)[0], y0, method="hybr", tol=1e-14).x
    res, trD, eps0 = _staircase_residual(y, lam, j, p, b, g, s2)
    # judged by the residual (the solver's own flag complains when tol is tighter than rounding)
    if np.abs(res).max() > 1e-11 * max(1.0, b * lam.sum()) ** 3 or np.any(y <= 0):
        return None
    w = y[1:] if p > j else y
    return (y[0] if p > j else 0.0), (trD + 2 * b * lam[:j]) / 2, w, trD, eps0


def escape_rates(p, p_star, a, b, lr=None, P=None, noise=0.0, *, eta=None, learned=0):
    """Growth rate of M along each eigen-direction of the teacher overlap P, at a plateau.

    On the plateau M = 0, Q = q I (the fixed point of the full ODE, which depends on P only
    through tr P and tr P², and on σ²). Linearizing dM/dα = 2aγ[tr D M + 2(b M P − a Q M)] in
    P's eigenbasis, column k of M grows at r_k = 2aγ [tr D + 2bλ_k − 2aq]; at the drift plateau
    tr D = 2aq and r_k = 4abγλ_k. The largest eigenvalue escapes first; with ``learned = j`` the
    rates of the remaining directions are those at the intermediate plateau where the top j
    directions have been learned (each by one student unit; q is then Q on the unused units):
    the staircase of a teacher with distinct eigenvalues. Rates ≤ 0 mean the direction is not
    learned from that plateau.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    lr : float > 0, optional
        Plain SGD step γ (give exactly one of ``lr`` and ``eta``).
    P : array (p*, p*), symmetric positive definite, optional
        Teacher overlap W* W*ᵀ/N; the identity when omitted.
    noise : float ≥ 0
        Label-noise standard deviation σ.
    eta : float > 0, optional, keyword-only
        Effective step η = aγ.
    learned : int, keyword-only
        Directions already learned, 0 ≤ learned < min(p, p*).

    Returns
    -------
    EscapeRates
        ``rates`` (p*,) in the order of ``eigenvalues`` (descending), NaN for learned ones.

    Raises
    ------
    ValueError
        P not of shape (p*, p*), not symmetric or not positive definite; ``learned`` out of
        range; a step above the critical one, where the plateau does not exist.

    Examples
    --------
    >>> er = escape_rates(4, 2, 0.25, 0.5, eta=0.05, P=[[1.5, 0.0], [0.0, 0.5]])
    >>> er.eigenvalues.tolist(), [round(float(r), 4) for r in er.rates]
    ([1.5, 0.5], [0.1418, 0.0418])
    """
    p, p_star, a, b, lr, noise = _setting(p, p_star, a, b, lr, eta, noise)
    P, lam, vec = _teacher_overlap(P, p_star)
    j = v.integer("learned", learned, minimum=0, maximum=min(p, p_star) - 1)
    g = a * lr
    sol = _staircase(lam, j, p, b, g, noise * noise)
    if sol is None:
        raise ValueError(
            f"no plateau with {j} learned direction(s) at η = aγ = {g:.6g} for p = {p}, p* = {p_star}, "
            f"eigenvalues of P {np.round(lam, 6).tolist()}: the step is above the critical one; reduce lr/eta"
        )
    up, ui, w, trD, eps0 = sol
    rates = 2 * g * (trD + 2 * b * lam - 2 * up)
    rates[:j] = np.nan
    Q = np.diag(np.concatenate([ui, np.full(p - j, up)]) / a)
    M_eig = np.zeros((p, p_star))
    M_eig[range(j), range(j)] = np.sqrt(w / a)
    return EscapeRates(
        rates=rates,
        eigenvalues=lam,
        directions=vec,
        learned=j,
        q=up / a,
        loss=eps0 + 0.5 * noise * noise,
        Q=Q,
        M=M_eig @ vec.T,
    )


@dataclass(frozen=True)
class Staircase:
    """The sequence of plateaus of a teacher with distinct eigenvalues (see :func:`staircase`).

    Attributes
    ----------
    eigenvalues : ndarray (p*,)
        Eigenvalues of P, largest first.
    levels : ndarray (J,)
        Loss on the plateau with 0, 1, ..., J − 1 directions learned, J = min(p, p*).
    final_loss : float
        Loss once J directions are learned: 0 for p ≥ p* at σ = 0; the narrow student's end
        state for p < p*; :func:`stationary_loss` for p ≥ p*, σ > 0, P = I; NaN otherwise.
    rates : ndarray (J, p*)
        rates[j, k]: growth rate of direction k on plateau j (NaN once learned).
    log_slopes : ndarray (J,)
        dα_k/d ln N, k = 1..J: how the time of the k-th escape grows with N, to leading order
        (the column of M along direction k must grow from O(N^{-1/2}) to O(1), at rate
        rates[j, k] while plateau j lasts).
    """

    eigenvalues: Any
    levels: Any
    final_loss: float
    rates: Any
    log_slopes: Any


def _log_slopes(R):
    """A_k with ½ = Σ_{j<k} R[j, k−1] (A_{j+1} − A_j), A_0 = 0: the leading ln N coefficient of the
    escape times when direction k−1 grows at rate R[j, k−1] on plateau j."""
    J = R.shape[0]
    A = np.zeros(J + 1)
    for k in range(1, J + 1):
        done = sum(R[j, k - 1] * (A[j + 1] - A[j]) for j in range(k - 1))
        A[k] = A[k - 1] + (0.5 - done) / R[k - 1, k - 1] if R[k - 1, k - 1] > 0 else np.nan
        if not A[k] >= A[k - 1]:  # escapes out of order, or never: the picture does not apply
            A[k] = np.nan
    return A[1:]


def staircase(p, p_star, a, b, lr=None, P=None, noise=0.0, *, eta=None):
    """Plateau levels, per-direction rates and ln N slopes of the escape times of a staircase.

    With P of distinct eigenvalues λ_1 > λ_2 > ... the student learns one teacher direction at a
    time, largest first: plateau j (j directions learned) is left when direction j + 1 has grown
    from its O(N^{-1/2}) seed to O(1). Each plateau is a fixed point of the full ODE
    (:func:`escape_rates` with ``learned = j``); at the drift level the rate of direction k is
    4abγλ_k on every plateau, with the γ² term it is lower on the early, lossier plateaus.

    Parameters
    ----------
    p, p_star, a, b, lr, P, noise, eta
        As in :func:`escape_rates`.

    Returns
    -------
    Staircase

    Raises
    ------
    ValueError
        As :func:`escape_rates`, or when an intermediate plateau does not exist at this step.

    Examples
    --------
    >>> sc = staircase(3, 2, 1 / 3, 1 / 2, eta=0.05, P=[[1.5, 0.0], [0.0, 0.5]])
    >>> [round(float(x), 4) for x in sc.levels], round(sc.final_loss, 4)
    ([0.8272, 0.0829], 0.0)
    """
    p, p_star, a, b, lr, noise = _setting(p, p_star, a, b, lr, eta, noise)
    P, lam, _ = _teacher_overlap(P, p_star)
    J = min(p, p_star)
    er = [escape_rates(p, p_star, a, b, lr, P, noise, learned=j) for j in range(J)]
    R = np.stack([e.rates for e in er])
    if p < p_star:
        sol = _staircase(lam, p, p, b, a * lr, noise * noise)
        final = sol[-1] + 0.5 * noise**2 if sol is not None else np.nan
    elif noise == 0:
        final = 0.0
    elif np.allclose(P, np.eye(p_star), rtol=0, atol=1e-12):
        final = stationary_loss(p, p_star, a, b, lr, noise).loss
    else:
        final = np.nan
    return Staircase(
        eigenvalues=lam,
        levels=np.array([e.loss for e in er]),
        final_loss=float(final),
        rates=R,
        log_slopes=_log_slopes(R),
    )


def sequential_frame(M0, P):
    """The frame O (p, p*) on which a staircase lands: Gram–Schmidt of the columns of M(0) taken
    along the eigen-directions of P, largest eigenvalue first.

    On the zero-loss set M = √(b/a) O P with OᵀO = I. With P = I the ODE keeps the polar factor
    and O = polar(M(0)), the Procrustes frame (chapter 6). With distinct eigenvalues the
    directions are learned one at a time: column k of M(0)V (V the eigenvectors) grows at its own
    rate, and while the units of the earlier directions are learned it grows only in their
    orthogonal complement. As the plateaus get long (N → ∞) O V tends to the Q factor of
    M(0)V = (OV) R with R upper triangular, diag R > 0, so O = Q Vᵀ. Compare with
    ``polar(M(∞) @ inv(P))``.

    Parameters
    ----------
    M0 : array (..., p, p*), p ≥ p*
        Initial student–teacher overlap (full column rank).
    P : array (p*, p*)
        Teacher overlap, symmetric positive definite.

    Returns
    -------
    ndarray (..., p, p*)
        Orthonormal columns (NumPy).

    Examples
    --------
    >>> O = sequential_frame(np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]), np.diag([2.0, 1.0]))
    >>> O.round(3).tolist()
    [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    M0 = v.finite_array("M0", to_numpy(M0), np, min_ndim=2)
    p, p_star = M0.shape[-2:]
    if p < p_star:
        raise ValueError(f"M0 must have shape (..., p, p*) with p ≥ p*, got {M0.shape}")
    _, _, V = _teacher_overlap(to_numpy(P), p_star)
    Qf, Rf = np.linalg.qr(M0 @ V)
    d = np.diagonal(Rf, axis1=-2, axis2=-1)
    if np.any(np.abs(d) <= 1e-12 * np.abs(M0).max(axis=(-2, -1))[..., None]):
        raise ValueError("M0 must have full column rank p* along the eigen-directions of P")
    return (Qf * np.sign(d)[..., None, :]) @ V.T


# --------------------------------------------------------------------------- lifetime of the bias


@dataclass(frozen=True)
class BiasLifetime:
    """How long finite-N SGD with label noise remembers the closest solution (P = I, p ≥ p*).

    At the stationary state the label noise keeps the updates alive, and the polar factor O of M
    performs a Brownian motion on the orbit of the rotations W → UW: its mean decays as
    E[O(α + Δ)] = e^{−Δ/τ} O(α), so the alignment with the Procrustes point of the start falls like
    e^{−α/τ} once the student is on the manifold.

    Attributes
    ----------
    tau : float
        Decay time of the mean alignment, in units of α; ∞ for σ = 0 or p = p* = 1.
    kappa_rotation : float
        Diffusion coefficient (variance per unit α) of each angle of a rotation among the learned
        units (the p*(p* − 1)/2 antisymmetric generators within the teacher block).
    kappa_unused : float
        The same for each angle turning a learned unit into an unused one ((p − p*)p* generators).
    N : int
        Input dimension; τ ∝ N and the κ ∝ 1/N at this order (corrections O(1)).
    relaxation : float
        Slowest relaxation rate (per unit α) of the linearized ODE off the orbit: lags ≫
        1/relaxation see only the diffusion along the orbit (NaN where σ = 0; from finite
        differences, resolved down to ~1e-9, 0 below that).
    stationary : Stationary
        The state at which the noise was evaluated.
    """

    tau: float
    kappa_rotation: float
    kappa_unused: float
    N: int
    relaxation: float
    stationary: Stationary


#: Gauss–Hermite order per variable: the integrands below are polynomials of degree ≤ 12 in each
#: standard normal, integrated exactly by 7 nodes (exact up to degree 13)
_GH_ORDER = 7


def _gauss_hermite(dim):
    """Nodes (K, dim) and weights (K,) integrating polynomials of degree ≤ 13 per variable exactly
    against the standard normal law in ``dim`` dimensions."""
    x, w = np.polynomial.hermite_e.hermegauss(_GH_ORDER)
    w = w / w.sum()
    grids = np.meshgrid(*[x] * dim, indexing="ij")
    wts = np.meshgrid(*[w] * dim, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1), np.prod([g.ravel() for g in wts], axis=0)


def _rest_moments(st, teacher_units, unused_units):
    """E[Z^j], j = 0..4, of Z = σξ + the part of the error e₀ = b|ν|² − a|λ|² from
    ``teacher_units`` learned units and ``unused_units`` unused ones (independent of the rest).
    From cumulants of quadratic forms in standard normals: κ_n = 2^{n−1}(n−1)! tr Aⁿ."""
    a, b, m, x, s = st.a, st.b, st.m, st.q_perp, st.s
    # per learned unit t: bν² − a(mν + √x z)², a quadratic form in (ν, z)
    A = np.array([[b - a * m * m, -a * m * math.sqrt(x)], [-a * m * math.sqrt(x), -a * x]])
    ev = np.concatenate([np.tile(np.linalg.eigvalsh(A), teacher_units), np.full(unused_units, -a * s)])
    kap = [0.0] + [2 ** (n - 1) * math.factorial(n - 1) * float(np.sum(ev**n)) for n in range(1, 5)]
    kap[2] += st.noise**2
    k1, k2, k3, k4 = kap[1:]
    return [1.0, k1, k2 + k1**2, k3 + 3 * k2 * k1 + k1**3, k4 + 4 * k3 * k1 + 3 * k2**2 + 6 * k2 * k1**2 + k1**4]


def _error_powers(e_exp, mom, kmax):
    """E[(e_exp + Z)^k | explicit variables] for k = 0..kmax, Z independent with moments ``mom``."""
    return [sum(math.comb(k, i) * e_exp ** (k - i) * mom[i] for i in range(k + 1)) for k in range(kmax + 1)]


def _kappa_rotation(st):
    """N × variance per unit α of a rotation angle among two learned units: the antisymmetric part
    of M is conserved by the linearized ODE, so the angle moves by (ΔM_12 − ΔM_21)/(2m) per step,
    with ΔM = (2aγ e/N) λνᵀ: κ = a²γ² E[e² (λ_1ν_2 − λ_2ν_1)²] / m² (over N)."""
    a, b, m, x = st.a, st.b, st.m, st.q_perp
    nodes, wts = _gauss_hermite(4)
    nu1, nu2, z1, z2 = nodes.T
    lam1, lam2 = m * nu1 + math.sqrt(x) * z1, m * nu2 + math.sqrt(x) * z2
    e_exp = b * (nu1**2 + nu2**2) - a * (lam1**2 + lam2**2)
    mom = _rest_moments(st, st.p_star - 2, st.p - st.p_star)
    e2 = _error_powers(e_exp, mom, 2)[2]
    T = lam1 * nu2 - lam2 * nu1
    return (a * st.lr) ** 2 * float(np.sum(wts * e2 * T**2)) / m**2


def _unused_left_vector(st):
    """Left null vector (ℓ_X, ℓ_Y) of the linearized ODE in the sector (X, Y) = (Q_ut, M_ut), u an
    unused unit and t a learned one, normalized on the orbit direction (q − s, m)."""
    a, b, g, m, q, s, trD = st.a, st.b, st.eta, st.m, st.q, st.s, st.trace_D
    eps2 = 2 * (st.loss - 0.5 * st.noise**2) + st.noise**2
    J_XX = 4 * g * (trD - 2 * a * (s + q)) + 4 * g * g * (
        eps2 - 4 * a * (s + q) * trD + 8 * (-a * b * m * m + a * a * (q * q + s * q + s * s))
    )
    J_XY = 8 * b * g * m + 4 * g * g * (4 * b * m * trD + 8 * (b * b * m - a * b * m * (q + s)))
    J_YX = -4 * a * g * m
    J_YY = 4 * a * g * (q - s)
    if abs(J_XX * J_YY - J_XY * J_YX) > 1e-9 * (abs(J_XX * J_YY) + abs(J_XY * J_YX)):
        raise RuntimeError("the orbit direction is not a zero mode here (internal error)")
    ell = np.array([-J_YX, J_XX])
    return ell / (ell[0] * (q - s) + ell[1] * m)


def _kappa_unused(st):
    """N × variance per unit α of an angle turning learned unit t into unused unit u: the
    combination ℓ_X Q_ut + ℓ_Y M_ut is conserved by the linearized ODE; per step it moves by
    (λ_u/N)[ℓ_X (4aγ e + 4a²γ² e²) λ_t + 2aγ ℓ_Y e ν_t] (|x|²/N → 1)."""
    a, b, m, x, s, g = st.a, st.b, st.m, st.q_perp, st.s, st.eta
    lX, lY = _unused_left_vector(st)
    nodes, wts = _gauss_hermite(3)
    nu, z, zu = nodes.T
    lam, lam_u = m * nu + math.sqrt(x) * z, math.sqrt(s) * zu
    e_exp = b * nu**2 - a * lam**2 - a * lam_u**2
    mom = _rest_moments(st, st.p_star - 1, st.p - st.p_star - 1)
    _, _, e2, e3, e4 = _error_powers(e_exp, mom, 4)
    A1 = 4 * g * lX * lam + 2 * g * lY * nu
    A2 = 4 * g * g * lX * lam
    return float(np.sum(wts * lam_u**2 * (A1**2 * e2 + 2 * A1 * A2 * e3 + A2**2 * e4)))


def _relaxation(st):
    """Slowest non-zero decay rate of the ODE linearized at the stationary state: central
    differences of :func:`quadnet.ode_rhs` in the coordinates (Q_ij, i ≤ j; M), discarding the
    zero modes of the orbit."""
    from .ode import ode_rhs

    p, ps = st.M.shape
    iu = np.triu_indices(p)
    nq = len(iu[0])

    def f(y):
        Q = np.zeros((p, p))
        Q[iu] = y[:nq]
        Q = Q + np.triu(Q, 1).T
        dQ, dM = ode_rhs(Q, y[nq:].reshape(p, ps), np.eye(ps), st.a, st.b, st.lr, noise=st.noise)
        return np.concatenate([dQ[iu], dM.ravel()])

    y0 = np.concatenate([st.Q[iu], st.M.ravel()])
    h = 1e-7 * max(1.0, np.abs(y0).max())
    J = np.stack([(f(y0 + h * e) - f(y0 - h * e)) / (2 * h) for e in np.eye(y0.size)], axis=1)
    ev = np.linalg.eigvals(J)
    # the first stiefel_dimension(p, p*) eigenvalues by modulus are the zero modes of the orbit
    dim = p * ps - ps * (ps + 1) // 2
    return max(float(-ev[np.argsort(np.abs(ev))][dim].real), 0.0)


def bias_lifetime(p, p_star, a, b, lr=None, noise=0.0, *, N, eta=None):
    """Decay time τ of the alignment with the closest solution at finite N under label noise (P = I).

    On the manifold of solutions the linearized ODE has zero modes along the orbit of the
    rotations W → UW: nothing pulls the student back along it. At finite N the per-step noise
    of the overlaps (alive because y − ŷ = σξ + O(ησ²) never vanishes) has a component along
    these zero modes, so the polar factor O of M diffuses: each rotation angle within the
    learned block with variance κ_A per unit α, each angle into an unused unit with κ_C. Then
    E[O(α + Δ)] = e^{−Δ/τ} O(α) with

        1/τ = [(p* − 1) κ_A + (p − p*) κ_C] / 2,

    the Itô term of a Brownian motion on the Stiefel manifold. κ_A and κ_C are the variances of
    the conserved projections of one step at the stationary state of :func:`stationary_loss`,
    times N (exact Gaussian moments, |x|²/N → 1); for p = p* this is
    κ_A = 2a²γ² x (σ² + 4(p* + 2) a b x)/(m² N) with x = Q⊥ and, in closed form,
    τ = N (1 − ρ)[2b(1 − ρ) − ησ²] / ((p* − 1) η³ σ⁴), ρ = 2bη(p* + 2). Leading order in 1/N.

    Parameters
    ----------
    p, p_star : int, p ≥ p* ≥ 1
        Student and teacher widths.
    a, b : float > 0
        Readouts.
    lr : float > 0, optional
        Plain SGD step γ (exactly one of ``lr``, ``eta``).
    noise : float ≥ 0
        Label-noise standard deviation σ (τ = ∞ at σ = 0: the bias is kept).
    N : int ≥ 1, keyword-only
        Input dimension.
    eta : float > 0, optional, keyword-only
        Effective step η = aγ.

    Returns
    -------
    BiasLifetime
        τ (units of α) and the two diffusion coefficients.

    Raises
    ------
    ValueError
        p < p* (no manifold), or no stationary state (see :func:`stationary_loss`).

    Examples
    --------
    >>> bl = bias_lifetime(2, 2, 0.5, 0.5, eta=0.1, noise=1.0, N=100)
    >>> round(bl.tau)                         # N (1 − ρ)[2b(1 − ρ) − ησ²] / η³ with ρ = 0.4
    30000
    """
    p, p_star = _widths(p, p_star)
    if p < p_star:
        raise ValueError(f"p must be ≥ p_star for a manifold of solutions to diffuse on, got p = {p}, p* = {p_star}")
    N = v.integer("N", N)
    st = stationary_loss(p, p_star, a, b, lr, noise, eta=eta)
    kA = _kappa_rotation(st) / N if p_star >= 2 and st.noise > 0 else 0.0
    kC = _kappa_unused(st) / N if p > p_star and st.noise > 0 else 0.0
    rate = float(0.5 * ((p_star - 1) * kA + (p - p_star) * kC))
    relax = _relaxation(st) if st.noise > 0 else math.nan
    tau = 1.0 / rate if rate > 1e-300 else math.inf  # below that 1/rate would overflow
    return BiasLifetime(tau=tau, kappa_rotation=kA, kappa_unused=kC, N=N, relaxation=relax, stationary=st)


@dataclass(frozen=True)
class AlignmentDecay:
    """Decay of the alignment between the polar factors of M a lag apart, along stationary runs.

    Attributes
    ----------
    tau : float
        Estimated decay time τ̂ (units of α): E[alignment(M(α + Δ), M(α))] ∝ e^{−Δ/τ}.
    tau_se : float
        Its standard error, from the spread of the replicas' rates (replicas are independent).
    rates : ndarray (R,)
        Each replica's rate: slope of −ln(its mean lagged alignment) against the lag.
    lags : ndarray (K,)
        The lags Δ used.
    mean_alignment : ndarray (K,)
        Lagged alignment averaged over replicas and windows.
    """

    tau: float
    tau_se: float
    rates: Any
    lags: Any
    mean_alignment: Any


def alignment_decay(alpha, M, *, start, max_lag, min_lag=0.0):
    """Measure the decay time of the alignment with past polar factors, the finite-N signature of
    the diffusion along the orbit (compare with :func:`bias_lifetime`).

    For replica r and lag Δ_k = k·dα, a_rk is the mean over output times α_t ≥ ``start`` of
    ``alignment(M(α_t + Δ_k), M(α_t))``; the replica's rate is the least-squares slope of
    −ln a_rk against Δ_k (the intercept absorbs the off-orbit jitter of the polar factor, which
    relaxes fast), and τ̂ = 1 / mean rate. Every window of every replica contributes, so this is
    far more precise than the alignment with the start at the same cost.

    Parameters
    ----------
    alpha : array (T,)
        Output times, uniformly spaced.
    M : array (T, R, p, p*), p ≥ p*
        Student–teacher overlaps of R replicas (finite: drop diverged replicas first).
    start : float
        First time of the stationary stretch (after the escape and the relaxation to the
        stationary state).
    max_lag : float
        Largest lag; a small fraction of τ keeps −ln a small and linear, and many independent
        windows per replica keep the error bar small.
    min_lag : float
        Smallest lag (default: one grid step). Lags shorter than the relaxation time off the
        orbit (:attr:`BiasLifetime.relaxation`) bend the line; at least two lags must remain.

    Returns
    -------
    AlignmentDecay

    Raises
    ------
    ValueError
        Shapes, non-uniform ``alpha``, fewer than two lags or two replicas, or a stretch too short.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> theta = np.cumsum(rng.normal(0, 0.01, (2001, 8)), axis=0)          # κ = 1e-4 per unit α
    >>> M = np.stack([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]).transpose(2, 3, 0, 1)
    >>> fit = alignment_decay(np.arange(2001.0), M, start=0.0, max_lag=50.0)
    >>> round(float(fit.tau) / 2e4, 1)                                     # τ = 2/κ
    1.0
    """
    try:
        al = v.alphas(alpha)
    except (TypeError, ValueError) as exc:  # name this function's parameter, alpha
        raise type(exc)(str(exc).replace("alphas", "alpha")) from None
    v.positive("start", start, allow_zero=True, array=False)
    M = v.finite_array("M", to_numpy(M), np, min_ndim=4)
    if M.ndim != 4 or M.shape[0] != al.size:
        raise ValueError(f"M must have shape (T, R, p, p*) with T = len(alpha) = {al.size}, got {M.shape}")
    if M.shape[1] < 2:
        raise ValueError(f"M needs at least 2 replicas (axis 1) for an error bar, got {M.shape[1]}")
    d = np.diff(al)
    if al.size < 3 or not np.allclose(d, d[0], rtol=1e-9, atol=0):
        raise ValueError("alpha must be uniformly spaced (at least 3 points)")
    v.positive("max_lag", max_lag, array=False)
    v.positive("min_lag", min_lag, allow_zero=True, array=False)
    t0 = int(np.searchsorted(al, float(start) - 1e-9 * d[0]))
    K = int(np.floor(max_lag / d[0] + 1e-9))
    k0 = max(1, int(np.ceil(min_lag / d[0] - 1e-9)))
    if K - k0 < 1:
        raise ValueError(
            f"[min_lag, max_lag] = [{min_lag:g}, {max_lag:g}] must hold at least two lags of the "
            f"output step dα = {d[0]:g}"
        )
    if al.size - t0 <= 2 * K:
        raise ValueError(f"the stretch after start = {start} must be longer than twice max_lag = {max_lag}")
    from .manifold import polar

    O = polar(M[t0:])
    lagged = np.stack(
        [np.einsum("trij,trij->r", O[k:], O[:-k]) / ((O.shape[0] - k) * O.shape[-1]) for k in range(k0, K + 1)], axis=1
    )  # (R, lags)
    if np.any(lagged <= 0):
        raise ValueError("the lagged alignment reaches 0 within max_lag: choose a shorter max_lag")
    lags = d[0] * np.arange(k0, K + 1)
    y = -np.log(lagged)
    rates = ((lags - lags.mean()) @ (y - y.mean(axis=1, keepdims=True)).T) / np.sum((lags - lags.mean()) ** 2)
    mean, se = rates.mean(), rates.std(ddof=1) / math.sqrt(rates.size)
    tau = 1.0 / mean if mean > 0 else math.inf
    return AlignmentDecay(
        tau=tau,
        tau_se=se / mean**2 if mean > 0 else math.inf,
        rates=rates,
        lags=lags,
        mean_alignment=lagged.mean(axis=0),
    )
