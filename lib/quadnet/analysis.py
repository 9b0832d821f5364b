"""Measurements on trajectories and their statistics: escape times, alignment with the Procrustes
point, fits with standard errors, mean ± s.e. over replicas, tests of uniformity on the sphere."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module, to_numpy
from .manifold import RankDeficientWarning, polar
from .model import make_rng
from .ode import integrate_ode
from .sgd import sgd_overlaps
from .theory import CriticalStepWarning

__all__ = [
    "escape_time",
    "alignment",
    "power_law_fit",
    "log_slope",
    "mean_and_stderr",
    "LineFit",
    "line_fit",
    "mean_chord",
    "SphereUniformity",
    "sphere_uniformity",
    "chain_ode_gap",
    "run_outcome",
    "ode_outcomes",
]


def _real(name: str, x: Any) -> np.ndarray:
    """``x`` as a float64 NumPy array (NaN allowed), or TypeError naming ``name``."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(to_numpy(x))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(float)


def _xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 1-d arrays of the same length ≥ 2, x not all equal (for the fits)."""
    x, y = _real("x", x), _real("y", y)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x must be a 1-d array of at least 2 points, got shape {x.shape}")
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {x.shape}, got {y.shape}")
    for name, arr in (("x", x), ("y", y)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must contain only finite values")
    if np.all(x == x[0]):
        raise ValueError("x must take at least 2 distinct values to fit a slope")
    return x, y


def escape_time(alpha: Any, loss: Any, level: float) -> np.ndarray:
    """First α at which ``loss`` falls below ``level`` (linear interpolation between samples).

    Parameters
    ----------
    alpha : array (T,)
        Sample times, finite and non-decreasing.
    loss : array (T, *batch)
        Loss at those times, time axis first; NaN (after a divergence) counts as not below.
    level : float > 0
        The threshold; a natural one is half the plateau loss (chapter "The plateau").

    Returns
    -------
    numpy.ndarray of the batch shape: the first crossing time, NaN where the loss never gets
    below ``level`` (or the run diverged first).

    Raises
    ------
    TypeError, ValueError
        Non-numeric input, ``alpha`` not 1-d, not finite or decreasing, ``loss`` whose first axis
        does not match ``alpha``, ``level`` ≤ 0.

    Examples
    --------
    >>> import numpy as np
    >>> alpha = np.linspace(0, 10, 11)
    >>> loss = np.stack([1 - 0.1 * alpha, np.ones(11)], axis=1)      # crosses 0.45 at 5.5; never
    >>> escape_time(alpha, loss, 0.45)
    array([5.5, nan])
    """
    al = _real("alpha", alpha)
    L = _real("loss", loss)
    if al.ndim != 1 or al.size < 1:
        raise ValueError(f"alpha must be a non-empty 1-d array of times, got shape {al.shape}")
    if not np.all(np.isfinite(al)) or np.any(np.diff(al) < 0):
        raise ValueError("alpha must be finite and non-decreasing")
    if L.shape[:1] != al.shape:
        raise ValueError(f"loss must have the time axis first, matching alpha {al.shape}; got {L.shape}")
    v.positive("level", level, array=False)
    below = np.nan_to_num(L, nan=np.inf) < level
    hit = below.any(axis=0)
    i = np.argmax(below, axis=0)
    i0 = np.clip(i - 1, 0, None)
    a0, a1 = al[i0], al[i]
    l0 = np.take_along_axis(L, i0[None], 0)[0]
    l1 = np.take_along_axis(L, i[None], 0)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(l0 != l1, (l0 - level) / (l0 - l1), 0.0)
    t = np.where(i > 0, a0 + np.clip(frac, 0, 1) * (a1 - a0), a1)
    return np.where(hit, t, np.nan)


def _full_rank(S: Any, shape: tuple) -> Any:
    """True where singular values S (..., k) have k values above NumPy's ``matrix_rank`` threshold."""
    eps = float(np.finfo(np.float64).eps)
    return S[..., -1] > S[..., 0] * max(shape[-2:]) * eps


