r"""The finite-size ensemble Kalman filter EnKF-N, dual form (book section 7.6.2).

The ETKF takes the ensemble's sample mean and covariance for the forecast mean and
covariance.  The EnKF-N (Bocquet 2011) treats both as unknown, gives them Jeffreys'
hyperprior and integrates them out.  The prior of the ensemble weights then becomes a
Student-like density, and its mode is an ETKF analysis whose forecast anomalies are inflated
by a factor :math:`\lambda` that the filter chooses afresh every cycle from the innovation:
no inflation to tune.  In the dual form (Bocquet, Raanes and Hannart 2015) :math:`\lambda`
minimises a scalar function.  With the thin SVD :math:`\tilde Y = U \Sigma V^\top` of the
whitened observation anomalies (N, p) and :math:`\delta = V^\top \tilde d` the whitened
innovation in its row space,

.. math::
    \mathcal D(\lambda) = \sum_i \frac{\delta_i^2}{\lambda^2\sigma_i^2 + N - 1}
        + \frac{\varepsilon_N}{\lambda^2} + c_N \log \lambda^2,
    \qquad \varepsilon_N = 1 + \tfrac1N,\quad c_N = \frac{N + g}{N - 1},

where :math:`g` is the nullity of the anomalies (0 by default).  The first term asks for
a spread that explains the innovation, the other two are the hyperprior, whose mode is
:math:`\lambda^2 = \varepsilon_N / c_N`.  As in DAPPER, both coefficients are scaled by
:math:`\sqrt{(\varepsilon_N/c_N)^{\kappa}}` with :math:`\kappa = \tfrac1N\sum_n
(N-1)/(\sigma_n^2 + N - 1)` (a correction of the mode, Bocquet, Raanes and Hannart 2015,
eq. 36), then multiplied by the confidence ``xN`` in the hyperprior (1 for a chaotic
model, 2 is common for deterministic ones).  The analysis is the ETKF of
:math:`(\lambda X, \lambda \tilde Y)`:

.. math::
    \bar w = U \frac{\lambda\sigma}{\lambda^2\sigma^2 + N - 1}\,\delta,\qquad
    T = I + U\,\mathrm{diag}\Big(\sqrt{\tfrac{N-1}{\lambda^2\sigma_i^2 + N - 1}} - 1\Big)U^\top,
    \qquad E^a = \mathbf 1\bar x^\top + (\mathbf 1\bar w^\top + T)\,\lambda X.
"""

from __future__ import annotations

from .._validate import check_array, check_int, check_positive
from ..backend import device, namespace
from ._kernels import as_R, check_ensemble, etkf_weights_svd, whitened_obs
from .enkf import random_rotation
from .ensemble import EnsembleMethod

__all__ = ["EnKFN", "enkf_n_analysis", "enkf_n_inflation"]

_NEWTON_STEPS = 40


def _hyperprior(sig2, N: int, xN: float, g: int, xp):
    """Coefficients (eps_N, c_N) of the dual cost, mode-corrected and scaled by xN."""
    N1 = N - 1
    eN, cL = (N + 1) / N, (N + g) / N1
    k = sig2.shape[0]
    kappa = (xp.sum(N1 / (sig2 + N1)) + (N - k)) / N  # the N - k padded zeros give 1 each
    correction = xp.sqrt((eN / cL) ** kappa)
    return xN * eN / correction, xN * cL * correction


def _dual_minimiser(sig2, delta2, eN, cL, N1, xp):
    """Newton's method on D'(lambda) from lambda = 1, kept positive, a fixed step count."""
    lam = xp.ones((), dtype=sig2.dtype, device=device(sig2))
    for _ in range(_NEWTON_STEPS):
        dgn = lam * lam * sig2 + N1
        a = xp.sum(sig2 * delta2 / dgn**2)
        b = xp.sum(sig2 * sig2 * delta2 / dgn**3)
        grad = -2 * lam * a - 2 * eN / lam**3 + 2 * cL / lam
        curv = -2 * a + 8 * lam * lam * b + 6 * eN / lam**4 - 2 * cL / lam**2
        step = grad / xp.abs(curv)  # a descent step even where D is concave
        lam = xp.where(lam - step > 0, lam - step, lam / 2)
    return lam


def _svd_parts(E, y, h, R, xp):
    xbar, X, Yw, dw = whitened_obs(E, y, h, R, xp)
    U, sig, Vt = xp.linalg.svd(Yw, full_matrices=False)
    return xbar, X, U, sig, Vt @ dw


def _inflation(sig, delta, N, xN, g, xp):
    sig2 = sig * sig
    eN, cL = _hyperprior(sig2, N, xN, g, xp)
    return _dual_minimiser(sig2, delta * delta, eN, cL, N - 1, xp)


