"""Accuracy of the predicted escape-time law against the exact chain (issue 10's targets).

For each setting — (p, p*) ∈ {(2, 1), (4, 2), (3, 3), (8, 2)}, q0 ∈ {0.3, 1, 3}, η ∈ {0.05, 0.125},
σ ∈ {0, 0.3} — R replicas of the exact chain start from exact Gaussian overlaps and their escape
times (first α below `qn.escape_level`) are compared with the prediction: the mean
(`qn.escape_time_estimate`) within 3 standard errors + 1 %, and the law (`qn.escape_time_law`, 4000
samples) by a two-sample Kolmogorov–Smirnov test at 1e-3. Settings outside the law's domain (a
start outside the plateau's basin, a trapping plateau) are reported as such. Results go to
benchmarks/escape_law-N<N>.json with the machine and the run time.

    python benchmarks/escape_law.py --N 10000 --replicas 1000            # the whole grid at N = 1e4
    python benchmarks/escape_law.py --N 1000000 --replicas 1000 --subset  # q0 = 1, η = 0.125, σ = 0
    python benchmarks/escape_law.py --N 10000 --resume log.jsonl          # go on after an interruption
    python benchmarks/escape_law.py --N 1000000 --subset --pairs "4,2"    # one pair only
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy import stats

import quadnet as qn

PAIRS = [(2, 1), (4, 2), (3, 3), (8, 2)]
Q0S = [0.3, 1.0, 3.0]
ETAS = [0.05, 0.125]
SIGMAS = [0.0, 0.3]


def one_setting(p, ps, q0, eta, sigma, N, R, seed):
    a, b = qn.default_readouts(p, ps)
    row = dict(p=p, p_star=ps, q0=q0, eta=eta, noise=sigma, N=N, replicas=R)
    try:
        pred = qn.escape_time_estimate(p, ps, a, b, eta=eta, N=N, q0=q0, noise=sigma)
        law = qn.escape_time_law(p, ps, a, b, eta=eta, N=N, q0=q0, noise=sigma, samples=4000, seed=seed)
    except ValueError as exc:  # outside the law's domain: say why, still run the chain
        pred, law, row["domain"] = np.nan, None, str(exc).split(":")[0]
    t0 = time.perf_counter()
    out = qn.chain_escape_times(
        *qn.gaussian_overlaps(p, ps, N, R, q0=q0, seed=seed), N, a, b, eta=eta, noise=sigma, seed=seed + 1
    )
    row["chain_seconds"] = round(time.perf_counter() - t0, 1)
    t = out.alpha[np.isfinite(out.alpha)]
    row.update(diverged=int(out.diverged.sum()), censored=int(out.censored.sum()))
    if t.size >= 2:
        m, se = qn.mean_and_stderr(t)
        row.update(chain_mean=float(m), chain_se=float(se), chain_sd=float(np.std(t, ddof=1)))
    if law is not None and t.size >= 2:
        row.update(
            predicted_mean=float(pred),
            law_sd=float(np.nanstd(law, ddof=1)),
            z=float((m - pred) / se),
            mean_ok=bool(abs(m - pred) < 3 * se + 0.01 * pred),
            ks_p=float(stats.ks_2samp(t, law).pvalue),
        )
        row["ks_ok"] = row["ks_p"] > 1e-3
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--N", type=int, default=10_000)
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--subset", action="store_true", help="only q0 = 1, η = 0.125, σ = 0")
    ap.add_argument(
        "--settings", default=None, help="only these 'p,p*,q0,eta,sigma' (space-separated), grid seeds kept"
    )
    ap.add_argument("--pairs", default=None, help="only these (p, p*), e.g. '4,2 2,1' (seeds stay those of the grid)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--resume", default=None, help="a log of JSON rows printed by an interrupted run: reuse them")
    args = ap.parse_args()
    done = {}
    if args.resume:
        for line in Path(args.resume).read_text().splitlines():
            if line.startswith("{") and '"p_star"' in line:
                r = json.loads(line)
                if r["N"] == args.N and r["replicas"] == args.replicas:
                    done[(r["p"], r["p_star"], r["q0"], r["eta"], r["noise"])] = r
    grid = itertools.product(
        PAIRS, [1.0] if args.subset else Q0S, [0.125] if args.subset else ETAS, [0.0] if args.subset else SIGMAS
    )
    rows, t0 = [], time.perf_counter()
    picked = None
    if args.settings:
        picked = {tuple(float(x) for x in one.split(",")) for one in args.settings.split()}
        picked = {(int(p), int(ps), q0, eta, sigma) for p, ps, q0, eta, sigma in picked}
    only = {tuple(int(x) for x in pair.split(",")) for pair in args.pairs.split()} if args.pairs else None
    for k, ((p, ps), q0, eta, sigma) in enumerate(grid):
        if only is not None and (p, ps) not in only:
            continue
        if picked is not None and (p, ps, q0, eta, sigma) not in picked:
            continue
        key = (p, ps, q0, eta, sigma)
        row = done.get(key) or one_setting(p, ps, q0, eta, sigma, args.N, args.replicas, seed=1000 + k)
        rows.append(row)
        print(json.dumps(row), flush=True)
    inside = [r for r in rows if "ks_p" in r]
    summary = dict(
        settings=len(rows),
        in_domain=len(inside),
        mean_ok=sum(r["mean_ok"] for r in inside),
        ks_ok=sum(r["ks_ok"] for r in inside),
        seconds=round(time.perf_counter() - t0, 1),
        resumed=len(done),
        machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        date=time.strftime("%Y-%m-%d"),
    )
    print(json.dumps(summary))
    out = Path(args.out or Path(__file__).with_name(f"escape_law-N{args.N}{'-subset' if args.subset else ''}.json"))
    out.write_text(json.dumps(dict(summary=summary, rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
