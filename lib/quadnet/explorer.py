"""The explorer of chapter 9: one scenario computed within a time budget for live widgets, and the
markup of the kernel-free explorer that runs in the reader's browser on the book's website.

A *scenario* is (p, p*, η, q0, N, σ) with a = 1/p, b = 1/p*, γ = η/a, P = I and the start
Q(0) = q0 I, M(0) = m/√N with m a seeded p × p* Gaussian matrix of variance q0. It returns the ODE
trajectory, a few exact-chain replicas at the same N, and the headline numbers: the plateau loss,
both critical steps (η_c, above which the plateau does not exist, and η_m, above which the
solution manifold does not attract), the escape time and the final distance to the Procrustes
point.

Work per scenario is bounded: the horizon α_max is capped from the theory's escape time, and the
chain runs in segments until a wall-clock budget is spent (its curves then stop early, and
``chain_alpha`` says where). :class:`LiveExplorer` runs scenarios in a background thread, keeps only
the latest request (stale work is dropped: a running chain stops at its next segment) and uses
``continuous_update=False`` sliders, so one drag costs one update.

The static explorer (:func:`static_explorer_html`) computes on the page, in JavaScript
(book/explorer/qn-explorer-core.js, tested against this package in tests/site/test_explorer_js.py).
"""

from __future__ import annotations

import html
import io
import math
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _validate as v
from .analysis import escape_time
from .escape import escape_time_estimate
from .manifold import polar
from .ode import integrate_ode
from .overlaps import population_loss
from .theory import CriticalStepWarning, critical_lr, manifold_critical_lr, plateau

__all__ = ["Scenario", "run_scenario", "scenario_figure", "static_explorer_html", "live_explorer", "LiveExplorer"]

#: horizon of a scenario: α_max = clip(3 α_esc + 10, ALPHA_MIN, ALPHA_MAX), α_esc from the theory
ALPHA_MIN, ALPHA_MAX = 20.0, 2000.0
#: default wall-clock budget (seconds) of one scenario, counted from the start of the call
BUDGET = 1.0
#: target wall-clock time of one notebook update (change → new figure), seconds
TARGET = 1.2
#: output times of the chain: each call of its kernel costs a few ms, so fewer than the ODE's
CHAIN_POINTS = 40


@dataclass(frozen=True)
class Scenario:
    """Result of :func:`run_scenario`.

    Attributes
    ----------
    params : dict             the settings (p, p_star, eta, q0, N, noise)
    alpha : (T,)              output times
    ode_loss : (T,)           ODE loss (NaN after a divergence)
    chain_loss : (Tc, R) or None  exact-chain replicas at ``chain_times`` (NaN where not computed
                              or after a divergence)
    chain_times : (Tc,) or None   output times of the chain (every few ``alpha``)
    chain_alpha : float       the chain was computed up to this α (< alpha[-1] if the budget ran out)
    plateau_loss, critical_eta, manifold_eta : float   theory (η_c = aγ_c, η_m = aγ_m)
    escape_alpha : float      ODE escape time (first crossing of the half-plateau level)
    escape_estimate : float   the theory's escape time (:func:`quadnet.escape_time_estimate`)
    procrustes_distance : float   final distance of the ODE to the Procrustes point of the start
    diverged : bool           the ODE diverged
    chain_diverged : int      number of diverged chain replicas
    seconds : float           wall-clock time of the call
    """

    params: dict
    alpha: np.ndarray
    ode_loss: np.ndarray
    chain_loss: Any
    plateau_loss: float
    critical_eta: float
    manifold_eta: float
    escape_alpha: float
    escape_estimate: float
    procrustes_distance: float
    diverged: bool
    chain_diverged: int
    chain_times: Any = None
    chain_alpha: float = float("nan")
    seconds: float = float("nan")


