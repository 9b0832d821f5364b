import numpy as np
import pytest
import scipy.linalg
from scipy import stats

import quadnet
import quadnet as qn
from quadnet.analysis import mean_chord, sphere_uniformity


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


def _cosines(M, M0):
    """Alignment for p* = 1 by hand: the cosine of the two vectors."""
    m, m0 = M[..., 0], M0[..., 0]
    return np.sum(m * m0, -1) / (np.linalg.norm(m, axis=-1) * np.linalg.norm(m0, axis=-1))


def _polar_by_sqrtm(M):
    """polar(M) = M (MᵀM)^{-1/2}, a route independent of the SVD."""
    return M @ np.linalg.inv(scipy.linalg.sqrtm(M.T @ M).real)


def test_alignment_against_independent_polar(rng):
    M, M0 = rng.standard_normal((2, 6, 5, 1))
    np.testing.assert_allclose(qn.alignment(M, M0), _cosines(M, M0), atol=1e-12)
    M, M0 = rng.standard_normal((2, 4, 3, 2))
    want = [np.trace(_polar_by_sqrtm(m).T @ _polar_by_sqrtm(m0)) / 2 for m, m0 in zip(M, M0)]
    np.testing.assert_allclose(qn.alignment(M, M0), want, atol=1e-10)


def test_alignment_contract(rng):
    M0 = rng.standard_normal((5, 4, 2))
    np.testing.assert_allclose(qn.alignment(M0, M0), 1, atol=1e-12)
    np.testing.assert_allclose(qn.alignment(-M0, M0), -1, atol=1e-12)
    U, _, Vt = np.linalg.svd(M0, full_matrices=False)
    rescaled = U * rng.uniform(0.01, 100, (5, 1, 2)) @ Vt  # other singular values, same frame
    np.testing.assert_allclose(qn.alignment(rescaled, M0), 1, atol=1e-10)
    M = rng.standard_normal((5, 4, 2))
    O = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    R = np.linalg.qr(rng.standard_normal((2, 2)))[0]
    A = qn.alignment(M, M0)
    np.testing.assert_allclose(qn.alignment(O @ M @ R, O @ M0 @ R), A, atol=1e-12)
    assert np.all(np.abs(A) <= 1 + 1e-12)
    assert qn.alignment(M[0], M0[0]).shape == () and qn.alignment(M, M0[0]).shape == (5,)  # broadcast


def test_alignment_rank_deficient_is_nan_with_warning(rng, monkeypatch):
    M = rng.standard_normal((4, 3, 2))
    M0 = rng.standard_normal((4, 3, 2))
    full = qn.alignment(M, M0)
    M[1] = 0.0  # zero overlap
    M0[2] = np.outer(rng.standard_normal(3), rng.standard_normal(2))  # rank 1 < p*
    # whatever quadnet.polar does with a rank-deficient matrix (raise, or NaN with a warning),
    # alignment must never hand it one: make polar refuse them
    real_polar = quadnet.analysis.polar

    def strict_polar(X):
        assert np.all(np.linalg.matrix_rank(X) == X.shape[-1]), "polar got a rank-deficient matrix"
        return real_polar(X)

    monkeypatch.setattr(quadnet.analysis, "polar", strict_polar)
    with pytest.warns(RuntimeWarning, match="2 of 4"):
        A = qn.alignment(M, M0)
    assert np.isnan(A[1]) and np.isnan(A[2])
    np.testing.assert_allclose(A[[0, 3]], full[[0, 3]], atol=1e-12)


@pytest.mark.parametrize(
    "M, M0, name",
    [
        (np.ones((3, 2)), np.ones((3, 3)), "M0"),  # matrix shapes differ
        (np.ones((2, 3)), np.ones((2, 3)), "M "),  # p < p*
        (np.ones((2, 3, 2)), np.ones((4, 3, 2)), "batch"),  # batch shapes do not broadcast
        (np.ones(3), np.ones((3, 1)), "M "),  # not a matrix
        (np.full((3, 1), np.nan), np.ones((3, 1)), "M "),  # not finite
    ],
)
def test_alignment_bad_input(M, M0, name):
    with pytest.raises(ValueError, match=name):
        qn.alignment(M, M0)


def test_fits():
    x = np.logspace(0, 3, 20)
    k, c = qn.power_law_fit(x, 3 * x**-2)
    assert k == pytest.approx(-2) and c == pytest.approx(3)
    assert qn.log_slope(x, np.exp(0.7 * x)) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        qn.power_law_fit([1, 2], [1, -1])


