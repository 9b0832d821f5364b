"""Array-module selection: one code path for NumPy and CuPy.

Functions that receive arrays run on the module of their inputs (a CuPy array in means CuPy
compute and CuPy out). Functions that *create* arrays (teachers, initializations) use the
``backend=`` argument, or else the ``QUADNET_BACKEND`` environment variable:

``auto`` (default)
    NumPy for now: the GPU path has not yet been validated on a real GPU
    (:data:`GPU_VALIDATED` is False), so the book stays on the CPU everywhere. Once it is, ``auto``
    will pick CuPy when it is importable *and* a CUDA device is usable (``cupy.is_available()``;
    Colab CPU runtimes import CuPy but have no GPU).
``numpy``
    Always NumPy.
``cupy``
    Always CuPy, an explicit opt-in: it warns once that the GPU path is not yet validated, and it
    is an error if CuPy cannot run here (never a silent fallback).

Examples
--------
>>> import numpy as np, quadnet as qn
>>> qn.get_backend("numpy") is np
True
>>> qn.array_module(np.zeros(3)) is np
True
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "cupy_available",
    "default_backend",
    "get_backend",
    "array_module",
    "to_numpy",
    "asarray",
    "backend_name",
]

_VALID = ("auto", "numpy", "cupy")

#: Whether the GPU path (CuPy arrays, the fused CUDA kernels) has been validated on a real GPU by
#: ``benchmarks/gpu_check.sh``. Until then ``auto`` means NumPy, ``cupy`` warns once, and the
#: simulators' ``method="auto"`` does not pick the CUDA kernels.
GPU_VALIDATED = False

_warned_unvalidated = False


def _warn_unvalidated(source: str) -> None:
    global _warned_unvalidated
    if GPU_VALIDATED or _warned_unvalidated:
        return
    _warned_unvalidated = True
    warnings.warn(
        f"{source}='cupy': the GPU path of quadnet has not yet been validated on a real GPU (its kernels are "
        "tested on a CPU under numba's CUDA simulator and compiled for sm_75/sm_90, but never run on a device); "
        "results are unverified. Use 'numpy' or 'auto' for the validated CPU path.",
        RuntimeWarning,
        stacklevel=4,
    )


def _import_cupy() -> ModuleType | None:
    try:
        import cupy  # noqa: F401
    except Exception:  # ImportError, or a CUDA library failing to load
        return None
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and can run kernels on a CUDA device.

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(cupy_available(), bool)
    True
    """
    cp = _import_cupy()
    if cp is None:
        return False
    try:
        return bool(cp.is_available())
    except Exception:
        return False


def _resolve(name: str, source: str) -> ModuleType:
    name = str(name).strip().lower()
    if name not in _VALID:
        raise ValueError(f"{source} must be one of {_VALID}, got {name!r}")
    if name == "numpy":
        return np
    if name == "cupy":
        if not cupy_available():
            raise RuntimeError(
                f"{source}='cupy' but CuPy cannot run here (not installed, or no CUDA device). "
                "Install requirements-gpu.txt on a machine with a GPU, or use 'numpy'/'auto'."
            )
        _warn_unvalidated(source)
        return _import_cupy()
    return _import_cupy() if GPU_VALIDATED and cupy_available() else np


def default_backend() -> ModuleType:
    """The array module named by ``QUADNET_BACKEND`` (``auto`` if unset).

    Returns
    -------
    module
        ``numpy`` or ``cupy``; ``auto`` means NumPy until the GPU path is validated.

    Raises
    ------
    ValueError, RuntimeError
        An unknown name, or ``cupy`` where CuPy cannot run.

    Examples
    --------
    >>> default_backend().__name__ in ("numpy", "cupy")
    True
    """
    return _resolve(os.environ.get("QUADNET_BACKEND", "auto"), "QUADNET_BACKEND")


def get_backend(backend: str | ModuleType | None = None) -> ModuleType:
    """Array module for ``backend`` ('auto', 'numpy', 'cupy', a module, or None = environment).

    Parameters
    ----------
    backend : str, module or None

    Returns
    -------
    module

    Examples
    --------
    >>> get_backend("numpy").__name__
    'numpy'
    """
    if backend is None:
        return default_backend()
    if isinstance(backend, ModuleType):
        if backend.__name__ not in ("numpy", "cupy"):
            raise ValueError(f"backend must be numpy or cupy, got module {backend.__name__!r}")
        return _resolve(backend.__name__, "backend")
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, a module or None, got {type(backend).__name__}")
    return _resolve(backend, "backend")


def _is_cupy_array(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


def array_module(*arrays: Any, backend: str | ModuleType | None = None) -> ModuleType:
    """Module to compute with: explicit ``backend`` if given, else CuPy iff an input is a CuPy array.

    Plain Python numbers and NumPy arrays mean NumPy: the environment variable only decides
    where *new* arrays are created, never moves arrays the caller already holds.

    Parameters
    ----------
    *arrays : arrays or scalars
    backend : str, module or None

    Returns
    -------
    module

    Examples
    --------
    >>> import numpy as np
    >>> array_module(np.ones(3), 2.0).__name__
    'numpy'
    """
    if backend is not None:
        return get_backend(backend)
    if any(_is_cupy_array(a) for a in arrays):
        return _import_cupy()
    return np


def backend_name(xp: ModuleType) -> str:
    """'numpy' or 'cupy'."""
    return "cupy" if xp.__name__ == "cupy" else "numpy"


def to_numpy(x: Any) -> Any:
    """A NumPy copy of a CuPy array; NumPy arrays and scalars pass through unchanged.

    Parameters
    ----------
    x : array or scalar

    Returns
    -------
    the same data on the host

    Examples
    --------
    >>> import numpy as np
    >>> to_numpy(np.ones(2)).tolist()
    [1.0, 1.0]
    """
    if _is_cupy_array(x):
        return x.get()
    return x


def asarray(x: Any, xp: ModuleType, dtype: Any = None) -> Any:
    """``x`` as an array of module ``xp`` (copying across devices when needed)."""
    if xp is np:
        return np.asarray(to_numpy(x), dtype=dtype)
    return xp.asarray(x, dtype=dtype)
