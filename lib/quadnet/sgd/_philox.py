"""Random numbers inside the CUDA kernels (private): Philox4x32-10, uniforms, normals, χ².

Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3") is counter
based: block n of a stream is a pure function of (counter, key), so a kernel's numbers depend only
on the seed, the replica and the position in its stream — not on the launch configuration, the
thread scheduling or the other replicas. Each replica's 64-bit key is a Philox map of its index
under a key drawn from the role's stream of the seed (:func:`quadnet.sgd._plan.philox_keys`); tests
check this code and the host version against the Random123 known-answer vectors.

One block gives four 32-bit words, i.e. two 53-bit uniforms in (0, 1), i.e. two normals by the
Box–Muller transform (exact for exact uniforms). χ²_k is drawn exactly as 2·Gamma(k/2) by
Marsaglia–Tsang's rejection sampler (k = 1: z², k = 0: 0), the sampler of the CPU kernel.

Words are held in uint64 registers (the 32×32 → 64-bit products of the rounds do not overflow),
so the same code runs compiled and under numba's CUDA simulator.
"""

from __future__ import annotations

import math

from numba import cuda, float64, uint64

__all__ = ["philox", "uniform_pair", "normal_pair", "chi2"]

_M0 = uint64(0xD2511F53)
_M1 = uint64(0xCD9E8D57)
_W0 = uint64(0x9E3779B9)
_W1 = uint64(0xBB67AE85)
_MASK = uint64(0xFFFFFFFF)
_S32 = uint64(32)
_S5 = uint64(5)
_S6 = uint64(6)
_TWO26 = 67108864.0
_TWO53_INV = 1.0 / 9007199254740992.0
_TWO_PI = 2.0 * math.pi


@cuda.jit(device=True)
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter (c0, c1, c2, c3) under the key (k0, k1), 32-bit words in uint64."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = ((p1 >> _S32) ^ c1 ^ k0) & _MASK
        n2 = ((p0 >> _S32) ^ c3 ^ k1) & _MASK
        c1 = p1 & _MASK
        c3 = p0 & _MASK
        c0 = n0
        c2 = n2
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@cuda.jit(device=True)
def uniform_pair(key, n, tag):
    """Two uniforms in (0, 1) (53 bits each) from block ``n`` (uint64) of stream ``tag`` under ``key``."""
    w0, w1, w2, w3 = philox(n & _MASK, n >> _S32, tag & _MASK, tag >> _S32, key & _MASK, key >> _S32)
    u1 = (float64(w0 >> _S5) * _TWO26 + float64(w1 >> _S6) + 0.5) * _TWO53_INV
    u2 = (float64(w2 >> _S5) * _TWO26 + float64(w3 >> _S6) + 0.5) * _TWO53_INV
    return u1, u2


@cuda.jit(device=True)
def normal_pair(key, n, tag):
    """Two independent standard normals (Box–Muller) from block ``n`` of stream ``tag``."""
    u1, u2 = uniform_pair(key, n, tag)
    r = math.sqrt(-2.0 * math.log(u1))
    t = _TWO_PI * u2
    return r * math.cos(t), r * math.sin(t)


@cuda.jit(device=True)
def chi2(df, gd, gc, key, n, tag):
    """(χ²_df, next block): Marsaglia–Tsang for df ≥ 2 (gd = df/2 − 1/3, gc = 1/√(9 gd)), z² for
    df = 1, 0 for df = 0. Consumes blocks n, n+1, … of stream ``tag``."""
    if df == 0:
        return 0.0, n
    if df == 1:
        z, _ = normal_pair(key, n, tag)
        return z * z, n + uint64(1)
    while True:
        x, _ = normal_pair(key, n, tag)
        u, _ = uniform_pair(key, n + uint64(1), tag)
        n = n + uint64(2)
        v = 1.0 + gc * x
        if v <= 0.0:
            continue
        v = v * v * v
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return 2.0 * gd * v, n
        if math.log(u) < 0.5 * x2 + gd * (1.0 - v + math.log(v)):
            return 2.0 * gd * v, n
