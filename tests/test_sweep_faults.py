"""quadnet.sweep, what comes back when a point goes wrong on the way: a result that cannot be
pickled back from its worker (on Dask this used to hang forever), a point that cannot be sent, a
KeyboardInterrupt raised by the function (it used to come back without the grid point) or by
the sweep's own process. Each names the grid point, keeps what finished, and a rerun completes.

Calls are counted with marker files written by the workers (as in test_sweep.py); calls that
could hang run under a bound (a daemon thread), so a regression fails instead of stalling CI.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import quadnet as qn
from quadnet.sweep import Cache, SweepError, SweepInterrupted

BOUND_S = 60  # a sweep that should fail in well under a second is declared hung after this


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QUADNET_CACHE_DIR", str(tmp_path / "default-cache"))


# --------------------------------------------------------------------------- worker functions
# Module level, so that process and Dask workers can import them.


def _mark(marks: str, x) -> None:
    Path(marks, f"call-{x}-{uuid.uuid4().hex}").touch()


def calls(marks: Path) -> Counter:
    return Counter(f.name.split("-")[1] for f in Path(marks).glob("call-*"))


def lock_at(x, marks, bad):
    """A lock (which no pickler can send) at ``x == bad``, else x²."""
    _mark(marks, x)
    return threading.Lock() if x == bad else x * x


def a_lambda(x):
    return lambda: x


def interrupted_while_flagged(x, marks, stop_at, sleep=0.0):
    """Raises KeyboardInterrupt at ``stop_at`` while marks/stop exists (same source, same cache key,
    for the interrupted run and the rerun)."""
    _mark(marks, x)
    time.sleep(sleep)
    if x == stop_at and Path(marks, "stop").exists():
        raise KeyboardInterrupt
    return x + 0.25


def identity(x, extra=None):
    return x


def _run_bounded(box: dict, call, kwargs) -> None:
    try:
        box["value"] = call(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - handed to the test
        box["error"] = exc


def within_bound(call, **kwargs):
    """``call(**kwargs)`` in a daemon thread: ``{"value": ...}`` or ``{"error": ...}``, or a test
    failure if it does not return within BOUND_S (a daemon thread does not keep pytest from exiting)."""
    box: dict = {}
    t = threading.Thread(target=_run_bounded, args=(box, call, kwargs), daemon=True)
    t.start()
    t.join(BOUND_S)
    assert not t.is_alive(), f"{call.__name__} did not return within {BOUND_S} s"
    return box


def cache_hits(cache: Cache, function, grid) -> set[int]:
    keys = cache._keys(function, qn.grid_points(grid))
    return {i for i, k in enumerate(keys) if cache.lookup(k)[0] == "hit"}


# --------------------------------------------------------------------------- results that cannot come back


def test_unpicklable_result_on_the_process_pool_names_its_point(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    grid = {"x": list(range(5)), "marks": str(marks), "bad": 3}
    cache = Cache(tmp_path / "c")
    box = within_bound(qn.sweep, function=lock_at, grid=grid, cache=cache, progress=False)
    err = box.get("error")
    assert isinstance(err, SweepError), box
    assert err.index == 3 and err.point["x"] == 3
    assert "'x': 3" in str(err) and "cannot be pickled" in str(err) and "_thread.lock" in str(err)
    kept = cache_hits(cache, lock_at, grid)
    assert 3 not in kept and err.saved == len(kept)


def test_results_cloudpickle_can_send_come_back_from_processes(tmp_path):
    # a lambda does not pickle, but cloudpickle (installed with Dask) sends it: it comes back, and
    # only the cache (plain pickle) declines it, with a warning
    with pytest.warns(RuntimeWarning, match="not cached"):
        out = qn.sweep(a_lambda, {"x": [1, 2]}, cache=tmp_path / "c", progress=False)
    assert [g() for g in out] == [1, 2] and out.stats.computed == 2


def test_dask_unpicklable_result_unsendable_point_and_interrupt(tmp_path):
    """On Dask an unpicklable result used to hang the sweep forever (as it hangs a plain
    distributed future); now each of these comes back at once as an error naming its point."""
    distributed = pytest.importorskip("distributed")
    marks = tmp_path / "marks"
    marks.mkdir()
    with (
        distributed.LocalCluster(
            n_workers=1,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ex = client.get_executor()
        grid = {"x": [0, 1, 2], "marks": str(marks), "bad": 1}
        box = within_bound(qn.sweep, function=lock_at, grid=grid, executor=ex, cache=tmp_path / "c", progress=False)
        err = box.get("error")
        assert isinstance(err, SweepError), box
        assert err.index == 1 and "cannot be pickled" in str(err) and "'x': 1" in str(err)
        assert err.saved == len(cache_hits(Cache(tmp_path / "c"), lock_at, grid))

        # a parameter Dask cannot serialize: named, instead of Dask's opaque task-graph error
        box = within_bound(
            qn.sweep,
            function=identity,
            grid=[{"x": 0, "extra": threading.Lock()}],
            executor=ex,
            cache=False,
            progress=False,
        )
        err = box.get("error")
        assert isinstance(err, SweepError), box
        assert err.index == 0 and "could not be sent" in str(err) and "parameter 'extra'" in str(err)

        Path(marks, "stop").touch()
        box = within_bound(
            qn.sweep,
            function=interrupted_while_flagged,
            executor=ex,
            cache=False,
            progress=False,
            grid={"x": [0, 1, 2], "marks": str(marks), "stop_at": 2},
        )
        stop = box.get("error")
        assert isinstance(stop, SweepInterrupted), box
        assert stop.index == 2 and "grid point 2" in str(stop)


def test_point_the_process_pool_cannot_send_names_the_parameter(tmp_path):
    with pytest.raises(SweepError, match="parameter 'extra' cannot be pickled") as info:
        qn.sweep(identity, [{"x": 0, "extra": threading.Lock()}], cache=False, progress=False)
    assert info.value.index == 0


# --------------------------------------------------------------------------- KeyboardInterrupt


def test_sweep_interrupted_is_a_keyboard_interrupt_not_an_exception():
    assert issubclass(SweepInterrupted, KeyboardInterrupt) and not issubclass(SweepInterrupted, Exception)


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_keyboard_interrupt_in_the_function_names_its_point_and_keeps_the_rest(tmp_path, where):
    marks = tmp_path / "marks"
    marks.mkdir()
    Path(marks, "stop").touch()
    grid = {"x": list(range(6)), "marks": str(marks), "stop_at": 3, "sleep": 0.02}
    cache = Cache(tmp_path / "c")
    executor = ThreadPoolExecutor(2) if where == "threads" else None
    try:
        with pytest.raises(SweepInterrupted) as info:
            qn.sweep(interrupted_while_flagged, grid, executor=executor, cache=cache, progress=False)
    finally:
        if executor is not None:
            executor.shutdown()
    stop = info.value
    assert stop.index == 3 and stop.point["x"] == 3
    assert "KeyboardInterrupt at grid point 3" in str(stop) and "'x': 3" in str(stop)
    kept = cache_hits(cache, interrupted_while_flagged, grid)
    assert 3 not in kept and stop.saved == len(kept) and f"{len(kept)} of 6 points" in str(stop)
    Path(marks, "stop").unlink()
    before = calls(marks)
    with ThreadPoolExecutor(2) as ex:
        r = qn.sweep(interrupted_while_flagged, grid, executor=ex, cache=cache, progress=False)
    assert list(r) == [x + 0.25 for x in range(6)] and r.stats.cached == len(kept)
    assert calls(marks) - before == Counter({str(i): 1 for i in range(6) if i not in kept})


class InterruptingCache(Cache):
    """Raises KeyboardInterrupt in the sweep's own process right after the ``after``-th write."""

    def __init__(self, path, after):
        super().__init__(path)
        self.after, self.writes = after, 0

    def put(self, key, value):
        out = super().put(key, value)
        self.writes += 1
        if self.writes == self.after:
            raise KeyboardInterrupt
        return out


def test_interrupt_of_the_sweep_itself_says_what_was_kept(tmp_path):
    grid = {"x": list(range(6))}
    with ThreadPoolExecutor(1) as ex, pytest.raises(SweepInterrupted) as info:
        qn.sweep(identity, grid, executor=ex, cache=InterruptingCache(tmp_path / "c", after=2), progress=False)
    stop = info.value
    assert stop.index is None and stop.point is None and stop.saved == 2
    assert "2 of 6 points are in the cache" in str(stop)
    assert type(stop.__cause__) is KeyboardInterrupt
