"""The N → ∞ overlap ODEs of one-pass SGD and their integrator.

With e = y − ŷ = xᵀDx + σξ and the update w_i ← w_i + (2aγ/√N) e λ_i x, one step moves
Q by (4aγ/N) e λλᵀ + (4a²γ²/N²) e² |x|² λλᵀ and M by (2aγ/N) e λνᵀ. One step is dα = 1/N,
and the Gaussian moments E[e xxᵀ] = tr D I + 2D, E[e² xxᵀ] = (2ε₀ + σ²) I + 4 tr D D + 8D²
give (see the appendix of the book for every step)

    dM/dα = 2aγ [ tr D M + 2 (b M P − a Q M) ]
    dQ/dα = 4aγ [ tr D Q + 2 (b M Mᵀ − a Q²) ]
          + 4a²γ² [ (2ε₀ + σ²) Q + 4 tr D (b M Mᵀ − a Q²)
                    + 8 (b² M P Mᵀ − ab (M Mᵀ Q + Q M Mᵀ) + a² Q³) ].

The γ² bracket is the SGD-noise term; ``drift_only=True`` drops it (gradient flow on ε_g).

Times: every integrator and simulator of quadnet starts its state at α = 0 and reports it at the
requested ``alphas``, which may start later (``alphas[0] > 0`` skips the early outputs, it does not
shift the start).

Precision: near the zero-loss manifold the brackets above are differences of O(1) terms that cancel
to the α⁻² relaxation. In float64 their rounding (~1e-16) then caps the step of an implicit solver
(its Newton iteration cannot converge below the noise times the step), so the step count grew ∝ α
beyond α ~ 10⁵. The right-hand side and the loss are therefore evaluated in extended precision
(``numpy.longdouble`` where it is finer than float64, see ``quadnet._common.EXTENDED``) on a float64
state; α = 10⁷ then takes about as many steps as α = 10⁵.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from . import _validate as v
from ._common import EXTENDED, HAS_EXTENDED
from ._common import T as _T
from ._common import squeeze as _squeeze
from ._common import tr as _tr
from ._divergence import BLOWUP, Divergence, check_blowup
from .backend import array_module, asarray, to_numpy
from .overlaps import _loss, _loss_extended, _loss_polynomial
from .stability import warn_unstable_step

__all__ = ["ode_rhs", "integrate_ode", "Trajectory", "RunInterrupted", "LongRunWarning"]


def _rhs(Q, M, P, a, b, lr, noise2, drift_only, xp):
    """Right-hand side on validated arrays (any float dtype); a, b, lr, noise2 floats or (..., 1, 1)."""
    trD = (_squeeze(b) * _tr(P, xp) - _squeeze(a) * _tr(Q, xp))[..., None, None]
    MMt = M @ _T(M, xp)
    QQ = Q @ Q
    dM = 2 * a * lr * (trD * M + 2 * (b * (M @ P) - a * (Q @ M)))
    G = b * MMt - a * QQ
    dQ = 4 * a * lr * (trD * Q + 2 * G)
    if not drift_only:
        two_eps = 2 * _loss_polynomial(Q, M, P, a, b, 0.0, xp)[..., None, None] + noise2
        MMtQ = MMt @ Q
        cubic = b * b * (M @ P @ _T(M, xp)) - a * b * (MMtQ + _T(MMtQ, xp)) + a * a * (QQ @ Q)
        dQ = dQ + 4 * (a * lr) ** 2 * (two_eps * Q + 4 * trD * G + 8 * cubic)
    return dQ, dM


def ode_rhs(Q, M, P, a, b, lr=None, *, eta=None, noise=0.0, drift_only=False):
    """Right-hand side (dQ/dα, dM/dα) of the overlap ODEs (chapter 2 of the book).

    Parameters
    ----------
    Q : array (..., p, p)
        Student–student overlap.
    M : array (..., p, p*)
        Student–teacher overlap.
    P : array (..., p*, p*)
        Teacher–teacher overlap. The batch shapes of Q, M, P broadcast together.
    a, b : float > 0, or arrays broadcastable against the batch shape
        Student and teacher readouts.
    lr : float > 0 or array, optional
        The plain SGD step γ. Give exactly one of ``lr`` and ``eta``.
    eta : float > 0 or array, optional
        The effective step η = aγ, the book's variable (the dynamics depends on γ only through it).
    noise : float ≥ 0 or array
        Label-noise standard deviation σ (enters only the γ² term).
    drift_only : bool
        Drop the O(γ²) SGD-noise term (population gradient flow).

    Returns
    -------
    (dQ, dM) : arrays (..., p, p), (..., p, p*)
        With the broadcast batch shape, same array module as the inputs; per unit α.

    Raises
    ------
    TypeError
        Both or neither of ``lr`` and ``eta``; inputs that are not real numbers.
    ValueError
        Naming the parameter: shapes that do not fit (a transposed M, weights passed for
        overlaps, a parameter array that does not broadcast against the batch), non-finite
        values, Q or P not symmetric or [[Q, M], [Mᵀ, P]] not positive semidefinite (relative
        tolerance 1e-6, loose enough for finite-difference probes), a, b, lr, eta ≤ 0, noise < 0,
        any of them above 1e50, or inputs so large that the result overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> Q, M, P = np.eye(2), np.zeros((2, 1)), np.eye(1)
    >>> dQ, dM = qn.ode_rhs(Q, M, P, a=0.5, b=1.0, eta=0.1, drift_only=True)
    >>> dQ   # tr D = b tr P − a tr Q = 0, so dQ = 8η(b MMᵀ − a Q²) = −0.4 I
    array([[-0.4,  0. ],
           [ 0. , -0.4]])
    """
    xp = array_module(Q, M, P)
    Q, M, P = v.overlap_triple(Q, M, P, xp)
    batch = v.batch_shape(Q, M, P)
    a = v.scalar_param("a", a, xp, batch=batch)
    b = v.scalar_param("b", b, xp, batch=batch)
    which = v.which_step(lr, eta)
    step = v.scalar_param(which, lr if which == "lr" else eta, xp, batch=batch)
    lr = step if which == "lr" else step / a
    n = v.scalar_param("noise", noise, xp, allow_zero=True, batch=batch)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, by name
        dQ, dM = _rhs(Q, M, P, a, b, lr, n * n, bool(drift_only), xp)
    if not (bool(xp.all(xp.isfinite(dQ))) and bool(xp.all(xp.isfinite(dM)))):
        raise ValueError(
            "ode_rhs overflows float64 for these inputs (it is cubic in Q and quadratic in aγ): "
            f"largest |Q| entry {float(xp.max(xp.abs(Q))):.3g}, |M| entry {float(xp.max(xp.abs(M))):.3g}; "
            "rescale the overlaps, the readouts or the step"
        )
    return dQ, dM


@dataclass(frozen=True)
class Trajectory:
    """Overlaps along a run, time axis first (returned by :func:`integrate_ode` and the simulators).

    Attributes
    ----------
    alpha : (T,)
        Times α = samples / N of the outputs (the run itself starts at α = 0).
    Q : (T, *batch, p, p)
        Student–student overlap at each α.
    M : (T, *batch, p, p*)
        Student–teacher overlap.
    loss : (T, *batch)
        Population loss ε_g at each α (NaN after divergence).
    diverged : (*batch,)
        True where the run diverged (step above the critical one, ...).
    alpha_diverged : (*batch,)
        α at which divergence was detected (NaN where it did not).
    R : (T, *batch, p, p) or None
        R = W W(0)ᵀ/N, when run with ``track_init=True``.
    Q_init : (*batch, p, p) or None
        Q(0), when run with ``track_init=True``.
    lr, eta : float or None
        The plain step γ and the effective step η = aγ of the run.

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> tr = qn.integrate_ode(np.eye(2), np.full((2, 1), 0.1), np.eye(1), 0.5, 1.0, eta=0.1,
    ...                       alphas=[0.0, 1.0, 2.0])
    >>> len(tr), tr.batch_shape, tr.Q.shape, tr.eta
    (3, (), (3, 2, 2), 0.1)
    """

    alpha: Any
    Q: Any
    M: Any
    loss: Any
    diverged: Any
    alpha_diverged: Any
    R: Any = None
    Q_init: Any = None
    lr: Any = None
    eta: Any = None

    def distance_to_init(self) -> Any:
        """‖W(α) − W(0)‖²/N = tr Q − 2 tr R + tr Q(0), shape (T, *batch).

        Returns
        -------
        array (T, *batch), same array module as the trajectory.

        Raises
        ------
        ValueError
            The run was made without ``track_init=True`` (R is None).

        Examples
        --------
        >>> import numpy as np
        >>> import quadnet as qn
        >>> tr = qn.integrate_ode(np.eye(2), np.full((2, 1), 0.1), np.eye(1), 0.5, 1.0, eta=0.1,
        ...                       alphas=[0.0, 5.0], track_init=True)
        >>> d = tr.distance_to_init()
        >>> float(d[0]), bool(d[1] > 0)
        (0.0, True)
        """
        if self.R is None:
            raise ValueError("distance_to_init needs R: run with track_init=True")
        xp = array_module(self.Q)
        return _tr(self.Q, xp) - 2 * _tr(self.R, xp) + _tr(self.Q_init, xp)[None]

    @property
    def batch_shape(self) -> tuple:
        """The batch shape (all axes of ``loss`` after the time axis)."""
        return tuple(self.loss.shape[1:])

    def to_numpy(self) -> "Trajectory":
        """A copy with every array as a NumPy array.

        Examples
        --------
        >>> import numpy as np
        >>> import quadnet as qn
        >>> tr = qn.integrate_ode(np.eye(1), np.zeros((1, 1)), np.eye(1), 1.0, 1.0, 0.1, [0.0, 1.0])
        >>> type(tr.to_numpy().Q).__name__
        'ndarray'
        """
        return type(self)(**{f.name: to_numpy(getattr(self, f.name)) for f in fields(self)})

    def __len__(self) -> int:
        return int(self.alpha.shape[0])


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (``KeyboardInterrupt``), carrying what it had computed.

    It is a ``KeyboardInterrupt``, so a loop around the call stops as usual; catch it to keep the
    partial result.

    Attributes
    ----------
    trajectory : Trajectory
        The outputs completed before the interrupt: ``trajectory.alpha`` is ``alphas[:n]`` for the
        n requested times ≤ ``alpha_reached`` (possibly none), every other field as in a finished
        run over those times (divergences flagged so far included).
    alpha_reached : float
        The α the integration had reached.

    Examples
    --------
    >>> import quadnet as qn
    >>> try:
    ...     raise qn.RunInterrupted(None, 12.5)
    ... except KeyboardInterrupt as stop:
    ...     print(stop)
    interrupted at α = 12.5: the outputs computed so far are in .trajectory
    """

    def __init__(self, trajectory: Any, alpha_reached: float):
        super().__init__(f"interrupted at α = {alpha_reached:.6g}: the outputs computed so far are in .trajectory")
        self.trajectory = trajectory
        self.alpha_reached = alpha_reached

    def __reduce__(self):
        return type(self), (self.trajectory, self.alpha_reached)


