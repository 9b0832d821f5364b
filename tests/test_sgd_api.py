"""The simulators' API: η or γ, integral floats, N's range, the shared overlap tolerance, the rule
for time (start at α = 0, outputs at ``alphas``), the numba fallback's warning, numpydoc
docstrings that document every parameter. Each test reproduces a reported failure (issues 11, 12)."""

from __future__ import annotations

import inspect
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import quadnet as qn
from quadnet import sgd as sgdmod

P, PS, A, B, LR = 2, 1, 0.5, 1.0, 0.2
ROOT = Path(__file__).resolve().parents[1]


def _setup(R=3, N=60, seed=1):
    rng = np.random.default_rng(seed)
    Ws = qn.teacher(PS, N, seed=rng, backend="numpy")
    W0 = rng.standard_normal((R, P, N))
    return W0, Ws, qn.overlaps_from_weights(W0, Ws)


@pytest.mark.parametrize("method", ["numpy", "numba", "weights"])
def test_eta_equals_a_times_lr(method):
    """eta = aγ gives the run of lr = γ, number for number; results carry both."""
    if method == "numba" and not qn.numba_available():
        pytest.skip("numba not installed")
    W0, Ws, (Q0, M0, Pm) = _setup()
    if method == "weights":
        t1 = qn.sgd_weights(W0, Ws, A, B, LR, [0.0, 1.0], seed=2)
        t2 = qn.sgd_weights(W0, Ws, A, B, alphas=[0.0, 1.0], eta=A * LR, seed=2)
    else:
        t1 = qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, LR, [0.0, 1.0], seed=2, method=method)
        t2 = qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, alphas=[0.0, 1.0], eta=A * LR, seed=2, method=method)
    np.testing.assert_array_equal(t1.Q, t2.Q)
    assert (t1.lr, t1.eta) == (LR, A * LR) and t2.lr == pytest.approx(LR) and t2.eta == pytest.approx(A * LR)


def test_lr_eta_exactly_one_and_alphas_required():
    W0, Ws, (Q0, M0, Pm) = _setup()
    with pytest.raises(TypeError, match="not both"):
        qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, LR, [0, 1], eta=0.1)
    with pytest.raises(TypeError, match="step is missing"):
        qn.sgd_weights(W0, Ws, A, B, alphas=[0, 1])
    with pytest.raises(TypeError, match="alphas is required"):
        qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, eta=0.1)
    with pytest.raises(ValueError, match="eta"):
        qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, alphas=[0, 1], eta=-0.1)


def test_integral_float_N_accepted_and_too_large_N_refused():
    """N = 1e3 works like N = 1000 (it was a TypeError); N = 2**63 is a ValueError naming N and the
    allowed range (it was an OverflowError from the compiled kernel)."""
    _, _, (Q0, M0, Pm) = _setup()
    t1 = qn.sgd_overlaps(Q0, M0, Pm, 1e3, A, B, LR, [0.0, 0.01], seed=0, method="numpy")
    t2 = qn.sgd_overlaps(Q0, M0, Pm, 1000, A, B, LR, [0.0, 0.01], seed=0, method="numpy")
    np.testing.assert_array_equal(t1.Q, t2.Q)
    assert t1.N == 1000 and isinstance(t1.N, int)
    for N in (2**63, 1e30, 2**53 + 1):
        with pytest.raises(ValueError, match=r"N must be an integer in \[3, 2\*\*53"):
            qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, [0.0, 1e-12], seed=0)
    with pytest.raises(ValueError, match="2\\*\\*63 steps"):
        qn.sgd_overlaps(Q0, M0, Pm, 2**52, A, B, LR, [0.0, 4096.0], seed=0)


def test_shared_overlap_tolerance_is_the_only_one():
    """Q0 asymmetric by 1e-8 (relative), or C with an eigenvalue −1e-8·tr C, is within the documented
    shared tolerance 1e-6 and is accepted (the chain's own check rejected it at 1e-10); beyond the
    tolerance the shared check's message names the argument."""
    Q0, M0, Pm = np.eye(2), np.zeros((2, 1)), np.eye(1)
    Q_asym = Q0 + np.array([[0.0, 1e-8], [0.0, 0.0]])
    tr = qn.sgd_overlaps(Q_asym, M0, Pm, 100, A, B, LR, [0.0, 0.5], seed=0, method="numpy")
    assert np.isfinite(tr.loss).all()
    # M0 slightly too large: smallest eigenvalue of [[1, m], [m, 1]] is 1 − m = −1e-8 (trace 3)
    M_edge = np.array([[1.0 + 1e-8], [0.0]])
    tr = qn.sgd_overlaps(Q0, M_edge, Pm, 100, A, B, LR, [0.0, 0.5], seed=0, method="numpy")
    assert np.isfinite(tr.loss).all()
    with pytest.raises(ValueError, match="Q0 must be symmetric"):
        qn.sgd_overlaps(Q0 + np.array([[0.0, 1e-3], [0.0, 0.0]]), M0, Pm, 100, A, B, LR, [0, 1])
    with pytest.raises(ValueError, match=r"positive semidefinite \(eigenvalues ≥ −1e-06"):
        qn.sgd_overlaps(Q0, np.array([[1.01], [0.0]]), Pm, 100, A, B, LR, [0, 1])


