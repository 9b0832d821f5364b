"""One-pass SGD simulators: weight space (literal) and the exact overlap chain (NumPy and fused).

Statistical tests use fixed seeds, so they are deterministic; the false-alarm rates quoted are
those the same test would have with fresh seeds. Two-sample comparisons are Bonferroni-corrected
over the family of comparisons in a test (family-wise false-alarm rate FAMILY_ALPHA).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import quadnet as qn
from quadnet import sgd as sgdmod

FAMILY_ALPHA = 1e-3  # family-wise false-alarm rate of each statistical test
HAVE_NUMBA = qn.numba_available()
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")

# a small setting where the whole plateau–escape story fits in α ≤ 16 at N = 200:
# p = 2, p* = 1, a = 1/2, b = 1, γ = 0.2 (η = 0.1, half the critical step), escape near α ≈ 9
P, PS, A, B, LR = 2, 1, 0.5, 1.0, 0.2


def _weights(R, N, seed, q0=1.0, informed=0.0):
    """R replicas of (W0, teacher); informed > 0 adds informed·O W* with O random signs/√p (M(0) = O(1),
    tr Q(0) ≈ p q0 + informed²: no replica starts far out)."""
    rng = np.random.default_rng(seed)
    Ws = qn.teacher(PS, N, seed=rng, backend="numpy")
    W0 = np.sqrt(q0) * rng.standard_normal((R, P, N))
    if informed:
        O = rng.choice([-1.0, 1.0], size=(R, P, PS)) / np.sqrt(P)
        W0 = W0 + informed * O @ Ws
    return W0, Ws


def _escape_alpha(tr, plateau_loss):
    """First α where the loss is below half the plateau loss (α_max + 1 if never)."""
    below = np.asarray(tr.loss) < 0.5 * plateau_loss
    first = np.argmax(below, axis=0)
    return np.where(below.any(axis=0), tr.alpha[first], tr.alpha[-1] + 1.0)


def _same_law(x, y, n_tests):
    """p-values of Welch's t test (means) and the two-sample KS test (distributions)."""
    x, y = np.asarray(x), np.asarray(y)
    pt = stats.ttest_ind(x, y, equal_var=False).pvalue
    pk = stats.ks_2samp(x, y).pvalue
    level = FAMILY_ALPHA / n_tests
    return pt, pk, level


def _compare_runs(t1, t2, alphas_check, plateau_loss):
    """Loss at several α (Welch + KS) and escape time (KS + Welch): Bonferroni over all."""
    idx = [int(np.argmin(np.abs(t1.alpha - al))) for al in alphas_check]
    n_tests = 2 * (len(idx) + 1)
    fails = []
    for i in idx:
        pt, pk, level = _same_law(t1.loss[i], t2.loss[i], n_tests)
        if min(pt, pk) < level:
            fails.append((float(t1.alpha[i]), pt, pk))
    e1, e2 = _escape_alpha(t1, plateau_loss), _escape_alpha(t2, plateau_loss)
    pt, pk, level = _same_law(e1, e2, n_tests)
    if min(pt, pk) < level:
        fails.append(("escape", pt, pk))
    return fails, e1, e2


# --------------------------------------------------------------------------- (a) same law


@pytest.fixture(scope="module")
def plateau_runs():
    """Weight-space SGD and the chain from the same initial overlaps, through the escape."""
    R, N = 192, 200
    W0, Ws = _weights(R, N, seed=11)
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    alphas = np.round(np.arange(0, 16.0001, 0.1), 10)
    tw = qn.sgd_weights(W0, Ws, A, B, LR, alphas, seed=101)
    tc = qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, alphas, seed=202)
    return dict(
        R=R,
        N=N,
        W0=W0,
        Ws=Ws,
        Q0=Q0,
        M0=M0,
        P=Pm,
        alphas=alphas,
        tw=tw,
        tc=tc,
        plateau=qn.plateau(P, PS, A, B, LR).loss,
    )


