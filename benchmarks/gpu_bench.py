"""GPU rows of `make bench` (imported by run.py; skipped where no GPU is usable).

Measured in this process, each a ratio against a baseline measured in the same run:

* the fused chain ``sgd_overlaps(method="cuda")`` in replica-steps/s against the number of
  replicas (p = 4, p* = 2), beside the CuPy reference chain ``method="numpy"`` (several kernels per
  step) and the CPU's fused numba kernel; target on an H200: ≥ 1e9 replica-steps/s;
* weight-space ``sgd_weights(method="cuda")`` against the CuPy blocked engine
  ``method="numpy"`` (small kernels per step) at N = 10⁴, R = 1024, float64 and float32;
  target on an H200: ≥ 20×.
"""

from __future__ import annotations

import time

import numpy as np

import quadnet as qn

P, P_STAR, A, B, LR = 4, 2, 0.25, 0.5, 0.5
CHAIN_TARGET = 1e9
WEIGHTS_TARGET = 20.0


def gpu_status() -> tuple[bool, str]:
    """(usable, why not / device name)."""
    if not qn.cupy_available():
        return False, "CuPy cannot run here (no GPU or not installed)"
    from quadnet.sgd import _cuda

    if not _cuda.kernels_available() or _cuda.simulating():
        return False, "numba's CUDA target cannot run here"
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return True, name


def _sync():
    import cupy

    cupy.cuda.Device().synchronize()


def _timed(fn) -> float:
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def _calibrated(fn, budget, first):
    """Seconds per step of fn(steps): steps grown until a run takes about budget/3 s, then the
    slope between runs of n and 2n steps (best of two each), so the fixed cost of a call (keys,
    set-up, copies back) cancels; returns (seconds per step, n)."""
    steps, dt = first, _timed(lambda: fn(first))
    while dt < budget / 3 and steps < 10**9:
        steps = int(max(2 * steps, steps * budget / 3 / max(dt, 1e-6)))
        dt = _timed(lambda n=steps: fn(n))
    t1 = min(dt, _timed(lambda: fn(steps)))
    t2 = min(_timed(lambda: fn(2 * steps)), _timed(lambda: fn(2 * steps)))
    return max(t2 - t1, 1e-9) / steps, steps


def _start(R, N, seed=0):
    import cupy

    Ws = qn.teacher(P_STAR, N, seed=seed, backend="numpy")
    W0 = qn.init_student(P, N, replicas=R, seed=seed + 1, backend="numpy")
    Q0, M0, Pm = qn.overlaps_from_weights(W0, Ws)
    return cupy.asarray(W0), cupy.asarray(Ws), cupy.asarray(Q0), cupy.asarray(M0), cupy.asarray(Pm)


def chain_curve(replicas=(1024, 8192, 65536, 262144, 1048576), N=10**4, budget=1.5) -> list:
    """Replica-steps/s of the fused chain (and, at the smallest R, the CuPy reference)."""
    import cupy

    rows = []
    Qs, Ms, Pm = qn.overlaps_from_weights(
        qn.init_student(P, N, seed=1, backend="numpy"), qn.teacher(P_STAR, N, seed=0, backend="numpy")
    )
    for R in replicas:
        Q0 = cupy.asarray(np.broadcast_to(Qs, (R, P, P)).copy())
        M0 = cupy.asarray(np.broadcast_to(Ms, (R, P, P_STAR)).copy())
        Pc = cupy.asarray(Pm)
        run = lambda n, Q0=Q0, M0=M0, Pc=Pc: qn.sgd_overlaps(Q0, M0, Pc, N, A, B, LR, [n / N], seed=1, method="cuda")  # noqa: E731
        run(8)  # compile
        sec, steps = _calibrated(run, budget, 64)
        rows.append({"R": R, "N": N, "method": "cuda", "replica_steps_per_s": R / sec, "steps": steps})
        print(f"  chain cuda   R = {R:>8}: {R / sec:.3g} replica-steps/s", flush=True)
    R = replicas[0]
    Q0 = cupy.asarray(np.broadcast_to(Qs, (R, P, P)).copy())
    M0 = cupy.asarray(np.broadcast_to(Ms, (R, P, P_STAR)).copy())
    ref = lambda n: qn.sgd_overlaps(Q0, M0, cupy.asarray(Pm), N, A, B, LR, [n / N], seed=1, method="numpy")  # noqa: E731
    sec, steps = _calibrated(ref, budget, 16)
    rows.append({"R": R, "N": N, "method": "numpy (CuPy reference)", "replica_steps_per_s": R / sec, "steps": steps})
    print(f"  chain cupy   R = {R:>8}: {R / sec:.3g} replica-steps/s", flush=True)
    return rows


