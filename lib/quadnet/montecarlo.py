"""Monte Carlo estimates on sampled inputs, for checking closed forms in the book."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _validate as v
from .backend import array_module, to_numpy
from .model import make_rng

__all__ = ["MCEstimate", "monte_carlo_loss"]


@dataclass(frozen=True)
class MCEstimate:
    """Sample mean and its standard error (NumPy floats or arrays over the batch)."""

    mean: Any
    stderr: Any
    n_samples: int


def monte_carlo_loss(W, W_star, a, b, n_samples, *, noise=0.0, seed=None, chunk=8192):
    """½(y − ŷ)² averaged over ``n_samples`` fresh inputs x ~ N(0, I_N).

    W (..., p, N), W_star (p*, N) or (..., p*, N). Each batch element sees the same inputs
    (common random numbers: differences between batch elements are estimated sharply).
    Returns an :class:`MCEstimate` with NumPy ``mean`` and ``stderr`` of the batch shape.
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
