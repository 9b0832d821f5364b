"""Throughput of the one-pass SGD simulators (imported by run.py and the Performance appendix).

Every number is replica-steps per second measured in this process, and every comparison is a
ratio against the baseline measured in the same run: (a) a straightforward per-step NumPy loop
over replicas, the code a user would write first; (b) ``quadnet.sgd_weights``; (c) the chain
``sgd_overlaps(method="numpy")``; (d) the fused chain ``sgd_overlaps(method="numba")``.
Each measurement runs for about ``budget`` seconds (the number of steps is calibrated first).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import time

import numpy as np

import quadnet as qn

P, P_STAR, A, B, LR = 4, 2, 0.25, 0.5, 0.5


def baseline_loop(W, W_star, a, b, lr, steps, rng):
    """The per-step, per-replica NumPy loop (W (R, p, N) updated in place)."""
    R, p, N = W.shape
    s = 1.0 / math.sqrt(N)
    for _ in range(steps):
        for r in range(R):
            x = rng.standard_normal(N)
            lam = W[r] @ x * s
            nu = W_star @ x * s
            e = b * (nu @ nu) - a * (lam @ lam)
            W[r] += np.outer((2 * a * lr * s * e) * lam, x)
    return W


def _timed(fn, steps):
    t0 = time.perf_counter()
    fn(steps)
    return time.perf_counter() - t0


def _measure(fn, budget, first=2, max_steps=10**8, repeats=3):
    """Seconds per step of ``fn(steps)``: the number of steps is calibrated so that one run takes
    about budget/repeats seconds, then the best of ``repeats`` runs is kept (the usual defence
    against a machine shared with other jobs)."""
    steps = first
    dt = _timed(fn, steps)
    target = budget / repeats
    while dt < 0.5 * target and steps < max_steps:
        steps = int(min(max_steps, max(2 * steps, steps * target / max(dt, 1e-6))))
        dt = _timed(fn, steps)
    best = dt
    for _ in range(repeats - 1):
        best = min(best, _timed(fn, steps))
    return best / steps, steps


def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "quadnet": qn.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
    except Exception:
        info["numba"] = None
    return info


def _setup(R, N, seed=0):
    Ws = qn.teacher(P_STAR, N, seed=seed, backend="numpy")
    W0 = qn.init_student(P, N, replicas=R, seed=seed + 1, backend="numpy")
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    return W0, Ws, Q0, M0, Pm


def bench_point(N, R=64, budget=3.0, methods=("baseline", "weights", "chain_numpy", "chain_numba")):
    """Replica-steps per second of each method at one N; ratios against the baseline."""
    W0, Ws, Q0, M0, Pm = _setup(R, N)
    rng = np.random.default_rng(2)
    out = {"N": N, "R": R}
    if "chain_numba" in methods and qn.numba_available():  # compile (or load) the kernel first
        qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, [1 / N], seed=0, method="numba")
    runners = {
        "baseline": lambda n: baseline_loop(W0.copy(), Ws, A, B, LR, n, rng),
        "weights": lambda n: qn.sgd_weights(W0, Ws, A, B, LR, [n / N], seed=1),
        "chain_numpy": lambda n: qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, [n / N], seed=1, method="numpy"),
        "chain_numba": lambda n: qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, [n / N], seed=1, method="numba"),
    }
    for name in methods:
        if name == "chain_numba" and not qn.numba_available():
            continue
        first = 1 if name in ("baseline", "weights") else 50
        sec, steps = _measure(runners[name], budget, first=first)
        out[name] = {"replica_steps_per_s": R / sec, "s_per_step": sec, "steps": steps}
    base = out.get("baseline")
    for name in methods:
        if name in out and base:
            out[name]["ratio_vs_baseline"] = out[name]["replica_steps_per_s"] / base["replica_steps_per_s"]
    return out


def run_benchmarks(Ns=(10**3, 10**4, 10**5, 10**6), R=64, budget=3.0, verbose=True):
    rows = []
    for N in Ns:
        row = bench_point(N, R=R, budget=budget)
        rows.append(row)
        if verbose:
            print(format_row(row), flush=True)
    summary = summarize(rows)
    return {
        "machine": machine_info(),
        "params": {"p": P, "p_star": P_STAR, "a": A, "b": B, "lr": LR, "R": R, "budget_s": budget},
        "rows": rows,
        "summary": summary,
    }


def summarize(rows) -> dict:
    s = {}
    first, last = rows[0], rows[-1]
    for name in ("chain_numpy", "chain_numba"):
        if name in first and name in last:
            s[f"{name}_step_time_ratio_N{last['N']}_vs_N{first['N']}"] = (
                last[name]["s_per_step"] / first[name]["s_per_step"]
            )
    for row in rows:
        if "chain_numba" in row and "chain_numpy" in row:
            s[f"fused_vs_fallback_N{row['N']}"] = (
                row["chain_numba"]["replica_steps_per_s"] / row["chain_numpy"]["replica_steps_per_s"]
            )
        if "weights" in row and "baseline" in row:
            s[f"weights_vs_baseline_N{row['N']}"] = row["weights"]["ratio_vs_baseline"]
    return s


HEADER = f"{'N':>9} | {'(a) loop':>18} | {'(b) sgd_weights':>18} | {'(c) chain numpy':>18} | {'(d) chain fused':>18}"


def format_row(row) -> str:
    cells = []
    for name in ("baseline", "weights", "chain_numpy", "chain_numba"):
        m = row.get(name)
        cells.append(f"{m['replica_steps_per_s']:9.3g} ({m['ratio_vs_baseline']:6.3g}x)" if m else f"{'-':>18}")
    return f"{row['N']:>9} | " + " | ".join(cells)


def table(results) -> str:
    """Plain-text table: replica-steps/s (ratio against the loop)."""
    lines = ["replica-steps per second (ratio against (a) in the same run)", HEADER, "-" * len(HEADER)]
    lines += [format_row(r) for r in results["rows"]]
    return "\n".join(lines)


def markdown_table(results) -> str:
    out = [
        "| N | (a) NumPy loop | (b) sgd_weights | (c) chain, NumPy | (d) chain, fused |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        cells = []
        for name in ("baseline", "weights", "chain_numpy", "chain_numba"):
            m = row.get(name)
            cells.append(f"{m['replica_steps_per_s']:.3g}/s ({m['ratio_vs_baseline']:.3g}×)" if m else "–")
        out.append(f"| {row['N']:,} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def escape_run(N=10**6, R=16, alpha=40.0, seed=0):
    """Time of a full escape (α = 40) with the fused chain: p = 4, p* = 2, a = 1/4, b = 1/2, γ = 0.5."""
    _, _, Q0, M0, Pm = _setup(R, N, seed=seed)
    method = "numba" if qn.numba_available() else "numpy"
    qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, [1 / N], seed=0, method=method)  # compile outside the timing
    alphas = np.linspace(0.0, alpha, 81)
    t0 = time.perf_counter()
    tr = qn.sgd_overlaps(Q0, M0, Pm, N, A, B, LR, alphas, seed=seed + 7, method=method)
    sec = time.perf_counter() - t0
    pl = qn.plateau(P, P_STAR, A, B, LR)
    esc = tr.loss < 0.5 * pl.loss
    first = np.where(esc.any(axis=0), alphas[np.argmax(esc, axis=0)], np.nan)
    return {
        "N": N,
        "R": R,
        "alpha": alpha,
        "method": method,
        "seconds": sec,
        "replica_steps_per_s": R * round(alpha * N) / sec,
        "escaped": int(np.isfinite(first).sum()),
        "alpha_escape_median": float(np.nanmedian(first)) if np.isfinite(first).any() else None,
        "final_loss_median": float(np.nanmedian(tr.loss[-1])),
        "diverged": int(np.sum(tr.diverged)),
    }
