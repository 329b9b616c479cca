r"""3DVar: a Kalman-type update with a fixed background covariance (book section 7.4).

3DVar replaces the evolving forecast covariance of the Kalman filter by a fixed background
covariance :math:`B`.  The analysis minimises

.. math::
    \mathsf J(x) = \tfrac12 |x - \hat m|^2_{B^{-1}} + \tfrac12 |y^\dagger - h(x)|^2_{R^{-1}},

which for a linear :math:`h(x) = Hx` has the closed-form minimiser

.. math::
    m = \hat m + K (y^\dagger - H \hat m),\qquad K = B H^\top (H B H^\top + R)^{-1}.

The gain :math:`K` is computed once.  If :math:`B` is the steady-state forecast covariance of
the Kalman filter (:func:`steady_state_covariance`), 3DVar *is* the steady-state Kalman filter.
"""

from __future__ import annotations

from .._validate import check_array
from ..backend import device, namespace
from ._kernels import chol_solve, dense, observation_matrix, symmetrize
from .kalman import GaussianState
from .methods import Method

__all__ = ["var3d_gain", "var3d_analysis", "steady_state_covariance", "ThreeDVar"]


def var3d_gain(B, H, R):
    r"""The 3DVar gain :math:`K = B H^\top (H B H^\top + R)^{-1}`.

    Parameters
    ----------
    B : array, shape (d, d) or (d,)
        Background covariance (a vector is a diagonal covariance).
    H : array (p, d) or linear ObservationOperator
        Observation matrix.
    R : covariance-like
        Observation error covariance.

    Returns
    -------
    K : array, shape (d, p)
    """
    check_array(B, "B", min_ndim=1)
    xp = namespace(B)
    d = B.shape[0]
    Hm = observation_matrix(H, xp, d, device=device(B))
    p = Hm.shape[0]
    Bd = dense(B, xp, d, "B")
    HB = Hm @ Bd
    S = symmetrize(HB @ Hm.T + dense(R, xp, p, "R", device(B)))
    return chol_solve(xp.linalg.cholesky(S), HB).T


def var3d_analysis(m, y, h, K):
    r"""3DVar analysis with a fixed gain: :math:`m^a = \hat m + K(y^\dagger - h(\hat m))`.

    Parameters
    ----------
    m : array, shape (d,)
        Forecast (background) :math:`\hat m`.
    y : array, shape (p,)
        Observation.
    h : callable
        Observation operator.
    K : array, shape (d, p)
        Gain, e.g. from :func:`var3d_gain`.
    """
    check_array(m, "m", ndim=1)
    check_array(K, "K", ndim=2)
    d, p = K.shape
    if m.shape[0] != d:
        raise ValueError(f"m must have shape ({d},) to match K of shape {(d, p)}")
    check_array(y, "y", ndim=1, last=p)
    return m + K @ (y - h(m))


def steady_state_covariance(A, H, Q, R, *, tol: float = 1e-12, maxiter: int = 100_000):
    r"""Steady-state forecast and analysis covariances of the Kalman filter.

    Iterates the Riccati recursion
    :math:`\hat C \leftarrow A (I - K H) \hat C A^\top + Q` from :math:`\hat C = Q` until the
    relative change is below ``tol``.

    Parameters
    ----------
    A : array, shape (d, d)
        Model matrix.
    H : array (p, d) or linear ObservationOperator
        Observation matrix.
    Q, R : covariance-like
        Model and observation error covariances (``Q`` must not be ``None``).

    Returns
    -------
    C_f, C_a : array, shape (d, d)
        The fixed points :math:`\hat C_\infty` and :math:`C_\infty = (I - K_\infty H)\hat C_\infty`.
    """
    if Q is None:
        raise ValueError("Q must be given: without model error the steady state is C = 0")
    xp = namespace(A)
    d = A.shape[0]
    dev = device(A)
    Hm = observation_matrix(H, xp, d, device=dev)
    p = Hm.shape[0]
    Qd, Rd = dense(Q, xp, d, "Q", dev), dense(R, xp, p, "R", dev)
    eye = xp.eye(d, dtype=A.dtype, device=dev)
    C_f = Qd
    for _ in range(maxiter):
        K = var3d_gain(C_f, Hm, Rd)
        C_a = symmetrize((eye - K @ Hm) @ C_f)
        new = symmetrize(A @ C_a @ A.T + Qd)
        change = float(xp.max(xp.abs(new - C_f))) / float(xp.max(xp.abs(new)))
        C_f = new
        if change < tol:
            K = var3d_gain(C_f, Hm, Rd)
            return C_f, symmetrize((eye - K @ Hm) @ C_f)
    raise RuntimeError(f"the Riccati iteration did not converge in {maxiter} steps")


class ThreeDVar(Method):
    r"""3DVar with a fixed background covariance ``B`` or a fixed gain ``K``.

    See :mod:`dalib.da.var3d`.

    Parameters
    ----------
    B : covariance-like, optional
        Background covariance; the gain :math:`K = BH^\top(HBH^\top + R)^{-1}` is computed once
        (for a nonlinear ``h``, at every analysis with :math:`H = Dh(\hat m)`).
    K : array (d, p), optional
        A fixed gain instead of ``B``.
    """

    def __init__(self, B=None, K=None):
        if (B is None) == (K is None):
            raise ValueError("give exactly one of B (background covariance) and K (gain)")
        self.B, self.K = B, K

    def __repr__(self):
        return "ThreeDVar(B=...)" if self.B is not None else "ThreeDVar(K=...)"

    def check(self, ssm):
        if self.K is not None and tuple(self.K.shape) != (ssm.d, ssm.p):
            raise ValueError(f"K must have shape ({ssm.d}, {ssm.p}), got {tuple(self.K.shape)}")

    def prepare(self, ssm):
        """``(K, B)``: the gain (``None`` for a nonlinear ``h``) and the dense ``B``."""
        if self.K is not None:
            return self.K, None
        xp, dev = namespace(ssm.m0), device(ssm.m0)
        B = dense(self.B, xp, ssm.d, "B", dev)
        K = var3d_gain(B, ssm.h, ssm.R.to_dense(xp, device=dev)) if ssm.h.linear else None
        return K, B

    def init(self, ssm, rng):
        self.constants(ssm)
        return GaussianState(ssm.m0)

    def forecast(self, s, ssm, rng):
        return GaussianState(ssm.M(s.m))

    def analysis(self, s, y, ssm, rng):
        K, B = self.constants(ssm)
        if K is None:
            K = var3d_gain(B, ssm.h.jacobian(s.m), ssm.R)
        return GaussianState(s.m + K @ (y - ssm.h(s.m)))

    def moments(self, s):
        return s.m, None
