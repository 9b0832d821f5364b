"""Summaries of overlap states: the few numbers per replica that the chapters plot and check.

Each function takes overlaps batched over leading axes (a trajectory's ``Q`` of shape
(T, R, p, p) is fine), works on NumPy or CuPy arrays and returns an array of the batch shape on
the same module (bring it to the host with :func:`quadnet.to_numpy` for plotting).

With W (p × N) the student's and W* (p* × N) the teacher's first-layer weights,
Q = WWᵀ/N, M = WW*ᵀ/N and P = W*W*ᵀ/N (chapter "The model").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as v
from ._common import T, fro2, tr
from .backend import array_module, to_numpy
from .manifold import polar

__all__ = [
    "norm_per_unit",
    "scaled_overlap",
    "teacher_fraction",
    "distance_to_solution",
    "polar_deviation",
    "summarize",
]


def _square(name: str, X: Any, xp: Any) -> Any:
    X = v.finite_array(name, X, xp, min_ndim=2)
    if X.shape[-1] != X.shape[-2] or X.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., n, n) with n ≥ 1, got {X.shape}")
    return X


def _matrix(name: str, X: Any, xp: Any) -> Any:
    X = v.finite_array(name, X, xp, min_ndim=2)
    if min(X.shape[-2:]) < 1:
        raise ValueError(f"{name} must have shape (..., p, p*) with p, p* ≥ 1, got {X.shape}")
    return X


def _rows_match(name: str, X: Any, other: str, Y: Any, axis_x: int = -2, axis_y: int = -2) -> None:
    if X.shape[axis_x] != Y.shape[axis_y]:
        raise ValueError(f"{name} of shape {X.shape} does not match {other} of shape {Y.shape}")


def norm_per_unit(Q: Any) -> Any:
    """Mean squared norm of the student's units, tr Q / p = Σ_i |w_i|² / (pN).

    Parameters
    ----------
    Q : array (..., p, p)
        Student–student overlaps, finite.

    Returns
    -------
    array (...), same module as Q. A student with i.i.d. N(0, q0) weights has q0 up to
    O(N^{-1/2}); the plateau has the q of :func:`quadnet.plateau`.

    Examples
    --------
    >>> import numpy as np
    >>> float(norm_per_unit(np.diag([1.0, 2.0, 3.0])))
    2.0
    """
    xp = array_module(Q)
    Q = _square("Q", Q, xp)
    return tr(Q, xp) / Q.shape[-1]


def scaled_overlap(M: Any, N: int) -> Any:
    """Size of the student–teacher overlap in units of its random value, √N ‖M‖_F.

    For a student with i.i.d. N(0, q0) weights against a teacher with P = I, √N M has i.i.d.
    N(0, q0) entries, so √N ‖M‖_F is of order √(p p* q0) whatever N (its square has mean
    p p* q0). It stays of order one on the plateau and grows to √N √(b/a) p*^{1/2} on the
    zero-loss manifold.

    Parameters
    ----------
    M : array (..., p, p*)
        Student–teacher overlaps, finite.
    N : int
        Input dimension.

    Returns
    -------
    array (...), same module as M.

    Examples
    --------
    >>> import numpy as np
    >>> float(scaled_overlap(np.full((2, 1), 0.03), 10_000))    # √N · √2 · 0.03
    4.242640687119285
    """
    xp = array_module(M)
    M = _matrix("M", M, xp)
    N = v.integer("N", N)
    return (N * fro2(M, xp)) ** 0.5


def teacher_fraction(Q: Any, M: Any, P: Any = None) -> Any:
    """Fraction of the student's squared norm that lies in the span of the teacher's rows.

    tr(M P⁻¹ Mᵀ) / tr Q = ‖Π W‖²_F / ‖W‖²_F, with Π the orthogonal projector on the row space of
    W*. It is 1 on the zero-loss manifold and p*/N on average for random weights.

    Parameters
    ----------
    Q : array (..., p, p)
        Student–student overlaps (tr Q > 0).
    M : array (..., p, p*)
        Student–teacher overlaps.
    P : array (..., p*, p*) or None
        Teacher–teacher overlaps, positive definite; None for P = I (the book's teacher).

    Returns
    -------
    array of the broadcast batch shape, same module as the inputs, in [0, 1] for overlaps of
    actual weights.

    Raises
    ------
    ValueError
        Shapes that do not match (naming the argument), non-finite entries, tr Q ≤ 0.

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.eye(2); M = np.array([[0.5], [0.0]])          # one unit half in the teacher's span
    >>> float(teacher_fraction(Q, M))
    0.125
    """
    xp = array_module(Q, M, P)
    Q = _square("Q", Q, xp)
    M = _matrix("M", M, xp)
    _rows_match("M", M, "Q", Q)
    if P is None:
        proj = fro2(M, xp)
    else:
        P = _square("P", P, xp)
        _rows_match("P", P, "M", M, -1, -1)
        proj = tr(M @ xp.linalg.solve(P, T(M, xp)), xp)
    trQ = tr(Q, xp)
    if not bool(xp.all(trQ > 0)):
        raise ValueError("Q must have tr Q > 0 (a student with non-zero weights)")
    return proj / trQ


def distance_to_solution(Q: Any, M: Any, O: Any, a: float, b: float) -> Any:
    """Squared distance from the student to the weights √(b/a) O W*, per input dimension (P = I).

    ‖W − √(b/a) O W*‖²_F / N = tr Q − 2 √(b/a) tr(Oᵀ M) + (b/a) tr(Oᵀ O). With O having
    orthonormal columns, √(b/a) O W* is a point of the zero-loss manifold (chapter "The solution
    manifold"); with O = polar(M(0)) it is the point closest to the initialization, and at α = 0
    the distance is :func:`quadnet.distance_to_manifold_min`.

    Parameters
    ----------
    Q : array (..., p, p);  M : array (..., p, p*)
        Overlaps of the student (batched, broadcast together with O).
    O : array (..., p, p*)
        The frame of the target point (any real matrix; the formula does not need OᵀO = I).
    a, b : float > 0
        Student and teacher readouts.

    Returns
    -------
    array of the broadcast batch shape, same module as the inputs (≥ 0 up to rounding for
    overlaps of actual weights).

    Examples
    --------
    >>> import numpy as np
    >>> O = np.array([[1.0], [0.0]])
    >>> Q, M = 2.0 * O @ O.T, np.sqrt(2.0) * O                  # the point itself, b/a = 2
    >>> abs(float(distance_to_solution(Q, M, O, a=0.5, b=1.0))) < 1e-12
    True
    """
    xp = array_module(Q, M, O)
    Q = _square("Q", Q, xp)
    M = _matrix("M", M, xp)
    O = _matrix("O", O, xp)
    _rows_match("M", M, "Q", Q)
    if O.shape[-2:] != M.shape[-2:]:
        raise ValueError(f"O must have the matrix shape of M {M.shape[-2:]}, got {O.shape[-2:]}")
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    c = (b / a) ** 0.5
    return tr(Q, xp) - 2 * c * xp.sum(O * M, axis=(-2, -1)) + c * c * fro2(O, xp)


def polar_deviation(M: Any, M0: Any) -> Any:
    """How far the polar factor of M has moved from that of M0: ‖polar(M) − polar(M0)‖_F.

    The overlap ODE with P = I from a start where Q(0) commutes with M(0)M(0)ᵀ keeps the polar
    factor of M fixed (chapter "Implicit bias"): this is then zero up to the integrator's error.
    It equals √(2p*(1 − A)) with A the :func:`quadnet.alignment`, but is computed directly, so
    that deviations far below √ε_machine are resolved.

    Parameters
    ----------
    M, M0 : arrays (..., p, p*)
        Overlaps of full rank p* (p ≥ p*), broadcast together; M0 is usually M(0).

    Returns
    -------
    array of the broadcast batch shape, in [0, 2√p*], same module as the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> M0 = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> float(polar_deviation(M0 @ np.diag([0.1, 5.0]), M0))  # singular values changed only
    0.0
    """
    xp = array_module(M, M0)
    M = _matrix("M", M, xp)
    M0 = _matrix("M0", M0, xp)
    if M0.shape[-2:] != M.shape[-2:]:
        raise ValueError(f"M0 must have the matrix shape of M {M.shape[-2:]}, got {M0.shape[-2:]}")
    return fro2(polar(M) - polar(M0), xp) ** 0.5


def summarize(trajectory: Any, N: int) -> dict:
    """The loss, the norm per unit and the scaled teacher overlap of a trajectory, on the host.

    Parameters
    ----------
    trajectory : Trajectory or SGDTrajectory
        From :func:`quadnet.integrate_ode` or :func:`quadnet.sgd_overlaps` (any backend).
    N : int
        Input dimension used to scale the overlap (that of the chain; for an ODE run, the N of its
        start).

    Returns
    -------
    dict with NumPy arrays of shape (T, *batch): ``"loss"`` (ε_g), ``"norm"``
    (:func:`norm_per_unit`) and ``"overlap"`` (:func:`scaled_overlap`).

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> tr = qn.integrate_ode(np.eye(2), np.full((2, 1), 0.01), np.eye(1), 0.5, 1.0, 0.2, [0.0, 1.0])
    >>> s = summarize(tr, 10_000)
    >>> sorted(s), s["norm"].shape, float(s["overlap"][0])
    (['loss', 'norm', 'overlap'], (2,), 1.4142135623730951)
    """
    return {
        "loss": np.asarray(to_numpy(trajectory.loss)),
        "norm": np.asarray(to_numpy(norm_per_unit(trajectory.Q))),
        "overlap": np.asarray(to_numpy(scaled_overlap(trajectory.M, N))),
    }
