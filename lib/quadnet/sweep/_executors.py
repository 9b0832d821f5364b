"""Where the points of :func:`quadnet.sweep` run: the local process pool, a Dask cluster, any
``concurrent.futures.Executor``; and what happens when a worker dies.

The workers run :class:`_Call`, which turns every way a point can end into data (an
:class:`Outcome`): the result, the function's own exception with its traceback, or a result that
cannot travel back. On a process or Dask executor the worker that made a result checks that it
pickles, so an unpicklable one comes back as the outcome of its grid point instead of failing
later inside the executor's transport (where Dask waits forever). A future that fails because its worker died
(``BrokenProcessPool``, Dask's ``KilledWorker``) is told apart from these and resubmitted, on a
fresh local pool when a process pool broke, up to ``retries`` times (:class:`PointRunner`).

Process pools whose workers are spawned (``spawn``, ``forkserver``) import the main script again
in every worker; :func:`refuse_unguarded_main` refuses, before any worker starts, a sweep started
by a script outside ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import sys
import tokenize
import traceback
from collections import Counter, OrderedDict
from concurrent.futures import BrokenExecutor, CancelledError, Executor, ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, NamedTuple

from .. import _validate as v
from ._cache import _name, _sha

__all__ = ["dask_executor"]


# --------------------------------------------------------------------------- what the workers run


class Outcome(NamedTuple):
    """How one point ended, as sent back by :class:`_Call`.

    ``kind`` says what ``value`` holds: ``'value'`` the result; ``'pickle'`` the result's pickle,
    made in the worker; ``'raised'`` the exception the function raised; ``'unpicklable'`` the
    error from pickling the result in the worker; ``'failed'`` the exception the executor
    reported for the point (not a dead worker); ``'unsent'`` the error from submitting it.
    ``traceback`` is the worker's, when there is one.
    """

    kind: str
    value: Any
    traceback: str | None = None


_LOADED: OrderedDict = OrderedDict()


def _load_function(blob: bytes) -> Callable:
    """Unpickle a function once per worker process (a few recent ones are kept by hash)."""
    digest = _sha(blob)
    f = _LOADED.get(digest)
    if f is None:
        f = pickle.loads(blob)
        _LOADED[digest] = f
        while len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    return f


def _dumps_by_value(obj: Any) -> bytes:
    """Pickle ``obj``; functions and classes of ``__main__`` by value when cloudpickle is installed."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


class _Discard:
    """A file that drops what is written to it."""

    def write(self, data) -> int:
        return len(data)


def _out_of_band(buffer: pickle.PickleBuffer) -> None:
    return None  # None: leave the buffer (an array's data) out of the stream


def _pickles(value: Any) -> bool:
    """Whether ``value`` pickles, found without keeping the bytes or copying array data."""
    try:
        pickle.Pickler(_Discard(), protocol=5, buffer_callback=_out_of_band).dump(value)
        return True
    except Exception:
        return False


def unsendable_part(function: Callable, point: dict) -> str | None:
    """Which of the point's parameters and the function does not pickle (for error messages)."""
    for what, obj in [(f"parameter {k!r}", val) for k, val in point.items()] + [("the function", function)]:
        try:
            _dumps_by_value(obj)
        except Exception as exc:
            return f"{what} cannot be pickled ({type(exc).__name__}: {exc})"
    return None


