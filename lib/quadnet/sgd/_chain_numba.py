"""Fused CPU engine (numba) of the exact finite-N overlap chain of :func:`quadnet.sgd_overlaps`.

One call advances every active replica by ``n_steps`` SGD steps. Replicas are processed in
blocks of up to ``LANES`` (32) in lockstep: the innermost loops of the linear algebra run over the
replicas of a block with a run-time trip count, which LLVM's loop vectorizer turns into SIMD code
(numba leaves the SLP vectorizer off, so short constant-length lane loops stay scalar; blocks of
8 ran ~1.5× slower). The blocks run in parallel over the cores (``prange``); the block size is
chosen so that every thread gets a block when R allows (:func:`_block_size`). Each replica has
its own random stream, drawn with the generator state held in registers, so the numbers do not
depend on the block size, the thread scheduling or the other replicas (lane arithmetic is
elementwise IEEE, no fastmath). Nothing is allocated in the step loop.

State of a replica: C (d × d), the Gram matrix /N of the rows of [W; W*; W(0)] (the last block
only with ``track_init``), i.e. C = [[Q, M, R], [Mᵀ, P, M0ᵀ], [Rᵀ, M0, Q0]]. One step:

    L      = semidefinite Cholesky of C        (a pivot ≤ tol·C_jj gives a zero column)
    u      = L z,  z ~ N(0, I_d)               u = (λ, ν, λ0)
    |x|²   = |z|² + χ²_{N−d}                   exact whatever rank C has: uᵀC⁺u is the sum of
                                               z_i² over the non-zero columns of L, and the z_i²
                                               of the zero columns are the χ²_1 of the null
                                               directions, independent of u
    e      = b|ν|² − a|λ|² + σξ,   c = 2aγe/√N (δ = cλ)
    Q     += (2c/√N + c²|x|²/N) λλᵀ
    [M, R] += (c/√N) λ (ν, λ0)ᵀ

Random numbers: xoroshiro128++ (Blackman & Vigna 2019) per replica, seeded from NumPy
``SeedSequence`` children; normals by the 256-layer ziggurat (Marsaglia & Tsang 2000, the
layout NumPy's ``Generator`` uses, exact up to the 52-bit uniforms); χ²_k exactly as 2·Gamma(k/2)
by Marsaglia–Tsang's rejection sampler (k = 1: z², k = 0: 0). :func:`chain_predrawn` runs the
same step on random numbers drawn outside (to check the kernel against the NumPy reference on
identical numbers).
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from ._chain_numpy import SD_TOL
from ._plan import replica_keys

__all__ = ["chain_rng", "chain_predrawn", "LANES", "zig_normals", "NumbaChain"]

#: most replicas per block (fewer when that leaves a thread idle: see :func:`_block_size`)
LANES = 32

_TWO53_INV = 1.0 / 9007199254740992.0
_TWO52 = 4503599627370496.0


def _ziggurat_tables():
    """Tables of the 256-layer normal ziggurat (Marsaglia & Tsang 2000), 52-bit abscissae."""
    r = 3.6541528853610087963519472518
    vol = 0.0049286732339746519
    ki = np.zeros(256, dtype=np.int64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    dn = tn = r
    q = vol / math.exp(-0.5 * dn * dn)
    ki[0] = int((dn / q) * _TWO52)
    ki[1] = 0
    wi[0] = q / _TWO52
    wi[255] = dn / _TWO52
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vol / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = int((dn / tn) * _TWO52)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / _TWO52
    return ki, wi, fi, r


_KI, _WI, _FI, _ZIG_R = _ziggurat_tables()
_ZIG_INV_R = 1.0 / _ZIG_R
_M52 = np.uint64((1 << 52) - 1)


_U11 = np.uint64(11)
_U9 = np.uint64(9)
_UFF = np.uint64(0xFF)
_U100 = np.uint64(0x100)


@njit(cache=True, inline="always")
def _nx(s0, s1):
    """xoroshiro128++: (output, new s0, new s1)."""
    r = ((s0 + s1) << np.uint64(17) | (s0 + s1) >> np.uint64(47)) + s0
    s1 ^= s0
    n0 = (s0 << np.uint64(49) | s0 >> np.uint64(15)) ^ s1 ^ (s1 << np.uint64(21))
    n1 = s1 << np.uint64(28) | s1 >> np.uint64(36)
    return r, n0, n1


@njit(cache=True, inline="always")
def _uni(s0, s1):
    r, s0, s1 = _nx(s0, s1)
    return ((r >> _U11) + 0.5) * _TWO53_INV, s0, s1


@njit(cache=True, error_model="numpy")
def _normal_slow(rr, s0, s1):
    """Finish a ziggurat draw whose fast test failed; loop until accepted."""
    while True:
        idx = np.int64(rr & _UFF)
        neg = (rr & _U100) != 0
        rabs = np.int64((rr >> _U9) & _M52)
        x = rabs * _WI[idx]
        if neg:
            x = -x
        if rabs < _KI[idx]:
            return x, s0, s1
        if idx == 0:
            while True:
                u1, s0, s1 = _uni(s0, s1)
                u2, s0, s1 = _uni(s0, s1)
                xx = -_ZIG_INV_R * math.log(u1)
                yy = -math.log(u2)
                if yy + yy > xx * xx:
                    return (-(_ZIG_R + xx) if neg else _ZIG_R + xx), s0, s1
        else:
            u1, s0, s1 = _uni(s0, s1)
            if (_FI[idx - 1] - _FI[idx]) * u1 + _FI[idx] < math.exp(-0.5 * x * x):
                return x, s0, s1
        rr, s0, s1 = _nx(s0, s1)


@njit(cache=True, inline="always", error_model="numpy")
def _normal(s0, s1):
    rr, s0, s1 = _nx(s0, s1)
    idx = np.int64(rr & _UFF)
    rabs = np.int64((rr >> _U9) & _M52)
    if rabs < _KI[idx]:
        x = rabs * _WI[idx]
        return (-x if (rr & _U100) != 0 else x), s0, s1
    return _normal_slow(rr, s0, s1)


@njit(cache=True, error_model="numpy")
def _chi2_slow(s0, s1, gd, gc):
    while True:
        x, s0, s1 = _normal(s0, s1)
        v = 1.0 + gc * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, s0, s1 = _uni(s0, s1)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return 2.0 * gd * v, s0, s1
        if math.log(u) < 0.5 * x2 + gd * (1.0 - v + math.log(v)):
            return 2.0 * gd * v, s0, s1


@njit(cache=True, inline="always", error_model="numpy")
def _chi2(s0, s1, df, gd, gc):
    if df == 0:
        return 0.0, s0, s1
    if df == 1:
        g, s0, s1 = _normal(s0, s1)
        return g * g, s0, s1
    return _chi2_slow(s0, s1, gd, gc)


def _block_size(R):
    """Replicas per block: up to LANES, but at least one block per thread when R allows."""
    nt = max(1, get_num_threads())
    return max(1, min(LANES, -(-R // nt)))


@njit(cache=True, error_model="numpy")
def _block_step(Cl, Ll, ul, zl, x2l, xil, actf, trq, s, inv, nb, d, p, ps, a, b, two_a_lr, noise, sqrtN, invN, tol):
    """One step for the nb lanes of a block; arrays are (…, LANES) with the lane index last."""
    # semidefinite Cholesky, lane-parallel
    for j in range(d):
        for l in range(nb):
            s[l] = Cl[j, j, l]
        for k in range(j):
            for l in range(nb):
                s[l] -= Ll[j, k, l] * Ll[j, k, l]
        for l in range(nb):
            m = s[l] if s[l] > tol * Cl[j, j, l] else 0.0
            ljj = math.sqrt(m)
            Ll[j, j, l] = ljj
            inv[l] = 1.0 / ljj if m > 0.0 else 0.0
        for i in range(j + 1, d):
            for l in range(nb):
                s[l] = Cl[i, j, l]
            for k in range(j):
                for l in range(nb):
                    s[l] -= Ll[i, k, l] * Ll[j, k, l]
            for l in range(nb):
                Ll[i, j, l] = s[l] * inv[l]
    # u = L z
    for i in range(d):
        for l in range(nb):
            s[l] = 0.0
        for k in range(i + 1):
            for l in range(nb):
                s[l] += Ll[i, k, l] * zl[k, l]
        for l in range(nb):
            ul[i, l] = s[l]
    # error and step coefficients (s ← coefficient of λλᵀ, inv ← coefficient of λ(ν, λ0)ᵀ)
    for l in range(nb):
        yh = 0.0
        for i in range(p):
            yh += ul[i, l] * ul[i, l]
        yt = 0.0
        for i in range(p, p + ps):
            yt += ul[i, l] * ul[i, l]
        e = b * yt - a * yh + noise * xil[l]
        c = two_a_lr * e / sqrtN * actf[l]
        s[l] = 2.0 * c / sqrtN + c * c * x2l[l] * invN
        inv[l] = c / sqrtN
    for i in range(p):
        for j in range(i + 1):
            for l in range(nb):
                Cl[i, j, l] += s[l] * ul[i, l] * ul[j, l]
                Cl[j, i, l] = Cl[i, j, l]
        for j in range(p, d):
            for l in range(nb):
                Cl[i, j, l] += inv[l] * ul[i, l] * ul[j, l]
                Cl[j, i, l] = Cl[i, j, l]
    for l in range(nb):
        trq[l] = 0.0
    for i in range(p):
        for l in range(nb):
            trq[l] += Cl[i, i, l]


@njit(cache=True, error_model="numpy")
def _check(Cl, actf, trq, lim, active, div_step, r0, nb, d, step):
    """Freeze lanes whose tr Q left the bound or turned non-finite; returns nothing."""
    for l in range(nb):
        if actf[l] > 0.0 and not (trq[l] <= lim[r0 + l]):
            actf[l] = 0.0
            active[r0 + l] = False
            div_step[r0 + l] = step
            for i in range(d):
                for j in range(d):
                    Cl[i, j, l] = 1.0 if i == j else 0.0  # frozen and harmless; reported as NaN


@njit(cache=True)
def _block_buffers(d, bs):
    """Work arrays of one block of ``bs`` lanes (replicas last, so per-replica loops vectorize)."""
    Cl = np.zeros((d, d, bs))
    for i in range(d):
        Cl[i, i, :] = 1.0  # padding lanes (beyond R) stay at the identity, inactive
    return (
        Cl,
        np.zeros((d, d, bs)),
        np.zeros((d, bs)),
        np.zeros((d, bs)),
        np.zeros(bs),
        np.zeros(bs),
        np.zeros(bs),
        np.zeros(bs),
        np.empty(bs),
        np.empty(bs),
    )


@njit(cache=True)
def _load_block(C, active, Cl, actf, r0, nb, d):
    """Copy replicas r0 … r0+nb−1 of C (R, d, d) into the lanes; True if any of them is active."""
    any_active = False
    for l in range(nb):
        actf[l] = 1.0 if active[r0 + l] else 0.0
        any_active = any_active or active[r0 + l]
        for i in range(d):
            for j in range(d):
                Cl[i, j, l] = C[r0 + l, i, j]
    return any_active


@njit(cache=True)
def _store_block(C, Cl, r0, nb, d):
    for l in range(nb):
        for i in range(d):
            for j in range(d):
                C[r0 + l, i, j] = Cl[i, j, l]


def chain_rng(C, states, active, div_step, step0, n_steps, p, ps, N, a, b, lr, noise, limit, tol):
    """Advance each active replica of C (R, d, d) by ``n_steps`` steps, drawing in the kernel.

    ``states`` (R, 2) uint64 xoroshiro128++ states are updated in place. A replica whose tr Q
    turns non-finite or exceeds ``limit[r]`` is frozen: ``active[r]`` = False and
    ``div_step[r]`` = the step count at which it was detected.
    """
    _chain_rng(
        C, states, active, div_step, step0, n_steps, p, ps, N, a, b, lr, noise, limit, tol, _block_size(C.shape[0])
    )


@njit(cache=True, parallel=True, error_model="numpy")
def _chain_rng(C, states, active, div_step, step0, n_steps, p, ps, N, a, b, lr, noise, limit, tol, bs):
    R = C.shape[0]
    d = C.shape[1]
    df = N - d
    gd = 0.5 * df - 1.0 / 3.0
    gc = 1.0 / math.sqrt(9.0 * gd) if df >= 2 else 0.0
    sqrtN = math.sqrt(N)
    invN = 1.0 / N
    two_a_lr = 2.0 * a * lr
    nblocks = (R + bs - 1) // bs
    for blk in prange(nblocks):
        r0 = blk * bs
        nb = min(bs, R - r0)
        Cl, Ll, ul, zl, x2l, xil, actf, trq, s, inv = _block_buffers(d, bs)
        S = np.empty((bs, 2), dtype=np.uint64)
        for l in range(nb):
            S[l, 0] = states[r0 + l, 0]
            S[l, 1] = states[r0 + l, 1]
        if not _load_block(C, active, Cl, actf, r0, nb, d):
            continue
        for t in range(n_steps):
            for l in range(nb):
                s0 = S[l, 0]
                s1 = S[l, 1]
                zz = 0.0
                for i in range(d):
                    g, s0, s1 = _normal(s0, s1)
                    zl[i, l] = g
                    zz += g * g
                q, s0, s1 = _chi2(s0, s1, df, gd, gc)
                x2l[l] = zz + q
                if noise > 0.0:
                    g, s0, s1 = _normal(s0, s1)
                    xil[l] = g
                S[l, 0] = s0
                S[l, 1] = s1
            _block_step(
                Cl, Ll, ul, zl, x2l, xil, actf, trq, s, inv, nb, d, p, ps, a, b, two_a_lr, noise, sqrtN, invN, tol
            )
            _check(Cl, actf, trq, limit, active, div_step, r0, nb, d, step0 + t + 1)
        for l in range(nb):
            states[r0 + l, 0] = S[l, 0]
            states[r0 + l, 1] = S[l, 1]
        _store_block(C, Cl, r0, nb, d)


def chain_predrawn(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol):
    """As :func:`chain_rng`, on pre-drawn numbers: Z (R, K, d) normals, X2 (R, K) the full |x|²,
    XI (R, K) label-noise normals; runs K steps."""
    _chain_predrawn(
        C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol, _block_size(C.shape[0])
    )


@njit(cache=True, parallel=True, error_model="numpy")
def _chain_predrawn(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol, bs):
    R = C.shape[0]
    d = C.shape[1]
    K = Z.shape[1]
    sqrtN = math.sqrt(N)
    invN = 1.0 / N
    two_a_lr = 2.0 * a * lr
    nblocks = (R + bs - 1) // bs
    for blk in prange(nblocks):
        r0 = blk * bs
        nb = min(bs, R - r0)
        Cl, Ll, ul, zl, x2l, xil, actf, trq, s, inv = _block_buffers(d, bs)
        _load_block(C, active, Cl, actf, r0, nb, d)
        for t in range(K):
            for l in range(nb):
                for i in range(d):
                    zl[i, l] = Z[r0 + l, t, i]
                x2l[l] = X2[r0 + l, t]
                xil[l] = XI[r0 + l, t]
            _block_step(
                Cl, Ll, ul, zl, x2l, xil, actf, trq, s, inv, nb, d, p, ps, a, b, two_a_lr, noise, sqrtN, invN, tol
            )
            _check(Cl, actf, trq, limit, active, div_step, r0, nb, d, step0 + t + 1)
        _store_block(C, Cl, r0, nb, d)


@njit(cache=True)
def zig_normals(state, n):
    """n standard normals from one xoroshiro128++ ``state`` (2,) uint64 (for testing the sampler)."""
    s0 = state[0]
    s1 = state[1]
    out = np.empty(n)
    for i in range(n):
        x, s0, s1 = _normal(s0, s1)
        out[i] = x
    state[0] = s0
    state[1] = s1
    return out


class NumbaChain:
    """The fused engine: per-replica xoroshiro128++ streams seeded from the role "chain"; the
    tracker's ``active`` and ``step`` arrays are updated in place by the kernel."""

    name = "numba"

    def __init__(self, C, div, seed, p, ps, N, prm, xp):
        self.C = np.ascontiguousarray(C)
        self.div, self.p, self.ps, self.N, self.prm = div, p, ps, N, prm
        self.states = replica_keys(seed, C.shape[0], "chain")
        self.limit = np.ascontiguousarray(div.limit, dtype=np.float64)

    def advance(self, pos: int, n: int) -> None:
        prm = self.prm
        chain_rng(
            self.C,
            self.states,
            self.div.active,
            self.div.step,
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
        return self.C
