"""Input checks shared by the public functions: clear errors that name the parameter."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .backend import to_numpy


def positive(name: str, value: Any, *, allow_zero: bool = False, array: bool = True) -> Any:
    """A finite positive number (or array of them, broadcastable over a batch)."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        arr = np.asarray(to_numpy(value), dtype=float)
    except (TypeError, ValueError):
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


def integer(name: str, value: Any, *, minimum: int = 1) -> int:
    """An integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value}")
    return int(value)


def finite_array(name: str, x: Any, xp: Any, *, min_ndim: int = 0) -> Any:
    """``x`` as a float64 array of module ``xp``, finite, with at least ``min_ndim`` axes."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}")
    try:
        arr = xp.asarray(to_numpy(x) if xp is np else x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(xp.float64, copy=False)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {arr.shape}")
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def overlap_triple(Q: Any, M: Any, P: Any, xp: Any) -> tuple[Any, Any, Any]:
    """Check Q (..., p, p), M (..., p, p*), P (..., p*, p*) and return them as float64 arrays."""
    Q = finite_array("Q", Q, xp, min_ndim=2)
    M = finite_array("M", M, xp, min_ndim=2)
    P = finite_array("P", P, xp, min_ndim=2)
    p, p_star = M.shape[-2], M.shape[-1]
    if p < 1 or p_star < 1:
        raise ValueError(f"M must have shape (..., p, p*) with p ≥ 1 and p* ≥ 1, got {M.shape}")
    if Q.shape[-2:] != (p, p):
        raise ValueError(f"Q must have shape (..., p, p) = (..., {p}, {p}) to match M {M.shape}, got {Q.shape}")
    if P.shape[-2:] != (p_star, p_star):
        raise ValueError(
            f"P must have shape (..., p*, p*) = (..., {p_star}, {p_star}) to match M {M.shape}, got {P.shape}"
        )
    try:
        np.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of Q {Q.shape[:-2]}, M {M.shape[:-2]} and P {P.shape[:-2]} do not broadcast"
        ) from None
    return Q, M, P


def scalar_param(name: str, value: Any, xp: Any, *, allow_zero: bool = False) -> Any:
    """A positive parameter as a float, or (batched) as an array with two trailing unit axes."""
    positive(name, value, allow_zero=allow_zero)
    arr = np.asarray(to_numpy(value), dtype=float)
    if arr.ndim == 0:
        return float(arr)
    return xp.asarray(arr)[..., None, None]
