"""The escape from the plateau: the spectral reduction of the ODE, the norm-learning transient, the
noise seed, the escape-time law against the exact chain, and the step limits against integrations.

Each prediction is checked against an independent computation: the full overlap ODE
(`integrate_ode`, `ode_rhs`) or the exact finite-N chain (`sgd_overlaps`). Statistical tests
state their false-alarm rate."""

import warnings

import numpy as np
import pytest
from scipy import stats

import quadnet as qn
from quadnet import fixed_points, stability
from quadnet import spectral_ode as so


def commuting_point(rng, p, ps, s, qk, qp):
    """Full (Q, M) in a random basis with given singular values s, aligned eigenvalues qk, others qp."""
    k = min(p, ps)
    U = np.linalg.qr(rng.standard_normal((p, p)))[0]
    V = np.linalg.qr(rng.standard_normal((ps, ps)))[0]
    S = np.zeros((p, ps))
    S[range(k), range(k)] = s
    return U @ np.diag(np.concatenate([qk, np.full(p - k, qp)])) @ U.T, U @ S @ V.T, U, V


@pytest.mark.parametrize("p,ps", [(4, 2), (3, 3), (2, 3), (5, 1)])
@pytest.mark.parametrize("noise,drift", [(0.0, False), (0.4, False), (0.0, True)])
def test_spectral_rhs_is_the_full_rhs_on_commuting_points(p, ps, noise, drift):
    rng = np.random.default_rng(p * 10 + ps)
    k = min(p, ps)
    s, qk, qp = rng.uniform(0.1, 1.0, k), rng.uniform(1.0, 2.0, k), rng.uniform(0.2, 0.8)
    Q, M, U, V = commuting_point(rng, p, ps, s, qk, qp)
    a, b, lr = 1 / p, 1 / ps, 0.7
    dQ, dM = qn.ode_rhs(Q, M, np.eye(ps), a, b, lr, noise=noise, drift_only=drift)
    dy = so.spectral_rhs(so.SpectralState(p, ps).pack(s, qk, qp), p, ps, a, b, lr, noise, drift)
    dQr, dMr = U.T @ dQ @ U, U.T @ dM @ V
    np.testing.assert_allclose(np.diag(dMr)[:k], dy[:k], atol=1e-13)
    np.testing.assert_allclose(np.diag(dQr)[:k], dy[k : 2 * k], atol=1e-13)
    if p > k:
        np.testing.assert_allclose(np.diag(dQr)[k:], dy[-1], atol=1e-13)
    # and the commuting structure is kept: no off-diagonal derivative
    assert np.abs(dQr - np.diag(np.diag(dQr))).max() < 1e-13
    loss = qn.population_loss(Q, M, np.eye(ps), a, b, noise=noise)
    assert so.spectral_loss(so.SpectralState(p, ps).pack(s, qk, qp), p, ps, a, b, noise) == pytest.approx(
        loss, abs=1e-13
    )


def test_spectral_state_inverts_the_embedding(rng):
    Q, M, _, _ = commuting_point(rng, 4, 2, np.array([0.9, 0.3]), np.array([1.5, 1.2]), 0.7)
    y = so.spectral_state(Q, M)
    np.testing.assert_allclose(y, [0.9, 0.3, 1.5, 1.2, 0.7], atol=1e-12)


@pytest.mark.parametrize("p,ps,eta", [(4, 2, 0.125), (3, 3, 0.05), (2, 1, 0.125)])
def test_first_crossing_matches_the_full_ode_escape_time(p, ps, eta):
    """Escape times of the vectorized spectral integrator = escape times read off integrate_ode."""
    rng = np.random.default_rng(7)
    a, b = qn.default_readouts(p, ps)
    lr = eta / a
    sv = np.sort(np.abs(rng.standard_normal((3, min(p, ps)))), axis=1)[:, ::-1] * 0.01
    level = qn.escape_level(p, ps, a, b, lr)
    sp = so.SpectralState(p, ps)
    out = so.first_crossing(
        sp.pack(sv, np.ones_like(sv), np.ones(3)),
        lambda y, rows: so.spectral_rhs(y, p, ps, a, b, lr),
        lambda y: so.spectral_loss(y, p, ps, a, b),
        level,
        400.0,
    )
    al = np.linspace(0, 1.3 * np.nanmax(out.alpha), 4001)
    for i in range(3):
        M0 = np.zeros((p, ps))
        M0[range(sp.k), range(sp.k)] = sv[i]
        ode = qn.integrate_ode(np.eye(p), M0, np.eye(ps), a, b, lr, al, rtol=1e-11, atol=1e-14)
        assert out.alpha[i] == pytest.approx(float(qn.escape_time(al, ode.loss, level)), abs=2e-3)


