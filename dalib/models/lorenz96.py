r"""The Lorenz-96 model (Lorenz 1996) in any dimension.

.. math::
    \dot x_i = (x_{i+1} - x_{i-2})\, x_{i-1} - x_i + F,\qquad i = 1, \dots, d \text{ (cyclic)}.

The quadratic "advection" term conserves the energy :math:`\tfrac12\sum_i x_i^2`; damping
and forcing balance it on the attractor.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._validate import check_array, check_int, check_parameter
from ..backend import namespace
from .fused import fused_applies, lorenz96_rk4

__all__ = ["Lorenz96", "shift"]


def shift(x, k: int):
    """Cyclic shift along the last axis: ``shift(x, k)[..., i] == x[..., i - k]``."""
    n = x.shape[-1]
    k %= n
    if k == 0:
        return x
    # Two slices and a concatenation: cheaper than a general roll for small states.
    return namespace(x).concat([x[..., n - k :], x[..., : n - k]], axis=-1)


@dataclass(frozen=True)
class Lorenz96:
    """Lorenz-96 right-hand side, with its Jacobian products.

    Parameters
    ----------
    d : int
        Number of variables (at least 4).
    F : float or array of shape (d,)
        Forcing (8 gives chaos for d = 40).
    """

    d: int = 40
    F: float = 8.0

    def __post_init__(self):
        object.__setattr__(self, "d", check_int(self.d, "d", minimum=4))
        object.__setattr__(self, "F", check_parameter(self.F, "F"))

    def advection(self, x):
        r"""The energy-conserving term :math:`(x_{i+1} - x_{i-2})\,x_{i-1}`."""
        # One cyclic padding instead of three shifts: xe[..., j] = x[..., j - 2].
        xe = namespace(x).concat([x[..., -2:], x, x[..., :1]], axis=-1)
        return (xe[..., 3:] - xe[..., :-3]) * xe[..., 1:-2]

    def rhs(self, x):
        """Time derivative at states ``x`` of shape ``(..., d)``."""
        check_array(x, "x", last=self.d, finite=False)
        return self.advection(x) - x + self.F

    def rk4_fused(self, x, dt: float, steps: int):
        """``steps`` RK4 steps in fused GPU kernels, or ``None`` for the generic code.

        Only CuPy arrays with a scalar forcing take the fused path
        (:func:`dalib.models.fused.lorenz96_rk4`); it computes the same steps as
        :func:`~dalib.models.rk4_step` with :meth:`rhs`, up to rounding.
        """
        if not fused_applies(x):  # the generic code checks x in rhs
            return None
        check_array(x, "x", last=self.d, finite=False)
        return lorenz96_rk4(x, self.F, dt, steps)

    def rhs_jvp(self, x, dx):
        """Jacobian-vector product ``Df(x) dx``."""
        return (
            (shift(dx, -1) - shift(dx, 2)) * shift(x, 1)
            + (shift(x, -1) - shift(x, 2)) * shift(dx, 1)
            - dx
        )

    def rhs_vjp(self, x, w):
        r"""Transposed Jacobian product ``Df(x)^T w``.

        Component :math:`k` collects
        :math:`w_{k-1}x_{k-2} - w_{k+2}x_{k+1} + w_{k+1}(x_{k+2} - x_{k-1}) - w_k`.
        """
        return (
            shift(w, 1) * shift(x, 2)
            - shift(w, -2) * shift(x, -1)
            + shift(w, -1) * (shift(x, -2) - shift(x, 1))
            - w
        )
