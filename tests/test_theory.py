"""Plateau, critical step and escape rate against the ODE right-hand side and integration."""

import numpy as np
import pytest

import quadnet as qn

CASES = [(4, 2, 0.25, 0.5, 0.0), (1, 1, 1.0, 1.0, 0.0), (3, 2, 0.7, 0.2, 0.0), (6, 1, 0.1, 2.0, 0.4)]


def rhs_on_diagonal(q, p, ps, a, b, lr, noise=0.0, drift_only=False):
    dQ, dM = qn.ode_rhs(q * np.eye(p), np.zeros((p, ps)), np.eye(ps), a, b, lr, noise=noise, drift_only=drift_only)
    return dQ[0, 0]


@pytest.mark.parametrize("p,ps,a,b,noise", CASES)
def test_plateau_is_a_zero_of_the_rhs(p, ps, a, b, noise):
    drift = qn.plateau(p, ps, a, b)
    assert abs(rhs_on_diagonal(drift.q, p, ps, a, b, 1.0, noise, drift_only=True)) < 1e-12
    lr = 0.7 * qn.critical_lr(p, ps, a, b, noise=noise)
    full = qn.plateau(p, ps, a, b, lr, noise=noise)
    dQ, dM = qn.ode_rhs(full.Q, full.M, np.eye(ps), a, b, lr, noise=noise)
    assert np.abs(dQ).max() < 1e-12 and np.abs(dM).max() == 0
    assert full.q > drift.q  # the γ² term shifts q upward
    # loss is the population loss at the fixed point
    assert full.loss == pytest.approx(float(qn.population_loss(full.Q, full.M, np.eye(ps), a, b, noise)), rel=1e-12)


@pytest.mark.parametrize("p,ps,a,b,noise", CASES)
def test_critical_step_is_where_the_fixed_point_disappears(p, ps, a, b, noise):
    gc = qn.critical_lr(p, ps, a, b, noise=noise)
    q = np.linspace(1e-3, 20, 4001) * b * ps / a
    below = np.array([rhs_on_diagonal(x, p, ps, a, b, 0.99 * gc, noise) for x in q])
    above = np.array([rhs_on_diagonal(x, p, ps, a, b, 1.01 * gc, noise) for x in q])
    assert np.any(np.diff(np.sign(below)) != 0)  # a fixed point exists below γ_c
    assert np.all(above > 0)  # none above: q grows without bound
    with pytest.raises(ValueError, match="critical"):
        qn.plateau(p, ps, a, b, 1.01 * gc, noise=noise)


def test_plateau_loss_formula_for_default_readouts():
    for p in (1, 2, 5, 9):
        for ps in (1, 2, 3):
            pl = qn.plateau(p, ps, 1 / p, 1 / ps)
            assert pl.loss == pytest.approx(1 / ps + 1 / (p + 2), rel=1e-12)


@pytest.mark.parametrize("drift_only", [True, False])
def test_escape_rate_matches_integrated_growth(drift_only):
    p, ps, a, b, lr = 4, 2, 0.25, 0.5, 0.5
    pl = qn.plateau(p, ps, a, b, 0.0 if drift_only else lr)
    M0 = 1e-9 * np.random.default_rng(3).standard_normal((p, ps))
    al = np.array([0.0, 10.0, 20.0])
    tr = qn.integrate_ode(pl.Q, M0, np.eye(ps), a, b, lr, al, drift_only=drift_only, rtol=1e-12, atol=1e-20)
    norms = np.linalg.norm(tr.M, axis=(-2, -1))
    slope = np.log(norms[2] / norms[1]) / 10
    assert slope == pytest.approx(qn.escape_rate(p, ps, a, b, lr, drift_only=drift_only), rel=1e-6)
    # direction of M kept
    assert np.abs(tr.M[2] / norms[2] - M0 / np.linalg.norm(M0)).max() < 1e-6


def test_escape_rate_independent_of_p_at_fixed_effective_step():
    eta = 0.1
    rates = [qn.escape_rate(p, 2, 1 / p, 1 / 2, eta * p, drift_only=True) for p in (2, 4, 8, 16)]
    np.testing.assert_allclose(rates, rates[0], rtol=1e-12)
    # at fixed γ instead the rate falls like 1/p
    r = [qn.escape_rate(p, 2, 1 / p, 1 / 2, 0.5, drift_only=True) for p in (2, 4, 8)]
    np.testing.assert_allclose(np.array(r) * np.array([2, 4, 8]), r[0] * 2, rtol=1e-12)