# --------------------------------------------------------------------------- uniformity on the sphere


def _uniform(rng, shape, d):
    X = rng.standard_normal(shape + (d,))
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


@pytest.mark.parametrize("d, exact", [(2, 4 / np.pi), (3, 4 / 3), (5, None)])
def test_mean_chord_against_sampling(rng, d, exact):
    X, Y = _uniform(rng, (2, 200_000), d)
    dist = np.linalg.norm(X - Y, axis=-1)
    # 5 standard errors: false alarm 6e-7
    assert abs(mean_chord(d) - dist.mean()) < 5 * dist.std() / np.sqrt(dist.size)
    if exact is not None:
        assert mean_chord(d) == pytest.approx(exact, rel=1e-13)


def test_sphere_statistics_by_hand(rng):
    X = rng.standard_normal((7, 3)) * [1.0, 2.0, 0.5]
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    n, d = U.shape
    res = sphere_uniformity(X, draws=9, seed=0)  # rows are normalized inside
    assert res.rayleigh == pytest.approx(d * n * np.linalg.norm(U.sum(0) / n) ** 2, rel=1e-12)
    T = sum(np.outer(u, u) for u in U) / n
    assert res.bingham == pytest.approx(n * d * (d + 2) / 2 * (np.trace(T @ T) - 1 / d), rel=1e-12)
    chords = sum(np.linalg.norm(u - w) for u in U for w in U)
    assert res.energy == pytest.approx(n * (4 / 3 - chords / n**2), rel=1e-12)
    # the Rayleigh and Bingham statistics have the chi-square limits quoted in the docstring
    Y = _uniform(rng, (2000, 100), 3)
    stat = quadnet.analysis._sphere_statistics(Y)
    for col, dof in ((0, 3), (1, 5)):
        assert stats.kstest(stat[:, col], stats.chi2(dof).cdf).pvalue > 1e-3  # false alarm 1e-3 each


def test_sphere_uniformity_p_values_are_valid(rng):
    """Under uniformity P(p ≤ k/(draws+1)) = k/(draws+1) exactly; checked at k/(draws+1) = 0.1."""
    draws, sets = 99, 400
    p = np.array(
        [
            [getattr(sphere_uniformity(x, draws=draws, seed=s), f"p_{t}") for t in ("rayleigh", "bingham", "energy")]
            for s, x in enumerate(_uniform(rng, (sets, 15), 3))
        ]
    )
    for col in range(3):
        # two-sided binomial test of the count at level 0.1; false alarm 1e-3 per statistic
        assert stats.binomtest(int(np.sum(p[:, col] <= 0.1)), sets, 0.1).pvalue > 1e-3


def test_sphere_uniformity_power(rng):
    """Each statistic sees the departure it is built for; the zero-mean (Rayleigh) test is blind
    to an axial one, which is why a zero mean alone does not show coverage."""
    draws, floor = 999, 1 / 1000
    X = _uniform(rng, (100,), 3)
    pole = sphere_uniformity(X + [0.0, 0.0, 0.8], draws=draws, seed=1)  # a preferred direction
    assert pole.p_rayleigh == floor and pole.p_energy == floor
    axial = X * [0.2, 0.2, 1.0]
    axial = np.concatenate([axial, -axial])  # antipodal pairs: mean 0
    res = sphere_uniformity(axial, draws=draws, seed=2)
    assert res.rayleigh < 1e-20 and res.p_rayleigh == 1.0
    assert res.p_bingham == floor and res.p_energy == floor
    girdle = sphere_uniformity(X * [1.0, 1.0, 0.05], draws=draws, seed=3)  # an equatorial band
    assert girdle.p_bingham == floor and girdle.p_energy == floor
    # two dimensions: half a circle
    half = _uniform(rng, (60,), 2)
    half[:, 1] = np.abs(half[:, 1])
    assert sphere_uniformity(half, draws=draws, seed=4).p_energy == floor


@pytest.mark.parametrize(
    "X, err, match",
    [
        (np.ones(3), ValueError, "shape"),
        (np.ones((1, 3)), ValueError, "shape"),
        (np.zeros((4, 3)), ValueError, "zero row"),
        (np.full((4, 3), np.inf), ValueError, "finite"),
        ("x", TypeError, "X"),
    ],
)
def test_sphere_uniformity_bad_input(X, err, match):
    with pytest.raises(err, match=match):
        sphere_uniformity(X, draws=9)
    with pytest.raises(ValueError, match="draws"):
        sphere_uniformity(np.eye(3), draws=0)
