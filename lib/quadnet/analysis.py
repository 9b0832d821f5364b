"""Measurements on trajectories: escape times, alignment with the Procrustes point, fits."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from .backend import to_numpy
from .manifold import polar

__all__ = ["escape_time", "alignment", "power_law_fit", "log_slope", "mean_and_stderr"]


def escape_time(alpha: Any, loss: Any, level: float) -> np.ndarray:
    """First α at which ``loss`` falls below ``level`` (linear interpolation between samples).

    alpha (T,), loss (T, *batch) → array of the batch shape; NaN where the loss never gets there
    (or the run diverged first). A natural ``level`` is half the plateau loss.
    """
    al = np.asarray(to_numpy(alpha), dtype=float)
    L = np.asarray(to_numpy(loss), dtype=float)
    if al.ndim != 1 or L.shape[:1] != al.shape:
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
    O, O0 = to_numpy(polar(M)), to_numpy(polar(M0))
    return np.einsum("...ij,...ij->...", O, O0) / O.shape[-1]


def power_law_fit(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares fit of log y = log C + k log x. Returns (k, C)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("power_law_fit needs x > 0 and y > 0")
    k, logc = np.polyfit(np.log(x), np.log(y), 1)
    return float(k), float(np.exp(logc))


def log_slope(x: Any, y: Any) -> float:
    """Slope of log y against x (an exponential rate)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.any(y <= 0):
        raise ValueError("log_slope needs y > 0")
    return float(np.polyfit(x, np.log(y), 1)[0])


def mean_and_stderr(samples: Any, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over ``axis``, ignoring NaNs."""
    s = np.asarray(to_numpy(samples), float)
    n = np.sum(np.isfinite(s), axis=axis)
    return np.nanmean(s, axis=axis), np.nanstd(s, axis=axis, ddof=1) / np.sqrt(np.maximum(n, 1))
