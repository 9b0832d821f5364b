"""quadnet.sweep: grid order, executors (local processes, threads, a local Dask cluster), the
on-disk cache, and injected faults: a worker killed mid-sweep, corrupted cache entries, a point
that raises, an interrupt. Calls are counted with marker files written by the workers.

Fault injections are tallied in FAULTS; with QUADNET_FUZZ_REPORT=<file> each module appends its
tallies there as one JSON line (tests/test_fuzz.py does the same for its inputs).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import quadnet as qn
from conftest import report_counts
from quadnet.sweep import Cache, SweepError

FAULTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_faults():
    yield
    report_counts({"module": "test_sweep", **FAULTS})


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    """Never touch the real user cache: the default location points into tmp_path."""
    monkeypatch.setenv("QUADNET_CACHE_DIR", str(tmp_path / "default-cache"))


# --------------------------------------------------------------------------- worker functions
# Module level, so that process and Dask workers can import them.


def _mark(marks: str, x) -> None:
    Path(marks, f"call-{x}-{uuid.uuid4().hex}").touch()


def calls(marks: Path) -> Counter:
    """How many times each point was called (from the marker files)."""
    return Counter(f.name.split("-")[1] for f in Path(marks).glob("call-*"))


def square(x, marks, scale=1):
    _mark(marks, x)
    return {"x": x, "sq": scale * x * x, "arr": np.full(3, float(x))}


def killer(x, marks, kill_at, sleep=0.0):
    """Dies by SIGKILL on its first attempt at ``kill_at`` (marker file), else squares."""
    _mark(marks, x)
    flag = Path(marks, f"killed-{x}")
    if x == kill_at and not flag.exists():
        flag.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(sleep)
    return x * x


def always_killed(x, marks, kill_at):
    _mark(marks, x)
    if x == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def fails_while_flagged(x, marks, fail_at, sleep=0.0):
    """Raises at ``fail_at`` while the file marks/fail exists (so the source, hence the cache key,
    is the same for the failing run and the rerun)."""
    _mark(marks, x)
    time.sleep(sleep)
    if x == fail_at and Path(marks, "fail").exists():
        raise ValueError(f"injected failure at x = {x}")
    return x + 0.5


def slow_square(x, marks, sleep):
    _mark(marks, x)
    time.sleep(sleep)
    return x * x


def worker_env(x):
    return os.environ.get("NUMBA_NUM_THREADS"), os.getpid()


def versioned(x):
    return x


versioned.cache_version = "7"


# --------------------------------------------------------------------------- grids


def test_grid_order_product_and_lists():
    pts = qn.grid_points({"N": [1, 2], "seed": range(2), "p": 4})
    assert pts == [
        {"N": 1, "seed": 0, "p": 4},
        {"N": 1, "seed": 1, "p": 4},
        {"N": 2, "seed": 0, "p": 4},
        {"N": 2, "seed": 1, "p": 4},
    ]
    assert qn.grid_points({"a": np.array([0.5, 1.0]), "s": "x"}) == [{"a": 0.5, "s": "x"}, {"a": 1.0, "s": "x"}]
    assert qn.grid_points([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]
    assert qn.grid_points({}) == [] and qn.grid_points([]) == []
    assert qn.grid_points({"a": []}) == []


@pytest.mark.parametrize(
    "grid,exc",
    [
        ("abc", TypeError),
        (5, TypeError),
        ([1, 2], TypeError),
        ([{1: 2}], TypeError),
        ({"not a name": [1]}, TypeError),
        ({3: [1]}, TypeError),
        ({"a": np.zeros((2, 2))}, ValueError),
    ],
)
def test_bad_grids(grid, exc):
    with pytest.raises(exc, match="grid"):
        qn.grid_points(grid)


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        (dict(executor="pool"), TypeError, "executor"),
        (dict(retries=-1), ValueError, "retries"),
        (dict(retries=1.5), TypeError, "retries"),
        (dict(cache=3), TypeError, "cache"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        qn.sweep(square, {"x": [1], "marks": str(tmp_path)}, progress=False, **kwargs)
    with pytest.raises(TypeError, match="function"):
        qn.sweep(42, {"x": [1]}, progress=False)


def test_unkeyable_parameter_needs_cache_off(tmp_path):
    grid = [{"x": 1, "marks": str(tmp_path), "scale": object()}]
    with pytest.raises(TypeError, match="cache=False"):
        qn.sweep(square, grid, cache=tmp_path / "c", progress=False)
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(SweepError) as info:  # object() * int: the function's own error
            qn.sweep(square, grid, cache=False, executor=ex, progress=False)
    assert isinstance(info.value.__cause__, TypeError) and "nothing was kept" in str(info.value)


# --------------------------------------------------------------------------- running and caching


def test_default_pool_results_in_order_and_cache_reuse(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": [3, 1, 2, 0, 5], "marks": str(marks), "scale": [1, 2]}
    first = qn.sweep(square, grid, cache=tmp_path / "c", progress=False)
    want = [square(pt["x"], str(tmp_path), pt["scale"])["sq"] for pt in qn.grid_points(grid)]
    assert [r["sq"] for r in first] == want
    assert first.stats.computed == 10 and first.stats.cached == 0 and first.stats.lost == 0
    assert sum(calls(marks).values()) == 10
    again = qn.sweep(square, grid, cache=tmp_path / "c", progress=False)
    assert sum(calls(marks).values()) == 10  # nothing recomputed
    assert again.stats.cached == 10 and again.stats.computed == 0
    for r1, r2 in zip(first, again):
        assert r1["sq"] == r2["sq"] and np.array_equal(r1["arr"], r2["arr"])
    # a new point computes only itself
    more = qn.sweep(square, {**grid, "x": [3, 1, 2, 0, 5, 7]}, cache=tmp_path / "c", progress=False)
    assert more.stats.computed == 2 and more.stats.cached == 10
    assert sum(calls(marks).values()) == 12


def test_default_cache_location_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("QUADNET_CACHE_DIR", str(tmp_path / "env-cache"))
    assert qn.default_cache_dir() == tmp_path / "env-cache"
    with ThreadPoolExecutor(2) as ex:
        qn.sweep(square, {"x": [1, 2], "marks": str(tmp_path)}, executor=ex, progress=False)
    assert len(list((tmp_path / "env-cache").rglob("*.pkl"))) == 2
    monkeypatch.delenv("QUADNET_CACHE_DIR")
    assert "quadnet" in str(qn.default_cache_dir())
    # cache=False writes nothing anywhere
    with ThreadPoolExecutor(2) as ex:
        r = qn.sweep(square, {"x": [4], "marks": str(tmp_path)}, executor=ex, cache=False, progress=False)
    assert r[0]["sq"] == 16 and len(list((tmp_path / "env-cache").rglob("*.pkl"))) == 2


def test_cache_key_depends_on_params_version_and_code(tmp_path, monkeypatch):
    c = Cache(tmp_path)
    k = c.key(square, {"x": 3, "marks": "m"})
    assert k == c.key(square, {"marks": "m", "x": 3})  # order of keywords is irrelevant
    assert k == c.key(square, {"x": np.int64(3), "marks": np.str_("m")})  # NumPy scalars are numbers
    assert k != c.key(square, {"x": 3.0, "marks": "m"})  # 3 and 3.0 may differ
    assert k != c.key(square, {"x": 4, "marks": "m"})
    assert k != c.key(killer, {"x": 3, "marks": "m"})
    a = np.arange(6.0).reshape(2, 3)
    assert c.key(square, {"x": a}) == c.key(square, {"x": a.copy()})
    assert c.key(square, {"x": a}) != c.key(square, {"x": a.T})
    assert c.key(square, {"x": a}) != c.key(square, {"x": a.astype(np.float32)})
    assert c.key(square, {"x": float("nan")}) == c.key(square, {"x": float("nan")})
    assert c.key(square, {"x": np.random.SeedSequence(5)}) != c.key(square, {"x": np.random.SeedSequence(6)})
    part = functools.partial(square, scale=2)
    assert c.key(part, {"x": 1}) != c.key(functools.partial(square, scale=3), {"x": 1})
    # two lambdas on one line share their source text but not their code
    f1, f2 = (lambda x: x + 1), (lambda x: x + 2)
    assert c.key(f1, {"x": 1}) != c.key(f2, {"x": 1})
    # a declared version replaces the source hash
    kv = c.key(versioned, {"x": 1})
    monkeypatch.setattr(versioned, "cache_version", "8")
    assert c.key(versioned, {"x": 1}) != kv
    # the package version is part of the key
    monkeypatch.setattr(qn, "__version__", "999.0")
    assert c.key(square, {"x": 3, "marks": "m"}) != k


def test_threads_partial_and_unpicklable_result(tmp_path):
    marks = tmp_path / "m"
    marks.mkdir()
    f = functools.partial(square, marks=str(marks), scale=3)
    with ThreadPoolExecutor(2) as ex:
        r = qn.sweep(f, {"x": range(4)}, executor=ex, cache=tmp_path / "c", progress=False)
        assert [d["sq"] for d in r] == [0, 3, 12, 27]
        with pytest.warns(RuntimeWarning, match="not cached"):
            out = qn.sweep(lambda x: lambda: x, {"x": [1, 2]}, executor=ex, cache=tmp_path / "c", progress=False)
    assert [g() for g in out] == [1, 2]


def test_progress_bar(tmp_path, capsys):
    with ThreadPoolExecutor(1) as ex:
        qn.sweep(
            slow_square, {"x": [1, 2], "marks": str(tmp_path), "sleep": 0.0}, executor=ex, cache=False, progress=True
        )
    assert "2/2" in capsys.readouterr().err


# --------------------------------------------------------------------------- faults


def test_worker_killed_mid_sweep_is_retried(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(8)), "marks": str(marks), "kill_at": 3, "sleep": 0.05}
    r = qn.sweep(killer, grid, cache=tmp_path / "c", progress=False)
    FAULTS["worker_killed"] += 1
    assert list(r) == [x * x for x in range(8)]
    assert r.stats.retried >= 1 and r.stats.lost == 0 and r.stats.computed == 8
    n = calls(marks)
    assert n["3"] == 2  # killed once, then retried
    assert set(n) == {str(x) for x in range(8)}
    assert len(list((tmp_path / "c").rglob("*.pkl"))) == 8


def test_worker_killed_in_a_given_process_pool(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(6)), "marks": str(marks), "kill_at": 4}
    with ProcessPoolExecutor(2) as ex:
        r = qn.sweep(killer, grid, executor=ex, cache=False, progress=False)
    FAULTS["worker_killed"] += 1
    assert list(r) == [x * x for x in range(6)] and r.stats.lost == 0
    assert calls(marks)["4"] == 2


def test_worker_that_always_dies_exhausts_retries(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(4)), "marks": str(marks), "kill_at": 2}
    with pytest.raises(SweepError, match="retries=1 exhausted") as info:
        qn.sweep(always_killed, grid, cache=tmp_path / "c", retries=1, progress=False)
    FAULTS["worker_killed"] += 2
    assert info.value.index == 2 and info.value.point["x"] == 2
    assert calls(marks)["2"] == 2  # first attempt + one retry
    # the other points finished and were kept
    cache = Cache(tmp_path / "c")
    keys = cache._keys(always_killed, qn.grid_points(grid))
    assert [cache.lookup(k)[0] for k in keys] == ["hit", "hit", "missing", "hit"]


def _garble(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        b = bytearray(data)
        b[-5] ^= 0xFF
        path.write_bytes(bytes(b))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "header":
        path.write_bytes(b"garbage\n" + data[40:])
    elif how == "swap":  # a valid entry of another key under this name
        other = sorted(p for p in path.parent.glob("*.pkl") if p != path)[0]
        path.write_bytes(other.read_bytes())
    else:
        raise AssertionError(how)


def test_corrupted_cache_entries_are_recomputed(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(7)), "marks": str(marks)}
    cache = Cache(tmp_path / "c")
    ways = ["swap", "truncate", "flip", "empty", "header"]
    with ThreadPoolExecutor(2) as ex:
        first = qn.sweep(square, grid, executor=ex, cache=cache, progress=False)
        keys = cache._keys(square, qn.grid_points(grid))
        for i, how in enumerate(ways):
            _garble(cache.entry(keys[i]), how)
            FAULTS["cache_corrupted"] += 1
        # a leftover temporary file of an interrupted write is ignored
        (cache.entry(keys[6]).parent / ".tmp-dead.part").write_bytes(b"partial")
        before = sum(calls(marks).values())
        again = qn.sweep(square, grid, executor=ex, cache=cache, progress=False)
    assert again.stats.corrupt == len(ways) and again.stats.computed == len(ways) and again.stats.cached == 2
    assert sum(calls(marks).values()) - before == len(ways)
    assert [r["sq"] for r in again] == [r["sq"] for r in first]
    assert all(cache.lookup(k)[0] == "hit" for k in keys)  # overwritten with good entries
    # lookup itself reports a damaged entry as corrupt, never returns it, and removes the file
    _garble(cache.entry(keys[0]), "flip")
    FAULTS["cache_corrupted"] += 1
    assert cache.lookup(keys[0]) == ("corrupt", None) and not cache.entry(keys[0]).exists()
    assert cache.get(keys[0], "default") == "default"


def test_function_error_keeps_finished_points_and_rerun_completes(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    Path(marks, "fail").touch()
    grid = {"x": list(range(10)), "marks": str(marks), "fail_at": 6, "sleep": 0.02}
    with pytest.raises(SweepError) as info:
        qn.sweep(fails_while_flagged, grid, cache=tmp_path / "c", progress=False)
    FAULTS["function_raised"] += 1
    err = info.value
    assert isinstance(err.__cause__, ValueError) and "injected failure" in str(err)
    assert err.index == 6 and "'x': 6" in str(err) and "ValueError" in str(err)
    cache = Cache(tmp_path / "c")
    keys = cache._keys(fails_while_flagged, qn.grid_points(grid))
    kept = {i for i, k in enumerate(keys) if cache.lookup(k)[0] == "hit"}
    assert 6 not in kept and err.saved == len(kept)
    first_calls = calls(marks)
    # every point that ran to the end was kept (running points finish, pending ones are cancelled)
    assert {int(x) for x in first_calls} - {6} == kept
    Path(marks, "fail").unlink()
    r = qn.sweep(fails_while_flagged, grid, cache=tmp_path / "c", progress=False)
    assert list(r) == [x + 0.5 for x in range(10)]
    assert r.stats.cached == len(kept) and r.stats.computed == 10 - len(kept)
    total = calls(marks)
    assert {x: total[x] - first_calls.get(x, 0) for x in total if total[x] > first_calls.get(x, 0)} == {
        str(i): 1 for i in range(10) if i not in kept
    }


class InterruptingCache(Cache):
    """Raises KeyboardInterrupt in the parent right after the ``after``-th entry is written."""

    def __init__(self, path, after):
        super().__init__(path)
        self.after, self.writes = after, 0

    def put(self, key, value):
        out = super().put(key, value)
        self.writes += 1
        if self.writes == self.after:
            raise KeyboardInterrupt
        return out


def test_interrupt_keeps_finished_points_and_rerun_completes(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(8)), "marks": str(marks), "sleep": 0.1}
    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        qn.sweep(slow_square, grid, cache=InterruptingCache(tmp_path / "c", after=2), progress=False)
    FAULTS["interrupted"] += 1
    assert time.perf_counter() - t < 30
    cache = Cache(tmp_path / "c")
    keys = cache._keys(slow_square, qn.grid_points(grid))
    kept = {i for i, k in enumerate(keys) if cache.lookup(k)[0] == "hit"}
    assert len(kept) == 2
    before = calls(marks)
    r = qn.sweep(slow_square, grid, cache=cache, progress=False)
    assert list(r) == [x * x for x in range(8)]
    rerun = calls(marks) - before
    assert set(rerun) == {str(i) for i in range(8) if i not in kept} and all(v == 1 for v in rerun.values())


def test_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(8)), "marks": str(marks), "kill_at": 5, "sleep": 0.05}
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ex = client.get_executor()
        r = qn.sweep(killer, grid, executor=ex, cache=tmp_path / "c", progress=False)
        FAULTS["worker_killed"] += 1
        assert list(r) == [x * x for x in range(8)] and r.stats.lost == 0
        assert calls(marks)["5"] == 2  # the killed point ran again (Dask rescheduled it)
        again = qn.sweep(killer, grid, executor=ex, cache=tmp_path / "c", progress=False)
        assert again.stats.cached == 8 and list(again) == list(r)
        # a function error comes back as a SweepError through Dask too
        Path(marks, "fail").touch()
        with pytest.raises(SweepError, match="injected failure"):
            qn.sweep(
                fails_while_flagged,
                {"x": [0, 1], "marks": str(marks), "fail_at": 1},
                executor=ex,
                cache=False,
                progress=False,
            )
        FAULTS["function_raised"] += 1


def test_default_pool_workers_are_single_threaded_for_numba():
    r = qn.sweep(worker_env, {"x": range(4)}, cache=False, progress=False)
    assert {env for env, _ in r} == {"1"}


def test_dask_executor_helper(tmp_path):
    pytest.importorskip("distributed")
    with qn.dask_executor(n_workers=1) as ex:
        r = qn.sweep(worker_env, {"x": range(3)}, executor=ex, cache=tmp_path, progress=False)
    assert {env for env, _ in r} == {"1"} and len({pid for _, pid in r}) == 1
    with pytest.raises(ValueError, match="n_workers"):
        with qn.dask_executor(n_workers=0):
            pass
    with pytest.raises(TypeError, match="address"):
        with qn.dask_executor(8786):
            pass