def run_scenario(
    p=4,
    p_star=2,
    eta=0.125,
    q0=1.0,
    N=1000,
    noise=0.0,
    *,
    replicas=4,
    seed=0,
    chain=True,
    points=160,
    budget=BUDGET,
    should_stop: Callable[[], bool] | None = None,
):
    """Compute one explorer scenario (see the module docstring) within a time budget.

    Parameters
    ----------
    p, p_star : int ≥ 1
        Student and teacher widths (a = 1/p, b = 1/p*).
    eta : float > 0
        Effective step η = aγ.
    q0 : float > 0
        Variance of the initial weights: Q(0) = q0 I, √N M(0) has N(0, q0) entries.
    N : int > p + p*
        Input dimension of the exact chain.
    noise : float ≥ 0
        Label noise σ.
    replicas : int ≥ 1
        Chain replicas.
    seed : int
        Seed of the start (stream ``seed``) and of the chain.
    chain : bool
        Run the exact chain.
    points : int ≥ 2
        Output times, evenly spaced on [0, α_max].
    budget : float > 0
        Wall-clock seconds for the whole call: the chain stops at the first segment boundary past
        it (the ODE, about 0.2 s at worst, always runs to α_max).
    should_stop : callable or None
        Polled between chain segments; True stops the chain early (stale work).

    Returns
    -------
    Scenario

    Examples
    --------
    >>> sc = run_scenario(p=2, p_star=1, eta=0.1, N=500, replicas=2, budget=0.5)
    >>> sc.chain_loss.shape[1], bool(sc.diverged)
    (2, False)
    """
    t_start = time.perf_counter()
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    eta = v.positive("eta", eta, array=False)
    q0 = v.positive("q0", q0, array=False)
    N = v.integer("N", N, minimum=p + p_star + 1)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    replicas = v.integer("replicas", replicas)
    points = v.integer("points", points, minimum=2)
    budget = v.positive("budget", budget, array=False)
    # above γ_c divergence is an expected outcome, reported in the numbers: no warning needed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CriticalStepWarning)
        return _run(
            dict(p=p, p_star=p_star, eta=eta, q0=q0, N=N, noise=noise),
            replicas,
            seed,
            chain,
            points,
            t_start + budget,
            should_stop or (lambda: False),
            t_start,
        )


def _horizon(p, p_star, a, b, lr, N, q0, noise, above):
    """α_max from the theory's escape time, and that estimate (NaN above γ_c or when trapped)."""
    if above:
        return ALPHA_MIN, float("nan")
    try:
        est = float(escape_time_estimate(p, p_star, a, b, lr, N, q0=q0, noise=noise))
    except ValueError:
        est = float("nan")
    if not np.isfinite(est) or est <= 0:
        return ALPHA_MAX, est
    return float(np.clip(3 * est + 10, ALPHA_MIN, ALPHA_MAX)), est