def test_integration_near_critical_step():
    """Just above γ_c the ODE from the plateau blows up; just below it stays finite."""
    p, ps, a, b = 2, 2, 0.5, 0.5
    gc = qn.critical_lr(p, ps, a, b)
    Q0 = qn.plateau(p, ps, a, b).q * np.eye(p)
    M0 = np.zeros((p, ps))
    al = np.linspace(0, 200, 11)
    assert bool(qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 1.03 * gc, al).diverged)
    assert not bool(qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 0.97 * gc, al).diverged)


@pytest.mark.parametrize("p,ps,a,b,lr", [(4, 2, 0.25, 0.5, 0.5), (3, 1, 1 / 3, 2.0, 0.3), (2, 1, 0.5, 1.0, 0.2)])
def test_late_time_law_of_gradient_flow(p, ps, a, b, lr):
    rng = np.random.default_rng(0)
    M0 = rng.standard_normal((p, ps)) / 30
    Q0 = np.eye(p) + M0 @ M0.T
    al = np.array([0.0, 3e3, 3e4, 1e5])
    tr = qn.integrate_ode(Q0, M0, np.eye(ps), a, b, lr, al, drift_only=True)
    ratio = tr.loss[1:] / qn.late_time_loss(p, ps, a, lr, al[1:])
    assert abs(ratio[-1] - 1) < 2e-3  # corrections are O(1/α) relative
    assert abs(ratio[-1] - 1) < abs(ratio[0] - 1)  # and shrink


@pytest.mark.parametrize("drift_only", [True, False])
def test_escape_time_grows_like_log_n_with_predicted_slope(drift_only):
    """ODE from Q0 = q0 I, M0 = m/√N: α_esc(N) against ln N has slope 1/(2r)."""
    p, ps, a, b, lr = 4, 2, 0.25, 0.5, 0.4
    m = np.random.default_rng(1).standard_normal((p, ps))
    Ns = np.array([1e3, 1e4, 1e5, 1e6])
    al = np.linspace(0, 150, 15001)
    tr = qn.integrate_ode(
        np.eye(p), m[None] / np.sqrt(Ns)[:, None, None], np.eye(ps), a, b, lr, al, drift_only=drift_only
    )
    half = qn.plateau(p, ps, a, b, 0.0 if drift_only else lr).loss / 2
    t_esc = np.array([al[np.argmax(tr.loss[:, i] < half)] for i in range(len(Ns))])
    slope = np.polyfit(np.log(Ns), t_esc, 1)[0]
    assert slope == pytest.approx(1 / (2 * qn.escape_rate(p, ps, a, b, lr, drift_only=drift_only)), rel=0.02)
    # the estimate has the same slope, and is within an O(1)/(2r) offset of the measured times
    est = np.array([qn.escape_time_estimate(p, ps, a, b, lr, int(n), drift_only=drift_only) for n in Ns])
    np.testing.assert_allclose(np.diff(est), np.diff(np.log(Ns)) * slope, rtol=0.02)


@pytest.mark.parametrize("p,ps", [(4, 2), (3, 1), (2, 2)])
def test_manifold_loses_stability_at_its_critical_step(p, ps):
    """Started next to the manifold (a realizable radial + isotropic perturbation), the full ODE
    returns to zero loss at 0.95 γ_m and leaves the manifold at 1.05 γ_m (loss grows ≥ 10×)."""
    a, b = 1 / p, 1 / ps
    gm = qn.manifold_critical_lr(ps, a, b)
    O = np.linalg.qr(np.random.default_rng(0).standard_normal((p, ps)))[0]
    Qs, Ms = qn.solution_overlaps(O, a, b)
    Q0, M0 = Qs * 1.01**2 + 1e-4 * np.eye(p), Ms * 1.01
    al = np.array([0.0, 200.0])
    below = qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 0.95 * gm, al)
    above = qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 1.05 * gm, al)
    assert below.loss[-1] < 1e-3 * below.loss[0]
    assert bool(above.diverged) or above.loss[-1] > 10 * above.loss[0]
    assert gm <= qn.critical_lr(p, ps, a, b) * (1 + 1e-12)  # the manifold goes first
