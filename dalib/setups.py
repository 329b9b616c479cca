"""Standard twin-experiment setups, stated as data.

Each function returns a :class:`~dalib.ssm.StateSpaceModel` whose numbers follow a published
benchmark, so that results can be compared with the literature:

* :func:`lorenz63`: Lorenz-63, all components observed every 0.25 time units with
  :math:`R = 2I` (Sakov, Oliver and Bertino 2012).
* :func:`lorenz96`: Lorenz-96 with :math:`d = 40, F = 8`, all components observed every
  0.05 time units with :math:`R = I` (Sakov and Oke 2008).
* :func:`lorenz96_two_scale`: the two-scale model of Lorenz (1996), the truth of model-error
  experiments.
* :func:`linear_gaussian`: a small linear-Gaussian model, where the Kalman filter is exact.

A dataset built from them, the reanalysis of the chapters on learning from reanalyses, needs
data assimilation and so lives in :mod:`dalib.da`: :func:`dalib.da.lorenz96_reanalysis`.
"""

from __future__ import annotations

import functools

from ._validate import check_int
from .backend import asarray, get_namespace
from .models import LinearModel, Lorenz63, Lorenz96, Lorenz96TwoScale, RK4Map
from .observations import EveryKth, Identity, Matrix, Subset
from .ssm import StateSpaceModel

__all__ = [
    "lorenz63",
    "lorenz96",
    "lorenz96_two_scale",
    "linear_gaussian",
    "attractor_point",
]


@functools.lru_cache(maxsize=32)
def _spun_up(kind: str, params: tuple, dt: float, n: int) -> tuple:
    import numpy as np

    if kind == "l63":
        ode = Lorenz63(*params)
        x = np.array([1.0, 1.0, 1.0])
    elif kind == "l96":
        d, F = params
        ode = Lorenz96(d, F)
        x = np.full(d, float(F))
        x[0] += 0.01
    else:
        ode = Lorenz96TwoScale(*params)
        x = np.zeros(ode.d)
        x[: ode.K] = ode.F
        x[0] += 0.01
        x[ode.K :] = 0.01 * np.sin(np.arange(ode.d - ode.K))
    M = RK4Map(ode, dt)
    for _ in range(n):
        x = M(x)
    return tuple(float(v) for v in x)


def attractor_point(ode, dt: float = 0.01, time: float = 50.0, xp="numpy", device=None):
    """A point on the attractor, reached from a fixed start after ``time`` model time units.

    Deterministic (no randomness), so setups built from it are reproducible.  It is
    computed once on the host with NumPy and placed on backend ``xp`` and ``device``.
    """
    if isinstance(ode, Lorenz63):
        key = ("l63", (ode.sigma, ode.rho, ode.beta))
    elif isinstance(ode, Lorenz96):
        key = ("l96", (ode.d, float(ode.F)))
    elif isinstance(ode, Lorenz96TwoScale):
        key = ("l96ts", (ode.K, ode.J, ode.F, ode.h, ode.b, ode.c))
    else:
        raise TypeError(f"ode must be a Lorenz model, got {type(ode).__name__}")
    return asarray(_spun_up(*key, dt, int(round(time / dt))), xp, device=device)


def lorenz63(*, dt_obs: float = 0.25, dt: float = 0.01, R=2.0, Q=None, C0=2.0, xp="numpy",
             device=None):
    """Lorenz-63 observed in all components (Sakov, Oliver and Bertino 2012).

    Parameters
    ----------
    dt_obs : float
        Time between observations (0.25).
    dt : float
        RK4 step (0.01).
    R, Q, C0 : covariance-like
        Observation error, model error (``None``: perfect model) and initial covariances.
    xp : str
        Backend.
    device : optional
        Device of ``m0`` (default: the backend's default, e.g. the current GPU).
    """
    steps = _steps(dt_obs, dt)
    ode = Lorenz63()
    return StateSpaceModel(
        M=RK4Map(ode, dt, steps),
        h=Identity(3),
        R=R,
        m0=attractor_point(ode, xp=xp, device=device),
        C0=C0,
        Q=Q,
        dt=dt_obs,
        name=f"Lorenz-63, all observed every {dt_obs}",
    )


