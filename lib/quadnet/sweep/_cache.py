"""The on-disk cache of :func:`quadnet.sweep`: one checksummed, atomically written file per
(function, grid point, package version), so that an interrupted sweep resumes where it stopped.

Keys
----
A key is the function (module and qualified name, plus a hash of its source, or the string in the
function's attribute ``cache_version`` when it declares one; ``functools.partial`` layers add
their bound arguments), the point's parameters as canonical JSON (NumPy scalars as numbers,
arrays by dtype, shape and a hash of their bytes), and ``quadnet.__version__``. Only the
function's own source is hashed: when a helper it calls changes, set or bump ``cache_version``
(or clear the cache).

Entries
-------
``<module>.<qualname>-<hash>/<sha256>.pkl``: a magic line, then the payload's length and SHA-256,
then the pickle of ``{"key": key, "value": value}``. Writes go to a temporary file in the same
folder, are fsynced and moved into place with ``os.replace``, so a reader sees the old entry or
the new one, never a partial file. A truncated, garbled, swapped or unreadable entry fails its
checks, is deleted and reported as ``"corrupt"``: the sweep recomputes it, it is never returned.
Pickles run code when loaded: point the cache only at directories you trust.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import marshal
import os
import pickle
import re
import tempfile
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..backend import to_numpy

__all__ = ["Cache", "default_cache_dir"]

_MAGIC = b"quadnet-sweep-cache 1\n"


# --------------------------------------------------------------------------- canonical parameters


def _canonical_array(x: np.ndarray, where: str) -> dict:
    if x.dtype.kind not in "biufcUS":
        raise TypeError(f"{where}: cannot key the cache on an array of dtype {x.dtype}")
    data = np.ascontiguousarray(x)
    return {
        "__ndarray__": data.dtype.str,
        "shape": list(data.shape),
        "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
    }


def _canonical_dict(x: dict, where: str) -> dict:
    out = {}
    for key, val in x.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: cannot key the cache on a dict with the non-string key {key!r}")
        out[key] = _canonical(val, f"{where}[{key!r}]")
    return out


def _canonical(x: Any, where: str) -> Any:
    """A JSON-able, deterministic form of ``x`` for cache keys; ``where`` names it in errors."""
    if x is None or isinstance(x, (bool, str, int)):
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
        return _canonical_array(x, where)
    if isinstance(x, tuple):
        return {"__tuple__": [_canonical(item, f"{where}[{i}]") for i, item in enumerate(x)]}
    if isinstance(x, list):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(x)]
    if isinstance(x, range):
        return {"__range__": [x.start, x.stop, x.step]}
    if isinstance(x, dict):
        return _canonical_dict(x, where)
    if isinstance(x, (set, frozenset)):
        return {"__set__": sorted(json.dumps(_canonical(i, where), sort_keys=True) for i in x)}
    if isinstance(x, os.PathLike):
        return {"__path__": os.fspath(x)}
    if isinstance(x, np.random.SeedSequence):
        return {"__seedsequence__": [_canonical(x.entropy, where), list(x.spawn_key), x.pool_size]}
    if is_dataclass(x) and not isinstance(x, type):
        return {
            "__dataclass__": f"{type(x).__module__}.{type(x).__qualname__}",
            "fields": {f.name: _canonical(getattr(x, f.name), f"{where}.{f.name}") for f in fields(x)},
        }
    raise TypeError(
        f"{where}: cannot key the cache on a {type(x).__name__}; use numbers, strings, lists, tuples, dicts, "
        "NumPy arrays or SeedSequences as parameters, or pass cache=False"
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# --------------------------------------------------------------------------- function identity


def _unwrap(function: Callable) -> tuple[Callable, list]:
    """The callable under any functools.partial layers, and their bound arguments."""
    bound = []
    f = function
    while isinstance(f, functools.partial):
        bound.append(
            {
                "args": _canonical(list(f.args), "partial args"),
                "keywords": _canonical(dict(f.keywords), "partial keywords"),
            }
        )
        f = f.func
    return f, bound


def _name(function: Callable) -> str:
    """``module.qualname`` of the function (under any partial layers) or of its class."""
    f, _ = _unwrap(function)
    target = f if hasattr(f, "__qualname__") else type(f)
    return f"{getattr(target, '__module__', '?')}.{target.__qualname__}"


def _lambda_code(code) -> str:
    # the source of a lambda is its whole line, which may hold several: its bytecode tells them apart
    consts = [c for c in code.co_consts if not inspect.iscode(c)]
    return _sha(code.co_code + repr((code.co_names, code.co_varnames, consts)).encode())


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
        ident["lambda"] = _lambda_code(code)
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


def _package_version() -> str:
    from .. import __version__  # read at call time: the version is part of every key

    return __version__


# --------------------------------------------------------------------------- the cache


def default_cache_dir() -> Path:
    """Where :func:`quadnet.sweep` keeps its results when no ``cache=`` is given.

    Returns
    -------
    pathlib.Path
        ``$QUADNET_CACHE_DIR`` when set, else ``<user cache dir>/quadnet/sweeps`` from
        platformdirs (e.g. ``~/.cache/quadnet/sweeps`` on Linux), else
        ``$XDG_CACHE_HOME/quadnet/sweeps`` or ``~/.cache/quadnet/sweeps``. Not created here.

    Examples
    --------
    >>> import os, quadnet as qn
    >>> saved = os.environ.pop("QUADNET_CACHE_DIR", None)
    >>> qn.default_cache_dir().name
    'sweeps'
    >>> os.environ["QUADNET_CACHE_DIR"] = "/scratch/sweeps"
    >>> qn.default_cache_dir().as_posix()
    '/scratch/sweeps'
    >>> del os.environ["QUADNET_CACHE_DIR"]
    >>> if saved is not None:
    ...     os.environ["QUADNET_CACHE_DIR"] = saved
    """
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

    Entries live in one folder per function (``<module>.<qualname>-<hash>/<key>.pkl``), so
    ``clear(function)`` drops one function's results. Each entry is checksummed and written
    atomically; a damaged one is detected, deleted and reported as corrupt, never returned.
    Entries are pickles, which run code when loaded: use only directories you trust.

    Parameters
    ----------
    path : str, os.PathLike or None
        The folder holding the entries (created on the first write). None:
        :func:`default_cache_dir`.

    Attributes
    ----------
    path : pathlib.Path
        The folder, with ``~`` expanded.

    Raises
    ------
    TypeError
        ``path`` is not a str, an os.PathLike or None.
    ValueError
        ``path`` is empty.

    Examples
    --------
    >>> import tempfile, quadnet as qn
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cache = qn.Cache(tmp.name)
    >>> def double(x):
    ...     return 2 * x
    >>> key = cache.key(double, {"x": 3})
    >>> cache.lookup(key)
    ('missing', None)
    >>> _ = cache.put(key, 6)
    >>> cache.lookup(key)
    ('hit', 6)
    >>> cache.clear(double)
    1
    >>> tmp.cleanup()
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
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", ident["function"])[:80]
        return f"{safe}-{_sha(_dumps([ident, _package_version()]))[:12]}"

    def key(self, function: Callable, params: dict) -> str:
        """The cache key of ``function(**params)``.

        Parameters
        ----------
        function : callable
            The swept function (a ``functools.partial`` adds its bound arguments to the key).
        params : dict
            The keyword arguments of one grid point. Their order does not matter; NumPy scalars
            key like the numbers they hold, arrays by dtype, shape and contents.

        Returns
        -------
        str
            ``'<function folder>/<sha256>'``, stable across processes and sessions.

        Raises
        ------
        TypeError
            A parameter of a type that cannot be keyed (e.g. an arbitrary object), or a function
            without source or code (declare ``function.cache_version``).

        Examples
        --------
        >>> import quadnet as qn
        >>> def double(x):
        ...     return 2 * x
        >>> c = qn.Cache("unused")
        >>> c.key(double, {"x": 3}) == c.key(double, {"x": 3})
        True
        >>> c.key(double, {"x": 3}) == c.key(double, {"x": 4})
        False
        """
        return self._keys(function, [params])[0]

    def _keys(self, function: Callable, points: list[dict]) -> list[str]:
        ident = _function_identity(function)
        folder = self._folder(ident)
        head = _dumps(ident)
        version = _package_version()
        keys = []
        for i, pt in enumerate(points):
            params = _dumps(_canonical(pt, f"grid point {i}"))
            keys.append(f"{folder}/{_sha(head + chr(0) + params + chr(0) + version)}")
        return keys

    def entry(self, key: str) -> Path:
        """The file that holds ``key`` (which may not exist).

        Parameters
        ----------
        key : str
            A key from :meth:`key`.

        Returns
        -------
        pathlib.Path
            ``path / (key + '.pkl')``.

        Examples
        --------
        >>> import quadnet as qn
        >>> qn.Cache("/tmp/c").entry("f-0123/abcd").as_posix()
        '/tmp/c/f-0123/abcd.pkl'
        """
        return self.path / f"{key}.pkl"

    # reading and writing -----------------------------------------------------
    def lookup(self, key: str) -> tuple[str, Any]:
        """Read an entry, checking its length, checksum and key.

        Parameters
        ----------
        key : str
            A key from :meth:`key`.

        Returns
        -------
        status : {'hit', 'missing', 'corrupt'}
            ``'corrupt'``: the entry failed a check or could not be read (a damaged file is
            deleted, so that the next write replaces it).
        value : object
            The stored value for a hit, else None.

        Examples
        --------
        >>> import tempfile, quadnet as qn
        >>> tmp = tempfile.TemporaryDirectory()
        >>> cache = qn.Cache(tmp.name)
        >>> path = cache.put("f-0/k", [1, 2])
        >>> cache.lookup("f-0/k")
        ('hit', [1, 2])
        >>> _ = path.write_bytes(path.read_bytes()[:-3])  # truncate the entry
        >>> cache.lookup("f-0/k"), path.exists()
        (('corrupt', None), False)
        >>> tmp.cleanup()
        """
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
        """The cached value of ``key``, or ``default`` when it is missing or corrupt.

        Parameters
        ----------
        key : str
            A key from :meth:`key`.
        default : object
            Returned when there is no valid entry.

        Returns
        -------
        object

        Examples
        --------
        >>> import quadnet as qn
        >>> qn.Cache("/nonexistent").get("f-0/k", "absent")
        'absent'
        """
        status, value = self.lookup(key)
        return value if status == "hit" else default

    def put(self, key: str, value: Any) -> Path:
        """Write ``value`` under ``key`` atomically.

        The entry goes to a temporary file in the same folder, is fsynced, then moved into place
        with ``os.replace``: readers see the old entry or the new one, never a partial file, and
        an interrupted write leaves at most a ``.tmp-*`` file that lookups ignore.

        Parameters
        ----------
        key : str
            A key from :meth:`key`.
        value : object
            Anything picklable.

        Returns
        -------
        pathlib.Path
            The entry's file.

        Raises
        ------
        pickle.PicklingError, TypeError, AttributeError
            ``value`` cannot be pickled (nothing is written).
        OSError
            The folder cannot be written.

        Examples
        --------
        >>> import tempfile, quadnet as qn
        >>> tmp = tempfile.TemporaryDirectory()
        >>> qn.Cache(tmp.name).put("f-0/k", {"escape": 12.5}).name
        'k.pkl'
        >>> tmp.cleanup()
        """
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
        """Delete every entry, or only those of ``function``.

        Parameters
        ----------
        function : callable or None
            Whose entries to delete: the folder of its current identity (name, code, bound
            arguments, package version); entries of earlier versions of its code stay until the
            whole cache is cleared. None: the whole cache.

        Returns
        -------
        int
            The number of files removed (entries and leftover temporary files).

        Examples
        --------
        >>> import tempfile, quadnet as qn
        >>> tmp = tempfile.TemporaryDirectory()
        >>> cache = qn.Cache(tmp.name)
        >>> _ = cache.put("f-0/a", 1); _ = cache.put("f-0/b", 2)
        >>> cache.clear()
        2
        >>> tmp.cleanup()
        """
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
    size, digest = data[len(_MAGIC) : end].split()
    payload = data[end + 1 :]
    if len(payload) != int(size) or _sha(payload) != digest.decode():
        raise ValueError("length or checksum mismatch")
    obj = pickle.loads(payload)
    if not isinstance(obj, dict) or obj.get("key") != key:
        raise ValueError("entry holds another key")
    return obj["value"]


def _resolve_cache(cache: Any) -> Cache | None:
    """The ``cache=`` argument of :func:`quadnet.sweep` as a Cache, or None when it is off."""
    if cache is False:
        return None
    if cache is None or cache is True:
        return Cache()
    if isinstance(cache, Cache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return Cache(cache)
    raise TypeError(f"cache must be None, True, False, a path or a quadnet.Cache, got {type(cache).__name__}")