def test_weights_and_chain_same_law(plateau_runs):
    """Same initial overlaps: the loss at α = 2, 4, 6, 8, 12, 16 and the escape time have the same law."""
    r = plateau_runs
    tw, tc = r["tw"], r["tc"]
    assert tw.loss.shape == tc.loss.shape == (r["alphas"].size, r["R"])
    np.testing.assert_allclose(tw.loss[0], tc.loss[0], rtol=1e-12)  # same start, exactly
    assert not tw.diverged.any() and not tc.diverged.any()
    fails, ew, ec = _compare_runs(tw, tc, [2, 4, 6, 8, 12, 16], r["plateau"])
    assert not fails, f"weights vs chain differ in law at {fails}"
    # the runs do escape the plateau (else the escape test would be vacuous), at the predicted scale
    assert np.mean(ew <= 16) > 0.9 and np.mean(ec <= 16) > 0.9
    assert 5 < np.median(ec) < 12
    # and the spread of the loss agrees too (Levene/Brown–Forsythe on the plateau and after)
    for al in (4, 8):
        i = int(np.argmin(np.abs(tw.alpha - al)))
        assert stats.levene(tw.loss[i], tc.loss[i]).pvalue > FAMILY_ALPHA / 2


# --------------------------------------------------------------------------- (b) ODE limit


def test_chain_approaches_ode_like_inverse_sqrt_N():
    """Informed start (no plateau): the RMS deviation of SGD from the ODE started at each
    replica's exact Q(0), M(0) shrinks like N^{-1/2}; the ensemble mean agrees with the ODE.

    With R = 64 replicas the RMS over replicas has a relative error ≈ 1/√(2R) ≈ 0.09 per N, so
    the fitted slope over N = 250 … 16000 (ln N spread √Σ(x − x̄)² ≈ 3.1) has a standard error
    ≈ 0.03; the band ±0.15 is 5 standard errors (also absorbing the O(1/N) bias at small N)."""
    R = 64
    alphas = np.array([0.0, 1.0, 2.0, 3.0])
    Ns = np.array([250, 1000, 4000, 16000])
    rms, z_mean = [], []
    for k, N in enumerate(Ns):
        W0, Ws = _weights(R, int(N), seed=300 + k, informed=0.6)
        Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
        tc = qn.sgd_overlaps(Q0, M0, Pm, int(N), A, B, LR, alphas, seed=400 + k)
        to = qn.integrate_ode(Q0, M0, Pm, A, B, LR, alphas)
        dev = tc.loss[1:] - to.loss[1:]  # (3, R)
        rms.append(np.sqrt(np.mean(dev**2)))
        d_last = dev[-1]
        z_mean.append(d_last.mean() / (d_last.std(ddof=1) / np.sqrt(R)))
    slope = np.polyfit(np.log(Ns), np.log(rms), 1)[0]
    print(f"RMS deviation from the ODE ∝ N^{slope:.3f}; rms = {np.round(rms, 5)}")
    assert -0.65 < slope < -0.35, f"RMS deviation from the ODE ∝ N^{slope:.3f}, expected N^-0.5 (rms {rms})"
    assert rms[-1] < 0.05
    # the ensemble mean at the largest N is within 4 standard errors of the ODE mean
    assert abs(z_mean[-1]) < 4, z_mean


# --------------------------------------------------------------------------- (c) fused = fallback


def _predrawn_case(R=11, p=3, ps=2, track=True, K=300, seed=5, N=400, noise=0.3):
    rng = np.random.default_rng(seed)
    Ws = qn.teacher(ps, N, seed=rng, backend="numpy")
    W0 = rng.standard_normal((R, p, N)) + 0.5 * rng.standard_normal((R, p, ps)) @ Ws
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    C = sgdmod._gram0(Q0, M0, np.broadcast_to(Pm, (R, ps, ps)), track, np)
    d = C.shape[-1]
    Z = rng.standard_normal((R, K, d))
    X2 = np.sum(Z * Z, axis=-1) + rng.chisquare(N - d, (R, K))
    XI = rng.standard_normal((R, K))
    return C, Z, X2, XI, N, p, ps, noise


