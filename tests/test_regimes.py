"""quadnet.regimes: stationary state under label noise, staircase of an anisotropic teacher,
narrow students, lifetime of the implicit bias.

Every fixed point is checked against the ODE right-hand side (`qn.ode_rhs`, written
independently of the reduced equations) and against long integrations (`qn.integrate_ode`);
rates against the fitted growth of the ODE's M; the noise that sets the lifetime of the bias
against one-step increments of the exact chain (`qn.sgd_overlaps`). The parameters differ from
those of the book's chapter on purpose.
"""

import math
import warnings

import numpy as np
import pytest

import quadnet as qn
from quadnet import regimes as rg
from quadnet.starts import gaussian_overlaps

# (p, p*, a, b, eta, sigma): square, wide, narrow students, non-default readouts
STATIONARY_CASES = [
    (3, 3, 0.5, 0.25, 0.08, 0.8),
    (5, 2, 0.3, 0.6, 0.05, 0.5),
    (3, 1, 0.4, 1.0, 0.04, 1.2),
    (2, 3, 0.5, 0.4, 0.05, 0.3),
    (1, 2, 1.0, 0.5, 0.06, 0.0),
]


def rotation(n, seed):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0]


# --------------------------------------------------------------------------- stationary state


@pytest.mark.parametrize("p,ps,a,b,eta,sigma", STATIONARY_CASES)
def test_stationary_state_is_a_zero_of_the_full_rhs(p, ps, a, b, eta, sigma):
    st = qn.stationary_loss(p, ps, a, b, eta=eta, noise=sigma)
    for U in (np.eye(p), rotation(p, 1)):  # the whole orbit is stationary
        dQ, dM = qn.ode_rhs(U @ st.Q @ U.T, U @ st.M, np.eye(ps), a, b, eta / a, noise=sigma)
        assert np.abs(dQ).max() < 1e-13 and np.abs(dM).max() < 1e-13
    assert st.loss == pytest.approx(float(qn.population_loss(st.Q, st.M, np.eye(ps), a, b, sigma)), rel=1e-13)
    assert st.trace_D == pytest.approx(b * ps - a * np.trace(st.Q), abs=1e-13)
    assert st.lr == pytest.approx(eta / a) and st.eta == pytest.approx(eta)


@pytest.mark.parametrize("p,ps,a,b,eta,sigma", STATIONARY_CASES)
def test_long_ode_integration_settles_at_the_stationary_loss(p, ps, a, b, eta, sigma):
    st = qn.stationary_loss(p, ps, a, b, eta=eta, noise=sigma)
    Q0, M0, P = gaussian_overlaps(p, ps, 10**4, seed=7)  # a random start, through the plateau
    al = np.array([0.0, 6000.0, 8000.0])
    tr = qn.integrate_ode(Q0, M0, P, a, b, eta / a, al, noise=sigma)
    assert not tr.diverged
    # settled: the last two outputs agree (the slowest mode, the unused units of a wide student,
    # relaxes at rate ~ 4η²σ², > 1e-3 here), so the end point is the attractor, and it is ours
    assert abs(tr.loss[-1] - tr.loss[-2]) < 1e-9
    assert tr.loss[-1] == pytest.approx(st.loss, rel=1e-7, abs=1e-10)
    assert np.sort(np.linalg.eigvalsh(tr.Q[-1])) == pytest.approx(np.sort(np.diag(st.Q)), abs=1e-6)
    sv = np.linalg.svd(tr.M[-1], compute_uv=False)
    assert sv == pytest.approx(
        np.sort(np.diag(st.M[:, : min(p, ps)]))[::-1].tolist() + [0.0] * (len(sv) - min(p, ps)), abs=1e-6
    )


def test_excess_is_first_order_in_the_step():
    # small η: the excess over σ²/2 is η b p* σ² to first order, whatever p ≥ p* (derived in the
    # chapter from the linearized fixed point); the relative correction is O(η)
    for p, ps, a, b in [(2, 2, 0.5, 0.5), (6, 2, 0.2, 0.7), (4, 1, 0.25, 1.5)]:
        for sigma in (0.2, 1.0):
            eta = 1e-5
            st = qn.stationary_loss(p, ps, a, b, eta=eta, noise=sigma)
            assert st.excess / (eta * b * ps * sigma**2) == pytest.approx(1.0, abs=1e-3)


