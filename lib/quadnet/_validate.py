"""Input checks shared by the public functions: clear errors that name the parameter."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .backend import to_numpy


def positive(name: str, value: Any, *, allow_zero: bool = False, array: bool = True) -> Any:
    """A finite positive number (or array of them, broadcastable over a batch)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        if isinstance(value, numbers.Real):
            arr = np.asarray(float(value))
        else:
            arr = np.asarray(to_numpy(value))
            if arr.dtype.kind not in "biuf":
                raise TypeError
            arr = arr.astype(float)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if arr.ndim and not array:
        raise TypeError(f"{name} must be a scalar, got an array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    bound = "≥ 0" if allow_zero else "> 0"
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(arr) if arr.ndim == 0 else value


def integer(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer ≥ ``minimum`` (and ≤ ``maximum`` if given).

    Integral floats are accepted (``N=1e4``, ``replicas=64.0``); non-integral ones, booleans and
    non-numbers raise ``TypeError`` naming the parameter.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        f = float(value)
        if not (np.isfinite(f) and f.is_integer()):
            raise TypeError(f"{name} must be an integer (an integral float such as 1e4 is fine), got {value!r}")
        value = int(f)
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer ≤ {maximum}, got {value}")
    return value


def step(lr: Any, eta: Any, a: float, *, required: bool = True, default: float | None = None) -> float:
    """The plain SGD step γ from exactly one of ``lr`` (γ) and ``eta`` (η = aγ, the book's
    effective step), as a float > 0.

    ``a`` must already be validated. With ``required=False`` neither may be given, and
    ``default`` (a γ, e.g. 0 for the drift-only plateau) is returned. Both given, or neither when
    required, raises ``TypeError``.
    """
    if lr is not None and eta is not None:
        raise TypeError(f"give the step as lr (γ) or as eta (η = aγ), not both (got lr = {lr!r}, eta = {eta!r})")
    if lr is None and eta is None:
        if required:
            raise TypeError("the step is missing: give lr (the plain step γ) or eta (the effective step η = aγ)")
        return default
    if eta is not None:
        return positive("eta", eta, array=False) / a
    return positive("lr", lr, array=False)


def alphas(value: Any) -> np.ndarray:
    """Output times: a non-empty 1-d, strictly increasing array of finite α ≥ 0 (float64, host)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"alphas must be a 1-d array of times, got {type(value).__name__}")
    try:
        al = np.asarray(to_numpy(value), dtype=float)
    except (TypeError, ValueError):
        raise TypeError("alphas must be a 1-d array of real times") from None
    if al.ndim != 1 or al.size < 1:
        raise ValueError(f"alphas must be a non-empty 1-d array of times, got shape {al.shape}")
    if not np.all(np.isfinite(al)) or np.any(al < 0):
        raise ValueError("alphas must be finite and ≥ 0")
    if np.any(np.diff(al) <= 0):
        raise ValueError("alphas must be strictly increasing")
    return al


def finite_array(name: str, x: Any, xp: Any, *, min_ndim: int = 0, keep_dtype: bool = False) -> Any:
    """``x`` as a float64 array of module ``xp`` (its own real dtype with ``keep_dtype``, which
    avoids a float64 copy of big weight arrays), finite, with at least ``min_ndim`` axes."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}")
    try:
        arr = xp.asarray(to_numpy(x) if xp is np else x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if not keep_dtype:
        arr = arr.astype(xp.float64, copy=False)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {arr.shape}")
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def weight_pair(W: Any, W_star: Any, xp: Any) -> tuple[Any, Any]:
    """Check student W (..., p, N) and teacher W_star (..., p*, N) weights: finite, p, p*, N ≥ 1,
    the same N, broadcastable batch shapes. Returns them as float64 arrays."""
    W = finite_array("W", W, xp, min_ndim=2)
    W_star = finite_array("W_star", W_star, xp, min_ndim=2)
    if W_star.shape[-1] != W.shape[-1]:
        raise ValueError(f"W and W_star must share the input dimension N, got {W.shape} and {W_star.shape}")
    if min(W.shape[-2:] + W_star.shape[-2:]) < 1:
        raise ValueError(f"W and W_star need p ≥ 1, p* ≥ 1 rows and N ≥ 1 columns, got {W.shape} and {W_star.shape}")
    try:
        np.broadcast_shapes(W.shape[:-2], W_star.shape[:-2])
    except ValueError:
        raise ValueError(f"batch shapes of W {W.shape[:-2]} and W_star {W_star.shape[:-2]} do not broadcast") from None
    return W, W_star


def overlap_triple(Q: Any, M: Any, P: Any, xp: Any, *, names: tuple[str, str, str] = ("Q", "M", "P"),
                   psd: bool = True) -> tuple[Any, Any, Any]:
    """Check Q (..., p, p), M (..., p, p*), P (..., p*, p*) and return them as float64 arrays.

    With ``psd`` (the default) Q and P must be symmetric and [[Q, M], [Mᵀ, P]] positive
    semidefinite up to a relative tolerance (:func:`psd_gram`): overlaps are Gram matrices.
    ``names`` are the parameter names used in the error messages (e.g. ``("Q0", "M0", "P")``).
    """
    nQ, nM, nP = names
    Q = finite_array(nQ, Q, xp, min_ndim=2)
    M = finite_array(nM, M, xp, min_ndim=2)
    P = finite_array(nP, P, xp, min_ndim=2)
    p, p_star = M.shape[-2], M.shape[-1]
    if p < 1 or p_star < 1:
        raise ValueError(f"{nM} must have shape (..., p, p*) with p ≥ 1 and p* ≥ 1, got {M.shape}")
    if Q.shape[-2:] != (p, p):
        raise ValueError(f"{nQ} must have shape (..., p, p) = (..., {p}, {p}) to match {nM} {M.shape}, got {Q.shape}")
    if P.shape[-2:] != (p_star, p_star):
        raise ValueError(
            f"{nP} must have shape (..., p*, p*) = (..., {p_star}, {p_star}) to match {nM} {M.shape}, got {P.shape}"
        )
    try:
        np.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of {nQ} {Q.shape[:-2]}, {nM} {M.shape[:-2]} and {nP} {P.shape[:-2]} do not broadcast"
        ) from None
    if psd:
        psd_gram(Q, M, P, xp, names=names)
    return Q, M, P


#: relative tolerance of :func:`psd_gram`: eigenvalues of the Gram matrix down to −PSD_TOL × tr C
#: pass (rounding, ODE solver error, finite-difference probes around rank-deficient points)
PSD_TOL = 1e-6


def psd_gram(Q: Any, M: Any, P: Any, xp: Any, *, names: tuple[str, str, str] = ("Q", "M", "P"),
             tol: float = PSD_TOL) -> None:
    """Raise ``ValueError`` unless Q and P are symmetric (up to ``tol`` × the largest entry of C)
    and C = [[Q, M], [Mᵀ, P]] is positive semidefinite (eigenvalues ≥ −``tol`` × tr C), per batch
    element. Inputs: validated float64 arrays whose batch shapes broadcast. Cost: one Cholesky
    factorization of the (p+p*)² blocks (an eigendecomposition only when it fails), about 30 µs
    for one small matrix."""
    nQ, nM, nP = names
    batch = tuple(np.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2]))
    p, ps = M.shape[-2], M.shape[-1]
    C = xp.empty(batch + (p + ps, p + ps))
    C[..., :p, :p] = Q
    C[..., :p, p:] = M
    C[..., p:, :p] = xp.swapaxes(M, -1, -2)
    C[..., p:, p:] = P
    C = C.reshape((-1, p + ps, p + ps))
    # symmetry of Q and P (the M blocks are symmetric by construction), relative to each block
    if not bool(xp.all(xp.abs(C - xp.swapaxes(C, -1, -2)) <= tol * xp.max(xp.abs(C), axis=(-2, -1))[:, None, None])):
        for name, S in ((nQ, Q), (nP, P)):
            asym = xp.max(xp.abs(S - xp.swapaxes(S, -1, -2)), axis=(-2, -1))
            if not bool(xp.all(asym <= tol * xp.max(xp.abs(S), axis=(-2, -1)))):
                raise ValueError(f"{name} must be symmetric (an overlap matrix), got an asymmetry of {float(xp.max(asym)):.3g}")
    trace = xp.trace(C, axis1=-2, axis2=-1)
    if xp is np and bool(np.all(trace >= 0)):
        try:  # fast path: C + tol·tr C·I has a Cholesky factor ⇒ every eigenvalue ≥ −tol·tr C
            np.linalg.cholesky(C + (tol * trace)[:, None, None] * np.eye(p + ps))
            return
        except np.linalg.LinAlgError:
            pass  # some element fails (or sits on the boundary): decide by its eigenvalues
    ev = xp.linalg.eigvalsh(C)
    bad = ev[:, 0] < -tol * xp.maximum(trace, 0)
    if not bool(xp.any(bad)):
        return
    i = int(xp.argmax(bad))
    where = f" (batch element {tuple(int(k) for k in np.unravel_index(i, batch))})" if batch else ""
    raise ValueError(
        f"{nQ}, {nM}, {nP} must be overlaps of actual weights: [[{nQ}, {nM}], [{nM}ᵀ, {nP}]] must be positive "
        f"semidefinite (eigenvalues ≥ −{tol:g} × trace), got smallest eigenvalue {float(ev[i, 0]):.4g} "
        f"with trace {float(trace[i]):.4g}{where} (is {nM} too large for {nQ} and {nP}?)"
    )


def scalar_param(name: str, value: Any, xp: Any, *, allow_zero: bool = False) -> Any:
    """A positive parameter as a float, or (batched) as an array with two trailing unit axes."""
    positive(name, value, allow_zero=allow_zero)
    arr = np.asarray(to_numpy(value), dtype=float)
    if arr.ndim == 0:
        return float(arr)
    return xp.asarray(arr)[..., None, None]
