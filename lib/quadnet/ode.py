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
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from . import _validate as v
from .backend import array_module, asarray, to_numpy
from ._common import T as _T
from ._common import squeeze as _squeeze
from ._common import tr as _tr
from .overlaps import _loss
from .theory import warn_above_critical

__all__ = ["ode_rhs", "integrate_ode", "Trajectory"]


def _rhs(Q, M, P, a, b, lr, noise2, drift_only, xp):
    """Right-hand side on validated float64 arrays; a, b, lr, noise2 floats or (..., 1, 1)."""
    trD = (_squeeze(b) * _tr(P, xp) - _squeeze(a) * _tr(Q, xp))[..., None, None]
    MMt = M @ _T(M, xp)
    QQ = Q @ Q
    dM = 2 * a * lr * (trD * M + 2 * (b * (M @ P) - a * (Q @ M)))
    G = b * MMt - a * QQ
    dQ = 4 * a * lr * (trD * Q + 2 * G)
    if not drift_only:
        two_eps = 2 * _loss(Q, M, P, a, b, 0.0, xp)[..., None, None] + noise2
        MMtQ = MMt @ Q
        cubic = b * b * (M @ P @ _T(M, xp)) - a * b * (MMtQ + _T(MMtQ, xp)) + a * a * (QQ @ Q)
        dQ = dQ + 4 * (a * lr) ** 2 * (two_eps * Q + 4 * trD * G + 8 * cubic)
    return dQ, dM


def ode_rhs(Q, M, P, a, b, lr, *, noise=0.0, drift_only=False):
    """Right-hand side (dQ/dα, dM/dα) of the overlap ODEs.

    Parameters
    ----------
    Q : array (..., p, p);  M : array (..., p, p*);  P : array (..., p*, p*)
        Overlaps, batched over leading axes (broadcast together).
    a, b : float > 0
        Student and teacher readouts (arrays broadcastable to the batch shape are accepted).
    lr : float > 0
        Plain SGD step γ; the dynamics depends on it through η = aγ.
    noise : float ≥ 0
        Label-noise standard deviation σ (enters only the γ² term).
    drift_only : bool
        Drop the O(γ²) SGD-noise term (population gradient flow).

    Returns
    -------
    (dQ, dM) with the broadcast batch shape, same array module as the inputs; units: per unit α.

    Raises ``ValueError``/``TypeError`` naming the parameter: mismatched shapes, non-finite
    values, Q or P not symmetric or [[Q, M], [Mᵀ, P]] not positive semidefinite (relative
    tolerance 1e-6, loose enough for finite-difference probes), a, b, lr ≤ 0, noise < 0.
    """
    xp = array_module(Q, M, P)
    Q, M, P = v.overlap_triple(Q, M, P, xp)
    a = v.scalar_param("a", a, xp)
    b = v.scalar_param("b", b, xp)
    lr = v.scalar_param("lr", lr, xp)
    n = v.scalar_param("noise", noise, xp, allow_zero=True)
    return _rhs(Q, M, P, a, b, lr, n * n, bool(drift_only), xp)