def test_noiseless_wide_student_sits_on_the_manifold():
    st = qn.stationary_loss(5, 2, 0.2, 0.5, eta=0.1)
    assert st.loss == 0 and st.s == 0 and st.q_perp == pytest.approx(0, abs=1e-15)
    Q, M = qn.solution_overlaps(st.M / np.sqrt(0.5 / 0.2), 0.2, 0.5)
    assert np.allclose(Q, st.Q) and np.allclose(M, st.M)


def test_narrow_student_noiseless_drift_limit():
    # p < p*: as η → 0 the state is Q⊥ = 0, q = b(p* + 2)/(a(p + 2)); check against the loss of
    # that state evaluated by qn.population_loss (independent code)
    p, ps, a, b = 2, 5, 0.5, 0.3
    st = qn.stationary_loss(p, ps, a, b, eta=1e-9)
    q = b * (ps + 2) / (a * (p + 2))
    O = np.eye(ps)[:p]
    expected = float(qn.population_loss(q * np.eye(p), np.sqrt(q) * O, np.eye(ps), a, b))
    assert st.loss == pytest.approx(expected, rel=1e-7)
    assert st.q == pytest.approx(q, rel=1e-8) and st.q_perp == pytest.approx(0, abs=1e-8)


def test_stationary_bad_input():
    with pytest.raises(ValueError, match="noise"):
        qn.stationary_loss(2, 2, 0.5, 0.5, eta=0.05, noise=-0.1)
    with pytest.raises(ValueError, match="η_m"):
        qn.stationary_loss(2, 2, 0.5, 0.5, eta=0.25, noise=1.0)  # η_m = 1/(2b(p*+2)) = 0.25
    with pytest.raises(ValueError, match="noise"):
        qn.stationary_loss(2, 2, 0.5, 0.5, eta=0.1, noise=3.0)  # M would vanish
    with pytest.raises(TypeError, match="lr"):
        qn.stationary_loss(2, 2, 0.5, 0.5, 0.2, 1.0, eta=0.1)
    with pytest.raises(TypeError, match="eta"):
        qn.stationary_loss(2, 2, 0.5, 0.5)
    with pytest.raises(ValueError, match="p_star"):
        qn.stationary_loss(2, 0, 0.5, 0.5, eta=0.1)
    with pytest.raises(TypeError, match="noise"):
        qn.stationary_loss(2, 2, 0.5, 0.5, eta=0.1, noise="loud")


# --------------------------------------------------------------------------- anisotropic teacher


def test_rates_at_identity_teacher_equal_the_isotropic_rate():
    for p, ps, a, b, eta, sigma in [(4, 2, 0.25, 0.5, 0.1, 0.0), (3, 3, 0.2, 0.4, 0.05, 0.7)]:
        er = qn.escape_rates(p, ps, a, b, eta=eta, noise=sigma)
        r = qn.escape_rate(p, ps, a, b, eta / a, noise=sigma)
        assert er.rates == pytest.approx([r] * ps, rel=1e-12)
        assert er.q == pytest.approx(qn.plateau(p, ps, a, b, eta / a, noise=sigma).q, rel=1e-12)