def _sendable(exc: BaseException) -> BaseException:
    """The exception itself when it pickles, else a RuntimeError carrying its text."""
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class _Call:
    """What the workers run: ``function(**point)``, every ending sent back as an :class:`Outcome`.

    The function's own exceptions (and a ``KeyboardInterrupt`` it raises) are caught, so that they
    are told apart from a worker that died. A ``_Call`` that was pickled (a process or Dask
    worker) checks that its result pickles before returning it (a dry run that copies no array
    data): one that does not comes back as cloudpickle's bytes when cloudpickle can send it, else
    as an ``'unpicklable'`` outcome, never as a result the executor then fails to send (on which
    Dask waits forever). It pickles its function with cloudpickle when available (by value for
    ``__main__`` and local functions).
    """

    def __init__(self, function: Callable, *, remote: bool = False):
        self.function = function
        self.remote = remote
        self.__name__ = f"sweep-{_name(function).rsplit('.', 1)[-1]}"  # Dask names its tasks after it
        self._blob: bytes | None = None

    def _pickled(self) -> bytes:
        if self._blob is None:
            self._blob = _dumps_by_value(self.function)
        return self._blob

    def __reduce__(self):
        return (_Call._from_blob, (self._pickled(),))

    def __dask_tokenize__(self):
        return ("quadnet.sweep", _sha(self._pickled()))

    @staticmethod
    def _from_blob(blob: bytes) -> "_Call":
        return _Call(_load_function(blob), remote=True)

    def __call__(self, point: dict) -> Outcome:
        try:
            value = self.function(**point)
        except (Exception, KeyboardInterrupt) as exc:
            return Outcome("raised", _sendable(exc), traceback.format_exc())
        if not self.remote or _pickles(value):
            return Outcome("value", value)  # the executor sends it as it sends anything
        try:  # lambdas, local classes: what cloudpickle can do, sent as its bytes
            return Outcome("pickle", _dumps_by_value(value))
        except Exception as exc:
            return Outcome("unpicklable", _sendable(exc))


def _worker_lost(exc: BaseException) -> bool:
    """A failure of the infrastructure, not of the function: the point may be retried."""
    if isinstance(exc, (BrokenExecutor, CancelledError)):
        return True
    return type(exc).__name__ in ("KilledWorker", "CommClosedError", "FutureCancelledError")


# --------------------------------------------------------------------------- the local pool


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _single_threaded_worker() -> None:
    """Initializer of the default pool's workers: one worker per core, so numba kernels run on
    one thread each (numba reads NUMBA_NUM_THREADS when first imported, i.e. in the first task)."""
    os.environ["NUMBA_NUM_THREADS"] = "1"


def _pool_context():
    # never fork: the parent may hold threads (numba's OpenMP pool is not fork-safe)
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["quadnet"])  # workers start with numpy/quadnet imported
        return ctx
    return mp.get_context("spawn")


def _local_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_single_threaded_worker)


def _stop_pool(pool: ProcessPoolExecutor, *, kill: bool) -> None:
    """Shut down a pool this module created; ``kill`` ends its workers first (on an interrupt)."""
    if kill:
        # end the workers, then let the pool's manager thread fail the pending futures itself
        # (cancelling them first trips CPython 3.11's terminate_broken: InvalidStateError)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                proc.terminate()
            except Exception:
                pass
        pool.shutdown(wait=False)
    else:
        pool.shutdown(wait=True, cancel_futures=True)


class _Workers:
    """The executor the points go to: the caller's, or a local process pool owned here, started
    on first use and replaced by a fresh one when it (or the caller's process pool) breaks."""

    def __init__(self, given: Executor | None):
        self.given = given
        self.owned: ProcessPoolExecutor | None = None
        self.last: Executor | None = None  # the executor of the latest batch

    def get(self, pending: int) -> Executor:
        if self.given is not None and not getattr(self.given, "_broken", False):
            self.last = self.given
        elif self.owned is not None and not getattr(self.owned, "_broken", False):
            self.last = self.owned
        else:
            if self.owned is not None:
                _stop_pool(self.owned, kill=True)
            size = getattr(self.given, "_max_workers", None) or _available_cores()
            self.owned = self.last = _local_pool(max(1, min(size, pending)))
        return self.last

    def stop(self, *, kill: bool) -> None:
        if self.owned is not None:
            _stop_pool(self.owned, kill=kill)
            self.owned = None

    def close(self) -> None:
        if self.owned is not None:
            self.owned.shutdown(wait=True)
            self.owned = None


# --------------------------------------------------------------------------- scripts without a main guard


