"""Parameter sweeps: one pure function over a grid of keyword arguments, on any executor, with a
resumable on-disk cache (the book's appendix on sweeps runs one on a Dask cluster).

    def escape(N, seed):                         # a pure function of its keyword arguments
        ...
        return escape_times                      # anything picklable

    if __name__ == "__main__":                   # in a script: workers import it again
        results = qn.sweep(escape, {"N": [1000, 3000, 10000], "seed": range(4)})

Grid and order
--------------
``grid`` is a list of keyword dicts (used as given, in that order) or a dict whose values are the
lists to combine: the Cartesian product, ordered like nested ``for`` loops over the keys in the
order written, the last key varying fastest ({"N": [1, 2], "seed": [0, 1]} gives (N, seed) =
(1, 0), (1, 1), (2, 0), (2, 1)). In a dict, a list, tuple, range or 1-d NumPy array is a set of
values to combine; any other value (a number, a string, None, a dict) is held fixed.
:func:`grid_points` shows the points. Results come back in grid order, whatever order the
workers finish in.

Executors
---------
``executor=None`` runs the points on a local process pool, one worker per available core (at
most one per point), created and shut down by :func:`sweep`. Its workers are started by the
``forkserver`` method (``spawn`` where that does not exist), never forked from a parent that may
hold threads (numba's OpenMP pool is not fork-safe); they set ``NUMBA_NUM_THREADS=1`` (one worker
per core). Such workers import the main script again: a script must start its sweep under
``if __name__ == "__main__":`` (one that does not is told so before any worker starts). Any
``concurrent.futures.Executor`` works: a ``ThreadPoolExecutor`` for functions that release the
GIL, your own ``ProcessPoolExecutor``, or a Dask cluster, the documented way to scale out::

    from distributed import Client
    client = Client("tcp://scheduler:8786")          # a running Dask scheduler
    results = qn.sweep(escape, grid, executor=client.get_executor())

:func:`dask_executor` does the same as a context manager, and starts a local cluster when no
address is given. Functions defined in a notebook or script (``__main__``) travel by value
(cloudpickle, which Dask installs); importable ones by reference, so workers must be able to
import them. On process and Dask executors the worker that made a result checks that it pickles.

On-disk cache
-------------
Each finished point is written at once to its own file, so an interrupted sweep (Ctrl-C, a
crash, a point that raises) keeps what finished and a rerun computes only what is missing. The
key is the function (its qualified name and a hash of its source, or its ``cache_version``
attribute), the point's parameters and ``quadnet.__version__``. Only the function's own source
is hashed: when a helper it calls changes, set or bump ``cache_version`` (or clear the cache).
Entries are checksummed and written atomically, and a damaged one is recomputed, never returned;
they are pickles, which run code when loaded, so point the cache only at directories you trust
(see :class:`Cache`). Location: ``cache=`` (a path or a :class:`Cache`), else ``$QUADNET_CACHE_DIR``, else the user
cache directory (:func:`default_cache_dir`); ``cache=False`` turns it off.

Faults
------
A worker that dies (a killed process: ``BrokenProcessPool``; Dask's ``KilledWorker``) loses the
points it and its pool held; they are resubmitted, on a fresh local pool when the pool broke, up
to ``retries`` times each. Anything else that goes wrong at a point stops the sweep, keeps what
finished, and raises :class:`SweepError` naming the grid point: an exception raised by the
function (never retried; it is the error's ``__cause__`` and the worker's traceback is in the
message), a result that cannot be pickled back from a process or Dask worker, a point or
function that cannot be sent to the executor. A ``KeyboardInterrupt`` (Ctrl-C, or raised by
the function) stops the workers at once and comes back as :class:`SweepInterrupted`, a
``KeyboardInterrupt`` that says where it happened and what was kept.
"""

from __future__ import annotations

import contextlib
import pickle
import time
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from .. import _validate as v
from ._cache import Cache, _name, _resolve_cache, default_cache_dir
from ._executors import (
    Outcome,
    PointLost,
    PointRunner,
    _start_method,
    dask_executor,
    leave_if_importing_main,
    unsendable_part,
)

__all__ = [
    "sweep",
    "grid_points",
    "Cache",
    "SweepError",
    "SweepInterrupted",
    "SweepResults",
    "SweepStats",
    "default_cache_dir",
    "dask_executor",
]


