"""Exact initial overlaps without weights (quadnet.starts) against overlaps of drawn weights, and the
weighted line fit against an independent least-squares solve."""

import numpy as np
import pytest
from scipy import stats

import quadnet as qn


def weight_overlaps(p, ps, N, R, q0, seed, informed=None):
    W_star = qn.teacher(ps, N, seed=seed)
    W = qn.init_student(p, N, q0=q0, replicas=R, seed=seed + 1)
    if informed is not None:
        O, c = informed
        W = W + c * O @ W_star
    return qn.overlaps_from_weights(W, W_star)


@pytest.mark.parametrize("p,ps,q0", [(3, 2, 0.7), (2, 3, 1.0), (4, 1, 2.5)])
def test_gaussian_overlaps_have_the_law_of_weight_overlaps(p, ps, q0):
    """Entry by entry, KS two-sample tests of Q0 and √N M0 against overlaps of drawn weights
    (N = 60, 3000 replicas each); Bonferroni over the entries, family-wise false alarm 1e-3."""
    N, R = 60, 3000
    Q0, M0, P = qn.gaussian_overlaps(p, ps, N, R, q0=q0, seed=5)
    Qw, Mw, Pw = weight_overlaps(p, ps, N, R, q0, seed=6)
    assert Q0.shape == (R, p, p) and M0.shape == (R, p, ps) and np.array_equal(P, np.eye(ps))
    iu = np.triu_indices(p)
    pairs = [(Q0[:, i, j], Qw[:, i, j]) for i, j in zip(*iu)] + [
        (M0[:, i, k], Mw[:, i, k]) for i in range(p) for k in range(ps)
    ]
    pvals = [stats.ks_2samp(x, y).pvalue for x, y in pairs]
    assert min(pvals) > 1e-3 / len(pairs), min(pvals)
    # and the joint structure: the smallest eigenvalue of the Gram matrix (a nonlinear function of all entries)
    C0 = np.block([[Q0, M0], [np.swapaxes(M0, 1, 2), np.broadcast_to(P, (R, ps, ps))]])
    Cw = np.block([[Qw, Mw], [np.swapaxes(Mw, 1, 2), np.broadcast_to(Pw, (R, ps, ps))]])
    assert stats.ks_2samp(np.linalg.eigvalsh(C0)[:, 0], np.linalg.eigvalsh(Cw)[:, 0]).pvalue > 1e-3


def test_informed_overlaps_have_the_law_of_informed_weights():
    p, ps, N, R, c = 3, 2, 80, 3000, 0.6
    O = np.linalg.qr(np.random.default_rng(0).standard_normal((p, ps)))[0]
    Q0, M0, _ = qn.informed_overlaps(O, c, N, R, seed=7)
    Qw, Mw, _ = weight_overlaps(p, ps, N, R, 1.0, seed=8, informed=(O, c))
    for x, y in [(Q0[:, 0, 1], Qw[:, 0, 1]), (Q0[:, 2, 2], Qw[:, 2, 2]), (M0[:, 1, 0], Mw[:, 1, 0])]:
        assert stats.ks_2samp(x, y).pvalue > 1e-3 / 3


def test_starts_are_seeded_and_validated():
    a = qn.gaussian_overlaps(4, 2, 100, 3, seed=1)
    b = qn.gaussian_overlaps(4, 2, 100, 3, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert qn.gaussian_overlaps(4, 2, 100, seed=1)[0].shape == (4, 4)
    with pytest.raises(ValueError, match="N"):
        qn.gaussian_overlaps(4, 2, 5, 3)
    with pytest.raises(ValueError, match="q0"):
        qn.gaussian_overlaps(4, 2, 100, 3, q0=-1.0)
    with pytest.raises(ValueError, match="seed"):
        qn.gaussian_overlaps(4, 2, 100, 3, seed=-1)
    assert qn.gaussian_overlaps(4, 2, 1e4, 3.0, seed=1)[0].shape == (3, 4, 4)  # integral floats


def test_line_fit_matches_an_independent_least_squares_solve(rng):
    x = np.linspace(-1, 3, 9)
    sigma = rng.uniform(0.05, 0.3, x.size)
    y = 0.7 - 1.3 * x + sigma * rng.standard_normal(x.size)
    fit = qn.line_fit(x, y, sigma)
    A = np.column_stack([np.ones_like(x), x]) / sigma[:, None]
    coef, *_ = np.linalg.lstsq(A, y / sigma, rcond=None)
    cov = np.linalg.inv(A.T @ A)
    assert fit.intercept == pytest.approx(coef[0], abs=1e-12) and fit.slope == pytest.approx(coef[1], abs=1e-12)
    assert fit.slope_se == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-10)
    assert fit.intercept_se == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-10)
    assert fit.dof == x.size - 2 and fit.chi2 == pytest.approx(np.sum(((y - fit(x)) / sigma) ** 2))


def test_line_fit_slope_errors_are_calibrated():
    """Over 2000 synthetic data sets the standardized slope error is standard normal (KS, false alarm 1e-3)."""
    rng = np.random.default_rng(3)
    x = np.arange(6.0)
    sigma = np.full(6, 0.2)
    z = [qn.line_fit(x, 1 + 2 * x + sigma * rng.standard_normal(6), sigma) for _ in range(2000)]
    assert stats.kstest([(f.slope - 2) / f.slope_se for f in z], "norm").pvalue > 1e-3


def test_line_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        qn.line_fit([0, 1, 2], [0, 1, 2], [1, -1, 1])
    with pytest.raises(ValueError, match="at least 3"):
        qn.line_fit([0, 1], [0, 1])
    with pytest.raises(ValueError, match="distinct"):
        qn.line_fit([1, 1, 1], [0, 1, 2])


def test_equal_seeds_for_teacher_and_student_do_not_correlate_them():
    """Issue 11, item 2: teacher(1, N, seed=s) and init_student(p, N, seed=s) drew the same numbers,
    so the first student row was parallel to the teacher (M00 ≈ 0.98). With a stream per role,
    √N M(0) is standard normal again: over 400 seeds its mean square is 1 within 4 s.e."""
    N = 500
    m00 = [
        qn.overlaps_from_weights(qn.init_student(2, N, seed=s), qn.teacher(1, N, seed=s))[1][0, 0] for s in range(400)
    ]
    z2 = N * np.asarray(m00) ** 2
    assert abs(z2.mean() - 1) < 4 * z2.std(ddof=1) / np.sqrt(z2.size)
    assert np.max(np.abs(m00)) < 0.3  # nothing near the old 0.98
    # and the chain's noise is a third stream: same seed, different numbers than the start
    a, b = qn.gaussian_overlaps(2, 1, N, 1, seed=3), qn.make_rng(3, "numpy", role="chain").standard_normal(3)
    assert not np.allclose(a[1].ravel()[:2] * np.sqrt(N), b[:2])
