import json
import os

import numpy as np
import pytest

import quadnet as qn


def pytest_collection_modifyitems(config, items):
    if qn.cupy_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20260403)


def random_overlaps(rng, p, p_star, N=None, informed=0.5, q0=1.0):
    """Overlaps of explicit weights (so they are a consistent PSD triple): W = informed·O W* + noise."""
    N = N or 50 * (p + p_star)
    Ws = qn.teacher(p_star, N, seed=rng, backend="numpy")
    O = rng.standard_normal((p, p_star)) / np.sqrt(p_star)
    W = informed * O @ Ws + np.sqrt(q0) * rng.standard_normal((p, N))
    return W, Ws, qn.overlaps_from_weights(W, Ws)


def report_counts(record: dict) -> None:
    """Append a tally (inputs tried, faults injected, ...) as one JSON line to $QUADNET_FUZZ_REPORT,
    or print it when that is unset."""
    line = json.dumps(record)
    out = os.environ.get("QUADNET_FUZZ_REPORT")
    if out:
        with open(out, "a") as fh:
            fh.write(line + "\n")
    else:
        print("\n" + line)
