"""Kernels shared by the modules of :mod:`dalib.da`: internal API.

The names here are public *within* ``dalib`` (other modules of the library may import them)
but not part of the user-facing API: they take already validated arguments, may change
without notice, and are not re-exported by :mod:`dalib.da`.  A kernel lives here when two or
more modules of ``dalib.da`` need it; a kernel used by one module stays private there.
"""

from __future__ import annotations

import math

from .._validate import check_array
from ..backend import device as array_device
from ..backend import namespace, solve_triangular
from ..covariance import Covariance, as_covariance
from ..observations import ObservationOperator

LOG_2PI = math.log(2 * math.pi)


def observation_matrix(H, xp, d: int | None = None, name: str = "H", device=None):
    """The matrix ``H`` (p, d) of a linear observation operator or of a matrix argument.

    An operator's matrix is made on ``device`` (default: the backend's default device).
    """
    if isinstance(H, ObservationOperator):
        if not H.linear:
            raise TypeError(
                f"{name} must be linear; {type(H).__name__} is nonlinear (use the extended KF, "
                "which linearises h with its Jacobian)"
            )
        return H.matrix(xp, device=device)
    check_array(H, name, ndim=2)
    if d is not None and H.shape[1] != d:
        raise ValueError(f"{name} must have shape (p, {d}), got shape {tuple(H.shape)}")
    return H


def dense(C, xp, d: int, name: str, device=None):
    """A covariance-like argument as a dense (d, d) matrix; ``None`` gives zeros.

    Matrices made here (zeros, scaled identities) are created on ``device``.
    """
    if C is None:
        return xp.zeros((d, d), dtype=xp.float64, device=device)
    return as_covariance(C, name, d=d).to_dense(xp, device=device)


def symmetrize(C):
    """The symmetric part of ``C`` (removes round-off asymmetry)."""
    xp = namespace(C)
    return (C + xp.matrix_transpose(C)) / 2


def chol_solve(L, B):
    """Solve ``(L L^T) Z = B`` for ``Z`` given the lower Cholesky factor ``L``."""
    return solve_triangular(L.T, solve_triangular(L, B, lower=True), lower=False)


def gaussian_update(m, C, v, H, R, xp):
    r"""The Kalman update of :math:`\mathcal N(m, C)` by an innovation ``v`` (p,) through ``H``.

    Returns the analysis mean, the Joseph-form analysis covariance and
    :math:`\log \mathcal N(v; 0, S)` with :math:`S = H C H^\top + R`.
    """
    d, p = C.shape[0], v.shape[0]
    HC = H @ C  # (p, d)
    S = symmetrize(HC @ H.T + R)
    L = xp.linalg.cholesky(S)  # S = L L^T: positive definiteness and log det S
    Z = xp.linalg.solve(S, xp.concat([HC, v[:, None]], axis=1))  # S^{-1} [H C, v]
    K = Z[:, :d].T  # C H^T S^{-1}, (d, p)
    m_a = m + K @ v
    IKH = xp.eye(d, dtype=C.dtype, device=array_device(C)) - K @ H
    C_a = symmetrize(IKH @ C @ IKH.T + K @ R @ K.T)  # Joseph form
    logdet = 2 * xp.sum(xp.log(xp.linalg.diagonal(L)))
    loglik = -0.5 * (xp.sum(v * Z[:, d]) + logdet + p * LOG_2PI)
    return m_a, C_a, loglik


def as_R(R, p: int) -> Covariance:
    """The observation error covariance as a :class:`~dalib.covariance.Covariance`."""
    return as_covariance(R, "R", d=p)


def whitened_obs(E, y, h, R, xp):
    r"""Mean, anomalies, and whitened observation anomalies and innovation of an ensemble.

    Returns :math:`\bar x` (d,), :math:`X = E - \mathbf 1 \bar x^\top` (N, d),
    :math:`\tilde Y` (N, p) with rows :math:`S^{-1} Y_n` and
    :math:`\tilde d = S^{-1}(y - \bar y)` (p,), where :math:`R = S S^\top` is a
    :class:`~dalib.covariance.Covariance`.
    """
    xbar = xp.mean(E, axis=0)
    X = E - xbar
    hE = h(E)
    ybar = xp.mean(hE, axis=0)
    Yw = R.inv_sqrt_matmul(hE - ybar)
    dw = R.inv_sqrt_matmul(y - ybar)
    return xbar, X, Yw, dw


def etkf_weights(Yw, dw, N, xp):
    r"""ETKF weights: :math:`\bar w = G^{-1}\tilde Y \tilde d` and :math:`T = \sqrt{N-1}G^{-1/2}`.

    ``Yw`` holds the whitened observation anomalies :math:`\tilde Y` (N, p) and ``dw`` the
    whitened innovation :math:`\tilde d` (p,); :math:`G = \tilde Y \tilde Y^\top + (N-1) I_N`.
    """
    s, V = xp.linalg.eigh(Yw @ Yw.T)  # G = V diag(s + N - 1) V^T
    lam = s + (N - 1)
    w = V @ ((V.T @ (Yw @ dw)) / lam)
    T = (V * xp.sqrt((N - 1) / lam)) @ V.T
    return w, T


def cov_spread(C, xp):
    r"""Root of the mean variance, :math:`\sqrt{\operatorname{tr}(C)/d}`, of a covariance."""
    return xp.sqrt(xp.mean(xp.linalg.diagonal(C)))


def check_ensemble(E, name: str = "E", d: int | None = None, min_members: int = 2):
    """Validate an ensemble ``(N, d)``."""
    check_array(E, name, ndim=2, last=d)
    if E.shape[0] < min_members:
        raise ValueError(
            f"{name} must have at least {min_members} members (rows), got shape {tuple(E.shape)}"
        )
    return E