@needs_numba
@pytest.mark.parametrize("track", [False, True])
def test_fused_kernel_equals_reference_on_same_numbers(track):
    """On identical random numbers the fused kernel and the NumPy reference give the same chain
    (to rounding), including a rank-deficient start (track_init) and a diverging replica."""
    from quadnet.sgd import _chain_numba as ck

    C, Z, X2, XI, N, p, ps, noise = _predrawn_case(track=track)
    R = C.shape[0]
    C[3, :p, :p] *= 40.0  # replica 3 starts far out: it blows up
    C[3, p + ps :, p + ps :] *= 40.0 if track else 1.0
    if track:
        C[3, :p, p + ps :] *= 40.0
        C[3, p + ps :, :p] *= 40.0
    limit = 1e3 * np.maximum(np.trace(C[:, :p, :p], axis1=1, axis2=2), 2.0)
    limit[3] = 1e3 * 3 * p  # a bound it will cross
    out = []
    for fn in ("numpy", "numba"):
        Cw = C.copy()
        active = np.ones(R, dtype=bool)
        div = np.full(R, -1, dtype=np.int64)
        if fn == "numpy":
            sgdmod.chain_steps_numpy(Cw, Z, X2, XI, active, div, 0, p, ps, N, A, B, 0.9, noise, limit, sgdmod._SD_TOL)
        else:
            ck.chain_predrawn(Cw, Z, X2, XI, active, div, 0, p, ps, N, A, B, 0.9, noise, limit, sgdmod._SD_TOL)
        out.append((Cw, active, div))
    (C1, a1, d1), (C2, a2, d2) = out
    assert not a1[3] and d1[3] > 0, "the far-out replica should diverge"
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(d1, d2)
    ok = a1
    np.testing.assert_allclose(C2[ok], C1[ok], rtol=1e-9, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(C1[ok]) > -1e-10)  # the chain stays a Gram matrix


@needs_numba
def test_fused_kernel_and_fallback_same_law(plateau_runs):
    """The fused kernel (own random numbers) and the NumPy reference agree in law."""
    r = plateau_runs
    tb = qn.sgd_overlaps(r["Q0"], r["M0"], r["P"], r["N"], A, B, LR, r["alphas"], seed=7, method="numba")
    tn = qn.sgd_overlaps(r["Q0"], r["M0"], r["P"], r["N"], A, B, LR, r["alphas"], seed=8, method="numpy")
    assert tb.method == "numba" and tn.method == "numpy"
    fails, _, _ = _compare_runs(tb, tn, [2, 4, 6, 8, 12, 16], r["plateau"])
    assert not fails, f"fused vs NumPy chain differ in law at {fails}"


def test_kernel_normal_and_chi2_samplers():
    """The in-kernel ziggurat normals and Marsaglia–Tsang χ² have the right law (KS)."""
    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    from quadnet.sgd import _chain_numba as ck

    st = np.array([12345, 678910], dtype=np.uint64)
    z = ck.zig_normals(st, 200_000)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert abs(np.mean(np.abs(z) > 3.6541528853610088) / (2 * stats.norm.sf(3.6541528853610088)) - 1) < 0.3  # tail


# --------------------------------------------------------------------------- (d) determinism


