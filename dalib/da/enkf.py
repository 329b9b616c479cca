r"""Ensemble Kalman filters: perturbed observations, the ETKF and inflation (book section 7.6).

An ensemble :math:`E` of shape ``(N, d)`` holds one member per row.  Its mean and anomalies are

.. math::
    \bar x = \tfrac1N \textstyle\sum_n E_n,\qquad X = E - \mathbf 1 \bar x^\top,\qquad
    \hat C = \tfrac{1}{N-1} X^\top X,

and with :math:`Y = h(E) - \mathbf 1 \bar y^\top` the observed anomalies, the ensemble
Kalman gain is :math:`K = X^\top Y (Y^\top Y + (N-1) R)^{-1}`.

Every update here works in *ensemble space*.  With :math:`R = S S^\top` (``S`` a square root
from :mod:`dalib.covariance`) the observation anomalies are whitened, :math:`\tilde Y = Y S^{-\top}`
(rows :math:`S^{-1} Y_n`), and the matrix factorised is the ``N``-by-``N``

.. math::
    G = \tilde Y \tilde Y^\top + (N-1) I_N

(or, for the perturbed-observation EnKF with more members than observations, the equivalent
``p``-by-``p`` :math:`\tilde Y^\top \tilde Y + (N-1) I_p`).  So a scalar or diagonal :math:`R`
never builds a ``d``-by-``d`` matrix.

Inflation (book section 7.6.2) comes in two forms here: multiplicative, which scales the
anomalies (:func:`inflate`, or the ``inflation`` argument of :func:`etkf_analysis`, which
scales the analysis anomalies), and additive, which adds random draws of a covariance
(:func:`additive_inflation`).
"""

from __future__ import annotations

from .._validate import check_array, check_positive
from ..backend import device, namespace
from ..covariance import as_covariance
from ..random import default_rng
from ._kernels import (
    as_R,
    check_ensemble,
    etkf_weights,
    inflate_anomalies,
    random_rotation,
    whitened_obs,
)
from .ensemble import EnsembleMethod
from .localization import check_radius, localization_matrices, observation_locations

__all__ = [
    "ensemble_mean",
    "anomalies",
    "inflate",
    "additive_inflation",
    "enkf_analysis",
    "etkf_analysis",
    "etkf_transform",
    "random_rotation",
    "ETKF",
    "EnKF",
]


# ----------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------


def ensemble_mean(E):
    r"""The ensemble mean :math:`\bar x`, shape ``(d,)`` (or ``(..., d)`` for ``(..., N, d)``)."""
    return namespace(E).mean(E, axis=-2)


def anomalies(E):
    r"""The anomalies :math:`X = E - \mathbf 1 \bar x^\top`, same shape as ``E``."""
    xp = namespace(E)
    return E - xp.mean(E, axis=-2, keepdims=True)


def inflate(E, factor):
    r"""Multiplicative inflation of the anomalies: :math:`\bar x + \alpha (E_n - \bar x)`.

    The ensemble covariance is multiplied by :math:`\alpha^2` and the mean is unchanged
    (book section 7.6.2).

    Parameters
    ----------
    E : array, shape (N, d)
        Ensemble.
    factor : float
        :math:`\alpha \ge 1` (values below 1 deflate).
    """
    check_positive(factor, "factor")
    return inflate_anomalies(E, factor, namespace(E))


def additive_inflation(E, Q, rng):
    r"""Additive inflation: add independent :math:`\mathcal N(0, Q)` draws to every member.

    Parameters
    ----------
    E : array, shape (N, d)
        Ensemble.
    Q : covariance-like
        Covariance of the added noise (a number means :math:`Q = q I`).
    rng : int or dalib.random.Generator
        Source of randomness.
    """
    check_ensemble(E, min_members=1)
    xp = namespace(E)
    Q = as_covariance(Q, "Q", d=E.shape[1])
    return E + Q.sample(default_rng(rng, xp, device(E)), (E.shape[0],))


def _check_args(E, y, h):
    check_ensemble(E, d=getattr(h, "d", None))
    check_array(y, "y", ndim=1, last=getattr(h, "p", None))
    return namespace(E, y)


# ----------------------------------------------------------------------------------------
# Perturbed-observation EnKF
# ----------------------------------------------------------------------------------------


def _enkf(E, y, h, R, rng, xp, center=True):
    N = E.shape[0]
    _, X, Yw, dw = whitened_obs(E, y, h, R, xp)
    # Whitened perturbed innovations S^{-1}(y + eta_n - h(E_n)) = dw - Yw_n + z_n, z_n ~ N(0, I).
    Z = rng.standard_normal(Yw.shape)
    if center:
        Z = Z - xp.mean(Z, axis=0)
    D = dw - Yw + Z
    p = Yw.shape[1]
    if N <= p:  # ensemble space: E + D Yw^T G^{-1} X with the N-by-N G
        G = Yw @ Yw.T + (N - 1) * xp.eye(N, dtype=E.dtype, device=device(E))
        return E + xp.linalg.solve(G, Yw @ D.T).T @ X
    # observation space (cheaper when N > p): E + D (Yw^T Yw + (N-1) I_p)^{-1} Yw^T X
    Gp = Yw.T @ Yw + (N - 1) * xp.eye(p, dtype=E.dtype, device=device(E))
    return E + D @ xp.linalg.solve(Gp, Yw.T @ X)


