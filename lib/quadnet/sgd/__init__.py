"""One-pass SGD simulators: the literal algorithm in weight space, and the exact overlap chain.

:func:`sgd_weights` runs w_i ← w_i + (2aγ/√N)(y − ŷ) λ_i x with one fresh x ~ N(0, I_N) per step
(SCIENCE.md §1). :func:`sgd_overlaps` runs the Markov chain of the overlaps that has *exactly*
the same law at finite N (SCIENCE.md §4): conditional on the past, (λ, ν) ~ N(0, C) with
C = [[Q, M], [Mᵀ, P]], and |x|² = uᵀC⁺u + χ²_{N−r} independently, so a step costs O(r³) instead
of O(pN). Both return an :class:`SGDTrajectory` (a :class:`quadnet.ode.Trajectory` with extra
fields), time axis first, overlaps in float64.

Random numbers and determinism
------------------------------
On NumPy every replica has its own streams, spawned from ``seed`` (``Generator.spawn``): replica
r of a batch of R draws the same numbers as replica r of any larger batch with the same seed,
whatever the other replicas do (diverge, or not). So a diverging replica leaves the others'
numbers untouched, and the first R' replicas of a run are reproduced by a run of R' replicas.
Chunking of the steps (and the output times) does not change the numbers. The fused kernel
(``method="numba"``) draws inside the kernel with a per-replica xoroshiro128++ stream seeded
from the same children: deterministic whatever the thread scheduling, same per-replica
property, but other numbers than ``method="numpy"`` (same law). On CuPy one generator draws
for the whole batch (numbers depend on R; deterministic for a given seed and R).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from ._common import tr as _tr
from .backend import array_module, to_numpy
from .model import make_rng
from .ode import Trajectory
from .overlaps import _loss
from .theory import warn_above_critical

__all__ = ["SGDTrajectory", "sgd_weights", "sgd_overlaps", "numba_available"]

#: default blow-up factor: tr Q beyond BLOWUP × max(tr Q(0), (b/a) tr P, 1) counts as divergence
BLOWUP = 1e3
#: working-memory budget (bytes) for the inputs of one chunk of sgd_weights
_CHUNK_BYTES = 64 * 2**20
_MAX_CHUNK_STEPS = 16
#: semidefinite Cholesky: a pivot ≤ _SD_TOL × C_jj is a zero direction (rounding is ~1e-15 C_jj)
_SD_TOL = 1e-12
#: steps per call of the chain (numbers do not depend on it; it sets the progress granularity)
_CHAIN_SEGMENT = 1 << 20
_CHAIN_DRAW = 512


@dataclass(frozen=True)
class SGDTrajectory(Trajectory):
    """A :class:`~quadnet.ode.Trajectory` of one-pass SGD (``R``, ``Q_init`` and
    ``distance_to_init()`` are inherited; set with ``track_init=True``), plus

    Attributes
    ----------
    steps : (T,) int      SGD steps done at each output time; ``alpha = steps / N`` exactly
    N : int               input dimension
    W : (*batch, p, N) or None      final weights (:func:`sgd_weights` only; NaN where diverged)
    method : str          'weights', 'numpy' or 'numba'
    """

    steps: Any = None
    N: int = 0
    W: Any = None
    method: str = ""


def numba_available() -> bool:
    """True when the fused numba kernel of the chain can be used here."""
    try:
        _kernel()
    except Exception:
        return False
    return True


def _kernel():
    from . import _chain_kernel  # imports numba; compiled on first call (cached on disk)

    return _chain_kernel


# --------------------------------------------------------------------------- shared helpers


def _steps(alphas: Any, N: int) -> np.ndarray:
    al = v.alphas(alphas)
    steps = np.rint(al * N).astype(np.int64)
    same = np.nonzero(np.diff(steps) == 0)[0]
    if same.size:
        i = int(same[0])
        raise ValueError(
            f"alphas must map to distinct step counts round(α N): α = {al[i]:g} and {al[i + 1]:g} both give "
            f"{steps[i]} steps at N = {N}; space the output times by at least 1/N"
        )
    return steps


def _params(a, b, lr, noise, blowup):
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.positive("lr", lr, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    blowup = v.positive("blowup", blowup, array=False)
    if blowup <= 1:
        raise ValueError(f"blowup must be > 1, got {blowup}")
    return a, b, lr, noise, blowup


def _replica_rngs(seed: Any, R: int, streams: int, role: str) -> list:
    """R lists of ``streams`` independent NumPy Generators of ``role``, replica r's depending only
    on (seed, role, r)."""
    root = make_rng(seed, "numpy", role=role)
    return [child.spawn(streams) for child in root.spawn(R)]


def _progress(progress: bool, total: int, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=int(total), desc=desc, unit="step", unit_scale=True)


# --------------------------------------------------------------------------- weight space


def _check_weights(name: str, W: Any, xp: Any) -> Any:
    """Real, finite, shape (..., rows, N); keeps the dtype (no float64 copy of big arrays)."""
    arr = v.finite_array(name, W, xp, keep_dtype=True)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., rows, N), got shape {arr.shape}")
    if arr.shape[-2] < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    return arr


def _fill_normals(rngs, rows, X, K, pool, dtype):
    """X[i, :K] ← K·N standard normals of replica rows[i]'s stream, in parallel threads
    (NumPy releases the GIL while filling)."""

    def job(idx):
        for i in idx:
            rngs[rows[i]][0].standard_normal(dtype=dtype, out=X[i, :K])

    n = len(rows)
    if pool is None or n == 1:
        job(range(n))
        return
    parts = [range(i, n, pool._max_workers) for i in range(pool._max_workers)]
    for f in [pool.submit(job, part) for part in parts if len(part)]:
        f.result()


def sgd_weights(W0, W_star, a, b, lr, alphas, *, noise=0.0, seed=None, dtype=None, track_init=False,
                blowup=BLOWUP, progress=False):
    """One-pass SGD in weight space, literally: w_i ← w_i + (2aγ/√N)(y − ŷ) λ_i x, x ~ N(0, I_N) fresh.

    Replicas are batched along the leading axes and advanced together. Inputs are drawn in
    chunks of up to 16 steps (and, for large N, a few replicas at a time), never more than
    ~64 MB at once: memory is O(R·p·N + chunk) whatever the number of steps. Within a chunk the
    steps are exact but blocked: with G = XXᵀ/N the fields of step t are λ_t = W x_t/√N +
    Σ_{s<t} δ̃_s G_{st}, so the heavy work is three matrix products per chunk (BLAS level 3)
    instead of 3K matrix–vector passes over W.

    Parameters
    ----------
    W0 : array (..., p, N)
        Initial student weights (components O(1)); not modified.
    W_star : array (..., p*, N)
        Teacher weights, broadcast against the batch of ``W0`` (e.g. one teacher (p*, N) for all).
    a, b, lr : float > 0
        Readouts and plain SGD step γ.
    alphas : (T,) increasing, ≥ 0
        Output times; α is converted to round(α N) steps (these must be distinct).
    noise : float ≥ 0
        Label noise σ: y = b|ν|² + σξ.
    seed : int, SeedSequence, Generator or None
        Randomness (see the module docstring: per-replica streams on NumPy).
    dtype : float64 (default) or float32
        Precision of the weights and inputs. Overlaps are always accumulated and returned in
        float64; float32 gives the same law of the overlaps (tested) at about half the cost.
    track_init : bool
        Also return R = W W(0)ᵀ/N (keeps a copy of W(0)).
    blowup : float > 1
        Divergence: tr Q beyond ``blowup`` × max(tr Q(0), (b/a) tr P, 1), or non-finite.
    progress : bool
        Show a tqdm progress bar.

    With W*W*ᵀ/N = I and ``lr`` above :func:`~quadnet.critical_lr` a
    :class:`~quadnet.CriticalStepWarning` (a ``RuntimeWarning``) is issued; ``diverged`` still
    reports what happens. Invalid input raises ``ValueError``/``TypeError`` naming the parameter.

    Returns
    -------
    SGDTrajectory with alpha = steps/N (T,), Q (T, *batch, p, p), M (T, *batch, p, p*), loss
    (population loss of the overlaps) (T, *batch), diverged/alpha_diverged (*batch), W (final
    weights, NaN where diverged), steps, N, R and Q_init (``track_init``). A diverged replica is
    NaN from the step where it was detected on; the others are unaffected.
    """
    xp = array_module(W0, W_star)
    a, b, lr, noise, blowup = _params(a, b, lr, noise, blowup)
    W0 = _check_weights("W0", W0, xp)
    W_star = _check_weights("W_star", W_star, xp)
    p, N = W0.shape[-2], W0.shape[-1]
    ps = W_star.shape[-2]
    if W_star.shape[-1] != N:
        raise ValueError(f"W0 and W_star must share the input dimension N, got {W0.shape} and {W_star.shape}")
    try:
        batch = tuple(np.broadcast_shapes(W0.shape[:-2], W_star.shape[:-2]))
    except ValueError:
        raise ValueError(f"batch shapes of W0 {W0.shape[:-2]} and W_star {W_star.shape[:-2]} do not broadcast") from None
    if dtype is None:
        dtype = np.float64
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from None
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    steps = _steps(alphas, N)
    R = int(np.prod(batch)) if batch else 1

    W = xp.array(xp.broadcast_to(W0, batch + (p, N)).reshape(R, p, N), dtype=dtype)  # working copy
    W_init = W.copy() if track_init else None
    ws_batch = int(np.prod(W_star.shape[:-2])) if W_star.ndim > 2 else 1
    if ws_batch == 1:
        Ws = xp.asarray(W_star.reshape(1, ps, N), dtype=dtype)
    else:
        Ws = xp.array(xp.broadcast_to(W_star, batch + (ps, N)).reshape(R, ps, N), dtype=dtype)
    Ws64 = Ws.astype(xp.float64, copy=False)
    P = Ws64 @ xp.swapaxes(Ws64, -1, -2) / N  # (1 or R, p*, p*)
    del Ws64
    warn_above_critical("sgd_weights", P, xp, p, ps, a, b, lr, noise)

    itemsize = dtype.itemsize
    K_max = int(max(1, min(_MAX_CHUNK_STEPS, _CHUNK_BYTES // (N * itemsize))))
    Rg = int(max(1, min(R, _CHUNK_BYTES // (K_max * N * itemsize))))
    groups = [(r0, min(R, r0 + Rg)) for r0 in range(0, R, Rg)]
    X = xp.empty((Rg, K_max, N), dtype=dtype)
    on_numpy = xp is np
    if on_numpy:
        rngs = _replica_rngs(seed, R, 2, "sgd")  # [inputs, label noise] per replica
        workers = max(1, min(os.cpu_count() or 1, 8, Rg))
    else:
        rng = make_rng(seed, "cupy", role="sgd")
        workers = 1

    def overlaps_of(r0, r1):
        Wg = W[r0:r1].astype(xp.float64, copy=False)
        Wsg = (Ws if Ws.shape[0] == 1 else Ws[r0:r1]).astype(xp.float64, copy=False)
        Q = Wg @ xp.swapaxes(Wg, -1, -2) / N
        M = Wg @ xp.swapaxes(Wsg, -1, -2) / N
        Rm = None
        if track_init:
            Rm = Wg @ xp.swapaxes(W_init[r0:r1].astype(xp.float64, copy=False), -1, -2) / N
        return Q, M, Rm

    trQ = xp.empty(R)
    for r0, r1 in groups:
        trQ[r0:r1] = _tr(overlaps_of(r0, r1)[0], xp)
    Q_init = None
    limit = blowup * xp.maximum(xp.maximum(trQ, (b / a) * _tr(P, xp)), 1.0)
    if track_init:
        Q_init = xp.empty((R, p, p))
        for r0, r1 in groups:
            Q_init[r0:r1] = overlaps_of(r0, r1)[0]

    T = steps.size
    Q_out = xp.full((T, R, p, p), xp.nan)
    M_out = xp.full((T, R, p, ps), xp.nan)
    R_out = xp.full((T, R, p, p), xp.nan) if track_init else None
    active = np.ones(R, dtype=bool)  # host copy
    act = xp.ones(R)
    div_step = np.full(R, -1, dtype=np.int64)
    two_a_lr = 2.0 * a * lr
    sqrtN = math.sqrt(N)

    def record(ti):
        for r0, r1 in groups:
            Q, M, Rm = overlaps_of(r0, r1)
            ok = xp.asarray(active[r0:r1])[:, None, None]
            Q_out[ti, r0:r1] = xp.where(ok, Q, xp.nan)
            M_out[ti, r0:r1] = xp.where(ok, M, xp.nan)
            if track_init:
                R_out[ti, r0:r1] = xp.where(ok, Rm, xp.nan)

    def chunk(pos, K, pool):
        for r0, r1 in groups:
            nr = r1 - r0
            Xg = X[:nr, :K]
            if on_numpy:
                _fill_normals(rngs, list(range(r0, r1)), X, K, pool, dtype)
                xi = np.stack([rngs[r][1].standard_normal(K) for r in range(r0, r1)]) if noise > 0 else None
            else:
                Xg[...] = rng.standard_normal((nr, K, N), dtype=dtype)
                xi = rng.standard_normal((nr, K)) if noise > 0 else None
            Xt = xp.swapaxes(Xg, -1, -2)
            Wg = W[r0:r1]
            Wsg = Ws if Ws.shape[0] == 1 else Ws[r0:r1]
            A = (Wg @ Xt).astype(xp.float64, copy=False) / sqrtN  # (nr, p, K): W(chunk start) x_t/√N
            V = (Wsg @ Xt).astype(xp.float64, copy=False) / sqrtN  # (nr, p*, K)
            G = (Xg @ Xt).astype(xp.float64, copy=False) / N  # (nr, K, K)
            y = b * xp.sum(V * V, axis=1)
            if xi is not None:
                y = y + noise * xp.asarray(xi)
            Dt = xp.zeros((nr, p, K))  # δ̃_t = 2aγ e_t λ_t; the update is W += Dt Xg/√N
            trq = trQ[r0:r1]
            hist = xp.empty((nr, K))
            actg = act[r0:r1]
            for t in range(K):
                lam = A[:, :, t]
                if t:
                    lam = lam + xp.einsum("rps,rs->rp", Dt[:, :, :t], G[:, :t, t])
                e = y[:, t] - a * xp.sum(lam * lam, axis=1)
                d = (two_a_lr * e * actg)[:, None] * lam
                Dt[:, :, t] = d
                trq = trq + (2 * xp.sum(d * lam, axis=1) + xp.sum(d * d, axis=1) * G[:, t, t]) / N
                hist[:, t] = trq
            Wg += (Dt / sqrtN).astype(dtype, copy=False) @ Xg
            trQ[r0:r1] = trq
            # divergence: first step of the chunk where tr Q left the bound (or turned non-finite)
            bad = ~(hist <= limit[r0:r1, None])
            bad_h = to_numpy(xp.any(bad, axis=1)) & active[r0:r1]
            if bad_h.any():
                first = to_numpy(xp.argmax(bad, axis=1))
                for i in np.nonzero(bad_h)[0]:
                    r = r0 + int(i)
                    active[r] = False
                    div_step[r] = pos + int(first[i]) + 1
                    act[r] = 0.0
                    W[r] = 0  # frozen, harmless; reported as NaN
                    trQ[r] = 0.0

    bar = _progress(progress, steps[-1], "sgd_weights")
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            pos = 0
            for ti, target in enumerate(steps):
                while pos < target:
                    K = int(min(K_max, target - pos))
                    chunk(pos, K, pool)
                    pos += K
                    if bar is not None:
                        bar.update(K)
                record(ti)
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()

    W[xp.asarray(~active)] = xp.nan
    loss = _loss(Q_out, M_out, P[None], a, b, noise * noise, xp)
    alpha_div = np.where(active, np.nan, div_step / N)
    return SGDTrajectory(
        alpha=steps / N,
        Q=Q_out.reshape((T,) + batch + (p, p)),
        M=M_out.reshape((T,) + batch + (p, ps)),
        loss=loss.reshape((T,) + batch),
        diverged=xp.asarray(~active).reshape(batch),
        alpha_diverged=xp.asarray(alpha_div).reshape(batch),
        steps=steps,
        N=int(N),
        R=None if R_out is None else R_out.reshape((T,) + batch + (p, p)),
        Q_init=None if Q_init is None else Q_init.reshape(batch + (p, p)),
        W=W.reshape(batch + (p, N)),
        method="weights",
        lr=lr,
        eta=a * lr,
    )


# --------------------------------------------------------------------------- overlap chain


def _sd_cholesky(C, tol, xp):
    """Batched semidefinite Cholesky, the same algorithm as the fused kernel: lower L with
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
            t = C[:, j + 1:, j] - (L[:, j + 1:, :j] @ Lj[:, :, None])[:, :, 0]
            L[:, j + 1:, j] = xp.where(ok[:, None], t / xp.where(ok, ljj, 1.0)[:, None], 0.0)
    return L


