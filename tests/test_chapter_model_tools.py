"""Tools the chapters on the model (1), the Hessian (7) and the appendices call: the Monte Carlo
loss on ±1 inputs (``monte_carlo_loss(..., inputs="rademacher")``), checked against an exact
enumeration of all 2^N inputs."""

import itertools

import numpy as np
import pytest

import quadnet as qn


def exact_pm1_loss(W, Ws, a, b):
    """½(y − ŷ)² averaged over all 2^N sign vectors: the exact ±1 expectation (small N only)."""
    N = W.shape[-1]
    X = np.array(list(itertools.product([-1.0, 1.0], repeat=N)))
    err = b * ((X @ Ws.T) ** 2).sum(-1) / N - a * ((X @ W.T) ** 2).sum(-1) / N
    return float(np.mean(0.5 * err**2))


@pytest.fixture
def weights():
    p, ps, N = 3, 2, 6
    Ws = qn.teacher(ps, N, seed=3, backend="numpy")
    W = qn.init_student(p, N, seed=4, backend="numpy")
    return W, Ws, 1 / p, 1 / ps


def test_rademacher_loss_agrees_with_exact_enumeration(weights):
    W, Ws, a, b = weights
    est = qn.monte_carlo_loss(W, Ws, a, b, 200_000, inputs="rademacher", seed=5)
    exact = exact_pm1_loss(W, Ws, a, b)
    # 5 standard errors: a false alarm has probability 6e-7
    assert abs(est.mean - exact) < 5 * est.stderr
    assert est.n_samples == 200_000 and 0 < est.stderr < 0.01 * exact


def test_rademacher_closed_form_differs_from_gaussian_by_the_diagonal_of_D(weights):
    """The exercise's correction, ε_±1 = ε_g − Σ D_nn², exact by enumeration; and Monte Carlo sees it."""
    W, Ws, a, b = weights
    N = W.shape[-1]
    D = (b * Ws.T @ Ws - a * W.T @ W) / N
    gauss = float(qn.population_loss(*qn.overlaps_from_weights(W, Ws), a, b))
    assert exact_pm1_loss(W, Ws, a, b) == pytest.approx(gauss - np.sum(np.diag(D) ** 2), rel=1e-12)
    est = qn.monte_carlo_loss(W, Ws, a, b, 400_000, inputs="rademacher", seed=6)
    assert gauss - est.mean > 5 * est.stderr  # the Gaussian formula is off at N = 6


def test_rademacher_loss_batch_uses_common_inputs_and_generator_stream(weights):
    W, Ws, a, b = weights
    batch = np.stack([W, 2 * W, W])
    est = qn.monte_carlo_loss(batch, Ws, a, b, 5000, inputs="rademacher", seed=7, chunk=700)
    single = qn.monte_carlo_loss(W, Ws, a, b, 5000, inputs="rademacher", seed=7, chunk=700)
    assert est.mean.shape == (3,) and est.mean[0] == est.mean[2]  # same inputs for every element
    np.testing.assert_allclose(est.mean[0], single.mean, rtol=1e-12)
    # a Generator is consumed, not copied: two calls on one stream see different inputs
    g = np.random.default_rng(8)
    first = qn.monte_carlo_loss(W, Ws, a, b, 1000, inputs="rademacher", seed=g)
    second = qn.monte_carlo_loss(W, Ws, a, b, 1000, inputs="rademacher", seed=g)
    assert first.mean != second.mean