def _start_method(executor: Executor | None) -> str | None:
    """How the executor starts worker processes, or None when it starts none itself."""
    if executor is None:
        return _pool_context().get_start_method()
    if isinstance(executor, ProcessPoolExecutor):
        ctx = getattr(executor, "_mp_context", None)
        return ctx.get_start_method() if ctx is not None else mp.get_start_method()
    return None


def _tests_name(test: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(test))


def _unguarded_main_line() -> tuple[str, int] | None:
    """``(file, line)`` of the main script's running top-level statement when it is not under an
    ``if __name__ ...`` test (so that a re-import of the script runs it again); else None."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return None  # an interactive session or a notebook: nothing is re-imported
    path = os.path.realpath(path)
    frame, line = sys._getframe(1), None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and os.path.realpath(frame.f_code.co_filename) == path:
            line = frame.f_lineno  # the outermost one is the statement the script runs now
        frame = frame.f_back
    if line is None:
        return None
    try:
        with tokenize.open(path) as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and node.lineno <= line <= node.end_lineno and _tests_name(node.test):
            return None
    return path, line


_GUARD_HELP = """\
{caller}: {where} starts worker processes at import time, {how}.
Worker processes started by {method!r} import the main script again, so each of them would run
that code anew and fail. Put the lines that run the sweep under the guard (the function swept
stays at module level, where the workers import it):

    if __name__ == "__main__":
        results = qn.sweep(...)

or run the points in threads: executor=concurrent.futures.ThreadPoolExecutor()."""


# exit status of a worker that found itself importing a main script that starts workers
# (sysexits' EX_CONFIG); the pool that sees it raises the advice once, in the main process
_GUARD_EXIT = 78


def leave_if_importing_main(method: str | None, caller: str) -> None:
    """In a worker process that is importing the main script (and so runs its top-level code):
    write one line and end the worker with status ``_GUARD_EXIT``, instead of a traceback per
    worker; the process pool that sees that status raises the advice once, in the main process.

    This is reached only through a guard that :func:`refuse_unguarded_main` took for one but is
    true in workers too, such as ``if __name__ in ("__main__", "__mp_main__"):``. ``method`` is
    the start method of the processes the caller would start (None or ``'fork'``: none re-import).
    """
    if method in (None, "fork") or not getattr(mp.current_process(), "_inheriting", False):
        return
    sys.stderr.write(
        f"{caller}: worker process {os.getpid()} is importing a main script that starts worker "
        "processes again; it exits (the main process says what to do)\n"
    )
    sys.stderr.flush()
    os._exit(_GUARD_EXIT)


def refuse_unguarded_main(method: str | None, caller: str) -> None:
    """Raise RuntimeError, before any worker starts, when a main script starts worker processes
    (start ``method`` other than None or ``'fork'``) from a line outside ``if __name__ ...``."""
    if method in (None, "fork"):
        return
    found = _unguarded_main_line()
    if found is not None:
        where = f"{found[0]}, line {found[1]},"
        how = 'outside `if __name__ == "__main__":`'
        raise RuntimeError(_GUARD_HELP.format(caller=caller, where=where, how=how, method=method))


def _exited_on_guard(pool: Executor | None) -> bool:
    """Whether a worker of this process pool ended with ``_GUARD_EXIT``."""
    processes = getattr(pool, "_processes", None) or {}
    return any(getattr(p, "exitcode", None) == _GUARD_EXIT for p in list(processes.values()))


def _raise_guard_exit(pool: Executor) -> None:
    method = _start_method(pool)
    where = getattr(sys.modules.get("__main__"), "__file__", None) or "the main script"
    how = 'under a test that is true in worker processes too, not `if __name__ == "__main__":`'
    raise RuntimeError(_GUARD_HELP.format(caller="quadnet.sweep", where=where, how=how, method=method))


# --------------------------------------------------------------------------- running points, with retries


class PointLost(Exception):
    """A point's worker died more than ``retries`` times (converted to a SweepError by sweep)."""

    def __init__(self, index: int, attempts: int, retries: int, cause: BaseException | None):
        super().__init__(index, attempts, retries, cause)
        self.index, self.attempts, self.retries, self.cause = index, attempts, retries, cause


