"""One-pass SGD simulators: the literal algorithm in weight space, and the exact overlap chain.

:func:`sgd_weights` runs w_i ← w_i + (2aγ/√N)(y − ŷ) λ_i x with one fresh x ~ N(0, I_N) per step
(the model of the book's chapter *The model*, 01). :func:`sgd_overlaps` runs the Markov chain of the
overlaps that has *exactly* the same law at finite N (derived in the appendix *Derivations*):
conditional on the past, (λ, ν) ~ N(0, C) with C = [[Q, M], [Mᵀ, P]], and |x|² = uᵀC⁺u + χ²_{N−r}
independently, so a step costs O(r³) instead of O(pN). Both return an :class:`SGDTrajectory` (a
:class:`quadnet.Trajectory` with extra fields), time axis first, overlaps in float64.

Time: the start state is at α = 0, and ``alphas`` are the output times, which may start later
(``alphas=[5, 10]`` runs from α = 0 and records at α = 5 and 10) — the rule of every simulator and
integrator of the package.

Each driver reads: validate → plan → run the chosen engine → collect. The engines live beside
this file: ``_weights_numpy`` (blocked BLAS steps, NumPy/CuPy), ``_weights_cuda`` (one GPU block
per replica), ``_chain_numpy`` (reference chain, NumPy/CuPy), ``_chain_numba`` (fused CPU kernel),
``_chain_cuda`` (fused GPU kernel).

Random numbers and determinism
------------------------------
Every replica has its own streams, derived from ``seed`` and the role ("sgd" for weight space,
"chain" for the overlap chain; :func:`quadnet.make_rng`): replica r of a batch of R draws the same
numbers as replica r of any larger batch with the same seed, whatever the other replicas do
(diverge, or not). Chunking of the steps (and the output times) does not change the numbers. The
engines draw differently (same law, other numbers): ``method="numpy"`` with NumPy Generators,
``"numba"`` with xoroshiro128++ in the kernel, ``"cuda"`` with Philox4x32-10 in the kernel. On
CuPy the ``"numpy"`` engines use one generator for the whole batch (numbers depend on R).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as v
from .._common import tr
from .._divergence import BLOWUP, Divergence
from ..backend import array_module
from ..ode import Trajectory
from ..overlaps import _loss
from ..stability import warn_unstable_step
from . import _plan
from ._chain_numpy import SD_TOL as _SD_TOL  # noqa: F401 (tests and notebooks reach for it)
from ._chain_numpy import NumpyChain, chain_steps, gram0
from ._memory import MemoryBudgetError, WeightsLayout, check_budget
from ._weights_numpy import BlockedWeights

__all__ = ["SGDTrajectory", "sgd_weights", "sgd_overlaps", "numba_available", "MemoryBudgetError", "BLOWUP"]

# names the tests and older notebooks reach for
_gram0 = gram0
chain_steps_numpy = chain_steps

#: steps per engine call of the chain (numbers do not depend on it; it sets the progress granularity)
_CHAIN_SEGMENT = 1 << 20
#: how much slower the NumPy reference chain is than the fused numba kernel, measured by `make bench`
#: (benchmarks/results.json, summary "fused_vs_fallback_N*": 43.7–44.2 at N = 10³…10⁶, R = 64,
#: p = 4, p* = 2, two cores); tests/test_sgd_api.py checks it against the file
FALLBACK_SLOWDOWN = 44
_warned_fallback = False


@dataclass(frozen=True)
class SGDTrajectory(Trajectory):
    """A :class:`~quadnet.Trajectory` of one-pass SGD.

    Inherited: ``alpha`` (T,), ``Q`` (T, *batch, p, p), ``M`` (T, *batch, p, p*), ``loss``
    (T, *batch), ``diverged`` and ``alpha_diverged`` (*batch), ``R`` and ``Q_init`` (with
    ``track_init=True``), ``lr`` (γ) and ``eta`` (η = aγ), ``distance_to_init()``.

    Attributes
    ----------
    steps : ndarray (T,) of int
        SGD steps done at each output time; ``alpha = steps / N`` exactly.
    N : int
        Input dimension.
    W : array (*batch, p, N) or None
        Final weights (:func:`sgd_weights` only; NaN where diverged).
    method : str
        The engine that ran: 'weights' or 'weights:cuda' (:func:`sgd_weights`), 'numpy', 'numba'
        or 'cuda' (:func:`sgd_overlaps`).
    """

    steps: Any = None
    N: int = 0
    W: Any = None
    method: str = ""


def numba_available() -> bool:
    """True when the fused numba kernel of the chain can be used here (numba imports).

    Examples
    --------
    >>> import quadnet as qn
    >>> isinstance(qn.numba_available(), bool)
    True
    """
    try:
        _numba_engine()
    except Exception:
        return False
    return True


def _numba_engine():
    from ._chain_numba import NumbaChain  # imports numba; compiled on first call (cached on disk)

    return NumbaChain


# --------------------------------------------------------------------------- weight space


def _check_weights(name: str, W: Any, xp: Any) -> Any:
    """Real, finite, shape (..., rows, N); keeps the dtype (no float64 copy of big arrays)."""
    arr = v.finite_array(name, W, xp, keep_dtype=True)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., rows, N), got shape {arr.shape}")
    if arr.shape[-2] < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    return arr


def _run_dtype(dtype: Any, W0: Any) -> np.dtype:
    """float64 or float32: ``dtype``, else the caller's when it is one of them, else float64."""
    if dtype is None:
        return W0.dtype if W0.dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from None
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    return dtype