@pytest.mark.parametrize("method", ["weights", "numpy", pytest.param("numba", marks=needs_numba)])
def test_deterministic_and_replica_streams(method):
    """Same seed → same numbers; another seed → other numbers; replica r's numbers depend only
    on (seed, r): the first 3 replicas of a batch of 5 equal a run of those 3."""
    R, N = 5, 60
    W0, Ws = _weights(R, N, seed=3)
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    alphas = [0.0, 0.5, 1.0]

    def run(R_, seed):
        if method == "weights":
            return qn.sgd_weights(W0[:R_], Ws, A, B, LR, alphas, seed=seed, noise=0.1)
        return qn.sgd_overlaps(Q0[:R_], M0[:R_], Pm, N, A, B, LR, alphas, seed=seed, noise=0.1, method=method)

    t1, t2, t3, t4 = run(R, 1), run(R, 1), run(R, 2), run(3, 1)
    np.testing.assert_array_equal(t1.Q, t2.Q)
    np.testing.assert_array_equal(t1.M, t2.M)
    assert not np.allclose(t1.Q[-1], t3.Q[-1])
    np.testing.assert_allclose(t4.Q, t1.Q[:, :3], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(t4.M, t1.M[:, :3], rtol=1e-12, atol=1e-14)
    if method == "weights":
        np.testing.assert_array_equal(t1.W, t2.W)


# --------------------------------------------------------------------------- (e) divergence


@pytest.mark.parametrize("method", ["weights", "numpy", pytest.param("numba", marks=needs_numba)])
def test_divergence_per_replica(method):
    """A replica started far out blows up: it is flagged with its α, NaN from then on, and the
    other replicas get exactly the numbers they get when it does not blow up."""
    R, N = 4, 100
    W0, Ws = _weights(R, N, seed=9)
    W_bad = W0.copy()
    W_bad[1] *= 6.0  # Q(0) ≈ 36 I: the SGD-noise term wins and tr Q explodes
    alphas = np.linspace(0, 3, 7)

    def run(W):
        if method == "weights":
            return qn.sgd_weights(W, Ws, A, B, LR, alphas, seed=4)
        Q0, M0, Pm = qn.overlaps_from_weights(W, Ws)
        return qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, alphas, seed=4, method=method)

    good, bad = run(W0), run(W_bad)
    assert not good.diverged.any()
    np.testing.assert_array_equal(bad.diverged, [False, True, False, False])
    ad = bad.alpha_diverged[1]
    assert 0 < ad <= alphas[-1] and np.isnan(bad.alpha_diverged[[0, 2, 3]]).all()
    after = bad.alpha >= ad
    assert np.isnan(bad.loss[after, 1]).all() and np.isfinite(bad.loss[~after, 1]).all()
    others = [0, 2, 3]
    np.testing.assert_allclose(bad.Q[:, others], good.Q[:, others], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bad.loss[:, others], good.loss[:, others], rtol=1e-12)
    if method == "weights":
        assert np.isnan(bad.W[1]).all() and np.isfinite(bad.W[others]).all()


@pytest.mark.parametrize("method", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_step_above_critical_diverges(method):
    """Above the critical step (quadnet.critical_lr) the runs blow up and are all reported."""
    R, N = 8, 100
    W0, Ws = _weights(R, N, seed=10)
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    lr = 3.0 * qn.critical_lr(P, PS, A, B)
    tr = qn.sgd_overlaps(Q0, M0, Pm, N, A, B, lr, np.linspace(0, 20, 41), seed=1, method=method)
    assert tr.diverged.all()
    assert np.all(np.isfinite(tr.alpha_diverged))


# --------------------------------------------------------------------------- (f) track_init


def test_track_init_consistency_and_distance(plateau_runs):
    """R(0) = Q0; the Gram matrix [[Q, R], [Rᵀ, Q0]] stays PSD; the chain's distance to the
    initialization tr Q − 2 tr R + tr Q0 has the law of the literal ‖W − W(0)‖²/N, and in weight
    space the formula equals the literal distance."""
    r = plateau_runs
    R_, N = 128, r["N"]
    W0, Ws = r["W0"][:R_], r["Ws"]
    Q0, M0, Pm = r["Q0"][:R_], r["M0"][:R_], r["P"]
    alphas = np.array([0.0, 1.0, 3.0, 6.0])
    tc = qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, alphas, seed=31, track_init=True)
    tw = qn.sgd_weights(W0, Ws, A, B, LR, alphas, seed=32, track_init=True)
    np.testing.assert_allclose(tc.R[0], Q0, atol=1e-14)
    np.testing.assert_allclose(tc.distance_to_init()[0], 0.0, atol=1e-12)
    G = np.block([[tc.Q, tc.R], [np.swapaxes(tc.R, -1, -2), np.broadcast_to(Q0, tc.Q.shape)]])
    assert np.all(np.linalg.eigvalsh(G) > -1e-9)
    literal = np.sum((tw.W - W0) ** 2, axis=(-2, -1)) / N
    np.testing.assert_allclose(tw.distance_to_init()[-1], literal, rtol=1e-9)
    n_tests = 2 * 3
    for i in (1, 2, 3):
        pt, pk, level = _same_law(tc.distance_to_init()[i], tw.distance_to_init()[i], n_tests)
        assert min(pt, pk) > level, (alphas[i], pt, pk)
    # track_init does not change the law of the (Q, M) chain: same loss law as without it
    pt, pk, level = _same_law(tc.loss[-1], r["tc"].loss[np.argmin(np.abs(r["alphas"] - 6.0)), :R_], 1)
    assert min(pt, pk) > level