def lorenz96(
    *,
    d: int = 40,
    F: float = 8.0,
    dt_obs: float = 0.05,
    dt: float = 0.05,
    obs_every: int = 1,
    R=1.0,
    Q=None,
    C0=1e-3,
    xp="numpy",
    device=None,
):
    """Lorenz-96 (Sakov and Oke 2008 with the defaults).

    Parameters
    ----------
    d, F : int, float
        Dimension and forcing.
    dt_obs, dt : float
        Time between observations and RK4 step.
    obs_every : int
        Observe every ``obs_every``-th component (1: all).
    R, Q, C0 : covariance-like
        Observation error, model error (``None``: perfect model) and initial covariances.
    xp : str
        Backend: ``"cupy"`` puts ``m0`` on the GPU, and with it every array a filter makes.
    device : optional
        Device of ``m0`` (default: the backend's default, e.g. the current GPU).

    Notes
    -----
    ``m0`` is a point on the attractor computed once per ``d`` on the host (50 time units
    of RK4 in NumPy), a few seconds per 10^4 variables.
    """
    obs_every = check_int(obs_every, "obs_every")
    ode = Lorenz96(d, F)
    h = Identity(d) if obs_every == 1 else EveryKth(d, obs_every)
    return StateSpaceModel(
        M=RK4Map(ode, dt, _steps(dt_obs, dt)),
        h=h,
        R=R,
        m0=attractor_point(ode, xp=xp, device=device),
        C0=C0,
        Q=Q,
        dt=dt_obs,
        name=f"Lorenz-96, d={d}, F={F:g}, every {obs_every} observed every {dt_obs}",
    )


def lorenz96_two_scale(
    *,
    K: int = 36,
    J: int = 10,
    F: float = 10.0,
    h: float = 1.0,
    b: float = 10.0,
    c: float = 10.0,
    dt_obs: float = 0.05,
    dt: float = 0.005,
    R=1.0,
    C0=1e-3,
    xp="numpy",
    device=None,
):
    """Two-scale Lorenz-96 whose slow variables are observed (Lorenz 1996 parameters).

    The observation operator picks the ``K`` slow variables, so observations have the same
    meaning for the truth and for a single-scale model of the slow variables.  ``xp`` and
    ``device`` choose where ``m0`` lives.
    """
    ode = Lorenz96TwoScale(K, J, F, h, b, c)
    return StateSpaceModel(
        M=RK4Map(ode, dt, _steps(dt_obs, dt)),
        h=Subset(ode.d, range(ode.K)),
        R=R,
        m0=attractor_point(ode, dt=dt, time=20.0, xp=xp, device=device),
        C0=C0,
        dt=dt_obs,
        name=f"two-scale Lorenz-96, K={K}, J={J}, F={F:g}, slow variables observed",
    )


def linear_gaussian(*, d: int = 2, rotation: float = 0.3, damping: float = 0.98, Q=0.1,
                    R=0.5, C0=1.0, observe=None, xp="numpy", device=None):
    r"""A linear-Gaussian model :math:`x_{j+1} = A x_j + \xi_j`, :math:`y = Hx + \eta`.

    :math:`A` is a damped rotation in consecutive pairs of components (``d`` even), so the
    model is stable and its Kalman filter converges to a steady state.

    Parameters
    ----------
    d : int
        State dimension (even).
    rotation, damping : float
        Angle (radians) and factor of each 2-by-2 block of :math:`A`.
    Q, R, C0 : covariance-like
        Model error, observation error and initial covariances.
    observe : array (p, d), optional
        Observation matrix :math:`H`; the first component of each pair by default.
    xp, device
        Backend and device of :math:`A`, :math:`H` and ``m0``.
    """
    import math

    d = check_int(d, "d", minimum=2)
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    xpm = get_namespace(xp)
    c, s = damping * math.cos(rotation), damping * math.sin(rotation)
    A = [[0.0] * d for _ in range(d)]
    for i in range(0, d, 2):
        A[i][i], A[i][i + 1], A[i + 1][i], A[i + 1][i + 1] = c, -s, s, c
    if observe is None:
        H = [[1.0 if j == 2 * i else 0.0 for j in range(d)] for i in range(d // 2)]
        observe = asarray(H, xpm, device=device)
    return StateSpaceModel(
        M=LinearModel(asarray(A, xpm, device=device)),
        h=Matrix(observe),
        R=R,
        m0=xpm.zeros((d,), dtype=xpm.float64, device=device),
        C0=C0,
        Q=Q,
        dt=1.0,
        name=f"linear-Gaussian, d={d}",
    )


def _steps(dt_obs: float, dt: float) -> int:
    steps = round(dt_obs / dt)
    if steps < 1 or abs(steps * dt - dt_obs) > 1e-9 * dt_obs:
        raise ValueError(f"dt_obs ({dt_obs}) must be a whole multiple of dt ({dt})")
    return steps
