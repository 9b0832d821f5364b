"""The CriticalStepWarning says the truth about the stable range (issue 11, item 3): it fires where
the run is expected to diverge — above γ_c, outside the plateau's basin, above the post-escape
step — for an exactly or nearly orthonormal teacher, and stays silent where the run converges."""

import warnings

import numpy as np

import quadnet as qn


def warns(fn):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn()
    return [w for w in rec if issubclass(w.category, qn.CriticalStepWarning)]


def small_start(p, ps, q0=1.0, seed=0):
    M0 = 1e-3 * np.random.default_rng(seed).standard_normal((p, ps))
    return q0 * np.eye(p) + M0 @ M0.T, M0


def test_nearly_orthonormal_teacher_far_above_critical_warns():
    """The issue's case: P ≈ I from a finite-N teacher (not exactly I) at 3 γ_c was silent."""
    p, ps, a, b = 4, 2, 0.25, 0.5
    Ws = np.random.default_rng(1).standard_normal((ps, 20_000))  # Gaussian rows: P = I + O(N^{-1/2})
    P = Ws @ Ws.T / 20_000
    assert 0 < np.abs(P - np.eye(ps)).max() < 0.05
    Q0, M0 = small_start(p, ps)
    lr = 3 * qn.critical_lr(p, ps, a, b)
    rec = warns(lambda: qn.integrate_ode(Q0, M0, P, a, b, lr, [0, 1.0]))
    assert rec and "critical step" in str(rec[0].message)


def test_between_manifold_and_critical_steps_the_warning_follows_the_regime():
    """(2, 1): γ_m < γ_d < γ_c. Below γ_m: silent; between γ_m and γ_d (stationary state): silent;
    between γ_d and γ_c (diverges after the escape): warns, and does not call lr ≤ γ_c stable."""
    p, ps = 2, 1
    a, b = qn.default_readouts(p, ps)
    lim = qn.step_limits(p, ps, a, b)
    Q0, M0 = small_start(p, ps)
    run = lambda lr: warns(lambda: qn.integrate_ode(Q0, M0, np.eye(ps), a, b, lr, [0, 1.0]))  # noqa: E731
    assert not run(0.9 * lim.manifold)
    assert not run(0.5 * (lim.manifold + lim.post_escape))
    rec = run(0.5 * (lim.post_escape + lim.critical))
    assert rec and "post-escape" in str(rec[0].message) and "lr ≤ γ_c is the stable range" not in str(rec[0].message)
    # and the warning is right: the run does diverge there, and does not in the stationary regime
    al = np.linspace(0, 1500, 31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        assert bool(qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 0.5 * (lim.post_escape + lim.critical), al).diverged)
        assert not bool(qn.integrate_ode(Q0, M0, np.eye(ps), a, b, 0.5 * (lim.manifold + lim.post_escape), al).diverged)


def test_start_outside_the_basin_warns_below_critical():
    """p = 4, p* = 2, γ = 0.5 (η = 0.125, below γ_c = 1.2): q0 = 10 diverges and warns, q0 = 3 does not."""
    p, ps, a, b, lr = 4, 2, 0.25, 0.5, 0.5
    for q0, expect in ((10.0, True), (3.0, False)):
        Q0, M0 = small_start(p, ps, q0)
        rec = warns(lambda Q0=Q0, M0=M0: qn.integrate_ode(Q0, M0, np.eye(ps), a, b, lr, [0, 1.0]))
        assert bool(rec) is expect, q0
        if expect:
            assert "basin" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        assert bool(qn.integrate_ode(*small_start(p, ps, 10.0), np.eye(ps), a, b, lr, [0, 50.0]).diverged)


def test_far_from_orthonormal_teacher_is_silent_and_the_drift_is_exempt():
    p, ps, a, b = 4, 2, 0.25, 0.5
    Q0, M0 = small_start(p, ps)
    lr = 3 * qn.critical_lr(p, ps, a, b)
    assert not warns(lambda: qn.integrate_ode(Q0, M0, np.diag([1.6, 0.4]), a, b, lr, [0, 0.1]))
    assert not warns(lambda: qn.integrate_ode(Q0, M0, np.eye(ps), a, b, lr, [0, 0.1], drift_only=True))
