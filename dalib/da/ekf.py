r"""The extended Kalman filter (book section 7.5).

The extended Kalman filter (ExKF) propagates a Gaussian approximation through the nonlinear
model by linearising it at the current mean:

.. math::
    \hat m_{j+1} = \mathcal M(m_j),\qquad
    \hat C_{j+1} = D\mathcal M(m_j)\, C_j\, D\mathcal M(m_j)^\top + Q,

and the analysis is the Kalman update with :math:`H = Dh(\hat m)` and innovation
:math:`y^\dagger - h(\hat m)`.  The Jacobian :math:`D\mathcal M(m)` comes from the
tangent-linear model ``M.jvp``: one batched call on the ``d`` unit vectors.
"""

from __future__ import annotations

from .._validate import check_array, check_positive
from ..backend import device, namespace
from ._kernels import cov_spread, dense, gaussian_update, symmetrize
from .kalman import GaussianState
from .methods import Method

__all__ = ["model_jacobian", "ekf_forecast", "ekf_analysis", "ExtendedKF"]


def model_jacobian(M, x):
    r"""Jacobian :math:`D\mathcal M(x)`, shape (d, d), from the tangent-linear model.

    ``M.jvp(x, dx)`` returns :math:`(\mathcal M(x), D\mathcal M(x)\,dx)` for a batch of
    perturbations; row ``i`` of the batch result for the unit vectors :math:`e_i` is
    :math:`(D\mathcal M\, e_i)^\top`, i.e. column ``i`` of the Jacobian.

    Returns
    -------
    Mx : array, shape (d,)
        :math:`\mathcal M(x)`.
    DM : array, shape (d, d)
        The Jacobian.
    """
    if not hasattr(M, "jvp"):
        raise TypeError(
            f"M must have a tangent-linear model M.jvp(x, dx); {type(M).__name__} has none"
        )
    xp = namespace(x)
    d = x.shape[-1]
    Mx, cols = M.jvp(x[None, :], xp.eye(d, dtype=x.dtype, device=device(x)))
    return xp.reshape(Mx, (d,)), cols.T


def ekf_forecast(m, C, M, Q=None):
    r"""ExKF forecast: :math:`\hat m = \mathcal M(m)`, :math:`\hat C = DM\,C\,DM^\top + Q`.

    Parameters
    ----------
    m : array, shape (d,)
    C : array, shape (d, d)
    M : callable with ``jvp``
        Forecast model.
    Q : covariance-like or None
        Model error covariance.
    """
    check_array(m, "m", ndim=1)
    d = m.shape[0]
    check_array(C, "C", ndim=2, last=(d, d))
    xp = namespace(m, C)
    m_f, DM = model_jacobian(M, m)
    return m_f, symmetrize(DM @ C @ DM.T + dense(Q, xp, d, "Q", device(m)))


def ekf_analysis(m, C, y, h, R):
    r"""ExKF analysis: the Kalman update linearised at the forecast mean.

    Parameters
    ----------
    m : array, shape (d,)
        Forecast mean.
    C : array, shape (d, d)
        Forecast covariance.
    y : array, shape (p,)
        Observation.
    h : ObservationOperator
        Observation operator with ``jacobian``.
    R : covariance-like
        Observation error covariance.

    Returns
    -------
    m_a, C_a, loglik
        As :func:`~dalib.da.kf_analysis`, with :math:`H = Dh(\hat m)`.
    """
    check_array(m, "m", ndim=1)
    d = m.shape[0]
    check_array(C, "C", ndim=2, last=(d, d))
    check_array(y, "y", ndim=1, last=h.p)
    xp = namespace(m, C, y)
    R = dense(R, xp, h.p, "R", device(m))
    return gaussian_update(m, C, y - h(m), h.jacobian(m), R, xp)


class ExtendedKF(Method):
    """Extended Kalman filter (:mod:`dalib.da.ekf`).

    Parameters
    ----------
    inflation : float
        Multiplicative inflation: the forecast covariance is multiplied by ``inflation**2``.
    additive : covariance-like, optional
        Added to the forecast covariance (on top of ``Q``).
    """

    def __init__(self, inflation: float = 1.0, additive=None):
        self.inflation = float(check_positive(inflation, "inflation"))
        self.additive = additive

    def _params(self):
        return {"inflation": self.inflation}

    def check(self, ssm):
        if not hasattr(ssm.M, "jvp"):
            raise TypeError(f"ExtendedKF needs M.jvp (tangent-linear model); "
                            f"{type(ssm.M).__name__} has none")
        if not hasattr(ssm.h, "jacobian"):
            raise TypeError("ExtendedKF needs h.jacobian")

    def init(self, ssm, rng):
        xp, dev = namespace(ssm.m0), device(ssm.m0)
        self._Q = dense(ssm.Q, xp, ssm.d, "Q", dev)
        if self.additive is not None:
            self._Q = self._Q + dense(self.additive, xp, ssm.d, "additive", dev)
        self._R = ssm.R.to_dense(xp, device=dev)
        return GaussianState(ssm.m0, ssm.C0.to_dense(xp, device=dev), 0.0)

    def forecast(self, s, ssm, rng):
        m, DM = model_jacobian(ssm.M, s.m)
        C = (self.inflation ** 2) * (DM @ s.C @ DM.T) + self._Q
        return GaussianState(m, symmetrize(C), s.loglik)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.m)
        H = ssm.h.jacobian(s.m)
        m, C, inc = gaussian_update(s.m, s.C, y - ssm.h(s.m), H, self._R, xp)
        return GaussianState(m, C, s.loglik + inc)

    def moments(self, s):
        return s.m, cov_spread(s.C, namespace(s.C))

    def extras(self, s):
        return {"loglik": s.loglik}