def _check_overwrite(W0, batch, p, N, dtype):
    """``overwrite=True`` updates W0 itself: it must hold the whole batch, in the run's dtype, contiguous."""
    want = batch + (p, N)
    if W0.shape != want:
        raise ValueError(
            f"overwrite=True needs W0 of the full batch shape {want} (it is updated in place), got {W0.shape}"
        )
    if W0.dtype != dtype:
        raise ValueError(f"overwrite=True needs W0 in the run's dtype {dtype} (it is updated in place), got {W0.dtype}")
    flags = W0.flags
    if not (flags.c_contiguous and getattr(flags, "writeable", True)):
        raise ValueError("overwrite=True needs W0 C-contiguous and writeable (it is updated in place)")


@dataclass
class _WeightsRun:
    """A planned weight-space run: working arrays and sizes."""

    W: Any  # (R, p, N) the run's weights, updated in place
    Ws: Any  # (1 or R, p*, N) the teacher, in the run's dtype
    W_init: Any  # (R, p, N) or None: W(0) for track_init
    P: Any  # (1 or R, p*, p*)
    batch: tuple
    steps: np.ndarray
    N: int


def _plan_weights(W0, W_star, alphas, dtype, track_init, overwrite, max_memory, xp, fused=False) -> _WeightsRun:
    """Validate the arrays, estimate the peak memory (refusing runs that do not fit), allocate."""
    W0 = _check_weights("W0", W0, xp)
    W_star = _check_weights("W_star", W_star, xp)
    p, N, ps = W0.shape[-2], W0.shape[-1], W_star.shape[-2]
    if W_star.shape[-1] != N:
        raise ValueError(f"W0 and W_star must share the input dimension N, got {W0.shape} and {W_star.shape}")
    batch = _plan.batch_of(W0.shape[:-2], W_star.shape[:-2], names=("W0", "W_star"))
    dtype = _run_dtype(dtype, W0)
    steps = _plan.output_steps(alphas, N)
    R = int(np.prod(batch)) if batch else 1
    if overwrite:
        _check_overwrite(W0, batch, p, N, dtype)
    ws_rows = int(np.prod(W_star.shape[:-2])) if W_star.ndim > 2 else 1
    ws_view = W_star.dtype == dtype and (ws_rows == 1 or W_star.shape[:-2] == batch)  # used as it is
    ws_copy = 0 if ws_view else (1 if ws_rows == 1 else R)
    layout = WeightsLayout(
        R,
        p,
        ps,
        N,
        steps.size,
        dtype.itemsize,
        copy_weights=not overwrite,
        copy_init=bool(track_init and overwrite),
        teacher_rows=ws_copy,
        track_init=bool(track_init),
        fused=fused,
    )
    check_budget(layout, max_memory, xp)
    if overwrite:
        W = W0.reshape(R, p, N)
    else:
        W = xp.empty(batch + (p, N), dtype=dtype)
        W[...] = W0  # broadcasts without an intermediate copy
        W = W.reshape(R, p, N)
    W_init = None
    if track_init:  # the caller's W0 is not modified (or, with overwrite, copied first)
        W_init = W.copy() if overwrite else xp.broadcast_to(W0, batch + (p, N)).reshape(R, p, N)
    if ws_rows == 1:
        Ws = xp.asarray(W_star.reshape(1, ps, N), dtype=dtype)
    elif ws_view:
        Ws = W_star.reshape(R, ps, N)
    else:
        Ws = xp.empty(batch + (ps, N), dtype=dtype)
        Ws[...] = W_star
        Ws = Ws.reshape(R, ps, N)
    Ws64 = Ws.astype(xp.float64, copy=False)
    P = Ws64 @ xp.swapaxes(Ws64, -1, -2) / N
    return _WeightsRun(W, Ws, W_init, P, batch, steps, N)


