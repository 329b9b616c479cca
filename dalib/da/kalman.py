r"""The Kalman filter and the Rauch-Tung-Striebel smoother (book section 7.3).

For a linear model :math:`\mathcal M(x) = A x` with Gaussian noise (eqs. (1)-(2) with a linear
:math:`h(x) = Hx`) the filtering distributions are Gaussian,
:math:`x_j \mid Y_j^\dagger \sim \mathcal N(m_j, C_j)`, and the Kalman filter computes them
exactly in two steps:

.. math::
    \text{forecast:}\quad \hat m_{j+1} = A m_j, \qquad \hat C_{j+1} = A C_j A^\top + Q,

    \text{analysis:}\quad S = H \hat C H^\top + R,\quad K = \hat C H^\top S^{-1},\quad
    m = \hat m + K (y^\dagger - H \hat m),\quad C = (I - KH) \hat C.

The analysis covariance is computed in the Joseph form
:math:`C = (I-KH)\hat C(I-KH)^\top + K R K^\top`, which equals :math:`(I - KH)\hat C` in exact
arithmetic but stays symmetric positive semi-definite under round-off.  Each analysis also
returns the log-likelihood increment :math:`\log \mathcal N(y^\dagger; H\hat m, S)`; their sum
is the log-likelihood :math:`\log \mathbb P(Y^\dagger)` of eq. (6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_covariance_matrix, check_same_backend
from ..backend import device, namespace
from ._kernels import (
    chol_solve,
    cov_spread,
    dense,
    gaussian_update,
    observation_matrix,
    symmetrize,
)
from .methods import Method

__all__ = [
    "kf_forecast",
    "kf_analysis",
    "kalman_filter",
    "rts_smoother",
    "kalman_smoother",
    "KalmanResult",
    "SmootherResult",
    "GaussianState",
    "KalmanFilter",
]


def _check_mean_cov(m, C):
    check_array(m, "m", ndim=1)
    check_array(C, "C", ndim=2)
    d = m.shape[0]
    if tuple(C.shape) != (d, d):
        raise ValueError(f"C must have shape ({d}, {d}) like m, got shape {tuple(C.shape)}")
    return d


def kf_forecast(m, C, A, Q=None):
    r"""Kalman forecast step: :math:`\hat m = A m`, :math:`\hat C = A C A^\top + Q`.

    Parameters
    ----------
    m : array, shape (d,)
        Analysis mean.
    C : array, shape (d, d)
        Analysis covariance.
    A : array, shape (d, d)
        Linear model matrix (``LinearModel.A``).
    Q : covariance-like or None
        Model error covariance; ``None`` for a perfect model.

    Returns
    -------
    m_f, C_f : array
        Forecast mean and covariance.
    """
    d = _check_mean_cov(m, C)
    check_array(A, "A", ndim=2)
    if tuple(A.shape) != (d, d):
        raise ValueError(f"A must have shape ({d}, {d}), got shape {tuple(A.shape)}")
    xp = namespace(m, C, A)
    return A @ m, symmetrize(A @ C @ A.T + dense(Q, xp, d, "Q", device(m)))


def kf_analysis(m, C, y, H, R, *, return_gain: bool = False):
    r"""Kalman analysis step (Joseph form) and the log-likelihood of ``y``.

    .. math::
        S = H\hat C H^\top + R,\qquad K = \hat C H^\top S^{-1},\qquad
        m = \hat m + K(y - H\hat m),

    with one Cholesky factorisation of :math:`S` for the gain and the likelihood.

    Parameters
    ----------
    m : array, shape (d,)
        Forecast mean :math:`\hat m`.
    C : array, shape (d, d)
        Forecast covariance :math:`\hat C`.
    y : array, shape (p,)
        Observation :math:`y^\dagger`.
    H : array (p, d) or linear ObservationOperator
        Observation matrix.
    R : covariance-like
        Observation error covariance.

    Returns
    -------
    m_a : array, shape (d,)
        :math:`m = \hat m + K(y - H\hat m)`.
    C_a : array, shape (d, d)
        :math:`C = (I - KH)\hat C (I - KH)^\top + K R K^\top`.
    loglik : array, shape ()
        :math:`\log \mathcal N(y; H\hat m, H\hat C H^\top + R)`.
    K : array, shape (d, p)
        The Kalman gain :math:`\hat C H^\top S^{-1}`, only with ``return_gain=True``.

    Raises
    ------
    ValueError
        If ``C`` is not symmetric positive semi-definite, or a shape does not fit.
    TypeError
        If the array arguments belong to different backends.

    Examples
    --------
    >>> import numpy as np
    >>> m, C, loglik, K = kf_analysis(np.zeros(1), np.eye(1), np.ones(1), np.eye(1), 1.0,
    ...                               return_gain=True)
    >>> np.round([m[0], C[0, 0], K[0, 0]], 12).tolist()  # equal weights: half-way
    [0.5, 0.5, 0.5]
    """
    # -- input validation: every check of the arguments belongs in this block ----------
    d = _check_mean_cov(m, C)
    check_same_backend(m=m, C=C, y=y, H=H, R=R)
    check_covariance_matrix(C, "C")
    xp = namespace(m, C)
    Hm = observation_matrix(H, xp, d, device=device(m))
    p = Hm.shape[0]
    check_array(y, "y", ndim=1, last=p)
    Rd = dense(R, xp, p, "R", device(m))
    # -- the update (arguments validated above) -------------------------------------------
    return gaussian_update(m, C, y - Hm @ m, Hm, Rd, xp, return_gain=return_gain)


@dataclass(frozen=True)
class KalmanResult:
    """Output of :func:`kalman_filter`, indexed by time ``j = 0, ..., J``.

    Index 0 holds the prior :math:`(m_0, C_0)` in both the forecast and analysis arrays, so that
    ``m_a[j]`` is the estimate of the truth ``x[j]`` of a twin experiment.

    Attributes
    ----------
    m_f, C_f : array, shapes (J + 1, d), (J + 1, d, d)
        Forecast means and covariances.
    m_a, C_a : array, shapes (J + 1, d), (J + 1, d, d)
        Analysis (filtering) means and covariances.
    loglik_increments : array, shape (J,)
        :math:`\\log \\mathcal N(y_j; H\\hat m_j, S_j)` for ``j = 1..J``.
    loglik : array, shape ()
        Their sum, :math:`\\log \\mathbb P(y_1, \\dots, y_J)`.
    """

    m_f: Any
    C_f: Any
    m_a: Any
    C_a: Any
    loglik_increments: Any
    loglik: Any


@dataclass(frozen=True)
class SmootherResult:
    """Smoothing means ``m`` (J + 1, d) and covariances ``C`` (J + 1, d, d)."""

    m: Any
    C: Any


def _linear_parts(ssm):
    A = getattr(ssm.M, "A", None)
    if A is None:
        raise TypeError(
            f"the Kalman filter needs a linear model with a matrix A (dalib.models.LinearModel), "
            f"got {type(ssm.M).__name__}; use the extended or an ensemble Kalman filter"
        )
    xp = namespace(ssm.m0)
    H = observation_matrix(ssm.h, xp, ssm.d, name="h", device=device(ssm.m0))
    return xp, A, H


def kalman_filter(ssm, y) -> KalmanResult:
    r"""Run the Kalman filter over observations ``y`` of a linear-Gaussian model.

    Parameters
    ----------
    ssm : StateSpaceModel
        Model with a :class:`~dalib.models.LinearModel` ``M`` and a linear ``h``.
    y : array, shape (J, p)
        Observations; ``y[j - 1]`` observes time ``j``.

    Returns
    -------
    KalmanResult
    """
    xp, A, H = _linear_parts(ssm)
    check_array(y, "y", ndim=2, last=ssm.p)
    if y.shape[0] == 0:
        raise ValueError(f"y must hold at least one observation, shape (J, {ssm.p}) with "
                         "J >= 1; got shape (0, ...)")
    d = ssm.d
    dev = device(ssm.m0)
    Q = dense(ssm.Q, xp, d, "Q", dev)
    R = ssm.R.to_dense(xp, device=dev)
    m, C = ssm.m0, ssm.C0.to_dense(xp, device=dev)
    m_f, C_f, m_a, C_a, ll = [m], [C], [m], [C], []
    for j in range(y.shape[0]):
        m, C = A @ m, symmetrize(A @ C @ A.T + Q)
        m_f.append(m)
        C_f.append(C)
        m, C, inc = gaussian_update(m, C, y[j, :] - H @ m, H, R, xp)
        m_a.append(m)
        C_a.append(C)
        ll.append(inc)
    ll = xp.stack(ll)
    return KalmanResult(
        xp.stack(m_f), xp.stack(C_f), xp.stack(m_a), xp.stack(C_a), ll, xp.sum(ll)
    )


def rts_smoother(filtered: KalmanResult, A) -> SmootherResult:
    r"""Rauch-Tung-Striebel smoother: the smoothing distributions :math:`\mathbb P(x_j|Y^\dagger)`.

    Backwards from :math:`(m^s_J, C^s_J) = (m_J, C_J)`:

    .. math::
        G_j = C_j A^\top \hat C_{j+1}^{-1},\qquad
        m^s_j = m_j + G_j (m^s_{j+1} - \hat m_{j+1}),\qquad
        C^s_j = C_j + G_j (C^s_{j+1} - \hat C_{j+1}) G_j^\top.

    Parameters
    ----------
    filtered : KalmanResult
        Output of :func:`kalman_filter`.
    A : array, shape (d, d)
        The model matrix.

    Returns
    -------
    SmootherResult
    """
    xp = namespace(filtered.m_a, A)
    J = filtered.m_a.shape[0] - 1
    m_s, C_s = filtered.m_a[J, :], filtered.C_a[J, ...]
    ms, Cs = [m_s], [C_s]
    for j in range(J - 1, -1, -1):
        C, Cf = filtered.C_a[j, ...], filtered.C_f[j + 1, ...]
        G = chol_solve(xp.linalg.cholesky(Cf), A @ C).T  # C A^T Cf^{-1}
        m_s = filtered.m_a[j, :] + G @ (m_s - filtered.m_f[j + 1, :])
        C_s = symmetrize(C + G @ (C_s - Cf) @ G.T)
        ms.append(m_s)
        Cs.append(C_s)
    return SmootherResult(xp.stack(ms[::-1]), xp.stack(Cs[::-1]))


def kalman_smoother(ssm, y) -> SmootherResult:
    """Kalman filter followed by the RTS smoother, for a linear-Gaussian ``ssm``."""
    _, A, _ = _linear_parts(ssm)
    return rts_smoother(kalman_filter(ssm, y), A)


@dataclass(frozen=True)
class GaussianState:
    """Mean ``m`` (d,), covariance ``C`` (d, d) or ``None``, and the running log-likelihood."""

    m: Any
    C: Any = None
    loglik: Any = 0.0


class KalmanFilter(Method):
    """The Kalman filter (:mod:`dalib.da.kalman`) for a linear model and linear ``h``."""

    def check(self, ssm):
        if getattr(ssm.M, "A", None) is None:
            raise TypeError(
                f"KalmanFilter needs a LinearModel; got {type(ssm.M).__name__} "
                "(use ExtendedKF or an ensemble method)"
            )
        observation_matrix(ssm.h, ssm.xp, ssm.d, name="h", device=device(ssm.m0))

    def init(self, ssm, rng):
        xp, dev = namespace(ssm.m0), device(ssm.m0)
        self._H = observation_matrix(ssm.h, xp, ssm.d, name="h", device=dev)
        self._Q = dense(ssm.Q, xp, ssm.d, "Q", dev)
        self._R = ssm.R.to_dense(xp, device=dev)
        return GaussianState(ssm.m0, ssm.C0.to_dense(xp, device=dev), 0.0)

    def forecast(self, s, ssm, rng):
        A = ssm.M.A
        return GaussianState(A @ s.m, symmetrize(A @ s.C @ A.T + self._Q), s.loglik)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.m)
        m, C, inc = gaussian_update(s.m, s.C, y - self._H @ s.m, self._H, self._R, xp)
        return GaussianState(m, C, s.loglik + inc)

    def moments(self, s):
        return s.m, cov_spread(s.C, namespace(s.C))

    def extras(self, s):
        return {"loglik": s.loglik}
