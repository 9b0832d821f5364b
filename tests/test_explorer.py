"""The notebook explorer (quadnet.explorer): bounded work per update, stale work dropped.

The live explorer must answer every slider change in under 2 s on two cores, at any setting
(issue 15: ``run_scenario(p=8, p_star=4, eta=0.01, N=1e4, q0=0.2, noise=0.3)`` used to take 51 s).
The bound comes from the design, tested here piece by piece without timing anything: the horizon
is capped from the theory's escape time, the exact chain runs in segments until a budget is spent
and says where it stopped, and the widgets' thread computes only the latest request. The latency
itself is measured by ``python benchmarks/explorer_latency.py`` (``make bench``), not asserted
here: a loaded CI machine would make such an assertion fail for reasons unrelated to the code.
The browser explorer is tested in tests/site/test_explorer_js.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import quadnet as qn
from quadnet import explorer
from quadnet.sgd import sgd_overlaps


@pytest.fixture(scope="module")
def warm():
    explorer.warm_up()  # SciPy's integrators, numba's compiled chain, Matplotlib's fonts


def test_issue_case_is_bounded(warm):
    # a budget far below what the issue's chain needs (51 s unbudgeted): it must stop early and say so
    sc = explorer.run_scenario(p=8, p_star=4, eta=0.01, N=10_000, q0=0.2, noise=0.3, budget=0.2)
    assert sc.alpha[-1] <= explorer.ALPHA_MAX
    # the chain stopped early, and says where: computed before, NaN after
    assert sc.chain_alpha < sc.chain_times[-1]
    done = sc.chain_times <= sc.chain_alpha
    assert np.isfinite(sc.chain_loss[done]).all() and np.isnan(sc.chain_loss[~done]).all()


def test_horizon_from_theory():
    a, b = 0.25, 0.5
    lr = 0.125 / a
    alpha_max, est = explorer._horizon(4, 2, a, b, lr, 1000, 1.0, 0.0, above=False)
    assert alpha_max == pytest.approx(3 * est + 10) and est == pytest.approx(
        qn.escape_time_estimate(4, 2, a, b, lr, 1000)
    )
    assert explorer._horizon(4, 2, a, b, 1e-4, 10**6, 1.0, 0.0, above=False)[0] == explorer.ALPHA_MAX
    assert explorer._horizon(4, 2, a, b, 10.0, 1000, 1.0, 0.0, above=True)[0] == explorer.ALPHA_MIN


def test_segmented_chain_has_the_law_of_one_run(warm, monkeypatch):
    """The budgeted chain restarts sgd_overlaps from the last state every segment (a Markov
    chain: exact in law). Forced into 3-step probes and 17-step segments, its loss at α = 2 and 4
    (400 replicas) must pass a KS two-sample test against one uninterrupted run at 1e-3/2 each
    (false-alarm rate ≤ 1e-3)."""
    monkeypatch.setattr(explorer, "PROBE_STEPS", 3)
    monkeypatch.setattr(explorer, "_segment_end", lambda steps, pos, i, live, rate, left: int(min(steps[-1], pos + 17)))
    p, ps, N, R = 2, 1, 50, 400
    a, b, lr, noise = 0.5, 1.0, 0.2, 0.2
    Q0, M0, P = _start(p, ps, N)
    alphas = np.array([0.0, 1.0, 2.0, 4.0])
    seg, n_div, reached = explorer._chain(Q0, M0, P, N, a, b, lr, noise, alphas, R, 3, np.inf, lambda: False)
    one = np.asarray(
        sgd_overlaps(
            np.repeat(Q0[None], R, 0), np.repeat(M0[None], R, 0), P, N, a, b, lr, alphas, noise=noise, seed=4
        ).loss
    )
    assert reached == alphas[-1]
    for k in (2, 3):
        x, y = (np.nan_to_num(v[k], nan=np.inf) for v in (seg, one))
        assert stats.ks_2samp(x, y).pvalue > 1e-3 / 2


def _start(p, ps, N):
    from quadnet.starts import gaussian_overlaps

    return gaussian_overlaps(p, ps, N, seed=1)


def test_should_stop_drops_the_chain(warm):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 1  # let the probe run, then stop

    sc = explorer.run_scenario(p=4, p_star=2, eta=0.05, N=10_000, budget=30.0, should_stop=stop)
    assert sc.chain_alpha < sc.chain_times[-1] and len(calls) == 2


def test_live_explorer_answers_every_slider_end(warm, record_property):
    """Every slider to both ends, then the issue's setting: each change is drawn (a timeout of 60 s
    only guards against a hang; benchmarks/explorer_latency.py measures the latency). Sliders must
    not update continuously (one update per release)."""
    pytest.importorskip("ipywidgets")
    ex = explorer.LiveExplorer(display=False)
    try:
        assert all(c.continuous_update is False for c in ex.controls.values())
        times = {}
        for key, c in ex.controls.items():
            for value in (c.max, c.min, c.value):
                c.value = value
                times[(key, value)] = ex.wait(timeout=60)
        for key, value in dict(p=8, p_star=4, eta=0.01, N=10_000, q0=0.2, noise=0.3).items():
            ex.controls[key].value = value
        times["issue case"] = ex.wait(timeout=60)
        assert all(np.isfinite(t) and t >= 0 for t in times.values()), times
        worst = max(times, key=times.get)  # measured and reported (JUnit report, -s), not asserted
        record_property("worst_update_s", round(times[worst], 3))
        print(f"worst update {worst}: {times[worst]:.2f} s")
        sc = ex.last_scenario
        assert (sc.params["p"], sc.params["eta"], sc.params["N"]) == (8, pytest.approx(0.01), 10_000)
    finally:
        ex.close()


def test_live_explorer_keeps_only_the_latest_request(warm):
    pytest.importorskip("ipywidgets")
    ex = explorer.LiveExplorer(display=False)
    try:
        before = ex.updates
        ex.controls["N"].value = 10_000  # a long chain, cut short by the next requests
        for eta in (0.02, 0.05, 0.1, 0.2, 0.3):
            ex.controls["eta"].value = eta
        ex.wait(timeout=60)
        assert ex.last_scenario.params["eta"] == pytest.approx(0.3) and ex.last_scenario.params["N"] == 10_000
        assert ex.updates - before < 6, "stale requests were computed and drawn"
    finally:
        ex.close()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="p"):
        explorer.run_scenario(p=0)
    with pytest.raises(ValueError, match="budget"):
        explorer.run_scenario(budget=0)
    with pytest.raises(ValueError, match="N"):
        explorer.run_scenario(p=4, p_star=2, N=5)
    with pytest.raises(ValueError, match="static"):
        explorer.static_explorer_html(static="no-slash")


def test_above_critical_reports_divergence(warm):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no CriticalStepWarning leaks out: divergence is reported
        sc = explorer.run_scenario(p=4, p_star=2, eta=0.35, N=500, budget=5.0)
    assert sc.diverged and sc.chain_diverged > 0 and not np.isfinite(sc.escape_estimate)


def test_static_markup_is_local():
    html = explorer.static_explorer_html()
    assert 'class="qn-explorer"' in html and "http" not in html
    for name in ("uplot/uPlot.iife.min.js", "qn-explorer-core.js", "qn-explorer.js", "qn-explorer.css"):
        assert f"../_static/{name}" in html