def _weights_engine(method: str, xp: Any):
    if method not in ("auto", "numpy", "cuda"):
        raise ValueError(f"method must be 'auto', 'numpy' or 'cuda', got {method!r}")
    if method == "cuda" or (method == "auto" and xp is not np and _cuda_by_default()):
        from . import _cuda

        _cuda.require(xp, "sgd_weights")
        from ._weights_cuda import CudaWeights

        return CudaWeights
    return BlockedWeights


def _cuda_by_default() -> bool:
    """``method='auto'`` on CuPy arrays picks the fused CUDA kernels only once the GPU path has
    been validated on a GPU (:data:`quadnet.backend.GPU_VALIDATED`)."""
    from .. import backend
    from . import _cuda

    return backend.GPU_VALIDATED and _cuda.kernels_available()


def sgd_weights(
    W0,
    W_star,
    a,
    b,
    lr=None,
    alphas=None,
    *,
    eta=None,
    noise=0.0,
    seed=None,
    dtype=None,
    track_init=False,
    overwrite=False,
    method="auto",
    max_memory=None,
    blowup=BLOWUP,
    progress=False,
):
    """One-pass SGD in weight space, literally: w_i ← w_i + (2aγ/√N)(y − ŷ) λ_i x, x ~ N(0, I_N) fresh.

    Replicas are batched along the leading axes and advanced together. The start state ``W0`` is
    at α = 0; ``alphas`` are the output times, which may start later. Memory is the weights once
    (none extra with ``overwrite=True``) plus ~64 MB of inputs per chunk of steps, whatever the
    number of steps; the peak is estimated first and a run that does not fit is refused with the
    options that would fit.

    Parameters
    ----------
    W0 : array (..., p, N)
        Initial student weights (components O(1)). Not modified, unless ``overwrite=True``.
    W_star : array (..., p*, N)
        Teacher weights, broadcast against the batch of ``W0`` (e.g. one teacher (p*, N) for all).
    a, b : float > 0
        Readouts of the student and the teacher.
    lr : float > 0, optional
        The plain SGD step γ. Give exactly one of ``lr`` and ``eta``.
    alphas : array (T,), increasing, ≥ 0
        Output times α = steps/N; each is converted to round(α N) steps (these must be distinct).
    eta : float > 0, optional
        The effective step η = aγ, the book's step (instead of ``lr``).
    noise : float ≥ 0
        Label noise σ: y = b|ν|² + σξ, ξ ~ N(0, 1).
    seed : int ≥ 0, SeedSequence, Generator or None
        Randomness: each replica's streams (role "sgd") are derived from it.
    dtype : None, float64 or float32
        Precision of the weights and inputs; None keeps the dtype of ``W0`` when it is float32 or
        float64 (float64 otherwise). Overlaps are accumulated and returned in float64 either way;
        float32 gives the same law of the overlaps (tested) at about half the memory.
    track_init : bool
        Also return R = W W(0)ᵀ/N (no copy of W(0) is made unless ``overwrite=True``).
    overwrite : bool
        Update ``W0`` itself in place (it must hold the whole batch, in the run's dtype, C-contiguous):
        no working copy; ``W`` of the result is ``W0``.
    method : {'auto', 'numpy', 'cuda'}
        'numpy': the blocked engine on the inputs' array module (NumPy or CuPy); 'cuda': the fused
        GPU kernel (one block per replica, numba-cuda; CuPy arrays, or NumPy arrays under
        ``NUMBA_ENABLE_CUDASIM=1``); 'auto': 'numpy' (the fused kernel is not yet validated on a GPU).
    max_memory : int or None
        Refuse (:class:`~quadnet.MemoryBudgetError`) runs whose estimated peak exceeds this many
        bytes; None: the memory available now (``MemAvailable``, or the GPU's free memory).
    blowup : float > 1
        Divergence: tr Q beyond ``blowup`` × max(tr Q(0), (b/a) tr P, 1), or non-finite.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SGDTrajectory
        ``alpha`` (T,) = steps/N, ``Q`` (T, *batch, p, p), ``M`` (T, *batch, p, p*), ``loss``
        (T, *batch, population loss of the overlaps), ``diverged`` / ``alpha_diverged`` (*batch),
        ``W`` (final weights, NaN where diverged), ``steps``, ``N``, ``lr``, ``eta``, and ``R``,
        ``Q_init`` with ``track_init``. A diverged replica is NaN from the output where it was
        detected on; the others are unaffected.

    Raises
    ------
    ValueError, TypeError
        Invalid input, naming the parameter (shapes, non-finite values, both or neither of lr/eta, ...).
    MemoryBudgetError
        The estimated peak memory exceeds ``max_memory`` or the memory available.

    Warns
    -----
    CriticalStepWarning
        With W*W*ᵀ/N = I and the step above :func:`~quadnet.critical_lr`; ``diverged`` still
        reports what happens.

    Examples
    --------
    >>> import numpy as np, quadnet as qn
    >>> Ws = qn.teacher(1, 100, seed=0)
    >>> W0 = qn.init_student(2, 100, replicas=3, seed=1)
    >>> tr = qn.sgd_weights(W0, Ws, a=0.5, b=1.0, alphas=[0.0, 0.5, 1.0], eta=0.1, seed=2)
    >>> tr.Q.shape, tr.steps.tolist(), tr.lr, bool(tr.diverged.any())
    ((3, 3, 2, 2), [0, 50, 100], 0.2, False)
    """
    xp = array_module(W0, W_star)
    prm = _plan.params(a, b, lr, eta, noise, blowup)
    if max_memory is not None:
        max_memory = v.positive("max_memory", max_memory, array=False)
    engine_cls = _weights_engine(method, xp)
    run = _plan_weights(
        W0,
        W_star,
        alphas,
        dtype,
        bool(track_init),
        bool(overwrite),
        max_memory,
        xp,
        fused=engine_cls is not BlockedWeights,
    )
    R, p, N = run.W.shape
    engine = engine_cls(run.W, run.Ws, run.W_init, seed, prm, xp, run.steps.size)
    warn_unstable_step("sgd_weights", run.P, xp, p, run.Ws.shape[-2], prm.a, prm.b, prm.lr, prm.noise, trQ0=engine.trQ0)
    div = Divergence(engine.trQ0, tr(run.P, xp), prm.a, prm.b, prm.blowup)
    engine.attach(div)
    Q_init = engine.initial_Q() if track_init else None
    bar = _plan.progress_bar(progress, run.steps[-1], "sgd_weights")
    try:
        _plan.run_segments(run.steps, engine.advance, engine.record, engine.K_max, bar)
    finally:
        engine.close()
    return _collect_weights(run, engine, div, prm, Q_init, xp)


