"""Monte Carlo estimates on sampled inputs, for checking closed forms in the book."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _validate as v
from .backend import array_module, to_numpy
from .model import make_rng

__all__ = ["MCEstimate", "INPUTS", "monte_carlo_loss"]


@dataclass(frozen=True)
class MCEstimate:
    """Sample mean and its standard error (NumPy floats or arrays over the batch).

    Attributes
    ----------
    mean, stderr : ndarray
        The average and its standard error, of the batch shape.
    n_samples : int
        Number of inputs averaged over.
    """

    mean: Any
    stderr: Any
    n_samples: int


#: the input laws :func:`monte_carlo_loss` samples: i.i.d. entries of mean 0 and variance 1
INPUTS = ("gaussian", "rademacher")


def monte_carlo_loss(W, W_star, a, b, n_samples, *, noise=0.0, inputs="gaussian", seed=None, chunk=8192):
    """½(y − ŷ)² averaged over ``n_samples`` fresh inputs: with x ~ N(0, I_N) an independent check
    of :func:`~quadnet.population_loss` (chapter 1 of the book).

    With ``inputs="rademacher"`` the entries are i.i.d. ±1 (chapter 1, the exercise on
    universality). They have the mean and variance of the Gaussian ones but fourth cumulant
    κ₄ = −2, so the average is then not the population loss at finite N: it is ε_g − Σ_n D_nn²
    with D = (b W*ᵀW* − a WᵀW)/N, a correction of order 1/N.

    Parameters
    ----------
    W : array (..., p, N)
        Student weights.
    W_star : array (p*, N) or (..., p*, N)
        Teacher weights.
    a, b : float > 0
        Student and teacher readouts.
    n_samples : int ≥ 2
        Number of inputs. Each batch element sees the same inputs (common random numbers:
        differences between batch elements are estimated sharply).
    noise : float ≥ 0
        Label-noise standard deviation σ.
    inputs : {'gaussian', 'rademacher'}
        The law of the inputs' entries (:data:`INPUTS`).
    seed : int ≥ 0, SeedSequence, Generator or None
        Randomness (the ``"montecarlo"`` stream of an int seed); a Generator is used as it is, so
        successive calls continue its stream.
    chunk : int ≥ 1
        Inputs drawn at a time (memory: chunk × N floats).

    Returns
    -------
    MCEstimate
        NumPy ``mean`` and ``stderr`` of the batch shape.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: bad weights, a, b, noise, inputs, n_samples, chunk or seed.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(1, 20, seed=0, backend="numpy")
    >>> est = qn.monte_carlo_loss(np.zeros((2, 20)), Ws, 0.5, 1.0, 20_000, seed=1)
    >>> exact = float(qn.population_loss(*qn.overlaps_from_weights(np.zeros((2, 20)), Ws), 0.5, 1.0))
    >>> bool(abs(est.mean - exact) < 5 * est.stderr)
    True
    >>> Ws = np.array([[1.0, 1.0]])                      # ±1 inputs: (x1 + x2)² / 2 is 0 or 2
    >>> est = qn.monte_carlo_loss(np.zeros((1, 2)), Ws, 1.0, 1.0, 20_000, inputs="rademacher", seed=1)
    >>> bool(abs(est.mean - 1.0) < 5 * est.stderr)     # exact: ½ (½ · 0² + ½ · 2²) = 1
    True
    """
    xp = array_module(W, W_star)
    W, W_star = v.weight_pair(W, W_star, xp)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
    n = v.integer("n_samples", n_samples, minimum=2)
    chunk = v.integer("chunk", chunk)
    N = W.shape[-1]
    rng = make_rng(seed, xp.__name__, role="montecarlo")
    s1 = s2 = 0.0
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        if inputs == "gaussian":
            X = rng.standard_normal((k, N))
        else:
            X = 2.0 * rng.integers(0, 2, size=(k, N)) - 1.0
        err = b * _squared_fields(W_star, X, N) - a * _squared_fields(W, X, N)
        if noise:
            err = err + noise * rng.standard_normal(k)
        ell = 0.5 * err**2
        s1, s2 = s1 + ell.sum(-1), s2 + (ell**2).sum(-1)
    mean = s1 / n
    var = (s2 - n * mean**2) / (n - 1)
    return MCEstimate(mean=to_numpy(mean), stderr=to_numpy(xp.sqrt(var / n)), n_samples=n)


def _squared_fields(W, X, N):
    """Σ_i (w_i·x/√N)² for each input (row of X (k, N)): shape (..., k)."""
    return ((X @ W.swapaxes(-1, -2)) ** 2).sum(-1) / N
