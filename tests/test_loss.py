"""Population loss against Monte Carlo averages of the per-sample loss on sampled inputs."""

import numpy as np
import pytest

import quadnet as qn
from conftest import random_overlaps


def mc_loss(W, Ws, a, b, noise, rng, n=200_000, chunk=20_000):
    N = W.shape[1]
    vals = []
    for _ in range(n // chunk):
        X = rng.standard_normal((chunk, N))
        lam, nu = X @ W.T / np.sqrt(N), X @ Ws.T / np.sqrt(N)
        y = b * np.sum(nu**2, 1) + noise * rng.standard_normal(chunk)
        vals.append(0.5 * (y - a * np.sum(lam**2, 1)) ** 2)
    v = np.concatenate(vals)
    return v.mean(), v.std(ddof=1) / np.sqrt(v.size)


@pytest.mark.parametrize("p,p_star,a,b,noise", [(3, 2, 0.4, 0.7, 0.0), (1, 3, 1.0, 0.2, 0.3), (5, 1, 0.15, 1.3, 0.0)])
def test_loss_matches_monte_carlo(rng, p, p_star, a, b, noise):
    W, Ws, (Q, M, P) = random_overlaps(rng, p, p_star, N=40, informed=0.8, q0=0.7)
    got = qn.population_loss(Q, M, P, a, b, noise)
    mean, se = mc_loss(W, Ws, a, b, noise, rng)
    # 5 standard errors: false-alarm rate ~6e-7 per case
    assert abs(got - mean) < 5 * se, (got, mean, se)


def test_loss_batched_shapes(rng):
    _, _, (Q, M, P) = random_overlaps(rng, 3, 2)
    Qb = np.broadcast_to(Q, (4, 5, 3, 3))
    out = qn.population_loss(Qb, M, P, 1 / 3, 1 / 2)
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out, qn.population_loss(Q, M, P, 1 / 3, 1 / 2))
    # readouts as arrays over the batch
    a = np.array([0.1, 0.2, 0.3, 0.4])[:, None]
    out = qn.population_loss(Qb, M, P, a, 0.5)
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out[2, 0], qn.population_loss(Q, M, P, 0.3, 0.5))


def test_zero_loss_on_manifold(rng):
    O = np.linalg.qr(rng.standard_normal((4, 2)))[0]
    Q, M = qn.solution_overlaps(O, 0.25, 0.5)
    assert abs(qn.population_loss(Q, M, np.eye(2), 0.25, 0.5)) < 1e-14


@pytest.mark.parametrize("p,p_star,a,b,noise", [(4, 2, 0.25, 0.5, 0.0), (2, 3, 0.6, 0.9, 0.7)])
def test_loss_equals_exact_gaussian_expectation(rng, p, p_star, a, b, noise):
    """Deterministic: ½E[(y − ŷ)²] by Gauss–Hermite quadrature over (λ, ν) ~ N(0, C), ξ ~ N(0, 1)."""
    from test_ode import gaussian_nodes

    _, _, (Q, M, P) = random_overlaps(rng, p, p_star, informed=0.6)
    U, w = gaussian_nodes(np.block([[Q, M], [M.T, P]]), k=3, extra=1)
    lam, nu = U[:, :p], U[:, p : p + p_star]
    err = b * np.sum(nu**2, 1) + noise * U[:, -1] - a * np.sum(lam**2, 1)
    ref = 0.5 * np.sum(w * err**2)
    assert qn.population_loss(Q, M, P, a, b, noise) == pytest.approx(ref, rel=1e-11)


def test_library_monte_carlo_estimator_is_consistent(rng):
    W, Ws, (Q, M, P) = random_overlaps(rng, 3, 1, N=30, informed=0.5)
    Wb = np.stack([W, 0.5 * W])
    est = qn.monte_carlo_loss(Wb, Ws, 1 / 3, 1.0, 40_000, noise=0.2, seed=1)
    assert est.mean.shape == (2,)
    for i, Wi in enumerate(Wb):
        exact = qn.population_loss(*qn.overlaps_from_weights(Wi, Ws), 1 / 3, 1.0, 0.2)
        assert abs(est.mean[i] - exact) < 5 * est.stderr[i]
    again = qn.monte_carlo_loss(Wb, Ws, 1 / 3, 1.0, 40_000, noise=0.2, seed=1)
    np.testing.assert_array_equal(est.mean, again.mean)
