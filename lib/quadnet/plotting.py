"""One house style for the book's figures (white background, readable fonts).

Never selects a Matplotlib backend: notebooks keep their inline backend.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["STYLE", "apply_style", "style", "COLORS", "errorbar"]

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
    import numpy as np

    s = np.asarray(samples, dtype=float)
    n = np.sum(np.isfinite(s), axis=axis)
    mean = np.nanmean(s, axis=axis)
    se = np.nanstd(s, axis=axis, ddof=1) / np.sqrt(np.maximum(n, 1))
    return ax.errorbar(x, mean, yerr=se, fmt=marker, ls="none", capsize=2, label=label, color=color, **kw)


# --- dynamics and escape chapters

__all__ += ["band", "escape_comparison", "hist_against"]


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
