"""The shared divergence tracker (quadnet._divergence.Divergence), used by the simulators' engines
and meant for the ODE integrator too."""

from __future__ import annotations

import numpy as np
import pytest

from quadnet._divergence import Divergence, check_blowup


def test_limit_and_flags():
    div = Divergence(np.array([1.0, 4.0, 0.1]), np.array([2.0]), a=0.5, b=1.0, blowup=10.0)
    np.testing.assert_array_equal(div.limit, [40.0, 40.0, 40.0])  # 10 × max(tr Q0, (b/a) tr P, 1)
    assert div.flag(np.array([39.0, 41.0, np.nan]), step=5).tolist() == [1, 2]  # beyond, or not finite
    assert div.flag(np.array([99.0, 99.0, 99.0]), step=6).tolist() == [0]  # flagged ones stay flagged
    np.testing.assert_array_equal(div.step, [6, 5, 5])
    np.testing.assert_array_equal(div.alpha_from_steps(10), [0.6, 0.5, 0.5])


def test_flag_first_takes_the_first_step_beyond():
    div = Divergence(np.ones(4), 1.0, a=1.0, b=1.0, blowup=2.0)  # limit 2
    hist = np.array([[1.0, 3.0, 1.0], [1.0, 1.0, 1.0], [np.inf, 1.0, 1.0]])
    assert div.flag_first(hist, slice(1, 4), step0=10).tolist() == [1, 3]
    np.testing.assert_array_equal(div.step, [-1, 12, -1, 11])


def test_absorb_where_active_and_report():
    div = Divergence(np.ones(3), 1.0, a=1.0, b=1.0, blowup=2.0)
    assert div.absorb(np.array([1, 0, 1], dtype=np.uint8), np.array([-1, 7, -1])).tolist() == [1]
    x = div.where_active(np.ones((3, 2, 2)), np)
    assert np.isnan(x[1]).all() and np.isfinite(x[[0, 2]]).all()
    np.testing.assert_array_equal(div.where_active(np.ones((2, 1)), np, slice(1, 3))[:, 0], [np.nan, 1.0])
    d, al = div.report((3,), np, N=7)
    np.testing.assert_array_equal(d, [False, True, False])
    np.testing.assert_array_equal(al, [np.nan, 1.0, np.nan])
    div.mark([2], alpha=0.25)  # time-based integrators record α directly
    np.testing.assert_array_equal(div.report((3,), np)[1], [np.nan, np.nan, 0.25])


def test_blowup_checked():
    assert check_blowup(10) == 10.0
    with pytest.raises(ValueError, match="blowup"):
        check_blowup(1.0)