def _collect_weights(run, engine, div, prm, Q_init, xp) -> SGDTrajectory:
    R, p, N = run.W.shape
    ps, T, batch = run.Ws.shape[-2], run.steps.size, run.batch
    W = engine.final_weights()
    W[xp.asarray(div.diverged)] = xp.nan
    loss = _loss(engine.Q_out, engine.M_out, run.P[None], prm.a, prm.b, prm.noise**2, xp)
    diverged, alpha_div = div.report(batch, xp, N=N)
    return SGDTrajectory(
        alpha=run.steps / N,
        Q=engine.Q_out.reshape((T,) + batch + (p, p)),
        M=engine.M_out.reshape((T,) + batch + (p, ps)),
        loss=loss.reshape((T,) + batch),
        diverged=diverged,
        alpha_diverged=alpha_div,
        steps=run.steps,
        N=int(N),
        R=None if engine.R_out is None else engine.R_out.reshape((T,) + batch + (p, p)),
        Q_init=None if Q_init is None else Q_init.reshape(batch + (p, p)),
        W=W.reshape(batch + (p, N)),
        method=engine.name,
        lr=prm.lr,
        eta=prm.eta,
    )


# --------------------------------------------------------------------------- overlap chain


def _warn_fallback_once() -> None:
    global _warned_fallback
    if _warned_fallback:
        return
    _warned_fallback = True
    warnings.warn(
        "sgd_overlaps: the fused numba kernel is not available here (pip install numba); running the NumPy "
        f"reference chain instead, about {FALLBACK_SLOWDOWN}x slower (measured by `make bench` at R = 64 "
        "replicas on two cores). Same law; other random numbers.",
        RuntimeWarning,
        stacklevel=3,
    )


