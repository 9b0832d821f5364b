"""Helpers for the chapters: glued numbers, the environment banner, timing of heavy cells.

A chapter opens with :func:`banner` (which profile and backend it runs, how to choose another,
and the start of the chapter's clock), wraps its expensive cells in :func:`timed`, and prints
:func:`timing_summary` at the end, so every run says how long its heavy cells took at the
profile it ran::

    qn.book.banner()
    with qn.book.timed("escape-time sweep"):
        result = qn.sgd_overlaps(...)
    ...
    qn.book.timing_summary()
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from .backend import backend_name, default_backend
from .profiles import PROFILES, profile

__all__ = [
    "glue",
    "glue_all",
    "in_colab",
    "banner",
    "timed",
    "timing_summary",
    "chapter_clock",
    "ChapterClock",
    "COLAB_INSTALL",
    "REPOSITORY_URL",
    "PROFILE_HINT",
]

#: The repository the Colab install cell installs from (also ``repository.url`` in _config.yml).
REPOSITORY_URL = "https://github.com/quadnet-book/quadnet"

#: The first code cell of every notebook (tests/site/test_colab.py checks each notebook against it).
COLAB_INSTALL = (
    "# Colab: install quadnet from the repository (a no-op elsewhere); on a GPU runtime with its CUDA extras\n"
    "import shutil\n"
    "import sys\n"
    "\n"
    'if "google.colab" in sys.modules:\n'
    '    extra = "[gpu]" if shutil.which("nvidia-smi") else ""\n'
    f'    !pip install -q "quadnet{{extra}} @ git+{REPOSITORY_URL}"'
)

#: How a reader picks another profile (printed by :func:`banner`).
PROFILE_HINT = (
    "to choose the sizes, set QUADNET_PROFILE to "
    + " | ".join(PROFILES)
    + " before this cell (in a notebook or Colab: %env QUADNET_PROFILE=quick), then run again"
)


def glue_all(values: Mapping[str, Any] | None = None, /, **named: Any) -> None:
    """Glue every entry of ``values`` and then of the keywords, in order, with :func:`glue`.

    Parameters
    ----------
    values : mapping of str to value, optional
        Names and values (for names built in a loop, e.g. ``{f"rate_{k}": r for ...}``).
    **named
        More names and values.

    Raises
    ------
    TypeError
        A name that is not a non-empty string.

    Examples
    --------
    >>> glue_all({"a_1": 1.0}, slope=0.5, n=3)   # three glued numbers (nothing without myst-nb)
    """
    items = list(dict(values or {}).items()) + list(named.items())
    for name, _ in items:
        if not isinstance(name, str) or not name:
            raise TypeError(f"glue_all: every name must be a non-empty string, got {name!r}")
    for name, value in items:
        glue(name, value)


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue a computed ``value`` under ``name`` for the prose (``{glue:text}`name:.3g```).

    Numbers are glued as Python numbers (NumPy scalars converted) so the role's format spec
    applies. Falls back to doing nothing when myst-nb is absent (e.g. a bare Colab runtime).
    Returns None, so a ``glue(...)`` on the last line of a cell prints nothing.
    """
    shown = value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
    try:
        from myst_nb import glue as _glue
    except Exception:
        return None
    _glue(name, shown, display=display)
    return None


class ChapterClock:
    """Wall-clock time of a chapter run and of its labelled heavy cells.

    Attributes
    ----------
    start : float
        ``time.perf_counter()`` when the clock was (re)started.
    cells : dict of str to float
        Seconds spent in each label (repeated labels accumulate), in the order first seen.

    Examples
    --------
    >>> clock = ChapterClock()
    >>> with clock.timed("nothing", quiet=True):
    ...     pass
    >>> list(clock.cells)
    ['nothing']
    """

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Forget every timing and start the chapter's clock now."""
        self.start = time.perf_counter()
        self.cells: dict[str, float] = {}

    def elapsed(self) -> float:
        """Seconds since the clock was (re)started."""
        return time.perf_counter() - self.start

    @contextmanager
    def timed(self, label: str, quiet: bool = False) -> Iterator[None]:
        """Time the block under ``label``; see :func:`quadnet.book.timed`."""
        if not isinstance(label, str) or not label.strip():
            raise TypeError(f"label must be a non-empty string, got {label!r}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.cells[label] = self.cells.get(label, 0.0) + dt
            if not quiet:
                print(f"[{label}: {dt:.1f} s at profile {profile().name}]")

    def summary(self) -> dict[str, float]:
        """Seconds per label, plus ``'timed'`` (their sum) and ``'total'`` (since the start)."""
        out = dict(self.cells)
        out["timed"] = sum(self.cells.values())
        out["total"] = self.elapsed()
        return out


_CLOCK = ChapterClock()


def chapter_clock() -> ChapterClock:
    """The clock that :func:`banner`, :func:`timed` and :func:`timing_summary` share."""
    return _CLOCK


def timed(label: str, quiet: bool = False):
    """Context manager: time a heavy cell and print how long it took at the active profile.

    Parameters
    ----------
    label : str
        What the block computes, e.g. ``"escape-time sweep"``. Repeated labels add up.
    quiet : bool, optional
        Record the time without printing it.

    Returns
    -------
    contextmanager
        Use as ``with qn.book.timed("label"): ...``.

    Raises
    ------
    TypeError
        If ``label`` is not a non-empty string.

    Examples
    --------
    >>> import quadnet as qn
    >>> with qn.book.timed("a sum", quiet=True):
    ...     _ = sum(range(1000))
    >>> "a sum" in qn.book.chapter_clock().cells
    True
    """
    return _CLOCK.timed(label, quiet=quiet)


def timing_summary(print_it: bool = True) -> dict[str, float]:
    """Seconds spent in each :func:`timed` block since :func:`banner`, and the total.

    Parameters
    ----------
    print_it : bool, optional
        Print one line per label and the totals (default True).

    Returns
    -------
    dict of str to float
        ``{label: seconds, ..., "timed": sum of the labels, "total": seconds since banner()}``.

    Examples
    --------
    >>> import quadnet as qn
    >>> times = qn.book.timing_summary(print_it=False)
    >>> times["total"] >= times["timed"] >= 0
    True
    """
    times = _CLOCK.summary()
    if print_it:
        print(f"quadnet: timings at profile {profile().name} (wall clock; {times['total']:.1f} s since the banner)")
        for label, seconds in _CLOCK.cells.items():
            print(f"  {label:<40s} {seconds:7.1f} s")
    return times


def banner() -> str:
    """Print which profile and array backend this run uses, and how to choose another.

    Also (re)starts the chapter's clock for :func:`timing_summary`.

    Returns
    -------
    str
        The first line printed, ``"quadnet: profile=..., backend=..."``.

    Examples
    --------
    >>> import quadnet as qn
    >>> qn.book.banner().startswith("quadnet: profile=")  # doctest: +ELLIPSIS
    quadnet: profile=...
    True
    """
    _CLOCK.restart()
    xp = default_backend()
    line = f"quadnet: profile={profile().name}, backend={backend_name(xp)}"
    print(line)
    print(f"  ({PROFILE_HINT})")
    return line
