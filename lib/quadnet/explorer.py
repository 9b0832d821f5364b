"""The explorer: one scenario computed fast enough to drive live widgets, and a static HTML
version (a precomputed grid of frames behind sliders) for the site, where no kernel runs.

A *scenario* is (p, p*, η, q0, N, σ) with a = 1/p, b = 1/p*, γ = η/a, P = I, a random start
Q(0) = q0 I, M(0) = m/√N with a fixed Gaussian m. It returns the ODE trajectory, a few exact-chain
replicas at the same N, and the headline numbers: plateau loss, critical step, escape time and
the final distance to the Procrustes point.
"""
from __future__ import annotations

import base64
import html
import io
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .analysis import escape_time
from .manifold import polar
from .ode import integrate_ode
from .theory import CriticalStepWarning, critical_lr, escape_time_estimate, manifold_critical_lr, plateau

__all__ = ["Scenario", "run_scenario", "scenario_figure", "static_explorer_html", "live_explorer"]


@dataclass(frozen=True)
class Scenario:
    """Result of :func:`run_scenario` (NumPy arrays; ``chain_loss`` is (T, replicas) or None)."""

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


def run_scenario(p=4, p_star=2, eta=0.125, q0=1.0, N=1000, noise=0.0, *, replicas=4, seed=0,
                 chain=True, points=160):
    """Compute one explorer scenario (see the module docstring). Well under a second for N ≤ 10⁴."""
    p = v.integer("p", p)
    p_star = v.integer("p_star", p_star)
    eta = v.positive("eta", eta, array=False)
    q0 = v.positive("q0", q0, array=False)
    N = v.integer("N", N, minimum=p + p_star + 1)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    a, b = 1.0 / p, 1.0 / p_star
    lr = eta / a
    g_c = a * critical_lr(p, p_star, a, b, noise=noise)
    above = eta > g_c
    # above γ_c divergence is the expected outcome, reported in the numbers: no warning needed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CriticalStepWarning)
        return _run(p, p_star, eta, q0, N, noise, replicas, seed, chain, points, a, b, lr, g_c, above)


def _run(p, p_star, eta, q0, N, noise, replicas, seed, chain, points, a, b, lr, g_c, above):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((p, p_star)) * np.sqrt(q0)
    Q0, M0, P = q0 * np.eye(p), m / np.sqrt(N), np.eye(p_star)
    est = escape_time_estimate(p, p_star, a, b, min(lr, 0.999 * g_c / a), N, q0=q0, noise=noise) if not above else 20.0
    alpha_max = float(np.clip(3 * est + 10, 20, 2000))
    alphas = np.linspace(0, alpha_max, points)
    # LSODA: fastest here, and display accuracy is all the explorer needs
    ode = integrate_ode(Q0, M0, P, a, b, lr, alphas, noise=noise, rtol=1e-7, atol=1e-10, method="LSODA")
    pl = plateau(p, p_star, a, b, 0.0 if above else lr, noise=noise)
    t_esc = float(escape_time(alphas, ode.loss, (pl.loss - 0.5 * noise**2) / 2 + 0.5 * noise**2))
    chain_loss, n_div = None, 0
    if chain:
        from .sgd import sgd_overlaps

        Qc = np.broadcast_to(Q0, (replicas, p, p))
        Mc = np.broadcast_to(M0, (replicas, p, p_star))
        run = sgd_overlaps(Qc, Mc, P, N, a, b, lr, alphas, noise=noise, seed=seed + 1)
        chain_loss, n_div = np.asarray(run.loss), int(np.sum(run.diverged))
    dist = float("nan")
    if not bool(ode.diverged) and p >= p_star:
        O = polar(M0)
        Qe, Me = ode.Q[-1], ode.M[-1]
        d2 = np.trace(Qe) - 2 * np.sqrt(b / a) * np.sum(Me * O) + (b / a) * p_star
        dist = float(np.sqrt(max(d2, 0.0)))
    return Scenario(
        params=dict(p=p, p_star=p_star, eta=eta, q0=q0, N=N, noise=noise),
        alpha=alphas, ode_loss=np.asarray(ode.loss), chain_loss=chain_loss,
        plateau_loss=float(pl.loss), critical_eta=float(g_c),
        manifold_eta=float(a * manifold_critical_lr(p_star, a, b)),
        escape_alpha=t_esc, escape_estimate=float(est) if not above else float("nan"),
        procrustes_distance=dist, diverged=bool(ode.diverged), chain_diverged=n_div,
    )


