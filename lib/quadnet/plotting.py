"""One house style for the book's figures (white background, readable fonts).

Never selects a Matplotlib backend: notebooks keep their inline backend.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = [
    "STYLE",
    "apply_style",
    "style",
    "COLORS",
    "errorbar",
    "THROUGHPUT_METHODS",
    "throughput_bars",
    "ode_and_chain",
    "hlines",
    "decay_collapse",
    "errorbar_fit",
    "legend_entries",
    "escape_comparison",
    "hist_against",
    "band",
]

COLORS = ["#1f5fa6", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a4f", "#555555"]

STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "figure.constrained_layout.use": True,
}


def apply_style() -> None:
    """Set the house style globally (call once at the top of a chapter).

    Returns
    -------
    None

    Examples
    --------
    >>> import matplotlib as mpl
    >>> from quadnet import plotting
    >>> with mpl.rc_context():
    ...     plotting.apply_style()
    ...     mpl.rcParams["axes.facecolor"]
    'white'
    """
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(STYLE)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=COLORS)


@contextmanager
def style():
    """Context manager form of :func:`apply_style` (the previous settings come back on exit).

    Examples
    --------
    >>> import matplotlib as mpl
    >>> from quadnet import plotting
    >>> with plotting.style():
    ...     mpl.rcParams["legend.frameon"]
    False
    """
    import matplotlib as mpl

    with mpl.rc_context():
        apply_style()
        yield


def errorbar(ax, x, samples, *, axis=-1, label=None, color=None, marker="o", **kw):
    """Simulation as markers: mean ± standard error over ``axis`` of ``samples`` (NaN ignored).

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    x : array (T,)
        Abscissae.
    samples : array
        Replicas along ``axis``, the other axis of length T.
    axis : int
        The replica axis.
    label, color, marker, **kw
        Passed to ``Axes.errorbar``.

    Returns
    -------
    matplotlib.container.ErrorbarContainer

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> ax = Figure().subplots()
    >>> bars = plotting.errorbar(ax, np.arange(3), np.ones((3, 5)))
    >>> type(bars).__name__
    'ErrorbarContainer'
    """
    from .analysis import mean_and_stderr

    mean, se = mean_and_stderr(samples, axis=axis)
    return ax.errorbar(x, mean, yerr=se, fmt=marker, ls="none", capsize=2, label=label, color=color, **kw)


# --- model, Hessian and appendix chapters

#: the four contenders of the performance appendix: key in a benchmark record, legend label
THROUGHPUT_METHODS = (
    ("baseline", "(a) NumPy loop"),
    ("weights", "(b) sgd_weights"),
    ("chain_numpy", "(c) chain, NumPy"),
    ("chain_numba", "(d) chain, fused"),
)


def throughput_bars(ax, results, title=None):
    """Grouped bars of replica-steps per second against N, one bar per method (Appendix B).

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw (log y axis).
    results : dict
        A benchmark record as ``benchmarks/sgd_bench.py`` writes it: ``results["rows"]`` is a list
        with one dict per N, holding ``"N"`` and, for each method of :data:`THROUGHPUT_METHODS`
        that ran, ``{"replica_steps_per_s": float}``; a missing method leaves a gap.
    title : str or None
        The panel's title.

    Returns
    -------
    matplotlib Axes
        ``ax``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> rows = [{"N": 1000, "weights": {"replica_steps_per_s": 1e5}}, {"N": 10000}]
    >>> ax = plotting.throughput_bars(Figure().subplots(), {"rows": rows}, "demo")
    >>> len(ax.patches), [t.get_text() for t in ax.get_xticklabels()]
    (8, ['$10^{3}$', '$10^{4}$'])
    """
    import numpy as np

    rows = results["rows"]
    x = np.arange(len(rows))
    w = 0.2
    for k, (name, label) in enumerate(THROUGHPUT_METHODS):
        vals = [r[name]["replica_steps_per_s"] if name in r else np.nan for r in rows]
        ax.bar(x + (k - 1.5) * w, vals, w, label=label)
    ax.set_xticks(x, [f"$10^{{{int(round(np.log10(r['N'])))}}}$" for r in rows])
    ax.set_yscale("log")
    ax.set_xlabel("input dimension $N$")
    ax.set_ylabel("replica-steps per second")
    if title is not None:
        ax.set_title(title)
    return ax


# --- plateau, manifold and bias chapters


def ode_and_chain(ax, alphas, ode, chain, *, every=3, color=None, label=None):
    """The ODE as a line, the exact chain as open markers (mean ± standard error), against α.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    alphas : array (T,)
        Times; the first (α = 0) is left out of a log axis.
    ode, chain : array (T, R)
        The same quantity for R runs of each; the ODE is drawn as its mean over runs, the chain
        at every ``every``-th time from the second.
    every : int
        Spacing of the chain's markers.
    color, label
        Colour of both, label of the markers.

    Returns
    -------
    matplotlib.container.ErrorbarContainer

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> ax = Figure().subplots()
    >>> bars = plotting.ode_and_chain(ax, np.arange(7.0), np.ones((7, 2)), np.ones((7, 3)))
    >>> len(ax.lines) >= 1
    True
    """
    import numpy as np

    from .analysis import mean_and_stderr

    ode, chain = np.asarray(ode), np.asarray(chain)
    sel = np.arange(1, len(alphas), every)
    ax.plot(alphas[1:], ode[1:].mean(1), color=color, lw=1.5)
    m, s = mean_and_stderr(chain[sel], axis=1)
    return ax.errorbar(alphas[sel], m, s, fmt="o", ms=3.5, mfc="none", color=color, label=label)


# --- regimes chapter


def hlines(ax, values, **kw):
    """Horizontal reference lines, one at each of ``values`` (plateau levels, predicted values).

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    values : iterable of float
        Heights; NaN values are skipped.
    **kw
        Passed to ``Axes.axhline`` (default: dotted, thin, grey).

    Returns
    -------
    list of matplotlib.lines.Line2D

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> len(plotting.hlines(Figure().subplots(), [1.0, 0.5, float("nan")]))
    2
    """
    import math

    style = {"color": "0.5", "ls": ":", "lw": 1} | kw
    return [ax.axhline(y, **style) for y in values if not math.isnan(y)]


def decay_collapse(ax, alpha, values, tau, *, start=0.1, **kw):
    """Plot a decaying curve on the axes of a collapse: ``values(α)/values(α₀)`` against
    ``(α − α₀)/tau``, from α₀ = the first output at or after ``start`` × the last time on (chapter 8:
    the alignment with the start against the predicted lifetime, e^{−x} if the prediction is right).

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    alpha : array (T,)
        Increasing times.
    values : array (T,)
        The decaying quantity.
    tau : float > 0
        Time unit of the horizontal axis.
    start : float in [0, 1)
        Where the plotted stretch starts, as a fraction of the last time.
    **kw
        Passed to ``Axes.plot``.

    Returns
    -------
    list of matplotlib.lines.Line2D

    Raises
    ------
    ValueError
        ``alpha`` and ``values`` of different lengths, ``tau`` ≤ 0, ``start`` outside [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> al = np.linspace(0, 10, 11)
    >>> (line,) = plotting.decay_collapse(Figure().subplots(), al, 2 * np.exp(-al / 5), 5.0)
    >>> line.get_xdata()[:2].tolist(), round(float(line.get_ydata()[-1]), 6)
    ([0.0, 0.2], 0.165299)
    """
    import numpy as np

    al, y = np.asarray(alpha, dtype=float), np.asarray(values, dtype=float)
    if al.ndim != 1 or y.shape != al.shape:
        raise ValueError(f"alpha and values must be 1-d of the same length, got {al.shape} and {y.shape}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if not 0 <= start < 1:
        raise ValueError(f"start must lie in [0, 1), got {start}")
    i0 = int(np.searchsorted(al, start * al[-1]))
    return ax.plot((al[i0:] - al[i0]) / tau, y[i0:] / y[i0], **kw)


def errorbar_fit(ax, x, y, yerr, fit=None, *, x_fit=None, color=None, fmt="o", label=None, **kw):
    """Points with error bars and, optionally, a fitted line through them in the same colour.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    x, y, yerr : arrays (n,)
        Points and their standard errors.
    fit : callable or None
        The fitted curve (e.g. a :class:`~quadnet.LineFit`), evaluated on ``x_fit``.
    x_fit : array or None
        Where to draw ``fit`` (default: 20 points from 0 to max x).
    color, fmt, label
        Colour and marker of the points, legend label.
    **kw
        Passed to ``Axes.errorbar``.

    Returns
    -------
    matplotlib.container.ErrorbarContainer

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from quadnet import line_fit, plotting
    >>> ax = Figure().subplots()
    >>> x, y, e = [0.5, 1.0], [1.1, 1.3], [0.1, 0.1]
    >>> bars = plotting.errorbar_fit(ax, x, y, e, line_fit(x, y, e))
    >>> ax.lines[-1].get_color() == bars.lines[0].get_color()     # the fitted line, in the points' colour
    True
    """
    import numpy as np

    bars = ax.errorbar(x, y, yerr=yerr, fmt=fmt, color=color, capsize=kw.pop("capsize", 3), label=label, **kw)
    if fit is not None:
        xx = np.linspace(0, np.max(x), 20) if x_fit is None else np.asarray(x_fit, dtype=float)
        ax.plot(xx, fit(xx), color=bars.lines[0].get_color(), lw=1)
    return bars


def legend_entries(ax, entries, *, color="0.3", **legend_kw):
    """Add legend entries for marker or line styles that stand for several curves, then draw
    the legend.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    entries : iterable of (fmt, label) or (fmt, label, dict)
        Format string (``"o"``, ``"s"``, ``"-"``...), label and extra ``Axes.plot`` keywords.
    color : color
        Colour of the entries.
    **legend_kw
        Passed to ``Axes.legend``.

    Returns
    -------
    matplotlib.legend.Legend

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> leg = plotting.legend_entries(Figure().subplots(), [("o", "ODE", {"mfc": "none"}), ("-", "predicted")])
    >>> [t.get_text() for t in leg.get_texts()]
    ['ODE', 'predicted']
    """
    for entry in entries:
        fmt, label, extra = (tuple(entry) + ({},))[:3]
        ax.plot([], [], fmt, color=color, label=label, **extra)
    return ax.legend(**legend_kw)


# --- dynamics and escape chapters


def escape_comparison(
    ax,
    x,
    comparisons,
    *,
    color="C0",
    line_color="k",
    marker="o",
    label="exact chain (mean ± s.e.)",
    predicted_label="predicted",
):
    """Measured mean ± s.e. (markers) against the prediction (a line), one point per comparison.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    x : array (n,)
        Abscissae.
    comparisons : iterable of n objects with ``mean``, ``stderr`` and ``predicted``
        E.g. :class:`quadnet.EscapeComparison` (chapter 4).
    color, marker, label
        Of the measured markers.
    line_color, predicted_label
        Of the prediction's line.

    Returns
    -------
    matplotlib.container.ErrorbarContainer

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> ax = Figure().subplots()
    >>> pts = [SimpleNamespace(mean=m, stderr=0.1, predicted=m + 0.05) for m in (1.0, 2.0)]
    >>> type(plotting.escape_comparison(ax, [1, 2], pts)).__name__
    'ErrorbarContainer'
    """
    c = list(comparisons)
    ax.plot(x, [k.predicted for k in c], "-", color=line_color, lw=1.4, label=predicted_label)
    mean, se = [k.mean for k in c], [k.stderr for k in c]
    return ax.errorbar(x, mean, yerr=se, fmt=marker, color=color, capsize=3, label=label)


def hist_against(ax, measured, predicted, bins, *, color=None, label=None, predicted_label=None, alpha=0.35):
    """Two normalized histograms on shared bins: ``measured`` filled, ``predicted`` as an outline.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    measured, predicted : arrays
        Samples (e.g. escape times of the chain and samples of their predicted law).
    bins : array
        Bin edges.
    color : color or None
        One color for both.
    label, predicted_label : str or None
        Legend entries.
    alpha : float
        Opacity of the filled histogram.

    Returns
    -------
    None

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> ax = Figure().subplots()
    >>> plotting.hist_against(ax, np.arange(10.0), np.arange(10.0), np.arange(0, 11, 2))
    >>> len(ax.patches)
    2
    """
    kw = dict(bins=bins, density=True, color=color)
    ax.hist(measured, histtype="stepfilled", alpha=alpha, label=label, **kw)
    ax.hist(predicted, histtype="step", lw=1.6, label=predicted_label, **kw)


def band(ax, x, samples, *, axis=-1, color=None, alpha=0.15, label=None, **kw):
    """The spread of single runs: mean ± one standard deviation over ``axis`` of ``samples``, shaded.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    x : array (T,)
        Abscissae.
    samples : array
        Replicas along ``axis``, the other axis of length T.
    axis : int
        The replica axis.
    color, alpha, label, **kw
        Passed to ``Axes.fill_between`` (no edge line).

    Returns
    -------
    matplotlib.collections.PolyCollection

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from quadnet import plotting
    >>> ax = Figure().subplots()
    >>> from matplotlib.collections import PolyCollection
    >>> isinstance(plotting.band(ax, np.arange(3), np.ones((3, 4)), axis=1), PolyCollection)
    True
    """
    import numpy as np

    s = np.asarray(samples, dtype=float)
    m, sd = s.mean(axis=axis), s.std(axis=axis)
    return ax.fill_between(x, m - sd, m + sd, color=color, alpha=alpha, lw=0, label=label, **kw)
