r"""Fused CuPy kernels for the Lorenz-96 forecast.  GPU ONLY: imported only for CuPy arrays.

The generic forecast (:class:`dalib.models.RK4Map` of :class:`dalib.models.Lorenz96`)
builds every stage of RK4 from whole-array operations: three shifted copies of the state,
their products and sums, then the stage update, a dozen temporaries of the size of the
ensemble per stage.  On a GPU the forecast is limited by memory traffic, so those
temporaries cost time.  Here each stage is one kernel: a thread reads its component and
three neighbours of the stage point, computes the tendency

.. math:: f_i(x) = (x_{i+1} - x_{i-2})\, x_{i-1} - x_i + F \quad \text{(cyclic in } i),

and writes the next stage point and the running RK4 sum,

.. math::
    x^{(2)} = x + \tfrac{\Delta t}{2} k_1,\; x^{(3)} = x + \tfrac{\Delta t}{2} k_2,\;
    x^{(4)} = x + \Delta t\, k_3,\quad
    x' = x + \tfrac{\Delta t}{6}(k_1 + 2k_2 + 2k_3 + k_4).

One step moves 16 arrays of the ensemble's size (stage 1 reads 1 and writes 2; stages 2 and
3 read 3 and write 2; stage 4 reads 2 and writes 1), the least for four separate passes.
The sums are associated differently from the generic code, so results agree to rounding
(about 1e-15 relative per step), which ``tests/test_device.py`` checks on a GPU.
"""

from __future__ import annotations

import cupy

# The tendency at flat index i of a C-contiguous (..., d) array xs: row start and column.
_TENDENCY = r"""
    const long long col = i % d;
    const long long row = i - col;
    const T x_p1 = xs[row + (col + 1 < d ? col + 1 : 0)];
    const T x_m1 = xs[row + (col >= 1 ? col - 1 : d - 1)];
    const T x_m2 = xs[row + (col >= 2 ? col - 2 : col + d - 2)];
    const T x_0 = xs[i];
    const T k = (x_p1 - x_m2) * x_m1 - x_0 + F;
"""

# Stage 1: the stage point is the step's start x itself.
_first = cupy.ElementwiseKernel(
    "raw T xs, T a, T b, T F, int64 d",
    "T x_next, T acc",
    _TENDENCY + "x_next = x_0 + a * k; acc = x_0 + b * k;",
    "dalib_l96_rk4_first",
)

# Stages 2 and 3: read the stage point, the step's start and the running sum.
_middle = cupy.ElementwiseKernel(
    "raw T xs, T x0, T acc_in, T a, T b, T F, int64 d",
    "T x_next, T acc",
    _TENDENCY + "x_next = x0 + a * k; acc = acc_in + b * k;",
    "dalib_l96_rk4_middle",
)

# Stage 4: only the running sum is completed; it is the new state.
_last = cupy.ElementwiseKernel(
    "raw T xs, T acc_in, T b, T F, int64 d",
    "T x_new",
    _TENDENCY + "x_new = acc_in + b * k;",
    "dalib_l96_rk4_last",
)


def lorenz96_rk4(x, F: float, dt: float, steps: int):
    """``steps`` RK4 steps of Lorenz-96 (forcing ``F``, step ``dt``) for ``x`` of shape (..., d)."""
    x = cupy.ascontiguousarray(x)
    d = x.shape[-1]
    for _ in range(steps):
        x2, acc = cupy.empty_like(x), cupy.empty_like(x)  # stage 1 has no elementwise input
        _first(x, dt / 2, dt / 6, F, d, x2, acc)
        x3, acc = _middle(x2, x, acc, dt / 2, dt / 3, F, d)
        x4, acc = _middle(x3, x, acc, dt, dt / 3, F, d)
        x = _last(x4, acc, dt / 6, F, d)
    return x
