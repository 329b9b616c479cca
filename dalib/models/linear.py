r"""Linear forecast models :math:`\mathcal{M}(x) = A x`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._validate import check_array, owned_copy
from ..backend import namespace

__all__ = ["LinearModel"]


@dataclass(frozen=True)
class LinearModel:
    r"""The linear map :math:`\mathcal{M}(x) = A x`, applied to states ``(..., d)``.

    With Gaussian noise this is the setting in which the Kalman filter is exact, which is
    what the tests of every approximate filter compare against.

    Parameters
    ----------
    A : array, shape (d, d)
        The model matrix (finite; the model keeps its own copy).
    """

    A: Any

    def __post_init__(self):
        check_array(self.A, "A", ndim=2)
        if self.A.shape[0] != self.A.shape[1]:
            raise ValueError(f"A must be square, got shape {tuple(self.A.shape)}")
        object.__setattr__(self, "A", owned_copy(self.A))  # later edits cannot bypass this

    @property
    def d(self) -> int:
        """State dimension."""
        return self.A.shape[0]

    def __call__(self, x):
        """Return ``A x`` for every state in ``x``."""
        check_array(x, "x", last=self.d, finite=False)
        xp = namespace(self.A, x)
        return x @ xp.matrix_transpose(self.A)

    def jvp(self, x, dx):
        """Tangent-linear model: ``(A x, A dx)``."""
        xp = namespace(self.A, x)
        return self(x), dx @ xp.matrix_transpose(self.A)

    def vjp(self, x, w):
        """Adjoint model: ``A^T w``."""
        return w @ self.A
