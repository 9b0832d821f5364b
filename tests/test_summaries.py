"""Summaries of overlap states, each checked against the same quantity computed from weights."""

import numpy as np
import pytest

import quadnet as qn
from quadnet.starts import gaussian_overlaps
from quadnet.summaries import distance_to_solution, norm_per_unit, polar_deviation, scaled_overlap, teacher_fraction


@pytest.fixture
def weights(rng):
    N, p, ps = 60, 3, 2
    W_star = qn.teacher(ps, N, seed=rng, backend="numpy")
    W = rng.standard_normal((5, p, N)) + 0.7 * rng.standard_normal((5, p, ps)) @ W_star
    return W, W_star, qn.overlaps_from_weights(W, W_star)


def test_norm_per_unit(weights):
    W, _, (Q, _, _) = weights
    np.testing.assert_allclose(norm_per_unit(Q), np.sum(W**2, axis=(-2, -1)) / (W.shape[-2] * W.shape[-1]))
    assert norm_per_unit(Q[0]).shape == ()


def test_scaled_overlap_from_weights_and_its_random_value(rng):
    N, p, ps, q0, R = 400, 4, 2, 0.5, 4000
    W_star = qn.teacher(ps, N, seed=rng, backend="numpy")
    W = np.sqrt(q0) * rng.standard_normal((R, p, N))
    _, M, _ = qn.overlaps_from_weights(W, W_star)
    s = scaled_overlap(M, N)
    np.testing.assert_allclose(s, np.linalg.norm(W @ W_star.T, axis=(-2, -1)) / np.sqrt(N))
    # √N M has i.i.d. N(0, q0) entries: E s² = p p* q0 (5 standard errors, false alarm 6e-7)
    assert abs(np.mean(s**2) - p * ps * q0) < 5 * np.std(s**2) / np.sqrt(R)


def test_teacher_fraction_is_the_projected_norm(weights, rng):
    W, W_star, (Q, M, P) = weights
    basis = np.linalg.qr(W_star.T)[0]  # (N, p*) orthonormal
    projected = np.sum((W @ basis) ** 2, axis=(-2, -1)) / np.sum(W**2, axis=(-2, -1))
    np.testing.assert_allclose(teacher_fraction(Q, M), projected, rtol=1e-12)
    # an anisotropic teacher: tr(M P⁻¹ Mᵀ) is still the projection on its row space
    W_aniso = np.diag([2.0, 0.3]) @ W_star
    Q2, M2, P2 = qn.overlaps_from_weights(W, W_aniso)
    np.testing.assert_allclose(teacher_fraction(Q2, M2, P2), projected, rtol=1e-10)
    assert np.all((0 <= projected) & (projected <= 1))


def test_distance_to_solution_from_weights(weights, rng):
    W, W_star, (Q, M, _) = weights
    a, b = 0.25, 0.5
    N = W.shape[-1]
    for O in (rng.standard_normal((3, 2)), qn.polar(M)):  # any frame, and the Procrustes one
        target = np.sqrt(b / a) * O @ W_star
        want = np.sum((W - target) ** 2, axis=(-2, -1)) / N
        np.testing.assert_allclose(distance_to_solution(Q, M, O, a, b), want, rtol=1e-10)
    # with O = polar(M) it is the minimal distance to the manifold
    np.testing.assert_allclose(
        distance_to_solution(Q, M, qn.polar(M), a, b), qn.distance_to_manifold_min(Q, M, a, b), rtol=1e-12
    )


def test_polar_deviation(rng):
    M0 = rng.standard_normal((6, 4, 2))
    U, _, Vt = np.linalg.svd(M0, full_matrices=False)
    same_frame = U * rng.uniform(0.1, 10, (6, 1, 2)) @ Vt
    assert np.all(polar_deviation(same_frame, M0) < 1e-13)
    M = M0 + 0.3 * rng.standard_normal(M0.shape)
    want = np.linalg.norm(qn.polar(M) - qn.polar(M0), axis=(-2, -1))
    np.testing.assert_allclose(polar_deviation(M, M0), want)
    np.testing.assert_allclose(want, np.sqrt(2 * 2 * (1 - qn.alignment(M, M0))), rtol=1e-6)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: norm_per_unit(np.ones((2, 3))), "Q"),
        (lambda: scaled_overlap(np.ones((3, 1)), 0), "N"),
        (lambda: scaled_overlap(np.ones(3), 10), "M"),
        (lambda: teacher_fraction(np.eye(2), np.ones((3, 1))), "M"),
        (lambda: teacher_fraction(np.zeros((2, 2)), np.zeros((2, 1))), "tr Q"),
        (lambda: teacher_fraction(np.eye(2), np.ones((2, 1)), np.eye(2)), "P"),
        (lambda: distance_to_solution(np.eye(2), np.ones((2, 1)), np.ones((2, 2)), 1, 1), "O"),
        (lambda: distance_to_solution(np.eye(2), np.ones((2, 1)), np.ones((2, 1)), -1, 1), "a"),
        (lambda: polar_deviation(np.ones((3, 2)), np.ones((3, 1))), "M0"),
        (lambda: norm_per_unit(np.full((2, 2), np.nan)), "Q"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_summarize_a_trajectory(rng):
    N = 500
    Q0, M0, P = gaussian_overlaps(3, 1, N, 4, seed=1)
    tr = qn.sgd_overlaps(Q0, M0, P, N, 1 / 3, 1.0, 0.3, [0.0, 1.0, 2.0], seed=2)
    s = qn.summaries.summarize(tr, N)
    assert set(s) == {"loss", "norm", "overlap"} and all(isinstance(v, np.ndarray) for v in s.values())
    np.testing.assert_array_equal(s["loss"], tr.loss)
    np.testing.assert_allclose(s["norm"], np.trace(tr.Q, axis1=-2, axis2=-1) / 3)
    np.testing.assert_allclose(s["overlap"], np.sqrt(N) * np.linalg.norm(tr.M, axis=(-2, -1)))