class PointRunner:
    """Runs grid points on an executor and yields their outcomes, resubmitting the points lost to
    a dying worker up to ``retries`` times each.

    A point lost ``retries`` times already gets its last try alone (one at a time), so that a
    point which kills its worker is told apart from those it took down with it.
    """

    def __init__(self, executor: Executor | None, function: Callable, points: list[dict], retries: int):
        self.workers = _Workers(executor)
        self.call = _Call(function)
        self.points, self.retries = points, retries
        self.attempts: Counter = Counter()  # times each point was lost to a dying worker
        self.retried = 0  # resubmissions
        self.futures: dict = {}
        self.last_loss: BaseException | None = None

    def run(self, todo: list[int]) -> Iterator[tuple[int, Outcome]]:
        """Yield ``(index, outcome)`` for the points ``todo``, as they finish.

        Raises :class:`PointLost` when a point's worker died more than ``retries`` times, and
        RuntimeError (before starting anything) for an unguarded main script.
        """
        if todo:
            refuse_unguarded_main(_start_method(self.workers.given), "quadnet.sweep")
        while todo:
            alone = [i for i in todo if self.retries and self.attempts[i] >= self.retries]
            batches = [[i for i in todo if i not in alone]] if len(alone) < len(todo) else []
            lost: list[int] = []
            for batch in batches + [[i] for i in alone]:
                lost += yield from self._batch(batch)
                if lost and _exited_on_guard(self.workers.last):
                    _raise_guard_exit(self.workers.last)
            self.attempts.update(lost)
            dead = [i for i in lost if self.attempts[i] > self.retries]
            if dead:
                raise PointLost(dead[0], self.attempts[dead[0]], self.retries, self.last_loss)
            todo = sorted(set(lost))
            self.retried += len(todo)

    def _batch(self, indices: list[int]):
        """Submit these points, yield their outcomes; return the ones lost to a dying worker."""
        ex = self.workers.get(len(indices))
        self.futures = {}
        lost: list[int] = []
        for j, i in enumerate(indices):
            try:
                self.futures[ex.submit(self.call, self.points[i])] = i
            except BrokenExecutor as exc:
                lost.extend(indices[j:])
                self.last_loss = exc
                break
            except Exception as exc:  # the function or the point cannot be sent (Dask pickles here)
                yield i, Outcome("unsent", exc, None)
        for fut in as_completed(self.futures):
            i = self.futures[fut]
            try:
                out = fut.result()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - sorted here
                if _worker_lost(exc):
                    lost.append(i)
                    self.last_loss = exc
                    continue
                out = Outcome("failed", exc, None)  # e.g. a point the process pool could not pickle
            yield i, out
        return lost

    def finish_running(self) -> list[tuple[int, Outcome]]:
        """After a failure: cancel the points not started, let the own pool's running points
        finish, and return the outcomes of every point of the batch that finished by then."""
        for fut in self.futures:
            fut.cancel()
        self.workers.stop(kill=False)
        return [
            (i, fut.result())
            for fut, i in self.futures.items()
            if fut.done() and not fut.cancelled() and fut.exception() is None
        ]

    def abort(self) -> None:
        """On an interrupt or a fatal error: end the own pool's workers, or cancel what has not
        started on the caller's executor."""
        if self.workers.owned is not None:
            self.workers.stop(kill=True)
        else:
            for fut in self.futures:
                fut.cancel()

    def close(self) -> None:
        self.workers.close()


# --------------------------------------------------------------------------- Dask