def scenario_figure(sc: Scenario, ax=None):
    """Loss against α: ODE line, chain replicas as thin lines, plateau and escape marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    if sc.chain_loss is not None:
        for i in range(sc.chain_loss.shape[1]):
            ax.semilogy(sc.alpha, sc.chain_loss[:, i], color="C1", lw=0.8, alpha=0.6,
                        label=f"exact chain, N = {sc.params['N']}" if i == 0 else None)
    ax.semilogy(sc.alpha, sc.ode_loss, color="C0", lw=2, label="ODE (N → ∞)")
    ax.axhline(sc.plateau_loss, color="0.4", ls="--", lw=1, label="plateau (theory)")
    if np.isfinite(sc.escape_alpha):
        ax.axvline(sc.escape_alpha, color="C2", ls=":", lw=1.2, label="escape (ODE)")
    ax.set_xlabel("α (samples / N)")
    ax.set_ylabel("population loss")
    ax.set_ylim(1e-5, 10)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def _numbers(sc: Scenario) -> dict:
    f = lambda x, fmt: "—" if not np.isfinite(x) else format(x, fmt)  # noqa: E731
    return {
        "plateau loss": f(sc.plateau_loss, ".4f"),
        "critical η (plateau)": f(sc.critical_eta, ".4f"),
        "largest η with an attracting manifold": f(sc.manifold_eta, ".4f"),
        "escape time α": "diverges" if sc.diverged else f(sc.escape_alpha, ".1f"),
        "distance to Procrustes point (end)": f(sc.procrustes_distance, ".3g"),
    }


def _png(sc: Scenario, dpi=80) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    scenario_figure(sc, ax)
    ax.set_title(f"p = {sc.params['p']}, p* = {sc.params['p_star']}, η = {sc.params['eta']:g}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def static_explorer_html(ps=(2, 4, 8), etas=(0.03, 0.06, 0.1, 0.15, 0.2), p_star=2, N=1000, *,
                         chain=False, uid="qn-explorer") -> str:
    """A self-contained HTML block: two range sliders (p and η) over precomputed frames.

    DOM contract (tested in the browser): inputs ``input.qn-explorer-slider`` and one
    ``img.qn-explorer-frame`` whose ``src`` changes with the sliders; numbers in ``.qn-explorer-numbers``.
    No external resources.
    """
    frames, numbers = {}, {}
    for p in ps:
        for eta in etas:
            sc = run_scenario(p, p_star, eta, N=N, chain=chain)
            key = f"{p}|{eta:g}"
            frames[key] = _png(sc)
            numbers[key] = _numbers(sc)
    data = json.dumps({"frames": frames, "numbers": numbers, "ps": list(ps), "etas": [f"{e:g}" for e in etas]})
    uid = html.escape(uid)
    first = f"{ps[0]}|{etas[0]:g}"
    return f"""
<div id="{uid}" class="qn-explorer" style="font-family: sans-serif; max-width: 640px">
  <label>p (student width): <input type="range" class="qn-explorer-slider" data-axis="p" min="0" max="{len(ps) - 1}" step="1" value="0">
  <span class="qn-explorer-p">{ps[0]}</span></label><br>
  <label>η (effective step): <input type="range" class="qn-explorer-slider" data-axis="eta" min="0" max="{len(etas) - 1}" step="1" value="0">
  <span class="qn-explorer-eta">{etas[0]:g}</span></label>
  <div><img class="qn-explorer-frame" alt="Loss against alpha for the selected student width and step: ODE line, plateau and escape time marked." src="{frames[first]}" style="width: 100%; background: white"></div>
  <table class="qn-explorer-numbers"></table>
</div>
<script>
(function() {{
  var root = document.getElementById("{uid}");
  var D = {data};
  function update() {{
    var s = root.querySelectorAll("input.qn-explorer-slider");
    var p = D.ps[+s[0].value], e = D.etas[+s[1].value], key = p + "|" + e;
    root.querySelector(".qn-explorer-p").textContent = p;
    root.querySelector(".qn-explorer-eta").textContent = e;
    root.querySelector("img.qn-explorer-frame").src = D.frames[key];
    var rows = "";
    for (var k in D.numbers[key]) rows += "<tr><td>" + k + "</td><td>" + D.numbers[key][k] + "</td></tr>";
    root.querySelector(".qn-explorer-numbers").innerHTML = rows;
  }}
  root.querySelectorAll("input.qn-explorer-slider").forEach(function(el) {{ el.addEventListener("input", update); }});
  update();
}})();
</script>
"""


def live_explorer(N_max=10_000):
    """ipywidgets controls for (p, p*, η, q0, N, σ) driving :func:`run_scenario` (needs a kernel)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    style = {"description_width": "130px"}
    ctl = dict(
        p=w.IntSlider(4, 1, 8, description="p (student)", style=style),
        p_star=w.IntSlider(2, 1, 4, description="p* (teacher)", style=style),
        eta=w.FloatLogSlider(0.125, base=10, min=-2, max=np.log10(0.35), description="η = aγ", style=style),
        q0=w.FloatLogSlider(1.0, base=10, min=-1, max=0.6, description="init. scale q0", style=style),
        N=w.IntSlider(1000, 100, N_max, step=100, description="N (chain)", style=style),
        noise=w.FloatSlider(0.0, min=0.0, max=0.5, step=0.05, description="label noise σ", style=style),
    )
    out = w.Output()
    table = w.HTML()

    def redraw(_=None):
        sc = run_scenario(**{k: c.value for k, c in ctl.items()})
        with out:
            out.clear_output(wait=True)
            scenario_figure(sc)
            plt.show()
        rows = "".join(f"<tr><td>{k}</td><td><b>{val}</b></td></tr>" for k, val in _numbers(sc).items())
        extra = f"<tr><td>diverged chain replicas</td><td>{sc.chain_diverged}</td></tr>" if sc.chain_diverged else ""
        table.value = f"<table>{rows}{extra}</table>"

    for c in ctl.values():
        c.observe(redraw, names="value")
    redraw()
    display(w.HBox([w.VBox(list(ctl.values()) + [table]), out]))
    return ctl
