"""The measurement tools of the plateau chapter (chapter 3): the settled plateau norm, the scan of
the plateau loss over the student width, and the ODE-and-chain panel of the figures."""

import numpy as np
import pytest

import quadnet as qn
from quadnet.fixed_points import plateau_loss_scan, settled_plateau_q


def test_settled_norm_is_the_closed_form_fixed_point():
    # the ODE integrated on M = 0 against the root of the quadratic of qn.plateau (another computation:
    # no integration); the relaxation rate is 4 eta b p* (>= 0.1 here), so after alpha = 500 the distance
    # left is e^-50 of the start's, and the integrator's relative tolerance (1e-9 on the state) remains
    p, ps, a, b = 4, 2, 0.25, 0.5
    etas = [0.05, 0.125, 0.2]
    q = settled_plateau_q(p, ps, a, b, etas, alpha_end=500.0, backend="numpy")
    expected = [qn.plateau(p, ps, a, b, eta=e).q for e in etas]
    assert q.shape == (3,)
    np.testing.assert_allclose(q, expected, rtol=1e-6)
    assert np.all(np.diff(q) > 0)  # the gamma^2 term raises the norm with the step


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(p=0), "p"),
        (dict(a=-1.0), "a"),
        (dict(alpha_end=0.0), "alpha_end"),
        (dict(etas=[-0.1]), "etas"),
        (dict(etas=[0.0]), "etas"),
    ],
)
def test_settled_norm_rejects_bad_input(kw, match):
    args = dict(p=4, p_star=2, a=0.25, b=0.5, etas=[0.1], alpha_end=10.0) | kw
    etas = args.pop("etas")
    with pytest.raises(ValueError, match=match):
        settled_plateau_q(args.pop("p"), args.pop("p_star"), args.pop("a"), args.pop("b"), etas, **args)


def test_scan_against_the_closed_forms_and_a_direct_run():
    ps, p_star, N, eta = [1, 3], 2, 3000, 0.125
    scan = plateau_loss_scan(ps, p_star, N, eta, (40.0, 60.0), n_runs=3, seed=7, n_times=3, backend="numpy")
    # the drift plateau loss is 1/p* + 1/(p+2) at the default readouts (chapter 3)
    np.testing.assert_allclose(scan.drift, [1 / p_star + 1 / (pp + 2) for pp in ps], rtol=1e-12)
    # the ODE from M = 0 stays on M = 0 and, by alpha = 40 (relaxation rate 4 eta b p* = 0.5: e^-20), sits
    # on the full fixed point, above the drift one
    np.testing.assert_allclose(scan.ode, scan.full, rtol=1e-7)
    assert np.all(scan.full > scan.drift)
    # the chain of width 3 is the same as one run by hand with seed 7 + 3 (the documented convention)
    a3, b3 = qn.default_readouts(3, p_star)
    alphas = np.array([0.0, 40.0, 50.0, 60.0])
    Q0 = qn.plateau(3, p_star, a3, b3).Q
    run = qn.sgd_overlaps(Q0, np.zeros((3, 3, p_star)), np.eye(p_star), N, a3, b3, eta / a3, alphas, seed=10)
    per_run = np.asarray(run.loss[1:]).mean(0)
    assert scan.chain_mean[1] == pytest.approx(per_run.mean(), rel=1e-12)
    assert scan.chain_se[1] == pytest.approx(per_run.std(ddof=1) / np.sqrt(3), rel=1e-12)
    assert scan.p.tolist() == ps


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(window=(2.0, 1.0)), "window"),
        (dict(window=(0.0, 1.0)), "window"),
        (dict(n_runs=1), "n_runs"),
        (dict(eta=0.0), "eta"),
        (dict(N=0), "N"),
    ],
)
def test_scan_rejects_bad_input(kw, match):
    args = dict(N=100, eta=0.1, window=(1.0, 2.0), n_runs=2) | kw
    with pytest.raises(ValueError, match=match):
        plateau_loss_scan([1], 1, args.pop("N"), args.pop("eta"), args.pop("window"), seed=0, **args)


def test_ode_and_chain_panel_draws_the_means():
    from matplotlib.figure import Figure

    from quadnet import plotting

    rng = np.random.default_rng(0)
    alphas = np.linspace(0.0, 9.0, 10)
    ode, chain = rng.random((10, 4)), rng.random((10, 5))
    ax = Figure().subplots()
    plotting.ode_and_chain(ax, alphas, ode, chain, every=3, color="C1", label="x")
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), alphas[1:])
    np.testing.assert_allclose(line.get_ydata(), ode[1:].mean(1))
    markers = ax.lines[1]  # the errorbar's data line: every third time from the second
    np.testing.assert_allclose(markers.get_xdata(), alphas[[1, 4, 7]])
    np.testing.assert_allclose(markers.get_ydata(), chain[[1, 4, 7]].mean(1))
