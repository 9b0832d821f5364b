"""Probes of the population loss in weight space: marginal directions and loss profiles.

With D = (b W*ᵀW* − a WᵀW)/N the loss is ε = ½(tr D)² + tr D² (chapter "The model"). Moving
W → W + tV changes D by −(a/N)[t(WᵀV + VᵀW) + t² VᵀV], so a direction with WᵀV = 0 changes D only
at order t²: at a zero-loss point (D = 0) the loss then rises as t⁴, not t² (chapter "The
Hessian landscape").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module, to_numpy
from .model import make_rng, overlaps_from_weights
from .overlaps import population_loss

__all__ = ["marginal_direction", "loss_along"]


def marginal_direction(W: Any, W_star: Any, *, seed: Any = None) -> Any:
    """A unit direction V (p × N) with Wᵀ V = 0 and V W*ᵀ = 0: flat to second order.

    V = c uᵀ / (|c| |u|), with c a vector of the left null space of W (cᵀ W = 0, a combination
    of units that the student does not use) and u a random direction orthogonal to the rows of
    W and W*. Then D(W + tV) = D(W) − (a t²/N) VᵀV exactly, so the Hessian vanishes along V and,
    at a zero-loss point, ε(W + tV) = (a t²/N)² [½ (tr VᵀV)² + tr (VᵀV)²] ∝ t⁴.

    Parameters
    ----------
    W : array (p, N)
        Student weights of rank < p (on the zero-loss manifold W = √(b/a) O W*, the rank is
        p* < p).
    W_star : array (p*, N)
        Teacher weights, with N > rank of [W; W*].
    seed : int, SeedSequence, Generator or None
        Randomness for u (the ``"montecarlo"`` stream of an int seed).

    Returns
    -------
    V : array (p, N), same module as W, ‖V‖_F = 1.

    Raises
    ------
    ValueError
        W of full rank p (no unused combination of units), or no direction left orthogonal to
        W and W* (N too small).

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(1, 20, seed=0, backend="numpy")
    >>> W = np.sqrt(2.0) * np.array([[0.6], [0.8], [0.0]]) @ Ws          # on the manifold, p = 3
    >>> V = marginal_direction(W, Ws, seed=1)
    >>> bool(np.allclose(W.T @ V, 0) and np.allclose(V @ Ws.T, 0))
    True
    """
    xp = array_module(W, W_star)
    W, W_star = v.weight_pair(W, W_star, xp)
    if W.ndim != 2 or W_star.ndim != 2:
        raise ValueError(f"W and W_star must be 2-d (p, N) and (p*, N), got {W.shape} and {W_star.shape}")
    p, N = W.shape
    Wh = np.asarray(to_numpy(W))
    U, s, _ = np.linalg.svd(Wh, full_matrices=True)
    tol = (s.max() if s.size else 0.0) * max(p, N) * np.finfo(float).eps
    rank = int(np.sum(s > tol))
    if rank == p:
        raise ValueError(
            f"W has full rank p = {p}: no combination of units is unused (need W on the "
            "zero-loss manifold with p > p*, or another rank-deficient W)"
        )
    c = U[:, -1]  # cᵀ W = 0
    span = np.linalg.svd(np.concatenate([Wh, np.asarray(to_numpy(W_star))]), full_matrices=False)
    basis = span[2][span[1] > span[1].max() * max(N, p) * np.finfo(float).eps]
    if basis.shape[0] >= N:
        raise ValueError(f"N = {N} leaves no direction orthogonal to the rows of W and W_star")
    u = make_rng(seed, "numpy", role="montecarlo").standard_normal(N)
    u -= basis.T @ (basis @ u)
    V = np.outer(c, u) / (np.linalg.norm(c) * np.linalg.norm(u))
    return xp.asarray(V) if xp is not np else V


def loss_along(W: Any, V: Any, W_star: Any, a: float, b: float, t: Any) -> Any:
    """Population loss ε(W + t V) along a straight line in weight space (no label noise).

    Parameters
    ----------
    W : array (p, N)
        Starting point.
    V : array (p, N) or (K, p, N)
        Direction(s); not normalized here.
    W_star : array (p*, N)
        Teacher weights.
    a, b : float > 0
        Readouts.
    t : array (T,)
        Distances along V (in the units of the weights: |tV|_F = |t| for a unit V).

    Returns
    -------
    array (T,) or (T, K), same module as W.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(1, 10, seed=0, backend="numpy")
    >>> eps = loss_along(Ws, Ws / np.sqrt(10), Ws, 1.0, 1.0, [0.0, 1e-3])
    >>> float(eps[0])                                                 # W = W*: zero loss
    0.0
    """
    xp = array_module(W, V, W_star)
    W = v.finite_array("W", W, xp, min_ndim=2)
    V = v.finite_array("V", V, xp, min_ndim=2)
    if W.ndim != 2:
        raise ValueError(f"W must be 2-d (p, N), got shape {W.shape}")
    if V.shape[-2:] != W.shape or V.ndim > 3:
        raise ValueError(f"V must have shape {W.shape} or (K, *{W.shape}), got {V.shape}")
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    t = v.finite_array("t", t, xp, min_ndim=1)
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-d array of distances, got shape {t.shape}")
    shape = (t.size,) + (1,) * (V.ndim - 2) + (1, 1)
    Ws = W + t.reshape(shape) * V
    Q, M, P = overlaps_from_weights(Ws, W_star)
    return population_loss(Q, M, P, a, b)