@pytest.mark.parametrize("q0", [0.2, 1.0, 3.0])
def test_transient_log_gain_against_the_ode(q0):
    """ln‖M(α)‖ − r_pl α from a tiny commuting seed settles at ln‖M(0)‖ + Δ(q0)."""
    p, ps, eta = 4, 2, 0.125
    a, b = qn.default_readouts(p, ps)
    tr = qn.norm_transient(p, ps, a, b, eta=eta, q0=q0)
    M0 = 1e-7 * np.eye(p)[:, :ps]
    al = np.array([0.0, 40.0, 50.0])
    ode = qn.integrate_ode(q0 * np.eye(p), M0, np.eye(ps), a, b, eta / a, al, rtol=1e-12, atol=1e-20)
    gain = np.log(np.linalg.norm(ode.M[1:], axis=(-2, -1)) / np.linalg.norm(M0)) - tr.plateau_rate * al[1:]
    # still linear at α = 50 (‖M‖ ~ 1e-7 e^{10} ~ 2e-3): both times give the same gain
    np.testing.assert_allclose(gain, tr.log_gain, atol=2e-4)
    assert tr.plateau_rate == pytest.approx(qn.escape_rate(p, ps, a, b, eta / a))


def test_larger_initialization_escapes_later_through_the_transient():
    """The issue's case: q0 = 3 escapes later than q0 = 1 (ODE from the same seed direction)."""
    p, ps, a, b, lr, N = 4, 2, 0.25, 0.5, 0.5, 10**4
    t = {q0: qn.escape_time_estimate(p, ps, a, b, lr, N, q0=q0) for q0 in (0.3, 1.0, 3.0)}
    assert t[3.0] > t[1.0] > t[0.3]


def test_noise_seed_variance_against_the_chain():
    """From M(0) = 0 exactly, the chain's √N M(α) e^{−∫r} is N(0, κ(α)) per entry, κ(α) the seed
    variance accumulated by α (→ κ).

    R = 400 replicas × 8 entries at N = 2·10⁴, read at α = 11 (‖M‖² ~ 1e-2: the linearization holds
    to ~1 %). The sample variance of 3200 Gaussian numbers has relative s.e. √(2/3200) = 2.5 %;
    allow 5 s.e. + 2 % for the nonlinearity and the O(N^{-1/2}) corrections (false alarm < 1e-5 for
    independent entries). The plain seed (no SGD noise on M: variance 0) and half of κ are excluded."""
    p, ps, eta, N, R, alpha = 4, 2, 0.125, 20_000, 400, 11.0
    a, b = qn.default_readouts(p, ps)
    tr = qn.norm_transient(p, ps, a, b, eta=eta, q0=1.0)
    Q0 = np.broadcast_to(np.eye(p), (R, p, p))
    run = qn.sgd_overlaps(Q0, np.zeros((p, ps)), np.eye(ps), N, a, b, eta / a, [alpha], seed=11)
    m = (np.sqrt(N) * run.M[-1] * np.exp(-np.interp(alpha, tr.alpha, tr.growth))).ravel()
    expected = np.interp(alpha, tr.alpha, tr.seed_variance)
    assert 0.9 * tr.kappa < expected <= tr.kappa  # most of κ is collected by α = 11
    assert abs(m.var() / expected - 1) < 5 * np.sqrt(2 / m.size) + 0.02, (m.var(), expected)