def alignment(M: Any, M0: Any) -> np.ndarray:
    """Cosine between the polar factors of M and M0: A = tr(polar(M)ᵀ polar(M0)) / p*.

    A = 1 means M points at the Procrustes point of M0 (the solution closest to the initialization,
    chapter "Implicit bias"), −1 at its opposite; A lies in [−1, 1]. It depends on M only through
    its polar factor U Vᵀ (M = U Σ Vᵀ), so changing the singular values Σ leaves it unchanged,
    and A(O M R, O M0 R) = A(M, M0) for orthogonal O (p × p) and R (p* × p*).

    Parameters
    ----------
    M, M0 : arrays (..., p, p*)
        Student–teacher overlaps with p ≥ p* ≥ 1, the same matrix shape and broadcastable batch
        shapes; finite. NumPy or CuPy.

    Returns
    -------
    numpy.ndarray of the broadcast batch shape (a 0-d array for single matrices). Where M or M0
    is rank-deficient (rank < p* in the sense of ``numpy.linalg.matrix_rank``, e.g. M = 0) the
    polar factor is not unique: A is NaN there and a :class:`~quadnet.RankDeficientWarning` (a
    ``RuntimeWarning``) says how many; the
    other elements are unaffected. (The polar factor is never computed for those elements, so
    this does not depend on what :func:`quadnet.polar` does with rank-deficient input.)

    Raises
    ------
    TypeError
        M or M0 not an array of real numbers.
    ValueError
        Non-finite entries, fewer than 2 axes, p < p*, mismatched matrix shapes or batch shapes
        that do not broadcast; the message names the argument.

    Examples
    --------
    >>> import numpy as np
    >>> M0 = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    >>> float(alignment(M0 @ np.diag([3.0, 0.5]), M0))      # same polar factor
    1.0
    >>> float(alignment(-M0, M0))
    -1.0
    """
    xp = array_module(M, M0)
    M = v.finite_array("M", M, xp, min_ndim=2)
    M0 = v.finite_array("M0", M0, xp, min_ndim=2)
    if M.shape[-2] < M.shape[-1] or M.shape[-1] < 1:
        raise ValueError(f"M must have shape (..., p, p*) with p ≥ p* ≥ 1, got {M.shape}")
    if M0.shape[-2:] != M.shape[-2:]:
        raise ValueError(f"M0 must have the matrix shape of M {M.shape[-2:]}, got {M0.shape[-2:]}")
    try:
        batch = np.broadcast_shapes(M.shape[:-2], M0.shape[:-2])
    except ValueError:
        raise ValueError(f"batch shapes of M {M.shape[:-2]} and M0 {M0.shape[:-2]} do not broadcast") from None
    shape = batch + M.shape[-2:]
    M, M0 = xp.broadcast_to(M, shape), xp.broadcast_to(M0, shape)
    ok = _full_rank(xp.linalg.svd(M, compute_uv=False), shape)
    ok &= _full_rank(xp.linalg.svd(M0, compute_uv=False), shape)
    n_bad = int(ok.size - int(xp.sum(ok)))
    if n_bad:
        warnings.warn(
            f"alignment: {n_bad} of {ok.size} elements have a rank-deficient M or M0 "
            "(polar factor not unique); their alignment is NaN",
            RankDeficientWarning,
            stacklevel=2,
        )
        # a stand-in of full rank, so that polar never sees a rank-deficient matrix
        stand_in = xp.eye(shape[-2], shape[-1])
        M = xp.where(ok[..., None, None], M, stand_in)
        M0 = xp.where(ok[..., None, None], M0, stand_in)
    A = xp.einsum("...ij,...ij->...", polar(M), polar(M0)) / shape[-1]
    return np.asarray(to_numpy(xp.where(ok, A, xp.nan)))


def power_law_fit(x: Any, y: Any) -> tuple[float, float]:
    """Unweighted least-squares fit of log y = log C + k log x.

    For slopes with standard errors use :func:`line_fit` on the logarithms.

    Parameters
    ----------
    x, y : arrays (n,)
        n ≥ 2, finite and > 0, x not all equal (else ``ValueError``).

    Returns
    -------
    (k, C) : floats, the exponent and the prefactor.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 4.0])
    >>> k, C = power_law_fit(x, 3 * x**-2)
    >>> round(k, 12), round(C, 12)
    (-2.0, 3.0)
    """
    x, y = _xy(x, y)
    for name, arr in (("x", x), ("y", y)):
        if np.any(arr <= 0):
            raise ValueError(f"power_law_fit needs {name} > 0")
    k, logc = np.polyfit(np.log(x), np.log(y), 1)
    return float(k), float(np.exp(logc))


