"""Where the fused CUDA kernels can run (private): numba's CUDA target on a GPU, or its simulator.

The kernels are written with ``numba.cuda`` (the NVIDIA-maintained ``numba-cuda`` package when it is
installed, else the target built into numba ≤ 0.68). With ``NUMBA_ENABLE_CUDASIM=1`` set before
numba is imported they run, slowly, on the CPU under numba's CUDA simulator, on NumPy arrays: that
is how the test suite checks them without a GPU. On a GPU they take CuPy arrays (through the CUDA
array interface).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["simulating", "kernels_available", "implementation", "require", "launch_config"]


def simulating() -> bool:
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` before numba's import)."""
    try:
        from numba import config
    except Exception:
        return False
    return bool(getattr(config, "ENABLE_CUDASIM", False))


def _cuda():
    from numba import cuda

    return cuda


def kernels_available() -> bool:
    """True when the CUDA kernels can run here: under the simulator, or with a usable GPU."""
    try:
        cuda = _cuda()
        return simulating() or bool(cuda.is_available())
    except Exception:
        return False


def implementation() -> str:
    """'simulator', 'numba-cuda' (NVIDIA's package) or 'numba built-in' (the deprecated target)."""
    if simulating():
        return "simulator"
    try:
        cuda = _cuda()
    except Exception:
        return "none"
    return "numba-cuda" if getattr(cuda, "implementation", "") == "NVIDIA" else "numba built-in"


def require(xp: Any, func: str) -> None:
    """Raise a clear error unless ``method='cuda'`` can run on arrays of module ``xp``."""
    try:
        cuda = _cuda()
    except Exception as exc:
        raise ImportError(
            f"{func}(method='cuda') needs numba's CUDA target (pip install -r requirements-gpu.txt, "
            f"which brings numba-cuda): {exc}"
        ) from exc
    if simulating():
        if xp is not np:
            raise ValueError(
                f"{func}(method='cuda') under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) runs on NumPy "
                "arrays; got CuPy arrays"
            )
        return
    if not cuda.is_available():
        raise RuntimeError(
            f"{func}(method='cuda') needs a CUDA GPU, and none is usable here (set "
            "NUMBA_ENABLE_CUDASIM=1 before importing numba to run the kernels on the CPU simulator)"
        )
    if xp is np:
        raise ValueError(
            f"{func}(method='cuda') runs on CuPy arrays (cupy.asarray(...)); got NumPy arrays "
            "(use method='numba' or 'numpy' on the CPU)"
        )


def launch_config(R: int, threads: int) -> tuple[int, int]:
    """(blocks, threads per block) covering R items, one thread each (fewer threads under the
    simulator, which runs each thread as a Python thread)."""
    if simulating():
        threads = min(threads, 8)
    threads = max(1, min(threads, R))
    return -(-R // threads), threads