class LongRunWarning(RuntimeWarning):
    """A run is on course to take long (the estimate is in the message); ``progress=True`` shows a
    bar, Ctrl-C stops it keeping the outputs (:class:`RunInterrupted`)."""


RunInterrupted.__module__ = LongRunWarning.__module__ = "quadnet"  # shown (and filtered) as quadnet.X


# --------------------------------------------------------------------------- integrator: set-up

#: wall time (s) past which a run that shows no bar warns with its estimated remaining time
LONG_RUN_S = 30.0


def _solver_class(method: Any):
    """The scipy ``OdeSolver`` subclass for ``method`` (a name of ``solve_ivp`` or the class itself)."""
    from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, OdeSolver, Radau

    names = {"BDF": BDF, "Radau": Radau, "LSODA": LSODA, "RK45": RK45, "RK23": RK23, "DOP853": DOP853}
    if isinstance(method, str) and method in names:
        return names[method]
    if isinstance(method, type) and issubclass(method, OdeSolver):
        return method
    raise ValueError(f"method must be one of {sorted(names)} or a scipy.integrate.OdeSolver subclass, got {method!r}")


@dataclass(frozen=True)
class _Setup:
    """Validated input of :func:`integrate_ode`: host float64 arrays with the batch flattened."""

    Q0: np.ndarray  # (nb, p, p)
    M0: np.ndarray  # (nb, p, p*)
    P: np.ndarray  # (nb, p*, p*)
    batch: tuple
    a: float
    b: float
    lr: float
    noise2: float
    drift_only: bool
    track_init: bool
    alphas: np.ndarray
    rtol: float
    atol: float
    blowup: float
    method: Any
    xp: Any


