"""Fused GPU engine (numba.cuda) of weight-space SGD (:func:`quadnet.sgd_weights`, ``method="cuda"``).

One thread block per replica, many steps per launch. Thread ``tid`` of a block owns the input
pairs j = tid, tid + T, … (T threads), i.e. the components 2j and 2j+1 of x. One step:

1. each thread draws its components of x (Philox4x32-10, stream tagged 2t, block j: the two
   normals of a Box–Muller pair), keeps them in the block's x buffer, and sums its share of
   W x, W* x and |x|² (in float64);
2. a tree reduction over the block (shared memory, T a power of two) gives λ = W x/√N,
   ν = W* x/√N and |x|²; thread 0 forms e = b|ν|² + σξ − a|λ|² (ξ: block 0 of stream 2t+1),
   δ = 2aγ e λ, the new tr Q = tr Q + (2 δ·λ + |δ|²|x|²/N)/N, and checks it against the bound;
3. every thread updates its components: W += δ x/√N.

The weights of the replica (and its x buffer) live in shared memory when p·N + N numbers fit
(:data:`SHARED_BYTES`), loaded at the start of a launch and stored at its end; otherwise in global
memory (the x buffer too, one row per replica). A kernel on pre-drawn inputs (``predrawn``) runs
the same steps, so the tests can compare it with a NumPy emulation of one block.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, float32, float64, uint64

from ..backend import array_module
from ._cuda import simulating
from ._philox import normal_pair
from ._plan import philox_keys
from ._weights_numpy import WeightsEngine

__all__ = ["kernels", "CudaWeights", "THREADS", "SHARED_BYTES", "uses_shared"]

#: threads per block (a power of two: the reduction halves it)
THREADS = 128
#: dynamic shared memory a block may use for W and x (the 48 KiB default less the reduction's share)
SHARED_BYTES = 40 * 1024
#: steps per launch at most (a launch must end well within the watchdog limits of display GPUs)
STEPS_PER_LAUNCH = 4096


def uses_shared(p: int, N: int, itemsize: int) -> bool:
    """True when a replica's weights and inputs, (p + 1) N numbers, fit in shared memory."""
    return (p + 1) * N * itemsize <= SHARED_BYTES


@cuda.jit(device=True)
def _reduce(red, tid, threads, nv):
    """Tree sum of red[(tid, v)] over the block's threads into red[(0, v)] (threads a power of two)."""
    s = threads // 2
    while s > 0:
        if tid < s:
            for v in range(nv):
                red[tid * nv + v] += red[(tid + s) * nv + v]
        cuda.syncthreads()
        s //= 2


