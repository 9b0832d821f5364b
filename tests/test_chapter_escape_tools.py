"""The measurement tools of chapters 2 and 4: escape times beside their prediction, the growth rate
of M on the plateau, escape times of the ODE, the chain-ODE gap, how a run ended, and the plotting
helpers of the two chapters.

Each tool is checked against a simpler direct computation from the primitives it wraps
(`gaussian_escape_times`, `sgd_overlaps`, `integrate_ode`, `escape_time`, `np.polyfit`) or a
property it must have (a known limit, a monotonicity); statistical checks state their false-alarm
rate."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import quadnet as qn
from quadnet.analysis import chain_ode_gap, ode_outcomes, run_outcome
from quadnet.escape import EscapeComparison, EscapeTimes, chain_growth_rate, compare_escape_time, ode_escape_times

P4, PS2, ETA = 4, 2, 0.125
A4, B2 = qn.default_readouts(P4, PS2)


def test_compare_escape_time_is_the_measurement_and_the_prediction():
    c = compare_escape_time(P4, PS2, 1000, 24, eta=ETA, seed=11)
    direct = qn.gaussian_escape_times(P4, PS2, 1000, 24, eta=ETA, seed=11).alpha
    np.testing.assert_array_equal(c.times.alpha, direct)
    finite = direct[np.isfinite(direct)]
    assert c.mean == pytest.approx(finite.mean(), rel=1e-14)
    assert c.stderr == pytest.approx(finite.std(ddof=1) / np.sqrt(finite.size), rel=1e-12)
    assert c.predicted == qn.escape_time_estimate(P4, PS2, A4, B2, eta=ETA, N=1000)
    assert c.diverged == 0.0
    # the prediction is right at N = 1000 (chapter 4): within 4 s.e. + 2 %, false alarm < 1e-4
    assert abs(c.mean - c.predicted) < 4 * c.stderr + 0.02 * c.predicted
    assert c.relative_error == pytest.approx(c.mean / c.predicted - 1)


def test_compare_escape_time_outside_the_basin_has_no_prediction():
    q_u = qn.plateau_basin_q(P4, PS2, A4, B2, eta=ETA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        c = compare_escape_time(P4, PS2, 500, 6, eta=ETA, q0=1.5 * q_u, seed=2)
    assert np.isnan(c.predicted) and c.diverged == 1.0 and np.isnan(c.mean) and np.isnan(c.stderr)
    c = compare_escape_time(P4, PS2, 500, 4, eta=ETA, seed=2, predict=False)
    assert np.isnan(c.predicted) and np.isfinite(c.mean)


def test_agrees_is_the_widened_error_bar():
    t = EscapeTimes(np.ones(3), np.zeros(3, bool), np.zeros(3, bool), 0.3, 100)
    # |10.35 - 10| = 0.35 against 3 * 0.1 + 0.01 * 10 = 0.4: inside; 0.45 is outside
    assert EscapeComparison(t, 10.35, 0.1, 10.0, 0.0).agrees(3, 0.01)
    assert not EscapeComparison(t, 10.45, 0.1, 10.0, 0.0).agrees(3, 0.01)
    assert not EscapeComparison(t, np.nan, np.nan, 10.0, 0.0).agrees()


def test_chain_growth_rate_against_a_direct_fit():
    g = chain_growth_rate(P4, PS2, 20_000, 3, eta=ETA, seed=5)
    start = qn.gaussian_overlaps(P4, PS2, 20_000, 3, seed=5)
    np.testing.assert_allclose(g.m2[0], np.sum(start[1] ** 2, axis=(-2, -1)), rtol=1e-12)
    for i in range(3):  # the window, recomputed from its definition, and numpy's own fit
        on = (g.alpha > g.window_start) & (g.m2[:, i] > 10 * P4 * PS2 / 20_000) & (g.m2[:, i] < 0.03)
        assert g.rates[i] == pytest.approx(np.polyfit(g.alpha[on], np.log(g.m2[on, i]), 1)[0] / 2, rel=1e-10)
    assert g.theory == pytest.approx(qn.escape_rate(P4, PS2, A4, B2, eta=ETA))
    # the linear instability (chapter 4): 3 replicas at N = 2e4 agree with r_pl to a few percent
    assert abs(g.mean / g.theory - 1) < 0.1


def test_chain_growth_rate_rejects_an_empty_window_and_bad_input():
    with pytest.raises(ValueError, match="linear window"):
        chain_growth_rate(P4, PS2, 2000, 2, eta=ETA, seed=1, upper=1e-3)
    with pytest.raises(ValueError, match="settle"):
        chain_growth_rate(P4, PS2, 2000, 2, eta=ETA, settle=2.0)
    with pytest.raises(TypeError, match="step"):
        chain_growth_rate(P4, PS2, 2000, 2, seed=1)


def test_ode_escape_times_against_a_direct_integration():
    Q0, M0, P = qn.gaussian_overlaps(P4, PS2, 2000, 4, seed=9)
    t = ode_escape_times(Q0, M0, P, A4, B2, eta=ETA, alpha_max=60.0)
    al = np.arange(0, 60.0, 0.05)
    level = qn.escape_level(P4, PS2, A4, B2, eta=ETA)
    direct = qn.escape_time(al, qn.integrate_ode(Q0, M0, P, A4, B2, ETA / A4, al).loss, level)
    np.testing.assert_array_equal(t, direct)
    # a property: scaling the seed of M up by 10 shortens the escape by about ln(10)/r_pl
    t10 = ode_escape_times(Q0, 10 * M0, P, A4, B2, eta=ETA, alpha_max=60.0)
    r = qn.escape_rate(P4, PS2, A4, B2, eta=ETA)
    assert np.all(t10 < t) and np.allclose(t - t10, np.log(10) / r, rtol=0.25)
    assert np.isnan(ode_escape_times(Q0, M0, P, A4, B2, eta=ETA, alpha_max=1.0)).all()  # not escaped by then
    with pytest.raises(ValueError, match="alpha_max"):
        ode_escape_times(Q0, M0, P, A4, B2, eta=ETA, alpha_max=0.0)


def test_chain_ode_gap_against_a_direct_computation_and_its_scaling():
    O = np.linalg.qr(np.random.default_rng(0).standard_normal((P4, PS2)))[0]
    al = np.array([0.0, 2.5, 5.0])
    start = qn.informed_overlaps(O, 0.5, 400, 16, seed=3)
    rms, se = chain_ode_gap(*start, 400, A4, B2, 0.5, al, seed=4)
    d = qn.sgd_overlaps(*start, 400, A4, B2, 0.5, al, seed=4).loss - qn.integrate_ode(*start, A4, B2, 0.5, al).loss
    per_run = np.mean(d[1:] ** 2, axis=0)
    assert rms == pytest.approx(np.sqrt(per_run.mean()), rel=1e-12)
    assert se == pytest.approx(per_run.std(ddof=1) / np.sqrt(16) / (2 * rms), rel=1e-12)
    # N^{-1/2}: 100 times larger N, about 10 times smaller gap; > 3 leaves room for the noise of
    # 16 runs each (the s.e. of each RMS is ~15 %: a false alarm needs a 4-sigma excursion)
    big = qn.informed_overlaps(O, 0.5, 40_000, 16, seed=5)
    rms_big, _ = chain_ode_gap(*big, 40_000, A4, B2, 0.5, al, seed=6)
    assert 3 < rms / rms_big < 30
    with pytest.raises(ValueError, match="at least 2 times"):
        chain_ode_gap(*start, 400, A4, B2, 0.5, [0.0], seed=1)
    with pytest.raises(ValueError, match="R ≥ 2"):
        chain_ode_gap(start[0][:1], start[1][:1], start[2], 400, A4, B2, 0.5, al, seed=1)


def test_run_outcome_on_real_runs():
    P = np.eye(PS2)
    O = np.linalg.qr(np.random.default_rng(1).standard_normal((P4, PS2)))[0]
    Q0, M0 = np.eye(P4) + 0.25 * O @ O.T, 0.5 * O
    assert run_outcome(qn.integrate_ode(Q0, M0, P, A4, B2, eta=ETA, alphas=[0, 200.0])) == "zero loss"
    lim = qn.step_limits(P4, PS2, A4, B2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        run = qn.integrate_ode(Q0, M0, P, A4, B2, 1.05 * lim.critical, [0, 200.0], method="LSODA")
    assert run_outcome(run) == "diverged"
    assert run_outcome(SimpleNamespace(diverged=False, loss=np.array([0.3, 0.05]))) == "stationary"
    assert run_outcome(SimpleNamespace(diverged=False, loss=np.array([0.3, 0.05])), zero_loss=0.1) == "zero loss"
    with pytest.raises(ValueError, match="single run"):
        run_outcome(SimpleNamespace(diverged=np.zeros(3, bool), loss=np.zeros((2, 3))))
    with pytest.raises(ValueError, match="zero_loss"):
        run_outcome(run, zero_loss=0.0)


def test_plotting_helpers_draw_the_data():
    from matplotlib.figure import Figure

    from quadnet import plotting

    ax = Figure().subplots()
    pts = [SimpleNamespace(mean=m, stderr=0.1, predicted=m + 0.5) for m in (1.0, 2.0, 4.0)]
    plotting.escape_comparison(ax, [1, 2, 3], pts)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1.5, 2.5, 4.5])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [1.0, 2.0, 4.0])  # the markers
    ax = Figure().subplots()
    plotting.hist_against(ax, np.zeros(10), np.ones(10), np.array([-0.5, 0.5, 1.5]))
    assert len(ax.patches) == 2  # one polygon each
    ax = Figure().subplots()
    s = np.array([[1.0, 3.0], [2.0, 6.0]])  # mean 2, 4 and sd 1, 2 over axis 1
    verts = plotting.band(ax, [0, 1], s, axis=1).get_paths()[0].vertices
    assert verts[:, 1].min() == pytest.approx(1.0) and verts[:, 1].max() == pytest.approx(6.0)


def test_ode_outcomes_is_the_direct_loop_and_follows_the_thresholds():
    seed = 1e-3 * np.linspace(1, 0.6, P4 * PS2).reshape(P4, PS2)
    q0s, etas = np.array([1.0, 10.0]), np.array([0.1, 0.2])
    got = ode_outcomes(P4, PS2, A4, B2, q0s, etas, seed, alpha_end=400.0)
    assert list(got) == [(q, e) for q in q0s for e in etas]  # q0 major, eta minor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        for (q, e), outcome in got.items():
            run = qn.integrate_ode(
                q * np.eye(P4) + seed @ seed.T, seed, np.eye(PS2), A4, B2, e / A4, [0, 400.0], method="LSODA"
            )
            assert outcome == run_outcome(run), (q, e)
    # the thresholds of chapter 2: eta = 0.1 < eta_m from q0 = 1 reaches zero loss; q0 = 10 lies
    # outside the basin at eta = 0.2 > eta_b(10) and diverges
    assert got[1.0, 0.1] == "zero loss" and got[10.0, 0.2] == "diverged"
    assert 0.1 < qn.step_limits(P4, PS2, A4, B2).eta("manifold") and A4 * qn.basin_lr(P4, PS2, A4, B2, q0=10.0) < 0.2


@pytest.mark.parametrize(
    "kw",
    [{"q0s": []}, {"q0s": [-1.0]}, {"etas": [[0.1]]}, {"M0": np.zeros((2, 2))}, {"alpha_end": 0.0}],
)
def test_ode_outcomes_rejects_bad_input(kw):
    args = dict(q0s=[1.0], etas=[0.1], M0=np.zeros((P4, PS2)), alpha_end=10.0) | kw
    with pytest.raises(ValueError):
        ode_outcomes(P4, PS2, A4, B2, **args)
