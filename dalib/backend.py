"""Array backends: namespaces, conversion and the few operations outside the array API.

dalib code never imports NumPy for numerics.  Each function asks its inputs for their
namespace with :func:`namespace` and then calls only functions of the `array API standard
<https://data-apis.org/array-api/>`_.  The handful of operations the standard lacks
(triangular solves, the error function, random numbers) are dispatched here, in one place,
to NumPy/SciPy, CuPy, JAX or a portable fallback.  So is one GPU-specific path: a batched
eigendecomposition split into chunks that cuSOLVER accepts (:func:`eigh`).  This module
knows no model: fused kernels of a model live with the model (:mod:`dalib.models.fused`).

Arrays stay where they are: functions create new arrays on the device of their inputs
(:func:`device`), so a run whose inputs live on a GPU never copies data to the host inside
its loop.

Backends are named ``"numpy"``, ``"cupy"``, ``"jax"`` and ``"array_api_strict"`` (a strict
stand-in used by the tests to prove that nothing NumPy-specific leaks into the code).
"""

from __future__ import annotations

import sys
from types import ModuleType

import array_api_compat as _aac

BACKENDS = ("numpy", "cupy", "jax", "array_api_strict")

__all__ = [
    "BACKENDS",
    "get_namespace",
    "namespace",
    "backend_name",
    "device",
    "default_device",
    "asarray",
    "to_numpy",
    "is_traced",
    "solve_triangular",
    "erf",
    "eigh",
]


def get_namespace(name: str | ModuleType) -> ModuleType:
    """Return the array namespace of the backend called ``name``.

    Parameters
    ----------
    name : {"numpy", "cupy", "jax", "array_api_strict"} or module
        The backend.  A namespace module is returned unchanged.

    Notes
    -----
    Asking for ``"jax"`` switches JAX to double precision (``jax_enable_x64``), because
    data assimilation runs in float64 everywhere else in dalib.
    """
    if isinstance(name, ModuleType):
        return name
    if name == "numpy":
        import array_api_compat.numpy as xp
    elif name == "cupy":
        try:
            import array_api_compat.cupy as xp
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise ImportError(
                "backend 'cupy' needs CuPy and a CUDA GPU: pip install cupy-cuda12x "
                "(CuPy for CUDA 12)"
            ) from err
    elif name == "jax":
        try:
            import jax
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise ImportError("backend 'jax' needs JAX: pip install jax") from err
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as xp
    elif name == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "backend 'array_api_strict' needs array-api-strict: "
                "pip install array-api-strict"
            ) from err
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return xp


def namespace(*arrays) -> ModuleType:
    """Array namespace shared by ``arrays`` (Python scalars and ``None`` are ignored).

    With no arrays at all the NumPy namespace is returned.
    """
    if len(arrays) == 1 and type(arrays[0]) is _np_ndarray:  # the most common call
        return _np_namespace()
    arrays = [a for a in arrays if a is not None and not isinstance(a, (int, float, complex))]
    if not arrays:
        return get_namespace("numpy")
    if all(type(a) is _np_ndarray for a in arrays):  # fast path: plain NumPy arrays
        return _np_namespace()
    try:
        return _aac.array_namespace(*arrays)
    except TypeError as err:
        raise TypeError(
            "inputs must be arrays of one backend (NumPy, CuPy, JAX or array-api-strict); "
            f"got {', '.join(type(a).__name__ for a in arrays)}"
        ) from err


def _np_ndarray_type():
    import numpy

    return numpy.ndarray


_np_ndarray = _np_ndarray_type()
_np_xp: list = []


def _np_namespace():
    if not _np_xp:
        import array_api_compat.numpy as xp

        _np_xp.append(xp)
    return _np_xp[0]


def backend_name(xp: ModuleType) -> str:
    """Short name (one of :data:`BACKENDS`) of an array namespace."""
    if _aac.is_numpy_namespace(xp):
        return "numpy"
    if _aac.is_cupy_namespace(xp):
        return "cupy"
    if _aac.is_jax_namespace(xp):
        return "jax"
    if _aac.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return getattr(xp, "__name__", str(xp))


def device(x):
    """The device of array ``x`` (``None`` for Python numbers and ``None``).

    New arrays made from ``x`` are created there, e.g.
    ``xp.zeros(n, dtype=x.dtype, device=device(x))``, so that nothing moves between the host
    and a GPU.  Abstract JAX values (inside ``jax.jit``) have no device and give ``None``,
    the backend's default.
    """
    if x is None or isinstance(x, (int, float, complex)):
        return None
    return _aac.device(x)


