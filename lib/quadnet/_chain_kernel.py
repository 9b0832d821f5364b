"""Fused CPU kernel (numba) for the exact finite-N overlap chain of :func:`quadnet.sgd_overlaps`.

One call advances every active replica by ``n_steps`` SGD steps; replicas run in parallel over
the cores (``prange``), each with its own random stream, so the numbers do not depend on thread
scheduling. Nothing is allocated inside the step loop: the Gram matrix C, its square root and the
fields live in per-replica scratch arrays allocated once per call.

State of a replica: C (d × d), the Gram matrix /N of the rows of [W; W*; W(0)] (the last block
only with ``track_init``), so C = [[Q, M, R], [Mᵀ, P, M0ᵀ], [Rᵀ, M0, Q0]]. One step:

    L      = semidefinite Cholesky of C           (zero columns for zero pivots)
    u      = L z,  z ~ N(0, I_d)                  u = (λ, ν, λ0)
    |x|²   = |z|² + χ²_{N−d}                      (exact whatever rank C has: the z_i of the
                                                   zero columns of L are the χ²_1 of the null
                                                   directions, independent of u)
    e      = b|ν|² − a|λ|² + σξ,   c = 2aγe/√N    (δ = cλ)
    Q     += (2c/√N + c²|x|²/N) λλᵀ
    [M, R] += (c/√N) λ (ν, λ0)ᵀ

Random numbers: xoroshiro128++ (Blackman & Vigna 2019) per replica, seeded from a NumPy
``SeedSequence`` child; normals by Marsaglia's polar method; χ²_k by Marsaglia–Tsang's exact
gamma sampler (k = 1: z²). ``chain_predrawn`` runs the same step on random numbers drawn outside
(used to check the kernel against the NumPy reference on identical numbers).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["chain_rng", "chain_predrawn", "seed_states", "SD_TOL"]

#: a pivot below SD_TOL × (its diagonal entry of C) is treated as zero (semidefinite Cholesky)
SD_TOL = 1e-12

_TWO53_INV = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _next_u64(st):
    s0 = st[0]
    s1 = st[1]
    result = _rotl(s0 + s1, 17) + s0
    s1 ^= s0
    st[0] = _rotl(s0, 49) ^ s1 ^ (s1 << np.uint64(21))
    st[1] = _rotl(s1, 28)
    return result


@njit(cache=True, inline="always")
def _uniform(st):
    """Uniform on the open interval (0, 1), 53 random bits."""
    return ((_next_u64(st) >> np.uint64(11)) + 0.5) * _TWO53_INV


@njit(cache=True, inline="always")
def _normal(st, spare):
    """Standard normal (Marsaglia polar method); spare[0] > 0 flags a cached value in spare[1]."""
    if spare[0] > 0.0:
        spare[0] = 0.0
        return spare[1]
    while True:
        v1 = 2.0 * _uniform(st) - 1.0
        v2 = 2.0 * _uniform(st) - 1.0
        s = v1 * v1 + v2 * v2
        if s < 1.0 and s > 0.0:
            break
    f = math.sqrt(-2.0 * math.log(s) / s)
    spare[0] = 1.0
    spare[1] = v2 * f
    return v1 * f


@njit(cache=True, inline="always")
def _chi2(st, spare, df, gd, gc):
    """χ² with ``df`` degrees of freedom, exactly: 2·Gamma(df/2) by Marsaglia–Tsang (df ≥ 2),
    z² (df = 1), 0 (df = 0). ``gd`` = df/2 − 1/3 and ``gc`` = 1/√(9 gd) are precomputed."""
    if df == 0:
        return 0.0
    if df == 1:
        g = _normal(st, spare)
        return g * g
    while True:
        x = _normal(st, spare)
        v = 1.0 + gc * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = _uniform(st)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return 2.0 * gd * v
        if math.log(u) < 0.5 * x2 + gd * (1.0 - v + math.log(v)):
            return 2.0 * gd * v


@njit(cache=True, inline="always")
def _sd_cholesky(C, L, d, tol):
    """Lower-triangular L with L Lᵀ = C for a PSD C (d × d), zero columns for zero pivots."""
    for j in range(d):
        s = C[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if s > tol * C[j, j]:
            ljj = math.sqrt(s)
            L[j, j] = ljj
            inv = 1.0 / ljj
            for i in range(j + 1, d):
                t = C[i, j]
                for k in range(j):
                    t -= L[i, k] * L[j, k]
                L[i, j] = t * inv
        else:
            L[j, j] = 0.0
            for i in range(j + 1, d):
                L[i, j] = 0.0


@njit(cache=True, inline="always")
def _step(C, L, u, z, d, p, ps, x2, xi, a, b, two_a_lr, noise, sqrtN, invN, tol):
    """One SGD step of the chain on C in place, given z (d normals), |x|² and ξ. Returns tr Q."""
    _sd_cholesky(C, L, d, tol)
    for i in range(d):
        t = 0.0
        for k in range(i + 1):
            t += L[i, k] * z[k]
        u[i] = t
    yhat = 0.0
    for i in range(p):
        yhat += u[i] * u[i]
    y = 0.0
    for i in range(p, p + ps):
        y += u[i] * u[i]
    e = b * y - a * yhat + noise * xi
    c = two_a_lr * e / sqrtN
    kq = 2.0 * c / sqrtN + c * c * x2 * invN
    cm = c / sqrtN
    # Q += kq λλᵀ (symmetric), [M, R] += cm λ (ν, λ0)ᵀ and the transposed block
    for i in range(p):
        li = u[i]
        for j in range(i + 1):
            C[i, j] += kq * li * u[j]
            C[j, i] = C[i, j]
        for j in range(p, d):
            C[i, j] += cm * li * u[j]
            C[j, i] = C[i, j]
    trq = 0.0
    for i in range(p):
        trq += C[i, i]
    return trq


@njit(cache=True, parallel=True, fastmath=False)
def chain_rng(C, states, spares, active, div_step, step0, n_steps, p, ps, N, a, b, lr, noise, limit, tol):
    """Advance each active replica of C (R, d, d) by ``n_steps`` steps with in-kernel random numbers.

    ``states`` (R, 2) uint64 xoroshiro128++ states and ``spares`` (R, 2) cached normals are
    updated in place. A replica whose tr Q turns non-finite or exceeds ``limit[r]`` is marked
    inactive, ``div_step[r]`` = the step count at which it was detected, and it stops there.
    """
    R = C.shape[0]
    d = C.shape[1]
    df = N - d
    gd = 0.5 * df - 1.0 / 3.0
    gc = 1.0 / math.sqrt(9.0 * gd) if df >= 2 else 0.0
    sqrtN = math.sqrt(N)
    invN = 1.0 / N
    two_a_lr = 2.0 * a * lr
    for r in prange(R):
        if not active[r]:
            continue
        Cr = C[r]
        st = states[r]
        sp = spares[r]
        L = np.zeros((d, d))
        u = np.empty(d)
        z = np.empty(d)
        for t in range(n_steps):
            zz = 0.0
            for i in range(d):
                g = _normal(st, sp)
                z[i] = g
                zz += g * g
            x2 = zz + _chi2(st, sp, df, gd, gc)
            xi = _normal(st, sp) if noise > 0.0 else 0.0
            trq = _step(Cr, L, u, z, d, p, ps, x2, xi, a, b, two_a_lr, noise, sqrtN, invN, tol)
            if not (trq <= limit[r]):  # also catches NaN
                active[r] = False
                div_step[r] = step0 + t + 1
                break


@njit(cache=True, parallel=True, fastmath=False)
def chain_predrawn(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol):
    """As :func:`chain_rng`, on pre-drawn numbers: Z (R, K, d) normals, X2 (R, K) the full |x|²,
    XI (R, K) label-noise normals; runs K steps."""
    R = C.shape[0]
    d = C.shape[1]
    K = Z.shape[1]
    sqrtN = math.sqrt(N)
    invN = 1.0 / N
    two_a_lr = 2.0 * a * lr
    for r in prange(R):
        if not active[r]:
            continue
        Cr = C[r]
        L = np.zeros((d, d))
        u = np.empty(d)
        for t in range(K):
            trq = _step(Cr, L, u, Z[r, t], d, p, ps, X2[r, t], XI[r, t], a, b, two_a_lr, noise, sqrtN, invN, tol)
            if not (trq <= limit[r]):
                active[r] = False
                div_step[r] = step0 + t + 1
                break


def seed_states(children) -> np.ndarray:
    """(R, 2) uint64 xoroshiro128++ states from R NumPy Generators (one per replica), never all-zero."""
    st = np.empty((len(children), 2), dtype=np.uint64)
    for r, g in enumerate(children):
        s = g.integers(0, 2**64, size=2, dtype=np.uint64, endpoint=False)
        if s[0] == 0 and s[1] == 0:  # probability 2^-128; the all-zero state is a fixed point
            s[1] = np.uint64(0x9E3779B97F4A7C15)
        st[r] = s
    return st
