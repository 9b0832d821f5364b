"""Measurements on trajectories: escape times, alignment with the Procrustes point, fits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .backend import to_numpy
from .manifold import _polar

__all__ = ["escape_time", "alignment", "power_law_fit", "log_slope", "mean_and_stderr", "LineFit", "line_fit"]


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

    alpha (T,), loss (T, *batch) → array of the batch shape; NaN where the loss never gets there
    (or the run diverged first). A natural ``level`` is half the plateau loss.
    ``alpha`` must be finite and non-decreasing, ``level`` > 0; ``loss`` may hold NaN (after
    a divergence), which counts as not below the level.
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


def alignment(M: Any, M0: Any) -> np.ndarray:
    """Cosine between the polar factors: tr(polar(M)ᵀ polar(M0)) / p*, in [−1, 1].

    1 means M points at the Procrustes point of M0 (the closest solution to the initialization).
    Shapes (..., p, p*) → (...).
    """
    O, O0 = to_numpy(_polar(M, "M")), to_numpy(_polar(M0, "M0"))
    if O.shape[-2:] != O0.shape[-2:]:
        raise ValueError(f"M0 must have the matrix shape of M {O.shape[-2:]}, got {O0.shape[-2:]}")
    try:
        np.broadcast_shapes(O.shape, O0.shape)
    except ValueError:
        raise ValueError(f"batch shapes of M {O.shape[:-2]} and M0 {O0.shape[:-2]} do not broadcast") from None
    return np.einsum("...ij,...ij->...", O, O0) / O.shape[-1]


def power_law_fit(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares fit of log y = log C + k log x. Returns (k, C).

    x, y: 1-d, same length ≥ 2, finite and > 0, x not all equal (else ``ValueError``).
    """
    x, y = _xy(x, y)
    for name, arr in (("x", x), ("y", y)):
        if np.any(arr <= 0):
            raise ValueError(f"power_law_fit needs {name} > 0")
    k, logc = np.polyfit(np.log(x), np.log(y), 1)
    return float(k), float(np.exp(logc))


def log_slope(x: Any, y: Any) -> float:
    """Slope of log y against x (an exponential rate). x, y: 1-d, same length ≥ 2, finite,
    y > 0, x not all equal (else ``ValueError``)."""
    x, y = _xy(x, y)
    if np.any(y <= 0):
        raise ValueError("log_slope needs y > 0")
    return float(np.polyfit(x, np.log(y), 1)[0])


def mean_and_stderr(samples: Any, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over ``axis``, ignoring NaNs.

    The mean is NaN where no finite sample is left, the standard error where fewer than two
    are (NumPy then warns with a ``RuntimeWarning``).
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
