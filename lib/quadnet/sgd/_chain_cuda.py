"""Fused GPU engine (numba.cuda) of the exact overlap chain of :func:`quadnet.sgd_overlaps`.

One thread per replica; each launch advances every active replica by many steps, with its state
C (d × d, float64) in thread-local memory; the step is the CPU kernel's (``_chain_numba``): a
semidefinite Cholesky factor L of C, u = L z, |x|² = |z|² + χ²_{N−d} (exact χ²), the rank-one
updates of Q, M (and R), then the divergence check, per replica.

Random numbers: Philox4x32-10 (:mod:`._philox`) with the replica's key; the numbers of step t are
blocks of the stream tagged t (z: blocks 0 … ⌈d/2⌉−1, label noise: block ⌈d/2⌉, χ²: from block
⌈d/2⌉+1 on), a pure function of (seed, replica, t): independent of the launch configuration and
of how the steps are split between launches.

:func:`kernels` compiles, per state dimension d (local arrays need their size at compile time),
the kernel that draws its numbers and the same kernel on numbers drawn beforehand
(``predrawn``), which the tests compare with a NumPy emulation of the thread.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, float64, uint64

from ._chain_numpy import SD_TOL
from ._cuda import launch_config
from ._philox import chi2, normal_pair
from ._plan import philox_keys

__all__ = ["kernels", "CudaChain", "THREADS"]

#: threads per block (replicas per block)
THREADS = 128


@cuda.jit(device=True)
def _cholesky(Cl, Ll, d, tol):
    """Semidefinite Cholesky of Cl into Ll (flat d × d, lower); a pivot ≤ tol·C_jj gives a zero column."""
    for j in range(d):
        s = Cl[j * d + j]
        for k in range(j):
            s -= Ll[j * d + k] * Ll[j * d + k]
        m = s if s > tol * Cl[j * d + j] else 0.0
        ljj = math.sqrt(m)
        Ll[j * d + j] = ljj
        inv = 1.0 / ljj if m > 0.0 else 0.0
        for i in range(j + 1, d):
            s = Cl[i * d + j]
            for k in range(j):
                s -= Ll[i * d + k] * Ll[j * d + k]
            Ll[i * d + j] = s * inv


@cuda.jit(device=True)
def _step(Cl, Ll, ul, zl, x2, xi, d, p, ps, a, b, two_a_lr, noise, sqrtN, invN, tol):
    """One chain step of one replica (the CPU kernel's ``_block_step`` for one lane); returns tr Q."""
    _cholesky(Cl, Ll, d, tol)
    for i in range(d):
        s = 0.0
        for k in range(i + 1):
            s += Ll[i * d + k] * zl[k]
        ul[i] = s
    yh = 0.0
    for i in range(p):
        yh += ul[i] * ul[i]
    yt = 0.0
    for i in range(p, p + ps):
        yt += ul[i] * ul[i]
    e = b * yt - a * yh + noise * xi
    c = two_a_lr * e / sqrtN
    kq = 2.0 * c / sqrtN + c * c * x2 * invN
    kc = c / sqrtN
    for i in range(p):
        for j in range(i + 1):
            Cl[i * d + j] += kq * ul[i] * ul[j]
            Cl[j * d + i] = Cl[i * d + j]
        for j in range(p, d):
            Cl[i * d + j] += kc * ul[i] * ul[j]
            Cl[j * d + i] = Cl[i * d + j]
    trq = 0.0
    for i in range(p):
        trq += Cl[i * d + i]
    return trq


@cuda.jit(device=True)
def _load(C, r, Cl, d):
    for i in range(d):
        for j in range(d):
            Cl[i * d + j] = C[r, i, j]


@cuda.jit(device=True)
def _store(C, r, Cl, d):
    for i in range(d):
        for j in range(d):
            C[r, i, j] = Cl[i * d + j]


@cuda.jit(device=True)
def _freeze(C, r, d, active, div_step, step):
    """Flag replica r as diverged at ``step`` and park its state at the identity (reported as NaN)."""
    active[r] = 0
    div_step[r] = step
    for i in range(d):
        for j in range(d):
            C[r, i, j] = 1.0 if i == j else 0.0


@cuda.jit(device=True)
def _draw(key, t, zl, d, df, gd, gc, noise):
    """The numbers of step t: z (d normals, into zl), |x|² and ξ."""
    tag = uint64(t)
    zz = 0.0
    nz = (d + 1) // 2
    for h in range(nz):
        g1, g2 = normal_pair(key, uint64(h), tag)
        zl[2 * h] = g1
        zz += g1 * g1
        if 2 * h + 1 < d:
            zl[2 * h + 1] = g2
            zz += g2 * g2
    xi = 0.0
    if noise > 0.0:
        xi, _ = normal_pair(key, uint64(nz), tag)
    q, _ = chi2(df, gd, gc, key, uint64(nz + 1), tag)
    return zz + q, xi


@functools.lru_cache(maxsize=None)
def kernels(d: int):
    """(chain_rng, chain_predrawn) compiled lazily for states of dimension ``d``.

    chain_rng[blocks, threads](C, keys, active, div_step, step0, n_steps, p, ps, N, a, b, lr, noise,
    limit, tol): C (R, d, d) float64 updated in place; keys (R,) uint64; active (R,) uint8 and
    div_step (R,) int64 updated; limit (R,) float64. chain_predrawn takes Z (R, K, d), X2 (R, K),
    XI (R, K) instead of (keys, n_steps) and runs K steps.
    """
    DD = d * d

    @cuda.jit
    def chain_rng(C, keys, active, div_step, step0, n_steps, p, ps, N, a, b, lr, noise, limit, tol):
        r = cuda.grid(1)
        if r >= C.shape[0] or active[r] == 0:
            return
        Cl = cuda.local.array(DD, float64)
        Ll = cuda.local.array(DD, float64)
        ul = cuda.local.array(d, float64)
        zl = cuda.local.array(d, float64)
        df = N - d
        gd = 0.5 * df - 1.0 / 3.0
        gc = 1.0 / math.sqrt(9.0 * gd) if df >= 2 else 0.0
        sqrtN = math.sqrt(float64(N))
        key = keys[r]
        _load(C, r, Cl, d)
        for t in range(step0, step0 + n_steps):
            x2, xi = _draw(key, t, zl, d, df, gd, gc, noise)
            trq = _step(Cl, Ll, ul, zl, x2, xi, d, p, ps, a, b, 2.0 * a * lr, noise, sqrtN, 1.0 / N, tol)
            if not (trq <= limit[r]):
                _freeze(C, r, d, active, div_step, t + 1)
                return
        _store(C, r, Cl, d)

    @cuda.jit
    def chain_predrawn(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol):
        r = cuda.grid(1)
        if r >= C.shape[0] or active[r] == 0:
            return
        Cl = cuda.local.array(DD, float64)
        Ll = cuda.local.array(DD, float64)
        ul = cuda.local.array(d, float64)
        zl = cuda.local.array(d, float64)
        sqrtN = math.sqrt(float64(N))
        _load(C, r, Cl, d)
        for t in range(Z.shape[1]):
            for i in range(d):
                zl[i] = Z[r, t, i]
            trq = _step(Cl, Ll, ul, zl, X2[r, t], XI[r, t], d, p, ps, a, b, 2.0 * a * lr, noise, sqrtN, 1.0 / N, tol)
            if not (trq <= limit[r]):
                _freeze(C, r, d, active, div_step, step0 + t + 1)
                return
        _store(C, r, Cl, d)

    return chain_rng, chain_predrawn


def chain_predrawn(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol):
    """Run K = Z.shape[1] steps of the GPU kernel on pre-drawn numbers (arrays of the kernel's
    module: NumPy under the simulator, CuPy on a GPU); ``active`` (uint8) and ``div_step`` updated."""
    R, d = C.shape[0], C.shape[-1]
    blocks, threads = launch_config(R, THREADS)
    kernels(d)[1][blocks, threads](C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol)


class CudaChain:
    """The fused GPU engine on C (R, d, d); the divergence flags live on the device and are folded
    into the run's tracker at each output (:meth:`state`)."""

    name = "cuda"

    def __init__(self, C, div, seed, p, ps, N, prm, xp):
        self.xp, self.div, self.p, self.ps, self.N, self.prm = xp, div, p, ps, N, prm
        self.C = xp.ascontiguousarray(xp.asarray(C, dtype=xp.float64))
        R, d = C.shape[0], C.shape[-1]
        self.keys = xp.asarray(philox_keys(seed, R, "chain"))
        self.active = xp.asarray(div.active.astype(np.uint8))
        self.div_step = xp.asarray(div.step)
        self.limit = xp.asarray(div.limit)
        self.kernel = kernels(d)[0]
        self.launch = launch_config(R, THREADS)

    def advance(self, pos: int, n: int) -> None:
        prm = self.prm
        blocks, threads = self.launch
        self.kernel[blocks, threads](
            self.C,
            self.keys,
            self.active,
            self.div_step,
            pos,
            n,
            self.p,
            self.ps,
            self.N,
            prm.a,
            prm.b,
            prm.lr,
            prm.noise,
            self.limit,
            SD_TOL,
        )

    def state(self):
        self.div.absorb(self.active, self.div_step)
        return self.C
