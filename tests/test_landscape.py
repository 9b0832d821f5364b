"""Marginal directions and loss profiles, checked against sampled inputs and the Hessian."""

import numpy as np
import pytest

import quadnet as qn
from quadnet.landscape import loss_along, marginal_direction


@pytest.fixture
def manifold_point():
    p, ps, N = 4, 2, 15
    a, b = qn.default_readouts(p, ps)
    W_star = qn.teacher(ps, N, seed=3, backend="numpy")
    return qn.special_point("manifold", W_star, p, a, b, seed=4), W_star, a, b


def test_marginal_direction_is_flat_to_second_order(manifold_point):
    W, W_star, a, b = manifold_point
    V = marginal_direction(W, W_star, seed=0)
    np.testing.assert_allclose(np.linalg.norm(V), 1.0)
    np.testing.assert_allclose(W.T @ V, 0, atol=1e-12)
    np.testing.assert_allclose(V @ W_star.T, 0, atol=1e-12)
    H = qn.hessian(W, W_star, a, b)
    assert abs(V.ravel() @ H @ V.ravel()) < 1e-14  # zero curvature
    t = np.array([0.1, 0.2, 0.4]) * np.sqrt(W.shape[1])
    eps = loss_along(W, V, W_star, a, b, t)
    np.testing.assert_allclose(eps[1:] / eps[:-1], 16.0, rtol=1e-9)  # exactly quartic
    assert not np.allclose(V, marginal_direction(W, W_star, seed=1))  # the seed picks u


def test_loss_along_against_sampled_inputs(manifold_point, rng):
    W, W_star, a, b = manifold_point
    V = np.stack([marginal_direction(W, W_star, seed=0), rng.standard_normal(W.shape)])
    t = np.array([0.0, 1.5, 3.0])
    eps = loss_along(W, V, W_star, a, b, t)
    assert eps.shape == (3, 2)
    assert np.all(np.abs(eps[0]) < 1e-14)  # on the manifold
    mc = qn.monte_carlo_loss(W + t[:, None, None, None] * V, W_star, a, b, 200_000, seed=5)
    # 5 standard errors of the sampled loss (false alarm 6e-7 per point)
    assert np.all(np.abs(eps[1:] - mc.mean[1:]) < 5 * mc.stderr[1:])


def test_marginal_direction_needs_unused_units(rng):
    W_star = qn.teacher(2, 10, seed=0, backend="numpy")
    with pytest.raises(ValueError, match="full rank"):
        marginal_direction(rng.standard_normal((3, 10)), W_star)
    W = np.sqrt(2.0) * np.linalg.qr(rng.standard_normal((3, 2)))[0] @ W_star
    with pytest.raises(ValueError, match="orthogonal"):
        marginal_direction(W[:, :2], W_star[:, :2])  # N = p* : no room left
    with pytest.raises(ValueError, match="V"):
        loss_along(W, np.ones((2, 10)), W_star, 1, 1, [0.0])
    with pytest.raises(ValueError, match="t"):
        loss_along(W, W, W_star, 1, 1, [[0.0]])
