r"""The state-space model of eqs. (1)-(2) and twin experiments.

.. math::
    x^t_{j+1} = \mathcal{M}(x^t_j) + \xi^\dagger_j,\quad
    x^t_0 \sim \mathcal N(m_0, C_0),\quad \xi^\dagger_j \sim \mathcal N(0, Q),

    y^\dagger_{j+1} = h(x^t_{j+1}) + \eta^\dagger_{j+1},\quad \eta^\dagger_j \sim \mathcal N(0, R).

A *twin experiment* draws a truth :math:`x^t_0, \dots, x^t_J` and observations
:math:`y^\dagger_1, \dots, y^\dagger_J` from this model, so that a method's estimates can be
scored against the truth it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ._validate import check_array, check_int, check_positive
from .backend import device, namespace
from .covariance import as_covariance
from .observations import ObservationOperator
from .random import default_rng

__all__ = ["StateSpaceModel", "TwinExperiment"]


@dataclass(frozen=True)
class StateSpaceModel:
    r"""Everything that defines a data assimilation problem, eqs. (1)-(2).

    Parameters
    ----------
    M : callable
        Forecast model :math:`\mathcal M`, mapping states ``(..., d)`` over one observation
        interval (e.g. :class:`~dalib.models.RK4Map`).
    h : ObservationOperator
        Observation operator.
    R : Covariance, float, array
        Observation error covariance (see :func:`~dalib.covariance.as_covariance`).
    m0 : array, shape (d,)
        Mean of the initial condition.
    C0 : Covariance, float, array
        Covariance of the initial condition.
    Q : Covariance, float, array or None
        Model error covariance; ``None`` means a perfect model (:math:`Q = 0`).
    dt : float
        Model time between two observations (for axes and labels).
    name : str
        Short description, e.g. ``"Lorenz-96, d=40 (Sakov and Oke 2008)"``.
    """

    M: Callable
    h: ObservationOperator
    R: Any
    m0: Any
    C0: Any
    Q: Any = None
    dt: float = 1.0
    name: str = ""
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        check_array(self.m0, "m0", ndim=1)
        d = int(self.m0.shape[0])
        if getattr(self.M, "d", d) != d:
            raise ValueError(f"M acts on dimension {self.M.d} but m0 has dimension {d}")
        if not isinstance(self.h, ObservationOperator):
            raise TypeError(f"h must be an ObservationOperator, got {type(self.h).__name__}")
        if self.h.d != d:
            raise ValueError(f"h acts on dimension {self.h.d} but m0 has dimension {d}")
        hm0 = self.h(self.m0)
        if tuple(hm0.shape) != (self.h.p,):
            raise ValueError(f"h must map a state of shape ({d},) to an observation of shape "
                             f"(p,) = ({self.h.p},) (its attribute p), but h(m0) has shape "
                             f"{tuple(hm0.shape)}")
        check_positive(self.dt, "dt")
        object.__setattr__(self, "R", as_covariance(self.R, "R", d=self.h.p))
        object.__setattr__(self, "C0", as_covariance(self.C0, "C0", d=d))
        if self.Q is not None:
            object.__setattr__(self, "Q", as_covariance(self.Q, "Q", d=d))

    @property
    def d(self) -> int:
        """State dimension."""
        return int(self.m0.shape[0])

    @property
    def p(self) -> int:
        """Observation dimension."""
        return self.h.p

    @property
    def xp(self):
        """Array namespace of this model (that of ``m0``)."""
        return namespace(self.m0)

    def replace(self, **changes) -> "StateSpaceModel":
        """A copy with some fields changed, e.g. ``ssm.replace(R=2.0)``."""
        return replace(self, **changes)

    def step(self, x, rng):
        r"""One step of eq. (1a): :math:`\mathcal M(x) + \xi`, for states ``(..., d)``."""
        x = self.M(x)
        if self.Q is not None:
            x = x + self.Q.sample(rng, x.shape[:-1])
        return x

    def observe(self, x, rng):
        r"""Eq. (2a): :math:`h(x) + \eta` for states ``(..., d)``."""
        y = self.h(x)
        return y + self.R.sample(rng, y.shape[:-1])

    def simulate(self, J: int, rng, x0=None) -> "TwinExperiment":
        r"""Draw a truth :math:`x^t_{0:J}` and observations :math:`y^\dagger_{1:J}`.

        Parameters
        ----------
        J : int
            Number of observation times.
        rng : int or dalib.random.Generator
            Randomness (initial condition, model and observation noise), drawn on the
            backend and device of ``m0``.
        x0 : array, shape (d,), optional
            Initial truth; by default drawn from :math:`\mathcal N(m_0, C_0)`.

        Returns
        -------
        TwinExperiment
            ``x`` of shape ``(J + 1, d)``, ``y`` of shape ``(J, p)`` and times ``t``.
        """
        J = check_int(J, "J")
        rng = default_rng(rng, namespace(self.m0), device(self.m0))
        xp = self.xp
        if x0 is None:
            x0 = self.m0 + self.C0.sample(rng)
        else:
            check_array(x0, "x0", ndim=1, last=self.d)
        xs, ys = [x0], []
        for _ in range(J):
            xs.append(self.step(xs[-1], rng))
            ys.append(self.observe(xs[-1], rng))
        t = xp.arange(J + 1, dtype=xp.float64, device=device(self.m0)) * self.dt
        return TwinExperiment(ssm=self, t=t, x=xp.stack(xs), y=xp.stack(ys))


@dataclass(frozen=True)
class TwinExperiment:
    """A simulated truth and its observations.

    Attributes
    ----------
    ssm : StateSpaceModel
        The model that generated them.
    t : array, shape (J + 1,)
        Times of :math:`x^t_0, \\dots, x^t_J`.
    x : array, shape (J + 1, d)
        The truth.
    y : array, shape (J, p)
        Observations; ``y[j - 1]`` observes ``x[j]``.
    """

    ssm: StateSpaceModel
    t: Any
    x: Any
    y: Any

    @property
    def J(self) -> int:
        """Number of observation times."""
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return (
            f"TwinExperiment(J={self.J}, d={self.ssm.d}, p={self.ssm.p}, "
            f"model={self.ssm.name or type(self.ssm.M).__name__!r})"
        )
