"""Divergence bookkeeping shared by the simulators and the ODE integrator (private).

A replica (or batch element) *diverges* when tr Q leaves ``blowup × max(tr Q(0), (b/a) tr P, 1)``
or turns non-finite. From then on it is frozen and reported as NaN; the others go on unaffected.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from .backend import to_numpy

__all__ = ["BLOWUP", "check_blowup", "Divergence"]

#: default blow-up factor
BLOWUP = 1e3


def check_blowup(blowup: Any) -> float:
    """``blowup`` as a float > 1 (ValueError naming it otherwise)."""
    blowup = v.positive("blowup", blowup, array=False)
    if blowup <= 1:
        raise ValueError(f"blowup must be > 1, got {blowup}")
    return blowup


class Divergence:
    """Which of R replicas have diverged, and when.

    Parameters
    ----------
    trQ0, trP : array (R,)
        tr Q(0) and tr P per replica (NumPy or CuPy; kept on the host).
    a, b, blowup : float
        Readouts and the blow-up factor (validated).

    Attributes
    ----------
    limit : ndarray (R,)   the bound on tr Q
    active : ndarray (R,) bool   replicas still running
    step : ndarray (R,) int   step (or -1) at which each was flagged, for step-based simulators
    alpha : ndarray (R,)   α at which each was flagged (NaN while active)
    """

    def __init__(self, trQ0: Any, trP: Any, a: float, b: float, blowup: float):
        trQ0 = np.asarray(to_numpy(trQ0), dtype=float).reshape(-1)
        trP = np.broadcast_to(np.asarray(to_numpy(trP), dtype=float).reshape(-1), trQ0.shape)
        self.limit = blowup * np.maximum(np.maximum(trQ0, (b / a) * trP), 1.0)
        self.active = np.ones(trQ0.size, dtype=bool)
        self.step = np.full(trQ0.size, -1, dtype=np.int64)
        self.alpha = np.full(trQ0.size, np.nan)

    @property
    def diverged(self) -> np.ndarray:
        return ~self.active

    def exceeded(self, trq: Any, rows: Any = slice(None), *, fraction: Any = 1.0) -> np.ndarray:
        """Boolean mask (over ``rows``) of active replicas whose tr Q ``trq`` is beyond
        ``fraction`` × the limit (scalar or per row; 1 by default), or not finite."""
        trq = np.asarray(to_numpy(trq), dtype=float)
        with np.errstate(invalid="ignore"):
            return ~(trq <= fraction * self.limit[rows]) & self.active[rows]

    def mark(self, idx: Any, *, alpha: Any = np.nan, step: Any = -1) -> None:
        """Flag replicas ``idx`` as diverged at ``alpha`` (and ``step``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        self.active[idx] = False
        self.alpha[idx] = alpha
        self.step[idx] = step

    def alpha_from_steps(self, N: int) -> np.ndarray:
        """α = step/N of detection for step-based simulators (NaN where still active)."""
        return np.where(self.active, np.nan, self.step / N)
