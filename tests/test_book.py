"""quadnet.book: the chapters' helpers (glue fallback, banner, timing of heavy cells)."""

from __future__ import annotations

import builtins
import time

import pytest

import quadnet as qn
from quadnet import book


def test_banner_names_profile_and_how_to_change_it(capsys, monkeypatch):
    monkeypatch.setenv("QUADNET_PROFILE", "quick")
    line = book.banner()
    out = capsys.readouterr().out
    assert line.startswith("quadnet: profile=quick, backend=")
    assert "%env QUADNET_PROFILE=quick" in out and "default" in out and "paper" in out


def test_timed_records_wall_clock_and_prints(capsys, monkeypatch):
    monkeypatch.setenv("QUADNET_PROFILE", "quick")
    book.banner()
    with book.timed("sleep"):
        time.sleep(0.05)
    with book.timed("sleep", quiet=True):  # repeated labels add up
        time.sleep(0.05)
    out = capsys.readouterr().out
    assert "[sleep: 0." in out and "at profile quick]" in out and out.count("[sleep") == 1
    times = book.timing_summary(print_it=False)
    # perf_counter is monotonic: the two sleeps took at least 0.1 s together
    assert 0.1 <= times["sleep"] <= times["timed"] <= times["total"]


def test_timed_records_a_failing_block_and_reraises():
    book.banner()
    with pytest.raises(ZeroDivisionError):
        with book.timed("fails", quiet=True):
            raise ZeroDivisionError("in the timed block")
    assert "fails" in book.chapter_clock().cells


def test_banner_restarts_the_clock():
    with book.timed("before", quiet=True):
        pass
    book.banner()
    assert "before" not in book.timing_summary(print_it=False)


def test_timing_summary_prints_each_label(capsys):
    book.banner()
    with book.timed("a heavy cell", quiet=True):
        pass
    book.timing_summary()
    out = capsys.readouterr().out
    assert "a heavy cell" in out and "since the banner" in out


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_timed_rejects_a_bad_label(bad):
    with pytest.raises(TypeError, match="label"):
        with book.timed(bad):
            pass


def test_glue_without_myst_nb_does_nothing(monkeypatch):
    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name.split(".")[0] == "myst_nb":
            raise ImportError("blocked")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    assert book.glue("x", qn.to_numpy(1.5)) is None


def test_glue_all_glues_each_name_in_order(monkeypatch):
    seen = []
    monkeypatch.setattr(book, "glue", lambda name, value, display=False: seen.append((name, value)))
    book.glue_all({"b": 2, "a": 1}, c=3)
    assert seen == [("b", 2), ("a", 1), ("c", 3)]
    with pytest.raises(TypeError, match="non-empty string"):
        book.glue_all({"": 1})
    assert seen == [("b", 2), ("a", 1), ("c", 3)]  # nothing glued from a bad call
