"""Bad input raises ValueError/TypeError naming the parameter, never a NaN deep inside."""
import numpy as np
import pytest

import quadnet as qn

I2 = np.eye(2)
Q4, M4 = np.eye(4), np.zeros((4, 2))


@pytest.mark.parametrize(
    "call,exc,name",
    [
        (lambda: qn.population_loss(np.eye(3), M4, I2, 0.25, 0.5), ValueError, "Q"),
        (lambda: qn.population_loss(Q4, M4, np.eye(3), 0.25, 0.5), ValueError, "P"),
        (lambda: qn.population_loss(Q4, np.zeros(4), I2, 0.25, 0.5), ValueError, "M"),
        (lambda: qn.population_loss(Q4, M4, I2, 0.0, 0.5), ValueError, "a"),
        (lambda: qn.population_loss(Q4, M4, I2, 0.25, -1), ValueError, "b"),
        (lambda: qn.population_loss(Q4, M4, I2, 0.25, 0.5, noise=-0.1), ValueError, "noise"),
        (lambda: qn.population_loss(Q4 * np.nan, M4, I2, 0.25, 0.5), ValueError, "Q"),
        (lambda: qn.population_loss(Q4, M4, I2, float("inf"), 0.5), ValueError, "a"),
        (lambda: qn.population_loss("eye", M4, I2, 0.25, 0.5), TypeError, "Q"),
        (lambda: qn.population_loss(Q4, M4, I2, "big", 0.5), TypeError, "a"),
        (lambda: qn.ode_rhs(Q4, M4, I2, 0.25, 0.5, 0.0), ValueError, "lr"),
        (lambda: qn.ode_rhs(Q4, M4, I2, 0.25, 0.5, -0.3), ValueError, "lr"),
        (lambda: qn.integrate_ode(Q4, M4, I2, 0.25, 0.5, 0.3, [0, 2, 1]), ValueError, "alphas"),
        (lambda: qn.integrate_ode(Q4, M4, I2, 0.25, 0.5, 0.3, [[0, 1]]), ValueError, "alphas"),
        (lambda: qn.integrate_ode(Q4, M4, I2, 0.25, 0.5, 0.3, [-1, 1]), ValueError, "alphas"),
        (lambda: qn.plateau(0, 2, 0.25, 0.5), ValueError, "p"),
        (lambda: qn.plateau(4, 0, 0.25, 0.5), ValueError, "p_star"),
        (lambda: qn.plateau(2.5, 1, 0.25, 0.5), TypeError, "p"),
        (lambda: qn.plateau(4, 2, 0.25, 0.5, lr=-1), ValueError, "lr"),
        (lambda: qn.plateau(4, 2, 0.25, 0.5, lr=10.0), ValueError, "lr"),
        (lambda: qn.critical_lr(4, 2, 0, 0.5), ValueError, "a"),
        (lambda: qn.escape_rate(4, 2, 0.25, 0.5, 0.0), ValueError, "lr"),
        (lambda: qn.polar(np.zeros((2, 4))), ValueError, "M"),
        (lambda: qn.closest_solution(M4, 0.25, 0.0), ValueError, "b"),
        (lambda: qn.teacher(3, 2, seed=0, backend="numpy"), ValueError, "N"),
        (lambda: qn.teacher(0, 10, seed=0, backend="numpy"), ValueError, "p_star"),
        (lambda: qn.init_student(2, 10, q0=0, seed=0, backend="numpy"), ValueError, "q0"),
        (lambda: qn.init_student(2, 10, seed="x", backend="numpy"), TypeError, "seed"),
        (lambda: qn.hessian(np.ones((2, 5)), np.ones((1, 6)), 0.5, 1.0), ValueError, "N"),
        (lambda: qn.predicted_spectrum("saddle", 2, 1, 5, 0.5, 1.0), ValueError, "where"),
        (lambda: qn.stiefel_dimension(1, 2), ValueError, "p"),
        (lambda: qn.profile("huge"), ValueError, "QUADNET_PROFILE"),
    ],
)
def test_bad_input_names_the_parameter(call, exc, name):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert name in msg, msg


def test_error_states_allowed_range():
    with pytest.raises(ValueError, match="> 0"):
        qn.ode_rhs(Q4, M4, I2, 0.25, 0.5, -1.0)
    with pytest.raises(ValueError, match="≥ 1"):
        qn.plateau(0, 1, 1.0, 1.0)
    with pytest.raises(ValueError, match="γ_c"):
        qn.plateau(4, 2, 0.25, 0.5, lr=10.0)


# --- issue 6: validation everywhere (shapes, dtypes, ranges, PSD overlaps), critical-step warning

Q2, M21 = np.eye(2), np.zeros((2, 1))