def _psd_sqrt(C, tol, xp):
    """LAPACK Cholesky when every pivot is clearly positive, else the semidefinite one (always the
    latter on CuPy, whose batched Cholesky does not report failures reliably)."""
    if xp is not np:
        return _sd_cholesky(C, tol, xp)
    try:
        L = xp.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return _sd_cholesky(C, tol, xp)
    diagL = xp.diagonal(L, axis1=-2, axis2=-1)
    if bool(xp.all(diagL * diagL > tol * xp.diagonal(C, axis1=-2, axis2=-1))):  # False on NaN
        return L
    return _sd_cholesky(C, tol, xp)


def chain_steps_numpy(C, Z, X2, XI, active, div_step, step0, p, ps, N, a, b, lr, noise, limit, tol, xp=np):
    """Reference implementation of K chain steps on pre-drawn numbers (same contract as the
    fused ``chain_predrawn``): C (R, d, d) updated in place; Z (R, K, d) normals; X2 (R, K) = |x|²;
    XI (R, K) label-noise normals; ``active`` (host bool) and ``div_step`` (host int) updated."""
    K = Z.shape[1]
    sqrtN = math.sqrt(N)
    act = xp.asarray(active.astype(np.float64))
    for t in range(K):
        L = _psd_sqrt(C, tol, xp)
        z = Z[:, t, :]
        u = (L @ z[:, :, None])[:, :, 0]
        lam = u[:, :p]
        e = b * xp.sum(u[:, p:p + ps] ** 2, axis=1) - a * xp.sum(lam * lam, axis=1)
        if noise > 0:
            e = e + noise * XI[:, t]
        c = (2.0 * a * lr) * e / sqrtN * act
        kq = 2.0 * c / sqrtN + c * c * X2[:, t] / N
        C[:, :p, :p] += kq[:, None, None] * (lam[:, :, None] * lam[:, None, :])
        blk = (c / sqrtN)[:, None, None] * (lam[:, :, None] * u[:, None, p:])
        C[:, :p, p:] += blk
        C[:, p:, :p] += xp.swapaxes(blk, -1, -2)
        trq = _tr(C[:, :p, :p], xp)
        bad = to_numpy(~(trq <= limit)) & active
        if bad.any():
            idx = np.nonzero(bad)[0]
            active[idx] = False
            div_step[idx] = step0 + t + 1
            act[xp.asarray(idx)] = 0.0
            C[xp.asarray(idx)] = xp.eye(C.shape[-1])  # frozen and harmless; reported as NaN


