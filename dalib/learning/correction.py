r"""Model correction (lecture, example 3): an imperfect model plus a learned correction.

Given an inaccurate model :math:`\mathcal M^{\mathrm{approx}} \approx \mathcal M`, learn

.. math::
    \mathcal M_\vartheta(x) = \mathcal M^{\mathrm{approx}}(x)
    + \mathcal M^{\mathrm{correction}}_\vartheta(x), \qquad
    \mathcal M^{\mathrm{correction}}_\vartheta(x)_i = \sum_{k=1}^K \vartheta_k\,\phi_k(x)_i,

with local features :math:`\phi_k` (a :class:`~dalib.learning.LocalDictionary`) whose
coefficients are shared by all sites.  The model is linear in :math:`\vartheta`, so fitting
it to pairs :math:`(x_j, x_{j+1})` (from a reanalysis, or from the members of an ensemble
smoother in the M-step of EM) is linear least squares: one Gauss-Newton step of
:func:`~dalib.learning.least_squares_mstep` is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int
from .dictionary import LocalDictionary

__all__ = ["CorrectedModel", "CorrectedMap"]


@dataclass(frozen=True)
class CorrectedMap:
    r"""The corrected forecast map.

    :math:`x \mapsto \mathcal M^{\mathrm{approx}}(x) + \Phi(x)^\top\vartheta`.
    """

    M_approx: Callable
    features: LocalDictionary
    theta: Any
    d: int

    def __call__(self, x):
        """Advance states ``(..., d)`` over one observation interval."""
        return self.M_approx(x) + self.features.rhs(self.theta, x)

    def correction(self, x):
        r"""The correction term alone, :math:`\Phi(x)^\top\vartheta`."""
        return self.features.rhs(self.theta, x)


@dataclass(frozen=True)
class CorrectedModel:
    r"""The family :math:`\vartheta \mapsto \mathcal M^{\mathrm{approx}} + \Phi^\top\vartheta`.

    Parameters
    ----------
    M_approx : callable
        The imperfect forecast map over one observation interval, acting on ``(..., d)``.
    features : LocalDictionary
        The local features of the correction (e.g. ``LocalDictionary([(), (0,), (0, 0),
        (0, 0, 0)])``, a cubic polynomial in :math:`x_i` as in Wilks 2005).
    d : int
        State dimension.

    Examples
    --------
    >>> from dalib.models import Lorenz96, RK4Map
    >>> cubic = LocalDictionary([(), (0,), (0, 0), (0, 0, 0)])
    >>> family = CorrectedModel(RK4Map(Lorenz96(36, F=10.0), 0.01, 5), cubic, d=36)
    """

    M_approx: Callable
    features: LocalDictionary
    d: int

    def __post_init__(self):
        if not isinstance(self.features, LocalDictionary):
            raise TypeError(
                f"features must be a LocalDictionary, got {type(self.features).__name__}"
            )
        object.__setattr__(self, "d", check_int(self.d, "d"))

    @property
    def K(self) -> int:
        """Number of coefficients."""
        return self.features.K

    def __call__(self, theta) -> CorrectedMap:
        r"""The corrected forecast map :math:`\mathcal M_\vartheta`."""
        check_array(theta, "theta", ndim=1, last=self.K)
        return CorrectedMap(self.M_approx, self.features, theta, self.d)

    def map_and_sensitivity(self, theta, x):
        r"""The forecast and its derivative in the parameters.

        :math:`\mathcal M_\vartheta(x)` and
        :math:`\partial\mathcal M_\vartheta(x)/\partial\vartheta = \Phi(x)`, shape
        ``(..., K, d)``.
        """
        check_array(x, "x", last=self.d, finite=False)
        Phi = self.features.features(x)
        return self(theta)(x), Phi
