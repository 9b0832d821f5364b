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
        (
            lambda: qn.sgd_weights(np.ones((2, 5)), np.ones((1, 5)), 1, 1, 0.1, [0, 1], dtype="float99"),
            TypeError,
            "dtype",
        ),
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
    Q, M = (b / a) * O @ O.T, np.sqrt(b / a) * O  # C has p zero eigenvalues
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
        qn.integrate_ode(Q0, M0, P, a, b, 0.95 * qn.manifold_critical_lr(ps, a, b), al[:3])  # stable range: silent
        qn.integrate_ode(Q0, M0, P, a, b, 3 * gc, al[:3], drift_only=True)  # gradient flow: silent
        qn.integrate_ode(Q0, M0, 2.0 * P, a, b, 3 * gc, al[:3])  # P ≠ I: no γ_c known


# --- issue 11 item 8 and issue 12 item 3: errors that name the parameter and the allowed range


def test_empty_batch_is_a_clear_error():
    """Before: "cannot reshape array of size 0 into shape (0,newaxis)"."""
    with pytest.raises(ValueError, match="empty batch"):
        qn.integrate_ode(np.zeros((0, 4, 4)), np.zeros((0, 4, 2)), I2, 0.25, 0.5, 0.3, [0, 1])


def _seeded_calls():
    from quadnet.starts import gaussian_overlaps

    Ws = qn.teacher(1, 8, seed=0, backend="numpy")
    Q0, M0 = np.eye(2), np.full((2, 1), 0.1)
    return {
        "teacher": lambda s: qn.teacher(1, 8, seed=s, backend="numpy"),
        "init_student": lambda s: qn.init_student(2, 8, seed=s, backend="numpy"),
        "make_rng": lambda s: qn.make_rng(s, "numpy"),
        "special_point": lambda s: qn.special_point("plateau", Ws, 2, 1.0, 1.0, seed=s),
        "monte_carlo_loss": lambda s: qn.monte_carlo_loss(np.ones((2, 8)), Ws, 1.0, 1.0, 10, seed=s),
        "sgd_overlaps": lambda s: qn.sgd_overlaps(Q0, M0, np.eye(1), 20, 0.5, 1.0, 0.1, [0, 1], seed=s),
        "sgd_weights": lambda s: qn.sgd_weights(np.ones((2, 8)), Ws, 0.5, 1.0, 0.1, [0, 1], seed=s),
        "gaussian_overlaps": lambda s: gaussian_overlaps(2, 1, 20, seed=s),
    }


@pytest.mark.parametrize("name", sorted(_seeded_calls()))
def test_negative_seed_names_the_parameter(name):
    """Every public function taking a seed: seed=-1 is a ValueError naming ``seed`` (special_point
    answered with a TypeError from NumPy's default_rng before)."""
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got -1"):
        _seeded_calls()[name](-1)


@pytest.mark.parametrize("fn", ["population_loss", "ode_rhs"])
def test_parameter_array_of_the_wrong_shape_names_it(fn):
    """Before: "operands could not be broadcast together with shapes (3,) (2,)"."""
    Qb, Mb = np.stack([Q4, Q4]), np.stack([M4 + 0.01, M4])
    args = (Qb, Mb, I2, np.array([0.25, 0.3, 0.4]), 0.5) + ((0.3,) if fn == "ode_rhs" else ())
    with pytest.raises(
        ValueError, match=r"a has shape \(3,\), which does not broadcast against the batch shape \(2,\)"
    ):
        getattr(qn, fn)(*args)
    with pytest.raises(TypeError, match="a must be a scalar"):
        qn.integrate_ode(Qb, Mb, I2, np.array([0.25, 0.3]), 0.5, 0.3, [0, 1])


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: qn.population_loss(Q4, M4, I2, 1e300, 0.5), "a"),
        (lambda: qn.ode_rhs(Q4, M4, I2, 0.25, 0.5, 1e300), "lr"),
        (lambda: qn.ode_rhs(Q4, M4, I2, 0.25, 0.5, eta=1e300), "eta"),
        (lambda: qn.integrate_ode(Q4, M4, I2, 1e300, 0.5, 0.3, [0, 1]), "a"),
        (lambda: qn.integrate_ode(Q4, M4, I2, 0.25, 1e300, 0.3, [0, 1]), "b"),
        (lambda: qn.integrate_ode(Q4, M4, I2, 0.25, 0.5, 1e300, [0, 1]), "lr"),
        (lambda: qn.closest_solution(np.eye(4)[:, :2], 1e300, 1.0), "a"),
        (lambda: qn.hessian(np.ones((2, 3)), np.ones((1, 3)), 1e300, 1.0), "a"),
        (lambda: qn.sgd_overlaps(Q4, M4, I2, 100, 1e300, 0.5, 0.3, [0, 1], seed=0), "a"),
    ],
)
def test_huge_parameters_are_refused_with_the_range(call, name):
    """Before: OverflowError (34, 'Numerical result out of range'), or an inf/NaN Hessian."""
    with pytest.raises(ValueError, match=rf"^{name} must be > 0 and ≤ 1e\+50, got 1e\+300"):
        call()


