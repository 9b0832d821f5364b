"""Population loss of the quadratic teacher–student network as a function of the overlaps.

For x ~ N(0, I_N) and symmetric A, B: E[(xᵀAx)(xᵀBx)] = tr A tr B + 2 tr(AB). With
D = (b W*ᵀW* − a WᵀW)/N the error is y − ŷ = xᵀDx (+ σξ), hence

    ε_g = ½ E[(y − ŷ)²] = ½ (tr D)² + tr D² (+ σ²/2)
        = ½ (b tr P − a tr Q)² + b² tr P² − 2ab tr(M Mᵀ) + a² tr Q²  (+ σ²/2).

The first line shows ε_g ≥ σ²/2 for overlaps of actual weights; the second, in which O(1) terms
cancel to ε_g near the zero-loss manifold, is what is computed (chapter 1 of the book).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from ._common import extended as _extended
from ._common import fro2 as _fro2
from ._common import squeeze as _squeeze
from ._common import tr as _tr
from .backend import array_module

__all__ = ["population_loss", "trace_D"]


def trace_D(Q: Any, P: Any, a: Any, b: Any, xp: Any) -> Any:
    """tr D = b tr P − a tr Q, shape = batch shape (inputs already validated).

    Parameters
    ----------
    Q : array (..., p, p)
        Student–student overlap.
    P : array (..., p*, p*)
        Teacher–teacher overlap.
    a, b : float or array lifted to (..., 1, 1)
        Student and teacher readouts.
    xp : module
        The array module of the inputs.

    Returns
    -------
    array of the broadcast batch shape.

    Examples
    --------
    >>> import numpy as np
    >>> float(trace_D(np.eye(4), np.eye(2), 0.25, 0.5, np))
    0.0
    """
    return _squeeze(b) * _tr(P, xp) - _squeeze(a) * _tr(Q, xp)


def _loss_polynomial(Q: Any, M: Any, P: Any, a: Any, b: Any, noise2: Any, xp: Any) -> Any:
    """The expanded formula for ε_g on validated arrays (any float dtype), not clipped: a smooth
    polynomial of the overlaps also off the Gram set, as the ODE's right-hand side needs (its
    finite-difference Jacobians probe such points)."""
    a_, b_ = _squeeze(a), _squeeze(b)
    trD = b_ * _tr(P, xp) - a_ * _tr(Q, xp)
    return (
        0.5 * trD**2 + b_**2 * _fro2(P, xp) - 2 * a_ * b_ * _fro2(M, xp) + a_**2 * _fro2(Q, xp) + 0.5 * _squeeze(noise2)
    )


def _loss(Q: Any, M: Any, P: Any, a: Any, b: Any, noise2: Any, xp: Any) -> Any:
    """ε_g on validated arrays (any float dtype), clipped at its exact lower bound σ²/2.

    ½(tr D)² + tr D² ≥ 0 holds exactly for Gram-matrix overlaps; the expanded form computed here
    rounds to values as low as −(a few ulp) × (b tr P)² on the manifold, which the clip removes.
    NaN (a diverged run) stays NaN.
    """
    floor = 0.5 * _squeeze(noise2)
    return xp.maximum(_loss_polynomial(Q, M, P, a, b, noise2, xp), floor)


def _loss_extended(Q: Any, M: Any, P: Any, a: Any, b: Any, noise2: Any, xp: Any) -> Any:
    """:func:`_loss` evaluated in extended precision (NumPy inputs; see ``_common.EXTENDED``),
    returned as float64: near the manifold float64 keeps only ~1e-16 of an ε that is ~α⁻²."""
    Q, M, P = (_extended(x, xp) for x in (Q, M, P))
    return _loss(Q, M, P, _extended(a, xp), _extended(b, xp), _extended(noise2, xp), xp).astype(xp.float64)


def population_loss(Q: Any, M: Any, P: Any, a: Any, b: Any, noise: Any = 0.0) -> Any:
    """Generalization error ε_g = ½ E[(y − ŷ)²] from the overlaps.

    Parameters
    ----------
    Q : array (..., p, p)
        Student–student overlap W Wᵀ/N (symmetric).
    M : array (..., p, p*)
        Student–teacher overlap W W*ᵀ/N.
    P : array (..., p*, p*)
        Teacher–teacher overlap W* W*ᵀ/N. The batch shapes of Q, M, P broadcast together.
    a, b : float > 0, or arrays broadcastable against the batch shape
        Readout weights of student and teacher (≤ 1e50).
    noise : float ≥ 0, or array broadcastable against the batch shape
        Label-noise standard deviation σ; adds σ²/2.

    Returns
    -------
    array
        ε_g with the broadcast batch shape (a 0-d array for unbatched input), same array module
        as the inputs, never below its exact lower bound σ²/2 (the expanded formula is evaluated
        in extended precision on NumPy and clipped there: without it, rounding gives values like
        −4e-16 on the zero-loss manifold).

    Raises
    ------
    TypeError
        Inputs that are not real numbers or arrays of them.
    ValueError
        Naming the parameter: shapes that do not fit (a transposed M, weights passed for
        overlaps, a parameter array that does not broadcast against the batch), non-finite
        values, Q or P not symmetric or [[Q, M], [Mᵀ, P]] not positive semidefinite (relative
        tolerance 1e-6: overlaps are Gram matrices), a, b ≤ 0, noise < 0, any of them above 1e50,
        or inputs so large that ε_g overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> float(qn.population_loss(np.zeros((4, 4)), np.zeros((4, 2)), np.eye(2), 0.25, 0.5))  # W = 0
    1.0
    >>> float(qn.population_loss(np.eye(2), np.eye(2), np.eye(2), 1.0, 1.0, noise=0.5))     # W = W*
    0.125
    """
    xp = array_module(Q, M, P)
    Q, M, P = v.overlap_triple(Q, M, P, xp)
    batch = v.batch_shape(Q, M, P)
    a = v.scalar_param("a", a, xp, batch=batch)
    b = v.scalar_param("b", b, xp, batch=batch)
    n = v.scalar_param("noise", noise, xp, allow_zero=True, batch=batch)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, by name
        loss = _loss_extended(Q, M, P, a, b, n * n, xp)
    if not bool(xp.all(xp.isfinite(loss))):
        raise ValueError(
            "population_loss overflows float64 for these inputs: a·tr Q and b·tr P enter squared "
            f"(largest |Q| entry {float(xp.max(xp.abs(Q))):.3g}, |P| entry {float(xp.max(xp.abs(P))):.3g}); "
            "rescale the overlaps or the readouts"
        )
    return loss
