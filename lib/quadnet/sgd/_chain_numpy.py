"""Reference engine of the exact overlap chain, array code for NumPy and CuPy (private).

The state of R replicas is C (R, d, d), the Gram matrix /N of the rows of [W; W*; W(0)] (the last
block only with ``track_init``). One step, for every replica at once:

    L = semidefinite Cholesky of C,  u = L z (z ~ N(0, I_d)),  u = (λ, ν, λ0)
    |x|² = |z|² + χ²_{N−d}
    e = b|ν|² − a|λ|² + σξ,  c = 2aγe/√N
    Q += (2c/√N + c²|x|²/N) λλᵀ,   [M, R] += (c/√N) λ (ν, λ0)ᵀ

Random numbers: on NumPy, per-replica streams [z, χ², ξ] (:class:`HostDraws`); on CuPy one
generator for the batch (:class:`DeviceDraws`). :func:`chain_steps` runs K steps on numbers drawn
beforehand, so the fused kernels can be checked against it on identical numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._common import tr
from ..backend import to_numpy
from ..model import make_rng
from ._plan import replica_rngs

__all__ = ["SD_TOL", "gram0", "sd_cholesky", "psd_sqrt", "chain_steps", "HostDraws", "DeviceDraws", "NumpyChain"]

#: semidefinite Cholesky: a pivot ≤ SD_TOL × C_jj is a zero direction (rounding is ~1e-15 C_jj)
SD_TOL = 1e-12
#: steps drawn at once (memory R × DRAW × d doubles)
DRAW = 512


def gram0(Q0: Any, M0: Any, P: Any, track_init: bool, xp: Any) -> Any:
    """C(0) = [[Q, M, Q0], [Mᵀ, P, M0ᵀ], [Q0, M0, Q0]] (last block row/column only with track_init)."""
    Mt = xp.swapaxes(M0, -1, -2)
    if not track_init:
        return xp.concatenate([xp.concatenate([Q0, M0], -1), xp.concatenate([Mt, P], -1)], -2)
    top = xp.concatenate([Q0, M0, Q0], -1)
    mid = xp.concatenate([Mt, P, Mt], -1)
    return xp.concatenate([top, mid, top], -2)


def sd_cholesky(C: Any, tol: float, xp: Any) -> Any:
    """Batched semidefinite Cholesky, the same algorithm as the fused kernels: lower L with
    L Lᵀ = C, a pivot ≤ tol × C_jj (a zero direction of C, up to rounding) gives a zero column."""
    d = C.shape[-1]
    L = xp.zeros_like(C)
    for j in range(d):
        Lj = L[:, j, :j]
        s = C[:, j, j] - xp.sum(Lj * Lj, axis=-1)
        ok = s > tol * C[:, j, j]
        ljj = xp.where(ok, xp.sqrt(xp.where(ok, s, 1.0)), 0.0)
        L[:, j, j] = ljj
        if j + 1 < d:
            t = C[:, j + 1 :, j] - (L[:, j + 1 :, :j] @ Lj[:, :, None])[:, :, 0]
            L[:, j + 1 :, j] = xp.where(ok[:, None], t / xp.where(ok, ljj, 1.0)[:, None], 0.0)
    return L


def psd_sqrt(C: Any, tol: float, xp: Any) -> Any:
    """LAPACK Cholesky when every pivot is clearly positive, else the semidefinite one (always the
    latter on CuPy, whose batched Cholesky does not report failures reliably)."""
    if xp is not np:
        return sd_cholesky(C, tol, xp)
    try:
        L = xp.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return sd_cholesky(C, tol, xp)
    diagL = xp.diagonal(L, axis1=-2, axis2=-1)
    if bool(xp.all(diagL * diagL > tol * xp.diagonal(C, axis1=-2, axis2=-1))):  # False on NaN
        return L
    return sd_cholesky(C, tol, xp)


def chain_steps(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol, xp=np):
    """K chain steps on pre-drawn numbers (the contract of the fused kernels' ``chain_predrawn``).

    C (R, d, d) is updated in place; Z (R, K, d) normals, X2 (R, K) the full |x|², XI (R, K)
    label-noise normals; ``active`` (host bool) and ``div_step`` (host int) are updated: a replica
    whose tr Q leaves ``limit`` (or turns non-finite) is frozen at the identity.
    """
    K = Z.shape[1]
    sqrtN = math.sqrt(N)
    act = xp.asarray(active.astype(np.float64))
    for t in range(K):
        L = psd_sqrt(C, tol, xp)
        u = (L @ Z[:, t, :, None])[:, :, 0]
        lam = u[:, :p]
        e = b * xp.sum(u[:, p : p + ps] ** 2, axis=1) - a * xp.sum(lam * lam, axis=1)
        if noise > 0:
            e = e + noise * XI[:, t]
        c = (2.0 * a * lr) * e / sqrtN * act
        kq = 2.0 * c / sqrtN + c * c * X2[:, t] / N
        C[:, :p, :p] += kq[:, None, None] * (lam[:, :, None] * lam[:, None, :])
        blk = (c / sqrtN)[:, None, None] * (lam[:, :, None] * u[:, None, p:])
        C[:, :p, p:] += blk
        C[:, p:, :p] += xp.swapaxes(blk, -1, -2)
        bad = to_numpy(~(tr(C[:, :p, :p], xp) <= limit)) & active
        if bad.any():
            idx = np.nonzero(bad)[0]
            active[idx] = False
            div_step[idx] = step0 + t + 1
            act[xp.asarray(idx)] = 0.0
            C[xp.asarray(idx)] = xp.eye(C.shape[-1])  # frozen and harmless; reported as NaN


class HostDraws:
    """Per-replica NumPy streams [z, χ², ξ] of the role "chain"."""

    def __init__(self, seed, R, d, N, noise):
        self.rngs = replica_rngs(seed, R, 3, "chain")
        self.d, self.df, self.noise = d, N - d, noise

    def __call__(self, K, xp):
        R = len(self.rngs)
        Z = np.empty((R, K, self.d))
        X2 = np.empty((R, K))
        XI = np.zeros((R, K))
        for r, (gz, gc, gx) in enumerate(self.rngs):
            gz.standard_normal(out=Z[r])
            X2[r] = gc.chisquare(self.df, K) if self.df > 0 else 0.0
            if self.noise > 0:
                gx.standard_normal(out=XI[r])
        X2 += np.sum(Z * Z, axis=-1)
        return xp.asarray(Z), xp.asarray(X2), xp.asarray(XI)


class DeviceDraws:
    """One CuPy generator (role "chain") for the whole batch: numbers depend on R."""

    def __init__(self, seed, R, d, N, noise):
        self.g = make_rng(seed, "cupy", role="chain")
        self.R, self.d, self.df, self.noise = R, d, N - d, noise

    def __call__(self, K, xp):
        Z = self.g.standard_normal((self.R, K, self.d))
        X2 = xp.sum(Z * Z, axis=-1)
        if self.df > 0:
            X2 += 2.0 * self.g.standard_gamma(0.5 * self.df, size=(self.R, K))
        XI = self.g.standard_normal((self.R, K)) if self.noise > 0 else xp.zeros((self.R, K))
        return Z, X2, XI


class NumpyChain:
    """The reference engine: draws ``DRAW`` steps at a time and runs :func:`chain_steps`.

    ``C`` (R, d, d) is the state (on the run's module), ``div`` the run's divergence tracker.
    """

    name = "numpy"

    def __init__(self, C, div, seed, p, ps, N, prm, xp):
        self.C, self.div, self.xp = C, div, xp
        self.p, self.ps, self.N, self.prm = p, ps, N, prm
        self.draws = (HostDraws if xp is np else DeviceDraws)(seed, C.shape[0], C.shape[-1], N, prm.noise)
        self.limit = xp.asarray(div.limit)

    def advance(self, pos: int, n: int) -> None:
        done = 0
        while done < n:
            k = min(DRAW, n - done)
            Z, X2, XI = self.draws(k, self.xp)
            chain_steps(
                self.C,
                Z,
                X2,
                XI,
                self.div.active,
                self.div.step,
                pos + done,
                self.p,
                self.ps,
                self.N,
                self.prm.a,
                self.prm.b,
                self.prm.lr,
                self.prm.noise,
                self.limit,
                SD_TOL,
                self.xp,
            )
            done += k

    def state(self) -> Any:
        """C (R, d, d) on the run's module, current."""
        return self.C
