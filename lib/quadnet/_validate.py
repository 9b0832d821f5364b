"""Input checks shared by the public functions: clear errors that name the parameter."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .backend import to_numpy

#: largest accepted value of a model parameter (a, b, γ, η, σ, ...). Every quantity computed from
#: them is a polynomial of degree ≤ 6 in the parameters, so with each below 1e50 and O(1)
#: overlaps nothing overflows float64 (≈ 1.8e308); physical values are O(1).
LARGEST = 1e50


def positive(
    name: str, value: Any, *, allow_zero: bool = False, array: bool = True, maximum: float | None = LARGEST
) -> Any:
    """A finite positive number (or an array of them, broadcastable over a batch).

    Parameters
    ----------
    name : str
        The parameter's name, used in the error messages.
    value : real number or array of them
        The value to check.
    allow_zero : bool
        Accept 0 (``≥ 0`` instead of ``> 0``).
    array : bool
        Accept arrays (else only scalars).
    maximum : float or None
        Largest accepted value (default :data:`LARGEST`); None for no bound.

    Returns
    -------
    float, or the array ``value`` unchanged.

    Raises
    ------
    TypeError
        Not a real number (strings, booleans, None, complex), or an array where ``array=False``.
    ValueError
        Not finite, ≤ 0 (< 0 with ``allow_zero``) or above ``maximum``; the message gives the range.

    Examples
    --------
    >>> from quadnet import _validate as v
    >>> v.positive("a", 0.25)
    0.25
    >>> v.positive("a", 1e300)
    Traceback (most recent call last):
    ...
    ValueError: a must be > 0 and ≤ 1e+50, got 1e+300
    """
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        if isinstance(value, numbers.Real):
            arr = np.asarray(float(value))
        else:
            arr = np.asarray(to_numpy(value))
            if arr.dtype.kind not in "biuf":
                raise TypeError
            arr = arr.astype(float)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if arr.ndim and not array:
        raise TypeError(f"{name} must be a scalar, got an array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    bound = ("≥ 0" if allow_zero else "> 0") + (f" and ≤ {maximum:g}" if maximum is not None else "")
    bad = arr < 0 if allow_zero else arr <= 0
    if maximum is not None:
        bad = bad | (arr > maximum)
    if np.any(bad):
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(arr) if arr.ndim == 0 else value


def integer(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer ≥ ``minimum`` (and ≤ ``maximum`` if given).

    Integral floats are accepted (``N=1e4``, ``replicas=64.0``); non-integral ones, booleans and
    non-numbers raise ``TypeError`` naming the parameter.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        f = float(value)
        if not (np.isfinite(f) and f.is_integer()):
            raise TypeError(f"{name} must be an integer (an integral float such as 1e4 is fine), got {value!r}")
        value = int(f)
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer ≤ {maximum}, got {value}")
    return value


def which_step(lr: Any, eta: Any, *, required: bool = True) -> str | None:
    """Which of ``lr`` (γ) and ``eta`` (η = aγ) was given: ``"lr"``, ``"eta"``, or None when neither
    was and ``required`` is False. ``TypeError`` when both are given, or neither when required.

    Examples
    --------
    >>> from quadnet import _validate as v
    >>> v.which_step(None, 0.1)
    'eta'
    >>> v.which_step(0.4, 0.1)
    Traceback (most recent call last):
    ...
    TypeError: give the step as lr (γ) or as eta (η = aγ), not both (got lr = 0.4, eta = 0.1)
    """
    if lr is not None and eta is not None:
        raise TypeError(f"give the step as lr (γ) or as eta (η = aγ), not both (got lr = {lr!r}, eta = {eta!r})")
    if lr is None and eta is None:
        if required:
            raise TypeError("the step is missing: give lr (the plain step γ) or eta (the effective step η = aγ)")
        return None
    return "lr" if lr is not None else "eta"


def step(lr: Any, eta: Any, a: float, *, required: bool = True, default: float | None = None) -> float:
    """The plain SGD step γ from exactly one of ``lr`` (γ) and ``eta`` (η = aγ, the book's
    effective step), as a float > 0.

    Parameters
    ----------
    lr, eta : float or None
        The step as γ or as η = aγ; exactly one of them (see ``required``).
    a : float
        The student readout, already validated.
    required : bool
        With False neither may be given, and ``default`` is returned.
    default : float or None
        The γ returned when neither is given and ``required`` is False (e.g. 0 for the drift-only
        plateau).

    Returns
    -------
    float : γ (= η / a when ``eta`` was given).

    Raises
    ------
    TypeError
        Both given, or neither when required (:func:`which_step`); not a real number.
    ValueError
        Not finite, ≤ 0, or above :data:`LARGEST`.

    Examples
    --------
    >>> from quadnet import _validate as v
    >>> v.step(None, 0.1, 0.25)
    0.4
    """
    which = which_step(lr, eta, required=required)
    if which is None:
        return default
    if which == "eta":
        return positive("eta", eta, array=False) / a
    return positive("lr", lr, array=False)


def alphas(value: Any) -> np.ndarray:
    """Output times: a non-empty 1-d, strictly increasing array of finite α ≥ 0 (float64, host)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"alphas must be a 1-d array of times, got {type(value).__name__}")
    try:
        al = np.asarray(to_numpy(value), dtype=float)
    except (TypeError, ValueError):
        raise TypeError("alphas must be a 1-d array of real times") from None
    if al.ndim != 1 or al.size < 1:
        raise ValueError(f"alphas must be a non-empty 1-d array of times, got shape {al.shape}")
    if not np.all(np.isfinite(al)) or np.any(al < 0):
        raise ValueError("alphas must be finite and ≥ 0")
    if np.any(np.diff(al) <= 0):
        raise ValueError("alphas must be strictly increasing")
    return al


