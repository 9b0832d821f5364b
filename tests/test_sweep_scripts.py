"""quadnet.sweep from a plain script. Process pools that spawn their workers (``forkserver``,
``spawn``) import the main script again in each worker, so a script that starts a sweep outside
``if __name__ == "__main__":`` used to flood the terminal with one traceback per worker, leave the
temporary folders each re-run created, and end blaming "a worker that died". Now it is refused
with one message, before any worker starts.

The detection is tested in this process on scripts compiled from files (their top-level code
runs as the main module would); real scripts run in subprocesses.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import subprocess
import sys
import types
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import quadnet as qn

ex = importlib.import_module("quadnet.sweep._executors")  # `quadnet.sweep` is the function

SCRIPT_TIMEOUT_S = 120  # a subprocess that should take a few seconds is killed (and fails) after this


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QUADNET_CACHE_DIR", str(tmp_path / "default-cache"))


def square(x):
    return x * x


def run_as_main(tmp_path, monkeypatch, source: str, **names) -> dict:
    """Run ``source`` from a file as the main script's top-level code; its namespace after."""
    path = tmp_path / "study.py"
    path.write_text(source)
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "__main__", main)
    namespace = {"__name__": "__main__", "qn": qn, **names}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


def probe(out: list) -> None:
    out.append(ex._unguarded_main_line())


@pytest.mark.parametrize(
    "source,line",
    [
        ("probe(out)\n", 1),
        ('if __name__ == "__main__":\n    probe(out)\n', None),
        ('if "__main__" == __name__:\n    probe(out)\n', None),
        ("def main():\n    probe(out)\n\n\nmain()\n", 5),
        ('def main():\n    probe(out)\n\n\nif __name__ == "__main__":\n    main()\n', None),
        ("for _ in range(1):\n    probe(out)\n", 2),
        ("import sys\nif len(sys.argv) >= 0:\n    probe(out)\n", 3),  # a test that is not of __name__
        ('if __name__ == "__main__":\n    pass\nprobe(out)\n', 3),  # the guard is elsewhere
    ],
)
def test_the_unguarded_line_of_the_main_script(tmp_path, monkeypatch, source, line):
    out: list = []
    run_as_main(tmp_path, monkeypatch, source, probe=probe, out=out)
    expected = None if line is None else (os.path.realpath(tmp_path / "study.py"), line)
    assert out == [expected]


def test_no_main_script_nothing_to_check(tmp_path, monkeypatch):
    out: list = []
    run_as_main(tmp_path, monkeypatch, "probe(out)\n", probe=probe, out=out)
    monkeypatch.delattr(sys.modules["__main__"], "__file__")  # an interactive session, a notebook
    probe(out)
    assert out[1] is None


def test_start_methods():
    assert ex._start_method(None) in ("forkserver", "spawn")  # the default pool never forks
    with ThreadPoolExecutor(1) as threads:
        assert ex._start_method(threads) is None
    for method in ("fork", "spawn"):
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context(method))  # starts no process yet
        assert ex._start_method(pool) == method
        pool.shutdown()


def test_sweep_from_an_unguarded_script_is_refused_before_any_worker_starts(tmp_path, monkeypatch):
    grid = {"x": [1, 2]}
    source = "out = qn.sweep(square, grid, executor=executor, cache=cache, progress=False)\n"
    with pytest.raises(RuntimeError, match=r"study.py, line 1, starts worker processes") as info:
        run_as_main(tmp_path, monkeypatch, source, square=square, grid=grid, executor=None, cache=tmp_path / "c")
    assert 'if __name__ == "__main__":' in str(info.value) and "ThreadPoolExecutor" in str(info.value)
    # threads re-import nothing, nor do forked workers: no false alarm
    with ThreadPoolExecutor(2) as threads:
        ns = run_as_main(
            tmp_path, monkeypatch, source, square=square, grid=grid, executor=threads, cache=tmp_path / "c"
        )
    assert list(ns["out"]) == [1, 4]
    # with every point in the cache no worker is started, and nothing is refused
    ns = run_as_main(tmp_path, monkeypatch, source, square=square, grid=grid, executor=None, cache=tmp_path / "c")
    assert list(ns["out"]) == [1, 4] and ns["out"].stats.cached == 2


def test_dask_local_cluster_from_an_unguarded_script_is_refused(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    source = "with qn.dask_executor(n_workers=1) as executor:\n    pass\n"
    with pytest.raises(RuntimeError, match=r"quadnet.dask_executor: .*study.py, line 1"):
        run_as_main(tmp_path, monkeypatch, source)


def test_a_worker_importing_the_script_exits_quietly(monkeypatch, capsys):
    """The fallback for guards that are true in workers too: one line, a distinctive status."""
    exits = []
    monkeypatch.setattr(mp.current_process(), "_inheriting", True, raising=False)
    monkeypatch.setattr(ex.os, "_exit", exits.append)
    ex.leave_if_importing_main("fork", "quadnet.sweep")  # forked workers import nothing
    assert exits == []
    ex.leave_if_importing_main("spawn", "quadnet.sweep")
    assert exits == [ex._GUARD_EXIT]
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------- real scripts


def run_script(tmp_path, text: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run ``text`` as a script with its own TMPDIR (to count the temporary folders it leaves)."""
    script = tmp_path / "study.py"
    script.write_text(text)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "QUADNET_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S
    )
    return proc, os.path.realpath(script)


STUDY = """\
import tempfile
import quadnet as qn


def square(x):
    return x * x


{guard}
    cache = qn.Cache(tempfile.mkdtemp(prefix="study-"))
    print("results", list(qn.sweep(square, {{"x": [1, 2, 3]}}, cache=cache, progress=False)))
"""


def test_unguarded_script_gets_one_message_and_leaves_no_folders(tmp_path):
    proc, script = run_script(tmp_path, STUDY.format(guard="if True:"))
    assert proc.returncode == 1 and "results" not in proc.stdout
    assert proc.stderr.count("Traceback") == 1, proc.stderr
    assert f"{script}, line 11, starts worker processes" in proc.stderr  # the line calling sweep
    assert 'if __name__ == "__main__":' in proc.stderr and "worker that died" not in proc.stderr
    assert [p.name.split("-")[0] for p in (tmp_path / "tmp").iterdir()] == ["study"]  # the script's own, only


def test_guard_true_in_workers_too_gets_one_message(tmp_path):
    proc, _ = run_script(tmp_path, STUDY.format(guard='if __name__ in ("__main__", "__mp_main__"):'))
    assert proc.returncode == 1 and "results" not in proc.stdout
    assert proc.stderr.count("Traceback") == 1, proc.stderr  # the main process's, only
    assert "true in worker processes too" in proc.stderr and "worker that died" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "is importing a main script" in ln]
    assert 1 <= len(lines) <= os.cpu_count(), proc.stderr  # at most one line per worker


def test_guarded_script_runs(tmp_path):
    proc, _ = run_script(tmp_path, STUDY.format(guard='if __name__ == "__main__":'))
    assert proc.returncode == 0, proc.stderr
    assert "results [1, 4, 9]" in proc.stdout and "Traceback" not in proc.stderr