def log_slope(x: Any, y: Any) -> float:
    """Slope of log y against x (an exponential rate), unweighted least squares.

    Parameters
    ----------
    x, y : arrays (n,)
        n ≥ 2, finite, y > 0, x not all equal (else ``ValueError``).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> round(log_slope(x, 5 * np.exp(0.7 * x)), 12)
    0.7
    """
    x, y = _xy(x, y)
    if np.any(y <= 0):
        raise ValueError("log_slope needs y > 0")
    return float(np.polyfit(x, np.log(y), 1)[0])


def mean_and_stderr(samples: Any, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean over ``axis``, ignoring NaNs (e.g. diverged replicas).

    Parameters
    ----------
    samples : array
        At least one axis; NumPy or CuPy.
    axis : int
        The axis of the replicas.

    Returns
    -------
    (mean, stderr) : NumPy arrays of the remaining shape; stderr = s/√n with the sample standard
    deviation s (ddof = 1) and n the number of finite samples. The mean is NaN where no finite
    sample is left, the standard error where fewer than two are (NumPy then warns with a
    ``RuntimeWarning``).

    Examples
    --------
    >>> import numpy as np
    >>> m, s = mean_and_stderr(np.array([1.0, 2.0, 3.0, np.nan]))
    >>> float(m), round(float(s), 6)
    (2.0, 0.57735)
    """
    s = _real("samples", samples)
    if s.ndim < 1:
        raise ValueError("samples must have at least one axis")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if not -s.ndim <= axis < s.ndim:
        raise ValueError(f"axis must be in [{-s.ndim}, {s.ndim - 1}] for samples of shape {s.shape}, got {axis}")
    n = np.sum(np.isfinite(s), axis=axis)
    return np.nanmean(s, axis=axis), np.nanstd(s, axis=axis, ddof=1) / np.sqrt(np.maximum(n, 1))


@dataclass(frozen=True)
class LineFit:
    """A straight-line fit y ≈ intercept + slope·x with standard errors.

    ``chi2`` is Σ((y − fit)/σ)² over ``dof`` = n − 2 degrees of freedom when σ was given (the
    errors then come from σ alone), else the residual sum of squares (errors from the scatter).
    """

    slope: float
    slope_se: float
    intercept: float
    intercept_se: float
    chi2: float
    dof: int

    def __call__(self, x: Any) -> Any:
        """The fitted line at ``x``."""
        return self.intercept + self.slope * np.asarray(x, dtype=float)

    def z(self, slope: float) -> float:
        """How many standard errors the fitted slope lies from ``slope``."""
        return abs(self.slope - slope) / self.slope_se


def line_fit(x: Any, y: Any, sigma: Any = None) -> LineFit:
    """Least-squares line through (x, y), weighted by 1/σ² when ``sigma`` is given.

    Parameters
    ----------
    x, y : array (n,)
        Finite, n ≥ 3 (≥ 2 with ``sigma``), x not all equal.
    sigma : array (n,) or None
        Standard errors of y (> 0). With ``sigma`` the parameter errors are the propagated ones
        (not rescaled by the fit quality: compare ``chi2`` with ``dof`` for that); without, they
        are estimated from the residual scatter.

    Returns
    -------
    LineFit

    Examples
    --------
    >>> fit = line_fit([0, 1, 2, 3], [1.0, 3.1, 4.9, 7.0], sigma=[0.1] * 4)
    >>> round(fit.slope, 2), round(fit.slope_se, 3)
    (1.98, 0.045)
    """
    x, y = _xy(x, y)
    n = x.size
    if sigma is None:
        if n < 3:
            raise ValueError("line_fit needs at least 3 points without sigma (2 with sigma)")
        w = np.ones(n)
    else:
        s = _real("sigma", sigma)
        if s.shape != x.shape or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"sigma must be finite, > 0 and of the shape of x {x.shape}")
        w = s**-2.0
    S, Sx, Sy = w.sum(), (w * x).sum(), (w * y).sum()
    xm = Sx / S
    Sxx = (w * (x - xm) ** 2).sum()
    slope = float((w * (x - xm) * y).sum() / Sxx)
    intercept = float((Sy - slope * Sx) / S)
    res = y - intercept - slope * x
    chi2 = float((w * res**2).sum())
    dof = n - 2
    scale = 1.0 if sigma is not None else (chi2 / dof if dof > 0 else np.nan)
    slope_se = float(np.sqrt(scale / Sxx))
    intercept_se = float(np.sqrt(scale * (1.0 / S + xm**2 / Sxx)))
    return LineFit(slope, slope_se, intercept, intercept_se, chi2, dof)


def mean_chord(d: int) -> float:
    """Mean distance E|X − Y| between two independent uniform points on the unit sphere S^{d−1}.

    2^{d−1} Γ(d/2)² / (√π Γ(d − 1/2)): 4/π on the circle (d = 2), 4/3 on S² (d = 3), → √2 as
    d → ∞. For any fixed x on the sphere, E|x − Y| takes the same value.

    Examples
    --------
    >>> round(mean_chord(3), 12)
    1.333333333333
    """
    d = v.integer("d", d, minimum=2)
    return float(np.exp((d - 1) * np.log(2) + 2 * math.lgamma(d / 2) - 0.5 * np.log(np.pi) - math.lgamma(d - 0.5)))


def _directions(name: str, X: Any) -> np.ndarray:
    X = _real(name, X)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n, d) with n ≥ 2 points in d ≥ 2 dimensions, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must contain only finite values")
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{name} has a zero row: a direction needs a non-zero vector")
    return X / norms[:, None]


def _sphere_statistics(X: np.ndarray) -> np.ndarray:
    """(Rayleigh, Bingham, energy) statistics of unit vectors X (..., n, d), shape (..., 3)."""
    n, d = X.shape[-2:]
    rayleigh = d * n * np.sum(X.mean(axis=-2) ** 2, axis=-1)
    G = np.einsum("...id,...jd->...ij", X, X)  # x_i · x_j
    scatter2 = np.einsum("...ij,...ij->...", G, G) / n**2  # tr T², T = Σ x xᵀ / n
    bingham = n * d * (d + 2) / 2 * (scatter2 - 1 / d)
    G *= -2  # in place: |x_i − x_j| = √(2 − 2 x_i·x_j)
    G += 2
    np.maximum(G, 0, out=G)
    np.sqrt(G, out=G)
    chords = G.sum(axis=(-2, -1)) - np.trace(G, axis1=-2, axis2=-1)  # |x_i − x_i| = 0 exactly
    energy = n * (mean_chord(d) - chords / n**2)
    return np.stack([rayleigh, bingham, energy], axis=-1)


@dataclass(frozen=True)
class SphereUniformity:
    """Three tests of uniformity on the unit sphere; see :func:`sphere_uniformity`.

    Attributes ``rayleigh``, ``bingham``, ``energy`` are the statistics, ``p_rayleigh``,
    ``p_bingham``, ``p_energy`` their Monte Carlo p-values (each in [1/(draws+1), 1]); ``n``
    points in ``d`` dimensions, ``draws`` null samples.
    """

    n: int
    d: int
    draws: int
    rayleigh: float
    bingham: float
    energy: float
    p_rayleigh: float
    p_bingham: float
    p_energy: float


def sphere_uniformity(X: Any, *, draws: int = 999, seed: Any = None) -> SphereUniformity:
    """Test whether the directions of the rows of X are uniform on the sphere S^{d−1}.

    Three statistics of the unit vectors x_i, large when uniformity fails:

    * Rayleigh, d n |x̄|²: a preferred direction (non-zero mean); ≈ χ²_d under uniformity.
    * Bingham, n d(d+2)/2 (tr T² − 1/d) with T = Σ x_i x_iᵀ / n: an axial preference (poles,
      a girdle) that a zero-mean test cannot see; ≈ χ²_{(d−1)(d+2)/2}.
    * Energy, n [E|X − Y| − Σ_{ij} |x_i − x_j| / n²] (:func:`mean_chord`): n times the energy
      distance between the sample and the uniform law; zero only for the uniform law, so it is
      consistent against every alternative.

    The p-values are not asymptotic: each is (1 + #{null ≥ observed}) / (draws + 1) over
    ``draws`` samples of n uniform points, exactly valid at every n (a test at level ℓ
    rejects a uniform sample with probability ≤ ℓ, for ℓ ≥ 1/(draws + 1)).

    Parameters
    ----------
    X : array (n, d)
        Non-zero vectors, n ≥ 2, d ≥ 2; only their directions enter (rows are normalized).
    draws : int ≥ 1
        Null samples; the smallest attainable p-value is 1/(draws + 1). The cost is
        O(draws · n² d).
    seed : int, SeedSequence, Generator or None
        Randomness of the null samples (the ``"montecarlo"`` stream of an int seed).

    Returns
    -------
    SphereUniformity

    Raises
    ------
    ValueError
        X not of shape (n, d) with n, d ≥ 2, non-finite entries or a zero row.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((50, 3))        # uniform directions
    >>> res = sphere_uniformity(X, draws=199, seed=1)
    >>> min(res.p_rayleigh, res.p_bingham, res.p_energy) > 0.005
    True
    >>> poles = X * np.array([0.1, 0.1, 1.0])                        # zero mean, but not uniform
    >>> res = sphere_uniformity(poles, draws=199, seed=1)
    >>> res.p_bingham, res.p_energy
    (0.005, 0.005)
    """
    X = _directions("X", X)
    draws = v.integer("draws", draws)
    n, d = X.shape
    observed = _sphere_statistics(X)
    rng = make_rng(seed, "numpy", role="montecarlo")
    exceed = np.zeros(3, dtype=np.int64)
    chunk = max(1, min(draws, 2**22 // (n * n)))
    done = 0
    while done < draws:
        k = min(chunk, draws - done)
        Y = rng.standard_normal((k, n, d))
        Y /= np.linalg.norm(Y, axis=-1, keepdims=True)
        exceed += np.sum(_sphere_statistics(Y) >= observed, axis=0)
        done += k
    p = (1 + exceed) / (draws + 1)
    return SphereUniformity(n, d, draws, *(float(s) for s in observed), *(float(q) for q in p))


def chain_ode_gap(
    Q0: Any,
    M0: Any,
    P: Any,
    N: int,
    a: float,
    b: float,
    lr: Any = None,
    alphas: Any = None,
    *,
    eta: Any = None,
    seed: Any = None,
) -> tuple[float, float]:
    """RMS distance between the exact chain's loss and the ODE's, each replica from its own start (chapter 2).

    Runs the finite-N chain (:func:`quadnet.sgd_overlaps`) and the N → ∞ ODE
    (:func:`quadnet.integrate_ode`) from the same start overlaps, squares the loss difference,
    averages it over ``alphas[1:]`` (the start, where both agree, is left out) for each replica,
    and returns the square root of its mean over the replicas with a delta-method standard error.

    Parameters
    ----------
    Q0, M0, P : arrays (R, p, p), (R, p, p*), (p*, p*) or (R, p*, p*)
        Start overlaps of R ≥ 2 replicas (e.g. :func:`quadnet.informed_overlaps`).
    N : int
        Input dimension of the chain.
    a, b, lr, eta
        Readouts and step (γ or η = aγ, exactly one).
    alphas : array (T,), T ≥ 2
        Times at which the two losses are compared; ``alphas[0]`` is not counted.
    seed : int, SeedSequence, Generator or None
        Randomness of the chain.

    Returns
    -------
    (rms, stderr) : floats
        rms = √(mean over replicas of the mean over α of (ε_chain − ε_ODE)²); stderr = s.e. of
        that mean divided by 2 rms (first order in the error).

    Raises
    ------
    ValueError
        Fewer than two times or two replicas, bad parameters (from the simulators).

    Examples
    --------
    >>> from quadnet.starts import informed_overlaps
    >>> O = np.eye(4, 2)
    >>> start = informed_overlaps(O, 0.5, 400, 8, seed=0)
    >>> rms, se = chain_ode_gap(*start, 400, 0.25, 0.5, 0.5, [0.0, 2.0, 4.0], seed=1)
    >>> bool(0 < se < rms < 1)
    True
    """
    al = v.alphas(alphas)
    if al.size < 2:
        raise ValueError(f"alphas must hold at least 2 times (the first is not counted), got {al.size}")
    if np.ndim(M0) != 3 or np.shape(M0)[0] < 2:
        raise ValueError(f"M0 must be a batch (R, p, p*) of R ≥ 2 replicas, got shape {np.shape(M0)}")
    chain = sgd_overlaps(Q0, M0, P, N, a, b, lr, al, eta=eta, seed=seed)
    ode = integrate_ode(Q0, M0, P, a, b, lr, al, eta=eta)
    d2 = np.mean(to_numpy(chain.loss - ode.loss)[1:] ** 2, axis=0)
    ms, ms_se = mean_and_stderr(d2)
    return float(np.sqrt(ms)), float(ms_se / (2 * np.sqrt(ms)))


def run_outcome(trajectory: Any, zero_loss: float = 1e-3) -> str:
    """How a single run ended: ``"diverged"``, ``"zero loss"`` (final loss below ``zero_loss``) or
    ``"stationary"`` (a finite loss above it), chapter 2's phase diagram.

    Parameters
    ----------
    trajectory : Trajectory
        One run (no replica axis), e.g. from :func:`quadnet.integrate_ode`: needs ``diverged``
        and ``loss``.
    zero_loss : float > 0
        The loss below which the run counts as having reached the zero-loss manifold.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        A batch of runs (a ``diverged`` flag per replica), or ``zero_loss`` ≤ 0.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> run_outcome(SimpleNamespace(diverged=False, loss=np.array([0.3, 1e-5])))
    'zero loss'
    >>> run_outcome(SimpleNamespace(diverged=False, loss=np.array([0.3, 0.1])))
    'stationary'
    """
    zero_loss = v.positive("zero_loss", zero_loss, array=False)
    if np.ndim(to_numpy(trajectory.diverged)) != 0:
        raise ValueError("trajectory must be a single run (one diverged flag), not a batch of replicas")
    if bool(trajectory.diverged):
        return "diverged"
    return "zero loss" if float(to_numpy(trajectory.loss)[-1]) < zero_loss else "stationary"


def ode_outcomes(
    p: int,
    p_star: int,
    a: float,
    b: float,
    q0s: Any,
    etas: Any,
    M0: Any,
    alpha_end: float,
    *,
    zero_loss: float = 1e-3,
) -> dict[tuple[float, float], str]:
    """How the ODE ends from each start scale q0 and step η of a grid: chapter 2's phase diagram.

    For every pair (q0, η) integrates :func:`quadnet.integrate_ode` (LSODA, P = I) from
    Q(0) = q0 I + M0 M0ᵀ, M(0) = M0 with the step γ = η / a up to α = ``alpha_end``, and
    classifies the run with :func:`run_outcome`. The grid is meant to reach steps beyond the
    critical one, so :class:`quadnet.CriticalStepWarning` is silenced during these runs.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Widths of the student and the teacher.
    a, b : float > 0
        Readouts.
    q0s, etas : 1-d arrays of floats > 0
        Start scales and effective steps η = aγ.
    M0 : array (p, p*)
        The small seed of M(0) shared by all the runs (M0 = 0 stays on the invariant plateau line).
    alpha_end : float > 0
        Where each run stops.
    zero_loss : float > 0
        As in :func:`run_outcome`.

    Returns
    -------
    dict of (q0, η) to str
        ``"diverged"``, ``"zero loss"`` or ``"stationary"``, in the order q0 major, η minor.

    Raises
    ------
    ValueError
        Empty or non-positive ``q0s``/``etas``, ``M0`` not of shape (p, p*), ``alpha_end`` ≤ 0.

    Examples
    --------
    >>> seed = 1e-3 * np.ones((2, 1))
    >>> ode_outcomes(2, 1, 0.5, 1.0, [1.0], [0.05, 2.0], seed, 200.0)
    {(1.0, 0.05): 'zero loss', (1.0, 2.0): 'diverged'}
    """
    p, p_star = v.integer("p", p), v.integer("p_star", p_star)
    a = v.positive("a", a, array=False)
    grid = {}
    for name, values in (("q0s", q0s), ("etas", etas)):
        x = np.asarray(v.positive(name, values), dtype=float)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-d array of positive numbers, got shape {x.shape}")
        grid[name] = x
    M0 = np.asarray(M0, dtype=float)
    if M0.shape != (p, p_star):
        raise ValueError(f"M0 must have shape (p, p*) = {(p, p_star)}, got {M0.shape}")
    alpha_end = v.positive("alpha_end", alpha_end, array=False)
    outcomes = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CriticalStepWarning)  # divergence is one of the outcomes
        for q0 in grid["q0s"]:
            Q0 = q0 * np.eye(p) + M0 @ M0.T
            for eta in grid["etas"]:
                run = integrate_ode(Q0, M0, np.eye(p_star), a, b, eta / a, [0, alpha_end], method="LSODA")
                outcomes[float(q0), float(eta)] = run_outcome(run, zero_loss)
    return outcomes