def _chain_engine(method: str, xp: Any):
    """The engine class for ``method`` on module ``xp`` (clear errors where it cannot run)."""
    if method not in ("auto", "numba", "numpy", "cuda"):
        raise ValueError(f"method must be 'auto', 'numba', 'numpy' or 'cuda', got {method!r}")
    if method == "cuda" or (method == "auto" and xp is not np and _cuda_by_default()):
        from . import _cuda

        _cuda.require(xp, "sgd_overlaps")
        from ._chain_cuda import CudaChain

        return CudaChain
    if method == "numba":
        if xp is not np:
            raise ValueError("method='numba' runs on the CPU; got CuPy arrays (use method='numpy', 'cuda' or 'auto')")
        try:
            return _numba_engine()
        except Exception as exc:
            raise ImportError(f"method='numba' needs numba (pip install numba): {exc}") from exc
    if method == "auto" and xp is np:
        if numba_available():
            return _numba_engine()
        _warn_fallback_once()
    return NumpyChain


def _start_gram(Q0, M0, P, batch, track_init, xp):
    """C(0) (R, d, d), symmetrized, from the batch-broadcast overlaps; returns (C, Qb, Pb)."""
    p, ps = M0.shape[-2], M0.shape[-1]
    R = int(np.prod(batch)) if batch else 1
    Qb = xp.broadcast_to(Q0, batch + (p, p)).reshape(R, p, p)
    Mb = xp.broadcast_to(M0, batch + (p, ps)).reshape(R, p, ps)
    Pb = xp.broadcast_to(P, batch + (ps, ps)).reshape(R, ps, ps)
    C = xp.ascontiguousarray(gram0(Qb, Mb, Pb, track_init, xp))
    return 0.5 * (C + xp.swapaxes(C, -1, -2)), Qb, Pb


class _ChainRecorder:
    """Copies the engine's state into ``out[ti]`` (NaN for diverged replicas)."""

    def __init__(self, engine, div, out, xp):
        self.engine, self.div, self.out, self.xp = engine, div, out, xp

    def __call__(self, ti: int) -> None:
        C = self.xp.asarray(self.engine.state())  # folds the engine's divergence flags in first
        self.out[ti] = self.div.where_active(C, self.xp)


