"""quadnet.regime_measures: the measurements of chapter 8 (stationary scans, lifetime runs,
staircase escape times and rates, chain-vs-ODE comparisons, end frames, row spaces).

Each function is checked against an independent computation: the direct calls it wraps, done
by hand, closed forms (the square student's stationary excess), synthetic data with known
rates and slopes, or exact properties (projectors, conserved polar factor at P = I). The
parameters differ from the chapter's on purpose.
"""

import numpy as np
import pytest

import quadnet as qn
from quadnet import regime_measures as rm
from quadnet.starts import gaussian_overlaps

# --------------------------------------------------------------------------- stationary_scan


def test_stationary_scan_is_the_closed_form_for_a_square_student_and_nan_beyond_eta_m():
    p, a, b, s = 3, 0.4, 0.3, 0.7
    eta_m = 1 / (2 * b * (p + 2))
    eta = eta_m * np.array([0.1, 0.4, 0.8, 1.2])
    scan = rm.stationary_scan(p, p, a, b, eta=eta, noise=s)
    closed = eta * b * p * s**2 / (1 - eta / eta_m)  # chapter 8, Section 1
    assert scan.excess[:2] == pytest.approx(closed[:2], rel=1e-12)
    assert np.isnan(scan.excess[3]) and np.isnan(scan.loss[3])  # no stationary state above eta_m
    assert scan.loss == pytest.approx(scan.excess + s**2 / 2, nan_ok=True)


def test_stationary_scan_matches_single_calls_for_a_wide_student():
    eta = np.array([0.02, 0.05])
    scan = rm.stationary_scan(5, 2, 0.3, 0.6, eta=eta, noise=0.5)
    for i, e in enumerate(eta):
        st = qn.stationary_loss(5, 2, 0.3, 0.6, eta=e, noise=0.5)
        assert (scan.loss[i], scan.q_perp[i]) == (st.loss, st.q_perp)


@pytest.mark.parametrize("kw", [dict(eta=[0.1, -0.1]), dict(eta=[[0.1]]), dict(eta=[0.1], noise=-1.0)])
def test_stationary_scan_rejects_bad_input(kw):
    with pytest.raises(ValueError, match="eta|noise"):
        rm.stationary_scan(2, 2, 0.5, 0.5, **kw)


# --------------------------------------------------------------------------- staircase escapes


def test_staircase_escape_times_are_escape_time_at_the_midpoints():
    rng = np.random.default_rng(0)
    al = np.linspace(0, 30, 301)
    loss = np.exp(-rng.uniform(0.05, 0.4, (1, 4, 2)) * al[:, None, None])  # (T, 4, 2)
    levels = [1.0, 0.5, 0.1, 0.01]
    got = rm.staircase_escape_times(al, loss, levels)
    assert got.shape == (4, 2, 3)
    for k, mid in enumerate([0.75, 0.3, 0.055]):
        np.testing.assert_array_equal(got[..., k], qn.escape_time(al, loss, mid))


@pytest.mark.parametrize("levels", [[1.0], [0.5, 1.0], [1.0, -0.1], [1.0, np.nan]])
def test_staircase_escape_times_rejects_bad_levels(levels):
    with pytest.raises(ValueError, match="levels"):
        rm.staircase_escape_times(np.arange(3.0), np.ones(3), levels)


def test_plateau_rates_recovers_known_rates_on_a_synthetic_staircase():
    # loss 1 until alpha = 10, 0.2 until 20, then 0; column k grows at rate r[j, k] on plateau j
    al = np.linspace(0, 30, 601)
    loss = np.where(al < 10, 1.0, np.where(al < 20, 0.2, 0.0))
    r = np.array([[0.5, 0.2, 0.1], [np.nan, 0.4, 0.3]])
    logc = np.where(al[:, None] < 10, r[0] * al[:, None], r[0] * 10 + np.nan_to_num(r[1]) * (al[:, None] - 10))
    M = np.exp(logc)[:, None, :] * np.array([[1.0], [0.0]])  # (T, 2, 3), columns of norm exp(logc)
    got = rm.plateau_rates(al, loss, M, [1.0, 0.2])
    np.testing.assert_allclose(got, r, rtol=1e-10)


def test_plateau_rates_rejects_a_level_that_is_never_reached():
    al = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="plateau 0"):
        rm.plateau_rates(al, np.ones(11), np.ones((11, 1, 2)), [0.3])
    with pytest.raises(ValueError, match="window"):
        rm.plateau_rates(al, np.ones(11), np.ones((11, 1, 2)), [1.0], window=1.5)


STAIR = dict(p=3, p_star=2, a=1 / 3, b=0.5, eta=0.05)


