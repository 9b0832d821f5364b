"""Monte Carlo estimates on sampled inputs, for checking closed forms in the book."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _validate as v
from .backend import array_module, to_numpy
from .model import make_rng

__all__ = ["MCEstimate", "monte_carlo_loss", "monte_carlo_loss_rademacher"]


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


def monte_carlo_loss(W, W_star, a, b, n_samples, *, noise=0.0, seed=None, chunk=8192):
    """½(y − ŷ)² averaged over ``n_samples`` fresh inputs x ~ N(0, I_N): an independent check
    of :func:`~quadnet.population_loss` (chapter 1 of the book).

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
    seed : int ≥ 0, SeedSequence, Generator or None
        Randomness (the ``"montecarlo"`` stream of an int seed).
    chunk : int ≥ 1
        Inputs drawn at a time (memory: chunk × N floats).

    Returns
    -------
    MCEstimate
        NumPy ``mean`` and ``stderr`` of the batch shape.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: bad weights, a, b, noise, n_samples, chunk or seed.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Ws = qn.teacher(1, 20, seed=0, backend="numpy")
    >>> est = qn.monte_carlo_loss(np.zeros((2, 20)), Ws, 0.5, 1.0, 20_000, seed=1)
    >>> exact = float(qn.population_loss(*qn.overlaps_from_weights(np.zeros((2, 20)), Ws), 0.5, 1.0))
    >>> bool(abs(est.mean - exact) < 5 * est.stderr)
    True
    """
    xp = array_module(W, W_star)
    W, W_star = v.weight_pair(W, W_star, xp)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    n = v.integer("n_samples", n_samples, minimum=2)
    chunk = v.integer("chunk", chunk)
    N = W.shape[-1]
    rng = make_rng(seed, xp.__name__, role="montecarlo")
    s1 = s2 = 0.0
    done = 0
    while done < n:
        k = min(chunk, n - done)
        X = rng.standard_normal((k, N))
        lam = xp.einsum("...pn,kn->...kp", W, X) / N**0.5
        nu = xp.einsum("...pn,kn->...kp", W_star, X) / N**0.5
        err = b * xp.sum(nu**2, -1) - a * xp.sum(lam**2, -1)
        if noise:
            err = err + noise * rng.standard_normal(k)
        ell = 0.5 * err**2
        s1 = s1 + xp.sum(ell, -1)
        s2 = s2 + xp.sum(ell**2, -1)
        done += k
    mean = s1 / n
    var = (s2 - n * mean**2) / (n - 1)
    return MCEstimate(mean=to_numpy(mean), stderr=to_numpy(xp.sqrt(var / n)), n_samples=n)


def monte_carlo_loss_rademacher(W, W_star, a, b, n_samples, *, seed=None, chunk=8192):
    """½(y − ŷ)² averaged over ``n_samples`` inputs with i.i.d. ±1 entries (chapter 1 of the book,
    the exercise on universality).

    The inputs have the mean and variance of the Gaussian ones but fourth cumulant κ₄ = −2, so
    the average is not :func:`~quadnet.population_loss` at finite N: it is ε_g − Σ_n D_nn² with
    D = (b W*ᵀW* − a WᵀW)/N, a correction of order 1/N.

    Parameters
    ----------
    W : array (..., p, N)
        Student weights.
    W_star : array (p*, N) or (..., p*, N)
        Teacher weights.
    a, b : float > 0
        Student and teacher readouts.
    n_samples : int ≥ 2
        Number of inputs; every batch element sees the same inputs (common random numbers).
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
        Naming the parameter: bad weights, a, b, n_samples, chunk or seed.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> from quadnet.montecarlo import monte_carlo_loss_rademacher
    >>> Ws = np.array([[1.0, 1.0]])                      # ±1 inputs: (x1 + x2)² / 2 is 0 or 2
    >>> est = monte_carlo_loss_rademacher(np.zeros((1, 2)), Ws, 1.0, 1.0, 20_000, seed=1)
    >>> bool(abs(est.mean - 1.0) < 5 * est.stderr)     # exact: ½ (½ · 0² + ½ · 2²) = 1
    True
    """
    xp = array_module(W, W_star)
    W, W_star = v.weight_pair(W, W_star, xp)
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    n = v.integer("n_samples", n_samples, minimum=2)
    chunk = v.integer("chunk", chunk)
    N = W.shape[-1]
    rng = make_rng(seed, xp.__name__, role="montecarlo")
    s1 = s2 = 0.0
    for start in range(0, n, chunk):
        X = 2.0 * rng.integers(0, 2, size=(min(chunk, n - start), N)) - 1.0
        y = b * ((X @ xp.swapaxes(W_star, -1, -2)) ** 2).sum(-1) / N
        ell = 0.5 * (y - a * ((X @ xp.swapaxes(W, -1, -2)) ** 2).sum(-1) / N) ** 2
        s1, s2 = s1 + ell.sum(-1), s2 + (ell**2).sum(-1)
    mean = s1 / n
    return MCEstimate(mean=to_numpy(mean), stderr=to_numpy(xp.sqrt((s2 / n - mean**2) / (n - 1))), n_samples=n)
