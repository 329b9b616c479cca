"""Argument checks that raise errors naming the argument and what was expected."""

from __future__ import annotations

import math

from .backend import backend_name, is_traced, namespace


def check_array(x, name: str, *, ndim=None, min_ndim=None, last=None, finite=True):
    """Validate an array argument and return it.

    Parameters
    ----------
    x : array
        The value to check.
    name : str
        The argument's name, used in the error message.
    ndim : int, optional
        Exact number of dimensions expected.
    min_ndim : int, optional
        Least number of dimensions expected.
    last : int or tuple of int, optional
        Expected size of the trailing axis (or of the trailing axes).
    finite : bool
        Whether NaN and infinite values are rejected (skipped for traced JAX values).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    shape = tuple(x.shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {shape}")
    if min_ndim is not None and len(shape) < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {shape}")
    if last is not None:
        last = (last,) if isinstance(last, int) else tuple(last)
        if shape[len(shape) - len(last):] != last or len(shape) < len(last):
            want = ", ".join(str(s) for s in last)
            raise ValueError(f"{name} must have shape (..., {want}), got shape {shape}")
    if finite:
        check_finite(x, name)
    return x


def check_same_shape(a, a_name: str, b, b_name: str):
    """Raise a ValueError naming both arguments unless ``a`` and ``b`` have one shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{a_name} and {b_name} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def check_finite(x, name: str):
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if is_traced(x):
        return x
    xp = namespace(x)
    ok = xp.all(xp.isfinite(x))
    if is_traced(ok):  # a concrete array inside jax.jit: its reductions are staged too
        return x
    if not bool(ok):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_positive(value, name: str):
    """Raise ``ValueError`` unless ``value`` (a scalar or array) is positive and finite.

    Infinity is refused too: ``R = inf`` or an infinite inflation only turn into NaNs later.
    """
    if is_traced(value):
        return value
    if isinstance(value, bool) or not (isinstance(value, (int, float))
                                       or hasattr(value, "dtype")):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if isinstance(value, (int, float)):
        ok = value > 0 and math.isfinite(value)
    else:
        xp = namespace(value)
        ok = xp.all((value > 0) & xp.isfinite(value))
        if is_traced(ok):  # concrete array inside jax.jit
            return value
        ok = bool(ok)
    if not ok:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return value


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value.__index__())
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def owned_copy(x):
    """A private copy of array ``x``, so that later in-place edits by the caller cannot
    bypass the checks made on it.

    JAX arrays (and traced values) are immutable and are returned as they are; Python
    numbers too.
    """
    if isinstance(x, (int, float)) or is_traced(x):
        return x
    xp = namespace(x)
    if backend_name(xp) == "jax":
        return x
    return xp.asarray(x, copy=True)


def check_parameter(value, name: str):
    """Return a model parameter (a number or an array) if it is finite, as a private copy.

    Raises ``TypeError`` for anything else and ``ValueError`` for NaN or infinite values,
    naming the parameter; traced JAX values pass unchecked.
    """
    if isinstance(value, bool) or not (isinstance(value, (int, float))
                                       or hasattr(value, "dtype")):
        raise TypeError(f"{name} must be a number or an array, got {type(value).__name__}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return value
    check_finite(value, name)
    return owned_copy(value)


def check_same_backend(**arrays):
    """The array namespace shared by the named arguments that are arrays.

    Python numbers and non-array objects (covariances, operators) are left out.  Raises
    ``TypeError`` naming every array argument and its backend when they differ, instead of
    returning arrays of one backend computed from arrays of another.
    """
    given = {k: v for k, v in arrays.items()
             if hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (int, float))}
    try:
        return namespace(*given.values())
    except TypeError:
        kinds = ", ".join(f"{k} ({_backend_of(v)})" for k, v in given.items())
        raise TypeError(f"arguments must be arrays of one backend, got {kinds}") from None


def _backend_of(x) -> str:
    try:
        return backend_name(namespace(x))
    except TypeError:
        return type(x).__module__.split(".")[0]


def check_covariance_matrix(C, name: str, tol: float = 1e-10):
    """Raise ``ValueError`` unless ``C`` (d, d) is symmetric positive semi-definite.

    Both tests are relative to the largest entry: asymmetry above ``tol`` times it, or an
    eigenvalue below ``-tol`` times it, is refused.  Traced JAX values pass unchecked.
    """
    if is_traced(C):
        return C
    xp = namespace(C)
    scale = xp.max(xp.abs(C))
    if is_traced(scale):
        return C
    scale = max(float(scale), 1e-300)
    asym = float(xp.max(xp.abs(C - xp.matrix_transpose(C))))
    if asym > tol * scale:
        raise ValueError(f"{name} must be symmetric (max |{name} - {name}^T| = {asym:.3g})")
    low = float(xp.min(xp.linalg.eigvalsh(C)))
    if low < -tol * scale:
        raise ValueError(f"{name} must be positive semi-definite (a covariance), but it has "
                         f"the eigenvalue {low:.3g}")
    return C