@pytest.mark.parametrize("learned", [0, 1, 2])
def test_rates_match_the_fitted_growth_of_the_ode(learned):
    # a rotated (non-diagonal) P, so that the eigenbasis handling is exercised
    p, ps, a, b, eta, sigma = 5, 3, 0.3, 0.45, 0.06, 0.4
    V = rotation(ps, 2)
    P = V @ np.diag([1.7, 1.0, 0.45]) @ V.T
    er = qn.escape_rates(p, ps, a, b, eta=eta, P=P, noise=sigma, learned=learned)
    dQ, dM = qn.ode_rhs(er.Q, er.M, P, a, b, eta / a, noise=sigma)
    assert np.abs(dQ).max() < 1e-12 and np.abs(dM).max() < 1e-12  # a fixed point
    # seed the unlearned directions in the unused units, tiny, and measure their growth
    seed = np.zeros((p, ps))
    seed[learned:, learned:] = 1e-9 * np.random.default_rng(3).standard_normal((p - learned, ps - learned))
    M0 = er.M + seed @ er.directions.T
    al = np.array([0.0, 10.0, 30.0])
    tr = qn.integrate_ode(er.Q, M0, P, a, b, eta / a, al, noise=sigma, rtol=1e-12, atol=1e-22)
    cols = np.linalg.norm(((tr.M - er.M) @ er.directions)[:, learned:, :], axis=1)  # (T, p*)
    fitted = np.log(cols[2] / cols[1]) / 20
    assert fitted[learned:] == pytest.approx(er.rates[learned:], rel=1e-6, abs=1e-9)
    assert np.all(np.isnan(er.rates[:learned]))


def test_staircase_log_slopes_match_ode_escape_times():
    p, ps, a, b, eta = 3, 2, 0.35, 0.45, 0.07
    P = np.diag([1.4, 0.6])
    sc = qn.staircase(p, ps, a, b, eta=eta, P=P)
    levels = np.append(sc.levels, sc.final_loss)
    mids = 0.5 * (levels[:-1] + levels[1:])
    G = np.random.default_rng(11).standard_normal((p, ps))
    al = np.linspace(0, 700, 14001)
    times = []
    for N in (1e8, 1e12):
        tr = qn.integrate_ode(np.eye(p), G / np.sqrt(N) @ np.sqrt(P), P, a, b, eta / a, al)
        times.append([float(qn.escape_time(al, tr.loss, m)) for m in mids])
    slopes = (np.array(times[1]) - np.array(times[0])) / math.log(1e4)
    # the O(1) offsets cancel in the difference up to corrections that vanish with N (measured
    # < 0.3 % between N = 1e5 and 1e8); the 1 % tolerance also covers the 0.05 grid in α
    assert slopes == pytest.approx(sc.log_slopes, rel=1e-2)
    assert sc.levels[0] == pytest.approx(qn.escape_rates(p, ps, a, b, eta=eta, P=P).loss)
    assert np.all(np.diff(levels) < 0)


def test_narrow_anisotropic_student_learns_the_top_directions():
    p, ps, a, b, eta = 2, 4, 0.5, 0.25, 0.05
    lam = np.array([1.6, 1.2, 0.8, 0.4])
    V = rotation(ps, 4)
    P = V @ np.diag(lam) @ V.T
    sc = qn.staircase(p, ps, a, b, eta=eta, P=P)
    Q0, M0, _ = gaussian_overlaps(p, ps, 10**5, seed=5)
    M0 = M0 @ V @ np.diag(np.sqrt(lam)) @ V.T  # the same student against this teacher
    tr = qn.integrate_ode(Q0, M0, P, a, b, eta / a, np.array([0.0, 3000.0, 4000.0]))
    assert abs(tr.loss[-1] - tr.loss[-2]) < 1e-9
    assert tr.loss[-1] == pytest.approx(sc.final_loss, rel=1e-7)
    # its row space is the top-2 eigenspace of P
    _, _, Vt = np.linalg.svd(tr.M[-1])
    top = V[:, :2]
    assert np.linalg.norm(Vt[:2].T @ Vt[:2] - top @ top.T) < 1e-6