def test_overflowing_overlaps_are_refused():
    big = 1e200 * Q4
    with pytest.raises(ValueError, match="overflows float64"):
        qn.population_loss(big, M4, I2, 0.25, 0.5)
    with pytest.raises(ValueError, match="overflows float64"):
        qn.ode_rhs(big, M4, I2, 0.25, 0.5, 0.3)
    with pytest.raises(ValueError, match="overflows float64"):
        qn.integrate_ode(big, M4, I2, 0.25, 0.5, 0.3, [0, 1])


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_loss_on_the_manifold_is_clipped_at_its_exact_lower_bound(noise):
    """ε_g = ½(tr D)² + ‖D‖² + σ²/2 ≥ σ²/2 exactly for overlaps of actual weights; the expanded
    formula rounded to −5.6e-16 (noise 0) on 200 manifold points before. Now never below σ²/2,
    and still within rounding of it."""
    losses = []
    for s in range(200):
        O = np.linalg.qr(np.random.default_rng(s).standard_normal((4, 2)))[0]
        Q, M = qn.solution_overlaps(O, 1 / 3, 0.7)
        losses.append(float(qn.population_loss(Q, M, I2, 1 / 3, 0.7, noise)))
    floor = 0.5 * noise**2
    assert min(losses) >= floor
    assert max(losses) - floor < 1e-14


def test_polar_of_a_rank_deficient_M_is_nan_with_a_warning():
    """Before: polar(0) returned an arbitrary orthonormal matrix and alignment(0, M0) = 1.
    Rank < p* has no unique polar factor: NaN for those batch elements, the others untouched."""
    good = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 2)))[0] * 0.3
    batch = np.stack([good, np.zeros((4, 2)), np.outer([1.0, 2, 3, 4], [1.0, 1.0])])
    with pytest.warns(qn.RankDeficientWarning, match="2 of 3"):
        O = qn.polar(batch)
    assert np.all(np.isnan(O[1:])) and np.all(np.isfinite(O[0]))
    np.testing.assert_allclose(O[0], good / 0.3, atol=1e-12)
    with pytest.warns(qn.RankDeficientWarning):
        assert np.isnan(qn.alignment(np.zeros((4, 2)), good))
    with pytest.warns(qn.RankDeficientWarning):
        assert np.all(np.isnan(qn.closest_solution(np.zeros((4, 2)), 0.25, 0.5)))
    assert issubclass(qn.RankDeficientWarning, RuntimeWarning)


def test_shape_errors_blame_the_argument_at_fault():
    """A transposed M0 blamed Q0 before; weights passed for overlaps get a pointer."""
    with pytest.raises(ValueError, match=r"^M0 must have shape .* looks transposed"):
        qn.integrate_ode(Q4, M4.T, I2, 0.25, 0.5, 0.3, [0, 1])
    with pytest.raises(ValueError, match=r"^M must have shape .* looks transposed"):
        qn.population_loss(Q4, M4.T, I2, 0.25, 0.5)
    W, Ws = np.ones((4, 50)), np.ones((2, 50))
    for call in (
        lambda: qn.integrate_ode(W, Ws, I2, 0.25, 0.5, 0.3, [0, 1]),
        lambda: qn.population_loss(W, Ws, I2, 0.25, 0.5),
        lambda: qn.ode_rhs(Q4, np.ones((4, 50)), I2, 0.25, 0.5, 0.3),
    ):
        with pytest.raises(ValueError, match="overlaps_from_weights"):
            call()
    with pytest.raises(ValueError, match=r"^P must be a square"):
        qn.population_loss(Q4, M4, np.ones((2, 3)), 0.25, 0.5)
    with pytest.raises(ValueError, match="disagree on the student width"):
        qn.population_loss(np.eye(3), M4, I2, 0.25, 0.5)