def _setup(Q0, M0, P, a, b, lr, eta, alphas, noise, drift_only, rtol, atol, blowup, method, track_init) -> _Setup:
    """Validate the arguments of :func:`integrate_ode` (errors name the parameter)."""
    xp = array_module(Q0, M0, P)
    Q0, M0, P = v.overlap_triple(Q0, M0, P, xp, names=("Q0", "M0", "P"))
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.step(lr, eta, a)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    rtol, atol = v.positive("rtol", rtol, array=False), v.positive("atol", atol, array=False)
    if alphas is None:
        raise TypeError("alphas (the output times) is missing")
    al = v.alphas(alphas)
    batch = v.batch_shape(Q0, M0, P)
    if 0 in batch:
        raise ValueError(
            f"Q0, M0, P have an empty batch (batch shape {batch}): integrate_ode needs at least one element"
        )
    p, ps = M0.shape[-2:]
    flat = [
        np.ascontiguousarray(np.broadcast_to(to_numpy(x), batch + x.shape[-2:]).reshape((-1,) + x.shape[-2:]))
        for x in (Q0, M0, P)
    ]
    setup = _Setup(
        *flat,
        batch,
        a,
        b,
        lr,
        noise * noise,
        bool(drift_only),
        bool(track_init),
        al,
        rtol,
        atol,
        check_blowup(blowup),
        _solver_class(method),
        xp,
    )
    _check_start_finite(setup)
    if not drift_only:
        warn_unstable_step(
            "integrate_ode", P, xp, p, ps, a, b, lr, noise, trQ0=np.trace(setup.Q0, axis1=-2, axis2=-1), stacklevel=4
        )
    return setup


def _check_start_finite(s: _Setup) -> None:
    """ValueError when the loss or the right-hand side at the start overflows float64."""
    with np.errstate(all="ignore"):
        dQ, dM = _rhs(s.Q0, s.M0, s.P, s.a, s.b, s.lr, s.noise2, s.drift_only, np)
        loss = _loss(s.Q0, s.M0, s.P, s.a, s.b, s.noise2, np)
    if not (np.all(np.isfinite(dQ)) and np.all(np.isfinite(dM)) and np.all(np.isfinite(loss))):
        raise ValueError(
            "integrate_ode: the loss or the right-hand side at the start overflows float64 "
            f"(a = {s.a:g}, b = {s.b:g}, lr = {s.lr:g}, largest |Q0| entry {np.abs(s.Q0).max():.3g}, "
            f"|M0| entry {np.abs(s.M0).max():.3g}); rescale the overlaps, the readouts or the step"
        )