def test_staircase_run_is_the_batched_ode_from_one_draw():
    P = np.diag([1.5, 0.5])
    N = np.array([1e4, 1e8])
    al = np.linspace(0, 500, 1001)
    run = rm.staircase_run(STAIR["p"], STAIR["p_star"], STAIR["a"], STAIR["b"], eta=0.05, P=P, N=N, alphas=al, seed=5)
    G = np.random.default_rng(5).standard_normal((3, 2))
    np.testing.assert_array_equal(run.M0[1], G / 1e4 @ np.diag(np.sqrt([1.5, 0.5])))
    direct = qn.integrate_ode(np.eye(3), run.M0, P, 1 / 3, 0.5, eta=0.05, alphas=al)
    np.testing.assert_allclose(run.trajectory.loss, direct.loss, rtol=1e-12)
    np.testing.assert_array_equal(run.escape_times, rm.staircase_escape_times(al, run.trajectory.loss, run.levels))
    # the escapes come in order and move by about A_k ln(1e4) between the two N (O(1) offsets: 10 %)
    assert np.all(np.diff(run.escape_times, axis=1) > 0)
    shift = (run.escape_times[1] - run.escape_times[0]) / np.log(1e4)
    np.testing.assert_allclose(shift, run.staircase.log_slopes, rtol=0.1)


def test_staircase_run_accepts_a_rotated_teacher():
    U = np.linalg.qr(np.random.default_rng(2).standard_normal((2, 2)))[0]
    P = U @ np.diag([1.5, 0.5]) @ U.T
    run = rm.staircase_run(3, 2, 1 / 3, 0.5, eta=0.05, P=P, N=[1e4], alphas=np.linspace(0, 300, 301), seed=1)
    G = np.random.default_rng(1).standard_normal((3, 2))
    S = np.linalg.lstsq(G / 100, run.M0[0], rcond=None)[0]  # M0 = G/sqrt(N) S
    np.testing.assert_allclose(S @ S, P, atol=1e-12)  # S = sqrt(P), symmetric
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    with pytest.raises(ValueError, match="N"):
        rm.staircase_run(3, 2, 1 / 3, 0.5, eta=0.05, P=P, N=[0.5], alphas=[0.0, 1.0], seed=1)


def test_paired_escapes_are_the_chain_and_the_ode_from_the_same_starts():
    Q0, M0, P = gaussian_overlaps(2, 1, 300, 3, seed=3)
    al = np.arange(0, 60, 0.5)
    pe = rm.paired_escapes(Q0, M0, P, 300, 0.5, 1.0, eta=0.1, alphas=al, levels=[1.0, 0.0], seed=4)
    chain = qn.sgd_overlaps(Q0, M0, P, 300, 0.5, 1.0, eta=0.1, alphas=al, seed=4)
    ode = qn.integrate_ode(Q0, M0, P, 0.5, 1.0, eta=0.1, alphas=al)
    np.testing.assert_array_equal(pe.loss, qn.to_numpy(chain.loss))
    np.testing.assert_array_equal(pe.chain[:, 0], qn.escape_time(al, pe.loss, 0.5))
    np.testing.assert_array_equal(pe.ode[:, 0], qn.escape_time(al, ode.loss, 0.5))


def test_escape_growth_recovers_slopes_and_a_constant_shift():
    rng = np.random.default_rng(9)
    N = [1e2, 1e3, 1e4, 1e5]
    A, shift, R = np.array([1.5, 3.0]), -2.0, 400
    ode = [A * np.log(n) + rng.normal(0, 0.3, (R, 2)) for n in N]
    chain = [o + shift + rng.normal(0, 0.5, (R, 2)) for o in ode]
    chain[0][0, 1] = np.nan  # a replica that never escaped is left out
    g = rm.escape_growth(N, chain, ode)
    np.testing.assert_allclose(g.chain_mean[1], np.mean(chain[1], axis=0), rtol=1e-12)
    np.testing.assert_allclose(g.chain_mean[0, 1], np.mean(chain[0][1:, 1]), rtol=1e-12)
    for k in range(2):
        # false alarms: 4.5 s.e., two-sided, ~7e-6 each if Gaussian
        assert g.chain_fit[k].z(A[k]) < 4.5 and g.diff_fit[k].z(0.0) < 4.5
        assert abs(g.diff_fit[k].intercept - shift) < 4.5 * g.diff_fit[k].intercept_se
    np.testing.assert_allclose(g.ode_slope, A, rtol=0.02)  # 0.3 / sqrt(400) noise on a ln N span of 7
    with pytest.raises(ValueError, match="same length"):
        rm.escape_growth(N[:1], chain[:1], ode[:1])


# --------------------------------------------------------------------------- where students land