class _HostDraws:
    """Per-replica NumPy streams [z, χ², ξ] for the reference chain."""

    def __init__(self, seed, R, d, N, noise):
        self.rngs = _replica_rngs(seed, R, 3, "chain")
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


class _DeviceDraws:
    """One CuPy generator for the whole batch."""

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


def _gram0(Q0, M0, P, track_init, xp):
    """C(0) = [[Q, M, Q0], [Mᵀ, P, M0ᵀ], [Q0, M0, Q0]] (last block row/column only with track_init)."""
    Mt = xp.swapaxes(M0, -1, -2)
    if not track_init:
        return xp.concatenate([xp.concatenate([Q0, M0], -1), xp.concatenate([Mt, P], -1)], -2)
    top = xp.concatenate([Q0, M0, Q0], -1)
    mid = xp.concatenate([Mt, P, Mt], -1)
    return xp.concatenate([top, mid, top], -2)


def sgd_overlaps(Q0, M0, P, N, a, b, lr, alphas, *, noise=0.0, seed=None, track_init=False, method="auto",
                 blowup=BLOWUP, progress=False):
    """Exact finite-N simulation of one-pass SGD in overlap space (same law as :func:`sgd_weights`).

    The state is the Gram matrix C of [W; W*] (and W(0) with ``track_init``) divided by N. Each
    step draws u = (λ, ν[, λ0]) = L z with L a semidefinite Cholesky factor of C (zero columns
    for zero pivots, so rank-deficient C is fine: with ``track_init`` C has rank p + p* at α = 0)
    and |x|² = |z|² + χ²_{N−d} (d = dim u): uᵀC⁺u is the sum of z_i² over the non-zero columns,
    and each of the d − r remaining z_i² is the χ²_1 of a null direction, so this is exactly
    uᵀC⁺u + χ²_{N−r}. Then (SCIENCE.md §4), with δ = 2aγ(y − ŷ)λ/√N,
    Q += (δλᵀ + λδᵀ)/√N + δδᵀ|x|²/N, M += δνᵀ/√N, R += δλ0ᵀ/√N. Cost O(d³) per step,
    independent of N; float64 throughout.

    Parameters
    ----------
    Q0 : (..., p, p), M0 : (..., p, p*), P : (..., p*, p*)
        Initial overlaps (batched over replicas; broadcast together). [[Q0, M0], [M0ᵀ, P]] must
        be positive semidefinite (a Gram matrix).
    N : int
        Input dimension; N ≥ d = p + p* (2p + p* with ``track_init``).
    a, b, lr, alphas, noise, seed, blowup, progress
        As in :func:`sgd_weights`.
    track_init : bool
        Also track R = W W(0)ᵀ/N from R(0) = Q0 (returned as ``R``, with ``Q_init`` = Q0), so
        ``distance_to_init()`` = tr Q − 2 tr R + tr Q0 = ‖W − W(0)‖²/N.
    method : 'auto', 'numba' or 'numpy'
        'numba': the fused CPU kernel (replicas in parallel, random numbers drawn in the kernel);
        'numpy': the NumPy/CuPy reference (also the only one for CuPy inputs); 'auto': numba when
        it imports and the inputs are NumPy arrays. Both give the same law, different numbers.

    With P = I and ``lr`` above :func:`~quadnet.critical_lr` a :class:`~quadnet.CriticalStepWarning`
    (a ``RuntimeWarning``) is issued; ``diverged`` still reports what happens. Invalid input
    (shapes, non-finite values, a non-PSD Gram matrix, N < d, ...) raises ``ValueError``/``TypeError``
    naming the parameter.

    Returns
    -------
    SGDTrajectory (``W`` is None). Diverged replicas are frozen at detection and NaN afterwards.
    """
    xp = array_module(Q0, M0, P)
    Q0, M0, P = v.overlap_triple(Q0, M0, P, xp, names=("Q0", "M0", "P"))
    N = v.integer("N", N)
    a, b, lr, noise, blowup = _params(a, b, lr, noise, blowup)
    if method not in ("auto", "numba", "numpy"):
        raise ValueError(f"method must be 'auto', 'numba' or 'numpy', got {method!r}")
    if method == "numba":
        if xp is not np:
            raise ValueError("method='numba' runs on the CPU; got CuPy arrays (use method='numpy' or 'auto')")
        try:
            _kernel()
        except Exception as exc:
            raise ImportError(f"method='numba' needs numba (pip install numba): {exc}") from exc
    use_numba = method == "numba" or (method == "auto" and xp is np and numba_available())
    track_init = bool(track_init)
    p, ps = M0.shape[-2], M0.shape[-1]
    d = p + ps + (p if track_init else 0)
    if N < d:
        raise ValueError(f"N must be ≥ {d} (= dimension of the fields u{' with track_init' if track_init else ''}), got N = {N}")
    steps = _steps(alphas, N)
    warn_above_critical("sgd_overlaps", P, xp, p, ps, a, b, lr, noise)

    batch = tuple(np.broadcast_shapes(Q0.shape[:-2], M0.shape[:-2], P.shape[:-2]))
    R = int(np.prod(batch)) if batch else 1
    Qb = xp.broadcast_to(Q0, batch + (p, p)).reshape(R, p, p)
    Mb = xp.broadcast_to(M0, batch + (p, ps)).reshape(R, p, ps)
    Pb = xp.broadcast_to(P, batch + (ps, ps)).reshape(R, ps, ps)
    for name, S in (("Q0", Qb), ("P", Pb)):
        if not bool(xp.allclose(S, xp.swapaxes(S, -1, -2), rtol=1e-10, atol=1e-12)):
            raise ValueError(f"{name} must be symmetric")
    C = xp.ascontiguousarray(_gram0(Qb, Mb, Pb, track_init, xp))
    C = 0.5 * (C + xp.swapaxes(C, -1, -2))
    ev = xp.linalg.eigvalsh(C[:, : p + ps, : p + ps])
    scale = xp.maximum(xp.max(xp.abs(ev), axis=-1), 1e-300)
    if not bool(xp.all(ev[:, 0] >= -1e-9 * scale)):
        raise ValueError("Q0, M0, P must form a positive semidefinite Gram matrix [[Q0, M0], [M0ᵀ, P]]")

    trQ0 = _tr(Qb, xp)
    limit = blowup * xp.maximum(xp.maximum(trQ0, (b / a) * _tr(Pb, xp)), 1.0)
    T = steps.size
    C_out = xp.full((T, R, d, d), xp.nan)
    active = np.ones(R, dtype=bool)
    div_step = np.full(R, -1, dtype=np.int64)

    if use_numba:
        ck = _kernel()
        C = np.ascontiguousarray(C)
        states = ck.seed_states([g[0] for g in _replica_rngs(seed, R, 1, "chain")])
        lim_h = np.ascontiguousarray(to_numpy(limit), dtype=np.float64)

        def advance(pos, n):
            ck.chain_rng(C, states, active, div_step, pos, n, p, ps, N, a, b, lr, noise, lim_h, _SD_TOL)
    else:
        draws = (_HostDraws if xp is np else _DeviceDraws)(seed, R, d, N, noise)

        def advance(pos, n):
            done = 0
            while done < n:
                k = min(_CHAIN_DRAW, n - done)
                Z, X2, XI = draws(k, xp)
                chain_steps_numpy(C, Z, X2, XI, active, div_step, pos + done, p, ps, N, a, b, lr, noise,
                                  limit, _SD_TOL, xp)
                done += k

    bar = _progress(progress, steps[-1], f"sgd_overlaps[{'numba' if use_numba else 'numpy'}]")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            pos = 0
            for ti, target in enumerate(steps):
                while pos < target:
                    n = int(min(_CHAIN_SEGMENT, target - pos))
                    advance(pos, n)
                    pos += n
                    if bar is not None:
                        bar.update(n)
                ok = xp.asarray(active)[:, None, None]
                C_out[ti] = xp.where(ok, xp.asarray(C), xp.nan)
    finally:
        if bar is not None:
            bar.close()

    Q = C_out[..., :p, :p]
    M = C_out[..., :p, p:p + ps]
    loss = _loss(Q, M, Pb[None], a, b, noise * noise, xp)
    alpha_div = np.where(active, np.nan, div_step / N)
    return SGDTrajectory(
        alpha=steps / N,
        Q=xp.ascontiguousarray(Q).reshape((T,) + batch + (p, p)),
        M=xp.ascontiguousarray(M).reshape((T,) + batch + (p, ps)),
        loss=loss.reshape((T,) + batch),
        diverged=xp.asarray(~active).reshape(batch),
        alpha_diverged=xp.asarray(alpha_div).reshape(batch),
        steps=steps,
        N=int(N),
        R=xp.ascontiguousarray(C_out[..., :p, p + ps:]).reshape((T,) + batch + (p, p)) if track_init else None,
        Q_init=Qb.reshape(batch + (p, p)).copy() if track_init else None,
        W=None,
        method="numba" if use_numba else "numpy",
        lr=lr,
        eta=a * lr,
    )