def sgd_overlaps(
    Q0,
    M0,
    P,
    N,
    a,
    b,
    lr=None,
    alphas=None,
    *,
    eta=None,
    noise=0.0,
    seed=None,
    track_init=False,
    method="auto",
    blowup=BLOWUP,
    progress=False,
):
    """Exact finite-N simulation of one-pass SGD in overlap space (the same law as :func:`sgd_weights`).

    The state is the Gram matrix C of [W; W*] (and W(0) with ``track_init``) divided by N. Each
    step draws u = (λ, ν[, λ0]) = L z with L a semidefinite Cholesky factor of C (zero columns for
    zero pivots, so a rank-deficient C is fine: with ``track_init`` C has rank p + p* at α = 0)
    and |x|² = |z|² + χ²_{N−d} (d = dim u), which is exactly uᵀC⁺u + χ²_{N−r}. Then, with
    δ = 2aγ(y − ŷ)λ/√N: Q += (δλᵀ + λδᵀ)/√N + δδᵀ|x|²/N, M += δνᵀ/√N, R += δλ0ᵀ/√N (appendix
    *Derivations*). Cost O(d³) per step, independent of N; float64 throughout. The start state is at
    α = 0; ``alphas`` are the output times, which may start later.

    Parameters
    ----------
    Q0 : array (..., p, p)
        Initial student–student overlaps W Wᵀ/N (batched over replicas; broadcast with M0 and P).
    M0 : array (..., p, p*)
        Initial student–teacher overlaps W W*ᵀ/N.
    P : array (..., p*, p*)
        Teacher–teacher overlaps W* W*ᵀ/N. Q0 and P must be symmetric and [[Q0, M0], [M0ᵀ, P]]
        positive semidefinite, both up to the shared relative tolerance 1e-6 (overlaps of weights).
    N : int, d ≤ N ≤ 2**53
        Input dimension, N ≥ d = p + p* (2p + p* with ``track_init``); integral floats (1e4) are
        accepted.
    a, b : float > 0
        Readouts of the student and the teacher.
    lr : float > 0, optional
        The plain SGD step γ. Give exactly one of ``lr`` and ``eta``.
    alphas : array (T,), increasing, ≥ 0
        Output times α = steps/N; each is converted to round(α N) steps (these must be distinct).
    eta : float > 0, optional
        The effective step η = aγ, the book's step (instead of ``lr``).
    noise : float ≥ 0
        Label noise σ: y = b|ν|² + σξ, ξ ~ N(0, 1).
    seed : int ≥ 0, SeedSequence, Generator or None
        Randomness: each replica's streams (role "chain") are derived from it.
    track_init : bool
        Also track R = W W(0)ᵀ/N from R(0) = Q0 (returned as ``R``, with ``Q_init`` = Q0), so
        ``distance_to_init()`` = tr Q − 2 tr R + tr Q0 = ‖W − W(0)‖²/N.
    method : {'auto', 'numba', 'numpy', 'cuda'}
        'numba': the fused CPU kernel (replicas in parallel, random numbers drawn in the kernel);
        'numpy': the NumPy/CuPy reference; 'cuda': the fused GPU kernel (one thread per replica,
        numba-cuda; CuPy arrays, or NumPy arrays under ``NUMBA_ENABLE_CUDASIM=1``); 'auto': numba
        for NumPy inputs when it imports (else the reference, with a one-time warning), the
        reference for CuPy inputs (the fused GPU kernel is not yet validated on a GPU). All give
        the same law, different numbers.
    blowup : float > 1
        Divergence: tr Q beyond ``blowup`` × max(tr Q(0), (b/a) tr P, 1), or non-finite.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SGDTrajectory
        ``alpha`` (T,), ``Q`` (T, *batch, p, p), ``M`` (T, *batch, p, p*), ``loss`` (T, *batch),
        ``diverged`` / ``alpha_diverged`` (*batch), ``steps``, ``N``, ``method``, ``lr``, ``eta``,
        and ``R``, ``Q_init`` with ``track_init``; ``W`` is None. Diverged replicas are frozen at
        detection and NaN afterwards.

    Raises
    ------
    ValueError, TypeError
        Invalid input, naming the parameter (shapes, non-finite values, a non-PSD Gram matrix,
        N outside its range, both or neither of lr/eta, a method that cannot run here, ...).

    Warns
    -----
    CriticalStepWarning
        With P = I and the step above :func:`~quadnet.critical_lr`.
    RuntimeWarning
        Once, when ``method='auto'`` has to fall back to the slower NumPy reference (no numba).

    Examples
    --------
    >>> import numpy as np, quadnet as qn
    >>> Q0, M0, P = np.eye(2), np.zeros((2, 1)), np.eye(1)
    >>> tr = qn.sgd_overlaps(Q0, M0, P, N=1e3, a=0.5, b=1.0, alphas=[1.0, 2.0], eta=0.1, seed=0)
    >>> tr.alpha.tolist(), tr.steps.tolist(), tr.Q.shape
    ([1.0, 2.0], [1000, 2000], (2, 2, 2))
    """
    xp = array_module(Q0, M0, P)
    Q0, M0, P = v.overlap_triple(Q0, M0, P, xp, names=("Q0", "M0", "P"))
    prm = _plan.params(a, b, lr, eta, noise, blowup)
    track_init = bool(track_init)
    p, ps = M0.shape[-2], M0.shape[-1]
    d = p + ps + (p if track_init else 0)
    N = _plan.input_dimension(N, d, f" (= dimension of the fields u{' with track_init' if track_init else ''})")
    steps = _plan.output_steps(alphas, N)
    engine_cls = _chain_engine(method, xp)
    warn_unstable_step("sgd_overlaps", P, xp, p, ps, prm.a, prm.b, prm.lr, prm.noise, trQ0=tr(Q0, xp))
    batch = _plan.batch_of(Q0.shape[:-2], M0.shape[:-2], P.shape[:-2], names=("Q0", "M0", "P"))
    C, Qb, Pb = _start_gram(Q0, M0, P, batch, track_init, xp)
    div = Divergence(tr(Qb, xp), tr(Pb, xp), prm.a, prm.b, prm.blowup)
    engine = engine_cls(C, div, seed, p, ps, N, prm, xp)
    C_out = xp.full((steps.size,) + C.shape, xp.nan)
    bar = _plan.progress_bar(progress, steps[-1], f"sgd_overlaps[{engine.name}]")
    _plan.run_segments(steps, engine.advance, _ChainRecorder(engine, div, C_out, xp), _CHAIN_SEGMENT, bar)
    return _collect_chain(C_out, Qb, Pb, batch, steps, N, track_init, engine.name, div, prm, xp)


def _collect_chain(C_out, Qb, Pb, batch, steps, N, track_init, name, div, prm, xp) -> SGDTrajectory:
    T, p, ps = steps.size, Qb.shape[-1], Pb.shape[-1]
    Q = C_out[..., :p, :p]
    M = C_out[..., :p, p : p + ps]
    loss = _loss(Q, M, Pb[None], prm.a, prm.b, prm.noise**2, xp)
    diverged, alpha_div = div.report(batch, xp, N=N)
    return SGDTrajectory(
        alpha=steps / N,
        Q=xp.ascontiguousarray(Q).reshape((T,) + batch + (p, p)),
        M=xp.ascontiguousarray(M).reshape((T,) + batch + (p, ps)),
        loss=loss.reshape((T,) + batch),
        diverged=diverged,
        alpha_diverged=alpha_div,
        steps=steps,
        N=int(N),
        R=xp.ascontiguousarray(C_out[..., :p, p + ps :]).reshape((T,) + batch + (p, p)) if track_init else None,
        Q_init=Qb.reshape(batch + (p, p)).copy() if track_init else None,
        W=None,
        method=name,
        lr=prm.lr,
        eta=prm.eta,
    )