def test_float32_weights_same_law():
    """float32 weights give the overlaps of float64 in law (informed start, N = 500)."""
    R, N = 48, 500
    W0, Ws = _weights(R, N, seed=12, informed=0.6)
    alphas = [0.0, 1.0, 2.0]
    t64 = qn.sgd_weights(W0, Ws, A, B, LR, alphas, seed=1)
    t32 = qn.sgd_weights(W0, Ws, A, B, LR, alphas, seed=2, dtype=np.float32)
    assert t32.Q.dtype == np.float64 and t32.W.dtype == np.float32
    for i in (1, 2):
        pt, pk, level = _same_law(t64.loss[i], t32.loss[i], 4)
        assert min(pt, pk) > level


# --------------------------------------------------------------------------- shapes and API


def test_shapes_and_fields():
    R, N = 3, 50
    W0, Ws = _weights(R, N, seed=1)
    tw = qn.sgd_weights(W0.reshape(1, 3, P, N), Ws, A, B, LR, [0.1, 0.2], seed=0)
    assert tw.Q.shape == (2, 1, 3, P, P) and tw.M.shape == (2, 1, 3, P, PS) and tw.loss.shape == (2, 1, 3)
    assert tw.W.shape == (1, 3, P, N) and list(tw.steps) == [5, 10] and tw.N == N
    np.testing.assert_allclose(tw.alpha, [0.1, 0.2])
    assert isinstance(tw, qn.Trajectory) and tw.R is None
    Q0, M0, Pm = qn.overlaps_from_weights(W0[0], Ws)
    tc = qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, [0.0, 0.1], seed=0, method="numpy")  # unbatched
    assert tc.Q.shape == (2, P, P) and tc.loss.shape == (2,) and tc.W is None
    np.testing.assert_allclose(tc.loss[0], qn.population_loss(Q0, M0, Pm, A, B))
    assert tc.to_numpy().Q.shape == tc.Q.shape
    with pytest.raises(ValueError, match="track_init"):
        tc.distance_to_init()


def test_progress_bar_runs(capsys):
    W0, Ws = _weights(2, 40, seed=1)
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    qn.sgd_overlaps(Q0, M0, Pm, 40, A, B, LR, [0, 1], progress=True, method="numpy")
    qn.sgd_weights(W0, Ws, A, B, LR, [0, 1], progress=True)


# --------------------------------------------------------------------------- (g) bad input