# --------------------------------------------------------------------------- grid


def _is_axis(value: Any) -> bool:
    if isinstance(value, (list, tuple, range)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 1


def _check_keys(keys: Iterable, where: str) -> None:
    for key in keys:
        if not isinstance(key, str) or not key.isidentifier():
            raise TypeError(f"{where} must be keyword names (str identifiers), got {key!r}")


def _points_of_dict(grid: dict) -> list[dict]:
    _check_keys(grid, "grid keys")
    for key, val in grid.items():
        if isinstance(val, np.ndarray) and val.ndim != 1:
            raise ValueError(f"grid[{key!r}]: an array of values must be 1-d, got shape {val.shape}")
    axes = [(k, list(val) if _is_axis(val) else [val]) for k, val in grid.items()]
    points: list[dict] = [{}]
    for key, values in axes:
        points = [{**pt, key: val} for pt in points for val in values]
    return points if axes else []


def _points_of_list(grid: list | tuple) -> list[dict]:
    points = []
    for i, pt in enumerate(grid):
        if not isinstance(pt, dict):
            raise TypeError(
                f"grid must be a list of keyword dicts or a dict of lists; grid[{i}] is {type(pt).__name__}"
            )
        _check_keys(pt, f"grid[{i}]: keys")
        points.append(dict(pt))
    return points


def grid_points(grid: Any) -> list[dict]:
    """The points of a sweep's grid, as keyword dicts in the order :func:`sweep` runs them.

    Parameters
    ----------
    grid : dict of lists, or list of dict
        A dict: the Cartesian product of its values that are lists, tuples, ranges or 1-d
        arrays, ordered like nested ``for`` loops over the keys as written (the last key varies
        fastest); any other value is held fixed. A list of dicts: those points, in that order.

    Returns
    -------
    list of dict
        One dict of keyword arguments per point (empty for an empty grid).

    Raises
    ------
    TypeError
        ``grid`` is neither form, or a key is not a keyword name.
    ValueError
        An array of values that is not 1-d.

    Examples
    --------
    >>> import quadnet as qn
    >>> for point in qn.grid_points({"N": [100, 200], "seed": range(2), "p": 4}):
    ...     print(point)
    {'N': 100, 'seed': 0, 'p': 4}
    {'N': 100, 'seed': 1, 'p': 4}
    {'N': 200, 'seed': 0, 'p': 4}
    {'N': 200, 'seed': 1, 'p': 4}
    >>> qn.grid_points([{"N": 100}, {"N": 300, "p": 2}])
    [{'N': 100}, {'N': 300, 'p': 2}]
    """
    if isinstance(grid, dict):
        return _points_of_dict(grid)
    if isinstance(grid, (list, tuple)):
        return _points_of_list(grid)
    raise TypeError(f"grid must be a list of keyword dicts or a dict of lists, got {type(grid).__name__}")


# --------------------------------------------------------------------------- results and errors


class SweepError(RuntimeError):
    """A grid point failed: the function raised there, its result could not come back, or its
    worker kept dying past ``retries``.

    Parameters
    ----------
    message : str
        What happened, at which point, and what the cache kept.
    index : int
        The point's position in the grid.
    point : dict
        The point's keyword arguments.
    saved : int
        Points in the cache when it was raised (0 with ``cache=False``).

    Attributes
    ----------
    index, point, saved
        As above. The original exception is ``__cause__``.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import quadnet as qn
    >>> def inverse(x):
    ...     return 1 / x
    >>> with ThreadPoolExecutor(1) as ex:
    ...     try:
    ...         qn.sweep(inverse, {"x": [1, 0]}, executor=ex, cache=False, progress=False)
    ...     except qn.SweepError as err:
    ...         print(err.index, err.point, type(err.__cause__).__name__)
    1 {'x': 0} ZeroDivisionError
    """

    def __init__(self, message: str, *, index: int, point: dict, saved: int):
        super().__init__(message)
        self.index, self.point, self.saved = index, point, saved


class SweepInterrupted(KeyboardInterrupt):
    """A sweep was interrupted: Ctrl-C, or a ``KeyboardInterrupt`` raised by the function.

    A ``KeyboardInterrupt`` (so ``except Exception`` does not swallow it) whose message names
    the grid point where it was raised, when it came from the function, and what the cache kept.

    Parameters
    ----------
    message : str
        Where it happened and what was kept.
    index : int or None
        The grid point whose function raised it; None when the sweep itself was interrupted
        between points.
    point : dict or None
        That point's keyword arguments.
    saved : int
        Points in the cache when it was raised.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import quadnet as qn
    >>> from quadnet.sweep import SweepInterrupted
    >>> def stop_at_two(x):
    ...     if x == 2:
    ...         raise KeyboardInterrupt
    ...     return x
    >>> with ThreadPoolExecutor(1) as ex:
    ...     try:
    ...         qn.sweep(stop_at_two, {"x": [1, 2, 3]}, executor=ex, cache=False, progress=False)
    ...     except SweepInterrupted as stop:
    ...         print(stop.index, stop.point)
    1 {'x': 2}
    """

    def __init__(self, message: str, *, index: int | None, point: dict | None, saved: int):
        super().__init__(message)
        self.index, self.point, self.saved = index, point, saved


@dataclass(frozen=True)
class SweepStats:
    """What a sweep did.

    Attributes
    ----------
    points : int
        Points in the grid.
    cached : int
        Read from the cache.
    computed : int
        Run now.
    corrupt : int
        Cache entries found damaged (deleted and recomputed).
    retried : int
        Resubmissions after a worker died.
    lost : int
        Points given up: always 0 when a result is returned.
    seconds : float
        Wall time of the sweep.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import quadnet as qn
    >>> def negate(x):
    ...     return -x
    >>> with ThreadPoolExecutor(1) as ex:
    ...     out = qn.sweep(negate, {"x": [1, 2]}, executor=ex, cache=False, progress=False)
    >>> out.stats.points, out.stats.computed, out.stats.cached
    (2, 2, 0)
    """

    points: int
    cached: int
    computed: int
    corrupt: int
    retried: int
    lost: int
    seconds: float


class SweepResults(list):
    """The results of a sweep in grid order: a plain list, with ``stats`` and ``points``.

    Parameters
    ----------
    items : iterable
        The results, in grid order.
    points : list of dict
        The grid points, same order.
    stats : SweepStats
        What the sweep did.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import quadnet as qn
    >>> with ThreadPoolExecutor(1) as ex:
    ...     out = qn.sweep(pow, {"base": [2, 3], "exp": 2}, executor=ex, cache=False, progress=False)
    >>> list(out), out.points[1]
    ([4, 9], {'base': 3, 'exp': 2})
    """

    def __init__(self, items: Iterable, points: list[dict], stats: SweepStats):
        super().__init__(items)
        self.points = points
        self.stats = stats


# --------------------------------------------------------------------------- the loop


class _PointFailed(Exception):
    """An outcome that stops the sweep (internal; becomes SweepError or SweepInterrupted)."""

    def __init__(self, index: int, kind: str, exc: BaseException, tb: str | None):
        super().__init__(index, kind, exc)
        self.index, self.kind, self.exc, self.tb = index, kind, exc, tb


_WHAT = {
    "raised": "{name} raised {exc_type} at grid point {i} {point!r}: {exc}",
    "interrupted": "{name} raised KeyboardInterrupt at grid point {i} {point!r}",
    "failed": "grid point {i} {point!r} of {name} failed on the executor: {detail}",
    "unsent": "grid point {i} {point!r} of {name} could not be sent to the executor: {detail}",
    "unpicklable": (
        "{name} returned at grid point {i} {point!r} a result that cannot be pickled to come back from "
        "its worker ({exc_type}: {exc}); return plain data (numbers, arrays, lists, dicts, dataclasses), "
        "or run in threads"
    ),
    "unloadable": (
        "{name} returned at grid point {i} {point!r} a result that cannot be unpickled here ({exc_type}: {exc})"
    ),
}


class _Sweep:
    """One call of :func:`sweep`: the points, their cache entries, what finished, the progress."""

    def __init__(self, function: Callable, points: list[dict], store: Cache | None, progress: bool):
        self.t0 = time.perf_counter()
        self.function, self.points, self.store = function, points, store
        self.name = _name(function)
        n = len(points)
        self.keys = store._keys(function, points) if store is not None else None
        self.results: list = [None] * n
        self.done = [False] * n
        self.counts = dict(cached=0, computed=0, corrupt=0)
        self.cache_warned = False
        self._read_cache()
        self.bar = None
        if progress and n:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=n, initial=self.counts["cached"], desc=f"sweep {self.name.rsplit('.', 1)[-1]}", unit="point"
            )

    def _read_cache(self) -> None:
        if self.store is None:
            return
        for i, key in enumerate(self.keys):
            status, value = self.store.lookup(key)
            if status == "hit":
                self.results[i], self.done[i] = value, True
                self.counts["cached"] += 1
            elif status == "corrupt":
                self.counts["corrupt"] += 1

    def todo(self) -> list[int]:
        return [i for i, d in enumerate(self.done) if not d]

    # bookkeeping ----------------------------------------------------------
    def record(self, i: int, value: Any) -> None:
        self.results[i], self.done[i] = value, True
        self.counts["computed"] += 1
        if self.store is not None:
            try:
                self.store.put(self.keys[i], value)
            except (pickle.PicklingError, TypeError, AttributeError, OSError) as exc:
                if not self.cache_warned:
                    warnings.warn(f"sweep: result of grid point {i} not cached: {exc}", RuntimeWarning, stacklevel=6)
                    self.cache_warned = True
        if self.bar is not None:
            self.bar.update(1)

    def saved(self) -> int:
        return sum(self.done) if self.store is not None else 0

    def kept(self) -> str:
        if self.store is None:
            return "the cache is off (cache=False): nothing was kept"
        return (
            f"{self.saved()} of {len(self.points)} points are in the cache ({self.store.path}); rerunning the "
            "sweep computes only the rest"
        )

    # outcomes -------------------------------------------------------------
    def take(self, i: int, out: Outcome) -> None:
        """Record a finished point, or raise _PointFailed for one that stops the sweep."""
        if out.kind == "value":
            self.record(i, out.value)
        elif out.kind == "pickle":
            try:
                value = pickle.loads(out.value)
            except Exception as exc:
                raise _PointFailed(i, "unloadable", exc, None) from exc
            self.record(i, value)
        else:
            raise _PointFailed(i, out.kind, out.value, out.traceback)

    def error(self, f: _PointFailed) -> SweepError | SweepInterrupted:
        """The exception that reports a failed point: where, what, what the cache kept."""
        i, interrupted = f.index, isinstance(f.exc, KeyboardInterrupt)
        detail = f"{type(f.exc).__name__}: {f.exc}"
        culprit = unsendable_part(self.function, self.points[i]) if f.kind in ("failed", "unsent") else None
        if culprit:  # say which part would not pickle (the executor's own error may not)
            detail = f"{culprit}; on process and Dask executors the function and its parameters must pickle"
        what = _WHAT["interrupted" if interrupted else f.kind].format(
            name=self.name, exc_type=type(f.exc).__name__, i=i, point=self.points[i], exc=f.exc, detail=detail
        )
        msg = f"sweep: {what}\n{self.kept()}"
        if f.tb:
            msg += f"\n--- traceback on the worker ---\n{f.tb.rstrip()}"
        cls = SweepInterrupted if interrupted else SweepError
        return cls(msg, index=i, point=self.points[i], saved=self.saved())

    def lost_error(self, lost: PointLost) -> SweepError:
        i, exc = lost.index, lost.cause
        msg = (
            f"sweep: grid point {i} {self.points[i]!r} of {self.name} was lost {lost.attempts} time(s) to a "
            f"worker that died ({type(exc).__name__}: {exc}); retries={lost.retries} exhausted\n{self.kept()}"
        )
        return SweepError(msg, index=i, point=self.points[i], saved=self.saved())

    # running --------------------------------------------------------------
    def _consume(self, runner: PointRunner) -> None:
        try:
            with contextlib.closing(runner.run(self.todo())) as outcomes:
                for i, out in outcomes:
                    self.take(i, out)
        except PointLost as lost:
            raise self.lost_error(lost) from lost.cause
        except _PointFailed as f:
            if not isinstance(f.exc, KeyboardInterrupt):
                self._keep_finished(runner)  # an interrupt stops at once instead (the caller aborts)
            raise self.error(f) from f.exc

    def _keep_finished(self, runner: PointRunner) -> None:
        """After a failure: let the running points finish and keep those that did."""
        for j, out in runner.finish_running():
            if not self.done[j] and out.kind in ("value", "pickle"):
                with contextlib.suppress(_PointFailed):
                    self.take(j, out)

    def run(self, executor: Executor | None, retries: int) -> SweepStats:
        """Compute the points not in the cache; the sweep's stats."""
        runner = PointRunner(executor, self.function, self.points, retries)
        try:
            self._consume(runner)
        except KeyboardInterrupt as exc:
            runner.abort()
            if isinstance(exc, SweepInterrupted):
                raise
            msg = f"sweep: {self.name} interrupted\n{self.kept()}"
            raise SweepInterrupted(msg, index=None, point=None, saved=self.saved()) from exc
        except BaseException:
            runner.abort()
            raise
        finally:
            runner.close()
            if self.bar is not None:
                self.bar.close()
        return SweepStats(
            points=len(self.points),
            lost=0,
            seconds=time.perf_counter() - self.t0,
            retried=runner.retried,
            **self.counts,
        )


