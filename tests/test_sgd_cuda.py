"""The fused CUDA kernels (``method="cuda"``), checked without a GPU.

numba's CUDA simulator runs the kernels' Python source on the CPU, thread by thread; it must be
switched on (NUMBA_ENABLE_CUDASIM=1) before numba is imported, so ``test_kernels_in_simulator``
reruns this file in a subprocess with it set. The same tests run directly on a GPU (then on CuPy
arrays; ``benchmarks/gpu_check.sh``). The simulator is slow (milliseconds per replica-step), so the
sizes are tiny; the strong checks are the exact ones:

* Philox4x32-10 against Random123's known-answer vectors;
* each kernel on pre-drawn numbers against a NumPy emulation of one thread (chain) or one block
  (weights), written here independently, in the kernel's order of operations: identical numbers
  under the simulator (IEEE double, no fused multiply-add), within 1e-9 on a GPU (whose compiler
  fuses multiply-adds; rounding differences of order 1e-16 per step, accumulated over the steps);
* the emulation of the chain against the reference chain ``chain_steps`` (NumPy, LAPACK), to 1e-9.

Then, with the kernels drawing their own numbers: the in-kernel normals and χ² have the right law
(KS), and the chain and weight-space kernels have the law of the CPU engines (Welch + KS), with a
family-wise false-alarm rate FAMILY_ALPHA per test (Bonferroni); divergence is per replica;
replica streams and chunking do not change the numbers.

``test_kernels_compile_for_real_gpus`` compiles every kernel to PTX for sm_75 (T4, Colab) and sm_90
(H100/H200) with NVVM and assembles it with ptxas, where the CUDA toolchain is installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import quadnet as qn

try:  # a module global: the simulator swaps it inside kernels defined here
    from numba import cuda
except Exception:  # numba missing: every test here skips
    cuda = None

FAMILY_ALPHA = 1e-3
IN_SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
ROOT = Path(__file__).resolve().parents[1]


def _gpu_here() -> bool:
    if IN_SIM or not qn.cupy_available():
        return False
    from quadnet.sgd import _cuda

    return _cuda.kernels_available()


ON_GPU = _gpu_here()
RUN_HERE = IN_SIM or ON_GPU
here = pytest.mark.skipif(
    not RUN_HERE, reason="runs in the simulator subprocess (test_kernels_in_simulator) or on a GPU"
)
EXACT = IN_SIM  # bit-identical numbers under the simulator; 1e-9 on a GPU (fused multiply-adds)


def dev(x):
    """An array for the kernels: NumPy under the simulator, CuPy on a GPU."""
    if ON_GPU:
        import cupy

        return cupy.asarray(x)
    return np.array(x, order="C", copy=True)


def host(x):
    return np.asarray(qn.to_numpy(x))


def same(got, want):
    if EXACT:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- the simulator run


def test_kernels_in_simulator():
    """Every other test of this file, under numba's CUDA simulator in a fresh interpreter."""
    if IN_SIM:
        pytest.skip("already under the simulator")
    try:
        import numba  # noqa: F401
    except ImportError:
        pytest.skip("numba is not installed")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONHASHSEED="0")
    env.pop("QUADNET_BACKEND", None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-k",
        "not in_simulator and not compile",
        str(Path(__file__)),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = (res.stdout + res.stderr)[-4000:]
    assert res.returncode == 0, tail
    last = tail.strip().splitlines()[-1]
    assert " passed" in last and "skipped" not in last and "failed" not in last, tail


# --------------------------------------------------------------------------- Philox and samplers


def _draw_kernels():
    from quadnet.sgd import _philox

    @cuda.jit
    def philox_k(ctr, key, out):
        i = cuda.grid(1)
        if i < ctr.shape[0]:
            w = _philox.philox(ctr[i, 0], ctr[i, 1], ctr[i, 2], ctr[i, 3], key[i, 0], key[i, 1])
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = w[0], w[1], w[2], w[3]

    @cuda.jit
    def normals_k(key, tag, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i, 0], out[i, 1] = _philox.normal_pair(key, np.uint64(i), tag)

    @cuda.jit
    def chi2_k(key, df, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            gd = 0.5 * df - 1.0 / 3.0
            gc = 1.0 / math.sqrt(9.0 * gd) if df >= 2 else 0.0
            out[i], _ = _philox.chi2(df, gd, gc, key, np.uint64(0), np.uint64(i))

    return philox_k, normals_k, chi2_k


@here
def test_philox_known_answers():
    """Philox4x32-10 reproduces the known-answer vectors of the Random123 distribution (kat_vectors)."""
    ctr = np.array([[0, 0, 0, 0], [0xFFFFFFFF] * 4, [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344]], dtype=np.uint64)
    key = np.array([[0, 0], [0xFFFFFFFF] * 2, [0xA4093822, 0x299F31D0]], dtype=np.uint64)
    want = np.array(
        [
            [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8],
            [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD],
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ],
        dtype=np.uint64,
    )
    from quadnet.sgd._plan import philox4x32

    philox_k, _, _ = _draw_kernels()
    out = dev(np.zeros((3, 4), dtype=np.uint64))
    philox_k[1, 3](dev(ctr), dev(key), out)
    np.testing.assert_array_equal(host(out), want)
    np.testing.assert_array_equal(np.stack(philox4x32(*ctr.T, *key.T), axis=1), want)  # the host version too
    rng = np.random.default_rng(0)  # and the two agree on arbitrary words
    ctr, key = rng.integers(0, 2**32, (16, 4), dtype=np.uint64), rng.integers(0, 2**32, (16, 2), dtype=np.uint64)
    out = dev(np.zeros((16, 4), dtype=np.uint64))
    philox_k[1, 16](dev(ctr), dev(key), out)
    np.testing.assert_array_equal(host(out), np.stack(philox4x32(*ctr.T, *key.T), axis=1))


@here
def test_in_kernel_normals_and_chi2_have_their_law():
    """Box–Muller pairs: both coordinates N(0, 1) and uncorrelated; χ²_k for k = 1, 2, 7, 40 (KS).
    Six tests, Bonferroni: family-wise false-alarm rate FAMILY_ALPHA."""
    _, normals_k, chi2_k = _draw_kernels()
    n = 1024 if IN_SIM else 1 << 16
    out = dev(np.zeros((n, 2)))
    normals_k[-(-n // 64), 64](np.uint64(0x1234_5678_9ABC_DEF0), np.uint64(7), out)
    z = host(out)
    level = FAMILY_ALPHA / 6
    assert stats.kstest(z.ravel(), "norm").pvalue > level
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 5.0 / math.sqrt(n)  # 5 s.d.: two-sided 6e-7
    m = 256 if IN_SIM else 1 << 14
    for df in (1, 2, 7, 40):
        q = dev(np.zeros(m))
        chi2_k[-(-m // 64), 64](np.uint64(99 + df), np.int64(df), q)
        assert stats.kstest(host(q), "chi2", args=(df,)).pvalue > level, df


# --------------------------------------------------------------------------- chain: exact numbers


def _emulate_chain(C, Z, X2, XI, limit, p, ps, N, a, b, lr, noise, tol):
    """One kernel thread per replica, vectorized over replicas, in the kernel's order of operations."""
    C = C.copy()
    R, d = C.shape[0], C.shape[-1]
    active = np.ones(R, dtype=bool)
    div = np.full(R, -1, dtype=np.int64)
    sqrtN, invN, two_a_lr = math.sqrt(N), 1.0 / N, 2.0 * a * lr
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(Z.shape[1]):
            L = np.zeros_like(C)
            for j in range(d):
                s = C[:, j, j].copy()
                for k in range(j):
                    s = s - L[:, j, k] * L[:, j, k]
                m = np.where(s > tol * C[:, j, j], s, 0.0)
                L[:, j, j] = np.sqrt(m)
                inv = np.where(m > 0.0, 1.0 / L[:, j, j], 0.0)
                for i in range(j + 1, d):
                    s = C[:, i, j].copy()
                    for k in range(j):
                        s = s - L[:, i, k] * L[:, j, k]
                    L[:, i, j] = s * inv
            u = np.zeros((R, d))
            for i in range(d):
                s = np.zeros(R)
                for k in range(i + 1):
                    s = s + L[:, i, k] * Z[:, t, k]
                u[:, i] = s
            yh, yt = np.zeros(R), np.zeros(R)
            for i in range(p):
                yh = yh + u[:, i] * u[:, i]
            for i in range(p, p + ps):
                yt = yt + u[:, i] * u[:, i]
            e = b * yt - a * yh + noise * XI[:, t]
            c = two_a_lr * e / sqrtN
            kq = 2.0 * c / sqrtN + c * c * X2[:, t] * invN
            kc = c / sqrtN
            Cn = C.copy()
            for i in range(p):
                for j in range(i + 1):
                    Cn[:, i, j] = Cn[:, i, j] + kq * u[:, i] * u[:, j]
                    Cn[:, j, i] = Cn[:, i, j]
                for j in range(p, d):
                    Cn[:, i, j] = Cn[:, i, j] + kc * u[:, i] * u[:, j]
                    Cn[:, j, i] = Cn[:, i, j]
            trq = np.zeros(R)
            for i in range(p):
                trq = trq + Cn[:, i, i]
            C[active] = Cn[active]
            bad = active & ~(trq <= limit)
            active &= ~bad
            div[bad] = t + 1
            C[bad] = np.eye(d)
    return C, active, div


def _chain_case(R=7, p=3, ps=2, track=True, K=40, seed=5, N=400, noise=0.3):
    from quadnet.sgd import _chain_numpy as cn

    rng = np.random.default_rng(seed)
    Ws = qn.teacher(ps, N, seed=rng, backend="numpy")
    W0 = rng.standard_normal((R, p, N)) + 0.5 * rng.standard_normal((R, p, ps)) @ Ws
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    C = cn.gram0(Q0, M0, np.broadcast_to(Pm, (R, ps, ps)), track, np)
    C = 0.5 * (C + np.swapaxes(C, -1, -2))
    d = C.shape[-1]
    Z = rng.standard_normal((R, K, d))
    X2 = np.sum(Z * Z, axis=-1) + rng.chisquare(N - d, (R, K))
    XI = rng.standard_normal((R, K))
    C[3, :p, :p] *= 40.0  # replica 3 starts far out: it blows up
    limit = 1e3 * np.maximum(np.trace(C[:, :p, :p], axis1=1, axis2=2), 2.0)
    limit[3] = 1e3 * 3 * p
    return C, Z, X2, XI, limit, N, p, ps, noise


@here
@pytest.mark.parametrize("track", [False, True])
def test_chain_kernel_equals_emulation_on_same_numbers(track):
    """The GPU chain kernel on pre-drawn numbers = the emulation of its thread (identical under the
    simulator), including a rank-deficient start (track_init) and a diverging replica; and the
    emulation = the reference chain to 1e-9 (a different Cholesky and summation order)."""
    from quadnet.sgd import _chain_cuda as kc
    from quadnet.sgd import _chain_numpy as cn

    C, Z, X2, XI, limit, N, p, ps, noise = _chain_case(track=track)
    R = C.shape[0]
    Ce, ae, de = _emulate_chain(C, Z, X2, XI, limit, p, ps, N, 0.5, 1.0, 0.3, noise, cn.SD_TOL)
    assert not ae[3] and de[3] > 0, "the far-out replica should diverge"
    Cd, act, div = dev(C), dev(np.ones(R, dtype=np.uint8)), dev(np.full(R, -1, dtype=np.int64))
    kc.chain_predrawn(Cd, dev(Z), dev(X2), dev(XI), act, div, 0, p, ps, N, 0.5, 1.0, 0.3, noise, dev(limit), cn.SD_TOL)
    np.testing.assert_array_equal(host(act).astype(bool), ae)
    np.testing.assert_array_equal(host(div), de)
    same(host(Cd), Ce)
    # the emulation agrees with the reference implementation of the chain
    Cr, ar, dr = C.copy(), np.ones(R, dtype=bool), np.full(R, -1, dtype=np.int64)
    cn.chain_steps(Cr, Z, X2, XI, ar, dr, 0, p, ps, N, 0.5, 1.0, 0.3, noise, limit, cn.SD_TOL)
    np.testing.assert_array_equal(ar, ae)
    np.testing.assert_allclose(Ce[ae], Cr[ar], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- chain: own numbers

P, PS, A, B, LR = 2, 1, 0.5, 1.0, 0.2


def _overlaps(R, N, seed, scale=None):
    rng = np.random.default_rng(seed)
    Ws = qn.teacher(PS, N, seed=rng, backend="numpy")
    W0 = rng.standard_normal((R, P, N))
    if scale is not None:
        W0[scale[0]] *= scale[1]
    return W0, Ws, qn.overlaps_from_weights(W0, Ws)


def _chain(Q0, M0, Pm, N, alphas, seed, method="cuda", **kw):
    if method == "cuda":
        Q0, M0, Pm = dev(Q0), dev(M0), dev(Pm)
    return qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, alphas, seed=seed, method=method, **kw).to_numpy()


@here
def test_chain_kernel_streams_chunks_and_divergence():
    """Replica r's numbers depend only on (seed, r); splitting the steps between launches (output
    times) changes nothing; a replica started far out is flagged, NaN afterwards, and the others
    get exactly the numbers they get without it."""
    N = 40
    W0, Ws, (Q0, M0, Pm) = _overlaps(4, N, seed=1)
    t4 = _chain(Q0, M0, Pm, N, [0.5, 1.0], seed=3, noise=0.1)
    t2 = _chain(Q0[:2], M0[:2], Pm, N, [1.0], seed=3, noise=0.1)
    assert t4.method == "cuda"
    np.testing.assert_array_equal(t2.Q[-1], t4.Q[-1, :2])
    _, _, (Qb, Mb, Pb) = _overlaps(4, N, seed=1, scale=(1, 6.0))
    bad = _chain(Qb, Mb, Pb, N, np.linspace(0, 1.5, 4), seed=4)
    good = _chain(Q0, M0, Pm, N, np.linspace(0, 1.5, 4), seed=4)
    np.testing.assert_array_equal(bad.diverged, [False, True, False, False])
    assert 0 < bad.alpha_diverged[1] <= 1.5 and np.isnan(bad.loss[bad.alpha >= bad.alpha_diverged[1], 1]).all()
    np.testing.assert_array_equal(bad.Q[:, [0, 2, 3]], good.Q[:, [0, 2, 3]])


@here
def test_chain_kernel_same_law_as_cpu():
    """From the same start, the kernel's loss and tr Q at α = 2 have the law of the fused CPU
    kernel's (Welch + KS on each: 4 tests, Bonferroni, family-wise FAMILY_ALPHA)."""
    N, R = 30, (40 if IN_SIM else 2000)
    W0, Ws, (Q0, M0, Pm) = _overlaps(1, N, seed=2)
    Q0, M0 = np.repeat(Q0, R, 0), np.repeat(M0, R, 0)
    tg = _chain(Q0, M0, Pm, N, [2.0], seed=10, noise=0.2)
    tc = qn.sgd_overlaps(
        Q0[:1].repeat(2000, 0),
        M0[:1].repeat(2000, 0),
        Pm,
        N,
        A,
        B,
        LR,
        [2.0],
        seed=11,
        noise=0.2,
        method="numba" if qn.numba_available() else "numpy",
    )
    level = FAMILY_ALPHA / 4
    for x, y in (
        (tg.loss[-1], tc.loss[-1]),
        (np.trace(tg.Q[-1], axis1=-2, axis2=-1), np.trace(tc.Q[-1], axis1=-2, axis2=-1)),
    ):
        assert stats.ttest_ind(x, y, equal_var=False).pvalue > level
        assert stats.ks_2samp(x, y).pvalue > level


# --------------------------------------------------------------------------- weights: exact numbers


def _emulate_weights(W, Ws, X, XI, trQ, limit, a, b, lr, noise, threads):
    """One kernel block per replica, thread by thread, in the kernel's order of operations."""
    W, trQ = W.copy(), trQ.copy()
    R, p, N = W.shape
    ps, DT = Ws.shape[1], W.dtype.type
    active, div = np.ones(R, dtype=bool), np.full(R, -1, dtype=np.int64)
    sqrtN, npairs = math.sqrt(N), (N + 1) // 2
    for r in range(R):
        wsr = Ws[0 if Ws.shape[0] == 1 else r]
        for t in range(X.shape[1]):
            red = np.zeros((threads, p + ps + 1))
            for tid in range(threads):
                for j in range(tid, npairs, threads):
                    for i in (2 * j, 2 * j + 1):
                        if i < N:
                            xd = np.float64(DT(X[r, t, i]))
                            for k in range(p):
                                red[tid, k] += np.float64(W[r, k, i]) * xd
                            for m in range(ps):
                                red[tid, p + m] += np.float64(wsr[m, i]) * xd
                            red[tid, p + ps] += xd * xd
            s = threads // 2
            while s > 0:
                red[:s] += red[s : 2 * s]
                s //= 2
            tot = red[0]
            yt = 0.0
            for m in range(ps):
                yt += (tot[p + m] / sqrtN) * (tot[p + m] / sqrtN)
            yh = 0.0
            for k in range(p):
                yh += (tot[k] / sqrtN) * (tot[k] / sqrtN)
            e = b * yt + noise * XI[r, t] - a * yh
            dl, dd, coef = 0.0, 0.0, np.zeros(p)
            for k in range(p):
                lam = tot[k] / sqrtN
                dlt = 2.0 * a * lr * e * lam
                dl += dlt * lam
                dd += dlt * dlt
                coef[k] = dlt / sqrtN
            trQ[r] = trQ[r] + (2.0 * dl + dd * (tot[p + ps] / N)) / N
            if not trQ[r] <= limit[r]:
                active[r], div[r] = False, t + 1
                break
            x = X[r, t].astype(DT)
            for k in range(p):
                W[r, k] += DT(coef[k]) * x
    return W, trQ, active, div


@here
@pytest.mark.parametrize("dtype, shared", [(np.float64, True), (np.float64, False), (np.float32, True)])
def test_weights_kernel_equals_emulation_on_same_numbers(dtype, shared, monkeypatch):
    """The weight-space kernel on pre-drawn inputs = the emulation of its blocks (identical under
    the simulator): weights in shared and in global memory, float64 and float32, four threads per
    block (a two-level reduction), an odd N, label noise and a diverging replica."""
    from quadnet.sgd import _weights_cuda as wc

    if not shared:
        monkeypatch.setattr(wc, "SHARED_BYTES", 0)
    rng = np.random.default_rng(3)
    R, p, ps, N, K = 3, 2, 1, 11, 6
    W = rng.standard_normal((R, p, N)).astype(dtype)
    W[2] *= 5.0
    Ws = qn.teacher(ps, N, seed=rng, backend="numpy").astype(dtype)[None]
    X, XI = rng.standard_normal((R, K, N)).astype(dtype), rng.standard_normal((R, K))
    trQ = np.einsum("rpn,rpn->r", W.astype(float), W.astype(float)) / N
    limit = np.array([1e3, 1e3, 1.05 * trQ[2]])
    We, te, ae, de = _emulate_weights(W, Ws, X, XI, trQ, limit, 0.5, 1.0, 0.3, 0.2, threads=4)
    assert not ae[2] and ae[:2].all()
    Wd, td, act, div = dev(W), dev(trQ), dev(np.ones(R, dtype=np.uint8)), dev(np.full(R, -1, dtype=np.int64))
    wc.weights_predrawn(Wd, dev(Ws), dev(X), dev(XI), td, act, div, dev(limit), 0, 0.5, 1.0, 0.3, 0.2, threads=4)
    np.testing.assert_array_equal(host(act).astype(bool), ae)
    np.testing.assert_array_equal(host(div), de)
    same(host(Wd)[ae], We[ae])
    same(host(td)[ae], te[ae])


@here
def test_weights_kernel_streams_divergence_and_law():
    """Replica streams do not depend on the batch; a far-out replica is flagged alone; at α = 1 the
    runs have the law of the blocked engine's (divergence fraction, then the loss: Fisher, Welch, KS;
    family-wise FAMILY_ALPHA)."""
    N = 8
    W0, Ws, _ = _overlaps(3, N, seed=5, scale=(1, 6.0))
    run = lambda W, seed, alphas=(0.5, 1.0): qn.sgd_weights(
        dev(W),
        dev(Ws),
        A,
        B,
        LR,
        list(alphas),
        seed=seed,  # noqa: E731
        method="cuda",
    ).to_numpy()
    t3 = run(W0, 1)
    assert t3.method == "weights:cuda"
    np.testing.assert_array_equal(t3.diverged, [False, True, False])
    assert np.isnan(t3.W[1]).all() and np.isfinite(t3.W[[0, 2]]).all()
    t1 = run(W0[:1], 1, (1.0,))
    same(t1.W[0], t3.W[0])
    R = 24 if IN_SIM else 2000
    Wl, Wsl, _ = _overlaps(R, N, seed=6)
    tg = qn.sgd_weights(dev(Wl), dev(Wsl), A, B, LR, [1.0], seed=7, method="cuda").to_numpy()
    Wc, _, _ = _overlaps(2000, N, seed=8)
    tc = qn.sgd_weights(Wc, Wsl, A, B, LR, [1.0], seed=9)
    # at N = 8 a few runs blow up: compare the fraction that does (Fisher) and the loss of the others
    level = FAMILY_ALPHA / 3
    table = [[int(tg.diverged.sum()), int((~tg.diverged).sum())], [int(tc.diverged.sum()), int((~tc.diverged).sum())]]
    assert stats.fisher_exact(table).pvalue > level, table
    x, y = tg.loss[-1][~tg.diverged], tc.loss[-1][~tc.diverged]
    assert stats.ttest_ind(x, y, equal_var=False).pvalue > level
    assert stats.ks_2samp(x, y).pvalue > level


# --------------------------------------------------------------------------- real targets

_COMPILE = textwrap.dedent("""
    import json, sys, types
    cc = tuple(int(x) for x in sys.argv[1].split("."))
    try:
        from numba import cuda, float32, float64, int64, uint64, uint8
        import numba.cuda.dispatcher as disp
        # device functions are compiled for the current device's capability; there is none here,
        # so name the target one (what a device of that capability would report)
        disp.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
        from quadnet.sgd import _chain_cuda, _weights_cuda
    except Exception as exc:
        print("TOOLCHAIN-MISSING", repr(exc)); sys.exit(3)
    A1, A2, A3 = float64[::1], float64[:, ::1], float64[:, :, ::1]
    rng_sig = (A3, uint64[::1], uint8[::1], int64[::1], int64, int64, int64, int64, int64, float64, float64,
               float64, float64, A1, float64)
    pre_sig = (A3, A3, A2, A2, uint8[::1], int64[::1], int64, int64, int64, int64, float64, float64, float64,
               float64, A1, float64)
    jobs = [("chain_rng_d6", _chain_cuda.kernels(6)[0], rng_sig),
            ("chain_rng_d10", _chain_cuda.kernels(10)[0], rng_sig),
            ("chain_predrawn_d6", _chain_cuda.kernels(6)[1], pre_sig)]
    for single, T in ((False, float64), (True, float32)):
        for shared in (True, False):
            k = _weights_cuda.kernels(4, 2, 128, shared, False, single)
            sig = (T[:, :, ::1], T[:, :, ::1], uint64[::1], T[:, :, ::1], A2, T[:, ::1], A1, uint8[::1], int64[::1],
                   A1, int64, int64, float64, float64, float64, float64)
            jobs.append((f"weights_{'f32' if single else 'f64'}_{'shared' if shared else 'global'}", k, sig))
    out = {}
    for name, k, sig in jobs:
        try:
            ptx, _ = cuda.compile_ptx(k.py_func, sig, cc=cc)
        except Exception as exc:
            msg = repr(exc)
            if any(s in msg for s in ("NVVM", "nvvm", "libnvrtc", "DynamicLibNotFound", "libdevice")):
                print("TOOLCHAIN-MISSING", msg[:300]); sys.exit(3)
            raise
        path = f"{sys.argv[2]}/{name}_sm{cc[0]}{cc[1]}.ptx"
        open(path, "w").write(ptx)
        out[name] = path
    print("PTX", json.dumps(out))
""")


@pytest.mark.parametrize("cc", ["7.5", "9.0"])
def test_kernels_compile_for_real_gpus(cc, tmp_path):
    """Each CUDA kernel compiles to PTX for sm_75 (T4) / sm_90 (H100, H200) and ptxas assembles it
    (skipped where numba, NVVM or ptxas is missing)."""
    ptxas = shutil.which("ptxas") or next((str(p) for p in Path("/usr/local").glob("cuda*/bin/ptxas")), None)
    if ptxas is None:
        pytest.skip("ptxas (CUDA toolkit) not found")
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    toolkit = Path(ptxas).resolve().parents[1]
    if "CUDA_HOME" not in env and (toolkit / "nvvm").is_dir():
        env["CUDA_HOME"] = str(toolkit)
    res = subprocess.run(
        [sys.executable, "-c", _COMPILE, cc, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if res.returncode == 3:
        pytest.skip(res.stdout.strip()[-200:])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    paths = json.loads(res.stdout.strip().split("PTX ", 1)[1])
    report = {}
    for name, path in paths.items():
        arch = "sm_" + cc.replace(".", "")
        assert f".target {arch}" in Path(path).read_text()
        asm = subprocess.run(
            [ptxas, f"-arch={arch}", "-v", path, "-o", path + ".cubin"], capture_output=True, text=True, timeout=600
        )
        assert asm.returncode == 0, asm.stderr[-2000:]
        assert Path(path + ".cubin").stat().st_size > 0
        regs = [ln for ln in asm.stderr.splitlines() if "registers" in ln]
        report[name] = regs[-1].split("info    : ")[-1] if regs else ""
    print(json.dumps({cc: report}, indent=1))