def weights_compare(N=10**4, R=1024, budget=2.0) -> list:
    """sgd_weights on CuPy arrays: the fused kernel against the blocked engine, float64 and float32."""
    rows = []
    W0, Ws, _, _, _ = _start(R, N)
    for dtype in (np.float64, np.float32):
        W = W0.astype(dtype)
        out = {"N": N, "R": R, "dtype": np.dtype(dtype).name}
        for method in ("numpy", "cuda"):
            run = lambda n, m=method, W=W: qn.sgd_weights(W, Ws, A, B, LR, [n / N], seed=1, method=m)  # noqa: E731
            run(4)
            sec, steps = _calibrated(run, budget, 4)
            out[method] = {"replica_steps_per_s": R / sec, "steps": steps}
        out["ratio_cuda_vs_cupy"] = out["cuda"]["replica_steps_per_s"] / out["numpy"]["replica_steps_per_s"]
        print(
            f"  weights {out['dtype']}: cupy {out['numpy']['replica_steps_per_s']:.3g}, fused "
            f"{out['cuda']['replica_steps_per_s']:.3g} replica-steps/s ({out['ratio_cuda_vs_cupy']:.3g}x)",
            flush=True,
        )
        rows.append(out)
    return rows


def run_gpu(quick=False) -> dict | None:
    """All GPU rows, with the device and the targets; None (and a message) without a GPU."""
    ok, name = gpu_status()
    if not ok:
        print(f"GPU rows skipped: {name}")
        return None
    from quadnet.sgd import _cuda

    print(f"GPU rows on {name} ({_cuda.implementation()}):")
    replicas = (1024, 16384, 262144) if quick else (1024, 8192, 65536, 262144, 1048576)
    chain = chain_curve(replicas=replicas, N=10**4 if not quick else 10**3)
    weights = weights_compare(R=1024 if not quick else 128)
    best_chain = max(r["replica_steps_per_s"] for r in chain if r["method"] == "cuda")
    best_w = max(r["ratio_cuda_vs_cupy"] for r in weights)
    targets = {
        "chain_replica_steps_per_s": best_chain,
        "chain_target": CHAIN_TARGET,
        "chain_met": best_chain >= CHAIN_TARGET,
        "weights_ratio": best_w,
        "weights_target": WEIGHTS_TARGET,
        "weights_met": best_w >= WEIGHTS_TARGET,
    }
    for k, v in targets.items():
        print(f"  {k}: {v}")
    return {
        "device": name,
        "cuda_implementation": _cuda.implementation(),
        "quick": quick,
        "params": {"p": P, "p_star": P_STAR, "a": A, "b": B, "lr": LR},
        "chain": chain,
        "weights": weights,
        "targets": targets,
    }


def markdown_table(gpu: dict) -> str:
    """The GPU rows as a Markdown table (for the performance appendix)."""
    out = [
        f"Device: {gpu['device']} ({gpu['cuda_implementation']})",
        "",
        "| engine | N | R | replica-steps/s |",
        "|---|---:|---:|---:|",
    ]
    for r in gpu["chain"]:
        out.append(f"| chain, {r['method']} | {r['N']:,} | {r['R']:,} | {r['replica_steps_per_s']:.3g} |")
    for r in gpu["weights"]:
        for m, label in (("numpy", "CuPy blocked"), ("cuda", "fused")):
            out.append(
                f"| weights {r['dtype']}, {label} | {r['N']:,} | {r['R']:,} | {r[m]['replica_steps_per_s']:.3g} |"
            )
    return "\n".join(out)
