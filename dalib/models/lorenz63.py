r"""The Lorenz-63 model (Lorenz 1963).

.. math::
    \dot x = \sigma (y - x),\qquad \dot y = x(\rho - z) - y,\qquad \dot z = x y - \beta z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._validate import check_array, check_parameter
from ..backend import namespace

__all__ = ["Lorenz63"]


@dataclass(frozen=True)
class Lorenz63:
    """Lorenz-63 right-hand side, with its Jacobian products.

    Parameters
    ----------
    sigma, rho, beta : float or array
        The classical parameters (defaults 10, 28, 8/3).  They may be JAX tracers, which is
        how chapter 7 differentiates a filter's likelihood with respect to them.
    """

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0

    d = 3

    def __post_init__(self):
        for name in ("sigma", "rho", "beta"):
            object.__setattr__(self, name, check_parameter(getattr(self, name), name))

    def __repr__(self) -> str:
        def fmt(v):
            return f"{v:.4g}" if isinstance(v, (int, float)) else repr(v)

        return f"Lorenz63(sigma={fmt(self.sigma)}, rho={fmt(self.rho)}, beta={fmt(self.beta)})"

    def rhs(self, x):
        """Time derivative at states ``x`` of shape ``(..., 3)``."""
        check_array(x, "x", last=3, finite=False)
        xp = namespace(x)
        X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
        return xp.stack(
            [self.sigma * (Y - X), X * (self.rho - Z) - Y, X * Y - self.beta * Z], axis=-1
        )

    def rhs_jvp(self, x, dx):
        """Jacobian-vector product ``Df(x) dx``."""
        xp = namespace(x, dx)
        X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
        dX, dY, dZ = dx[..., 0], dx[..., 1], dx[..., 2]
        return xp.stack(
            [
                self.sigma * (dY - dX),
                (self.rho - Z) * dX - dY - X * dZ,
                Y * dX + X * dY - self.beta * dZ,
            ],
            axis=-1,
        )

    def rhs_vjp(self, x, w):
        """Transposed Jacobian product ``Df(x)^T w``."""
        xp = namespace(x, w)
        X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
        w1, w2, w3 = w[..., 0], w[..., 1], w[..., 2]
        return xp.stack(
            [
                -self.sigma * w1 + (self.rho - Z) * w2 + Y * w3,
                self.sigma * w1 - w2 + X * w3,
                -X * w2 - self.beta * w3,
            ],
            axis=-1,
        )

    def fixed_points(self):
        r"""The three equilibria as a list of tuples: the origin and
        :math:`(\pm\sqrt{\beta(\rho-1)}, \pm\sqrt{\beta(\rho-1)}, \rho-1)`."""
        c = math.sqrt(self.beta * (self.rho - 1))
        return [(0.0, 0.0, 0.0), (c, c, self.rho - 1), (-c, -c, self.rho - 1)]