@pytest.mark.parametrize(
    "call,exc,name",
    [
        (lambda: qn.population_loss(Q2, 2 * np.ones((2, 1)), np.eye(1), 1, 1), ValueError, "M"),
        (lambda: qn.population_loss(np.array([[1, 0.5], [0, 1]]), M21, np.eye(1), 1, 1), ValueError, "Q"),
        (lambda: qn.population_loss(Q2, M21, -np.eye(1), 1, 1), ValueError, "P"),
        (lambda: qn.integrate_ode(Q2, 3 * np.ones((2, 1)), np.eye(1), 1, 1, 0.1, [0, 1]), ValueError, "M0"),
        (lambda: qn.integrate_ode(Q2, M21, np.eye(1), 1, 1, 0.1, [0, 1], blowup=0.5), ValueError, "blowup"),
        (lambda: qn.integrate_ode(Q2, M21, np.eye(1), 1, 1, 0.1, "0 1"), TypeError, "alphas"),
        (lambda: qn.ode_rhs(Q2, M21, np.eye(1), 1, 1, "0.1"), TypeError, "lr"),
        (lambda: qn.sgd_overlaps(-Q2, M21, np.eye(1), 50, 1, 1, 0.1, [0, 1]), ValueError, "Q0"),
        (lambda: qn.sgd_weights(np.ones((2, 5)), np.ones((1, 5)), 1, 1, 0.1, [0, 1], dtype="float99"), TypeError, "dtype"),
        (lambda: qn.init_student(2, 5, seed=0, backend="numpy", dtype=np.int64), ValueError, "dtype"),
        (lambda: qn.escape_time([0, 2, 1], np.ones(3), 0.5), ValueError, "alpha"),
        (lambda: qn.escape_time("abc", np.ones(3), 0.5), TypeError, "alpha"),
        (lambda: qn.power_law_fit([1, -2, 3], [1, 2, 3]), ValueError, "x"),
        (lambda: qn.power_law_fit([1, 2, 3], [1, 2]), ValueError, "y"),
        (lambda: qn.log_slope([1, 1, 1], [1, 2, 3]), ValueError, "x"),
        (lambda: qn.mean_and_stderr(np.ones((2, 3)), axis=3), ValueError, "axis"),
        (lambda: qn.alignment(np.eye(3)[:, :2], np.eye(3)), ValueError, "M0"),
        (lambda: qn.closest_solution(np.ones((1, 2)), 1, 1), ValueError, "M0"),
        (lambda: qn.solution_overlaps(2 * np.eye(2), 1, 1), ValueError, "O"),
        (lambda: qn.distance_to_manifold_min(Q2, 3 * np.ones((2, 1)), 1, 1), ValueError, "M0"),
        (lambda: qn.overlaps_from_weights(np.ones((2, 2, 5)), np.ones((3, 1, 5))), ValueError, "W_star"),
        (lambda: qn.monte_carlo_loss(np.ones((2, 2, 5)), np.ones((3, 1, 5)), 1, 1, 10), ValueError, "W_star"),
        (lambda: qn.special_point("plateau", np.ones((1, 8)), 2, 1, 1, seed="x"), TypeError, "seed"),
        (lambda: qn.special_point("plateau", np.ones((2, 1, 8)), 2, 1, 1), ValueError, "W_star"),
        (lambda: qn.predicted_spectrum("origin", 2, 3, 2, 1, 1), ValueError, "N"),
        (lambda: qn.escape_time_estimate(4, 2, 0.25, 0.5, 0.5, 6), ValueError, "N"),
        (lambda: qn.late_time_loss(4, 2, 0.25, 0.5, "soon"), TypeError, "alpha"),
        (lambda: qn.profile(3), TypeError, "QUADNET_PROFILE"),
        (lambda: qn.sweep(abs, {"x": [1]}, retries=-1, progress=False), ValueError, "retries"),
        (lambda: qn.sweep(abs, "grid", progress=False), TypeError, "grid"),
    ],
)
def test_more_bad_input_names_the_parameter(call, exc, name):
    with pytest.raises(exc) as info:
        call()
    assert name in str(info.value), str(info.value)


def test_psd_check_tolerates_rounding_and_finite_difference_probes():
    """Rank-deficient Gram matrices (a point of the zero-loss manifold) and small probes around
    them, as a finite-difference Jacobian makes, are accepted; a real violation is not."""
    p, ps, a, b = 4, 2, 0.25, 0.5
    O = np.linalg.qr(np.random.default_rng(0).standard_normal((p, ps)))[0]
    Q, M = (b / a) * O @ O.T, np.sqrt(b / a) * O       # C has p zero eigenvalues
    for h in (0.0, 1e-7, -1e-7, 1e-6):
        Qh = Q.copy()
        Qh[0, 1] += h
        Qh[1, 0] += h
        qn.ode_rhs(Qh, M + h, np.eye(ps), a, b, 0.5)
        assert qn.population_loss(Qh, M, np.eye(ps), a, b) < 1e-3
    with pytest.raises(ValueError, match="positive semidefinite"):
        qn.ode_rhs(Q - 1e-3 * np.eye(p), M, np.eye(ps), a, b, 0.5)


def test_step_above_critical_warns_and_still_reports_divergence():
    import warnings

    p, ps, a, b = 2, 1, 0.5, 1.0
    gc = qn.critical_lr(p, ps, a, b)
    Q0, M0, P = 0.5 * np.eye(p), np.full((p, ps), 0.05), np.eye(ps)
    al = np.linspace(0, 30, 31)
    with pytest.warns(qn.CriticalStepWarning, match="critical step"):
        tr = qn.integrate_ode(Q0, M0, P, a, b, 3 * gc, al)
    assert bool(tr.diverged)
    with pytest.warns(qn.CriticalStepWarning):
        qn.sgd_overlaps(Q0, M0, P, 200, a, b, 3 * gc, [0, 1], seed=0)
    W_star = qn.teacher(ps, 50, seed=0, backend="numpy")
    with pytest.warns(qn.CriticalStepWarning):
        qn.sgd_weights(qn.init_student(p, 50, seed=1, backend="numpy"), W_star, a, b, 3 * gc, [0, 1], seed=0)
    assert issubclass(qn.CriticalStepWarning, RuntimeWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", qn.CriticalStepWarning)
        qn.integrate_ode(Q0, M0, P, a, b, 0.9 * gc, al[:3])                    # below: silent
        qn.integrate_ode(Q0, M0, P, a, b, 3 * gc, al[:3], drift_only=True)     # gradient flow: silent
        qn.integrate_ode(Q0, M0, 2.0 * P, a, b, 3 * gc, al[:3])                # P ≠ I: no γ_c known