def _enkf_schur(E, y, h, R, rng, rho_xy, rho_yy, xp, center=True):
    N = E.shape[0]
    X = E - xp.mean(E, axis=0)
    hE = h(E)
    Y = hE - xp.mean(hE, axis=0)
    Z = rng.standard_normal(Y.shape)  # the same draws as the unlocalised update
    if center:
        Z = Z - xp.mean(Z, axis=0)
    D = y + R.sqrt_matmul(Z) - hE  # perturbed innovations, (N, p)
    P_xy = rho_xy * (X.T @ Y)  # (N - 1) rho o (C H^T), (d, p)
    P_yy = rho_yy * (Y.T @ Y) + (N - 1) * R.to_dense(xp, device=device(E))  # (p, p)
    return E + xp.linalg.solve(P_yy, D.T).T @ P_xy.T


def enkf_analysis(E, y, h, R, rng, *, center: bool = True, localization=None):
    r"""Perturbed-observation EnKF analysis (Burgers et al. 1998; book section 7.6).

    Each member is updated with its own perturbed observation,

    .. math::
        E^a_n = E_n + K (y^\dagger + \eta_n - h(E_n)),\qquad \eta_n \sim \mathcal N(0, R),
        \qquad K = X^\top Y (Y^\top Y + (N-1) R)^{-1},

    evaluated in ensemble space as :math:`E^a = E + D \tilde Y^\top G^{-1} X`, where row ``n``
    of :math:`D` is the whitened perturbed innovation :math:`S^{-1}(y^\dagger + \eta_n - h(E_n))`.
    When :math:`N > p` the equal form :math:`E + D(\tilde Y^\top\tilde Y + (N-1)I_p)^{-1}
    \tilde Y^\top X` is cheaper (push-through identity
    :math:`\tilde Y^\top(\tilde Y\tilde Y^\top + (N-1)I_N)^{-1} =
    (\tilde Y^\top\tilde Y + (N-1)I_p)^{-1}\tilde Y^\top`).

    Parameters
    ----------
    E : array, shape (N, d)
        Forecast ensemble.
    y : array, shape (p,)
        Observation :math:`y^\dagger`.
    h : callable
        Observation operator acting on ``(N, d)``.
    R : covariance-like
        Observation error covariance.
    rng : int or dalib.random.Generator
        Source of the observation perturbations.
    center : bool
        Remove the sample mean of the perturbations, so the analysis mean is exactly the
        Kalman update of the forecast mean with the ensemble gain.
    localization : tuple (rho_xy, rho_yy), optional
        Schur-product (B-) localisation (book section 7.6.3): the gain becomes
        :math:`K = (\rho_{xy}\circ X^\top Y)(\rho_{yy}\circ Y^\top Y + (N-1)R)^{-1}` with the
        tapers of :func:`~dalib.da.localization.localization_matrices`, shapes ``(d, p)`` and
        ``(p, p)``.  This works in state and observation space (it forms ``d``-by-``p`` and
        ``p``-by-``p`` matrices), so it suits small and moderate problems.

    Returns
    -------
    array, shape (N, d)
        Analysis ensemble.
    """
    xp = _check_args(E, y, h)
    R = as_R(R, y.shape[0])
    rng = default_rng(rng, xp, device(E))
    if localization is None:
        return _enkf(E, y, h, R, rng, xp, center)
    rho_xy, rho_yy = localization
    d, p = E.shape[1], R.d
    check_array(rho_xy, "rho_xy", ndim=2, last=(d, p))
    check_array(rho_yy, "rho_yy", ndim=2, last=(p, p))
    return _enkf_schur(E, y, h, R, rng, rho_xy, rho_yy, xp, center)


# ----------------------------------------------------------------------------------------
# Ensemble transform Kalman filter
# ----------------------------------------------------------------------------------------


def _etkf(E, y, h, R, xp, inflation=1.0, rotation=None):
    xbar, X, Yw, dw = whitened_obs(E, y, h, R, xp)
    w, T = etkf_weights(Yw, dw, E.shape[0], xp)
    if rotation is not None:
        T = rotation @ T  # a mean-preserving rotation of the analysis anomalies
    if inflation != 1.0:
        T = inflation * T  # T X has zero mean, so this inflates the analysis anomalies only
    return xbar + (w + T) @ X


def etkf_transform(E, y, h, R):
    r"""The ETKF weights: :math:`\bar w` (N,) and the symmetric transform :math:`T` (N, N).

    The analysis ensemble is :math:`E^a = \mathbf 1 \bar x^\top + (\mathbf 1 \bar w^\top + T) X`
    (see :func:`etkf_analysis`).  The same weights applied to the anomalies of an earlier
    ensemble give the ensemble Kalman smoother.
    """
    xp = _check_args(E, y, h)
    R = as_R(R, y.shape[0])
    _, _, Yw, dw = whitened_obs(E, y, h, R, xp)
    return etkf_weights(Yw, dw, E.shape[0], xp)