def test_rademacher_loss_is_zero_at_a_solution():
    Ws = qn.teacher(2, 5, seed=1, backend="numpy")
    W = qn.special_point("manifold", Ws, 3, 1 / 3, 1 / 2, seed=2)  # a W^T W = b W*^T W*: y = ŷ for every x
    est = qn.monte_carlo_loss(W, Ws, 1 / 3, 1 / 2, 100, inputs="rademacher", seed=0)
    assert est.mean < 1e-25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"a": 0.0}, "a must be"),
        ({"b": -1.0}, "b must be"),
        ({"n_samples": 1}, "n_samples"),
        ({"chunk": 0}, "chunk"),
    ],
)
def test_rademacher_loss_rejects_bad_input(weights, kwargs, match):
    W, Ws, a, b = weights
    args = {"a": a, "b": b, "n_samples": 100, "chunk": 10} | kwargs
    with pytest.raises(ValueError, match=match):
        qn.monte_carlo_loss(W, Ws, args["a"], args["b"], args["n_samples"], inputs="rademacher", chunk=args["chunk"])
    with pytest.raises(ValueError, match="inputs must be one of"):
        qn.monte_carlo_loss(W, Ws, a, b, 100, inputs="uniform")
    with pytest.raises(TypeError, match="seed"):
        qn.monte_carlo_loss(W, Ws, a, b, 100, inputs="rademacher", seed="x")


def test_throughput_bars_draws_each_record_value_and_leaves_gaps():
    from matplotlib.figure import Figure

    from quadnet import plotting

    rows = [
        {"N": 10**3, "baseline": {"replica_steps_per_s": 2.0}, "chain_numba": {"replica_steps_per_s": 5e6}},
        {"N": 10**5, "weights": {"replica_steps_per_s": 30.0}},
    ]
    ax = plotting.throughput_bars(Figure().subplots(), {"rows": rows}, "t")
    heights = np.array([bar.get_height() for bar in ax.patches]).reshape(4, 2)  # method-major, one bar per N
    expected = [[2.0, np.nan], [np.nan, 30.0], [np.nan, np.nan], [5e6, np.nan]]
    np.testing.assert_array_equal(heights, expected)
    assert ax.get_yscale() == "log" and ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["$10^{3}$", "$10^{5}$"]


def test_plane_rotations_are_the_exponential_of_the_plane_generator():
    from scipy.linalg import expm

    from quadnet.model import plane_rotations

    p, i, j = 4, 1, 3
    theta = np.linspace(-3.0, 3.0, 7)
    O = plane_rotations(p, theta, i=i, j=j)
    G = np.zeros((p, p))
    G[i, j], G[j, i] = -1.0, 1.0  # the generator of rotations in the (i, j) plane
    np.testing.assert_allclose(O, np.stack([expm(t * G) for t in theta]), atol=1e-13)
    np.testing.assert_allclose(O @ np.swapaxes(O, -1, -2), np.broadcast_to(np.eye(p), O.shape), atol=1e-15)
    np.testing.assert_allclose(np.linalg.det(O), 1.0, atol=1e-14)
    # the group law: O(s) O(t) = O(s + t)
    np.testing.assert_allclose(O[1] @ O[2], plane_rotations(p, [theta[1] + theta[2]], i=i, j=j)[0], atol=1e-14)


def test_plane_rotations_leave_the_population_loss_invariant():
    from quadnet.model import plane_rotations

    Ws = qn.teacher(2, 30, seed=1, backend="numpy")
    W = qn.init_student(3, 30, seed=2, backend="numpy")
    a, b = 1 / 3, 1 / 2
    eps = qn.population_loss(*qn.overlaps_from_weights(plane_rotations(3, np.linspace(0, 6, 13)) @ W, Ws), a, b)
    np.testing.assert_allclose(eps, float(qn.population_loss(*qn.overlaps_from_weights(W, Ws), a, b)), rtol=1e-13)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((1, [0.0]), {}, ValueError, "p must be"),
        ((3, [0.0]), {"i": 1, "j": 1}, ValueError, "different units"),
        ((3, [0.0]), {"j": 3}, ValueError, "j must be"),
        ((3, [[0.0]]), {}, ValueError, "1-d"),
        ((3, [np.nan]), {}, ValueError, "finite"),
        ((3, "x"), {}, TypeError, "theta"),
    ],
)
def test_plane_rotations_reject_bad_input(args, kwargs, error, match):
    from quadnet.model import plane_rotations

    with pytest.raises(error, match=match):
        plane_rotations(*args, **kwargs)