@pytest.mark.parametrize(
    "p,ps,eta,q0,noise",
    [(4, 2, 0.125, 1.0, 0.0), (2, 1, 0.125, 0.3, 0.3), (3, 3, 0.125, 1.0, 0.0), (2, 3, 0.1, 1.0, 0.0)],
)
def test_escape_time_law_against_the_exact_chain(p, ps, eta, q0, noise):
    """Two-sample KS test (the last case a narrow student, p < p*), chain (384 replicas from exact
    Gaussian overlaps, N = 3000) against
    2000 law samples, not rejected at 1e-3 (false alarm 1e-3 per case); the plain seed (κ = 0) is
    further from the chain than the law; the means agree within 4 s.e. + 1 %."""
    a, b = qn.default_readouts(p, ps)
    lr, N, R = eta / a, 3000, 384
    law = qn.escape_time_law(p, ps, a, b, lr, N, q0=q0, noise=noise, samples=2000, seed=1)
    Q0, M0, P = qn.gaussian_overlaps(p, ps, N, R, q0=q0, seed=2)
    al = np.arange(0, 2.5 * np.nanmax(law), 0.05)
    chain = qn.sgd_overlaps(Q0, M0, P, N, a, b, lr, al, noise=noise, seed=3)
    level = qn.escape_level(p, ps, a, b, lr, noise=noise)
    t = qn.escape_time(al, chain.loss, level)
    assert np.isfinite(t).all() and not chain.diverged.any()
    ks = stats.ks_2samp(t, law)
    assert ks.pvalue > 1e-3, ks
    m, se = qn.mean_and_stderr(t)
    assert abs(m - law.mean()) < 4 * np.hypot(se, law.std() / np.sqrt(law.size)) + 0.01 * m
    plain = qn.escape_time_law(p, ps, a, b, lr, N, q0=q0, noise=noise, samples=2000, seed=1, kappa=0.0)
    assert ks.statistic < stats.ks_2samp(t, plain).statistic


def test_law_shifts_by_ln10_over_2r_per_decade():
    p, ps, a, b, lr = 4, 2, 0.25, 0.5, 0.5
    r = qn.escape_rate(p, ps, a, b, lr)
    t4 = qn.escape_time_law(p, ps, a, b, lr, 10**4, samples=500, seed=4)
    t6 = qn.escape_time_law(p, ps, a, b, lr, 10**6, samples=500, seed=4)
    np.testing.assert_allclose(t6 - t4, np.log(100) / (2 * r), rtol=2e-3)  # same seeds: an exact shift


def test_estimate_is_deterministic_and_the_law_is_seeded():
    args = (4, 2, 0.25, 0.5, 0.5, 10**4)
    assert qn.escape_time_estimate(*args) == qn.escape_time_estimate(*args)
    np.testing.assert_array_equal(
        qn.escape_time_law(*args, samples=50, seed=9), qn.escape_time_law(*args, samples=50, seed=9)
    )
    assert not np.array_equal(
        qn.escape_time_law(*args, samples=50, seed=9), qn.escape_time_law(*args, samples=50, seed=10)
    )


def test_escape_level_is_reached_with_label_noise():
    """With label noise the full ODE from an informed start falls below the escape level (it is
    above the stationary loss), and never below σ²/2."""
    p, ps, eta, sigma = 4, 2, 0.125, 0.5
    a, b = qn.default_readouts(p, ps)
    level = qn.escape_level(p, ps, a, b, eta=eta, noise=sigma)
    O = np.eye(p)[:, :ps]
    ode = qn.integrate_ode(
        np.eye(p) + 0.25 * O @ O.T, 0.5 * O, np.eye(ps), a, b, eta / a, np.linspace(0, 300, 301), noise=sigma
    )
    assert ode.loss[-1] < level < ode.loss[0]
    assert ode.loss.min() > 0.5 * sigma**2


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(q0=0.0), "q0"),
        (dict(q0=-1.0), "q0"),
        (dict(N=5), "N"),
        (dict(q0=50.0), "basin"),
        (dict(lr=3.0), "critical"),
        (dict(lr=None, eta=0.1), None),
        (dict(lr=0.5, eta=0.1), "not both"),
    ],
)
def test_escape_predictions_reject_bad_input(bad, match):
    args = dict(p=4, p_star=2, a=0.25, b=0.5, lr=0.5, N=10**4)
    args.update(bad)
    if match is None:
        assert np.isfinite(qn.escape_time_estimate(**args))
        return
    with pytest.raises((ValueError, TypeError), match=match):
        qn.escape_time_estimate(**args)


def test_trapping_plateau_is_reported():
    """p = p* = 3 just below γ_c: the shifted plateau's escape rate is ≤ 0 — no escape to predict."""
    a, b = qn.default_readouts(3, 3)
    lr = 0.999 * qn.critical_lr(3, 3, a, b)
    assert qn.escape_rate(3, 3, a, b, lr) <= 0
    with pytest.raises(ValueError, match="traps"):
        qn.escape_time_estimate(3, 3, a, b, lr, 10**4)


# --------------------------------------------------------------------------- step limits