def test_sequential_frame_is_where_the_ode_lands():
    p, ps, a, b, eta = 4, 2, 0.25, 0.5, 0.08
    V = rotation(ps, 8)
    P = V @ np.diag([1.5, 0.5]) @ V.T
    G = np.random.default_rng(9).standard_normal((6, p, ps))
    M0 = G / np.sqrt(1e10) @ V @ np.diag(np.sqrt([1.5, 0.5])) @ V.T
    tr = qn.integrate_ode(np.eye(p), M0, P, a, b, eta / a, np.array([0.0, 2000.0]))
    assert np.all(tr.loss[-1] < 1e-4)
    O_end = qn.polar(tr.M[-1] @ np.linalg.inv(P))
    O_pred = qn.sequential_frame(M0, P)
    assert np.all(1 - qn.alignment(O_end, O_pred) < 1e-4)
    assert np.all(1 - qn.alignment(O_end, M0) > 1e-3)  # the Procrustes frame is missed


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        (dict(P=np.diag([1.0, -0.5])), ValueError, "positive definite"),
        (dict(P=np.eye(3)), ValueError, "P must have shape"),
        (dict(P=[[1.0, 0.3], [0.0, 1.0]]), ValueError, "symmetric"),
        (dict(P=[[1.0, np.nan], [np.nan, 1.0]]), ValueError, "P"),
        (dict(P="eye"), TypeError, "P"),
        (dict(noise=-1.0), ValueError, "noise"),
        (dict(learned=2), ValueError, "learned"),
        (dict(learned=-1), ValueError, "learned"),
        (dict(eta=0.5), ValueError, "critical"),
    ],
)
def test_escape_rates_bad_input(kwargs, exc, name):
    args = dict(eta=0.05)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        qn.escape_rates(4, 2, 0.25, 0.5, **args)


def test_sequential_frame_bad_input():
    with pytest.raises(ValueError, match="p ≥ p"):
        qn.sequential_frame(np.ones((1, 2)), np.eye(2))
    with pytest.raises(ValueError, match="rank"):
        qn.sequential_frame(np.ones((3, 2)), np.eye(2))


# --------------------------------------------------------------------------- lifetime of the bias


def fd_jacobian(st, P, lr, noise, h=1e-6):
    """Central-difference Jacobian of (dQ, dM) in the coordinates (Q_ij, i ≤ j; M_kl)."""
    p, ps = st.M.shape
    iu = np.triu_indices(p)

    def pack(dQ, dM):
        return np.concatenate([dQ[iu], dM.ravel()])

    n = len(iu[0]) + p * ps
    J = np.empty((n, n))
    for c in range(n):
        for sgn in (1, -1):
            Q, M = st.Q.copy(), st.M.copy()
            if c < len(iu[0]):
                i, j = iu[0][c], iu[1][c]
                Q[i, j] += sgn * h
                if i != j:
                    Q[j, i] += sgn * h
            else:
                M.flat[c - len(iu[0])] += sgn * h
            col = pack(*qn.ode_rhs(Q, M, P, st.a, st.b, lr, noise=noise))
            J[:, c] = col / (2 * h) if sgn == 1 else J[:, c] - col / (2 * h)
    return J, iu


def test_conserved_combinations_are_left_zero_modes_of_the_ode():
    p, ps, a, b, eta, sigma = 5, 3, 0.3, 0.4, 0.06, 0.9
    st = qn.stationary_loss(p, ps, a, b, eta=eta, noise=sigma)
    J, iu = fd_jacobian(st, np.eye(ps), eta / a, sigma)
    nq = len(iu[0])
    index_Q = {(i, j): k for k, (i, j) in enumerate(zip(*iu))}
    # antisymmetric part of M within the learned block: (M_01 − M_10)/(2m)
    ell = np.zeros(J.shape[0])
    ell[nq + 0 * ps + 1], ell[nq + 1 * ps + 0] = 0.5 / st.m, -0.5 / st.m
    scale = np.abs(J).max()
    assert np.abs(ell @ J).max() < 1e-8 * scale / st.m
    # unused unit u = 3, learned direction t = 0: ℓ_X Q_ut + ℓ_Y M_ut
    lX, lY = rg._unused_left_vector(st)
    ell = np.zeros(J.shape[0])
    ell[index_Q[(0, 3)]], ell[nq + 3 * ps + 0] = lX, lY
    assert np.abs(ell @ J).max() < 1e-8 * scale * (abs(lX) + abs(lY))
    # and it is normalized on the orbit direction (δQ_ut, δM_ut) = (q − s, m)
    assert lX * (st.q - st.s) + lY * st.m == pytest.approx(1.0)
    # the zero modes are exactly the orbit (dimension p p* − p*(p*+1)/2); the slowest other mode
    # is the relaxation rate reported by bias_lifetime
    ev = np.sort(-np.linalg.eigvals(J).real)
    dim = qn.stiefel_dimension(p, ps)
    assert np.all(np.abs(ev[:dim]) < 1e-7 * scale) and ev[dim] > 1e-3
    bl = qn.bias_lifetime(p, ps, a, b, eta=eta, noise=sigma, N=10)
    assert bl.relaxation == pytest.approx(ev[dim], rel=1e-5)