def finite_array(name: str, x: Any, xp: Any, *, min_ndim: int = 0, keep_dtype: bool = False) -> Any:
    """``x`` as a float64 array of module ``xp`` (its own real dtype with ``keep_dtype``, which
    avoids a float64 copy of big weight arrays), finite, with at least ``min_ndim`` axes."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}")
    try:
        arr = xp.asarray(to_numpy(x) if xp is np else x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if not keep_dtype:
        arr = arr.astype(xp.float64, copy=False)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {arr.shape}")
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def weight_pair(W: Any, W_star: Any, xp: Any) -> tuple[Any, Any]:
    """Check student W (..., p, N) and teacher W_star (..., p*, N) weights: finite, p, p*, N ≥ 1,
    the same N, broadcastable batch shapes. Returns them as float64 arrays."""
    W = finite_array("W", W, xp, min_ndim=2)
    W_star = finite_array("W_star", W_star, xp, min_ndim=2)
    if W_star.shape[-1] != W.shape[-1]:
        raise ValueError(f"W and W_star must share the input dimension N, got {W.shape} and {W_star.shape}")
    if min(W.shape[-2:] + W_star.shape[-2:]) < 1:
        raise ValueError(f"W and W_star need p ≥ 1, p* ≥ 1 rows and N ≥ 1 columns, got {W.shape} and {W_star.shape}")
    try:
        np.broadcast_shapes(W.shape[:-2], W_star.shape[:-2])
    except ValueError:
        raise ValueError(f"batch shapes of W {W.shape[:-2]} and W_star {W_star.shape[:-2]} do not broadcast") from None
    return W, W_star


_WEIGHTS_HINT = (
    "these look like weights (rows of length N), not overlaps: compute the overlaps with "
    "quadnet.overlaps_from_weights(W, W_star)"
)


def _overlap_shapes(Q: Any, M: Any, P: Any, names: tuple[str, str, str]) -> None:
    """Shape checks of an overlap triple that blame the argument at fault: Q and P must be square,
    M must be (p, p*) with p from Q and p* from P; a transposed M, or weights passed for overlaps,
    are named as such."""
    nQ, nM, nP = names
    looks_like_weights = Q.shape[-1] != Q.shape[-2] and Q.shape[-1] == M.shape[-1] and Q.shape[-1] > Q.shape[-2]
    for name, S, what in ((nQ, Q, "p, p"), (nP, P, "p*, p*")):
        if S.shape[-1] != S.shape[-2]:
            hint = f"; {_WEIGHTS_HINT}" if looks_like_weights else ""
            raise ValueError(f"{name} must be a square overlap matrix of shape (..., {what}), got {S.shape}{hint}")
    p, ps = Q.shape[-1], P.shape[-1]
    if p < 1 or ps < 1:
        raise ValueError(f"{nQ} and {nP} need p ≥ 1 and p* ≥ 1, got {nQ} {Q.shape} and {nP} {P.shape}")
    got = M.shape[-2:]
    if got == (p, ps):
        return
    expected = f"{nM} must have shape (..., p, p*) = (..., {p}, {ps}) (p from {nQ} {Q.shape}, p* from {nP} {P.shape})"
    if got == (ps, p):
        raise ValueError(f"{expected}, got {M.shape}: it looks transposed (pass {nM}ᵀ, i.e. swap its last two axes)")
    if got[0] == p and got[1] > max(p, ps):
        raise ValueError(f"{expected}, got {M.shape}; {_WEIGHTS_HINT}")
    if got[1] == ps:
        raise ValueError(f"{nQ} {Q.shape} and {nM} {M.shape} disagree on the student width p: {expected}")
    if got[0] == p:
        raise ValueError(f"{nM} {M.shape} and {nP} {P.shape} disagree on the teacher width p*: {expected}")
    raise ValueError(f"{expected}, got {M.shape}")


def overlap_triple(
    Q: Any, M: Any, P: Any, xp: Any, *, names: tuple[str, str, str] = ("Q", "M", "P"), psd: bool = True
) -> tuple[Any, Any, Any]:
    """Check Q (..., p, p), M (..., p, p*), P (..., p*, p*) and return them as float64 arrays.

    Parameters
    ----------
    Q, M, P : array_like
        Student–student, student–teacher and teacher–teacher overlaps, batched over leading axes
        whose shapes must broadcast.
    xp : module
        The array module (NumPy or CuPy) to return arrays of.
    names : (str, str, str)
        Parameter names used in the error messages (e.g. ``("Q0", "M0", "P")``).
    psd : bool
        Also require Q and P symmetric and [[Q, M], [Mᵀ, P]] positive semidefinite up to a
        relative tolerance (:func:`psd_gram`): overlaps are Gram matrices.

    Returns
    -------
    (Q, M, P) as float64 arrays of module ``xp``.

    Raises
    ------
    TypeError
        Not arrays of real numbers.
    ValueError
        Non-finite entries; shapes that do not fit (the message names the argument at fault:
        a non-square Q or P, an M whose rows do not match Q or whose columns do not match P, a
        transposed M, weights passed where overlaps are expected); batch shapes that do not
        broadcast; not a Gram matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from quadnet import _validate as v
    >>> Q, M, P = v.overlap_triple(np.eye(3), np.zeros((3, 2)), np.eye(2), np)
    >>> v.overlap_triple(np.eye(3), np.zeros((2, 3)), np.eye(2), np, names=("Q0", "M0", "P"))
    Traceback (most recent call last):
    ...
    ValueError: M0 must have shape (..., p, p*) = (..., 3, 2) (p from Q0 (3, 3), p* from P (2, 2)), got (2, 3): ...
    """
    nQ, nM, nP = names
    Q = finite_array(nQ, Q, xp, min_ndim=2)
    M = finite_array(nM, M, xp, min_ndim=2)
    P = finite_array(nP, P, xp, min_ndim=2)
    _overlap_shapes(Q, M, P, names)
    try:
        np.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of {nQ} {Q.shape[:-2]}, {nM} {M.shape[:-2]} and {nP} {P.shape[:-2]} do not broadcast"
        ) from None
    if psd:
        psd_gram(Q, M, P, xp, names=names)
    return Q, M, P


#: relative tolerance of :func:`psd_gram`: eigenvalues of the Gram matrix down to −PSD_TOL × tr C
#: pass (rounding, ODE solver error, finite-difference probes around rank-deficient points)
PSD_TOL = 1e-6


def psd_gram(
    Q: Any, M: Any, P: Any, xp: Any, *, names: tuple[str, str, str] = ("Q", "M", "P"), tol: float = PSD_TOL
) -> None:
    """Raise ``ValueError`` unless Q and P are symmetric (up to ``tol`` × the largest entry of C)
    and C = [[Q, M], [Mᵀ, P]] is positive semidefinite (eigenvalues ≥ −``tol`` × tr C), per batch
    element. Inputs: validated float64 arrays whose batch shapes broadcast. Cost: one Cholesky
    factorization of the (p+p*)² blocks (an eigendecomposition only when it fails), about 30 µs
    for one small matrix."""
    nQ, nM, nP = names
    batch = tuple(np.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2]))
    p, ps = M.shape[-2], M.shape[-1]
    C = xp.empty(batch + (p + ps, p + ps))
    C[..., :p, :p] = Q
    C[..., :p, p:] = M
    C[..., p:, :p] = xp.swapaxes(M, -1, -2)
    C[..., p:, p:] = P
    C = C.reshape((-1, p + ps, p + ps))
    # symmetry of Q and P (the M blocks are symmetric by construction), relative to each block
    if not bool(xp.all(xp.abs(C - xp.swapaxes(C, -1, -2)) <= tol * xp.max(xp.abs(C), axis=(-2, -1))[:, None, None])):
        for name, S in ((nQ, Q), (nP, P)):
            asym = xp.max(xp.abs(S - xp.swapaxes(S, -1, -2)), axis=(-2, -1))
            if not bool(xp.all(asym <= tol * xp.max(xp.abs(S), axis=(-2, -1)))):
                raise ValueError(
                    f"{name} must be symmetric (an overlap matrix), got an asymmetry of {float(xp.max(asym)):.3g}"
                )
    trace = xp.trace(C, axis1=-2, axis2=-1)
    if xp is np and bool(np.all(trace >= 0)):
        try:  # fast path: C + tol·tr C·I has a Cholesky factor ⇒ every eigenvalue ≥ −tol·tr C
            np.linalg.cholesky(C + (tol * trace)[:, None, None] * np.eye(p + ps))
            return
        except np.linalg.LinAlgError:
            pass  # some element fails (or sits on the boundary): decide by its eigenvalues
    ev = xp.linalg.eigvalsh(C)
    bad = ev[:, 0] < -tol * xp.maximum(trace, 0)
    if not bool(xp.any(bad)):
        return
    i = int(xp.argmax(bad))
    where = f" (batch element {tuple(int(k) for k in np.unravel_index(i, batch))})" if batch else ""
    raise ValueError(
        f"{nQ}, {nM}, {nP} must be overlaps of actual weights: [[{nQ}, {nM}], [{nM}ᵀ, {nP}]] must be positive "
        f"semidefinite (eigenvalues ≥ −{tol:g} × trace), got smallest eigenvalue {float(ev[i, 0]):.4g} "
        f"with trace {float(trace[i]):.4g}{where} (is {nM} too large for {nQ} and {nP}?)"
    )


def scalar_param(name: str, value: Any, xp: Any, *, allow_zero: bool = False, batch: tuple | None = None) -> Any:
    """A positive parameter as a float, or (batched) as an array with two trailing unit axes.

    Parameters
    ----------
    name : str
        The parameter's name (for the error messages).
    value : float or array_like
        A scalar, or an array broadcastable against the batch shape (one value per element).
    xp : module
        Array module of the returned array.
    allow_zero : bool
        Accept 0.
    batch : tuple or None
        The batch shape of the matrices the parameter multiplies; an array ``value`` must
        broadcast against it.

    Returns
    -------
    float, or an array of shape ``value.shape + (1, 1)`` of module ``xp``.

    Raises
    ------
    TypeError, ValueError
        As :func:`positive`; ``ValueError`` naming the parameter when its shape does not broadcast
        against ``batch``.

    Examples
    --------
    >>> import numpy as np
    >>> from quadnet import _validate as v
    >>> v.scalar_param("a", 0.5, np)
    0.5
    >>> v.scalar_param("a", np.ones(3), np, batch=(2,))
    Traceback (most recent call last):
    ...
    ValueError: a has shape (3,), which does not broadcast against the batch shape (2,) of the overlaps: ...
    """
    positive(name, value, allow_zero=allow_zero)
    arr = np.asarray(to_numpy(value), dtype=float)
    if arr.ndim == 0:
        return float(arr)
    if batch is not None:
        try:
            np.broadcast_shapes(arr.shape, tuple(batch))
        except ValueError:
            raise ValueError(
                f"{name} has shape {arr.shape}, which does not broadcast against the batch shape {tuple(batch)} of "
                "the overlaps: give one value, or one per batch element"
            ) from None
    return xp.asarray(arr)[..., None, None]


def batch_shape(*arrays: Any) -> tuple:
    """The broadcast batch shape (all axes but the last two) of validated arrays."""
    return tuple(np.broadcast_shapes(*(x.shape[:-2] for x in arrays)))
