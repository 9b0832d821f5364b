"""Teacher, student initialization and overlaps from weights.

Weights have O(1) components and row norms ≈ √N; overlaps are normalized by N.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module, get_backend

__all__ = ["ROLES", "role_seed", "make_rng", "teacher", "init_student", "overlaps_from_weights", "default_readouts"]


#: The roles that draw random numbers. Each role derives its own stream from a seed, so one integer
#: seed given to the teacher, the student and the simulator never makes them draw the same numbers.
ROLES = ("teacher", "student", "sgd", "chain", "montecarlo", "law", "start", "explorer")
# spawn keys far from the small integers that SeedSequence.spawn uses for children
_ROLE_KEY = {role: 0x51D0_0000 + i for i, role in enumerate(ROLES)}


def role_seed(seed: Any, role: str) -> Any:
    """The seed of ``role``'s stream: an int or SeedSequence ``seed`` becomes a SeedSequence with
    the role's spawn key appended (independent of every other role's); None (fresh entropy) and
    Generators pass through unchanged (a Generator is used as given: pass different generators
    to different roles)."""
    if role not in _ROLE_KEY:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int, a SeedSequence, a Generator or None, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(int(seed), spawn_key=(_ROLE_KEY[role],))
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (_ROLE_KEY[role],),
                                      pool_size=seed.pool_size)
    return seed


def make_rng(seed: Any = None, backend: Any = None, *, role: str | None = None):
    """A ``Generator`` of the chosen backend from a seed (int ≥ 0, SeedSequence, None) or a
    Generator (passed through).

    With ``role`` (one of :data:`ROLES`) an int or SeedSequence seed is first turned into that
    role's own stream (:func:`role_seed`): ``teacher(..., seed=1)`` and ``init_student(...,
    seed=1)`` draw independent numbers. A NumPy ``Generator`` passed with ``backend='cupy'`` is an
    error (streams differ by backend).
    """
    xp = get_backend(backend)
    if isinstance(seed, (bool, np.bool_)) or (
        seed is not None and not isinstance(seed, (int, np.integer, np.random.SeedSequence, np.random.Generator))
        and not type(seed).__module__.startswith("cupy")
    ):
        raise TypeError(f"seed must be an int, a SeedSequence, a Generator or None, got {type(seed).__name__}")
    if isinstance(seed, (int, np.integer)) and seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if role is not None:
        seed = role_seed(seed, role)
    if xp is np:
        if type(seed).__module__.startswith("cupy"):
            raise TypeError("seed: a cupy Generator cannot drive the numpy backend; pass an int seed")
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        raise TypeError("seed: a numpy Generator cannot drive the cupy backend; pass an int seed")
    if isinstance(seed, np.random.SeedSequence):
        seed = int(seed.generate_state(1, np.uint64)[0])
    if seed is None or isinstance(seed, (int, np.integer)):
        return xp.random.default_rng(seed)
    return seed


def default_readouts(p: int, p_star: int) -> tuple[float, float]:
    """The book's default readouts a = 1/p, b = 1/p*."""
    return 1.0 / v.integer("p", p), 1.0 / v.integer("p_star", p_star)


def _backend_of_rng(rng: Any):
    return array_module(backend="cupy") if type(rng).__module__.startswith("cupy") else np


def teacher(p_star: int, N: int, *, seed: Any = None, backend: Any = None):
    """Teacher weights W* (p*, N) with orthonormal rows times √N, so P = W*W*ᵀ/N = I exactly
    (to rounding). Built by QR of a Gaussian matrix. float64."""
    p_star = v.integer("p_star", p_star)
    N = v.integer("N", N)
    if N < p_star:
        raise ValueError(f"N must be ≥ p_star for orthonormal teacher rows, got N = {N}, p* = {p_star}")
    rng = make_rng(seed, backend, role="teacher") if not hasattr(seed, "standard_normal") else seed
    xp = _backend_of_rng(rng)
    G = rng.standard_normal((N, p_star))
    Qf, R = xp.linalg.qr(G)
    Qf = Qf * xp.sign(xp.diagonal(R))[None, :]  # unique (Haar-distributed) orthonormal frame
    return xp.ascontiguousarray((Qf.T * N**0.5).astype(xp.float64))


def init_student(p: int, N: int, *, q0: float = 1.0, replicas: int | None = None, seed: Any = None,
                 backend: Any = None, dtype: Any = None):
    """Student weights with i.i.d. N(0, q0) entries: shape (p, N), or (replicas, p, N).

    Then Q(0) ≈ q0 I and M(0) = O(N^{-1/2}) entries. ``seed`` is an int, a Generator or None.
    """
    p = v.integer("p", p)
    N = v.integer("N", N)
    q0 = v.positive("q0", q0, array=False)
    shape = (p, N) if replicas is None else (v.integer("replicas", replicas), p, N)
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError):
            raise TypeError(f"dtype must be a floating dtype (float64, float32), got {dtype!r}") from None
        if dt.kind != "f":
            raise ValueError(f"dtype must be a floating dtype (float64, float32), got {dt}")
    rng = make_rng(seed, backend, role="student") if not hasattr(seed, "standard_normal") else seed
    xp = _backend_of_rng(rng)
    W = rng.standard_normal(shape) * q0**0.5
    return W.astype(dtype or xp.float64, copy=False)


def overlaps_from_weights(W: Any, W_star: Any):
    """(Q, M, P) = (W Wᵀ/N, W W*ᵀ/N, W* W*ᵀ/N) from W (..., p, N) and W* (..., p*, N), in float64."""
    xp = array_module(W, W_star)
    W, W_star = v.weight_pair(W, W_star, xp)
    N = W.shape[-1]
    Wt = xp.swapaxes(W, -1, -2)
    return W @ Wt / N, W @ xp.swapaxes(W_star, -1, -2) / N, W_star @ xp.swapaxes(W_star, -1, -2) / N
