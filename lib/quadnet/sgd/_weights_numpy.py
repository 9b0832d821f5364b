"""Blocked engine of weight-space SGD, array code for NumPy and CuPy (private).

Inputs are drawn in chunks of up to 16 steps (and, for large N, a few replicas at a time), within
:data:`~quadnet.sgd._memory.CHUNK_BYTES`. Within a chunk the steps are exact but blocked: with
G = XXᵀ/N the fields of step t are λ_t = W x_t/√N + Σ_{s<t} δ̃_s G_{st}, so the heavy work is
three matrix products per chunk (BLAS level 3) instead of 3K matrix–vector passes over W, and the
weights are updated in place once per chunk.

Random numbers: on NumPy each replica has its own streams [inputs, label noise] of the role
"sgd", filled in parallel threads (NumPy releases the GIL); on CuPy one generator for the batch.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._common import tr
from ..model import make_rng
from ._memory import chunk_sizes
from ._plan import replica_rngs

__all__ = ["WeightsEngine", "BlockedWeights"]


def _fill_normals(rngs, rows, X, K, pool, dtype):
    """X[i, :K] ← K·N standard normals of replica rows[i]'s input stream, in parallel threads."""
    n = len(rows)
    if pool is None or n == 1:
        _fill_rows(rngs, rows, X, K, dtype, range(n))
        return
    workers = pool._max_workers
    parts = [range(i, n, workers) for i in range(workers)]
    for f in [pool.submit(_fill_rows, rngs, rows, X, K, dtype, part) for part in parts if len(part)]:
        f.result()


def _fill_rows(rngs, rows, X, K, dtype, idx):
    for i in idx:
        rngs[rows[i]][0].standard_normal(dtype=dtype, out=X[i, :K])


def _blocked_steps(A, G, y, trq, act, a, two_a_lr, N, xp):
    """The K steps of a chunk on the fields A = W(chunk start) x_t/√N (nr, p, K) and G (nr, K, K).

    Returns Dt (nr, p, K) with the update W += Dt X/√N, and the history of tr Q (nr, K)."""
    nr, p, K = A.shape
    Dt = xp.zeros((nr, p, K))  # δ̃_t = 2aγ e_t λ_t
    hist = xp.empty((nr, K))
    for t in range(K):
        lam = A[:, :, t]
        if t:
            lam = lam + xp.einsum("rps,rs->rp", Dt[:, :, :t], G[:, :t, t])
        e = y[:, t] - a * xp.sum(lam * lam, axis=1)
        d = (two_a_lr * e * act)[:, None] * lam
        Dt[:, :, t] = d
        trq = trq + (2 * xp.sum(d * lam, axis=1) + xp.sum(d * d, axis=1) * G[:, t, t]) / N
        hist[:, t] = trq
    return Dt, hist


class WeightsEngine:
    """What every weight-space engine shares: the working weights ``W`` (R, p, N), updated in
    place, their overlaps, the recorded outputs and the divergence tracker.

    Parameters
    ----------
    W : (R, p, N) float32/float64, the run's weights (a working copy, or the caller's with overwrite)
    Ws : (1 or R, p*, N), same dtype, the teacher
    W_init : (R, p, N) or None, W(0) for track_init (any real dtype)
    seed, prm, xp : seed, validated parameters, array module
    T : number of output times

    ``trQ0`` (R,) holds tr Q(0); the run's :class:`~quadnet._divergence.Divergence`, built from it,
    is then given with :meth:`attach`. Subclasses implement ``advance(pos, n)`` and set ``K_max``
    (the steps per call of ``advance`` that the driver asks for).
    """

    name = "weights"

    def __init__(self, W, Ws, W_init, seed, prm, xp, T):
        R, p, N = W.shape
        self.W, self.Ws, self.W_init, self.prm, self.xp, self.div = W, Ws, W_init, prm, xp, None
        self.N, self.dtype = N, W.dtype
        Rg = chunk_sizes(R, N, W.dtype.itemsize)[1]
        self.groups = [(r0, min(R, r0 + Rg)) for r0 in range(0, R, Rg)]
        self.trQ = xp.empty(R)
        for r0, r1 in self.groups:
            self.trQ[r0:r1] = tr(self.overlaps(r0, r1)[0], xp)
        self.trQ0 = self.trQ.copy()
        ps = Ws.shape[-2]
        self.Q_out = xp.full((T, R, p, p), xp.nan)
        self.M_out = xp.full((T, R, p, ps), xp.nan)
        self.R_out = xp.full((T, R, p, p), xp.nan) if W_init is not None else None

    def attach(self, div) -> None:
        """Use the divergence tracker ``div`` (built from :attr:`trQ0`)."""
        self.div = div

    def initial_Q(self):
        """Q(0) (R, p, p) in float64 (call before any step)."""
        Q0 = self.xp.empty((self.W.shape[0],) + (self.W.shape[1],) * 2)
        for r0, r1 in self.groups:
            Q0[r0:r1] = self.overlaps(r0, r1)[0]
        return Q0

    def final_weights(self):
        """The weights after the run (R, p, N), on the run's module."""
        return self.W

    def overlaps(self, r0, r1):
        """Q, M (and R = W W(0)ᵀ/N, or None) of replicas r0 … r1−1, in float64."""
        xp, N = self.xp, self.N
        Wg = self.W[r0:r1].astype(xp.float64, copy=False)
        Wsg = (self.Ws if self.Ws.shape[0] == 1 else self.Ws[r0:r1]).astype(xp.float64, copy=False)
        Q = Wg @ xp.swapaxes(Wg, -1, -2) / N
        M = Wg @ xp.swapaxes(Wsg, -1, -2) / N
        Rm = None
        if self.W_init is not None:
            Rm = Wg @ xp.swapaxes(self.W_init[r0:r1].astype(xp.float64, copy=False), -1, -2) / N
        return Q, M, Rm

    def record(self, ti: int) -> None:
        for r0, r1 in self.groups:
            Q, M, Rm = self.overlaps(r0, r1)
            rows = slice(r0, r1)
            self.Q_out[ti, rows] = self.div.where_active(Q, self.xp, rows)
            self.M_out[ti, rows] = self.div.where_active(M, self.xp, rows)
            if Rm is not None:
                self.R_out[ti, rows] = self.div.where_active(Rm, self.xp, rows)

    def close(self) -> None:
        """Release what the engine holds (threads)."""


