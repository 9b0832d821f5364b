"""Parameter sweeps: one pure function over a grid of keyword arguments, on any executor, with a
resumable on-disk cache.

    def escape(N, seed):                         # a pure function of its keyword arguments
        ...
        return escape_times                      # anything picklable

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
hold threads (numba's OpenMP pool is not fork-safe). Any ``concurrent.futures.Executor`` works:
a ``ThreadPoolExecutor`` for functions that release the GIL, your own ``ProcessPoolExecutor``,
or a Dask cluster, the documented way to scale out::

    from distributed import Client
    client = Client("tcp://scheduler:8786")          # a running Dask scheduler
    results = qn.sweep(escape, grid, executor=client.get_executor())

:func:`dask_executor` does the same as a context manager, and starts a local cluster when no
address is given. Functions defined in a notebook or script (``__main__``) travel by value
(cloudpickle, which Dask installs); importable ones by reference, so workers must be able to
import them. The default pool's workers set ``NUMBA_NUM_THREADS=1`` (one worker per core).

On-disk cache
-------------
Each finished point is written at once to its own file, so an interrupted sweep (Ctrl-C, a
crash, a point that raises) keeps what finished and a rerun computes only what is missing. The
key is the function (module and qualified name, plus a hash of its source, or the string in the
function's attribute ``cache_version`` when it declares one), the point's parameters as
canonical JSON (NumPy scalars as numbers, arrays by dtype, shape and a hash of their bytes), and
``quadnet.__version__``. Only the function's own source is hashed: when a helper it calls
changes, set or bump ``cache_version`` (or clear the cache). Entries are pickles behind a
header with their length and SHA-256 and are written atomically (temporary file, then
``os.replace``): a truncated, garbled or unreadable entry is detected, deleted, recomputed and
overwritten, never returned. Pickles run code when loaded: point the cache only at directories
you trust. Location: ``cache=`` (a path or a :class:`Cache`), else ``$QUADNET_CACHE_DIR``, else
the user cache directory (``platformdirs.user_cache_dir("quadnet")/sweeps``, e.g.
``~/.cache/quadnet/sweeps``); ``cache=False`` turns it off.

Faults
------
A worker that dies (a killed process: ``BrokenProcessPool``; Dask's ``KilledWorker``) loses the
points it and its pool held; they are resubmitted, on a fresh local pool when the pool broke, up
to ``retries`` times each. An exception raised by the function itself is not retried: the sweep
stops, keeps what finished, and raises :class:`SweepError` naming the grid point (the original
exception is its ``__cause__``, the worker's traceback is in the message).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import marshal
import multiprocessing as mp
import os
import pickle
import re
import tempfile
import time
import traceback
import warnings
from collections import OrderedDict
from concurrent.futures import BrokenExecutor, CancelledError, Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import _validate as v
from .backend import to_numpy

__all__ = ["sweep", "grid_points", "Cache", "SweepError", "SweepResults", "SweepStats", "default_cache_dir",
           "dask_executor"]

_MAGIC = b"quadnet-sweep-cache 1\n"


# --------------------------------------------------------------------------- grid


def _is_axis(value: Any) -> bool:
    if isinstance(value, (list, tuple, range)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 1


def grid_points(grid: Any) -> list[dict]:
    """The grid as a list of keyword dicts, in sweep order (see the module docstring)."""
    if isinstance(grid, dict):
        for key in grid:
            if not isinstance(key, str) or not key.isidentifier():
                raise TypeError(f"grid keys must be keyword names (str identifiers), got {key!r}")
        axes = [(k, list(val) if _is_axis(val) else [val]) for k, val in grid.items()]
        for key, values in axes:
            if isinstance(grid[key], np.ndarray) and grid[key].ndim != 1:
                raise ValueError(f"grid[{key!r}]: an array of values must be 1-d, got shape {grid[key].shape}")
        points = [{}]
        for key, values in axes:
            points = [{**pt, key: val} for pt in points for val in values]
        return points if axes else []
    if isinstance(grid, (list, tuple)):
        points = []
        for i, pt in enumerate(grid):
            if not isinstance(pt, dict):
                raise TypeError(f"grid must be a list of keyword dicts or a dict of lists; grid[{i}] is {type(pt).__name__}")
            for key in pt:
                if not isinstance(key, str) or not key.isidentifier():
                    raise TypeError(f"grid[{i}]: keys must be keyword names (str identifiers), got {key!r}")
            points.append(dict(pt))
        return points
    raise TypeError(f"grid must be a list of keyword dicts or a dict of lists, got {type(grid).__name__}")


# --------------------------------------------------------------------------- cache keys


def _canonical(x: Any, where: str) -> Any:
    """A JSON-able, deterministic form of ``x`` for cache keys."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if np.isfinite(x) else {"__float__": repr(x)}
    if isinstance(x, complex):
        return {"__complex__": [_canonical(x.real, where), _canonical(x.imag, where)]}
    if isinstance(x, np.generic):
        if x.dtype.kind in "biufc":
            return _canonical(x.item(), where)
        if x.dtype.kind in "US":
            return str(x)
    if type(x).__module__.startswith("cupy"):
        x = to_numpy(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufcUS":
            raise TypeError(f"{where}: cannot key the cache on an array of dtype {x.dtype}")
        data = np.ascontiguousarray(x)
        return {"__ndarray__": data.dtype.str, "shape": list(data.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(x, tuple):
        return {"__tuple__": [_canonical(item, f"{where}[{i}]") for i, item in enumerate(x)]}
    if isinstance(x, list):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(x)]
    if isinstance(x, range):
        return {"__range__": [x.start, x.stop, x.step]}
    if isinstance(x, dict):
        out = {}
        for key, val in x.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: cannot key the cache on a dict with the non-string key {key!r}")
            out[key] = _canonical(val, f"{where}[{key!r}]")
        return out
    if isinstance(x, (set, frozenset)):
        items = sorted(json.dumps(_canonical(i, where), sort_keys=True) for i in x)
        return {"__set__": items}
    if isinstance(x, os.PathLike):
        return {"__path__": os.fspath(x)}
    if isinstance(x, np.random.SeedSequence):
        return {"__seedsequence__": [_canonical(x.entropy, where), list(x.spawn_key), x.pool_size]}
    if is_dataclass(x) and not isinstance(x, type):
        return {"__dataclass__": f"{type(x).__module__}.{type(x).__qualname__}",
                "fields": {f.name: _canonical(getattr(x, f.name), f"{where}.{f.name}") for f in fields(x)}}
    raise TypeError(
        f"{where}: cannot key the cache on a {type(x).__name__}; use numbers, strings, lists, tuples, dicts, "
        "NumPy arrays or SeedSequences as parameters, or pass cache=False"
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _unwrap(function: Callable) -> tuple[Callable, list]:
    """The callable under any functools.partial layers, and their bound arguments."""
    bound = []
    f = function
    while isinstance(f, functools.partial):
        bound.append({"args": _canonical(list(f.args), "partial args"),
                      "keywords": _canonical(dict(f.keywords), "partial keywords")})
        f = f.func
    return f, bound


def _name(function: Callable) -> str:
    f, _ = _unwrap(function)
    target = f if hasattr(f, "__qualname__") else type(f)
    return f"{getattr(target, '__module__', '?')}.{target.__qualname__}"


def _function_identity(function: Callable) -> dict:
    """Name, code (source hash or declared ``cache_version``) and bound partial arguments."""
    f, bound = _unwrap(function)
    version = getattr(function, "cache_version", None)
    if version is None:
        version = getattr(f, "cache_version", None)
    ident = {"function": _name(function), "partial": bound}
    if version is not None:
        ident["version"] = str(version)
        return ident
    target = f if (inspect.isfunction(f) or inspect.ismethod(f)) else type(f)
    code = getattr(f, "__code__", None)
    if code is not None and code.co_name == "<lambda>":
        # the source of a lambda is its whole line, which may hold several: add its bytecode
        consts = [c for c in code.co_consts if not inspect.iscode(c)]
        ident["lambda"] = _sha(code.co_code + repr((code.co_names, code.co_varnames, consts)).encode())
    try:
        ident["source"] = _sha(inspect.getsource(target))
        return ident
    except (OSError, TypeError):
        pass
    if code is None:
        raise TypeError(
            f"sweep: cannot identify {_name(function)} for the cache (no source, no code object); declare "
            "function.cache_version = '1' (and bump it when the function changes), or pass cache=False"
        )
    ident["code"] = _sha(marshal.dumps(code))
    return ident


def default_cache_dir() -> Path:
    """``$QUADNET_CACHE_DIR`` if set, else ``<user cache dir>/quadnet/sweeps`` (platformdirs when
    installed, else ``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    env = os.environ.get("QUADNET_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("quadnet", appauthor=False)) / "sweeps"
    except Exception:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "quadnet" / "sweeps"


class Cache:
    """An on-disk cache of sweep results: one file per (function, parameters, quadnet version).

    ``Cache(path)`` keeps its entries under ``path`` (created on first write); ``Cache()`` uses
    :func:`default_cache_dir`. Entries live in one folder per function
    (``<module>.<qualname>-<hash>/<key>.pkl``), so ``clear(function)`` drops one function's
    results. See the module docstring for the key and the file format.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            path = default_cache_dir()
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"cache path must be a str or os.PathLike, got {type(path).__name__}")
        if not os.fspath(path):
            raise ValueError("cache path must not be empty")
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"

    # keys -----------------------------------------------------------------
    def _folder(self, ident: dict) -> str:
        from . import __version__

        safe = re.sub(r"[^A-Za-z0-9._-]", "_", ident["function"])[:80]
        return f"{safe}-{_sha(_dumps([ident, __version__]))[:12]}"

    def key(self, function: Callable, params: dict) -> str:
        """The cache key of ``function(**params)``: ``'<function folder>/<sha256>'``."""
        return self._keys(function, [params])[0]

    def _keys(self, function: Callable, points: list[dict]) -> list[str]:
        from . import __version__

        ident = _function_identity(function)
        folder = self._folder(ident)
        head = _dumps(ident)
        keys = []
        for i, pt in enumerate(points):
            params = _dumps(_canonical(pt, f"grid point {i}"))
            keys.append(f"{folder}/{_sha(head + chr(0) + params + chr(0) + __version__)}")
        return keys

    def entry(self, key: str) -> Path:
        """Path of the file holding ``key``."""
        return self.path / f"{key}.pkl"

    # reading and writing -----------------------------------------------------
    def lookup(self, key: str) -> tuple[str, Any]:
        """``('hit', value)``, ``('missing', None)``, or ``('corrupt', None)`` for an entry that
        fails its length/checksum/unpickling checks (the file is then deleted)."""
        path = self.entry(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return "missing", None
        except OSError:
            return "corrupt", None
        try:
            return "hit", _decode(data, key)
        except Exception:
            try:
                path.unlink()
            except OSError:
                pass
            return "corrupt", None

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default`` when missing or corrupt."""
        status, value = self.lookup(key)
        return value if status == "hit" else default

    def put(self, key: str, value: Any) -> Path:
        """Write ``value`` under ``key`` atomically (temporary file in the same folder, fsync,
        ``os.replace``): readers see the old entry or the new one, never a partial file."""
        data = _encode(key, value)
        path = self.entry(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def clear(self, function: Callable | None = None) -> int:
        """Delete every entry (or only ``function``'s); returns the number of files removed."""
        root = self.path if function is None else self.path / self._folder(_function_identity(function))
        if not root.exists():
            return 0
        n = 0
        for f in sorted(root.rglob("*"), reverse=True):
            if f.is_file() and (f.suffix == ".pkl" or f.name.startswith(".tmp-")):
                f.unlink()
                n += 1
            elif f.is_dir() and not any(f.iterdir()):
                f.rmdir()
        return n


def _encode(key: str, value: Any) -> bytes:
    payload = pickle.dumps({"key": key, "value": value}, protocol=pickle.HIGHEST_PROTOCOL)
    return _MAGIC + f"{len(payload)} {_sha(payload)}\n".encode() + payload


def _decode(data: bytes, key: str) -> Any:
    if not data.startswith(_MAGIC):
        raise ValueError("not a quadnet cache entry")
    end = data.index(b"\n", len(_MAGIC))
    size, digest = data[len(_MAGIC):end].split()
    payload = data[end + 1:]
    if len(payload) != int(size) or _sha(payload) != digest.decode():
        raise ValueError("length or checksum mismatch")
    obj = pickle.loads(payload)
    if not isinstance(obj, dict) or obj.get("key") != key:
        raise ValueError("entry holds another key")
    return obj["value"]


def _resolve_cache(cache: Any) -> Cache | None:
    if cache is False:
        return None
    if cache is None or cache is True:
        return Cache()
    if isinstance(cache, Cache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return Cache(cache)
    raise TypeError(f"cache must be None, True, False, a path or a quadnet.Cache, got {type(cache).__name__}")


# --------------------------------------------------------------------------- running


class SweepError(RuntimeError):
    """A grid point failed: the function raised, or its worker kept dying past ``retries``.

    Attributes: ``index`` and ``point`` (the grid point), ``saved`` (points in the cache when
    it was raised). The original exception is ``__cause__``.
    """

    def __init__(self, message: str, *, index: int, point: dict, saved: int):
        super().__init__(message)
        self.index, self.point, self.saved = index, point, saved


@dataclass(frozen=True)
class SweepStats:
    """What a sweep did: ``points`` in the grid, ``cached`` (read from the cache), ``computed``
    (run now), ``corrupt`` (cache entries found damaged, recomputed), ``retried`` (resubmissions
    after a worker died), ``lost`` (points given up: always 0 when a result is returned),
    ``seconds`` (wall time)."""

    points: int
    cached: int
    computed: int
    corrupt: int
    retried: int
    lost: int
    seconds: float


class SweepResults(list):
    """The results in grid order (a plain list), with ``stats`` (:class:`SweepStats`) and
    ``points`` (the grid points, same order)."""

    def __init__(self, items: Iterable, points: list[dict], stats: SweepStats):
        super().__init__(items)
        self.points = points
        self.stats = stats


_LOADED: OrderedDict = OrderedDict()


def _load_function(blob: bytes) -> Callable:
    digest = _sha(blob)
    f = _LOADED.get(digest)
    if f is None:
        f = pickle.loads(blob)
        _LOADED[digest] = f
        while len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    return f


class _Call:
    """What the workers run: ``function(**point)``, with the function's own exceptions caught and
    sent back as data (so they are told apart from a worker that died). Pickles its function with
    cloudpickle when available (by value for ``__main__``/local functions)."""

    def __init__(self, function: Callable):
        self.function = function
        self.__name__ = f"sweep-{_name(function).rsplit('.', 1)[-1]}"  # Dask names its tasks after it
        self._blob: bytes | None = None

    def _pickled(self) -> bytes:
        if self._blob is None:
            try:
                import cloudpickle

                self._blob = cloudpickle.dumps(self.function)
            except ImportError:
                self._blob = pickle.dumps(self.function)
        return self._blob

    def __reduce__(self):
        return (_Call._from_blob, (self._pickled(),))

    def __dask_tokenize__(self):
        return ("quadnet.sweep", _sha(self._pickled()))

    @staticmethod
    def _from_blob(blob: bytes) -> "_Call":
        return _Call(_load_function(blob))

    def __call__(self, point: dict) -> tuple:
        try:
            return True, self.function(**point)
        except Exception as exc:
            tb = traceback.format_exc()
            try:
                pickle.dumps(exc)
            except Exception:
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            return False, exc, tb


def _worker_lost(exc: BaseException) -> bool:
    """A failure of the infrastructure, not of the function: the point may be retried."""
    if isinstance(exc, (BrokenExecutor, CancelledError)):
        return True
    return type(exc).__name__ in ("KilledWorker", "CommClosedError", "FutureCancelledError")


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _single_threaded_worker() -> None:
    """Initializer of the default pool's workers: one worker per core, so numba kernels run on
    one thread each (numba reads NUMBA_NUM_THREADS when first imported, i.e. in the first task)."""
    os.environ["NUMBA_NUM_THREADS"] = "1"


def _local_pool(workers: int) -> ProcessPoolExecutor:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["quadnet"])  # workers start with numpy/quadnet imported
    else:
        ctx = mp.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_single_threaded_worker)


@contextlib.contextmanager
def dask_executor(address: str | None = None, *, n_workers: int | None = None, threads_per_worker: int = 1,
                  env: dict | None = None, **cluster_kwargs: Any):
    """A Dask cluster's executor for :func:`sweep`, closed on exit (needs ``distributed``).

    ``dask_executor("tcp://scheduler:8786")`` connects to a running cluster (the scale-out path:
    start ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on the machines, with this
    package installed). ``dask_executor(n_workers=2)`` starts a local cluster instead: worker
    processes on 127.0.0.1, ``threads_per_worker`` threads each, no dashboard, quiet logs, and
    ``NUMBA_NUM_THREADS=1`` in the workers unless ``env`` says otherwise (numba's parallel kernels
    would otherwise use every core in every worker); ``cluster_kwargs`` go to ``LocalCluster``.
    Yields ``client.get_executor()``. Equivalent by hand::

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
    n_workers = v.integer("n_workers", n_workers if n_workers is not None else _available_cores())
    threads_per_worker = v.integer("threads_per_worker", threads_per_worker)
    options = dict(processes=True, host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
    options.update(cluster_kwargs)
    worker_env = {"NUMBA_NUM_THREADS": str(threads_per_worker)}
    worker_env.update(env or {})
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, env=worker_env,
                      **options) as cluster, Client(cluster) as client:
        yield client.get_executor()


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


def sweep(function: Callable, grid: Any, *, executor: Executor | None = None, cache: Any = None,
          retries: int = 2, progress: bool = True) -> SweepResults:
    """Run ``function(**point)`` for every point of ``grid``; return the results in grid order.

    Parameters
    ----------
    function : callable
        A pure function of keyword arguments (same arguments, same result); its result must be
        picklable. Picklable itself for process and Dask executors (module-level functions,
        ``functools.partial`` of them; notebook functions travel by value through cloudpickle).
    grid : list of dict, or dict of lists
        The points (see :func:`grid_points` and the module docstring for the order).
    executor : concurrent.futures.Executor or None
        Where to run. None: a local process pool with one worker per available core, created and
        shut down here. A Dask cluster: ``distributed.Client(address).get_executor()``.
    cache : None, True, False, str, os.PathLike or Cache
        None/True: :func:`default_cache_dir` (``$QUADNET_CACHE_DIR`` or the user cache
        directory); a path or :class:`Cache`: there; False: no cache.
    retries : int ≥ 0
        How many times a point lost to a dying worker is resubmitted (on a fresh pool when a
        process pool broke). The function's own exceptions are never retried.
    progress : bool
        A tqdm progress bar over the points (cached points count as done).

    Returns
    -------
    SweepResults : a list of the results in grid order, with ``.stats`` (:class:`SweepStats`)
    and ``.points``.

    Raises
    ------
    SweepError
        The function raised at a grid point (re-raised with the point, after saving what
        finished), or a point's worker died more than ``retries`` times.
    KeyboardInterrupt
        Passed on after cancelling what had not started; finished points stay in the cache.
    TypeError, ValueError
        Invalid arguments, or parameters that cannot be keyed for the cache.
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
    store = _resolve_cache(cache)
    t0 = time.perf_counter()
    n = len(points)
    keys = store._keys(function, points) if store is not None else None
    results: list = [None] * n
    done = [False] * n
    counts = dict(cached=0, computed=0, corrupt=0, retried=0)
    if store is not None:
        for i, key in enumerate(keys):
            status, value = store.lookup(key)
            if status == "hit":
                results[i], done[i] = value, True
                counts["cached"] += 1
            elif status == "corrupt":
                counts["corrupt"] += 1
    todo = [i for i in range(n) if not done[i]]
    name = _name(function)

    bar = None
    if progress and n:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=counts["cached"], desc=f"sweep {name.rsplit('.', 1)[-1]}", unit="point")
    cache_warned = False

    def record(i: int, value: Any) -> None:
        nonlocal cache_warned
        results[i], done[i] = value, True
        counts["computed"] += 1
        if store is not None:
            try:
                store.put(keys[i], value)
            except (pickle.PicklingError, TypeError, AttributeError, OSError) as exc:
                if not cache_warned:
                    warnings.warn(f"sweep: result of grid point {i} not cached: {exc}", RuntimeWarning, stacklevel=3)
                    cache_warned = True
        if bar is not None:
            bar.update(1)

    def saved() -> int:
        return sum(done) if store is not None else 0

    def kept() -> str:
        if store is None:
            return "the cache is off (cache=False): nothing was kept"
        return f"{saved()} of {n} points are in the cache ({store.path}); rerunning the sweep computes only the rest"

    def point_error(i: int, exc: BaseException, tb: str | None) -> SweepError:
        msg = f"sweep: {name} raised {type(exc).__name__} at grid point {i} {points[i]!r}: {exc}\n{kept()}"
        if tb:
            msg += f"\n--- traceback on the worker ---\n{tb.rstrip()}"
        return SweepError(msg, index=i, point=points[i], saved=saved())

    call = _Call(function)
    attempts = {i: 0 for i in todo}  # times each point was lost to a dying worker
    state: dict = dict(owned=None, futures={}, last_loss=None)

    def executor_now() -> Executor:
        ex = executor
        if ex is None or getattr(ex, "_broken", False):
            ex = state["owned"]
            if ex is None or getattr(ex, "_broken", False):
                # no executor given, or a (given or own) process pool broke: a fresh local pool
                if ex is not None:
                    _stop_pool(ex, kill=True)
                size = getattr(executor, "_max_workers", None) or _available_cores()
                ex = state["owned"] = _local_pool(max(1, min(size, len(todo))))
        return ex

    def run(indices: list[int]) -> list[int]:
        """Run these points; record the results; return the ones lost to a dying worker. The
        function's own exception stops everything: save what finished, raise SweepError."""
        ex = executor_now()
        futures = state["futures"] = {}
        lost: list[int] = []
        for j, i in enumerate(indices):
            try:
                futures[ex.submit(call, points[i])] = i
            except BrokenExecutor as exc:
                lost.extend(indices[j:])
                state["last_loss"] = exc
                break
        failure = None
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                out = fut.result()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - sorted below
                if _worker_lost(exc):
                    lost.append(i)
                    state["last_loss"] = exc
                    continue
                failure = (i, exc, None)
                break
            if out[0]:
                record(i, out[1])
            else:
                failure = (i, out[1], out[2])
                break
        if failure is not None:
            for fut in futures:
                fut.cancel()
            if state["owned"] is not None:
                _stop_pool(state["owned"], kill=False)  # the running points finish
                state["owned"] = None
            for fut, i in futures.items():  # keep whatever finished meanwhile
                if not done[i] and fut.done() and not fut.cancelled() and fut.exception() is None:
                    out = fut.result()
                    if out[0]:
                        record(i, out[1])
            i, exc, tb = failure
            raise point_error(i, exc, tb) from exc
        return lost

    try:
        while todo:
            # A point lost `retries` times already gets its last try alone (one at a time), so
            # that a point which kills its worker is told apart from those it took down with it.
            last = [i for i in todo if retries and attempts[i] >= retries]
            lost = run([i for i in todo if not (retries and attempts[i] >= retries)]) if len(last) < len(todo) else []
            for i in last:
                lost += run([i])
            for i in lost:
                attempts[i] += 1
            dead = [i for i in lost if attempts[i] > retries]
            if dead:
                i, exc = dead[0], state["last_loss"]
                msg = (f"sweep: grid point {i} {points[i]!r} of {name} was lost {attempts[i]} time(s) to a worker that "
                       f"died ({type(exc).__name__}: {exc}); retries={retries} exhausted\n{kept()}")
                raise SweepError(msg, index=i, point=points[i], saved=saved()) from exc
            todo = sorted(set(lost))
            counts["retried"] += len(todo)
    except BaseException:
        if state["owned"] is not None:
            _stop_pool(state["owned"], kill=True)
            state["owned"] = None
        else:
            for fut in state["futures"]:
                fut.cancel()
        raise
    finally:
        if state["owned"] is not None:
            state["owned"].shutdown(wait=True)
        if bar is not None:
            bar.close()

    stats = SweepStats(points=n, lost=0, seconds=time.perf_counter() - t0, **counts)
    return SweepResults(results, points, stats)