@pytest.mark.parametrize("method", ["weights", "numpy", "numba"])
def test_start_at_zero_outputs_at_alphas(method):
    """alphas = [5, 10] runs from α = 0 and records at α = 5 and 10: the same states as alphas =
    [0, 5, 10] at those times (the start is not moved to alphas[0]), and not the start state."""
    if method == "numba" and not qn.numba_available():
        pytest.skip("numba not installed")
    N = 40
    W0, Ws, (Q0, M0, Pm) = _setup(N=N)
    if method == "weights":
        run = lambda al: qn.sgd_weights(W0, Ws, A, B, LR, al, seed=5)  # noqa: E731
    else:
        run = lambda al: qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, al, seed=5, method=method)  # noqa: E731
    late, full = run([5.0, 10.0]), run([0.0, 5.0, 10.0])
    np.testing.assert_array_equal(late.alpha, [5.0, 10.0])
    np.testing.assert_array_equal(late.steps, [5 * N, 10 * N])
    # the same random numbers; the blocked weight-space steps are chunked at the output times,
    # which changes rounding only (1e-12 relative)
    np.testing.assert_allclose(late.Q, full.Q[1:], rtol=1e-10, atol=1e-13)
    assert not np.allclose(late.Q[0], full.Q[0])


def test_fallback_warns_once_with_its_measured_cost(monkeypatch):
    """Without numba, the first chain call with method='auto' warns once that the fused kernel is
    missing and how much slower the fallback is; later calls are silent."""
    monkeypatch.setattr(sgdmod, "numba_available", lambda: False)
    monkeypatch.setattr(sgdmod, "_warned_fallback", False)
    _, _, (Q0, M0, Pm) = _setup()
    with pytest.warns(
        RuntimeWarning, match=rf"fused numba kernel is not available.*about {sgdmod.FALLBACK_SLOWDOWN}x slower"
    ):
        tr = qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, LR, [0, 0.1], seed=0)
    assert tr.method == "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, LR, [0, 0.1], seed=0)


def test_stated_fallback_factor_matches_the_benchmark_record():
    """FALLBACK_SLOWDOWN is the measured fused/fallback ratio of benchmarks/results.json (within 25%,
    the spread of that ratio between runs on a shared two-core machine)."""
    summary = json.loads((ROOT / "benchmarks" / "results.json").read_text())["summary"]
    ratios = [v for k, v in summary.items() if k.startswith("fused_vs_fallback_N")]
    assert ratios, "benchmarks/results.json has no fused_vs_fallback ratios"
    gm = float(np.exp(np.mean(np.log(ratios))))
    assert abs(sgdmod.FALLBACK_SLOWDOWN / gm - 1) < 0.25, (sgdmod.FALLBACK_SLOWDOWN, ratios)


def test_cuda_method_gives_clear_errors_without_a_gpu():
    from quadnet.sgd import _cuda

    if _cuda.kernels_available():
        pytest.skip("CUDA kernels can run here")
    W0, Ws, (Q0, M0, Pm) = _setup()
    with pytest.raises((RuntimeError, ImportError), match="method='cuda'"):
        qn.sgd_overlaps(Q0, M0, Pm, 60, A, B, LR, [0, 1], method="cuda")
    with pytest.raises((RuntimeError, ImportError), match="method='cuda'"):
        qn.sgd_weights(W0, Ws, A, B, LR, [0, 1], method="cuda")
    with pytest.raises(ValueError, match="method"):
        qn.sgd_weights(W0, Ws, A, B, LR, [0, 1], method="numba")


def _documented(doc: str) -> set:
    """Parameter names of a numpydoc Parameters section ("a, b : float" documents both)."""
    sec = doc.split("Parameters\n    ----------\n", 1)[1].split("\n    Returns\n", 1)[0]
    names = set()
    for line in sec.splitlines():
        m = re.match(r"^    (\w[\w, ]*?) :", line)
        if m:
            names.update(n.strip() for n in m.group(1).split(","))
    return names


@pytest.mark.parametrize("func", [qn.sgd_weights, qn.sgd_overlaps])
def test_every_parameter_documented_in_place(func):
    """numpydoc: every parameter has its own entry (no "as in sgd_weights"), and an Examples section."""
    doc = inspect.getdoc(func)
    doc = "    " + doc.replace("\n", "\n    ")
    params = set(inspect.signature(func).parameters)
    assert params == _documented(doc), params ^ _documented(doc)
    assert not re.search(r"\bas in\b|\bsee sgd_", doc) and "Examples\n    --------\n    >>>" in doc
    for section in ("Returns", "Raises", "Warns"):
        assert f"    {section}\n    ---" in doc