def _run(par, replicas, seed, chain, points, deadline, should_stop, t_start):
    p, p_star, eta, q0, N, noise = (par[k] for k in ("p", "p_star", "eta", "q0", "N", "noise"))
    a, b = 1.0 / p, 1.0 / p_star
    lr = eta / a
    g_c = a * critical_lr(p, p_star, a, b, noise=noise)
    above = eta > g_c
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((p, p_star)) * np.sqrt(q0)
    Q0, M0, P = q0 * np.eye(p), m / np.sqrt(N), np.eye(p_star)
    alpha_max, est = _horizon(p, p_star, a, b, lr, N, q0, noise, above)
    # exact step counts, so that chain segments join without rounding
    alphas = np.unique(np.rint(np.linspace(0, alpha_max, points) * N)) / N
    # LSODA: fastest here, and display accuracy is all the explorer needs
    ode = integrate_ode(Q0, M0, P, a, b, lr, alphas, noise=noise, rtol=1e-7, atol=1e-10, method="LSODA")
    pl = plateau(p, p_star, a, b, 0.0 if above else lr, noise=noise)
    level = (pl.loss - 0.5 * noise**2) / 2 + 0.5 * noise**2
    t_esc = float(escape_time(alphas, ode.loss, level))
    chain_loss, chain_times, n_div, reached = None, None, 0, float("nan")
    if chain:
        stride = max(1, -(-(alphas.size - 1) // (CHAIN_POINTS - 1)))
        chain_times = alphas[::stride] if (alphas.size - 1) % stride == 0 else np.append(alphas[::stride], alphas[-1])
        chain_loss, n_div, reached = _chain(
            Q0, M0, P, N, a, b, lr, noise, chain_times, replicas, seed, deadline, should_stop
        )
    return Scenario(
        params=dict(par),
        alpha=alphas,
        ode_loss=np.asarray(ode.loss),
        chain_loss=chain_loss,
        chain_times=chain_times,
        plateau_loss=float(pl.loss),
        critical_eta=float(g_c),
        manifold_eta=float(a * manifold_critical_lr(p_star, a, b)),
        escape_alpha=t_esc,
        escape_estimate=float(est),
        procrustes_distance=_procrustes_distance(ode, M0, a, b, p, p_star),
        diverged=bool(ode.diverged),
        chain_diverged=n_div,
        chain_alpha=reached,
        seconds=time.perf_counter() - t_start,
    )


def _procrustes_distance(ode, M0, a, b, p, p_star):
    """‖W(end) − W_P‖/√N with W_P = √(b/a) polar(M0) W*, from the overlaps (NaN if undefined)."""
    if bool(ode.diverged) or p < p_star:
        return float("nan")
    O = polar(M0)
    d2 = np.trace(ode.Q[-1]) - 2 * np.sqrt(b / a) * np.sum(ode.M[-1] * O) + (b / a) * p_star
    return float(np.sqrt(max(d2, 0.0)))


def _chain(Q0, M0, P, N, a, b, lr, noise, alphas, replicas, seed, deadline, should_stop):
    """The exact chain on ``alphas``, segment by segment until ``deadline`` (perf_counter seconds).

    The chain is Markov in (Q, M), so a segment restarted from the last state with fresh random
    numbers (segment k draws from SeedSequence(seed, spawn_key=(k,))) continues it exactly in law.
    The first segment is a short probe (at most PROBE_STEPS steps) that measures the throughput;
    the next ones are sized from it to end before the deadline.
    Returns (loss (T, R), number diverged, α reached).
    """
    steps = np.rint(alphas * N).astype(np.int64)
    loss = np.full((alphas.size, replicas), np.nan)
    loss[0] = population_loss(Q0, M0, P, a, b, noise)
    state = dict(
        Q=np.repeat(Q0[None], replicas, axis=0),
        M=np.repeat(M0[None], replicas, axis=0),
        alive=np.ones(replicas, dtype=bool),
        pos=0,
    )
    i, k, rate = 0, 0, None  # i: last output reached; rate: replica-steps per second
    while i < steps.size - 1 and state["alive"].any() and not should_stop():
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        live = int(state["alive"].sum())
        stop = _segment_end(steps, state["pos"], i, live, rate, left)
        t0, pos0 = time.perf_counter(), state["pos"]
        i = _segment(state, loss, steps, i, stop, P, N, a, b, lr, noise, np.random.SeedSequence(seed, spawn_key=(k,)))
        rate = (stop - pos0) * live / max(time.perf_counter() - t0, 1e-6)
        k += 1
    return loss, int(replicas - state["alive"].sum()), float(state["pos"] / N)


#: steps per replica of the chain's first segment, which measures the throughput
PROBE_STEPS = 2000


def _segment_end(steps, pos, i, live, rate, left):
    """Step count at which the next segment ends: a probe of PROBE_STEPS (or up to the next
    output) first, then as many steps as fit in 70 % of the time left (outputs in between are
    recorded; a segment need not end on one)."""
    if rate is None:
        return int(min(steps[i + 1], pos + PROBE_STEPS))
    room = 0.7 * left * rate / max(live, 1)
    return int(min(steps[-1], pos + max(room, 1)))


def _segment(state, loss, steps, i, stop, P, N, a, b, lr, noise, seed):
    """Advance the live replicas from state['pos'] to step ``stop``, recording the outputs in
    between; returns the index of the last output reached."""
    from .sgd import sgd_overlaps

    pos, alive = state["pos"], state["alive"]
    j = int(np.searchsorted(steps, stop, side="right")) - 1  # outputs steps[i+1 .. j] are reached
    marks = np.unique(np.concatenate([[pos], steps[i + 1 : j + 1], [stop]]))
    run = sgd_overlaps(state["Q"][alive], state["M"][alive], P, N, a, b, lr, (marks - pos) / N, noise=noise, seed=seed)
    idx = np.nonzero(alive)[0]
    rec = np.searchsorted(marks, steps[i + 1 : j + 1])
    loss[i + 1 : j + 1, idx] = np.asarray(run.loss)[rec]
    state["Q"][idx], state["M"][idx] = np.asarray(run.Q)[-1], np.asarray(run.M)[-1]
    alive[idx[np.asarray(run.diverged)]] = False
    state["pos"] = stop
    return max(i, j)


def scenario_figure(sc: Scenario, ax=None):
    """Loss against α: ODE line, chain replicas as thin lines, plateau and escape marked.

    Parameters
    ----------
    sc : Scenario
        From :func:`run_scenario`.
    ax : matplotlib Axes or None
        Where to draw (a new figure when None).

    Returns
    -------
    The Axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.6))
    if sc.chain_loss is not None:
        for i in range(sc.chain_loss.shape[1]):
            ax.semilogy(
                sc.chain_times,
                sc.chain_loss[:, i],
                color="C1",
                lw=0.8,
                alpha=0.6,
                label=f"exact chain, N = {sc.params['N']}" if i == 0 else None,
            )
        if _chain_cut(sc):
            ax.axvline(sc.chain_alpha, color="C1", ls="-.", lw=0.8, label="chain stopped (time budget)")
    ax.semilogy(sc.alpha, sc.ode_loss, color="C0", lw=2, label="ODE (N → ∞)")
    ax.axhline(sc.plateau_loss, color="0.4", ls="--", lw=1, label="plateau (theory)")
    if np.isfinite(sc.escape_alpha):
        ax.axvline(sc.escape_alpha, color="C2", ls=":", lw=1.2, label="escape (ODE)")
    ax.set_xlabel("α (samples / N)")
    ax.set_ylabel("population loss")
    ax.set_ylim(1e-5, 10)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def _chain_cut(sc: Scenario) -> bool:
    """True when the chain stopped before the horizon for lack of time (not by divergence)."""
    return (
        sc.chain_loss is not None and sc.chain_alpha < sc.chain_times[-1] and sc.chain_diverged < sc.chain_loss.shape[1]
    )


def _numbers(sc: Scenario) -> dict:
    def f(x, fmt):
        return "—" if not np.isfinite(x) else format(x, fmt)

    out = {
        "plateau loss": f(sc.plateau_loss, ".4f"),
        "η_c (above it the plateau does not exist)": f(sc.critical_eta, ".4f"),
        "η_m (above it the solution manifold is unstable)": f(sc.manifold_eta, ".4f"),
        "escape time α (ODE)": "diverges" if sc.diverged else f(sc.escape_alpha, ".1f"),
        "distance to Procrustes point (end)": f(sc.procrustes_distance, ".3g"),
    }
    if _chain_cut(sc):
        out["chain computed up to α (time budget)"] = f(sc.chain_alpha, ".1f")
    if sc.chain_diverged:
        out["diverged chain replicas"] = str(sc.chain_diverged)
    return out


def _png(sc: Scenario, dpi=80) -> bytes:
    """The scenario figure as PNG bytes (no pyplot: safe in a background thread). Fixed margins,
    no minor ticks and plain tick labels: layout engines, minor log ticks and mathtext labels
    were most of the drawing time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    fig = Figure(figsize=(6, 3.6), layout="none")
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.14, top=0.92)
    ax = fig.subplots()
    scenario_figure(sc, ax)
    ax.yaxis.set_major_locator(LogLocator(numticks=7))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:.0e}"))
    ax.set_title(f"p = {sc.params['p']}, p* = {sc.params['p_star']}, η = {sc.params['eta']:g}", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def static_explorer_html(static: str = "../_static/", *, uid: str = "qn-explorer") -> str:
    """Markup of the kernel-free explorer: a container and the scripts that compute in the browser.

    The page needs, under ``static``: ``qn-explorer-core.js`` (the ODE, the exact chain and the
    theory in JavaScript), ``qn-explorer.js`` (controls, plots, URL), ``qn-explorer-worker.js``
    (the chain replicas, in a Web Worker), ``qn-explorer.css`` and uPlot in ``uplot/`` (the book's
    build copies them to ``_static/``; see the Makefile's UPLOT_VERSION). Nothing is loaded from
    another host. ``static`` is the URL of that folder relative to the page.

    DOM contract (tests/site): ``div.qn-explorer`` is filled by the script with range inputs
    ``input.qn-explorer-slider``, plots ``.qn-explorer-plot`` and the table ``.qn-explorer-numbers``.

    Examples
    --------
    >>> "qn-explorer-core.js" in static_explorer_html()
    True
    """
    if not isinstance(static, str) or (static and not static.endswith("/")):
        raise ValueError(f"static must be a folder URL ending in '/', got {static!r}")
    s, uid = html.escape(static, quote=True), html.escape(uid, quote=True)
    return f"""<link rel="stylesheet" href="{s}uplot/uPlot.min.css">
<link rel="stylesheet" href="{s}qn-explorer.css">
<div id="{uid}" class="qn-explorer" aria-label="Live explorer of the overlap dynamics">
<p class="qn-explorer-loading">The live explorer runs in the browser on the book's website (it needs JavaScript).
In a running notebook, use the widgets of the live explorer instead.</p>
</div>
<script src="{s}uplot/uPlot.iife.min.js"></script>
<script src="{s}qn-explorer-core.js"></script>
<script src="{s}qn-explorer.js"></script>
"""


# --------------------------------------------------------------------------- notebook widgets


class LiveExplorer:
    """ipywidgets controls for (p, p*, η, q0, N, σ) driving :func:`run_scenario` (needs a kernel).

    Every slider has ``continuous_update=False`` (one update per release or key press). Updates
    run in a background thread; only the latest request is computed (a request that arrives
    while a scenario runs stops that scenario's chain at its next segment and replaces it). Each
    update aims at ``target`` seconds from the change to the new figure: the chain gets what is
    left of it after the drawing time (the longest of the last five drawings), so an update
    takes about ``target`` whatever the settings. ``last_seconds`` holds the time of the latest
    update, ``last_scenario`` its :class:`Scenario` and ``updates`` the number drawn. The first
    update, drawn when the explorer is built, also loads the chain's compiled kernel and
    Matplotlib's fonts.

    Parameters
    ----------
    N_max : int
        Largest N on its slider.
    target : float > 0
        Aimed-at time of one update (seconds).
    display : bool
        Display the widgets (False in tests).

    Examples
    --------
    >>> ex = LiveExplorer(display=False)                         # doctest: +SKIP
    >>> ex.controls["eta"].value = 0.01; ex.wait() < 2           # doctest: +SKIP
    True
    """

    def __init__(self, N_max: int = 10_000, *, target: float = TARGET, display: bool = True):
        import ipywidgets as w

        self.target = v.positive("target", target, array=False)
        self._drawing = deque([0.3], maxlen=5)  # recent drawing times, seconds
        self.controls = _controls(w, v.integer("N_max", N_max, minimum=200))
        self.image = w.Image(format="png", layout=w.Layout(width="480px"))
        self.table = w.HTML()
        self.last_seconds = float("nan")
        self.last_scenario: Scenario | None = None
        self.updates = 0
        self._cond = threading.Condition()
        self._request = None  # (generation, params, time of the change)
        self._generation = 0
        self._published = 0
        self._closed = False
        self.widget = w.HBox([w.VBox(list(self.controls.values()) + [self.table]), self.image])
        warm_up()
        self._publish(*self._compute(0, self._params(), time.perf_counter()))
        self._thread = threading.Thread(target=self._loop, name="quadnet-explorer", daemon=True)
        self._thread.start()
        for c in self.controls.values():
            c.observe(self._changed, names="value")
        if display:
            from IPython.display import display as show

            show(self.widget)

    def _params(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def _changed(self, _change=None) -> None:
        with self._cond:
            self._generation += 1
            self._request = (self._generation, self._params(), time.perf_counter())
            self._cond.notify_all()

    def _stale(self, gen: int) -> bool:
        return gen != self._generation or self._closed

    def _compute(self, gen, params, t_change):
        budget = max(0.05, self.target - max(self._drawing) - (time.perf_counter() - t_change))
        sc = run_scenario(**params, budget=budget, should_stop=lambda: self._stale(gen))
        return gen, sc, t_change

    def _publish(self, gen, sc, t_change) -> None:
        t0 = time.perf_counter()
        png = _png(sc)
        self._drawing.append(time.perf_counter() - t0)
        rows = "".join(f"<tr><td>{k}</td><td><b>{val}</b></td></tr>" for k, val in _numbers(sc).items())
        with self._cond:
            if gen != self._generation:
                return  # a newer request came in meanwhile: drop this one
            self.image.value = png
            self.table.value = f"<table>{rows}</table>"
            self.last_seconds = time.perf_counter() - t_change
            self.last_scenario = sc
            self.updates += 1
            self._published = gen
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                gen, params, t_change = self._request
                self._request = None
            try:
                self._publish(*self._compute(gen, params, t_change))
            except Exception as exc:  # show it rather than kill the thread
                with self._cond:
                    self.table.value = f"<p><b>Error:</b> {html.escape(str(exc))}</p>"
                    self._published = gen
                    self._cond.notify_all()

    def wait(self, timeout: float = 30.0) -> float:
        """Block until the latest change is drawn; returns its update time in seconds."""
        end = time.perf_counter() + timeout
        with self._cond:
            while self._published != self._generation:
                left = end - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"explorer update not done within {timeout} s")
                self._cond.wait(left)
            return self.last_seconds

    def close(self) -> None:
        """Stop the background thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)


def warm_up() -> None:
    """Load what the first update would otherwise pay for (SciPy's integrators, the chain's
    compiled kernel from numba's cache, Matplotlib's fonts): a tiny scenario with no budget."""
    _png(run_scenario(p=2, p_star=1, eta=0.1, N=100, replicas=1, points=20, budget=60.0))


def _controls(w, N_max):
    style = {"description_width": "130px"}
    kw = dict(style=style, continuous_update=False)
    return dict(
        p=w.IntSlider(4, 1, 8, description="p (student)", **kw),
        p_star=w.IntSlider(2, 1, 4, description="p* (teacher)", **kw),
        eta=w.FloatLogSlider(0.125, base=10, min=-2, max=math.log10(0.35), description="η = aγ", **kw),
        q0=w.FloatLogSlider(1.0, base=10, min=-1, max=0.6, description="init. scale q0", **kw),
        N=w.IntSlider(1000, 100, N_max, step=100, description="N (chain)", **kw),
        noise=w.FloatSlider(0.0, min=0.0, max=0.5, step=0.05, description="label noise σ", **kw),
    )


def live_explorer(N_max: int = 10_000, *, target: float = TARGET) -> LiveExplorer:
    """Display the notebook explorer (:class:`LiveExplorer`) and return it (needs a kernel)."""
    return LiveExplorer(N_max, target=target)