# --------------------------------------------------------------------------- integrator: the system


class _Split:
    """A value x = base + delta kept as its two parts: the polynomial right-hand side and loss
    evaluated on such parts give their change ``delta`` under a small change of the arguments
    without the cancellation that computing f(base + delta) − f(base) would suffer."""

    __slots__ = ("base", "delta")
    __array_ufunc__ = None  # NumPy arrays defer to the reflected operators below

    def __init__(self, base: Any, delta: Any):
        self.base, self.delta = base, delta

    def __add__(self, o):
        if isinstance(o, _Split):
            return _Split(self.base + o.base, self.delta + o.delta)
        return _Split(self.base + o, self.delta)

    __radd__ = __add__

    def __neg__(self):
        return _Split(-self.base, -self.delta)

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):  # elementwise: (x + dx)(y + dy) − xy = x dy + dx (y + dy)
        if isinstance(o, _Split):
            return _Split(self.base * o.base, self.base * o.delta + self.delta * (o.base + o.delta))
        return _Split(self.base * o, self.delta * o)

    __rmul__ = __mul__

    def __matmul__(self, o):
        if isinstance(o, _Split):
            return _Split(self.base @ o.base, self.base @ o.delta + self.delta @ (o.base + o.delta))
        return _Split(self.base @ o, self.delta @ o)

    def __rmatmul__(self, o):
        return _Split(o @ self.base, o @ self.delta)

    def __pow__(self, n: int):
        if n != 2:
            raise NotImplementedError("_Split supports squares only")
        return self * self

    def __getitem__(self, index):
        return _Split(self.base[index], self.delta[index])

    def total(self) -> Any:
        return self.base + self.delta


class _SplitModule:
    """The few array functions ``_rhs`` and ``_loss`` call, acting on :class:`_Split` parts (linear
    maps act on each part; the loss's clip at its floor is left to the caller)."""

    float64 = np.float64

    @staticmethod
    def _map(f, A, *args, **kw):
        return _Split(f(A.base, *args, **kw), f(A.delta, *args, **kw)) if isinstance(A, _Split) else f(A, *args, **kw)

    @classmethod
    def trace(cls, A, axis1, axis2):
        return cls._map(np.trace, A, axis1=axis1, axis2=axis2)

    @classmethod
    def swapaxes(cls, A, i, j):
        return cls._map(np.swapaxes, A, i, j)

    @classmethod
    def sum(cls, A, axis):
        return cls._map(np.sum, A, axis=axis)

    @staticmethod
    def maximum(x, floor):
        return x


#: the late-time tail starts at ηα = 1e3 (a thousand relaxation times 1/η): from there on the state
#: is integrated as its deviation from an anchor (see :class:`_System`)
TAIL_ETA_ALPHA = 1e3