def test_end_frames_keep_the_polar_factor_at_an_isotropic_teacher_and_not_otherwise():
    G = np.random.default_rng(4).standard_normal((3, 3, 2)) / 100
    iso = rm.end_frames(np.eye(3), G, np.eye(2), 1 / 3, 0.5, eta=0.1, alpha=600.0)
    assert np.all(iso.procrustes < 1e-8) and np.all(iso.loss < 1e-4)  # chapter 6: polar factor conserved
    P = np.diag([1.6, 0.4])
    ani = rm.end_frames(np.eye(3), G @ np.sqrt(P), P, 1 / 3, 0.5, eta=0.1, alpha=600.0)
    assert np.all(ani.sequential < 1e-2 * ani.procrustes)
    direct = qn.integrate_ode(np.eye(3), G @ np.sqrt(P), P, 1 / 3, 0.5, eta=0.1, alphas=[0.0, 600.0])
    np.testing.assert_array_equal(ani.loss, direct.loss[-1])
    with pytest.raises(ValueError, match="alpha"):
        rm.end_frames(np.eye(3), G, np.eye(2), 1 / 3, 0.5, eta=0.1, alpha=-1.0)


def test_row_projector_is_a_projector_invariant_under_left_multiplication():
    rng = np.random.default_rng(6)
    M = rng.standard_normal((5, 2, 4))
    F = rng.standard_normal((5, 2, 2)) + 3 * np.eye(2)  # invertible
    Pr = rm.row_projector(M)
    np.testing.assert_allclose(Pr @ Pr, Pr, atol=1e-12)
    np.testing.assert_allclose(Pr, np.swapaxes(Pr, -1, -2), atol=1e-12)
    np.testing.assert_allclose(np.trace(Pr, axis1=-2, axis2=-1), 2.0)
    np.testing.assert_allclose(rm.row_projector(F @ M), Pr, atol=1e-10)  # the row space of F M is that of M
    np.testing.assert_allclose(Pr @ np.swapaxes(M, -1, -2), np.swapaxes(M, -1, -2), atol=1e-12)
    assert np.trace(rm.row_projector(M, 1)[0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rank"):
        rm.row_projector(M, 3)


# --------------------------------------------------------------------------- lifetime runs


def test_lifetime_run_is_the_chain_and_alignment_decay_done_by_hand():
    kw = dict(eta=0.1, noise=1.4, N=40)
    run = rm.lifetime_run(2, 2, 0.5, 0.5, replicas=4, start_seed=1, seed=2, length=0.3, **kw)
    pred = qn.bias_lifetime(2, 2, 0.5, 0.5, **kw)
    al = np.linspace(0, 0.3 * pred.tau, 401)
    Q0, M0, P = gaussian_overlaps(2, 2, 40, 4, seed=1)
    chain = qn.sgd_overlaps(Q0, M0, P, 40, 0.5, 0.5, eta=0.1, alphas=al, noise=1.4, seed=2)
    ok = ~qn.to_numpy(chain.diverged)
    M = qn.to_numpy(chain.M)[:, ok]
    lag0 = 3 / pred.relaxation
    fit = qn.alignment_decay(al, M, start=0.1 * al[-1], min_lag=lag0, max_lag=lag0 + 0.05 * pred.tau)
    assert run.fit.tau == fit.tau and run.lags == (lag0, lag0 + 0.05 * pred.tau)
    np.testing.assert_array_equal(run.align, qn.alignment(M, M0[ok][None]).mean(axis=1))
    assert run.ratio == fit.tau / pred.tau and run.diverged == int((~ok).sum())
    assert run.align[0] == pytest.approx(1.0)  # aligned with its own start


def test_lifetime_run_without_noise_needs_its_times_and_lags():
    with pytest.raises(ValueError, match="alpha"):
        rm.lifetime_run(2, 2, 0.5, 0.5, eta=0.1, N=40, replicas=4, start_seed=1, seed=2, length=1.0)
    with pytest.raises(ValueError, match="lags"):
        rm.lifetime_run(2, 2, 0.5, 0.5, eta=0.1, N=40, replicas=4, start_seed=1, seed=2, alpha=np.arange(100.0))
    with pytest.raises(ValueError, match="exactly one"):
        rm.lifetime_run(2, 2, 0.5, 0.5, eta=0.1, noise=1.0, N=40, replicas=4, start_seed=1, seed=2)
    with pytest.raises(ValueError, match="replicas"):
        rm.lifetime_run(2, 2, 0.5, 0.5, eta=0.1, noise=1.0, N=40, replicas=1, start_seed=1, seed=2, length=1.0)
    # a control: no decay beyond the jitter
    c = rm.lifetime_run(
        2,
        2,
        0.5,
        0.5,
        eta=0.1,
        N=40,
        replicas=4,
        start_seed=1,
        seed=2,
        alpha=np.linspace(0, 400, 201),
        lags=(10.0, 40.0),
    )
    assert np.isinf(c.tau) and c.fit.tau > 10 * 400