@pytest.mark.parametrize("p,ps,eta", [(4, 2, 0.125), (2, 1, 0.1), (3, 3, 0.2)])
def test_plateau_basin_edge_against_the_m0_dynamics(p, ps, eta):
    """Q(0) = q0 I, M = 0: the ODE reaches the plateau just inside q_u and diverges just outside."""
    a, b = qn.default_readouts(p, ps)
    q_u = qn.plateau_basin_q(p, ps, a, b, eta=eta)
    al = np.linspace(0, 400, 41)
    inside = qn.integrate_ode(0.98 * q_u * np.eye(p), np.zeros((p, ps)), np.eye(ps), a, b, eta / a, al)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        outside = qn.integrate_ode(1.02 * q_u * np.eye(p), np.zeros((p, ps)), np.eye(ps), a, b, eta / a, al)
    assert not inside.diverged and bool(outside.diverged)
    assert np.trace(inside.Q[-1]) / p == pytest.approx(qn.plateau(p, ps, a, b, eta=eta).q, rel=1e-6)
    # basin_lr inverts plateau_basin_q
    assert qn.basin_lr(p, ps, a, b, q0=q_u) == pytest.approx(eta / a, rel=1e-9)


@pytest.mark.parametrize("p,ps", [(2, 1), (4, 2)])
def test_post_escape_divergence_threshold_against_the_full_ode(p, ps):
    """From a generic small seed the full ODE converges (to a stationary state) at 0.99 γ_d and
    diverges after the escape at 1.01 γ_d, below the plateau's γ_c."""
    a, b = qn.default_readouts(p, ps)
    lim = stability.step_limits(p, ps, a, b)
    assert lim.manifold < lim.post_escape < lim.critical
    rng = np.random.default_rng(3)
    M0 = 1e-3 * rng.standard_normal((p, ps))
    Q0 = np.eye(p) + M0 @ M0.T
    al = np.linspace(0, 1500, 301)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        below = qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 0.99 * lim.post_escape, al)
        above = qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 1.01 * lim.post_escape, al)
    assert not below.diverged and bool(above.diverged)
    assert below.loss[-1] > 1e-2  # above γ_m: a stationary state of non-zero loss
    # it diverges after leaving the plateau: M has grown from 1e-3 to order one first
    assert np.nanmax(np.sum(above.M**2, axis=(-2, -1))) > 0.1


def test_stationary_state_is_a_stable_fixed_point_of_the_full_ode():
    p, ps, eta = 4, 2, 0.27
    a, b = qn.default_readouts(p, ps)
    st = fixed_points.stationary_state(p, ps, a, b, eta=eta)
    dQ, dM = qn.ode_rhs(st.Q, st.M, np.eye(ps), a, b, eta / a)
    assert max(np.abs(dQ).max(), np.abs(dM).max()) < 1e-10
    assert st.top_eigenvalue.real < 0 and st.loss > 0.1
    assert np.all(st.residual_eigenvalues > 0.1)  # off the manifold: Q − M Mᵀ has no zero eigenvalue left
    assert qn.population_loss(st.Q, st.M, np.eye(ps), a, b) == pytest.approx(st.loss, abs=1e-12)


def test_quotient_spectrum_reproduces_the_manifold_instability():
    """At a manifold point the top eigenvalue (symmetry zero modes removed) is
    λ(γ) = −8abγ + 16a²b²(p*+2)γ² (chapter 2), negative at 0.98 γ_m, positive at 1.02 γ_m."""
    p, ps = 4, 2
    a, b = qn.default_readouts(p, ps)
    O = np.linalg.qr(np.random.default_rng(0).standard_normal((p, ps)))[0]
    Q, M = qn.solution_overlaps(O, a, b)
    for f in (0.98, 1.02):
        lr = f * qn.manifold_critical_lr(ps, a, b)
        ev = fixed_points.quotient_spectrum(fixed_points.ode_jacobian(Q, M, np.eye(ps), a, b, lr), Q, M)
        nonzero = ev[np.abs(ev) > 1e-6]
        lam = -8 * a * b * lr + 16 * a * a * b * b * (ps + 2) * lr * lr
        assert nonzero.real.max() == pytest.approx(max(lam, nonzero.real.max() if lam < 0 else lam), rel=1e-6)
        assert np.min(np.abs(nonzero - lam)) < 1e-7


def test_trap_step_is_where_the_escape_rate_vanishes():
    a, b = qn.default_readouts(3, 3)
    lim = stability.step_limits(3, 3, a, b)
    assert lim.trap is not None and lim.trap < lim.critical
    assert qn.escape_rate(3, 3, a, b, lim.trap) == pytest.approx(0.0, abs=1e-9)
    assert "trapped" in lim.regime(0.5 * (lim.trap + lim.critical))