@dataclass(frozen=True)
class Trajectory:
    """Overlaps along a run, time axis first.

    Attributes
    ----------
    alpha : (T,)            times α = samples / N
    Q : (T, *batch, p, p)   student–student overlap at each α
    M : (T, *batch, p, p*)  student–teacher overlap
    loss : (T, *batch)      population loss ε_g at each α (NaN after divergence)
    diverged : (*batch,)    True where the run diverged (step above the critical one, ...)
    alpha_diverged : (*batch,)  α at which divergence was detected (NaN where it did not)
    R : (T, *batch, p, p) or None   R = W W(0)ᵀ/N, when run with ``track_init=True``
    Q_init : (*batch, p, p) or None Q(0), when run with ``track_init=True``
    lr, eta : float or None         the plain step γ and the effective step η = aγ of the run
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
        """‖W(α) − W(0)‖²/N = tr Q − 2 tr R + tr Q(0), shape (T, *batch) (needs ``track_init``)."""
        if self.R is None:
            raise ValueError("distance_to_init needs R: run with track_init=True")
        xp = array_module(self.Q)
        tr = lambda A: xp.trace(A, axis1=-2, axis2=-1)  # noqa: E731
        return tr(self.Q) - 2 * tr(self.R) + tr(self.Q_init)[None]

    @property
    def batch_shape(self) -> tuple:
        return tuple(self.loss.shape[1:])

    def to_numpy(self) -> "Trajectory":
        """A copy with every array as a NumPy array."""
        return type(self)(**{f.name: to_numpy(getattr(self, f.name)) for f in fields(self)})

    def __len__(self) -> int:
        return int(self.alpha.shape[0])


def integrate_ode(
    Q0,
    M0,
    P,
    a,
    b,
    lr,
    alphas,
    *,
    noise=0.0,
    drift_only=False,
    rtol=1e-9,
    atol=1e-12,
    blowup=1e3,
    method="BDF",
    track_init=False,
):
    """Integrate the overlap ODEs from (Q0, M0) at ``alphas[0]``, reporting the state at ``alphas``.

    The system is stiff at late times (fast modes at rate O(aγ) around the solution manifold,
    algebraic relaxation along it), so it is solved by an implicit method (BDF by default, with a
    block-diagonal Jacobian sparsity: the batch elements are independent). Horizons of α = 10⁵
    take about a second. BDF is the default because the late-time loss, quartic in the slow
    marginal direction, amplifies state errors: LSODA at the same tolerances showed sporadic
    errors of several percent in ε at α ~ 10⁵, BDF stays within 10⁻³ relative. The right-hand side is evaluated on the host; CuPy inputs are copied
    to the host and the trajectory is returned as CuPy arrays (the state is a few numbers per
    batch element: a GPU brings nothing here).

    Divergence: a batch element whose tr Q exceeds ``blowup`` × max(tr Q0, (b/a) tr P, 1), or
    that turns non-finite, is flagged (``diverged``, ``alpha_diverged``), its later values are
    NaN, and the other elements continue unaffected. With P = I and ``lr`` above
    :func:`~quadnet.critical_lr` (and ``drift_only=False``) a :class:`~quadnet.CriticalStepWarning`
    (a ``RuntimeWarning``) is issued up front; the flags still report what happens.

    Raises ``ValueError``/``TypeError`` naming the parameter for invalid input: shapes that do
    not match, non-finite values, [[Q0, M0], [M0ᵀ, P]] not positive semidefinite (relative
    tolerance 1e-6), non-positive a, b, lr, rtol, atol, negative noise, blowup ≤ 1, alphas not
    1-d, increasing and ≥ 0.

    Parameters
    ----------
    Q0, M0, P : arrays (..., p, p), (..., p, p*), (..., p*, p*)
        Initial overlaps (batched; broadcast together).
    a, b, lr, noise, drift_only
        As in :func:`ode_rhs` (scalars).
    alphas : (T,) increasing, ≥ 0
        Output times; integration starts at ``alphas[0]``.
    rtol, atol : float
        Solver tolerances (the defaults give ε to ~1e-8 absolute early on and to ~1e-3 relative
        in the α⁻² tail at α ≤ 10⁵).
    method : 'BDF' | 'Radau' | 'LSODA' | any ``scipy.integrate.solve_ivp`` method
    track_init : bool
        Also integrate R = W W(0)ᵀ/N, dR/dα = 2aγ [tr D R + 2(b M M(0)ᵀ − a Q R)] (no γ² term: R
        is linear in W), from R(0) = Q0, so that ``distance_to_init()`` works.

    Returns
    -------
    Trajectory with ``alpha`` (T,), ``Q`` (T, *batch, p, p), ``M`` (T, *batch, p, p*), ``loss`` (T, *batch).
    """
    from scipy.integrate import solve_ivp

    xp = array_module(Q0, M0, P)
    Q0, M0, P = v.overlap_triple(Q0, M0, P, xp, names=("Q0", "M0", "P"))
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.positive("lr", lr, array=False)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    v.positive("rtol", rtol, array=False)
    v.positive("atol", atol, array=False)
    if v.positive("blowup", blowup, array=False) <= 1:
        raise ValueError(f"blowup must be > 1, got {blowup}")
    al = v.alphas(alphas)
    if not drift_only:
        warn_above_critical("integrate_ode", P, xp, M0.shape[-2], M0.shape[-1], a, b, lr, noise)

    batch = np.broadcast_shapes(Q0.shape[:-2], M0.shape[:-2], P.shape[:-2])
    p, ps = M0.shape[-2], M0.shape[-1]
    Qh = np.broadcast_to(to_numpy(Q0), batch + (p, p)).reshape(-1, p, p)
    Mh = np.broadcast_to(to_numpy(M0), batch + (p, ps)).reshape(-1, p, ps)
    Ph = np.ascontiguousarray(np.broadcast_to(to_numpy(P), batch + (ps, ps)).reshape(-1, ps, ps))
    nb = Qh.shape[0]
    k = p * p + p * ps + (p * p if track_init else 0)
    Minit = Mh.copy()
    scale = np.maximum.reduce([np.trace(Qh, axis1=1, axis2=2), (b / a) * np.trace(Ph, axis1=1, axis2=2), np.ones(nb)])
    limit = blowup * scale

    T = al.size
    Q_out = np.full((T, nb, p, p), np.nan)
    M_out = np.full((T, nb, p, ps), np.nan)
    diverged = np.zeros(nb, dtype=bool)
    alpha_div = np.full(nb, np.nan)
    R_out = np.full((T, nb, p, p), np.nan) if track_init else None
    Q_out[0], M_out[0] = Qh, Mh
    if track_init:
        R_out[0] = Qh

    def pack(Q, M, R=None):
        parts = [Q.reshape(Q.shape[0], -1), M.reshape(M.shape[0], -1)]
        if track_init:
            parts.append(R.reshape(R.shape[0], -1))
        return np.concatenate(parts, axis=1).ravel()

    def unpack(y, m):
        y = y.reshape(m, k)
        Q, M = y[:, : p * p].reshape(m, p, p), y[:, p * p : p * p + p * ps].reshape(m, p, ps)
        R = y[:, p * p + p * ps :].reshape(m, p, p) if track_init else None
        return Q, M, R

    active = np.arange(nb)
    y0 = pack(Qh, Mh, Qh.copy())
    t0 = al[0]
    while active.size and t0 < al[-1]:
        m = active.size
        Pa = Ph[active]
        lim = limit[active]

        M_init = Minit[active]

        def f(t, y, Pa=Pa, m=m, M_init=M_init):
            Q, M, R = unpack(y, m)
            dQ, dM = _rhs(Q, M, Pa, a, b, lr, noise * noise, drift_only, np)
            dR = None
            if track_init:
                trD = (b * np.trace(Pa, axis1=1, axis2=2) - a * np.trace(Q, axis1=1, axis2=2))[:, None, None]
                dR = 2 * a * lr * (trD * R + 2 * (b * M @ M_init.transpose(0, 2, 1) - a * Q @ R))
            return pack(dQ, dM, dR)

        def event(t, y, m=m, lim=lim):
            Q, _, _ = unpack(y, m)
            tr = np.trace(Q, axis1=1, axis2=2)
            if not np.all(np.isfinite(tr)):
                return -1.0
            return float(np.min(np.log(lim) - np.log(np.maximum(tr, 1e-300))))

        event.terminal = True
        event.direction = -1
        later = al[al > t0]

        def solve(meth, t_eval=later):
            if meth == "LSODA":
                opts = dict(lband=k - 1, uband=k - 1)
            elif meth in ("BDF", "Radau"):
                from scipy.sparse import block_diag, csr_matrix

                opts = dict(jac_sparsity=csr_matrix(block_diag([np.ones((k, k))] * m)))
            else:
                opts = {}
            return solve_ivp(f, (t0, later[-1]), y0, method=meth, t_eval=t_eval, events=event,
                             rtol=rtol, atol=atol, **opts)

        sol = solve(method)
        if sol.status == -1 and method != "LSODA":
            # Near a finite-α blow-up an implicit solver can stall ("step size too small") before
            # the blow-up event fires; LSODA's switching gets through to the event. Redo the segment.
            sol = solve("LSODA")
        ts = np.asarray(sol.t, dtype=float)
        n_done = ts.size
        ys = np.asarray(sol.y, dtype=float).reshape(m * k, n_done)
        if n_done:
            idx = np.searchsorted(al, ts)
            Qs, Ms, Rs = unpack(ys.T.reshape(n_done * m * k), n_done * m)
            Q_out[idx[:, None], active[None, :]] = Qs.reshape(n_done, m, p, p)
            M_out[idx[:, None], active[None, :]] = Ms.reshape(n_done, m, p, ps)
            if track_init:
                R_out[idx[:, None], active[None, :]] = Rs.reshape(n_done, m, p, p)
        if sol.status == 0:
            break
        # stopped early: an element blew up (event) or the solver could not proceed near a blow-up
        if sol.status == 1 and sol.t_events[0].size:
            t_stop, y_stop = sol.t_events[0][0], sol.y_events[0][0]
        else:
            t_stop, y_stop = (ts[-1], ys[:, -1]) if n_done else (t0, y0)
        Qe, Me, Re = unpack(y_stop, m)
        tr = np.trace(Qe, axis1=1, axis2=2)
        bad = ~np.isfinite(tr) | (tr >= lim * (1 - 1e-6))
        if not bad.any() and sol.status == -1:
            # both solvers stalled: look at the last state actually reached (not the last output)
            last = solve("LSODA", t_eval=None)
            t_stop = float(last.t[-1])
            Qe, Me, Re = unpack(np.asarray(last.y)[:, -1], m)
            tr = np.trace(Qe, axis1=1, axis2=2)
            bad = ~np.isfinite(tr) | (tr >= np.sqrt(lim))  # well on its way: treat as divergence
        if not bad.any():
            # the solver failed without a blow-up in sight: report it rather than guess
            raise RuntimeError(f"integrate_ode: solver stopped at α = {t_stop:.6g}: {sol.message}")
        diverged[active[bad]] = True
        alpha_div[active[bad]] = t_stop
        # values after t_stop for the diverged elements stay NaN; restart the rest from t_stop
        keep = ~bad
        active = active[keep]
        if not active.size:
            break
        y0 = pack(Qe[keep], Me[keep], Re[keep] if track_init else None)
        t0 = t_stop

    loss = _loss(Q_out, M_out, Ph[None], a, b, noise * noise, np)
    out = dict(
        alpha=al,
        Q=Q_out.reshape((T,) + batch + (p, p)),
        M=M_out.reshape((T,) + batch + (p, ps)),
        loss=loss.reshape((T,) + batch),
        diverged=diverged.reshape(batch),
        alpha_diverged=alpha_div.reshape(batch),
        lr=lr,
        eta=a * lr,
    )
    if track_init:
        out["R"] = R_out.reshape((T,) + batch + (p, p))
        out["Q_init"] = Qh.reshape(batch + (p, p)).copy()
    if xp is not np:
        out = {key: asarray(val, xp) if key not in ("lr", "eta") else val for key, val in out.items()}
    return Trajectory(**out)