def default_device(xp):
    """The device on which backend ``xp`` creates arrays when no device is given."""
    xp = get_namespace(xp)
    if _aac.is_cupy_namespace(xp):  # pragma: no cover - needs a GPU
        import cupy

        return cupy.cuda.Device()  # the current device, which CuPy creates arrays on
    info = getattr(xp, "__array_namespace_info__", None)
    return None if info is None else info().default_device()


def asarray(x, xp: ModuleType | str | None = None, dtype=None, device=None):
    """Convert ``x`` to an array of backend ``xp`` (default NumPy), float64 unless ``dtype``.

    NumPy arrays and nested lists are accepted for any backend; arrays of another
    device backend are first brought to the host.  ``device`` places the result (default:
    the backend's default device, e.g. the current GPU).
    """
    xp = get_namespace(xp or "numpy")
    if dtype is None:
        dtype = xp.float64
    if not isinstance(x, (int, float, list, tuple)) and not _is_namespace_array(x, xp):
        if _aac.is_cupy_array(x) and not _aac.is_cupy_namespace(xp):
            x = x.get()
        elif not _aac.is_numpy_array(x) and hasattr(x, "__dlpack__"):
            x = to_numpy(x)
    if device is None:
        return xp.asarray(x, dtype=dtype)
    return xp.asarray(x, dtype=dtype, device=device)


def _is_namespace_array(x, xp) -> bool:
    try:
        return _aac.array_namespace(x) is xp
    except TypeError:
        return False


def to_numpy(x):
    """Copy an array of any backend to a NumPy array (for plotting, printing, SciPy)."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return x
    if _aac.is_cupy_array(x):
        return x.get()
    if _aac.is_jax_array(x):
        return np.asarray(x)
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def is_traced(x) -> bool:
    """True when ``x`` is an abstract JAX value (inside ``jax.grad``, ``jax.jit``...).

    Traced values have no concrete numbers, so value checks (finiteness, positive
    definiteness) are skipped for them.
    """
    if "jax" not in sys.modules:
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def solve_triangular(L, b, *, lower: bool = True):
    """Solve ``L z = b`` for a triangular matrix ``L`` of shape ``(..., n, n)``.

    ``b`` has shape ``(..., n, k)``.  Uses the backend's triangular solver where one exists
    and a general solve otherwise (same result, only slower).
    """
    xp = namespace(L, b)
    name = backend_name(xp)
    if name == "numpy" and L.ndim == 2 and L.shape[-1] > 32:
        # Small systems go to the general solve below: NumPy's is several times faster
        # there, and SciPy's threaded OpenBLAS has taken milliseconds per 2-by-2 solve on
        # busy machines (oversubscribed threads), which made the RTS smoother crawl.
        from scipy.linalg import solve_triangular as _st

        return _st(L, b, lower=lower, check_finite=False)
    if name == "cupy" and L.ndim == 2:  # pragma: no cover - needs a GPU
        from cupyx.scipy.linalg import solve_triangular as _st

        return _st(L, b, lower=lower)
    if name == "jax":
        from jax.scipy.linalg import solve_triangular as _st

        return _st(L, b, lower=lower)
    return xp.linalg.solve(L, b)


def erf(x):
    """The error function, elementwise, on the backend of ``x``."""
    xp = namespace(x)
    name = backend_name(xp)
    if name == "numpy":
        from scipy.special import erf as _erf
    elif name == "jax":
        from jax.scipy.special import erf as _erf
    elif name == "cupy":  # pragma: no cover - needs a GPU
        from cupyx.scipy.special import erf as _erf
    else:
        from scipy.special import erf as _np_erf

        return xp.asarray(_np_erf(to_numpy(x)), dtype=x.dtype)
    return _erf(x)


#: Largest number of matrices given to one batched eigendecomposition on CuPy.  cuSOLVER's
#: batched Jacobi solver sizes its workspace with 32-bit integers, which a batch of
#: millions of small matrices overflows (CuPy issue 7261), so larger stacks are split.
CUPY_EIGH_BATCH = 2**15


def eigh(A):
    """Eigenvalues and eigenvectors of the symmetric matrices ``A`` of shape ``(..., n, n)``.

    The same as ``xp.linalg.eigh(A)``, except that on CuPy a large stack is decomposed in
    chunks of :data:`CUPY_EIGH_BATCH` matrices (one batched call each).
    """
    xp = namespace(A)
    if backend_name(xp) == "cupy" and A.ndim == 3 and A.shape[0] > CUPY_EIGH_BATCH:
        B = CUPY_EIGH_BATCH  # pragma: no cover - needs a GPU
        parts = [xp.linalg.eigh(A[i : i + B, ...]) for i in range(0, A.shape[0], B)]
        return (xp.concat([p[0] for p in parts], axis=0),
                xp.concat([p[1] for p in parts], axis=0))
    return xp.linalg.eigh(A)