def test_square_student_lifetime_closed_form():
    # p = p*: the Gauss–Hermite moments reproduce the hand-derived
    # E[e²(λ₁ν₂ − λ₂ν₁)²] = 2x(σ² + 4(p* + 2)abx), x = Q⊥
    for ps, a, b, eta, sigma in [(2, 0.5, 0.5, 0.1, 1.0), (3, 0.2, 0.3, 0.07, 0.6), (4, 1.0, 0.25, 0.04, 1.3)]:
        bl = qn.bias_lifetime(ps, ps, a, b, eta=eta, noise=sigma, N=1000)
        st = bl.stationary
        x = st.q_perp
        kA = 2 * (a * st.lr) ** 2 * x * (sigma**2 + 4 * (ps + 2) * a * b * x) / st.m**2 / 1000
        assert bl.kappa_rotation == pytest.approx(kA, rel=1e-10)
        assert bl.tau == pytest.approx(2 / ((ps - 1) * kA), rel=1e-10)
        assert bl.kappa_unused == 0


def one_step_increments(st, N, replicas, steps, seed):
    """Overlap increments of the exact chain, one step each, from the stationary state."""
    p, ps = st.M.shape
    Q0 = np.broadcast_to(st.Q, (replicas, p, p))
    M0 = np.broadcast_to(st.M, (replicas, p, ps))
    al = np.arange(steps + 1) / N
    tr = qn.sgd_overlaps(Q0, M0, np.eye(ps), N, st.a, st.b, st.lr, al, noise=st.noise, seed=seed)
    assert not tr.diverged.any()
    return np.diff(tr.Q, axis=0), np.diff(tr.M, axis=0)


def test_orbit_noise_matches_one_step_increments_of_the_chain():
    # N large: the state hardly moves in 2000 steps (drift zero at the fixed point, excursions
    # O(√(steps)/N)), |x|²/N − 1 = O(N^{-1/2}) is negligible; every (replica, step) is a sample
    p, ps, a, b, eta, sigma, N = 4, 2, 0.3, 0.4, 0.08, 1.1, 10**6
    bl = qn.bias_lifetime(p, ps, a, b, eta=eta, noise=sigma, N=N)
    st = bl.stationary
    dQ, dM = one_step_increments(st, N, replicas=64, steps=2000, seed=12)
    cA = (dM[..., 0, 1] - dM[..., 1, 0]) / (2 * st.m)
    lX, lY = rg._unused_left_vector(st)
    cC = np.concatenate([(lX * dQ[..., u, t] + lY * dM[..., u, t]).ravel() for u in (2, 3) for t in (0, 1)])
    for c, kappa, name in ((cA.ravel(), bl.kappa_rotation, "rotation"), (cC, bl.kappa_unused, "unused")):
        est = N * c**2  # per unit α: N steps of variance E[c²]
        se = est.std(ddof=1) / math.sqrt(est.size)
        # 4.5 standard errors: two-sided false-alarm rate 7e-6 (the cC samples of one step are
        # correlated across (u, t), so its se is somewhat optimistic; 4.5 leaves room for that)
        assert abs(est.mean() - kappa) < 4.5 * se, (name, est.mean(), kappa, se)
        assert se < 0.03 * kappa  # the test has the power to see a 15 % error