@cuda.jit(device=True)
def _fields(W, Ws, Xin, Xbuf, dyn, part, r, rs, tid, threads, t, step0, key, p, ps, shared, predrawn):
    """Phase 1 of step t for thread ``tid``: its components of x (drawn, or read from Xin) into
    the block's x buffer, and its shares of W x, W* x and |x|² into ``part`` (float64)."""
    N = W.shape[2]
    for v in range(p + ps + 1):
        part[v] = 0.0
    for j in range(tid, (N + 1) // 2, threads):
        if predrawn:
            g1 = float64(Xin[r, t - step0, 2 * j])
            g2 = float64(Xin[r, t - step0, 2 * j + 1]) if 2 * j + 1 < N else 0.0
        else:
            g1, g2 = normal_pair(key, uint64(j), uint64(2 * t))
        for h in range(2):
            i = 2 * j + h
            if i < N:
                if shared:  # stored in the run's precision, used as stored
                    dyn[p * N + i] = g1 if h == 0 else g2
                    xd = float64(dyn[p * N + i])
                else:
                    Xbuf[r, i] = g1 if h == 0 else g2
                    xd = float64(Xbuf[r, i])
                for k in range(p):
                    w = dyn[k * N + i] if shared else W[r, k, i]
                    part[k] += float64(w) * xd
                for m in range(ps):
                    part[p + m] += float64(Ws[rs, m, i]) * xd
                part[p + ps] += xd * xd


@cuda.jit(device=True)
def _coefficients(red, coef, coefd, xi, trq, limit, a, b, lr, noise, p, ps, N):
    """Phase 2 (thread 0): from the reduced sums, δ/√N into coef (float64) and coefd (the run's
    precision), and the new tr Q; coef[p] = 1 flags a divergence."""
    sqrtN = math.sqrt(float64(N))
    yt = 0.0
    for m in range(ps):
        nu = red[p + m] / sqrtN
        yt += nu * nu
    yh = 0.0
    for k in range(p):
        lam = red[k] / sqrtN
        yh += lam * lam
    e = b * yt + noise * xi - a * yh
    dl = 0.0
    dd = 0.0
    for k in range(p):
        lam = red[k] / sqrtN
        d = 2.0 * a * lr * e * lam
        dl += d * lam
        dd += d * d
        coef[k] = d / sqrtN
        coefd[k] = coef[k]
    trq = trq + (2.0 * dl + dd * (red[p + ps] / N)) / N
    coef[p] = 0.0 if trq <= limit else 1.0
    return trq


@cuda.jit(device=True)
def _update(W, Xbuf, dyn, coefd, r, tid, threads, p, shared):
    """Phase 3: W += δ x/√N on this thread's components, in the run's precision."""
    N = W.shape[2]
    for i in range(tid, N, threads):
        xd = dyn[p * N + i] if shared else Xbuf[r, i]
        for k in range(p):
            if shared:
                dyn[k * N + i] += coefd[k] * xd
            else:
                W[r, k, i] += coefd[k] * xd


@cuda.jit(device=True)
def _copy_weights(W, dyn, r, tid, threads, p, to_shared):
    N = W.shape[2]
    for k in range(p):
        for i in range(tid, N, threads):
            if to_shared:
                dyn[k * N + i] = W[r, k, i]
            else:
                W[r, k, i] = dyn[k * N + i]


@functools.lru_cache(maxsize=None)
def kernels(p: int, ps: int, threads: int, shared: bool, predrawn: bool, single: bool):
    """The kernel for p student rows, p* teacher rows, ``threads`` per block, weights in shared
    memory or not, drawing its inputs or reading them (``predrawn``), float32 (``single``) or float64.

    kernel[R, threads, 0, shm](W, Ws, keys, Xin, XI, Xbuf, trQ, active, div_step, limit, step0, n_steps,
    a, b, lr, noise): W (R, p, N) updated in place; Ws (1 or R, p*, N); keys (R,) uint64; Xin (R, K, N)
    and XI (R, K) the pre-drawn inputs and label-noise normals (``predrawn``, K = n_steps; small
    dummies otherwise); Xbuf (R, N) the x buffers in global memory (a dummy with ``shared``); trQ (R,)
    float64 updated; active (R,) uint8 and div_step (R,) int64 updated; shm = (p + 1) N × itemsize
    bytes of dynamic shared memory with ``shared``, else 0.
    """
    NV = p + ps + 1
    RED = threads * NV
    P1 = p + 1
    DT = float32 if single else float64

    @cuda.jit
    def kernel(W, Ws, keys, Xin, XI, Xbuf, trQ, active, div_step, limit, step0, n_steps, a, b, lr, noise):
        r = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        if active[r] == 0:
            return
        red = cuda.shared.array(RED, float64)
        coef = cuda.shared.array(P1, float64)  # δ_k/√N, then the divergence flag
        coefd = cuda.shared.array(P1, DT)
        dyn = cuda.shared.array(0, DT)  # p·N weights then N inputs, with ``shared``
        part = cuda.local.array(NV, float64)
        rs = 0 if Ws.shape[0] == 1 else r
        if shared:
            _copy_weights(W, dyn, r, tid, threads, p, True)
        cuda.syncthreads()
        trq = trQ[r]
        for t in range(step0, step0 + n_steps):
            _fields(W, Ws, Xin, Xbuf, dyn, part, r, rs, tid, threads, t, step0, keys[r], p, ps, shared, predrawn)
            for v in range(NV):
                red[tid * NV + v] = part[v]
            cuda.syncthreads()
            _reduce(red, tid, threads, NV)
            if tid == 0:
                if predrawn:
                    xi = XI[r, t - step0]
                else:
                    xi, _ = normal_pair(keys[r], uint64(0), uint64(2 * t + 1))
                trq = _coefficients(red, coef, coefd, xi, trq, limit[r], a, b, lr, noise, p, ps, W.shape[2])
                if coef[p] != 0.0:
                    active[r] = 0
                    div_step[r] = t + 1
            cuda.syncthreads()
            if coef[p] != 0.0:
                return  # diverged: W is left as it is, and reported as NaN
            _update(W, Xbuf, dyn, coefd, r, tid, threads, p, shared)
            cuda.syncthreads()
        if shared:
            _copy_weights(W, dyn, r, tid, threads, p, False)
        if tid == 0:
            trQ[r] = trq

    return kernel


def block_threads(N: int) -> int:
    """Threads per block: :data:`THREADS`, fewer for small N (a power of two ≥ 1), and at most 8
    under the simulator (which runs every thread as a Python thread)."""
    t = THREADS if not simulating() else 8
    while t > 1 and 2 * t > N:
        t //= 2
    return t


class CudaWeights(WeightsEngine):
    """The fused GPU engine; arguments as :class:`~quadnet.sgd._weights_numpy.WeightsEngine`."""

    name = "weights:cuda"

    def __init__(self, W, Ws, W_init, seed, prm, xp, T):
        super().__init__(W, Ws, W_init, seed, prm, xp, T)
        R, p, N = W.shape
        self.K_max = STEPS_PER_LAUNCH
        self.threads = block_threads(N)
        self.shared = uses_shared(p, N, W.dtype.itemsize)
        self.shm = (p + 1) * N * W.dtype.itemsize if self.shared else 0
        self.kernel = kernels(p, Ws.shape[-2], self.threads, self.shared, False, W.dtype == np.float32)
        self.keys = xp.asarray(philox_keys(seed, R, "sgd"))
        self.Xbuf = xp.zeros((1, 1) if self.shared else (R, N), dtype=W.dtype)
        self.Xin = xp.zeros((1, 1, 1), dtype=W.dtype)
        self.XI = xp.zeros((1, 1))

    def attach(self, div) -> None:
        super().attach(div)
        xp = self.xp
        self.active = xp.asarray(div.active.astype(np.uint8))
        self.div_step = xp.asarray(div.step)
        self.limit = xp.asarray(div.limit)

    def advance(self, pos: int, n: int) -> None:
        prm, R = self.prm, self.W.shape[0]
        self.kernel[R, self.threads, 0, self.shm](
            self.W,
            self.Ws,
            self.keys,
            self.Xin,
            self.XI,
            self.Xbuf,
            self.trQ,
            self.active,
            self.div_step,
            self.limit,
            pos,
            n,
            prm.a,
            prm.b,
            prm.lr,
            prm.noise,
        )

    def record(self, ti: int) -> None:
        self.div.absorb(self.active, self.div_step)
        super().record(ti)


def weights_predrawn(W, Ws, X, XI, trQ, active, div_step, limit, step0, a, b, lr, noise, threads=None):
    """Run K = X.shape[1] steps of the GPU kernel on pre-drawn inputs X (R, K, N) and label-noise
    normals XI (R, K) (arrays of the kernel's module: NumPy under the simulator, CuPy on a GPU);
    W, trQ, active (uint8) and div_step are updated."""
    xp = array_module(W)
    R, p, N = W.shape
    threads = threads or block_threads(N)
    shared = uses_shared(p, N, W.dtype.itemsize)
    shm = (p + 1) * N * W.dtype.itemsize if shared else 0
    kernel = kernels(p, Ws.shape[-2], threads, shared, True, W.dtype == np.float32)
    keys = xp.zeros(R, dtype=xp.uint64)
    Xbuf = xp.zeros((1, 1) if shared else (R, N), dtype=W.dtype)
    kernel[R, threads, 0, shm](
        W, Ws, keys, X, XI, Xbuf, trQ, active, div_step, limit, step0, X.shape[1], a, b, lr, noise
    )