def _enkf_n(E, y, h, R, xp, xN=1.0, g=0, rotation=None, inflation=1.0):
    N = E.shape[0]
    xbar, X, U, sig, delta = _svd_parts(E, y, h, R, xp)
    lam = _inflation(sig, delta, N, xN, g, xp)
    w, T = etkf_weights_svd(U, lam * sig, delta, N, xp)  # the ETKF of (lam X, lam Y~)
    if rotation is not None:
        T = rotation @ T
    if inflation != 1.0:
        T = inflation * T
    return xbar + (w + T) @ (lam * X), lam


def _check(E, y, h, R, xN, g):
    check_ensemble(E)
    check_array(y, "y", ndim=1)
    xp = namespace(E, y)
    if not callable(h):
        raise TypeError(f"h must be a callable observation operator, got {type(h).__name__}")
    check_positive(xN, "xN")
    check_int(g, "g", minimum=0)
    return xp, as_R(R, y.shape[0])


def enkf_n_inflation(E, y, h, R, *, xN: float = 1.0, g: int = 0) -> float:
    r"""The prior inflation :math:`\lambda` the EnKF-N chooses for this analysis.

    It minimises the dual cost :math:`\mathcal D(\lambda)` of the module docstring.

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
    xN : float
        Confidence in the hyperprior (1: the model is chaotic; 2: nearly deterministic).
    g : int
        Nullity of the anomalies (0 by default, as in DAPPER).

    Returns
    -------
    float
        The factor :math:`\lambda` applied to the forecast anomalies.
    """
    xp, R = _check(E, y, h, R, xN, g)
    _, _, _, sig, delta = _svd_parts(E, y, h, R, xp)
    return float(_inflation(sig, delta, E.shape[0], float(xN), int(g), xp))


def enkf_n_analysis(E, y, h, R, *, xN: float = 1.0, g: int = 0):
    r"""Finite-size EnKF (dual EnKF-N) analysis: an ETKF with self-chosen inflation.

    Parameters
    ----------
    E, y, h, R, xN, g
        As in :func:`enkf_n_inflation`.

    Returns
    -------
    Ea : array, shape (N, d)
        Analysis ensemble :math:`\mathbf 1\bar x^\top + (\mathbf 1\bar w^\top + T)\lambda X`.
    lam : float
        The inflation :math:`\lambda` of the forecast anomalies.

    Examples
    --------
    A large, well-spread ensemble needs no inflation, so :math:`\lambda` is close to 1:

    >>> import numpy as np, dalib
    >>> E = np.random.default_rng(0).standard_normal((200, 3))
    >>> h = dalib.observations.Identity(3)
    >>> Ea, lam = enkf_n_analysis(E, np.zeros(3), h, 1.0)
    >>> bool(0.9 < lam < 1.1)
    True
    """
    xp, R = _check(E, y, h, R, xN, g)
    Ea, lam = _enkf_n(E, y, h, R, xp, float(xN), int(g))
    return Ea, float(lam)


class EnKFN(EnsembleMethod):
    """Finite-size ensemble Kalman filter, dual form (:func:`enkf_n_analysis`).

    Parameters
    ----------
    N : int
        Ensemble size.
    xN : float
        Confidence in the hyperprior of the forecast covariance (DAPPER's ``xN``).
    g : int
        Nullity of the anomalies (DAPPER's ``g``).
    rotate : bool
        Random mean-preserving rotation of the analysis anomalies, as for the ETKF.
    inflation, additive
        Extra inflation, as :class:`~dalib.da.ensemble.EnsembleMethod`; the point of the
        EnKF-N is to need none (both default to none).

    Examples
    --------
    >>> method = EnKFN(N=24, xN=2.0, rotate=True)
    """

    def __init__(self, N: int, xN: float = 1.0, g: int = 0, rotate: bool = False,
                 inflation: float = 1.0, additive=None):
        super().__init__(N, inflation, additive)
        self.xN = float(check_positive(xN, "xN"))
        self.g = check_int(g, "g", minimum=0)
        self.rotate = bool(rotate)

    def _params(self):
        out = {"N": self.N, "xN": self.xN}
        if self.g:
            out["g"] = self.g
        if self.rotate:
            out["rotate"] = True
        if self.inflation != 1.0:
            out["inflation"] = self.inflation
        if self.additive is not None:
            out["additive"] = self.additive
        return out

    def analysis(self, E, y, ssm, rng):
        xp = namespace(E)
        rotation = random_rotation(self.N, rng, xp, device(E)) if self.rotate else None
        Ea, _ = _enkf_n(E, y, ssm.h, ssm.R, xp, self.xN, self.g, rotation, self.inflation)
        return Ea

