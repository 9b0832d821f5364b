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