class BlockedWeights(WeightsEngine):
    """The blocked engine (module docstring); arguments as :class:`WeightsEngine`."""

    name = "weights"

    def __init__(self, W, Ws, W_init, seed, prm, xp, T):
        super().__init__(W, Ws, W_init, seed, prm, xp, T)
        R, p, N = W.shape
        self.K_max, Rg = chunk_sizes(R, N, W.dtype.itemsize)
        self.X = xp.empty((Rg, self.K_max, N), dtype=W.dtype)
        if xp is np:
            self.rngs = replica_rngs(seed, R, 2, "sgd")  # [inputs, label noise] per replica
            workers = max(1, min(os.cpu_count() or 1, 8, Rg))
            self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        else:
            self.rng, self.pool = make_rng(seed, "cupy", role="sgd"), None
        self.act = xp.ones(R)

    def advance(self, pos: int, n: int) -> None:
        done = 0
        while done < n:
            K = int(min(self.K_max, n - done))
            for r0, r1 in self.groups:
                self._chunk(pos + done, K, r0, r1)
            done += K

    def _draw(self, K, r0, r1):
        """Inputs X (nr, K, N) and label-noise normals (nr, K) or None."""
        nr, xp, noise = r1 - r0, self.xp, self.prm.noise
        Xg = self.X[:nr, :K]
        if xp is np:
            _fill_normals(self.rngs, list(range(r0, r1)), self.X, K, self.pool, self.dtype)
            xi = np.stack([self.rngs[r][1].standard_normal(K) for r in range(r0, r1)]) if noise > 0 else None
        else:
            Xg[...] = self.rng.standard_normal((nr, K, self.N), dtype=self.dtype)
            xi = self.rng.standard_normal((nr, K)) if noise > 0 else None
        return Xg, xi

    def _chunk(self, pos, K, r0, r1):
        xp, prm, N = self.xp, self.prm, self.N
        sqrtN = math.sqrt(N)
        Xg, xi = self._draw(K, r0, r1)
        Xt = xp.swapaxes(Xg, -1, -2)
        Wg = self.W[r0:r1]
        Wsg = self.Ws if self.Ws.shape[0] == 1 else self.Ws[r0:r1]
        A = (Wg @ Xt).astype(xp.float64, copy=False) / sqrtN  # (nr, p, K)
        V = (Wsg @ Xt).astype(xp.float64, copy=False) / sqrtN  # (nr, p*, K)
        G = (Xg @ Xt).astype(xp.float64, copy=False) / N  # (nr, K, K)
        y = prm.b * xp.sum(V * V, axis=1)
        if xi is not None:
            y = y + prm.noise * xp.asarray(xi)
        Dt, hist = _blocked_steps(A, G, y, self.trQ[r0:r1], self.act[r0:r1], prm.a, 2.0 * prm.a * prm.lr, N, xp)
        Wg += (Dt / sqrtN).astype(self.dtype, copy=False) @ Xg
        self.trQ[r0:r1] = hist[:, -1]
        for r in self.div.flag_first(hist, slice(r0, r1), pos):
            self.act[r] = 0.0
            self.W[r] = 0  # frozen, harmless; reported as NaN
            self.trQ[r] = 0.0

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
