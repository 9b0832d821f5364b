"""Divergence bookkeeping shared by the simulators and the ODE integrator (private).

A replica (or batch element) *diverges* when tr Q leaves ``blowup × max(tr Q(0), (b/a) tr P, 1)``
or turns non-finite. From then on it is frozen and reported as NaN; the others go on unaffected.

The tracker keeps its state on the host (NumPy), whatever the array module of the run: ``active``
and ``step`` are plain arrays that compiled kernels may update in place (the fused CPU kernel
does), or that a device kernel's copies are folded back into (:meth:`Divergence.absorb`).
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
        tr Q(0) and tr P per replica (NumPy or CuPy; kept on the host). ``trP`` may also be one
        value for all.
    a, b, blowup : float
        Readouts and the blow-up factor (validated).

    Attributes
    ----------
    limit : ndarray (R,)   the bound on tr Q
    active : ndarray (R,) bool   replicas still running
    step : ndarray (R,) int   step (or -1) at which each was flagged, for step-based simulators
    alpha : ndarray (R,)   α at which each was flagged (NaN while active), for time-based integrators

    Examples
    --------
    >>> import numpy as np
    >>> div = Divergence(np.array([2.0, 2.0]), 1.0, a=0.5, b=1.0, blowup=10.0)
    >>> div.limit
    array([20., 20.])
    >>> div.flag(np.array([3.0, np.inf]), step=7)
    array([1])
    >>> div.diverged, div.step
    (array([False,  True]), array([-1,  7]))
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

    def flag(self, trq: Any, rows: Any = slice(None), *, alpha: Any = np.nan, step: Any = -1) -> np.ndarray:
        """Flag the active replicas (among ``rows``) whose tr Q ``trq`` left the bound; returns
        their indices (into the whole batch)."""
        idx = np.arange(self.active.size)[rows][self.exceeded(trq, rows)]
        if idx.size:
            self.mark(idx, alpha=alpha, step=step)
        return idx

    def flag_first(self, history: Any, rows: Any, step0: int) -> np.ndarray:
        """Flag replicas by a history of tr Q: ``history`` (n, K) holds tr Q of the ``rows``
        (n replicas) after steps step0 + 1 … step0 + K; each active replica that left the bound is
        flagged at the first such step. Returns the flagged indices (into the whole batch)."""
        hist = np.asarray(to_numpy(history), dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~(hist <= self.limit[rows][:, None])
        hit = bad.any(axis=1) & self.active[rows]
        idx = np.arange(self.active.size)[rows][hit]
        if idx.size:
            self.mark(idx, step=step0 + 1 + np.argmax(bad[hit], axis=1))
        return idx

    def absorb(self, active: Any, step: Any) -> np.ndarray:
        """Fold in a kernel's own copies of ``active`` and ``step`` (e.g. from a GPU); returns the
        indices newly flagged."""
        active = np.asarray(to_numpy(active)).astype(bool).reshape(-1)
        step = np.asarray(to_numpy(step), dtype=np.int64).reshape(-1)
        idx = np.nonzero(self.active & ~active)[0]
        if idx.size:
            self.mark(idx, step=step[idx])
        return idx

    def where_active(self, x: Any, xp: Any, rows: Any = slice(None)) -> Any:
        """``x`` (n, ...), the values of replicas ``rows``, with NaN in the rows of diverged replicas
        (a new array of module ``xp``)."""
        ok = xp.asarray(self.active[rows]).reshape((-1,) + (1,) * (x.ndim - 1))
        return xp.where(ok, x, xp.nan)

    def alpha_from_steps(self, N: int) -> np.ndarray:
        """α = step/N of detection for step-based simulators (NaN where still active)."""
        return np.where(self.active, np.nan, self.step / N)

    def report(self, batch: tuple, xp: Any, N: int | None = None) -> tuple[Any, Any]:
        """(diverged, alpha_diverged), each of shape ``batch`` on module ``xp``; α from the steps
        when ``N`` is given (step-based simulators), else the α recorded by :meth:`mark`."""
        alpha = self.alpha_from_steps(N) if N is not None else self.alpha
        return xp.asarray(~self.active).reshape(batch), xp.asarray(alpha).reshape(batch)
