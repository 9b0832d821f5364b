"""Population loss of the quadratic teacher–student network as a function of the overlaps.

For x ~ N(0, I_N) and symmetric A, B: E[(xᵀAx)(xᵀBx)] = tr A tr B + 2 tr(AB). With
D = (b W*ᵀW* − a WᵀW)/N the error is y − ŷ = xᵀDx (+ σξ), hence

    ε_g = ½ E[(y − ŷ)²] = ½ (tr D)² + tr D² (+ σ²/2)
        = ½ (b tr P − a tr Q)² + b² tr P² − 2ab tr(M Mᵀ) + a² tr Q²  (+ σ²/2).
"""
from __future__ import annotations

from typing import Any

from . import _validate as v
from ._common import fro2 as _fro2
from ._common import squeeze as _squeeze
from ._common import tr as _tr
from .backend import array_module

__all__ = ["population_loss", "trace_D"]



def trace_D(Q: Any, P: Any, a: Any, b: Any, xp: Any) -> Any:
    """tr D = b tr P − a tr Q, shape = batch shape (inputs already validated)."""
    return _squeeze(b) * _tr(P, xp) - _squeeze(a) * _tr(Q, xp)


def _loss(Q: Any, M: Any, P: Any, a: Any, b: Any, noise2: Any, xp: Any) -> Any:
    a_, b_ = _squeeze(a), _squeeze(b)
    trD = b_ * _tr(P, xp) - a_ * _tr(Q, xp)
    return (
        0.5 * trD**2
        + b_**2 * _fro2(P, xp)
        - 2 * a_ * b_ * _fro2(M, xp)
        + a_**2 * _fro2(Q, xp)
        + 0.5 * _squeeze(noise2)
    )


def population_loss(Q: Any, M: Any, P: Any, a: Any, b: Any, noise: Any = 0.0) -> Any:
    """Generalization error ε_g = ½ E[(y − ŷ)²] from the overlaps.

    Parameters
    ----------
    Q : array (..., p, p)
        Student–student overlap W Wᵀ/N (symmetric).
    M : array (..., p, p*)
        Student–teacher overlap W W*ᵀ/N.
    P : array (..., p*, p*)
        Teacher–teacher overlap W* W*ᵀ/N.
    a, b : float > 0 (or arrays broadcastable to the batch shape)
        Readout weights of student and teacher.
    noise : float ≥ 0
        Label-noise standard deviation σ; adds σ²/2.

    Returns
    -------
    array, shape = broadcast batch shape of (Q, M, P) (a 0-d array for unbatched input).
    Same array module as the inputs.

    Raises ``ValueError``/``TypeError`` naming the parameter: mismatched shapes, non-finite
    values, Q or P not symmetric or [[Q, M], [Mᵀ, P]] not positive semidefinite (relative
    tolerance 1e-6: overlaps are Gram matrices), a, b ≤ 0, noise < 0.
    """
    xp = array_module(Q, M, P)
    Q, M, P = v.overlap_triple(Q, M, P, xp)
    a = v.scalar_param("a", a, xp)
    b = v.scalar_param("b", b, xp)
    n = v.scalar_param("noise", noise, xp, allow_zero=True)
    return _loss(Q, M, P, a, b, n * n, xp)