def etkf_analysis(E, y, h, R, *, inflation: float = 1.0):
    r"""Ensemble transform Kalman filter analysis (Bishop et al. 2001; Hunt et al. 2007).

    A deterministic square-root filter: with :math:`G = \tilde Y \tilde Y^\top + (N-1) I_N`
    (eigendecomposition :math:`G = V \Lambda V^\top`),

    .. math::
        \bar w = G^{-1} \tilde Y \tilde d,\qquad
        T = \sqrt{N-1}\, G^{-1/2} = \sqrt{N-1}\, V \Lambda^{-1/2} V^\top,

        E^a = \mathbf 1 \bar x^\top + (\mathbf 1 \bar w^\top + T)\, X,

    where :math:`\tilde d = S^{-1}(y^\dagger - \bar y)`.  The analysis mean is
    :math:`\bar x + X^\top \bar w = \bar x + K(y^\dagger - \bar y)` and the analysis covariance
    :math:`\tfrac1{N-1} X^\top T^2 X = (I - KH)\hat C` for linear :math:`h`, exactly the Kalman
    analysis of the ensemble's mean and covariance.  The symmetric square root satisfies
    :math:`T\mathbf 1 = \mathbf 1` (as :math:`\tilde Y^\top \mathbf 1 = 0`), so the analysis
    anomalies have zero mean.

    The same transform is computed without the eigendecomposition when that is faster
    (``etkf_weights`` of ``dalib.da._kernels``): from the thin SVD of :math:`\tilde Y`
    when :math:`p < N`, else, with NumPy and JAX, as :math:`G^{-1/2}` from a coupled
    Newton-Schulz iteration (matrix products only); all routes agree to round-off.

    Parameters
    ----------
    E : array, shape (N, d)
        Forecast ensemble.
    y : array, shape (p,)
        Observation.
    h : callable
        Observation operator acting on ``(N, d)``.
    R : covariance-like
        Observation error covariance.
    inflation : float
        Multiplicative inflation :math:`\alpha` of the analysis anomalies: the transform
        becomes :math:`\mathbf 1 \bar w^\top + \alpha T` (book section 7.6.2).

    Returns
    -------
    array, shape (N, d)
        Analysis ensemble.
    """
    check_positive(inflation, "inflation")
    xp = _check_args(E, y, h)
    R = as_R(R, y.shape[0])
    return _etkf(E, y, h, R, xp, inflation)


# ----------------------------------------------------------------------------------------
# Filter objects for the cycling driver
# ----------------------------------------------------------------------------------------


class ETKF(EnsembleMethod):
    """Ensemble transform Kalman filter (:func:`~dalib.da.enkf.etkf_analysis`).

    Parameters
    ----------
    N, inflation, additive
        As :class:`EnsembleMethod`.
    rotate : bool
        Apply a random mean-preserving rotation (:func:`~dalib.da.enkf.random_rotation`)
        to the analysis anomalies every cycle.

    Examples
    --------
    >>> method = ETKF(N=20, inflation=1.02)
    """

    def __init__(self, N: int, inflation: float = 1.0, additive=None, rotate: bool = False):
        super().__init__(N, inflation, additive)
        self.rotate = bool(rotate)

    def _params(self):
        out = super()._params()
        if self.rotate:
            out["rotate"] = True
        return out

    def analysis(self, E, y, ssm, rng):
        xp = namespace(E)
        rotation = random_rotation(self.N, rng, xp, device(E)) if self.rotate else None
        return _etkf(E, y, ssm.h, ssm.R, xp, self.inflation, rotation)


class EnKF(EnsembleMethod):
    """Perturbed-observation EnKF (:func:`~dalib.da.enkf.enkf_analysis`).

    Parameters
    ----------
    N, inflation, additive
        As :class:`EnsembleMethod`.
    radius : float, optional
        Gaspari-Cohn half-width of Schur-product (B-) localisation on a periodic 1-D grid;
        ``None`` for none.
    center : bool
        Centre the observation perturbations.
    """

    def __init__(self, N: int, inflation: float = 1.0, additive=None, radius=None,
                 center: bool = True):
        super().__init__(N, inflation, additive)
        self.radius = check_radius(radius)
        self.center = bool(center)

    def _params(self):
        out = super()._params()
        if self.radius is not None:
            out["radius"] = self.radius
        return out

    def prepare(self, ssm):
        if self.radius is None:
            return None
        return localization_matrices(ssm.d, observation_locations(ssm.h), self.radius,
                                     namespace(ssm.m0), device(ssm.m0))

    def analysis(self, E, y, ssm, rng):
        xp = namespace(E)
        rho = self.constants(ssm)
        if rho is None:
            E = _enkf(E, y, ssm.h, ssm.R, rng, xp, self.center)
        else:
            E = _enkf_schur(E, y, ssm.h, ssm.R, rng, *rho, xp, self.center)
        return self._inflate(E, xp)
