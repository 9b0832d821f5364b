import warnings

import numpy as np
import pytest

import quadnet as qn
from quadnet import backend as bk


def test_numpy_explicit_and_env(monkeypatch):
    assert qn.get_backend("numpy") is np
    monkeypatch.setenv("QUADNET_BACKEND", "numpy")
    assert qn.default_backend() is np
    monkeypatch.setenv("QUADNET_BACKEND", "auto")
    want = bk._import_cupy() if (bk.GPU_VALIDATED and qn.cupy_available()) else np
    assert qn.default_backend() is want


class _FakeCupy:
    """Stands in for an importable CuPy with a usable GPU."""

    __name__ = "cupy"


def test_auto_stays_on_the_cpu_until_the_gpu_path_is_validated(monkeypatch):
    """Issue 16: with a usable GPU, auto still means NumPy while GPU_VALIDATED is False, and CuPy
    once it is True; explicit 'cupy' is an opt-in that warns once that it is not validated."""
    fake = _FakeCupy()
    monkeypatch.setattr(bk, "cupy_available", lambda: True)
    monkeypatch.setattr(bk, "_import_cupy", lambda: fake)
    monkeypatch.setattr(bk, "GPU_VALIDATED", False)
    monkeypatch.setattr(bk, "_warned_unvalidated", False)
    monkeypatch.setenv("QUADNET_BACKEND", "auto")
    assert qn.default_backend() is np
    monkeypatch.setenv("QUADNET_BACKEND", "cupy")
    with pytest.warns(RuntimeWarning, match="not yet been validated on a real GPU"):
        assert qn.default_backend() is fake
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert qn.get_backend("cupy") is fake
    monkeypatch.setattr(bk, "GPU_VALIDATED", True)
    monkeypatch.setenv("QUADNET_BACKEND", "auto")
    assert qn.default_backend() is fake


def test_bad_backend_names(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        qn.get_backend("torch")
    monkeypatch.setenv("QUADNET_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="QUADNET_BACKEND"):
        qn.default_backend()
    with pytest.raises(TypeError, match="backend"):
        qn.get_backend(3)


@pytest.mark.skipif(qn.cupy_available(), reason="only meaningful without a GPU")
def test_cupy_requested_without_gpu_is_an_error(monkeypatch):
    with pytest.raises(RuntimeError, match="CuPy cannot run"):
        qn.get_backend("cupy")
    monkeypatch.setenv("QUADNET_BACKEND", "cupy")
    with pytest.raises(RuntimeError, match="QUADNET_BACKEND"):
        qn.default_backend()


def test_inputs_decide_module_not_env(monkeypatch):
    monkeypatch.setenv("QUADNET_BACKEND", "auto")
    assert qn.array_module(np.zeros(2), 1.0) is np
    x = np.arange(3.0)
    assert qn.to_numpy(x) is x


def test_creators_follow_backend_argument():
    W = qn.init_student(3, 20, seed=0, backend="numpy")
    assert isinstance(W, np.ndarray) and W.shape == (3, 20) and W.dtype == np.float64
    Ws = qn.teacher(2, 20, seed=0, backend="numpy")
    np.testing.assert_allclose(Ws @ Ws.T / 20, np.eye(2), atol=1e-12)


def test_same_seed_same_numbers():
    a = qn.init_student(2, 30, replicas=3, seed=7, backend="numpy")
    b = qn.init_student(2, 30, replicas=3, seed=7, backend="numpy")
    c = qn.init_student(2, 30, replicas=3, seed=8, backend="numpy")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.gpu
def test_cupy_round_trip_matches_numpy(rng):
    import cupy as cp

    from conftest import random_overlaps

    _, _, (Q, M, P) = random_overlaps(rng, 4, 2)
    ref = qn.population_loss(Q, M, P, 0.25, 0.5)
    got = qn.population_loss(cp.asarray(Q), cp.asarray(M), cp.asarray(P), 0.25, 0.5)
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(qn.to_numpy(got), ref, rtol=1e-12)
    dQ, dM = qn.ode_rhs(Q, M, P, 0.25, 0.5, 0.3)
    gQ, gM = qn.ode_rhs(cp.asarray(Q), cp.asarray(M), cp.asarray(P), 0.25, 0.5, 0.3)
    np.testing.assert_allclose(qn.to_numpy(gQ), dQ, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(qn.to_numpy(gM), dM, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(qn.to_numpy(qn.polar(cp.asarray(M))), qn.polar(M), atol=1e-10)
    al = np.linspace(0, 5, 6)
    tr_c = qn.integrate_ode(cp.asarray(Q), cp.asarray(M), cp.asarray(P), 0.25, 0.5, 0.3, al)
    tr_n = qn.integrate_ode(Q, M, P, 0.25, 0.5, 0.3, al)
    assert isinstance(tr_c.loss, cp.ndarray)
    np.testing.assert_allclose(tr_c.to_numpy().loss, tr_n.loss, rtol=1e-10)


@pytest.mark.gpu
def test_cupy_creators_and_hessian():
    import cupy as cp

    Ws = qn.teacher(2, 64, seed=1, backend="cupy")
    W = qn.init_student(3, 64, seed=2, backend="cupy")
    assert isinstance(Ws, cp.ndarray) and isinstance(W, cp.ndarray)
    H = qn.hessian(W, Ws, 1 / 3, 1 / 2)
    Hn = qn.hessian(W.get(), Ws.get(), 1 / 3, 1 / 2)
    np.testing.assert_allclose(H.get(), Hn, atol=1e-12)
