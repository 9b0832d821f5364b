"""Latency of the notebook explorer (quadnet.explorer): the promise is < 2 s per slider change.

Measures, on this machine and at its current load, (1) ``run_scenario`` at issue 15's setting
(p = 8, p* = 4, η = 0.01, N = 10^4, q0 = 0.2, σ = 0.3) with the default budget, against the same
call with the budget lifted (the baseline, the cost the budget avoids; skipped with --no-baseline),
and (2) the live widgets' update time with every slider at both ends, then the issue's setting.
Prints a JSON summary; writes it with --out.

    python benchmarks/explorer_latency.py              # ~1 min with the baseline
    python benchmarks/explorer_latency.py --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))  # run from a checkout

from quadnet import explorer  # noqa: E402

ISSUE_CASE = dict(p=8, p_star=4, eta=0.01, N=10_000, q0=0.2, noise=0.3)
PROMISE_S = 2.0


def scenario_seconds(budget):
    t0 = time.perf_counter()
    sc = explorer.run_scenario(**ISSUE_CASE, budget=budget)
    return time.perf_counter() - t0, float(sc.chain_alpha), float(sc.chain_times[-1])


def widget_update_seconds():
    ex = explorer.LiveExplorer(display=False)
    times = {}
    try:
        for key, c in ex.controls.items():
            for value in (c.max, c.min, c.value):
                c.value = value
                times[f"{key}={value:g}"] = ex.wait(timeout=120)
        for key, value in ISSUE_CASE.items():
            ex.controls[key].value = value
        times["issue case"] = ex.wait(timeout=120)
    finally:
        ex.close()
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-baseline", action="store_true", help="skip the unbudgeted run (tens of seconds)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    explorer.warm_up()
    took, chain_alpha, alpha_end = scenario_seconds(explorer.BUDGET)
    row = dict(
        issue_case_seconds=round(took, 3),
        chain_reached_alpha=chain_alpha,
        horizon_alpha=alpha_end,
        load=os.getloadavg(),
        cores=os.cpu_count(),
    )
    if not args.no_baseline:
        base, _, _ = scenario_seconds(1e9)
        row.update(unbudgeted_seconds=round(base, 2), speedup=round(base / took, 1))
    times = widget_update_seconds()
    worst = max(times, key=times.get)
    row.update(worst_update=worst, worst_update_seconds=round(times[worst], 3), within_promise=times[worst] < PROMISE_S)
    print(json.dumps(row, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(dict(summary=row, updates=times), indent=1) + "\n")


if __name__ == "__main__":
    main()
