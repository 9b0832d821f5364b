"""Property-based checks of the symmetries: W → OW leaves the loss invariant; the ODE is equivariant."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import quadnet as qn

dims = st.tuples(st.integers(1, 5), st.integers(1, 3))
pos = st.floats(0.05, 3.0)


def haar(rng, p):
    Z = rng.standard_normal((p, p))
    Qf, R = np.linalg.qr(Z)
    return Qf * np.sign(np.diag(R))


@settings(max_examples=60, deadline=None)
@given(dims, pos, pos, st.integers(0, 2**32 - 1))
def test_loss_invariant_under_rotation_of_student(d, a, b, seed):
    p, ps = d
    rng = np.random.default_rng(seed)
    N = 3 * (p + ps)
    Ws = rng.standard_normal((ps, N))
    W = rng.standard_normal((p, N))
    O = haar(rng, p)
    l1 = qn.population_loss(*qn.overlaps_from_weights(W, Ws), a, b)
    l2 = qn.population_loss(*qn.overlaps_from_weights(O @ W, Ws), a, b)
    assert np.isfinite(l1)
    np.testing.assert_allclose(l2, l1, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(dims, pos, pos, st.floats(0.01, 1.0), st.integers(0, 2**32 - 1))
def test_ode_equivariant_under_rotation(d, a, b, lr, seed):
    p, ps = d
    rng = np.random.default_rng(seed)
    N = 3 * (p + ps)
    Ws, W = rng.standard_normal((ps, N)), rng.standard_normal((p, N))
    Q, M, P = qn.overlaps_from_weights(W, Ws)
    O = haar(rng, p)
    dQ, dM = qn.ode_rhs(Q, M, P, a, b, lr)
    rQ, rM = qn.ode_rhs(O @ Q @ O.T, O @ M, P, a, b, lr)
    scale = 1 + np.abs(dQ).max()
    np.testing.assert_allclose(rQ, O @ dQ @ O.T, atol=1e-10 * scale)
    np.testing.assert_allclose(rM, O @ dM, atol=1e-10 * (1 + np.abs(dM).max()))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_closest_solution_is_on_manifold_and_closest(p, ps, seed):
    if p < ps:
        p, ps = ps, p
    rng = np.random.default_rng(seed)
    a, b = 1 / p, 1 / ps
    M0 = rng.standard_normal((p, ps))
    Q0 = M0 @ M0.T + np.eye(p)
    Ms = qn.closest_solution(M0, a, b)
    O = Ms / np.sqrt(b / a)
    np.testing.assert_allclose(O.T @ O, np.eye(ps), atol=1e-10)
    Qs = (b / a) * O @ O.T
    assert abs(qn.population_loss(Qs, Ms, np.eye(ps), a, b)) < 1e-10
    # squared distance in overlap terms: tr Q0 + tr Qs − 2 tr(O'ᵀ M0)·√(b/a) for any other O'
    d_min = qn.distance_to_manifold_min(Q0, M0, a, b)
    for _ in range(5):
        O2 = np.linalg.qr(rng.standard_normal((p, ps)))[0]
        d2 = np.trace(Q0) + (b / a) * ps - 2 * np.sqrt(b / a) * np.trace(O2.T @ M0)
        assert d2 >= d_min - 1e-9