def _local_cluster_options(n_workers, threads_per_worker, env, cluster_kwargs) -> dict:
    n_workers = v.integer("n_workers", n_workers if n_workers is not None else _available_cores())
    threads_per_worker = v.integer("threads_per_worker", threads_per_worker)
    options = dict(processes=True, dashboard_address=None, silence_logs=logging.ERROR)
    options.update(cluster_kwargs)
    options.update(n_workers=n_workers, threads_per_worker=threads_per_worker)
    if options["processes"]:  # an in-process cluster talks over inproc:// and has no environment of its own
        options.setdefault("host", "127.0.0.1")
        options["env"] = {"NUMBA_NUM_THREADS": str(threads_per_worker), **(env or {})}
    elif env:
        raise ValueError("env= applies to worker processes; an in-process cluster (processes=False) has none")
    return options


def _dask_start_method() -> str:
    try:
        import dask

        return dask.config.get("distributed.worker.multiprocessing-method", "spawn")
    except Exception:
        return "spawn"


@contextlib.contextmanager
def dask_executor(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    env: dict | None = None,
    **cluster_kwargs: Any,
):
    """A Dask cluster's executor for :func:`quadnet.sweep`, closed on exit (needs ``distributed``).

    With an ``address``, connects to a running cluster: the scale-out path (start
    ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on the machines, with quadnet
    installed there). Without one, starts a local cluster: worker processes on 127.0.0.1, no
    dashboard, quiet logs, and ``NUMBA_NUM_THREADS`` set to ``threads_per_worker`` in the
    workers (numba's parallel kernels would otherwise use every core in every worker).

    Parameters
    ----------
    address : str or None
        A scheduler address such as ``'tcp://scheduler:8786'``; None starts a local cluster.
    n_workers : int ≥ 1 or None
        Local cluster only: worker processes (None: one per available core).
    threads_per_worker : int ≥ 1
        Local cluster only: threads in each worker.
    env : dict or None
        Local cluster only: environment variables for the workers (override
        ``NUMBA_NUM_THREADS``).
    **cluster_kwargs
        Local cluster only: passed on to ``distributed.LocalCluster`` (e.g. ``processes=False``
        for an in-process cluster of threads).

    Yields
    ------
    concurrent.futures.Executor
        ``client.get_executor()`` of the cluster's client.

    Raises
    ------
    ImportError
        ``distributed`` is not installed.
    TypeError, ValueError
        A bad ``address``, ``n_workers`` or ``threads_per_worker``, or local-cluster options
        given with an ``address``.
    RuntimeError
        A local cluster of processes started at import time by a script, outside
        ``if __name__ == "__main__":`` (its workers would import the script again).

    Examples
    --------
    An in-process cluster (threads), as a quick check that the plumbing works:

    >>> import quadnet as qn
    >>> def double(x):
    ...     return 2 * x
    >>> with qn.dask_executor(n_workers=1, processes=False) as ex:
    ...     out = qn.sweep(double, {"x": [1, 2, 3]}, executor=ex, cache=False, progress=False)
    >>> list(out)
    [2, 4, 6]

    The same by hand, on a running cluster::

        from distributed import Client
        with Client("tcp://scheduler:8786") as client:
            results = qn.sweep(f, grid, executor=client.get_executor())
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # not a dependency of quadnet: pip install distributed
        raise ImportError("dask_executor needs dask.distributed (pip install distributed)") from exc
    if address is not None:
        if not isinstance(address, str):
            raise TypeError(f"address must be a scheduler address like 'tcp://host:8786', got {address!r}")
        if n_workers is not None or cluster_kwargs:
            raise ValueError("n_workers and cluster options apply to a local cluster, not to address=")
        with Client(address) as client:
            yield client.get_executor()
        return
    options = _local_cluster_options(n_workers, threads_per_worker, env, cluster_kwargs)
    if options["processes"]:
        leave_if_importing_main(_dask_start_method(), "quadnet.dask_executor")
        refuse_unguarded_main(_dask_start_method(), "quadnet.dask_executor")
    with LocalCluster(**options) as cluster, Client(cluster) as client:
        yield client.get_executor()
