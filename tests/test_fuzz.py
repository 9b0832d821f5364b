"""Property-based fuzzing (hypothesis) of every public function of quadnet.

Each test draws a valid call and, half of the time, corrupts one argument with a value outside its
documented range (wrong shape, dtype or type, NaN/inf, out of range, not positive semidefinite,
...). A valid call must return finite results of the documented shapes (NaN only where documented:
after a divergence, for escape times never reached) and warn with CriticalStepWarning exactly
when the step is above the critical one (P = I); a corrupted call must raise ValueError or
TypeError (RuntimeError where documented: CuPy asked for and absent) whose message names the
corrupted parameter. No other exception, no unexpected warning, no NaN.

Deterministic: derandomized hypothesis, no example database. The number of inputs tried is
tallied in COUNTS; with QUADNET_FUZZ_REPORT=<file> it is appended there as one JSON line,
else printed at the end of the module (visible with -s).
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, is_dataclass
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quadnet as qn
from conftest import report_counts

COUNTS: Counter = Counter()
FUZZED: set = set()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    report_counts({"module": "test_fuzz", "inputs": COUNTS["valid"] + COUNTS["invalid"], **COUNTS})


def fuzz(n):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# --------------------------------------------------------------------------- checking


def _finite(x, path="result"):
    """Every float in x (arrays, scalars, tuples, dicts, dataclasses) is finite."""
    if x is None or isinstance(x, (bool, str, int, ModuleType, np.random.Generator)):
        return
    if isinstance(x, (float, np.floating, complex)):
        assert np.isfinite(x), f"{path} = {x}"
        return
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "fc":
            assert np.all(np.isfinite(x)), f"{path} has non-finite entries"
        return
    if isinstance(x, (tuple, list)):
        for i, item in enumerate(x):
            _finite(item, f"{path}[{i}]")
        return
    if isinstance(x, dict):
        for k, item in x.items():
            _finite(item, f"{path}[{k!r}]")
        return
    if is_dataclass(x):
        for f in fields(x):
            _finite(getattr(x, f.name), f"{path}.{f.name}")
        return
    if isinstance(x, (np.integer, np.bool_)):
        return
    raise AssertionError(f"{path}: unexpected result type {type(x).__name__}")


def valid(name, call, *, expect_warning=None, check_finite=True):
    """Run a valid call: no exception, finite output, warnings exactly as documented."""
    FUZZED.add(name)
    COUNTS["valid"] += 1
    COUNTS[f"fn:{name}"] += 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    critical = [w for w in caught if issubclass(w.category, qn.CriticalStepWarning)]
    # LongRunWarning depends on the machine's pace, not on the input: not part of the contract here
    others = [w for w in caught if not issubclass(w.category, (qn.CriticalStepWarning, qn.LongRunWarning))]
    assert not others, f"{name}: unexpected warnings {[str(w.message) for w in others]}"
    if expect_warning is not None:
        assert bool(critical) == expect_warning, (
            f"{name}: CriticalStepWarning {'missing' if expect_warning else 'unexpected'}"
        )
        if critical:
            COUNTS["warnings_checked"] += 1
    if check_finite:
        _finite(out, name)
    return out


def _names_in(msg: str, names) -> bool:
    for name in names:
        if len(name) > 1:
            if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", msg):
                return True
        elif re.search(
            rf"(^|[\s(\[,`'*]){re.escape(name)}(?=\s+must|\s*=|\s*,|\s+\(|\s+and|\s*>|\s*<|\s*≥|\s*≤|\s+need)", msg
        ):
            return True
    return False


def invalid(name, call, names, exc=(ValueError, TypeError)):
    """Run a corrupted call: it must raise ``exc`` naming one of ``names``."""
    FUZZED.add(name)
    COUNTS["invalid"] += 1
    COUNTS[f"fn:{name}"] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qn.CriticalStepWarning)
        with pytest.raises(exc) as info:
            call()
    msg = str(info.value)
    assert _names_in(msg, names), f"{name}: error does not name any of {names}: {msg!r}"
    return info.value


def corrupt(data, spec):
    """None (keep the call valid) or (param, bad value, names, exceptions) from ``spec``:
    {param: [(label, bad value, names or None, exc or None), ...]}."""
    if not data.draw(st.booleans(), label="corrupt"):
        return None
    param = data.draw(st.sampled_from(sorted(spec)), label="param")
    label, value, names, exc = data.draw(st.sampled_from(spec[param]), label=f"bad {param}")
    COUNTS[f"bad:{label}"] += 1
    return param, value, names or (param,), exc or (ValueError, TypeError)


def call_with(fn, args: dict, bad):
    """fn(**args) with one argument replaced by a bad value."""
    kw = dict(args)
    if bad is not None:
        kw[bad[0]] = bad[1]
    return lambda: fn(**kw)


# --------------------------------------------------------------------------- bad values

NAN, INF = float("nan"), float("inf")


def bad_positive(x=1.0, *, zero=True, arrays=True):
    out = [
        ("negative", -abs(x) - 0.5, None, None),
        ("nan", NAN, None, None),
        ("inf", INF, None, None),
        ("-inf", -INF, None, None),
        ("string", "1.0", None, TypeError),
        ("none", None, None, TypeError),
        ("bool", True, None, TypeError),
        ("complex", 1 + 1j, None, TypeError),
        ("huge", 1e300, None, ValueError),
    ]  # above LARGEST = 1e50: a ValueError with the range, not OverflowError
    if zero:
        out.append(("zero", 0.0, None, None))
    if arrays:
        out.append(("negative array", np.array([1.0, -1.0]), None, None))
    return out


def bad_nonneg():
    return [
        ("negative", -0.3, None, None),
        ("nan", NAN, None, None),
        ("inf", INF, None, None),
        ("huge", 1e300, None, ValueError),
        ("string", "0", None, TypeError),
        ("none", None, None, TypeError),
        ("bool", False, None, TypeError),
    ]


def bad_int(minimum=1):
    return [
        ("below minimum", minimum - 1, None, ValueError),
        ("negative", -3, None, ValueError),
        ("float", 2.5, None, TypeError),
        ("float near int", 3.0000001, None, TypeError),
        ("numpy float", np.float64(3.5), None, TypeError),
        ("infinite", float("inf"), None, TypeError),
        ("string", "4", None, TypeError),
        ("none", None, None, TypeError),
        ("bool", True, None, TypeError),
    ]


def bad_array(X, name, related=(), *, psd=None, symmetric=False, shape=True):
    X = np.asarray(X, dtype=float)
    out = []
    if X.size:
        nan, inf = X.copy(), X.copy()
        nan.flat[0], inf.flat[-1] = NAN, -INF
        out += [("nan entry", nan, (name,), ValueError), ("inf entry", inf, (name,), ValueError)]
    out += [
        ("1-d", np.ones(3), (name, *related), ValueError),
        ("string", "eye", (name,), TypeError),
        ("none", None, (name,), TypeError),
        ("complex", X.astype(complex) + 1j, (name,), TypeError),
        ("ragged", [[1.0, 2.0], [3.0]], (name,), TypeError),
        ("object", np.array([object()] * 4, dtype=object).reshape(2, 2), (name,), TypeError),
    ]
    if shape and X.ndim >= 2:
        out.append(("shape", np.zeros(X.shape[:-2] + (X.shape[-2] + 1, X.shape[-1] + 1)), (name, *related), ValueError))
    if symmetric and X.ndim >= 2 and X.shape[-1] >= 2:
        S = X.copy()
        S[..., 0, 1] += 1.0 + np.abs(S).max()
        out.append(("asymmetric", S, (name,), ValueError))
    if psd is not None:
        out.append(("not PSD", psd, (name, *related), ValueError))
    return out


def bad_seed():
    return [
        ("string", "seed", None, TypeError),
        ("float", 1.5, None, TypeError),
        ("negative", -1, None, ValueError),
        ("bool", True, None, TypeError),
    ]


def as_given(data, n, label="integral float"):
    """``n`` or, half of the time, ``float(n)``: integral floats (N=1e4) are valid integers."""
    return float(n) if data.draw(st.booleans(), label=label) else n


def bad_overlap_shapes(Q, M, P, names=("Q", "M", "P"), *, empty=False):
    """Shape faults that must blame the argument at fault: a transposed M, weights passed as
    overlaps (with a pointer to overlaps_from_weights), and with ``empty`` an empty batch (an
    error for the integrator; the pure functions return empty arrays, as NumPy does)."""
    nQ, nM, nP = names
    p, ps = M.shape[-2:]
    out = {nQ: [("weights for overlaps", np.ones(Q.shape[:-2] + (p, p + ps + 7)), (nQ,), ValueError)], nM: []}
    if p != ps:
        out[nM].append(("transposed", np.swapaxes(M, -1, -2), (nM,), ValueError))
    if empty:
        out[nM].append(("empty batch", np.zeros((0, p, ps)), (nQ, nM, nP), ValueError))
    return out


def merge(*specs):
    """Union of bad-value specs {param: [cases]}."""
    out: dict = {}
    for spec in specs:
        for k, cases in spec.items():
            out.setdefault(k, []).extend(cases)
    return out


def bad_alphas():
    return [
        ("decreasing", [0.0, 2.0, 1.0], ("alphas",), ValueError),
        ("2-d", [[0.0, 1.0]], ("alphas",), ValueError),
        ("negative", [-1.0, 1.0], ("alphas",), ValueError),
        ("nan", [0.0, NAN], ("alphas",), ValueError),
        ("empty", [], ("alphas",), ValueError),
        ("string", "0 1", ("alphas",), TypeError),
        ("none", None, ("alphas",), TypeError),
        ("strings", ["a", "b"], ("alphas",), TypeError),
    ]


# --------------------------------------------------------------------------- valid inputs

seeds = st.integers(0, 2**32 - 1)
widths = st.integers(1, 4)
teacher_widths = st.integers(1, 3)
readouts = st.floats(0.1, 2.0)
small_noise = st.one_of(st.just(0.0), st.floats(0.0, 1.0))
batches = st.sampled_from([(), (2,), (1, 3)])


def gram(seed, p, ps, batch=(), *, identity=False, N=None):
    """(W, W*, Q, M, P): overlaps of actual weights (a consistent PSD triple), P = I if ``identity``."""
    rng = np.random.default_rng(seed)
    N = N or p + ps + int(rng.integers(2, 12))
    Ws = (
        qn.teacher(ps, N, seed=rng, backend="numpy")
        if identity
        else rng.standard_normal((ps, N)) * rng.uniform(0.5, 1.5)
    )
    W = rng.standard_normal(batch + (p, N)) * rng.uniform(0.3, 1.5) + rng.uniform(0, 1) * (
        rng.standard_normal((p, ps)) @ Ws
    ) / np.sqrt(ps)
    Q, M, P = qn.overlaps_from_weights(W, Ws)
    return W, Ws, Q, M, P


def bad_param_shape(x, batch):
    """A per-element parameter array whose shape does not broadcast against ``batch``."""
    return [("wrong shape", np.full((batch[-1] + 1,), x), None, ValueError)] if batch else []


def overlap_spec(Q, M, P, names=("Q", "M", "P")):
    nQ, nM, nP = names
    big = np.abs(M).max() + np.trace(Q, axis1=-2, axis2=-1).max() + np.trace(P, axis1=-2, axis2=-1).max() + 1.0
    Q_bad = Q - big * np.eye(Q.shape[-1])
    M_bad = M + 10 * big
    P_bad = -P - np.eye(P.shape[-1])
    return {
        nQ: bad_array(Q, nQ, (nM, nP), psd=Q_bad, symmetric=True),
        nM: bad_array(M, nM, (nQ, nP), psd=M_bad),
        nP: bad_array(P, nP, (nQ, nM), psd=P_bad, symmetric=True),
    }


def above_critical(P, p, ps, a, b, lr, noise, Q=None):
    """Whether a CriticalStepWarning is due (True), excluded (False) or either (None), by the documented
    rule of quadnet.stability.warn_unstable_step: for P within 5 % of I it must warn above γ_c and must
    not warn below the smaller of γ_m and the basin's step of the start; in between it depends on
    the post-escape threshold, which this oracle leaves alone. Far from P = I it never warns."""
    ev = np.linalg.eigvalsh(np.asarray(P, dtype=float).reshape(-1, ps, ps))
    if not np.all(np.abs(ev - 1) <= 0.05):
        return False
    lr_c = qn.critical_lr(p, ps, a, b, noise=noise)
    if lr > 1.001 * lr_c:
        return True
    q0 = 0.0 if Q is None else float(np.max(np.trace(np.asarray(Q).reshape(-1, p, p), axis1=-2, axis2=-1))) / p
    safe = min(
        lr_c, qn.manifold_critical_lr(ps, a, b) if p >= ps else lr_c, qn.basin_lr(p, ps, a, b, q0) if q0 > 0 else lr_c
    )
    return False if lr < 0.999 * safe else None


# --------------------------------------------------------------------------- overlaps and ODE


@fuzz(150)
@given(
    data=st.data(), seed=seeds, p=widths, ps=teacher_widths, batch=batches, a=readouts, b=readouts, noise=small_noise
)
def test_population_loss(data, seed, p, ps, batch, a, b, noise):
    _, _, Q, M, P = gram(seed, p, ps, batch)
    args = dict(Q=Q, M=M, P=P, a=a, b=b, noise=noise)
    spec = merge(
        overlap_spec(Q, M, P),
        bad_overlap_shapes(Q, M, P),
        {"a": bad_positive(a) + bad_param_shape(a, batch), "b": bad_positive(b), "noise": bad_nonneg()},
    )
    bad = corrupt(data, spec)
    if bad:
        invalid("population_loss", call_with(qn.population_loss, args, bad), bad[2], bad[3])
        return
    loss = valid("population_loss", call_with(qn.population_loss, args, None))
    assert loss.shape == batch and np.all(loss >= 0.5 * noise**2)  # clipped at its exact lower bound


@fuzz(150)
@given(
    data=st.data(),
    seed=seeds,
    p=widths,
    ps=teacher_widths,
    batch=batches,
    a=readouts,
    b=readouts,
    lr=st.floats(0.01, 2.0),
    noise=small_noise,
    drift=st.booleans(),
)
def test_ode_rhs(data, seed, p, ps, batch, a, b, lr, noise, drift):
    _, _, Q, M, P = gram(seed, p, ps, batch)
    by_eta = data.draw(st.booleans(), label="step as eta")
    args = dict(Q=Q, M=M, P=P, a=a, b=b, noise=noise, drift_only=drift, **({"eta": a * lr} if by_eta else {"lr": lr}))
    step = "eta" if by_eta else "lr"
    spec = merge(
        overlap_spec(Q, M, P),
        bad_overlap_shapes(Q, M, P),
        {
            "a": bad_positive(a) + bad_param_shape(a, batch),
            "b": bad_positive(b),
            step: bad_positive(lr),
            "noise": bad_nonneg(),
            ("lr" if by_eta else "eta"): [("both lr and eta", 0.1, ("lr", "eta"), TypeError)],
        },
    )
    bad = corrupt(data, spec)
    if bad:
        invalid("ode_rhs", call_with(qn.ode_rhs, args, bad), bad[2], bad[3])
        return
    dQ, dM = valid("ode_rhs", call_with(qn.ode_rhs, args, None))
    assert dQ.shape == batch + (p, p) and dM.shape == batch + (p, ps)


@fuzz(60)
@given(
    data=st.data(),
    seed=seeds,
    p=widths,
    ps=teacher_widths,
    batch=st.sampled_from([(), (2,)]),
    a=readouts,
    b=readouts,
    f=st.floats(0.05, 1.5),
    noise=small_noise,
    drift=st.booleans(),
    identity=st.booleans(),
    track=st.booleans(),
)
def test_integrate_ode(data, seed, p, ps, batch, a, b, f, noise, drift, identity, track):
    _, _, Q, M, P = gram(seed, p, ps, batch, identity=identity)
    lr = f * qn.critical_lr(p, ps, a, b, noise=noise)
    alphas = np.array([0.0, 0.5, 1.0, 2.0])
    alphas = alphas[data.draw(st.integers(0, 2), label="first output") :]  # outputs may start after α = 0
    by_eta = data.draw(st.booleans(), label="step as eta")
    args = dict(
        Q0=Q,
        M0=M,
        P=P,
        a=a,
        b=b,
        alphas=alphas,
        noise=noise,
        drift_only=drift,
        track_init=track,
        **({"eta": a * lr} if by_eta else {"lr": lr}),
    )
    step = "eta" if by_eta else "lr"
    spec = {
        **merge(overlap_spec(Q, M, P, ("Q0", "M0", "P")), bad_overlap_shapes(Q, M, P, ("Q0", "M0", "P"), empty=True)),
        "a": bad_positive(a, arrays=False),
        "b": bad_positive(b, arrays=False),
        step: bad_positive(lr, arrays=False),
        "noise": bad_nonneg(),
        ("lr" if by_eta else "eta"): [("both lr and eta", 0.1, ("lr", "eta"), TypeError)],
        "method": [("unknown", "Euler", None, ValueError)],
        "alphas": bad_alphas(),
        "blowup": [("below one", 0.5, None, ValueError), ("nan", NAN, None, None), ("string", "x", None, TypeError)],
        "rtol": bad_positive(arrays=False),
    }
    bad = corrupt(data, spec)
    if bad:
        invalid("integrate_ode", call_with(qn.integrate_ode, args, bad), bad[2], bad[3])
        return
    warn = False if drift else above_critical(P, p, ps, a, b, lr, noise, Q)
    tr = valid("integrate_ode", call_with(qn.integrate_ode, args, None), expect_warning=warn, check_finite=False)
    _check_trajectory(tr, alphas, batch, p, ps)
    assert (tr.R is not None) == track


def _check_trajectory(tr, alphas, batch, p, ps):
    """Finite before the divergence (if any), NaN only after it: the documented NaN."""
    assert tr.Q.shape == (len(alphas),) + batch + (p, p) and tr.loss.shape == (len(alphas),) + batch
    div = np.asarray(tr.diverged)
    adiv = np.where(div, tr.alpha_diverged, np.inf)
    assert np.all(np.isfinite(np.asarray(tr.alpha_diverged)[div]))
    before = tr.alpha.reshape((-1,) + (1,) * len(batch)) < adiv
    assert np.all(np.isfinite(tr.loss[before])), "NaN before any divergence"
    assert np.all(np.isfinite(tr.Q[before])) and np.all(np.isfinite(tr.M[before]))
    assert np.all(np.isnan(tr.loss[~before & (tr.alpha.reshape((-1,) + (1,) * len(batch)) > adiv)]))
    if div.any():
        COUNTS["documented_nan_after_divergence"] += 1


# --------------------------------------------------------------------------- simulators


@fuzz(80)
@given(
    data=st.data(),
    seed=seeds,
    p=st.integers(1, 3),
    ps=st.integers(1, 2),
    R=st.sampled_from([(), (3,)]),
    a=readouts,
    b=readouts,
    f=st.floats(0.05, 2.0),
    noise=small_noise,
    identity=st.booleans(),
    method=st.sampled_from(["numpy", "numba", "auto"]),
    track=st.booleans(),
)
def test_sgd_overlaps(data, seed, p, ps, R, a, b, f, noise, identity, method, track):
    N = 2 * p + ps + data.draw(st.integers(0, 30), label="extra N")
    _, _, Q, M, P = gram(seed, p, ps, R, identity=identity, N=N)
    lr = f * qn.critical_lr(p, ps, a, b, noise=noise)
    alphas = np.array([0.0, 0.5, 1.0])
    args = dict(
        Q0=Q,
        M0=M,
        P=P,
        N=as_given(data, N),
        a=a,
        b=b,
        lr=lr,
        alphas=alphas,
        noise=noise,
        seed=seed,
        method=method,
        track_init=track,
    )
    spec = {
        **overlap_spec(Q, M, P, ("Q0", "M0", "P")),
        "N": bad_int() + [("too small", p + ps - 1, None, ValueError)],
        "a": bad_positive(a, arrays=False),
        "lr": bad_positive(lr, arrays=False),
        "noise": bad_nonneg(),
        "alphas": bad_alphas() + [("same step", [0.0, 0.1 / N], None, ValueError)],
        "method": [("unknown", "fortran", None, ValueError)],
        "seed": bad_seed(),
        "blowup": [("below one", 1.0, None, ValueError)],
    }
    bad = corrupt(data, spec)
    if bad:
        invalid("sgd_overlaps", call_with(qn.sgd_overlaps, args, bad), bad[2], bad[3])
        return
    warn = above_critical(P, p, ps, a, b, lr, noise, Q)
    tr = valid("sgd_overlaps", call_with(qn.sgd_overlaps, args, None), expect_warning=warn, check_finite=False)
    _check_trajectory(tr, tr.alpha, R, p, ps)


@fuzz(60)
@given(
    data=st.data(),
    seed=seeds,
    p=st.integers(1, 3),
    ps=st.integers(1, 2),
    R=st.sampled_from([(), (2,)]),
    a=readouts,
    b=readouts,
    f=st.floats(0.05, 2.0),
    noise=small_noise,
    identity=st.booleans(),
    dtype=st.sampled_from([None, np.float64, np.float32]),
)
def test_sgd_weights(data, seed, p, ps, R, a, b, f, noise, identity, dtype):
    N = p + ps + data.draw(st.integers(0, 20), label="extra N")
    W, Ws, _, _, P = gram(seed, p, ps, R, identity=identity, N=N)
    lr = f * qn.critical_lr(p, ps, a, b, noise=noise)
    alphas = np.array([0.0, 0.5, 1.0])
    args = dict(W0=W, W_star=Ws, a=a, b=b, lr=lr, alphas=alphas, noise=noise, seed=seed, dtype=dtype)
    spec = {
        "W0": bad_array(W, "W0", ("W_star",)),
        "W_star": bad_array(Ws, "W_star", ("W0",)),
        "b": bad_positive(b, arrays=False),
        "lr": bad_positive(lr, arrays=False),
        "noise": bad_nonneg(),
        "alphas": bad_alphas(),
        "dtype": [("int", np.int32, None, ValueError), ("nonsense", "float99", None, TypeError)],
    }
    bad = corrupt(data, spec)
    if bad:
        invalid("sgd_weights", call_with(qn.sgd_weights, args, bad), bad[2], bad[3])
        return
    warn = above_critical(P, p, ps, a, b, lr, noise, np.einsum("...in,...jn->...ij", W, W) / W.shape[-1])
    tr = valid("sgd_weights", call_with(qn.sgd_weights, args, None), expect_warning=warn, check_finite=False)
    _check_trajectory(tr, tr.alpha, R, p, ps)


@fuzz(60)
@given(
    data=st.data(),
    seed=seeds,
    p=widths,
    ps=teacher_widths,
    a=readouts,
    b=readouts,
    noise=small_noise,
    n=st.integers(2, 200),
    chunk=st.integers(1, 64),
)
def test_monte_carlo_loss(data, seed, p, ps, a, b, noise, n, chunk):
    W, Ws, _, _, _ = gram(seed, p, ps, (2,))
    args = dict(W=W, W_star=Ws, a=a, b=b, n_samples=n, noise=noise, seed=seed, chunk=chunk)
    spec = {
        "W": bad_array(W, "W", ("W_star",)),
        "W_star": bad_array(Ws, "W_star", ("W",))
        + [("batch", np.ones((3, ps, Ws.shape[-1])), ("W_star", "W"), ValueError)],
        "a": bad_positive(a, arrays=False),
        "noise": bad_nonneg(),
        "n_samples": bad_int(minimum=2),
        "chunk": bad_int(),
        "seed": bad_seed(),
    }
    bad = corrupt(data, spec)
    if bad:
        invalid("monte_carlo_loss", call_with(qn.monte_carlo_loss, args, bad), bad[2], bad[3])
        return
    est = valid("monte_carlo_loss", call_with(qn.monte_carlo_loss, args, None))
    assert est.mean.shape == (2,) and np.all(est.mean >= 0) and est.n_samples == n


# --------------------------------------------------------------------------- theory


@pytest.mark.parametrize(
    "which", ["plateau", "critical_lr", "escape_rate", "escape_time_estimate", "late_time_loss", "manifold_critical_lr"]
)
@fuzz(40)
@given(
    data=st.data(),
    p=st.integers(1, 12),
    ps=st.integers(1, 6),
    a=readouts,
    b=readouts,
    noise=small_noise,
    f=st.floats(0.0, 2.0),
    drift=st.booleans(),
    extra=st.integers(1, 10**6),
)
def test_theory(which, data, p, ps, a, b, noise, f, drift, extra):
    lr_c = valid("critical_lr", lambda: qn.critical_lr(p, ps, a, b, noise=noise))
    assert lr_c > 0
    lr = min(f, 0.999) * lr_c  # the plateau (and its escape) exist up to the critical step
    N = p + ps + extra
    base = dict(p=p, p_star=ps, a=a, b=b)
    common = {
        "p": bad_int(),
        "p_star": bad_int(),
        "a": bad_positive(a, arrays=False),
        "b": bad_positive(b, arrays=False),
    }
    if which == "plateau":
        args, spec = (
            {**base, "lr": lr, "noise": noise},
            {
                **common,
                "noise": bad_nonneg(),
                "lr": [("negative", -0.1, None, ValueError), ("above critical", 1.01 * lr_c + 1e-9, None, ValueError)],
            },
        )
        fn = qn.plateau
    elif which == "critical_lr":
        args, spec, fn = {**base, "noise": noise}, {**common, "noise": bad_nonneg()}, qn.critical_lr
    elif which == "manifold_critical_lr":
        args = {"p_star": ps, "a": a, "b": b}
        spec = {k: common[k] for k in ("p_star", "a", "b")}
        fn = qn.manifold_critical_lr
    elif which == "escape_rate":
        lr = max(lr, 1e-3 * lr_c)
        args = {**base, "lr": lr, "drift_only": drift, "noise": noise}
        spec = {
            **common,
            "lr": bad_positive(lr, arrays=False)
            + ([] if drift else [("above critical", 1.5 * lr_c, None, ValueError)]),
        }
        fn = qn.escape_rate
    elif which == "escape_time_estimate":
        # the law's domain: below the manifold's step (no divergence after the escape, no trap) and
        # the plateau's basin, label noise below the level it could never cross
        ps = min(ps, 3)
        p = max(min(p, 6), ps)  # the law is for p ≥ p*
        a, b = qn.default_readouts(p, ps)
        base = dict(p=p, p_star=ps, a=a, b=b)
        lr = max(min(f, 0.9) * min(qn.manifold_critical_lr(ps, a, b), qn.critical_lr(p, ps, a, b)), 1e-2 / a)
        noise = min(noise, 0.1)
        args = {
            **base,
            "lr": lr,
            "N": N,
            "drift_only": drift,
            "noise": noise,
            "q0": 0.5 * min(qn.plateau_basin_q(p, ps, a, b, lr, noise=noise), 2.0),
        }
        spec = {
            **common,
            "N": bad_int() + [("not above p + p*", p + ps, None, ValueError)],
            "q0": bad_positive(arrays=False) + [("outside the basin", 1e3, None, ValueError)],
            "lr": bad_positive(lr, arrays=False),
        }
        fn = qn.escape_time_estimate
    else:
        p = max(p, ps + 1)
        alpha = data.draw(st.one_of(st.floats(0.1, 1e6), st.lists(st.floats(0.1, 1e6), min_size=1, max_size=5)))
        args = {"p": p, "p_star": ps, "a": a, "lr": max(lr, 1e-3), "alpha": alpha}
        spec = {
            "p": [("not above p*", ps, None, ValueError)] + bad_int(),
            "a": bad_positive(a, arrays=False),
            "alpha": [
                ("zero", 0.0, None, ValueError),
                ("nan", [1.0, NAN], None, ValueError),
                ("string", "1", None, TypeError),
                ("strings", ["a"], None, TypeError),
            ],
        }
        fn = qn.late_time_loss
    bad = corrupt(data, spec)
    if bad:
        invalid(which, call_with(fn, args, bad), bad[2], bad[3])
        return
    out = valid(which, call_with(fn, args, None))
    if which == "plateau":
        assert out.q > 0 and out.loss >= 0.5 * noise**2 - 1e-12
    if which == "escape_rate":
        # 4abγ at the drift plateau; at the γ²-shifted plateau close to γ_c it can turn negative
        # (q shifted so far up that M decays: the plateau traps the student), so only finite there
        assert out > 0 if drift else np.isfinite(out)
    if which == "manifold_critical_lr":
        assert out > 0


# --------------------------------------------------------------------------- manifold and Hessian


@pytest.mark.parametrize(
    "which",
    ["polar", "closest_solution", "solution_overlaps", "distance_to_manifold_min", "stiefel_dimension", "alignment"],
)
@fuzz(50)
@given(data=st.data(), seed=seeds, ps=teacher_widths, extra=st.integers(0, 3), batch=batches, a=readouts, b=readouts)
def test_manifold(which, data, seed, ps, extra, batch, a, b):
    p = ps + extra
    _, _, Q, M, _ = gram(seed, p, ps, batch, identity=True)
    O = qn.polar(M)
    wide = np.ones(batch + (ps, ps + 1))  # p < p*
    if which == "polar":
        fn, args = qn.polar, dict(M=M)
        spec = {"M": bad_array(M, "M", shape=False) + [("p < p*", wide, None, ValueError)]}
    elif which == "closest_solution":
        fn, args = qn.closest_solution, dict(M0=M, a=a, b=b)
        spec = {
            "M0": bad_array(M, "M0", shape=False) + [("p < p*", wide, None, ValueError)],
            "a": bad_positive(a, arrays=False),
        }
    elif which == "solution_overlaps":
        fn, args = qn.solution_overlaps, dict(O=O, a=a, b=b)
        spec = {
            "O": bad_array(O, "O", shape=False)
            + [("not orthonormal", 2 * O + 0.1, None, ValueError), ("p < p*", wide, None, ValueError)],
            "b": bad_positive(b, arrays=False),
        }
    elif which == "distance_to_manifold_min":
        fn, args = qn.distance_to_manifold_min, dict(Q0=Q, M0=M, a=a, b=b)
        big = np.trace(Q, axis1=-2, axis2=-1).max() + ps + 1
        spec = {
            "Q0": bad_array(Q, "Q0", ("M0",), psd=Q - big * np.eye(p), symmetric=True),
            "M0": bad_array(M, "M0", ("Q0",), psd=M + 10 * big),
            "a": bad_positive(a, arrays=False),
        }
    elif which == "stiefel_dimension":
        fn, args = qn.stiefel_dimension, dict(p=as_given(data, p), p_star=ps)
        spec = {"p": bad_int() + ([("p < p*", ps - 1, None, ValueError)] if ps > 1 else []), "p_star": bad_int()}
    else:
        M0 = M[..., ::-1, :] if p > 1 else -M
        fn, args = qn.alignment, dict(M=M, M0=M0)
        spec = {
            "M": bad_array(M, "M", shape=False),
            "M0": bad_array(M0, "M0", ("M",), shape=False)
            + [("other p*", np.ones(batch + (p + 1, ps + 1)), ("M0",), ValueError)],
        }
    bad = corrupt(data, spec)
    if bad:
        invalid(which, call_with(fn, args, bad), bad[2], bad[3])
        return
    out = valid(which, call_with(fn, args, None))
    if which == "polar":
        np.testing.assert_allclose(
            np.swapaxes(out, -1, -2) @ out, np.broadcast_to(np.eye(ps), batch + (ps, ps)), atol=1e-8
        )
    if which == "distance_to_manifold_min":
        assert np.all(out >= -1e-8 * (1 + np.abs(out)))
    if which == "alignment":
        assert np.all(np.abs(out) <= 1 + 1e-9)
    if which == "stiefel_dimension":
        assert out >= 0


@pytest.mark.parametrize("which", ["hessian", "loss_gradient", "predicted_spectrum", "special_point"])
@fuzz(40)
@given(
    data=st.data(),
    seed=seeds,
    p=st.integers(1, 3),
    ps=st.integers(1, 2),
    N=st.integers(3, 8),
    a=readouts,
    b=readouts,
    where=st.sampled_from(["origin", "plateau", "manifold"]),
)
def test_hessian(which, data, seed, p, ps, N, a, b, where):
    N = max(N, p + ps)
    W, Ws, _, _, _ = gram(seed, p, ps, (), identity=True, N=N)
    wsb = bad_array(Ws, "W_star", ("W",)) + [("3-d", np.ones((2, ps, N)), ("W_star", "W"), ValueError)]
    if which in ("hessian", "loss_gradient"):
        fn = qn.hessian if which == "hessian" else qn.loss_gradient
        args = dict(W=W, W_star=Ws, a=a, b=b)
        spec = {"W": bad_array(W, "W", ("W_star",)), "W_star": wsb, "a": bad_positive(a, arrays=False)}
    elif which == "predicted_spectrum":
        p = max(p, ps) if where == "manifold" else p
        fn, args = qn.predicted_spectrum, dict(where=where, p=p, p_star=ps, N=N, a=a, b=b)
        spec = {
            "where": [("unknown", "saddle", None, ValueError), ("none", None, None, ValueError)],
            "N": bad_int() + [("N < p*", ps - 1, None, ValueError)] if ps > 1 else bad_int(),
            "p": bad_int(),
            "b": bad_positive(b, arrays=False),
        }
    else:
        p = max(p, ps) if where == "manifold" else p
        fn, args = qn.special_point, dict(where=where, W_star=Ws, p=p, a=a, b=b, seed=seed)
        spec = {
            "where": [("unknown", "ridge", None, ValueError)],
            "W_star": wsb,
            "p": bad_int(),
            "a": bad_positive(a, arrays=False),
            "seed": bad_seed(),
        }
    bad = corrupt(data, spec)
    if bad:
        invalid(which, call_with(fn, args, bad), bad[2], bad[3])
        return
    out = valid(which, call_with(fn, args, None))
    if which == "hessian":
        assert out.shape == (p * N, p * N) and np.allclose(out, out.T)
    if which == "predicted_spectrum":
        assert sum(m for _, m in out) == p * N and all(m > 0 for _, m in out)
    if which == "special_point":
        assert out.shape == (p, N)


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize("which", ["teacher", "init_student", "overlaps_from_weights", "default_readouts", "make_rng"])
@fuzz(50)
@given(
    data=st.data(),
    seed=seeds,
    p=widths,
    ps=teacher_widths,
    N=st.integers(1, 40),
    q0=st.floats(0.01, 10),
    replicas=st.one_of(st.none(), st.integers(1, 3)),
)
def test_model(which, data, seed, p, ps, N, q0, replicas):
    N = max(N, ps)
    if which == "teacher":
        fn, args = qn.teacher, dict(p_star=as_given(data, ps), N=as_given(data, N), seed=seed, backend="numpy")
        spec = {
            "p_star": bad_int(),
            "N": bad_int() + ([("N < p*", ps - 1, None, ValueError)] if ps > 1 else []),
            "seed": bad_seed(),
            "backend": [
                ("unknown", "tpu", ("backend",), ValueError),
                ("number", 3, ("backend",), TypeError),
                ("cupy absent", "cupy", ("backend",), (RuntimeError,)),
            ]
            if not qn.cupy_available()
            else [("unknown", "tpu", ("backend",), ValueError)],
        }
    elif which == "init_student":
        fn, args = qn.init_student, dict(p=p, N=as_given(data, N), q0=q0, replicas=replicas, seed=seed, backend="numpy")
        spec = {
            "p": bad_int(),
            "N": bad_int(),
            "q0": bad_positive(q0, arrays=False),
            "replicas": [c for c in bad_int() if c[0] != "none"],  # None is valid: one student
            "dtype": [("int", np.int64, None, ValueError), ("nonsense", "float99", None, TypeError)],
        }
    elif which == "overlaps_from_weights":
        W, Ws, _, _, _ = gram(seed, p, ps, (2,))
        fn, args = qn.overlaps_from_weights, dict(W=W, W_star=Ws)
        spec = {
            "W": bad_array(W, "W", ("W_star",)),
            "W_star": bad_array(Ws, "W_star", ("W",))
            + [("batch", np.ones((3, ps, Ws.shape[-1])), ("W_star", "W"), ValueError)],
        }
    elif which == "default_readouts":
        fn, args = qn.default_readouts, dict(p=as_given(data, p), p_star=ps)
        spec = {"p": bad_int(), "p_star": bad_int()}
    else:
        fn, args = qn.make_rng, dict(seed=seed, backend="numpy")
        spec = {
            "seed": bad_seed() + [("list", [1, 2], None, TypeError)],
            "backend": [("unknown", "jax", ("backend",), ValueError)],
        }
    bad = corrupt(data, spec)
    if bad:
        invalid(which, call_with(fn, args, bad), bad[2], bad[3])
        return
    out = valid(which, call_with(fn, args, None))
    if which == "teacher":
        np.testing.assert_allclose(out @ out.T / N, np.eye(ps), atol=1e-10)
    if which == "overlaps_from_weights":
        Q, M, P = out
        qn.population_loss(Q, M, P, 1.0, 1.0)  # a consistent PSD triple


# --------------------------------------------------------------------------- analysis


@fuzz(150)
@given(
    data=st.data(),
    seed=seeds,
    T=st.integers(1, 30),
    batch=st.sampled_from([(), (3,)]),
    level=st.floats(0.01, 2.0),
    nans=st.booleans(),
)
def test_escape_time(data, seed, T, batch, level, nans):
    rng = np.random.default_rng(seed)
    alpha = np.cumsum(rng.uniform(0, 1, T))
    loss = np.exp(-rng.uniform(0, 0.3, (T,) + batch).cumsum(0))
    if nans and T > 2:
        loss[T // 2 :, ...] = np.nan  # a divergence: NaN afterwards counts as "not below"
    args = dict(alpha=alpha, loss=loss, level=level)
    spec = {
        "alpha": [
            ("2-d", alpha[None], None, ValueError),
            ("empty", [], None, ValueError),
            ("decreasing", alpha[::-1] - 1 if T > 1 else [np.nan], None, ValueError),
            ("string", "t", None, TypeError),
            ("complex", alpha + 1j, None, TypeError),
        ],
        "loss": [("wrong length", np.ones((T + 1,) + batch), None, ValueError), ("string", "l", None, TypeError)],
        "level": bad_positive(level, arrays=False),
    }
    bad = corrupt(data, spec)
    if bad:
        invalid("escape_time", call_with(qn.escape_time, args, bad), bad[2], bad[3])
        return
    t = valid("escape_time", call_with(qn.escape_time, args, None), check_finite=False)
    reached = np.any(np.nan_to_num(loss, nan=np.inf) < level, axis=0)
    assert np.array_equal(np.isfinite(t), reached)  # NaN exactly where the level is never reached
    assert np.all(t[reached] >= alpha[0]) and np.all(t[reached] <= alpha[-1])
    COUNTS["documented_nan_escape_not_reached"] += int(np.sum(~reached))


@pytest.mark.parametrize("which", ["power_law_fit", "log_slope", "mean_and_stderr"])
@fuzz(60)
@given(data=st.data(), seed=seeds, n=st.integers(2, 20), k=st.floats(-3, 3))
def test_fits(which, data, seed, n, k):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.1, 10, n)) + np.arange(n) * 1e-3
    y = 2.0 * x**k
    common = {
        "x": [
            ("2-d", x[None], None, ValueError),
            ("one point", x[:1], None, ValueError),
            ("nan", np.where(np.arange(n) == 0, np.nan, x), None, ValueError),
            ("constant", np.ones(n), None, ValueError),
            ("string", "x", None, TypeError),
        ],
        "y": [
            ("shorter", y[:-1], None, ValueError),
            ("negative", -y, None, ValueError),
            ("inf", np.full(n, np.inf), None, ValueError),
            ("none", None, None, TypeError),
        ],
    }
    if which in ("power_law_fit", "log_slope"):
        fn, args, spec = getattr(qn, which), dict(x=x, y=y), common
        if which == "power_law_fit":
            spec = {**common, "x": common["x"] + [("negative", -x, None, ValueError)]}
    else:
        axis = data.draw(st.sampled_from([0, -1]))
        samples = rng.standard_normal((n, 3)) if axis == 0 else rng.standard_normal((3, n))
        fn, args = qn.mean_and_stderr, dict(samples=samples, axis=axis)
        spec = {
            "samples": [("string", "s", None, TypeError), ("0-d", 1.0, None, ValueError)],
            "axis": [("out of range", 5, None, ValueError), ("float", 0.5, None, TypeError)],
        }
    bad = corrupt(data, spec)
    if bad:
        invalid(which, call_with(fn, args, bad), bad[2], bad[3])
        return
    out = valid(which, call_with(fn, args, None))
    if which == "power_law_fit":
        assert abs(out[0] - k) < 1e-6 and abs(out[1] - 2.0) < 1e-6
    if which == "log_slope":
        assert np.isfinite(out)


# --------------------------------------------------------------------------- backends, profiles, sweeps


@fuzz(60)
@given(
    data=st.data(),
    name=st.sampled_from(["auto", "numpy", "NumPy ", "cupy", "tpu", "", 3, None]),
    env=st.sampled_from([None, "auto", "numpy", "cupy", "gpu"]),
    prof=st.sampled_from([None, "quick", "paper", "huge", 7]),
)
def test_backends_and_profiles(data, name, env, prof):
    saved = {k: os.environ.get(k) for k in ("QUADNET_BACKEND", "QUADNET_PROFILE")}
    try:
        for k in saved:
            os.environ.pop(k, None)
        if env is not None:
            os.environ["QUADNET_BACKEND"] = env
        cupy = qn.cupy_available()
        valid("cupy_available", qn.cupy_available)
        valid("numba_available", qn.numba_available)
        x = np.arange(3.0)
        assert valid("to_numpy", lambda: qn.to_numpy(x)) is x
        # backend by name
        if name in ("auto", "numpy", "NumPy ") or (name == "cupy" and cupy):
            valid("get_backend", lambda: qn.get_backend(name))
            valid("array_module", lambda: qn.array_module(x, backend=name))
        elif name is None:
            if env in (None, "auto", "numpy") or (env == "cupy" and cupy):
                valid("get_backend", lambda: qn.get_backend(None))
                valid("default_backend", qn.default_backend)
            else:
                names = ("QUADNET_BACKEND",)
                invalid("default_backend", qn.default_backend, names, (ValueError, RuntimeError))
                invalid("get_backend", lambda: qn.get_backend(None), names, (ValueError, RuntimeError))
            assert valid("array_module", lambda: qn.array_module(x, 1.0)) is np  # inputs decide, not the env
        else:
            exc = (RuntimeError,) if name == "cupy" else (ValueError, TypeError)
            invalid("get_backend", lambda: qn.get_backend(name), ("backend",), exc)
            invalid("array_module", lambda: qn.array_module(x, backend=name), ("backend",), exc)
        # profiles
        if prof in (None, "quick", "paper"):
            pr = valid("profile", lambda: qn.profile(prof))
            assert pr.name == (prof or "default")
        else:
            invalid("profile", lambda: qn.profile(prof), ("QUADNET_PROFILE",))
    finally:
        for k, val in saved.items():
            os.environ.pop(k, None)
            if val is not None:
                os.environ[k] = val


def _add(x, y=0, z=None):
    return x + y if z is None else [x, y, z]


values = st.one_of(
    st.integers(-5, 5),
    st.floats(-2, 2),
    st.sampled_from(["a", "b"]),
    st.none(),
    st.lists(st.integers(0, 3), max_size=3),
)


@fuzz(50)
@given(
    data=st.data(),
    xs=st.lists(st.integers(-9, 9), min_size=0, max_size=4),
    ys=st.lists(st.integers(-9, 9), min_size=1, max_size=3),
    z=values,
    form=st.sampled_from(["dict", "list"]),
)
def test_sweep_and_grid_points(data, xs, ys, z, form):
    grid = {"x": xs, "y": ys, "z": [z]} if form == "dict" else [{"x": x, "y": y, "z": z} for x in xs for y in ys]
    pts = valid("grid_points", lambda: qn.grid_points(grid))
    assert len(pts) == len(xs) * len(ys)
    assert [(p["x"], p["y"]) for p in pts] == [(x, y) for x in xs for y in ys]  # last key fastest
    spec = {
        "grid": [
            ("string", "xy", None, TypeError),
            ("number", 3, None, TypeError),
            ("bad key", {"not a name": [1]}, None, TypeError),
            ("list of lists", [[1]], None, TypeError),
            ("2-d axis", {"x": np.ones((2, 2))}, None, ValueError),
        ],
        "retries": bad_int(minimum=0),
        "executor": [("string", "dask", None, TypeError)],
        "cache": [("number", 1.5, None, TypeError)],
        "function": [("not callable", "f", None, TypeError)],
    }
    bad = corrupt(data, spec)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as ex:
        args = dict(function=_add, grid=grid, executor=ex, cache=tmp, progress=False, retries=1)
        if bad:
            invalid("sweep", call_with(qn.sweep, args, bad), bad[2], bad[3])
            return
        out = valid("sweep", call_with(qn.sweep, args, None), check_finite=False)
        assert list(out) == [_add(**p) for p in pts] and out.stats.computed == len(pts)
        again = qn.sweep(**args)
        assert list(again) == list(out) and again.stats.cached == len(pts)
        key = valid("Cache.key", lambda: qn.Cache(tmp).key(_add, pts[0]) if pts else "none")
        assert isinstance(key, str)
    valid("default_cache_dir", qn.default_cache_dir, check_finite=False)


@fuzz(20)
@given(data=st.data())
def test_dask_executor_arguments(data):
    """Only invalid arguments here (a valid call starts a cluster: tests/test_sweep.py does)."""
    kwargs, names, exc = data.draw(
        st.sampled_from(
            [
                (dict(n_workers=0), ("n_workers",), ValueError),
                (dict(n_workers=1.5), ("n_workers",), TypeError),
                (dict(threads_per_worker=0), ("threads_per_worker",), ValueError),
                (dict(address=8786), ("address",), TypeError),
                (dict(address="tcp://127.0.0.1:1", n_workers=2), ("n_workers",), ValueError),
            ]
        )
    )
    pytest.importorskip("distributed")
    invalid("dask_executor", lambda: qn.dask_executor(**kwargs).__enter__(), names, exc)


# --------------------------------------------------------------------------- rank deficiency, manifold floor


@fuzz(60)
@given(
    seed=seeds,
    ps=st.integers(1, 3),
    extra=st.integers(0, 2),
    batch=st.sampled_from([(2,), (3,)]),
    rank=st.integers(0, 2),
    scale=st.floats(1e-3, 1e3),
)
def test_polar_rank_deficient(seed, ps, extra, batch, rank, scale):
    """polar (and closest_solution, alignment) of matrices of rank < p*: NaN exactly there, with one
    RankDeficientWarning; full-rank batch elements unchanged. Element 0 is made deficient."""
    p = ps + extra
    rng = np.random.default_rng(seed)
    M = scale * rng.standard_normal(batch + (p, ps))
    r = min(rank, ps - 1)
    M[0] = scale * rng.standard_normal((p, r)) @ rng.standard_normal((r, ps)) if r else 0.0
    FUZZED.update(["polar", "closest_solution", "alignment"])
    COUNTS["valid"] += 1
    COUNTS["rank_deficient_cases"] += 1
    with pytest.warns(qn.RankDeficientWarning):
        O = qn.polar(M)
    assert np.all(np.isnan(O[0])) and np.all(np.isfinite(O[1:]))
    np.testing.assert_allclose(
        np.swapaxes(O[1:], -1, -2) @ O[1:], np.broadcast_to(np.eye(ps), O[1:].shape[:-2] + (ps, ps)), atol=1e-8
    )
    with pytest.warns(qn.RankDeficientWarning):
        al = qn.alignment(M, M)
    assert np.isnan(al[0]) and np.allclose(al[1:], 1)


@fuzz(60)
@given(seed=seeds, ps=st.integers(1, 3), extra=st.integers(0, 3), a=readouts, b=readouts, noise=small_noise)
def test_manifold_loss_floor(seed, ps, extra, a, b, noise):
    """On the zero-loss manifold the loss is its exact lower bound σ²/2 up to rounding, and never
    below it (it rounded to −5e-16 before the clip)."""
    p = ps + extra
    O = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, ps)))[0]
    Q, M = qn.solution_overlaps(O, a, b)
    loss = valid("population_loss", lambda: qn.population_loss(Q, M, np.eye(ps), a, b, noise))
    floor = 0.5 * noise**2
    assert floor <= loss <= floor + 1e-12 * (1 + (b * ps) ** 2)


# --------------------------------------------------------------------------- coverage

# --------------------------------------------------------------------------- escape predictions, step limits, starts


@fuzz(12)
@given(
    data=st.data(),
    p=st.integers(1, 5),
    ps=st.integers(1, 3),
    f=st.floats(0.1, 0.9),
    noise=st.one_of(st.just(0.0), st.floats(0.0, 0.1)),
    q=st.floats(0.05, 0.9),
    N=st.integers(200, 10**8),
)
def test_escape_predictions(data, p, ps, f, noise, q, N):
    """Inside the law's domain (p ≥ p*, below γ_m and γ_c, q0 in the basin, small label noise) every
    prediction is finite; bad input names the parameter."""
    p = max(p, ps)
    a, b = qn.default_readouts(p, ps)
    eta = f * a * min(qn.manifold_critical_lr(ps, a, b), qn.critical_lr(p, ps, a, b, noise=noise))
    q0 = q * min(qn.plateau_basin_q(p, ps, a, b, eta=eta, noise=noise), 3.0)
    base = dict(p=p, p_star=ps, a=a, b=b, eta=eta, noise=noise)
    spec = {
        "p": bad_int(),
        "p_star": bad_int(),
        "a": bad_positive(a, arrays=False),
        "noise": bad_nonneg(),
        "eta": bad_positive(eta, arrays=False) + [("both steps", None, ("lr", "eta"), TypeError)],
    }
    calls = {
        "escape_level": (qn.escape_level, base, spec),
        "norm_transient": (qn.norm_transient, {**base, "q0": q0}, {**spec, "q0": bad_positive(arrays=False)}),
        "transient_log_gain": (qn.transient_log_gain, {**base, "q0": q0}, {"q0": bad_positive(arrays=False)}),
        "noise_seed_variance": (qn.noise_seed_variance, {**base, "q0": q0}, {"q0": bad_positive(arrays=False)}),
        "escape_time_law": (
            qn.escape_time_law,
            {**base, "q0": q0, "N": N, "samples": 8, "seed": 1},
            {"N": bad_int(), "samples": bad_int(), "seed": [("negative", -1, None, ValueError)]},
        ),
        "plateau_basin_q": (qn.plateau_basin_q, base, {"noise": bad_nonneg()}),
        "basin_lr": (
            qn.basin_lr,
            {"p": p, "p_star": ps, "a": a, "b": b, "q0": q0, "noise": noise},
            {"q0": bad_positive(arrays=False)},
        ),
    }
    which = data.draw(st.sampled_from(sorted(calls)), label="function")
    fn, args, bad_spec = calls[which]
    bad = corrupt(data, bad_spec)
    if bad and bad[0] == "eta" and bad[1] is None:  # both steps given
        invalid(which, lambda: fn(**{**args, "lr": eta / a}), ("lr", "eta"), TypeError)
        return
    if bad:
        invalid(which, call_with(fn, args, bad), bad[2], bad[3])
        return
    out = valid(which, call_with(fn, args, None))
    if which == "escape_time_law":
        assert out.shape == (8,) and np.all(out > 0)
    if which == "norm_transient":
        assert out.kappa > 0 and out.plateau_rate > 0


@fuzz(6)
@given(data=st.data(), pair=st.sampled_from([(2, 1), (3, 2), (2, 2), (1, 2)]), q=st.floats(0.1, 3.0))
def test_step_limits_and_fixed_points(data, pair, q):
    p, ps = pair
    a, b = qn.default_readouts(p, ps)
    lim = valid("step_limits", lambda: qn.step_limits(p, ps, a, b, q0=q), check_finite=False)
    assert 0 < lim.stable <= lim.critical and lim.basin <= lim.critical
    bad = corrupt(data, {"q0": bad_positive(arrays=False), "p": bad_int(), "noise": bad_nonneg()})
    if bad:
        invalid(
            "step_limits",
            call_with(qn.step_limits, {"p": p, "p_star": ps, "a": a, "b": b, "q0": q}, bad),
            bad[2],
            bad[3],
        )
    lr = 0.5 * lim.zero_loss
    st_ = valid("stationary_state", lambda: qn.stationary_state(p, ps, a, b, lr, alpha_max=200.0), check_finite=False)
    assert not st_.diverged and np.isfinite(st_.loss)
    J = valid("ode_jacobian", lambda: qn.ode_jacobian(st_.Q, st_.M, np.eye(ps), a, b, lr))
    valid("quotient_spectrum", lambda: qn.quotient_spectrum(J, st_.Q, st_.M))
    invalid("ode_jacobian", lambda: qn.ode_jacobian(st_.Q[None], st_.M, np.eye(ps), a, b, lr), ("Q", "M"))


@fuzz(20)
@given(
    data=st.data(),
    p=st.integers(1, 5),
    ps=st.integers(1, 4),
    N=st.integers(10, 10**6),
    R=st.integers(1, 5),
    q0=st.floats(0.01, 10.0),
    c=st.floats(0.0, 2.0),
)
def test_starts_and_line_fit(data, p, ps, N, R, q0, c):
    N = max(N, p + ps)
    args = {"p": p, "p_star": ps, "N": N, "replicas": R, "q0": q0, "seed": 3}
    bad = corrupt(
        data,
        {
            "p": bad_int(),
            "N": bad_int(),
            "replicas": bad_int(),
            "q0": bad_positive(arrays=False),
            "seed": [("negative", -2, None, ValueError), ("string", "x", None, TypeError)],
        },
    )
    if bad:
        invalid("gaussian_overlaps", call_with(qn.gaussian_overlaps, args, bad), bad[2], bad[3])
    else:
        Q0, M0, P = valid("gaussian_overlaps", call_with(qn.gaussian_overlaps, args, None))
        assert np.all(np.linalg.eigvalsh(Q0) > -1e-12)
    O = np.linalg.qr(np.random.default_rng(p).standard_normal((max(p, ps), ps)))[0][:p]
    valid("informed_overlaps", lambda: qn.informed_overlaps(O, c, N, R, q0=q0, seed=4))
    invalid("informed_overlaps", lambda: qn.informed_overlaps(O[0], c, N, R), ("O",))
    x = np.arange(5.0)
    fit = valid("line_fit", lambda: qn.line_fit(x, 2 * x + c, np.full(5, 0.1)), check_finite=False)
    assert abs(fit.slope - 2) < 1e-9
    invalid("line_fit", lambda: qn.line_fit(x, x, np.zeros(5)), ("sigma",))


def test_chain_escape_times_fuzzed_inputs():
    """A small valid run, and bad inputs naming the parameter."""
    out = valid(
        "gaussian_escape_times", lambda: qn.gaussian_escape_times(4, 2, 500, 3, eta=0.125, seed=1), check_finite=False
    )
    assert out.alpha.shape == (3,) and np.all(np.isfinite(out.alpha) | out.diverged | out.censored)
    Q0, M0, P = qn.gaussian_overlaps(4, 2, 500, 3, seed=2)
    valid(
        "chain_escape_times",
        lambda: qn.chain_escape_times(Q0, M0, P, 500, 0.25, 0.5, eta=0.125, seed=3),
        check_finite=False,
    )
    invalid(
        "chain_escape_times", lambda: qn.chain_escape_times(Q0[0], M0[0], P, 500, 0.25, 0.5, eta=0.125), ("Q0", "M0")
    )
    invalid(
        "chain_escape_times", lambda: qn.chain_escape_times(Q0, M0, P, 500, 0.25, 0.5, eta=0.125, seed=-1), ("seed",)
    )
    invalid("gaussian_escape_times", lambda: qn.gaussian_escape_times(4, 2, 500, 0, eta=0.125), ("replicas",))


NOT_FUNCTIONS = {
    # classes of results, warnings and errors, and the version string: constructed by the
    # functions above (their fields are checked there), not called with user input
    "Trajectory",
    "SGDTrajectory",
    "MCEstimate",
    "Plateau",
    "SweepResults",
    "SweepStats",
    "SweepError",
    "CriticalStepWarning",
    "RankDeficientWarning",
    "LongRunWarning",
    "RunInterrupted",
    "MemoryBudgetError",
    "SweepInterrupted",
    "LineFit",
    "EscapeTimes",
    "NormTransient",
    "StepLimits",
    "StationaryState",
    "Stationary",
    "EscapeRates",
    "Staircase",
    "BiasLifetime",
    "AlignmentDecay",
    "starts",
    "__version__",
}
# fuzzed in tests/test_regimes.py (its module's own property-based section, same contract)
FUZZED_ELSEWHERE = {
    "stationary_loss",
    "escape_rates",
    "staircase",
    "sequential_frame",
    "bias_lifetime",
    "alignment_decay",
}


def test_every_public_function_is_fuzzed():
    """Every public name has a fuzz test above (by name in this file); run without xdist, where
    this test comes last, also that each was actually called."""
    public = set(qn.__all__) - NOT_FUNCTIONS - FUZZED_ELSEWHERE
    fuzzed_here = {"Cache" if n == "Cache.key" else n for n in FUZZED}
    tested = {n for n in public if n in fuzzed_here}
    source = open(__file__, encoding="utf-8").read()
    unmentioned = [n for n in sorted(public) if f'"{n}"' not in source and f"qn.{n}" not in source]
    assert not unmentioned, f"public names with no fuzz test: {unmentioned}"
    if not os.environ.get("PYTEST_XDIST_WORKER") and len(FUZZED) > 20:  # the whole module ran here
        assert tested == public, f"not exercised: {sorted(public - tested)}"
