"""Teacher, student initialization and overlaps from weights.

Weights have O(1) components and row norms ≈ √N; overlaps are normalized by N.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module, get_backend

__all__ = [
    "ROLES",
    "role_seed",
    "make_rng",
    "teacher",
    "init_student",
    "overlaps_from_weights",
    "default_readouts",
    "plane_rotations",
]


#: The roles that draw random numbers. Each role derives its own stream from a seed, so one integer
#: seed given to the teacher, the student and the simulator never makes them draw the same numbers.
ROLES = ("teacher", "student", "sgd", "chain", "montecarlo", "law", "start", "explorer", "hessian")
# spawn keys far from the small integers that SeedSequence.spawn uses for children
_ROLE_KEY = {role: 0x51D0_0000 + i for i, role in enumerate(ROLES)}


def role_seed(seed: Any, role: str) -> Any:
    """The seed of ``role``'s stream.

    Parameters
    ----------
    seed : int ≥ 0, SeedSequence, Generator or None
        An int or SeedSequence becomes a SeedSequence with the role's spawn key appended
        (independent of every other role's); None (fresh entropy) and Generators pass through
        unchanged (a Generator is used as given: pass different generators to different roles).
    role : str
        One of :data:`ROLES`.

    Returns
    -------
    SeedSequence, Generator or None

    Raises
    ------
    ValueError
        An unknown role, or a negative integer seed.
    TypeError
        A boolean seed.

    Examples
    --------
    >>> from quadnet.model import role_seed
    >>> role_seed(1, "teacher").spawn_key != role_seed(1, "student").spawn_key
    True
    """
    if role not in _ROLE_KEY:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int, a SeedSequence, a Generator or None, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(int(seed), spawn_key=(_ROLE_KEY[role],))
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(
            seed.entropy, spawn_key=tuple(seed.spawn_key) + (_ROLE_KEY[role],), pool_size=seed.pool_size
        )
    return seed


def make_rng(seed: Any = None, backend: Any = None, *, role: str | None = None):
    """A random ``Generator`` of the chosen backend.

    Parameters
    ----------
    seed : int ≥ 0, SeedSequence, Generator or None
        A Generator is passed through; None draws fresh entropy.
    backend : None, 'auto', 'numpy' or 'cupy'
        Array backend (None: ``QUADNET_BACKEND``, default auto).
    role : str, optional
        One of :data:`ROLES`: an int or SeedSequence seed is first turned into that role's own
        stream (:func:`role_seed`), so ``teacher(..., seed=1)`` and ``init_student(..., seed=1)``
        draw independent numbers.

    Returns
    -------
    numpy.random.Generator or cupy.random.Generator

    Raises
    ------
    TypeError
        A seed of another type, or a Generator of the other backend (streams differ by backend).
    ValueError
        A negative integer seed, an unknown role or backend.

    Examples
    --------
    >>> import quadnet as qn
    >>> rng = qn.make_rng(7, "numpy", role="student")
    >>> float(rng.standard_normal()) == float(qn.make_rng(7, "numpy", role="student").standard_normal())
    True
    """
    xp = get_backend(backend)
    if isinstance(seed, (bool, np.bool_)) or (
        seed is not None
        and not isinstance(seed, (int, np.integer, np.random.SeedSequence, np.random.Generator))
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
    """The book's default readouts a = 1/p, b = 1/p*.

    Parameters
    ----------
    p, p_star : int ≥ 1 (integral floats accepted)
        Student and teacher widths.

    Returns
    -------
    (a, b) : (float, float)

    Raises
    ------
    TypeError, ValueError
        Not integers ≥ 1.

    Examples
    --------
    >>> import quadnet as qn
    >>> qn.default_readouts(4, 2)
    (0.25, 0.5)
    """
    return 1.0 / v.integer("p", p), 1.0 / v.integer("p_star", p_star)


def _backend_of_rng(rng: Any):
    return array_module(backend="cupy") if type(rng).__module__.startswith("cupy") else np


def teacher(p_star: int, N: int, *, seed: Any = None, backend: Any = None):
    """Teacher weights W* (p*, N) with orthonormal rows times √N, so P = W*W*ᵀ/N = I (to rounding).

    Built by QR of a Gaussian matrix (a Haar-distributed frame), in float64.

    Parameters
    ----------
    p_star : int ≥ 1
        Teacher width.
    N : int ≥ p_star (integral floats such as 1e4 accepted)
        Input dimension.
    seed : int ≥ 0, SeedSequence, Generator or None
        Randomness (the ``"teacher"`` stream of an int seed, see :func:`make_rng`).
    backend : None, 'auto', 'numpy' or 'cupy'
        Array backend (ignored when ``seed`` is a Generator: its backend is used).

    Returns
    -------
    array (p*, N), float64

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: widths or N not integers ≥ 1, N < p*, a bad seed or backend.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(2, 100, seed=0, backend="numpy")
    >>> np.allclose(Ws @ Ws.T / 100, np.eye(2))
    True
    """
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


def init_student(
    p: int,
    N: int,
    *,
    q0: float = 1.0,
    replicas: int | None = None,
    seed: Any = None,
    backend: Any = None,
    dtype: Any = None,
):
    """Student weights with i.i.d. N(0, q0) entries: shape (p, N), or (replicas, p, N).

    Then Q(0) ≈ q0 I and M(0) has O(N^{-1/2}) entries.

    Parameters
    ----------
    p : int ≥ 1
        Student width.
    N : int ≥ 1 (integral floats accepted)
        Input dimension.
    q0 : float > 0
        Variance of each weight.
    replicas : int ≥ 1 or None
        Number of independent students (a leading axis), or None for one.
    seed : int ≥ 0, SeedSequence, Generator or None
        Randomness (the ``"student"`` stream of an int seed: the same int given to
        :func:`teacher` draws independent numbers).
    backend : None, 'auto', 'numpy' or 'cupy'
        Array backend (ignored when ``seed`` is a Generator).
    dtype : floating dtype or None
        float64 by default; float32 halves the memory of large students.

    Returns
    -------
    array (p, N) or (replicas, p, N)

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: sizes not integers ≥ 1, q0 ≤ 0, a non-floating dtype, a bad seed.

    Examples
    --------
    >>> import quadnet as qn
    >>> qn.init_student(3, 50, replicas=2, seed=0, backend="numpy").shape
    (2, 3, 50)
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
    """The overlaps (Q, M, P) = (W Wᵀ/N, W W*ᵀ/N, W* W*ᵀ/N) of student and teacher weights.

    Parameters
    ----------
    W : array (..., p, N)
        Student weights.
    W_star : array (..., p*, N)
        Teacher weights (batch shapes broadcast with W's).

    Returns
    -------
    (Q, M, P) : float64 arrays (..., p, p), (..., p, p*), (..., p*, p*), same array module.

    Raises
    ------
    TypeError, ValueError
        Naming W or W_star: not real arrays, non-finite, different N, batch shapes that do not
        broadcast.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Q, M, P = qn.overlaps_from_weights(np.ones((2, 4)), np.eye(1, 4) * 2)
    >>> Q, M, P
    (array([[1., 1.],
           [1., 1.]]), array([[0.5],
           [0.5]]), array([[1.]]))
    """
    xp = array_module(W, W_star)
    W, W_star = v.weight_pair(W, W_star, xp)
    N = W.shape[-1]
    Wt = xp.swapaxes(W, -1, -2)
    return W @ Wt / N, W @ xp.swapaxes(W_star, -1, -2) / N, W_star @ xp.swapaxes(W_star, -1, -2) / N


def plane_rotations(p: int, theta: Any, *, i: int = 0, j: int = 1) -> np.ndarray:
    """Rotations of the hidden units i and j by the angles θ: the symmetry W → OW of chapter 1.

    Parameters
    ----------
    p : int ≥ 2
        Student width (the matrices are p × p).
    theta : array (T,) of finite floats
        Angles in radians.
    i, j : int
        The two distinct units that rotate, 0 ≤ i, j < p; the others are left alone.

    Returns
    -------
    ndarray (T, p, p)
        NumPy float64 orthogonal matrices with determinant 1: the identity except
        O[i, i] = O[j, j] = cos θ, O[i, j] = −sin θ, O[j, i] = sin θ.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: p not an integer ≥ 2, theta not a finite 1-d array, i or j out of
        range or equal.

    Examples
    --------
    >>> import numpy as np
    >>> from quadnet.model import plane_rotations
    >>> plane_rotations(3, [np.pi / 2])[0].round(12) + 0.0
    array([[ 0., -1.,  0.],
           [ 1.,  0.,  0.],
           [ 0.,  0.,  1.]])
    """
    p = v.integer("p", p, minimum=2)
    i = v.integer("i", i, minimum=0, maximum=p - 1)
    j = v.integer("j", j, minimum=0, maximum=p - 1)
    if i == j:
        raise ValueError(f"i and j must be two different units, got i = j = {i}")
    theta = v.finite_array("theta", theta, np)
    if theta.ndim != 1:
        raise ValueError(f"theta must be a 1-d array of angles, got shape {theta.shape}")
    O = np.tile(np.eye(p), (theta.size, 1, 1))
    O[:, i, i] = O[:, j, j] = np.cos(theta)
    O[:, i, j], O[:, j, i] = -np.sin(theta), np.sin(theta)
    return O
