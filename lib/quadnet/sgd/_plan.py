"""Planning shared by the two simulators (private): parameters, output steps, random streams, the
segment loop that advances an engine to each output time.

The rule for time, the same for every simulator and integrator of the package: the start state is
at α = 0; ``alphas`` are the output times, which may start later (``alphas = [5, 10]`` runs from
α = 0 and records at α = 5 and 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import _validate as v
from .._divergence import check_blowup
from ..model import make_rng

#: Largest input dimension: N and the step counts round(α N) must be exact in float64 (2^53), and
#: the compiled kernels hold them as 64-bit integers.
N_MAX = 2**53


@dataclass(frozen=True)
class Params:
    """Validated scalar parameters of a run: readouts, plain step γ (``lr``), η = aγ, label noise σ,
    blow-up factor."""

    a: float
    b: float
    lr: float
    eta: float
    noise: float
    blowup: float


def params(a: Any, b: Any, lr: Any, eta: Any, noise: Any, blowup: Any) -> Params:
    """Validate the scalar parameters; exactly one of ``lr`` (γ) and ``eta`` (η = aγ)."""
    a = v.positive("a", a, array=False)
    b = v.positive("b", b, array=False)
    lr = v.step(lr, eta, a)
    noise = v.positive("noise", noise, allow_zero=True, array=False)
    return Params(a, b, lr, a * lr, noise, check_blowup(blowup))


def input_dimension(N: Any, minimum: int, why: str = "") -> int:
    """N as an int in [minimum, N_MAX] (integral floats such as 1e4 accepted)."""
    N = v.integer("N", N)
    if N < minimum:
        raise ValueError(f"N must be ≥ {minimum}{why}, got N = {N}")
    if N > N_MAX:
        raise ValueError(
            f"N must be an integer in [{minimum}, 2**53 = {N_MAX}] (N and the step counts α·N are "
            f"held exactly in float64 and in the kernels' 64-bit integers), got N = {N}"
        )
    return N


def output_steps(alphas: Any, N: int) -> np.ndarray:
    """Step counts round(α N) of the output times (distinct, exact in int64)."""
    if alphas is None:
        raise TypeError("alphas is required: the output times α (an increasing 1-d array, α ≥ 0)")
    al = v.alphas(alphas)
    if al[-1] * N >= 2.0**63:
        raise ValueError(f"alphas: the last output time α = {al[-1]:g} at N = {N} is more than 2**63 steps")
    steps = np.rint(al * N).astype(np.int64)
    same = np.nonzero(np.diff(steps) == 0)[0]
    if same.size:
        i = int(same[0])
        raise ValueError(
            f"alphas must map to distinct step counts round(α N): α = {al[i]:g} and {al[i + 1]:g} both give "
            f"{steps[i]} steps at N = {N}; space the output times by at least 1/N"
        )
    return steps


def replica_rngs(seed: Any, R: int, streams: int, role: str) -> list:
    """R lists of ``streams`` independent NumPy Generators of ``role``, replica r's depending only
    on (seed, role, r)."""
    root = make_rng(seed, "numpy", role=role)
    return [child.spawn(streams) for child in root.spawn(R)]


def replica_keys(seed: Any, R: int, role: str) -> np.ndarray:
    """(R, 2) uint64 words per replica from its own stream of ``role`` (seeds of in-kernel
    generators), never all-zero."""
    st = np.empty((R, 2), dtype=np.uint64)
    for r, (g,) in enumerate(replica_rngs(seed, R, 1, role)):
        s = g.integers(0, 2**64, size=2, dtype=np.uint64, endpoint=False)
        if s[0] == 0 and s[1] == 0:  # probability 2^-128; the all-zero state is a fixed point of xoroshiro
            s[1] = np.uint64(0x9E3779B97F4A7C15)
        st[r] = s
    return st


_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Salmon et al. 2011) on the host, vectorized: 32-bit words held in uint64
    arrays; returns the four output words. The kernels' generator (``_philox.philox``) is the
    same function; both are checked against the Random123 known-answer vectors."""
    c0, c1, c2, c3, k0, k1 = (np.asarray(x, dtype=np.uint64) for x in (c0, c1, c2, c3, k0, k1))
    with np.errstate(over="ignore"):
        for _ in range(10):
            p0, p1 = _PHILOX_M[0] * c0, _PHILOX_M[1] * c2
            c0, c1, c2, c3 = (
                ((p1 >> np.uint64(32)) ^ c1 ^ k0) & _MASK32,
                p1 & _MASK32,
                ((p0 >> np.uint64(32)) ^ c3 ^ k1) & _MASK32,
                p0 & _MASK32,
            )
            k0, k1 = (k0 + _PHILOX_W[0]) & _MASK32, (k1 + _PHILOX_W[1]) & _MASK32
    return c0, c1, c2, c3


def philox_keys(seed: Any, R: int, role: str) -> np.ndarray:
    """(R,) uint64 keys of the kernels' per-replica Philox streams: two words drawn from ``role``'s
    stream of ``seed`` key a Philox map of the replica index, so replica r's key depends only on
    (seed, role, r), and a million keys take milliseconds (no SeedSequence per replica)."""
    root = make_rng(seed, "numpy", role=role).integers(0, 2**32, size=2, dtype=np.uint64)
    r = np.arange(R, dtype=np.uint64)
    w0, w1, _, _ = philox4x32(r & _MASK32, r >> np.uint64(32), 0, 0, root[0], root[1])
    return np.ascontiguousarray(w0 | (w1 << np.uint64(32)))


def progress_bar(progress: bool, total: int, desc: str):
    """A tqdm bar over ``total`` steps, or None."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=int(total), desc=desc, unit="step", unit_scale=True)


def run_segments(
    steps: np.ndarray,
    advance: Callable[[int, int], None],
    record: Callable[[int], None],
    max_segment: int,
    bar: Any = None,
) -> None:
    """From step 0, call ``advance(pos, n)`` (n ≤ ``max_segment``) until each output step, then
    ``record(ti)``; the progress ``bar`` is updated and closed."""
    pos = 0
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for ti, target in enumerate(steps):
                while pos < target:
                    n = int(min(max_segment, target - pos))
                    advance(pos, n)
                    pos += n
                    if bar is not None:
                        bar.update(n)
                record(ti)
    finally:
        if bar is not None:
            bar.close()


def batch_of(*shapes: tuple, names: tuple) -> tuple:
    """The broadcast batch shape of the leading axes ``shapes`` (ValueError naming the arguments)."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise ValueError(f"batch shapes of {listed} do not broadcast") from None
