"""Optional fused GPU kernels of the models, and their switch.

The generic array code of a model is the reference; a fused kernel computes the same steps
in fewer passes over memory on one backend.  Today there is one: Lorenz-96 RK4 steps on
CuPy (:mod:`dalib.models._lorenz96_cupy`), used by :meth:`dalib.models.Lorenz96.rk4_fused`.
"""

from __future__ import annotations

import numbers
import os

import array_api_compat as aac

__all__ = ["use_fused_kernels", "fused_applies", "lorenz96_rk4"]

_FUSED = {"enabled": os.environ.get("DALIB_FUSED_KERNELS", "1") != "0"}


def use_fused_kernels(enabled: bool = True) -> bool:
    """Switch the optional fused GPU kernels on or off; returns the previous setting.

    They are on by default (environment variable ``DALIB_FUSED_KERNELS=0`` turns them off)
    and only ever used for CuPy arrays; with them off, CuPy runs the generic array code,
    which is the reference the kernels are tested against.
    """
    previous = _FUSED["enabled"]
    _FUSED["enabled"] = bool(enabled)
    return previous


def fused_applies(x) -> bool:
    """Whether a fused kernel may run on ``x``: a CuPy array, with the kernels switched on."""
    return _FUSED["enabled"] and aac.is_cupy_array(x)


def lorenz96_rk4(x, F, dt: float, steps: int):
    """``steps`` RK4 steps of Lorenz-96 with one fused kernel per stage, on a GPU.

    Returns ``None`` (so the caller runs the generic code) unless ``x`` is a float32 or
    float64 CuPy array, ``F`` a number and the fused kernels are switched on (see
    :func:`use_fused_kernels`).  The kernel reads each stage point once and computes the
    tendency, the next stage point and the RK4 sum in one pass, instead of the dozen
    temporary arrays of the generic shift-and-combine code.
    """
    if not fused_applies(x):
        return None
    if not isinstance(F, numbers.Real) or x.dtype.char not in "fd":  # pragma: no cover
        return None
    from ._lorenz96_cupy import lorenz96_rk4 as fused  # pragma: no cover - needs a GPU

    return fused(x, float(F), float(dt), int(steps))  # pragma: no cover - needs a GPU