def test_bad_input_errors():
    N = 40
    W0, Ws = _weights(2, N, seed=1)
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    ok = dict(a=A, b=B, lr=LR, alphas=[0, 1])

    def chain(**kw):
        args = dict(Q0=Q0, M0=M0, P=Pm, N=N, **ok)
        args.update(kw)
        return qn.sgd_overlaps(
            args.pop("Q0"),
            args.pop("M0"),
            args.pop("P"),
            args.pop("N"),
            args.pop("a"),
            args.pop("b"),
            args.pop("lr"),
            args.pop("alphas"),
            **args,
        )

    def weights(**kw):
        args = dict(W0=W0, W_star=Ws, **ok)
        args.update(kw)
        return qn.sgd_weights(
            args.pop("W0"), args.pop("W_star"), args.pop("a"), args.pop("b"), args.pop("lr"), args.pop("alphas"), **args
        )

    with pytest.raises(TypeError, match="N"):
        chain(N=40.5)  # integral floats (N=40.0, 1e4) are accepted
    with pytest.raises(ValueError, match="N must be ≥ 3"):
        chain(N=2)
    with pytest.raises(ValueError, match="N must be ≥ 5"):
        chain(N=4, track_init=True)
    with pytest.raises(ValueError, match="alphas"):
        chain(alphas=[1, 0.5])
    with pytest.raises(ValueError, match="alphas"):
        chain(alphas=[-1, 0.5])
    with pytest.raises(ValueError, match="distinct step"):
        chain(alphas=[0, 0.001])
    with pytest.raises(ValueError, match="lr"):
        chain(lr=-0.1)
    with pytest.raises(ValueError, match="noise"):
        chain(noise=-1)
    with pytest.raises(ValueError, match="blowup"):
        chain(blowup=0.5)
    with pytest.raises(ValueError, match="method"):
        chain(method="fortran")
    with pytest.raises(ValueError, match="positive semidefinite"):
        chain(M0=M0 * 10)
    with pytest.raises(ValueError, match="Q0 must be symmetric"):
        chain(Q0=Q0 + np.triu(np.ones((P, P)), 1))
    with pytest.raises(ValueError, match="Q"):
        chain(Q0=Q0[..., :1])
    with pytest.raises(ValueError, match="finite"):
        chain(Q0=Q0 * np.nan)
    with pytest.raises(ValueError, match="N"):
        weights(W_star=Ws[:, :-1])
    with pytest.raises(ValueError, match="dtype"):
        weights(dtype=np.int32)
    with pytest.raises(ValueError, match="W0"):
        weights(W0=W0[0, 0])
    with pytest.raises(ValueError, match="finite"):
        weights(W0=W0 * np.inf)
    with pytest.raises(TypeError, match="seed"):
        weights(seed="abc")
    with pytest.raises(ValueError, match="batch"):
        weights(W_star=np.stack([Ws] * 3))


# --------------------------------------------------------------------------- (h) GPU


def _cupy():
    import cupy

    return cupy


@pytest.mark.gpu
def test_gpu_chain_equals_numpy_on_host_numbers():
    """The reference chain on CuPy, fed host-drawn numbers, equals the NumPy run to rounding."""
    cp = _cupy()
    C, Z, X2, XI, N, p, ps, noise = _predrawn_case(track=True)
    R = C.shape[0]
    limit = 1e3 * np.maximum(np.trace(C[:, :p, :p], axis1=1, axis2=2), 2.0)
    res = []
    for xp in (np, cp):
        Cw = xp.asarray(C.copy())
        active = np.ones(R, dtype=bool)
        div = np.full(R, -1, dtype=np.int64)
        sgdmod.chain_steps_numpy(
            Cw,
            xp.asarray(Z),
            xp.asarray(X2),
            xp.asarray(XI),
            active,
            div,
            0,
            p,
            ps,
            N,
            A,
            B,
            0.9,
            noise,
            xp.asarray(limit),
            sgdmod._SD_TOL,
            xp,
        )
        res.append(qn.to_numpy(Cw))
    np.testing.assert_allclose(res[1], res[0], rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
def test_gpu_simulators_same_law_as_numpy(plateau_runs):
    """CuPy runs of both simulators agree in law with the NumPy runs."""
    cp = _cupy()
    r = plateau_runs
    tcg = qn.sgd_overlaps(
        cp.asarray(r["Q0"]), cp.asarray(r["M0"]), cp.asarray(r["P"]), r["N"], A, B, LR, r["alphas"], seed=5
    )
    assert isinstance(tcg.Q, cp.ndarray) and tcg.method == "numpy"
    twg = qn.sgd_weights(cp.asarray(r["W0"]), cp.asarray(r["Ws"]), A, B, LR, r["alphas"], seed=6)
    assert isinstance(twg.W, cp.ndarray)
    for tg, th in ((tcg.to_numpy(), r["tc"]), (twg.to_numpy(), r["tw"])):
        fails, _, _ = _compare_runs(tg, th, [2, 4, 6, 8, 12, 16], r["plateau"])
        assert not fails, fails
    # determinism on the device
    again = qn.sgd_overlaps(
        cp.asarray(r["Q0"]), cp.asarray(r["M0"]), cp.asarray(r["P"]), r["N"], A, B, LR, r["alphas"], seed=5
    )
    np.testing.assert_array_equal(qn.to_numpy(again.Q), qn.to_numpy(tcg.Q))
