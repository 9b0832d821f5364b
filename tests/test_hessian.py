"""Hessian against finite differences of an independently coded gradient; predicted spectra."""

import numpy as np
import pytest

import quadnet as qn


def loss_of_w(W, Ws, a, b):
    return float(qn.population_loss(*qn.overlaps_from_weights(W, Ws), a, b))


def grad_by_chain_rule(W, Ws, a, b):
    """∇_W ε via ε(Q, M, P): ∂ε/∂Q = −a tr D I + 2a² Q, ∂ε/∂M = −4ab M, Q = WWᵀ/N, M = WW*ᵀ/N."""
    N = W.shape[1]
    Q, M, P = qn.overlaps_from_weights(W, Ws)
    trD = b * np.trace(P) - a * np.trace(Q)
    dQ = -a * trD * np.eye(len(Q)) + 2 * a * a * Q
    dM = -4 * a * b * M
    return (2 / N) * dQ @ W + (1 / N) * dM @ Ws


@pytest.fixture
def small(rng):
    p, ps, N = 3, 2, 7
    Ws = qn.teacher(ps, N, seed=rng, backend="numpy")
    W = rng.standard_normal((p, N))
    return W, Ws, 0.4, 0.9


def test_gradient_by_chain_rule_matches_finite_differences(small):
    W, Ws, a, b = small
    g = grad_by_chain_rule(W, Ws, a, b)
    h = 1e-6
    fd = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        fd[idx] = (loss_of_w(W + E, Ws, a, b) - loss_of_w(W - E, Ws, a, b)) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=1e-8)
    np.testing.assert_allclose(qn.loss_gradient(W, Ws, a, b), g, atol=1e-13)


def test_hessian_matches_finite_differences_of_gradient(small):
    W, Ws, a, b = small
    H = qn.hessian(W, Ws, a, b)
    p, N = W.shape
    assert H.shape == (p * N, p * N)
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    h = 1e-5
    fd = np.zeros_like(H)
    for k in range(p * N):
        E = np.zeros(p * N)
        E[k] = h
        E = E.reshape(p, N)  # row-major: k = i·N + n
        fd[:, k] = ((grad_by_chain_rule(W + E, Ws, a, b) - grad_by_chain_rule(W - E, Ws, a, b)) / (2 * h)).ravel()
    np.testing.assert_allclose(H, fd, atol=1e-9)


@pytest.mark.parametrize("where", ["origin", "plateau", "manifold"])
@pytest.mark.parametrize("p,ps", [(3, 1), (4, 2), (2, 2)])
def test_spectrum_at_special_points(where, p, ps):
    N, a, b = 9, 1 / p, 1 / ps
    Ws = qn.teacher(ps, N, seed=11, backend="numpy")
    W = qn.special_point(where, Ws, p, a, b, seed=5)
    # the point is what it claims: gradient zero at the plateau and on the manifold
    if where != "origin":
        assert np.abs(qn.loss_gradient(W, Ws, a, b)).max() < 1e-12
    eig = np.linalg.eigvalsh(qn.hessian(W, Ws, a, b))
    pred = qn.predicted_spectrum(where, p, ps, N, a, b)
    assert sum(m for _, m in pred) == p * N
    expanded = np.sort(np.concatenate([np.full(m, val) for val, m in pred]))
    np.testing.assert_allclose(eig, expanded, atol=1e-10)


def test_plateau_is_a_saddle_and_escape_rate_links_to_curvature():
    p, ps, N = 4, 2, 10
    a, b, lr = 1 / p, 1 / ps, 0.4
    Ws = qn.teacher(ps, N, seed=2, backend="numpy")
    eig = np.linalg.eigvalsh(qn.hessian(qn.special_point("plateau", Ws, p, a, b, seed=1), Ws, a, b))
    assert eig[0] < 0
    assert -lr * N * eig[0] == pytest.approx(qn.escape_rate(p, ps, a, b, lr, drift_only=True), rel=1e-10)


@pytest.mark.parametrize("where", ["origin", "plateau", "manifold"])
def test_special_point_spectrum_matches_matrix_and_prediction(where):
    from quadnet.hessian import special_point_spectrum

    p, ps, N = 3, 2, 8
    a, b = 1 / p, 1 / ps
    Ws = qn.teacher(ps, N, seed=4, backend="numpy")
    spec = special_point_spectrum(where, Ws, p, a, b, seed=9)
    H = qn.hessian(qn.special_point(where, Ws, p, a, b, seed=9), Ws, a, b)
    assert spec.where == where and spec.numerical.shape == spec.predicted.shape == (p * N,)
    # the numerical spectrum is that of the matrix: its sum is the trace, its extremes the Rayleigh bounds
    assert spec.numerical.sum() == pytest.approx(np.trace(H), abs=1e-12)
    assert np.all(np.diff(spec.numerical) >= 0) and np.all(np.diff(spec.predicted) >= 0)
    # the expanded prediction repeats each listed value by its multiplicity
    assert spec.multiplicities.sum() == p * N
    assert [(float(v), int(m)) for v, m in zip(spec.values, spec.multiplicities)] == qn.predicted_spectrum(
        where, p, ps, N, a, b
    )
    # the closed form agrees with the matrix (rounding only, the entries are O(1/N))
    assert spec.max_error < 1e-12
    assert spec.max_error == np.abs(np.linalg.eigvalsh(H) - spec.predicted).max()


def test_special_point_spectrum_rejects_bad_input():
    from quadnet.hessian import special_point_spectrum

    Ws = qn.teacher(2, 6, seed=0, backend="numpy")
    with pytest.raises(ValueError, match="where"):
        special_point_spectrum("saddle", Ws, 3, 0.5, 0.5)
    with pytest.raises(ValueError, match="p must be"):
        special_point_spectrum("manifold", Ws, 1, 0.5, 0.5)
    with pytest.raises(ValueError, match="a must be"):
        special_point_spectrum("origin", Ws, 3, -1.0, 0.5)