def sweep(
    function: Callable,
    grid: Any,
    *,
    executor: Executor | None = None,
    cache: Any = None,
    retries: int = 2,
    progress: bool = True,
) -> SweepResults:
    """Run ``function(**point)`` for every point of ``grid``; return the results in grid order.

    Parameters
    ----------
    function : callable
        A pure function of keyword arguments (same arguments, same result). For process and Dask
        executors it must pickle (module-level functions, ``functools.partial`` of them; functions
        of a notebook or script travel by value through cloudpickle) and so must its results.
    grid : dict of lists, or list of dict
        The points (see :func:`grid_points` for the order).
    executor : concurrent.futures.Executor or None
        Where to run. None: a local process pool with one worker per available core (at most one
        per point), created and shut down here; from a script, call it under
        ``if __name__ == "__main__":``. A Dask cluster: ``distributed.Client(...).get_executor()``
        or :func:`dask_executor`.
    cache : None, True, False, str, os.PathLike or Cache
        None or True: :func:`default_cache_dir`; a path or :class:`Cache`: there; False: no cache.
    retries : int ≥ 0
        How many times a point lost to a dying worker is resubmitted (on a fresh pool when a
        process pool broke). The function's own exceptions are never retried.
    progress : bool
        A tqdm progress bar over the points (cached points count as done).

    Returns
    -------
    SweepResults
        A list of the results in grid order, with ``.stats`` (:class:`SweepStats`) and
        ``.points``.

    Raises
    ------
    SweepError
        At a grid point (named, with the point's keyword arguments): the function raised, its
        result could not be pickled back from its worker, the point could not be sent, or its
        worker died more than ``retries`` times. What finished is kept in the cache.
    SweepInterrupted
        A ``KeyboardInterrupt`` (Ctrl-C, or raised by the function at a grid point it names):
        the workers are stopped; finished points stay in the cache.
    RuntimeError
        Called at import time by a script outside ``if __name__ == "__main__":`` while worker
        processes would be spawned (they would run the script again); raised before any starts.
    TypeError, ValueError
        Invalid arguments, or parameters that cannot be keyed for the cache (pass cache=False).

    Examples
    --------
    Threads here, to keep the example light; the default is a pool of processes.

    >>> import tempfile
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import quadnet as qn
    >>> def power(x, k):
    ...     return x ** k
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with ThreadPoolExecutor(2) as ex:
    ...     first = qn.sweep(power, {"x": [1, 2, 3], "k": 2}, executor=ex, cache=tmp.name, progress=False)
    ...     again = qn.sweep(power, {"x": [1, 2, 3, 4], "k": 2}, executor=ex, cache=tmp.name, progress=False)
    >>> list(first), list(again)
    ([1, 4, 9], [1, 4, 9, 16])
    >>> again.stats.cached, again.stats.computed
    (3, 1)
    >>> tmp.cleanup()
    """
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    points = grid_points(grid)
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor (e.g. distributed.Client(...).get_executor()) or "
            f"None, got {type(executor).__name__}"
        )
    retries = v.integer("retries", retries, minimum=0)
    leave_if_importing_main(_start_method(executor), "quadnet.sweep")  # before reading the cache
    run = _Sweep(function, points, _resolve_cache(cache), progress)
    stats = run.run(executor, retries)
    return SweepResults(run.results, points, stats)
