r"""The two-scale Lorenz-96 model (Lorenz 1996): slow variables driven by fast ones.

With :math:`K` slow variables :math:`X_k` and :math:`J` fast variables :math:`Y_{j,k}` per
slow one,

.. math::
    \dot X_k &= X_{k-1}(X_{k+1} - X_{k-2}) - X_k + F - \frac{hc}{b}\sum_{j=1}^J Y_{j,k},\\
    \dot Y_{j,k} &= -cb\, Y_{j+1,k}(Y_{j+2,k} - Y_{j-1,k}) - c\, Y_{j,k} + \frac{hc}{b} X_k,

where the fast index runs cyclically over all :math:`KJ` fast variables.  The state vector
is :math:`(X_1..X_K, Y_{1,1}..Y_{J,1}, Y_{1,2}, .., Y_{J,K})`, of length :math:`K(J+1)`.
The single-scale :class:`~dalib.models.Lorenz96` on the slow variables alone is the
standard *imperfect model* of model-error studies.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._validate import check_array, check_int, check_parameter
from ..backend import is_traced, namespace
from .lorenz96 import shift

__all__ = ["Lorenz96TwoScale"]


@dataclass(frozen=True)
class Lorenz96TwoScale:
    """Two-scale Lorenz-96 right-hand side.

    Parameters
    ----------
    K, J : int
        Number of slow variables and of fast variables per slow variable.
    F, h, b, c : float
        Forcing, coupling strength, amplitude ratio and time-scale ratio.
        Defaults are Lorenz's (1996): K=36, J=10, F=10, h=1, b=10, c=10.
    """

    K: int = 36
    J: int = 10
    F: float = 10.0
    h: float = 1.0
    b: float = 10.0
    c: float = 10.0

    def __post_init__(self):
        object.__setattr__(self, "K", check_int(self.K, "K", minimum=4))
        object.__setattr__(self, "J", check_int(self.J, "J", minimum=1))
        for name in ("F", "h", "b", "c"):
            object.__setattr__(self, name, check_parameter(getattr(self, name), name))
        if not is_traced(self.b) and float(self.b) == 0:
            raise ValueError("b must not be zero (the coupling divides by it)")

    @property
    def d(self) -> int:
        """Length of the state vector, ``K * (J + 1)``."""
        return self.K * (self.J + 1)

    def split(self, x):
        """Return the slow part ``(..., K)`` and the fast part ``(..., K*J)`` of ``x``."""
        return x[..., : self.K], x[..., self.K :]

    def coupling(self, x):
        r"""The fast-to-slow forcing :math:`-\frac{hc}{b}\sum_j Y_{j,k}`, shape ``(..., K)``."""
        xp = namespace(x)
        _, Y = self.split(x)
        Yk = xp.reshape(Y, (*Y.shape[:-1], self.K, self.J))
        return -(self.h * self.c / self.b) * xp.sum(Yk, axis=-1)

    def _repeat_slow(self, X):
        xp = namespace(X)
        Xr = xp.broadcast_to(X[..., None], (*X.shape, self.J))
        return xp.reshape(Xr, (*X.shape[:-1], self.K * self.J))

    def rhs(self, x):
        """Time derivative at states ``x`` of shape ``(..., K*(J+1))``."""
        check_array(x, "x", last=self.d, finite=False)
        xp = namespace(x)
        X, Y = self.split(x)
        hcb = self.h * self.c / self.b
        dX = (shift(X, -1) - shift(X, 2)) * shift(X, 1) - X + self.F + self.coupling(x)
        dY = (
            -self.c * self.b * shift(Y, -1) * (shift(Y, -2) - shift(Y, 1))
            - self.c * Y
            + hcb * self._repeat_slow(X)
        )
        return xp.concat([dX, dY], axis=-1)

    def rhs_jvp(self, x, dx):
        """Jacobian-vector product ``Df(x) dx``."""
        xp = namespace(x, dx)
        X, Y = self.split(x)
        dXi, dYi = self.split(dx)
        hcb = self.h * self.c / self.b
        cb = self.c * self.b
        dX = (
            (shift(dXi, -1) - shift(dXi, 2)) * shift(X, 1)
            + (shift(X, -1) - shift(X, 2)) * shift(dXi, 1)
            - dXi
            + self.coupling(xp.concat([dXi, dYi], axis=-1))
        )
        dY = (
            -cb * shift(dYi, -1) * (shift(Y, -2) - shift(Y, 1))
            - cb * shift(Y, -1) * (shift(dYi, -2) - shift(dYi, 1))
            - self.c * dYi
            + hcb * self._repeat_slow(dXi)
        )
        return xp.concat([dX, dY], axis=-1)

    def rhs_vjp(self, x, w):
        """Transposed Jacobian product ``Df(x)^T w``."""
        xp = namespace(x, w)
        X, Y = self.split(x)
        wX, wY = self.split(w)
        hcb = self.h * self.c / self.b
        cb = self.c * self.b
        gX = (
            shift(wX, 1) * shift(X, 2)
            - shift(wX, -2) * shift(X, -1)
            + shift(wX, -1) * (shift(X, -2) - shift(X, 1))
            - wX
        )
        wYk = xp.reshape(wY, (*wY.shape[:-1], self.K, self.J))
        gX = gX + hcb * xp.sum(wYk, axis=-1)
        # dY_i depends on Y_{i+1} (coefficient -cb (Y_{i+2} - Y_{i-1})), on Y_{i+2}
        # (-cb Y_{i+1}), on Y_{i-1} (+cb Y_{i+1}) and on Y_i (-c).
        gY = (
            -cb * shift(wY, 1) * (shift(Y, -1) - shift(Y, 2))
            - cb * shift(wY, 2) * shift(Y, 1)
            + cb * shift(wY, -1) * shift(Y, -2)
            - self.c * wY
        )
        gY = gY - hcb * self._repeat_slow(wX)
        return xp.concat([gX, gY], axis=-1)
