"""`make bench`: throughput of the SGD simulators as ratios against a per-step NumPy loop.

    python benchmarks/run.py            N = 10^3 ... 10^6, R = 64, ~3 s per measurement
    python benchmarks/run.py --quick    a tiny run (N = 10^3, 10^4; R = 16; ~0.3 s each)
    python benchmarks/run.py --escape   also time a full escape (α = 40) at N = 10^6, 16 replicas
    python benchmarks/run.py --gpu-only only the GPU rows

Where a GPU is usable (CuPy and numba's CUDA target), GPU rows are added (benchmarks/gpu_bench.py)
and saved with the device name to benchmarks/results-gpu.json; elsewhere they are skipped with a
message (--no-gpu skips them anyway).

Results go to benchmarks/results.json (with machine information); --quick does not overwrite it
unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "lib"))  # run from a checkout without installing

import gpu_bench  # noqa: E402
import sgd_bench  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--escape", action="store_true", help="time a full escape at N = 10^6 (16 replicas)")
    ap.add_argument("--escape-only", action="store_true", help="only the escape timing")
    ap.add_argument("--Ns", type=str, default=None, help="comma-separated N values")
    ap.add_argument("--R", type=int, default=None)
    ap.add_argument("--budget", type=float, default=None, help="seconds per measurement")
    ap.add_argument("--out", type=str, default=None, help="where to write the JSON results")
    ap.add_argument("--no-gpu", action="store_true", help="skip the GPU rows")
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU rows")
    ap.add_argument("--gpu-quick", action="store_true", help="GPU rows at small sizes (not the targets' sizes)")
    ap.add_argument("--gpu-out", type=str, default=None, help="where to write the GPU rows (results-gpu.json)")
    args = ap.parse_args(argv)
    if not args.no_gpu:
        gpu = gpu_bench.run_gpu(quick=args.gpu_quick)
        if gpu is not None:
            gpu["machine"] = sgd_bench.machine_info()
            gout = Path(args.gpu_out) if args.gpu_out else HERE / "results-gpu.json"
            gout.write_text(json.dumps(gpu, indent=2) + "\n")
            print(f"wrote {gout}")
    if args.gpu_only:
        return

    if args.quick:
        Ns, R, budget = (10**3, 10**4), 16, 0.3
    else:
        Ns, R, budget = (10**3, 10**4, 10**5, 10**6), 64, 3.0
    if args.Ns:
        Ns = tuple(int(float(x)) for x in args.Ns.split(","))
    R = args.R or R
    budget = args.budget or budget
    out = Path(args.out) if args.out else (None if args.quick else HERE / "results.json")

    results = {"machine": sgd_bench.machine_info()}
    if not args.escape_only:
        print(f"p = {sgd_bench.P}, p* = {sgd_bench.P_STAR}, R = {R}; replica-steps/s (ratio against the loop)")
        print(sgd_bench.HEADER)
        results = sgd_bench.run_benchmarks(Ns, R=R, budget=budget)
        for key, val in results["summary"].items():
            print(f"  {key}: {val:.3g}")
    if args.escape or args.escape_only:
        esc = sgd_bench.escape_run()
        results["escape"] = esc
        print(
            f"escape: α = {esc['alpha']:g}, N = {esc['N']:,}, {esc['R']} replicas, {esc['method']}: "
            f"{esc['seconds']:.1f} s ({esc['replica_steps_per_s']:.3g} replica-steps/s), "
            f"{esc['escaped']}/{esc['R']} escaped, median α_esc = {esc['alpha_escape_median']}"
        )
    if out is not None:
        if out.exists() and not (args.escape or args.escape_only):
            old = json.loads(out.read_text())
            if "escape" in old:  # keep the last escape timing (it takes minutes to redo)
                results["escape"] = old["escape"]
                results["escape_machine"] = old.get("escape_machine", old.get("machine"))
        if out.exists() and args.escape_only:
            old = json.loads(out.read_text())
            old["escape"] = results["escape"]
            old["escape_machine"] = results["machine"]
            results = old
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
