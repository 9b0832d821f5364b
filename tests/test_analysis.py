import numpy as np
import pytest

import quadnet as qn


def test_escape_time_interpolates_and_flags_misses():
    al = np.linspace(0, 10, 11)
    loss = np.stack([1 - 0.1 * al, np.ones_like(al), np.where(al < 4, 1.0, np.nan)], axis=1)
    t = qn.escape_time(al, loss, 0.45)
    assert t[0] == pytest.approx(5.5)
    assert np.isnan(t[1]) and np.isnan(t[2])


def test_escape_time_on_ode_matches_exponential_theory():
    p, ps, a, b, lr = 4, 2, 0.25, 0.5, 0.5
    pl = qn.plateau(p, ps, a, b)
    al = np.linspace(0, 80, 4001)
    M0 = np.stack([c * np.ones((p, ps)) for c in (1e-3, 1e-4)])
    tr = qn.integrate_ode(pl.Q, M0, np.eye(ps), a, b, lr, al, drift_only=True)
    t = qn.escape_time(tr.alpha, tr.loss, pl.loss / 2)
    # ten times smaller seed: later by ln(10)/r
    assert t[1] - t[0] == pytest.approx(np.log(10) / qn.escape_rate(p, ps, a, b, lr, drift_only=True), rel=2e-3)


def test_alignment_range(rng):
    M0 = rng.standard_normal((5, 4, 2))
    assert np.allclose(qn.alignment(M0, M0), 1)
    assert np.allclose(qn.alignment(-M0, M0), -1)
    O = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    assert np.all(np.abs(qn.alignment(O @ M0, M0)) <= 1 + 1e-12)


def test_fits():
    x = np.logspace(0, 3, 20)
    k, c = qn.power_law_fit(x, 3 * x**-2)
    assert k == pytest.approx(-2) and c == pytest.approx(3)
    assert qn.log_slope(x, np.exp(0.7 * x)) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        qn.power_law_fit([1, 2], [1, -1])