def test_lifetime_limits_and_errors():
    assert qn.bias_lifetime(3, 2, 1 / 3, 0.5, eta=0.1, noise=0.0, N=100).tau == math.inf
    assert qn.bias_lifetime(1, 1, 1.0, 1.0, eta=0.1, noise=1.0, N=100).tau == math.inf  # O(1) = {±1}
    t1 = qn.bias_lifetime(3, 2, 1 / 3, 0.5, eta=0.05, noise=0.7, N=100).tau
    t2 = qn.bias_lifetime(3, 2, 1 / 3, 0.5, eta=0.05, noise=0.7, N=400).tau
    assert t2 == pytest.approx(4 * t1, rel=1e-12)
    with pytest.raises(ValueError, match="p_star"):
        qn.bias_lifetime(2, 3, 0.5, 1 / 3, eta=0.05, noise=1.0, N=100)
    with pytest.raises(ValueError, match="N"):
        qn.bias_lifetime(2, 2, 0.5, 0.5, eta=0.05, noise=1.0, N=0)
    with pytest.raises(ValueError, match="noise"):
        qn.bias_lifetime(2, 2, 0.5, 0.5, eta=0.05, noise=-1.0, N=10)
    with pytest.raises(TypeError):
        qn.bias_lifetime(2, 2, 0.5, 0.5, eta=0.05, noise=1.0)  # N is required


