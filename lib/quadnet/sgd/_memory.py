"""Memory planning of weight-space SGD (private): the peak a run will allocate, estimated before
anything is allocated, against the memory available, with the options that would fit.

Only the arrays the run allocates are counted (the caller's own arrays exist already). The
estimate is an upper bound of what NumPy allocates (tests compare it with ``tracemalloc``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = [
    "CHUNK_BYTES",
    "MAX_CHUNK_STEPS",
    "MemoryBudgetError",
    "WeightsLayout",
    "chunk_sizes",
    "available_bytes",
    "check_budget",
]

#: working-memory budget (bytes) for the inputs of one chunk of steps
CHUNK_BYTES = 64 * 2**20
MAX_CHUNK_STEPS = 16


class MemoryBudgetError(MemoryError, ValueError):
    """A run whose estimated peak memory exceeds what is available (or ``max_memory``); raised
    before anything is allocated. A ``MemoryError`` and a ``ValueError``."""


MemoryBudgetError.__module__ = "quadnet"


def chunk_sizes(R: int, N: int, itemsize: int, chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int]:
    """(K, Rg): steps per chunk and replicas per group, so that the inputs of a chunk,
    Rg × K × N numbers, stay within ``chunk_bytes``."""
    K = int(max(1, min(MAX_CHUNK_STEPS, chunk_bytes // (N * itemsize))))
    Rg = int(max(1, min(R, chunk_bytes // (K * N * itemsize))))
    return K, Rg


@dataclass(frozen=True)
class WeightsLayout:
    """What a weight-space run allocates: sizes, precision and which copies it makes."""

    R: int
    p: int
    ps: int
    N: int
    T: int
    itemsize: int  # 8 (float64) or 4 (float32)
    copy_weights: bool  # a working copy of W0 (False with overwrite=True)
    copy_init: bool  # a copy of W(0) (track_init with overwrite=True)
    teacher_rows: int  # rows of teacher copies made (0: the caller's teacher is used as it is)
    track_init: bool
    fused: bool = False  # the CUDA kernel: x buffers of one row per replica instead of chunks of inputs

    def parts(self) -> dict[str, int]:
        """Bytes of each allocation group at the peak."""
        R, p, ps, N, T, it = self.R, self.p, self.ps, self.N, self.T, self.itemsize
        K, Rg = chunk_sizes(R, N, it)
        f64 = 0 if it == 8 else 8  # float64 copies of a group when the run is in float32
        out = T * R * (p * p * (2 if self.track_init else 1) + p * ps) * 8
        return {
            "working copy of the weights": R * p * N * it if self.copy_weights else 0,
            "copy of W(0) for track_init": R * p * N * it if self.copy_init else 0,
            "teacher copy": self.teacher_rows * ps * N * it,
            "teacher in float64 (for P)": (1 if self.teacher_rows <= 1 else R) * ps * N * f64,
            "outputs Q, M (R)": out + 4 * T * R * 8,
            # the larger of: a chunk's inputs and the update's temporary / the float64 copies of a group
            # while recording / the temporaries of the loss at the end
            "small arrays (generators, temporaries)": 2**20,
            "inputs of a chunk": R * N * it if self.fused else Rg * K * N * it,
            # the largest temporary: the update's product / the float64 copies of a group while
            # recording (float32 runs) / the temporaries of the loss at the end
            "largest temporary": max(
                Rg * p * N * it + 8 * Rg * K * (2 * p + ps + K + 4),
                (Rg * p * (2 if self.track_init else 1) + (1 if self.teacher_rows <= 1 else Rg) * ps) * N * f64,
                T * R * max(p, ps) * p * 8,
            ),
        }

    def peak(self) -> int:
        return int(sum(self.parts().values()))


def available_bytes(xp: Any) -> int | None:
    """Memory available now: on NumPy the kernel's ``MemAvailable`` (Linux), on CuPy the device's
    free memory plus the pool's cached blocks; None where it cannot be read."""
    if xp is not np:
        try:
            free, _ = xp.cuda.runtime.memGetInfo()
            return int(free + xp.get_default_memory_pool().free_bytes())
        except Exception:
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**27 else f"{n / 2**20:.3g} MiB"


def _options(lay: WeightsLayout, budget: int) -> list[str]:
    """The changes of the call that would make the run fit within ``budget``."""
    opts = []
    if lay.itemsize == 8:
        alt = replace(lay, itemsize=4, teacher_rows=max(lay.teacher_rows, 1))
        if alt.peak() <= budget:
            opts.append(f"dtype=np.float32 (peak ≈ {_gib(alt.peak())})")
    if lay.copy_weights:
        alt = replace(lay, copy_weights=False, copy_init=lay.track_init)
        if alt.peak() <= budget:
            opts.append(f"overwrite=True, updating W0 in place (peak ≈ {_gib(alt.peak())})")
    per = lay.peak() / lay.R
    fit = int(budget // per) if per > 0 else 0
    while fit > 0 and replace(lay, R=fit, teacher_rows=min(lay.teacher_rows, fit)).peak() > budget:
        fit -= 1
    if 0 < fit < lay.R:
        opts.append(f"at most {fit} replicas per call")
    return opts


def check_budget(lay: WeightsLayout, max_memory: Any, xp: Any) -> int:
    """The estimated peak in bytes; raises :class:`MemoryBudgetError` (with the number and the
    options that fit) when it exceeds ``max_memory`` (bytes; None: the memory available now)."""
    budget = available_bytes(xp) if max_memory is None else max_memory
    need = lay.peak()
    if budget is None or need <= budget:
        return need
    parts = ", ".join(f"{k} {_gib(b)}" for k, b in lay.parts().items() if b)
    where = "max_memory" if max_memory is not None else ("available" if xp is np else "free on the GPU")
    opts = _options(lay, budget)
    hint = ("; options that fit: " + "; ".join(opts)) if opts else "; no smaller setting of this call fits"
    raise MemoryBudgetError(
        f"sgd_weights would need about {_gib(need)} at its peak ({parts}) for R = {lay.R} replicas of "
        f"p = {lay.p} rows and N = {lay.N}, but {_gib(budget)} is {where}{hint}"
    )