class _System:
    """The ODE of the batch elements ``rows``, packed as one flat state y (float64): per element
    [Q.ravel(), M.ravel(), R.ravel() (with track_init)].

    Without an anchor (before the tail) the right-hand side is evaluated in float64, as it always
    was. With an ``anchor`` (a flat state in extended precision, used in the late-time tail) the
    solver's variable is the deviation y = state − anchor, and the right-hand side and the loss are
    evaluated in extended precision through :class:`_Split` parts: near the manifold the deviation
    is small, so its relative precision, the solver's tolerance on it and the rounding of f all
    scale with it instead of with the O(1) overlaps (measured: ε at α = 10⁷ to ~1e-5 relative
    instead of a few percent, and no step-size cap from rounding). Losses reported at the outputs
    are always evaluated in extended precision."""

    def __init__(self, s: _Setup, rows: np.ndarray, limit: np.ndarray, anchor: np.ndarray | None = None):
        self.s, self.m, self.limit, self.anchor = s, rows.size, limit, anchor
        self.p, self.ps = s.M0.shape[-2:]
        self.k = self.p * self.p + self.p * self.ps + (self.p * self.p if s.track_init else 0)
        # the tail computes in extended precision, the rest in float64
        dtype = EXTENDED if anchor is not None else np.float64
        self.P, self.P_ext = s.P[rows].astype(dtype), s.P[rows].astype(EXTENDED)
        self.M_init = s.M0[rows].astype(dtype) if s.track_init else None

    def pack(self, Q, M, R=None) -> np.ndarray:
        """(m, p, p), (m, p, p*)[, (m, p, p)] → flat state (dtype of the inputs)."""
        parts = [Q.reshape(self.m, -1), M.reshape(self.m, -1)] + ([R.reshape(self.m, -1)] if self.s.track_init else [])
        return np.concatenate(parts, axis=1).ravel()

    def unpack(self, y) -> tuple:
        """Flat state(s) (m·k,) or (m·k, n) → Q, M, R with shapes ([n,] m, p, p) etc. (R None without track_init)."""
        y = np.asarray(y)
        Y = y.reshape(self.m, self.k) if y.ndim == 1 else np.moveaxis(y.reshape(self.m, self.k, -1), -1, 0)
        p, ps, lead = self.p, self.ps, Y.shape[:-1]
        Q = Y[..., : p * p].reshape(lead + (p, p))
        M = Y[..., p * p : p * p + p * ps].reshape(lead + (p, ps))
        R = Y[..., p * p + p * ps :].reshape(lead + (p, p)) if self.s.track_init else None
        return Q, M, R

    def full(self, y) -> np.ndarray:
        """The state(s) in extended precision: anchor + y, or y."""
        y = np.asarray(y).astype(EXTENDED)
        if self.anchor is None:
            return y
        return y + (self.anchor if y.ndim == 1 else self.anchor[:, None])

    def _parts(self, y, dtype=np.float64):
        """(Q, M, R) for the right-hand side and the loss: arrays of ``dtype`` without an anchor,
        else :class:`_Split` parts in extended precision."""
        if self.anchor is None:
            return self.unpack(np.asarray(y).astype(dtype)), np
        d, base = self.unpack(np.asarray(y).astype(EXTENDED)), self.unpack(self.anchor)
        if d[0].ndim > base[0].ndim:  # several times at once: broadcast the anchor over them
            base = tuple(None if x is None else x[None] for x in base)
        return tuple(None if x is None else _Split(x, dx) for x, dx in zip(base, d)), _SplitModule

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        s = self.s
        (Q, M, R), xp = self._parts(y)
        dQ, dM = _rhs(Q, M, self.P, s.a, s.b, s.lr, s.noise2, s.drift_only, xp)
        dR = None
        if s.track_init:  # dR/dα = 2aγ [tr D R + 2(b M M(0)ᵀ − a Q R)]: R is linear in W, no γ² term
            trD = (s.b * _tr(self.P, xp) - s.a * _tr(Q, xp))[:, None, None]
            dR = 2 * s.a * s.lr * (trD * R + 2 * (s.b * M @ _T(self.M_init, np) - s.a * Q @ R))
        if xp is _SplitModule:
            dQ, dM, dR = (None if x is None else x.total() for x in (dQ, dM, dR))
        return self.pack(dQ, dM, dR).astype(np.float64)

    def values(self, ys) -> tuple:
        """States (m·k, n) → float64 Q, M, R (n, m, ...) and the loss (n, m), the loss from the
        extended (or split) state before its rounding to float64."""
        (Q, M, _), xp = self._parts(ys, EXTENDED)
        loss = _loss(Q, M, self.P_ext[None], self.s.a, self.s.b, self.s.noise2, xp)
        if xp is _SplitModule:
            loss = np.maximum(loss.total(), 0.5 * self.s.noise2)
        Qf, Mf, Rf = self.unpack(self.full(ys).astype(np.float64))
        return Qf, Mf, Rf, loss.astype(np.float64)

    def traces(self, y: np.ndarray) -> np.ndarray:
        """tr Q per element, (m,)."""
        return np.trace(self.unpack(self.full(y))[0], axis1=-2, axis2=-1).astype(np.float64)

    def margin(self, y: np.ndarray) -> float:
        """min over elements of log(limit) − log(tr Q): crosses 0 where one blows up; −1 if not finite."""
        tr = self.traces(y)
        if not np.all(np.isfinite(tr)):
            return -1.0
        return float(np.min(np.log(self.limit) - np.log(np.maximum(tr, 1e-300))))

    def options(self, cls) -> dict:
        """Jacobian structure for the solver: the batch elements are independent (k × k blocks)."""
        from scipy.integrate import BDF, LSODA, Radau

        if issubclass(cls, LSODA):
            return dict(lband=self.k - 1, uband=self.k - 1)
        if issubclass(cls, (BDF, Radau)):
            from scipy.sparse import block_diag

            return dict(jac_sparsity=block_diag([np.ones((self.k, self.k))] * self.m, format="csr"))
        return {}

    def keep(self, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The full (extended) state of the elements where ``mask`` is True, flat."""
        return self.full(y).reshape(self.m, self.k)[mask].ravel()


class _Outputs:
    """The requested outputs (T, nb, ...) on the host, filled as the integration passes them;
    ``n_done`` of them are complete (all elements written)."""

    def __init__(self, s: _Setup):
        T, nb, (p, ps) = s.alphas.size, s.Q0.shape[0], s.M0.shape[-2:]
        self.alphas = s.alphas
        self.Q = np.full((T, nb, p, p), np.nan)
        self.M = np.full((T, nb, p, ps), np.nan)
        self.R = np.full((T, nb, p, p), np.nan) if s.track_init else None
        self.loss = np.full((T, nb), np.nan)
        self.n_done, self.alpha_reached = 0, 0.0
        if self.alphas[0] == 0:  # the start state itself
            self.Q[0], self.M[0] = s.Q0, s.M0
            self.loss[0] = _loss_extended(s.Q0, s.M0, s.P, s.a, s.b, s.noise2, np)
            if s.track_init:
                self.R[0] = s.Q0
            self.n_done = 1

    def write(self, t_lo: float, t_hi: float, dense, system: _System, rows: np.ndarray) -> None:
        """Fill the outputs at α in (t_lo, t_hi] for ``rows`` from the solver's dense output."""
        i0, i1 = np.searchsorted(self.alphas, [t_lo, t_hi], side="right")
        if i1 > i0:
            Q, M, R, loss = system.values(dense(self.alphas[i0:i1]))
            self.Q[i0:i1, rows], self.M[i0:i1, rows], self.loss[i0:i1, rows] = Q, M, loss
            if R is not None:
                self.R[i0:i1, rows] = R
        self.n_done, self.alpha_reached = max(self.n_done, int(i1)), t_hi


class _Progress:
    """A tqdm bar over ln(1 + α) (with ``progress``), and otherwise one :class:`LongRunWarning` when
    the pace so far says the run needs more than :data:`LONG_RUN_S` more seconds.

    The pace is extrapolated only once the run has covered :attr:`MIN_FRACTION` of its horizon in
    ln(1 + α): before that the pace is not yet even (start-up costs, and a run about to blow up
    crawls in α while its step shrinks, then stops). A run still short of that share after
    :data:`LONG_RUN_S` seconds warns without an estimate."""

    #: wall time (s) of the first look at the pace (then after 2, 4, 8, ... times as long)
    FIRST_CHECK_S = 1.0
    #: share of ln(1 + α_end) covered before the pace is extrapolated
    MIN_FRACTION = 0.05

    def __init__(self, enabled: bool, alpha_end: float):
        self.s_end, self.t0 = float(np.log1p(alpha_end)), time.perf_counter()
        self.alpha_end, self.next_check, self.warned = alpha_end, self.FIRST_CHECK_S, False
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.s_end,
                desc="integrate_ode",
                unit="",
                bar_format=("{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]"),
            )

    def update(self, alpha: float) -> None:
        s = float(np.log1p(alpha))
        if self.bar is not None:
            self.bar.set_postfix_str(f"α = {alpha:.3g} of {self.alpha_end:.3g}", refresh=False)
            self.bar.update(s - self.bar.n)
            return
        elapsed = time.perf_counter() - self.t0
        if self.warned or elapsed < self.next_check:
            return
        self.next_check = max(2 * self.next_check, elapsed)
        if s > 0 and s >= self.MIN_FRACTION * self.s_end:
            remaining = elapsed * (self.s_end - s) / s  # ln(1 + α) advances at a fairly even pace
            if remaining <= LONG_RUN_S:
                return
            estimate = f"at this pace about {remaining:.0f} s remain"
        elif elapsed >= LONG_RUN_S:
            estimate = "too early in the run for an estimate of what remains"
        else:
            return
        self.warned = True
        warnings.warn(
            f"integrate_ode: α = {alpha:.3g} of {self.alpha_end:.3g} after {elapsed:.0f} s; {estimate}. "
            "progress=True shows a bar; Ctrl-C stops the run and raises "
            "quadnet.RunInterrupted, whose .trajectory holds the outputs computed so far",
            LongRunWarning,
            stacklevel=4,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- integrator: the loop


@dataclass(frozen=True)
class _Stop:
    """Where a segment ended: ``reason`` is 'done', 'blowup' (an element crossed its limit) or
    'stalled' (the solvers could not proceed)."""

    t: float
    y: np.ndarray
    reason: str
    message: str = ""


def _crossing(system: _System, dense, t_old: float, t_new: float) -> float:
    """The α in [t_old, t_new] where ``system.margin`` crosses 0 (first blow-up), by Brent's method."""
    from scipy.optimize import brentq

    try:
        return float(
            brentq(
                lambda t: system.margin(dense(t)),
                t_old,
                t_new,
                xtol=4 * np.finfo(float).eps,
                rtol=4 * np.finfo(float).eps,
            )
        )
    except ValueError:  # no sign change inside (the margin was ≤ 0 from the start): stop at once
        return t_old


def _new_solver(cls, system: _System, t0: float, y0: np.ndarray, t_end: float):
    s = system.s
    return cls(system, t0, y0, t_end, rtol=s.rtol, atol=s.atol, **system.options(cls))


def _run_segment(
    system: _System, rows: np.ndarray, t0: float, y0: np.ndarray, t_end: float, out: _Outputs, bar: _Progress
) -> _Stop:
    """Step the solver from (t0, y0) to ``t_end``, filling ``out``; stop early at a blow-up
    or a stall. Near a finite-α blow-up an implicit solver can stall ("step size too small")
    before the blow-up shows; LSODA's switching gets through, so a stalled solver hands over to it."""
    from scipy.integrate import LSODA

    cls = system.s.method
    solver = _new_solver(cls, system, t0, y0, t_end)
    while solver.status == "running":
        t_old = solver.t
        message = solver.step()
        if solver.status == "failed":
            if issubclass(cls, LSODA):
                return _Stop(solver.t, solver.y, "stalled", message or "")
            cls = LSODA
            solver = _new_solver(cls, system, solver.t, solver.y, t_end)
            continue
        dense = solver.dense_output()
        if system.margin(solver.y) <= 0:
            t_stop = _crossing(system, dense, t_old, solver.t)
            out.write(t_old, t_stop, dense, system, rows)
            return _Stop(t_stop, np.asarray(dense(t_stop)), "blowup")
        out.write(t_old, solver.t, dense, system, rows)
        bar.update(solver.t)
    return _Stop(solver.t, solver.y, "done")


def _integrate(s: _Setup, out: _Outputs, tracker: Divergence, bar: _Progress) -> None:
    """Integrate every element from α = 0, filling ``out``: up to the tail (ηα = TAIL_ETA_ALPHA) on
    the state itself, then on its deviation from the state there. An element that blows up is
    flagged in ``tracker`` and dropped, and the others restart from there (so its blow-up does not
    set their step size); its later outputs stay NaN."""
    rows = np.arange(s.Q0.shape[0])
    state = _System(s, rows, tracker.limit).pack(*(x.astype(EXTENDED) for x in (s.Q0, s.M0, s.Q0)))
    t, end, tail = 0.0, float(s.alphas[-1]), TAIL_ETA_ALPHA / (s.a * s.lr)
    while rows.size and t < end:
        anchored = t >= tail
        system = _System(s, rows, tracker.limit[rows], anchor=state if anchored else None)
        y0 = np.zeros(state.size) if anchored else state.astype(np.float64)
        stop = _run_segment(system, rows, t, y0, end if anchored else min(end, tail), out, bar)
        trq = system.traces(stop.y)
        if stop.reason == "done":
            t, state = stop.t, system.keep(stop.y, np.ones(rows.size, dtype=bool))
            continue
        # at a crossing tr Q sits on the limit (to the root finder's accuracy); a stalled solver
        # that got "well on its way" (beyond √limit) is counted as diverging there
        fraction = 1 - 1e-6 if stop.reason == "blowup" else 1 / np.sqrt(tracker.limit[rows])
        bad = tracker.exceeded(trq, rows, fraction=fraction)
        if not bad.any():
            raise RuntimeError(f"integrate_ode: solver stopped at α = {stop.t:.6g}: {stop.message}")
        tracker.mark(rows[bad], alpha=stop.t)
        t, state, rows = stop.t, system.keep(stop.y, ~bad), rows[~bad]


def _trajectory(s: _Setup, out: _Outputs, tracker: Divergence, n: int) -> Trajectory:
    """The first ``n`` outputs as a :class:`Trajectory` of the caller's batch shape and array module."""
    T, batch, (p, ps) = n, s.batch, s.M0.shape[-2:]
    res = dict(
        alpha=s.alphas[:n].copy(),
        Q=out.Q[:n].reshape((T,) + batch + (p, p)),
        M=out.M[:n].reshape((T,) + batch + (p, ps)),
        loss=out.loss[:n].reshape((T,) + batch),
        diverged=tracker.diverged.reshape(batch),
        alpha_diverged=tracker.alpha.reshape(batch),
    )
    if s.track_init:
        res["R"] = out.R[:n].reshape((T,) + batch + (p, p))
        res["Q_init"] = s.Q0.reshape(batch + (p, p)).copy()
    if s.xp is not np:
        res = {key: asarray(val, s.xp) for key, val in res.items()}
    return Trajectory(**res, lr=s.lr, eta=s.a * s.lr)


def integrate_ode(
    Q0,
    M0,
    P,
    a,
    b,
    lr=None,
    alphas=None,
    *,
    eta=None,
    noise=0.0,
    drift_only=False,
    rtol=1e-9,
    atol=1e-12,
    blowup=BLOWUP,
    method="BDF",
    track_init=False,
    progress=False,
):
    """Integrate the overlap ODEs from (Q0, M0) at α = 0, reporting the state at ``alphas``.

    The start is always α = 0, as for the simulators: ``alphas = linspace(5, 30)`` reports from
    α = 5 on, it does not move the start there.

    The system is stiff at late times (fast modes at rate O(aγ) around the solution manifold,
    algebraic relaxation along it), so it is solved by an implicit method (BDF by default, with a
    block-diagonal Jacobian sparsity: the batch elements are independent), on a float64 state with
    the right-hand side in extended precision (see the module notes): horizons of α = 10⁵ and 10⁷
    take about a second each for one element. BDF is the default because the late-time loss,
    quartic in the slow marginal direction, amplifies state errors: LSODA at the same tolerances
    showed sporadic errors of several percent in ε at α ~ 10⁵. The right-hand side is evaluated on
    the host; CuPy inputs are copied to the host and the trajectory is returned as CuPy arrays
    (the state is a few numbers per batch element: a GPU brings nothing here).

    Divergence: a batch element whose tr Q exceeds ``blowup`` × max(tr Q0, (b/a) tr P, 1), or that
    turns non-finite, is flagged (``diverged``, ``alpha_diverged``), its later values are NaN, and
    the other elements continue unaffected. With P = I and ``lr`` above
    :func:`~quadnet.critical_lr` (and ``drift_only=False``) a :class:`~quadnet.CriticalStepWarning`
    (a ``RuntimeWarning``) is issued up front; the flags still report what happens.

    Parameters
    ----------
    Q0 : array (..., p, p)
        Initial student–student overlap (batched; the batch shapes of Q0, M0, P broadcast).
    M0 : array (..., p, p*)
        Initial student–teacher overlap.
    P : array (..., p*, p*)
        Teacher–teacher overlap.
    a, b : float > 0
        Student and teacher readouts.
    lr : float > 0, optional
        The plain SGD step γ. Give exactly one of ``lr`` and ``eta``.
    alphas : (T,) array_like, strictly increasing, ≥ 0
        Output times; the integration starts at α = 0 whatever ``alphas[0]`` is.
    eta : float > 0, optional
        The effective step η = aγ, the book's variable.
    noise : float ≥ 0
        Label-noise standard deviation σ (enters only the γ² term).
    drift_only : bool
        Drop the O(γ²) SGD-noise term (population gradient flow).
    rtol, atol : float > 0
        Solver tolerances (the defaults give ε to ~1e-8 absolute early on and to ~1e-3 relative in
        the α⁻² tail up to α = 10⁷).
    blowup : float > 1
        Divergence threshold factor (see above).
    method : str or scipy.integrate.OdeSolver subclass
        'BDF' (default), 'Radau', 'LSODA', 'RK45', 'RK23', 'DOP853', or a solver class.
    track_init : bool
        Also integrate R = W W(0)ᵀ/N, dR/dα = 2aγ [tr D R + 2(b M M(0)ᵀ − a Q R)] (no γ² term: R
        is linear in W), from R(0) = Q0, so that ``distance_to_init()`` works.
    progress : bool
        Show a tqdm bar over ln(1 + α). Without it, a run that is on course to need more than 30 s
        more (estimated from its pace after 1, 2, 4, ... s) says so once with a
        :class:`LongRunWarning`.

    Returns
    -------
    Trajectory
        ``alpha`` (T,), ``Q`` (T, *batch, p, p), ``M`` (T, *batch, p, p*), ``loss`` (T, *batch),
        ``diverged`` and ``alpha_diverged`` (*batch,), ``lr`` and ``eta``; ``R`` and ``Q_init``
        with ``track_init``. Same array module as the inputs.

    Raises
    ------
    TypeError
        Naming the parameter: inputs that are not real numbers, both or neither of ``lr`` and
        ``eta``, ``alphas`` missing.
    ValueError
        Naming the parameter: shapes that do not match (a transposed M0 or weights passed for
        overlaps are named as such), an empty batch, non-finite values, [[Q0, M0], [M0ᵀ, P]] not
        positive semidefinite (relative tolerance 1e-6), a, b, lr, eta, rtol, atol not in
        (0, 1e50], noise < 0, blowup ≤ 1, an unknown method, alphas not 1-d, increasing and ≥ 0, a
        start whose loss or derivative overflows float64.
    RunInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``): its ``trajectory`` holds the outputs at the requested
        times the integration had passed, ``alpha_reached`` how far it got.
    RuntimeError
        The solver stopped without a blow-up in sight (reported rather than guessed).

    Warns
    -----
    CriticalStepWarning
        P = I and lr above the critical step (not with ``drift_only``).
    LongRunWarning
        The run is on course to take more than 30 s more (without ``progress``), or, on platforms
        without a long double finer than float64, α beyond 10⁵ is requested (the tail then needs
        ∝ α steps).

    Examples
    --------
    >>> import numpy as np
    >>> import quadnet as qn
    >>> p, p_star = 4, 2
    >>> a, b = qn.default_readouts(p, p_star)
    >>> Q0, M0, P = np.eye(p), np.random.default_rng(0).normal(0, 0.05, (p, p_star)), np.eye(p_star)
    >>> tr = qn.integrate_ode(Q0, M0, P, a, b, eta=0.1, alphas=[0, 10, 1e3, 1e5])
    >>> tr.loss.shape, bool(tr.loss[-1] < 1e-6 * tr.loss[0])
    ((4,), True)
    >>> later = qn.integrate_ode(Q0, M0, P, a, b, eta=0.1, alphas=[10, 1e3, 1e5])  # same start, α = 0
    >>> bool(np.all(later.loss == tr.loss[1:]))
    True
    """
    s = _setup(Q0, M0, P, a, b, lr, eta, alphas, noise, drift_only, rtol, atol, blowup, method, track_init)
    if not HAS_EXTENDED and s.alphas[-1] > 1e5:
        warnings.warn(
            f"integrate_ode: this platform has no long double finer than float64, so beyond α ≈ 1e5 rounding "
            f"limits the solver's step and the run to α = {s.alphas[-1]:.3g} needs ∝ α steps (minutes at 1e7)",
            LongRunWarning,
            stacklevel=2,
        )
    out = _Outputs(s)
    tracker = Divergence(np.trace(s.Q0, axis1=1, axis2=2), np.trace(s.P, axis1=1, axis2=2), s.a, s.b, s.blowup)
    bar = _Progress(bool(progress), float(s.alphas[-1]))
    try:
        _integrate(s, out, tracker, bar)
    except KeyboardInterrupt:
        raise RunInterrupted(_trajectory(s, out, tracker, out.n_done), out.alpha_reached) from None
    finally:
        bar.close()
    return _trajectory(s, out, tracker, s.alphas.size)