def rotations_2d(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def test_alignment_decay_recovers_a_known_diffusion():
    # Brownian angle with κ per unit α, plus fast off-orbit jitter (i.i.d. small angle per output,
    # which only lowers the intercept): τ = 2/κ for p* = 2
    rng = np.random.default_rng(21)
    kappa, dalpha, T, R = 2e-4, 5.0, 4001, 24
    theta = np.cumsum(rng.normal(0, math.sqrt(kappa * dalpha), (T, R)), axis=0) + rng.normal(0, 0.05, (T, R))
    M = 0.9 * rotations_2d(theta)
    al = dalpha * np.arange(T)
    fit = qn.alignment_decay(al, M, start=100.0, max_lag=200.0, min_lag=20.0)
    # 4 standard errors: two-sided false-alarm rate 6e-5
    assert abs(fit.tau - 2 / kappa) < 4 * fit.tau_se
    assert fit.tau_se < 0.05 * fit.tau
    assert fit.lags[0] == pytest.approx(20.0) and fit.lags[-1] == pytest.approx(200.0)


def test_alignment_decay_bad_input():
    M = rotations_2d(np.zeros((10, 3)))
    al = np.arange(10.0)
    with pytest.raises(ValueError, match="uniformly"):
        qn.alignment_decay(np.r_[al[:-1], 20.0], M, start=0.0, max_lag=2.0)
    with pytest.raises(ValueError, match="shape"):
        qn.alignment_decay(al[:-1], M, start=0.0, max_lag=2.0)
    with pytest.raises(ValueError, match="two lags"):
        qn.alignment_decay(al, M, start=0.0, max_lag=1.0)
    with pytest.raises(ValueError, match="two lags"):
        qn.alignment_decay(al, M, start=0.0, max_lag=3.0, min_lag=3.0)
    with pytest.raises(ValueError, match="replicas"):
        qn.alignment_decay(al, M[:, :1], start=0.0, max_lag=2.0)
    with pytest.raises(ValueError, match="finite"):
        qn.alignment_decay(al, M * np.nan, start=0.0, max_lag=2.0)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(rg, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


# --------------------------------------------------------------------------- fuzzing
# Property-based checks in the style of tests/test_fuzz.py, for the public names of this module:
# a valid draw returns finite results (NaN / inf only where documented); a draw with one argument
# corrupted raises ValueError or TypeError whose message names that argument.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
NAN, INF = float("nan"), float("inf")
BAD_POSITIVE = [-1.5, 0.0, NAN, INF, "1.0", None, True]
BAD_NONNEG = [-0.3, NAN, INF, "0", None, False]
BAD_INT = [0, -3, 2.5, "4", None, True]
BAD_MATRIX = [np.diag([1.0, -0.5]), np.eye(3), [[1.0, 0.4], [0.0, 1.0]], [[1.0, NAN], [NAN, 1.0]], "eye", None]


def assert_finite(*xs):
    for x in xs:
        assert np.all(np.isfinite(np.asarray(x, dtype=float))), x


def corrupted(data, bad):
    """None, or (name, bad value) drawn from ``bad`` = {name: [values]}."""
    if not data.draw(hst.booleans(), label="corrupt"):
        return None
    name = data.draw(hst.sampled_from(sorted(bad)), label="param")
    return name, data.draw(hst.sampled_from(bad[name]), label=f"bad {name}")


def check_call(fn, kwargs, bad):
    if bad is None:
        return fn(**kwargs)
    kw = dict(kwargs, **{bad[0]: bad[1]})
    with pytest.raises((ValueError, TypeError)) as info:
        fn(**kw)
    assert bad[0] in str(info.value), (bad, str(info.value))
    return None


@hst.composite
def noisy_setting(draw, wide=None):
    """(p, p*, a, b, eta, noise) with a stationary state: η = ρ η_m, σ² a fraction of its bound."""
    ps = draw(hst.integers(1, 4))
    p = draw(hst.integers(ps, ps + 3) if wide else hst.integers(1, ps + 3))
    a, b = draw(hst.floats(0.1, 3.0)), draw(hst.floats(0.1, 3.0))
    rho = draw(hst.floats(0.01, 0.8))
    eta = rho / (2 * b * (ps + 2))
    eps_d = b * b * max(ps - p, 0) * (ps + 2) / (p + 2)
    room = 2 * b * (1 - rho) / eta - 2 * eps_d  # σ² must stay below this (exact for p ≤ p*)
    if room <= 0:
        return p, ps, a, b, 0.5 * eta * room / (room - 1) if room < 0 else eta, 0.0
    return p, ps, a, b, eta, float(np.sqrt(draw(hst.floats(0.0, 0.5)) * room))


@FUZZ
@given(noisy_setting(), hst.data())
def test_fuzz_stationary_loss(setting, data):
    p, ps, a, b, eta, sigma = setting
    kwargs = dict(p=p, p_star=ps, a=a, b=b, eta=eta, noise=sigma)
    try_valid = dict(kwargs)
    bad = corrupted(
        data,
        {
            "p": BAD_INT,
            "p_star": BAD_INT,
            "a": BAD_POSITIVE,
            "b": BAD_POSITIVE,
            "eta": BAD_POSITIVE,
            "noise": BAD_NONNEG,
            "lr": [1.0],
        },
    )
    if bad is not None and bad[0] == "lr":
        bad = ("lr", 1.0)  # both lr and eta: names both
    try:
        st = check_call(qn.stationary_loss, try_valid, bad)
    except ValueError as exc:  # the documented "no stationary state" (narrow, strong noise)
        assert bad is None and "no stationary state" in str(exc), exc
        return
    if st is not None:
        assert_finite(st.loss, st.q, st.m, st.s, st.trace_D, st.Q, st.M)
        assert st.loss >= 0.5 * sigma**2 - 1e-15 and st.q_perp >= -1e-15 and st.Q.shape == (p, p)


@FUZZ
@given(hst.integers(1, 4), hst.integers(1, 4), hst.data())
def test_fuzz_escape_rates_and_staircase(p, ps, data):
    a, b = data.draw(hst.floats(0.1, 3.0)), data.draw(hst.floats(0.1, 3.0))
    lam = np.sort(data.draw(hst.lists(hst.floats(0.2, 2.0), min_size=ps, max_size=ps)))[::-1]
    V = rotation(ps, data.draw(hst.integers(0, 100)))
    P = V @ np.diag(lam) @ V.T
    eta = data.draw(hst.floats(0.001, 0.05)) / (b * (lam.sum() + 1))  # well below the critical step
    sigma = data.draw(hst.floats(0.0, 1.0))
    learned = data.draw(hst.integers(0, min(p, ps) - 1))
    bad_P = [np.diag([1.0] * (ps - 1) + [-0.5]), np.eye(ps + 1), "eye", None, np.full((ps, ps), NAN)]
    if ps >= 2:
        asym = P.copy()
        asym[0, 1] += 0.5
        bad_P.append(asym)
    bad = corrupted(
        data,
        {
            "p": BAD_INT,
            "p_star": BAD_INT,
            "a": BAD_POSITIVE,
            "b": BAD_POSITIVE,
            "eta": BAD_POSITIVE,
            "noise": BAD_NONNEG,
            "P": bad_P,
            "learned": [-1, min(p, ps), 1.5, "0"],
        },
    )
    kwargs = dict(p=p, p_star=ps, a=a, b=b, eta=eta, P=P, noise=sigma, learned=learned)
    er = check_call(qn.escape_rates, kwargs, bad)
    if er is not None:
        assert_finite(er.rates[learned:], er.eigenvalues, er.directions, er.q, er.loss, er.Q, er.M)
        assert np.all(np.isnan(er.rates[:learned]))
    kwargs.pop("learned")
    if bad is not None and bad[0] == "learned":
        bad = None
    sc = check_call(qn.staircase, kwargs, bad)
    if sc is not None:
        assert_finite(sc.levels, sc.eigenvalues)
        assert sc.rates.shape == (min(p, ps), ps) and sc.log_slopes.shape == (min(p, ps),)


@FUZZ
@given(noisy_setting(wide=True), hst.integers(1, 10**6), hst.data())
def test_fuzz_bias_lifetime(setting, N, data):
    p, ps, a, b, eta, sigma = setting
    bad = corrupted(
        data,
        {
            "p": BAD_INT,
            "p_star": BAD_INT,
            "a": BAD_POSITIVE,
            "b": BAD_POSITIVE,
            "eta": BAD_POSITIVE,
            "noise": BAD_NONNEG,
            "N": BAD_INT,
        },
    )
    kwargs = dict(p=p, p_star=ps, a=a, b=b, eta=eta, noise=sigma, N=N)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow or other warning on any draw
            bl = check_call(qn.bias_lifetime, kwargs, bad)
    except ValueError as exc:
        assert bad is None and "no stationary state" in str(exc), exc
        return
    if bl is not None:
        assert_finite(bl.kappa_rotation, bl.kappa_unused)
        rate = 0.5 * ((ps - 1) * bl.kappa_rotation + (p - ps) * bl.kappa_unused)
        assert bl.tau == (pytest.approx(1 / rate, rel=1e-12) if rate > 1e-300 else math.inf)  # inf: no diffusion
        assert (rate == 0) if (sigma == 0 or p == ps == 1) else True
        assert math.isnan(bl.relaxation) if sigma == 0 else bl.relaxation >= 0


@FUZZ
@given(hst.integers(1, 4), hst.integers(0, 3), hst.integers(0, 1000), hst.data())
def test_fuzz_sequential_frame(ps, extra, seed, data):
    p = ps + extra
    rng = np.random.default_rng(seed)
    M0 = rng.standard_normal((3, p, ps))
    P = rotation(ps, seed) @ np.diag(rng.uniform(0.2, 2.0, ps)) @ rotation(ps, seed).T
    bad = corrupted(
        data,
        {
            "M0": [np.ones((1, p + 1, p + 2)), "M", None, M0 * NAN, np.ones(3)],
            "P": [np.diag([1.0] * (ps - 1) + [-1.0]), np.eye(ps + 1), "eye", None],
        },
    )
    O = check_call(qn.sequential_frame, dict(M0=M0, P=P), bad)
    if O is not None:
        assert_finite(O)
        assert np.allclose(np.swapaxes(O, -1, -2) @ O, np.eye(ps), atol=1e-10)


@FUZZ
@given(hst.integers(2, 6), hst.floats(1e-5, 1e-3), hst.data())
def test_fuzz_alignment_decay(R, kappa, data):
    rng = np.random.default_rng(data.draw(hst.integers(0, 1000)))
    theta = np.cumsum(rng.normal(0, math.sqrt(kappa), (301, R)), axis=0)
    M = rotations_2d(theta)
    al = np.arange(301.0)
    bad = corrupted(
        data,
        {
            "alpha": [np.r_[al[:-1], 400.0], al[:-1], "t", None],
            "M": [M[:, :1], M[..., 0], M * NAN, "M"],
            "start": [NAN, -1.0, "0", None, 290.0],
            "max_lag": BAD_POSITIVE + [1.0],
            "min_lag": [-1.0, NAN, "0", 40.0],
        },
    )
    fit = check_call(qn.alignment_decay, dict(alpha=al, M=M, start=10.0, max_lag=30.0, min_lag=2.0), bad)
    if fit is not None:
        assert_finite(fit.rates, fit.lags, fit.mean_alignment)
        assert fit.tau > 0
