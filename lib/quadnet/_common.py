"""Small array helpers shared by the modules (private): traces, transposes, norms over the last
two axes, the lifting of scalar parameters for matrix broadcasting, and extended precision.

Imports nothing from the package, so every module may use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["tr", "T", "fro2", "squeeze", "EXTENDED", "HAS_EXTENDED", "extended"]

#: The floating type used where float64 cancels catastrophically (the loss and the ODE's right-hand
#: side near the zero-loss manifold, where O(1) terms cancel to ε ~ α⁻²): ``numpy.longdouble`` where
#: it is finer than float64 (80-bit x87 on x86-64 Linux, 128-bit on aarch64 Linux), else float64
#: (Windows, macOS on Apple silicon).
EXTENDED = np.longdouble if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps else np.float64
#: True where :data:`EXTENDED` is finer than float64.
HAS_EXTENDED = EXTENDED is not np.float64


def tr(A: Any, xp: Any) -> Any:
    """Trace over the last two axes: (..., n, n) -> (...).

    Examples
    --------
    >>> import numpy as np
    >>> tr(np.stack([np.eye(2), 3 * np.eye(2)]), np)
    array([2., 6.])
    """
    return xp.trace(A, axis1=-2, axis2=-1)


def T(A: Any, xp: Any) -> Any:
    """Transpose of the last two axes.

    Examples
    --------
    >>> import numpy as np
    >>> T(np.zeros((5, 2, 3)), np).shape
    (5, 3, 2)
    """
    return xp.swapaxes(A, -1, -2)


def fro2(A: Any, xp: Any) -> Any:
    """Squared Frobenius norm over the last two axes: (..., n, m) -> (...).

    Examples
    --------
    >>> import numpy as np
    >>> fro2(np.ones((2, 3)), np)
    np.float64(6.0)
    """
    return xp.sum(A * A, axis=(-2, -1))


def squeeze(x: Any) -> Any:
    """Undo the (..., 1, 1) lifting of a batched scalar parameter (plain floats pass through).

    Examples
    --------
    >>> import numpy as np
    >>> squeeze(np.ones((4, 1, 1))).shape
    (4,)
    >>> squeeze(0.5)
    0.5
    """
    return x[..., 0, 0] if hasattr(x, "ndim") and x.ndim >= 2 else x


def extended(x: Any, xp: Any) -> Any:
    """``x`` in :data:`EXTENDED` precision when it is a NumPy array (CuPy has no long double:
    CuPy arrays and plain floats pass through unchanged).

    Examples
    --------
    >>> import numpy as np
    >>> extended(np.ones(2), np).dtype == EXTENDED
    True
    """
    if xp is np and isinstance(x, np.ndarray):
        return x.astype(EXTENDED, copy=False)
    return x
