"""Memory of weight-space SGD (issue 11, item 7), each test reproducing an original failure:
two copies of the weights (three with track_init), float32 input silently upcast, a bare
MemoryError at sizes that could be refused up front. Peaks are measured with tracemalloc, which
NumPy reports its array allocations to; sizes stay small (a few MB)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import quadnet as qn
from quadnet.sgd import _memory

A, B, LR = 0.5, 1.0, 0.2
R, P, N = 8, 4, 20_000  # the weights are 5.1 MB in float64
WBYTES = R * P * N * 8


def _weights(dtype=np.float64):
    rng = np.random.default_rng(0)
    return rng.standard_normal((R, P, N)).astype(dtype), qn.teacher(1, N, seed=1)


def _peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return out, peak


def test_peak_is_one_copy_and_within_the_estimate():
    """The run holds one working copy of the weights (overwrite=True: none), W(0) for track_init is
    the caller's (not a further copy), and the up-front estimate bounds the measured peak. The rest
    of the peak is the chunk's inputs (16 steps × N per replica), the same in all three runs."""
    W0, Ws = _weights()
    alphas = [0.0, 16 / N]  # one chunk of 16 steps
    lay = _memory.WeightsLayout(R, P, 1, N, 2, 8, copy_weights=True, copy_init=False, teacher_rows=0, track_init=False)
    _, peak = _peak(lambda: qn.sgd_weights(W0, Ws, A, B, LR, alphas, seed=0))
    W1 = W0.copy()
    _, peak_in_place = _peak(lambda: qn.sgd_weights(W1, Ws, A, B, LR, alphas, seed=0, overwrite=True))
    tr_i, peak_i = _peak(lambda: qn.sgd_weights(W0, Ws, A, B, LR, alphas, seed=0, track_init=True))
    assert peak <= lay.peak(), (peak, lay.parts())
    assert abs((peak - peak_in_place) - WBYTES) < 0.1 * WBYTES  # exactly one copy
    assert peak_i - peak < 0.1 * WBYTES  # no copy of W(0) (the old code made one)
    np.testing.assert_allclose(tr_i.distance_to_init()[-1], np.sum((tr_i.W - W0) ** 2, axis=(-2, -1)) / N, rtol=1e-9)


def test_overwrite_updates_in_place_without_a_copy():
    W0, Ws = _weights()
    ref = qn.sgd_weights(W0, Ws, A, B, LR, [0.0, 16 / N], seed=0)
    W1 = W0.copy()
    tr, peak = _peak(lambda: qn.sgd_weights(W1, Ws, A, B, LR, [0.0, 16 / N], seed=0, overwrite=True))
    assert np.shares_memory(tr.W, W1)
    np.testing.assert_array_equal(tr.W, ref.W)
    with pytest.raises(ValueError, match="overwrite=True needs W0 in the run's dtype"):
        qn.sgd_weights(W0.copy(), Ws, A, B, LR, [0, 1e-3], overwrite=True, dtype=np.float32)
    with pytest.raises(ValueError, match="full batch shape"):
        qn.sgd_weights(W0[0], np.stack([Ws] * 2), A, B, LR, [0, 1e-3], overwrite=True)


def test_float32_input_stays_float32():
    """float32 weights run in float32 by default (they were silently upcast to float64)."""
    W0, Ws = _weights(np.float32)
    tr, peak = _peak(lambda: qn.sgd_weights(W0, Ws, A, B, LR, [0.0, 16 / N], seed=0))
    assert tr.W.dtype == np.float32 and tr.Q.dtype == np.float64
    lay = _memory.WeightsLayout(R, P, 1, N, 2, 4, copy_weights=True, copy_init=False, teacher_rows=1, track_init=False)
    assert peak <= lay.peak()
    assert qn.sgd_weights(W0.astype(int), Ws, A, B, LR, [0, 1e-3]).W.dtype == np.float64


def test_refused_up_front_with_the_number_and_the_options_that_fit():
    """A budget below the peak is refused before anything is allocated (it was a bare MemoryError
    mid-run), naming the estimate and the options; each option it names does fit and runs."""
    W0, Ws = _weights()
    need = _memory.WeightsLayout(
        R, P, 1, N, 2, 8, copy_weights=True, copy_init=False, teacher_rows=0, track_init=False
    ).peak()
    cap = need - WBYTES // 2  # below the peak; float32, overwrite (one copy less) and fewer replicas fit
    with pytest.raises(qn.MemoryBudgetError) as err:
        _peak(lambda: qn.sgd_weights(W0, Ws, A, B, LR, [0.0, 16 / N], seed=0, max_memory=cap))
    msg = str(err.value)
    assert isinstance(err.value, MemoryError) and isinstance(err.value, ValueError)
    assert "sgd_weights would need about" in msg and "max_memory" in msg
    assert "dtype=np.float32" in msg and "overwrite=True" in msg and "replicas per call" in msg
    for kw in (dict(dtype=np.float32), dict(overwrite=True)):
        W = W0.copy()
        tr, peak = _peak(
            lambda W=W, kw=kw: qn.sgd_weights(W, Ws, A, B, LR, [0.0, 16 / N], seed=0, max_memory=cap, **kw)
        )
        assert peak <= cap
    fit = int(msg.split("at most ")[1].split(" replicas")[0])
    qn.sgd_weights(W0[:fit], Ws, A, B, LR, [0.0, 16 / N], seed=0, max_memory=cap)


def test_default_budget_is_the_memory_available(monkeypatch):
    """Without max_memory the budget is what the machine has available now."""
    monkeypatch.setattr(_memory, "available_bytes", lambda xp: 1000)
    W0, Ws = _weights()
    with pytest.raises(qn.MemoryBudgetError, match="is available"):
        qn.sgd_weights(W0, Ws, A, B, LR, [0.0, 1e-3])
    assert _memory.available_bytes.__module__  # the real function reads /proc/meminfo
