r"""State-parameter augmentation: estimate parameters with the ensemble Kalman filter.

The parameters are appended to the state, :math:`z = (x, \vartheta)`, and given the
persistence model, so the augmented forecast is

.. math::
    z_{j+1} = \begin{pmatrix} \mathcal M_{\vartheta_j}(x_j) + \xi_j \\
    \vartheta_j + \zeta_j \end{pmatrix},\qquad
    h_{\mathrm{aug}}(z) = h(x),

with a small artificial parameter noise :math:`\zeta_j`.  The parameters are never
observed; the EnKF updates them through their sample covariance with the predicted
observations, :math:`\operatorname{cov}(\vartheta, h(x^f))`, which the forecast builds up
when members with different parameters drift apart (Evensen 2009).
Gottwald and Reich (2021) use this augmented EnKF to learn the parameters of a surrogate
model from noisy observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .._validate import check_array, check_int, check_positive
from ..backend import namespace
from ..covariance import as_covariance
from ..da._kernels import inflate_anomalies
from ..da.enkf import enkf_analysis, etkf_analysis
from ..observations import ObservationOperator
from ..random import default_rng

__all__ = ["AugmentedObservation", "AugmentedResult", "augmented_enkf"]


class AugmentedObservation(ObservationOperator):
    r"""The observation operator of the augmented state: :math:`h_{\mathrm{aug}}(x, \vartheta) = h(x)`.

    Parameters
    ----------
    h : ObservationOperator
        Observation operator of the state.
    k : int
        Number of parameters appended to the state.
    """

    def __init__(self, h: ObservationOperator, k: int):
        if not isinstance(h, ObservationOperator):
            raise TypeError(f"h must be an ObservationOperator, got {type(h).__name__}")
        self.h, self.k = h, check_int(k, "k")
        self.d, self.p, self.linear = h.d + self.k, h.p, h.linear

    def __call__(self, z):
        return self.h(self._check(z)[..., : self.h.d])

    def jvp(self, z, dz):
        return self.h.jvp(z[..., : self.h.d], dz[..., : self.h.d])

    def vjp(self, z, w):
        xp = namespace(z, w)
        gx = self.h.vjp(z[..., : self.h.d], w)
        return xp.concat([gx, xp.zeros((*gx.shape[:-1], self.k), dtype=gx.dtype)], axis=-1)


@dataclass(frozen=True)
class AugmentedResult:
    r"""Output of :func:`augmented_enkf`, indexed by time ``j = 0..J``.

    Attributes
    ----------
    theta : array, shape (J + 1, k)
        Ensemble mean of the parameters after each analysis (index 0: the prior).
    theta_spread : array, shape (J + 1, k)
        Ensemble standard deviation of each parameter.
    analysis : array, shape (J + 1, d)
        Analysis mean of the state.
    rmse : array, shape (J + 1,)
        RMSE of the state analysis against the truth ``twin.x``.
    ensemble : array, shape (N, d + k)
        The final augmented ensemble.
    """

    theta: Any
    theta_spread: Any
    analysis: Any
    rmse: Any
    ensemble: Any


def augmented_enkf(twin, model: Callable, theta_mean, theta_std, *, N: int, rng,
                   param_noise=0.0, inflation: float = 1.0, analysis: str = "etkf") -> AugmentedResult:
    r"""Run an EnKF on the augmented state :math:`(x, \vartheta)` of a twin experiment.

    Parameters
    ----------
    twin : TwinExperiment
        Observations ``twin.y``; ``twin.ssm`` gives ``h, R, m0, C0`` and the state's model
        error ``Q`` (``None``: none); ``twin.x`` is used only for the RMSE.
    model : callable
        ``model(theta)`` returns the forecast map :math:`\mathcal M_\vartheta` for a batch
        of parameters ``theta`` of shape ``(N, k)``, acting on states ``(N, d)``; member
        ``n`` must be advanced with parameters ``theta[n]``.  For example
        ``lambda th: RK4Map(Lorenz96(40, F=th[:, 0:1]), 0.05)``.
    theta_mean, theta_std : array, shape (k,)
        Mean and standard deviation of the initial parameter ensemble (Gaussian).
    N : int
        Ensemble size.
    rng : int or dalib.random.Generator
        Randomness.
    param_noise : float or array of shape (k,)
        Standard deviation of the parameter noise :math:`\zeta_j` added at each forecast
        (0: a constant parameter, whose spread can only shrink).
    inflation : float
        Multiplicative inflation of the state and parameter anomalies after each analysis.
    analysis : {"etkf", "enkf"}
        The analysis step (:func:`~dalib.da.etkf_analysis` or
        :func:`~dalib.da.enkf_analysis`) applied to the augmented ensemble.

    Returns
    -------
    AugmentedResult
    """
    from ..da.result import FilterDivergenceError

    ssm = twin.ssm
    xp = namespace(ssm.m0)
    N = check_int(N, "N", minimum=2)
    check_positive(inflation, "inflation")
    if analysis not in ("etkf", "enkf"):
        raise ValueError(f"analysis must be 'etkf' or 'enkf', got {analysis!r}")
    theta_mean = xp.asarray(theta_mean, dtype=xp.float64)
    theta_std = xp.asarray(theta_std, dtype=xp.float64)
    check_array(theta_mean, "theta_mean", ndim=1)
    k = int(theta_mean.shape[0])
    check_array(theta_std, "theta_std", ndim=1, last=k)
    if not bool(xp.all(theta_std >= 0)):
        raise ValueError("theta_std must be non-negative")
    pn = xp.asarray(param_noise, dtype=xp.float64) * xp.ones((k,), dtype=xp.float64)
    if not bool(xp.all(pn >= 0)):
        raise ValueError("param_noise must be non-negative")
    rng = default_rng(rng, xp)
    d = ssm.d
    h = AugmentedObservation(ssm.h, k)
    R = ssm.R
    Q = None if ssm.Q is None else as_covariance(ssm.Q, "Q", d=d)

    X = ssm.m0 + ssm.C0.sample(rng, (N,))
    T = theta_mean + theta_std * rng.standard_normal((N, k))
    Z = xp.concat([X, T], axis=1)

    def record(Z):
        m = xp.mean(Z, axis=0)
        s = xp.sqrt(xp.sum((Z - m) ** 2, axis=0) / (N - 1))
        return m[d:], s[d:], m[:d]

    thetas, spreads, means = [], [], []
    for rec, val in zip((thetas, spreads, means), record(Z)):
        rec.append(val)
    for j in range(twin.J):
        X, T = Z[:, :d], Z[:, d:]
        X = model(T)(X)
        if Q is not None:
            X = X + Q.sample(rng, (N,))
        T = T + pn * rng.standard_normal((N, k))
        Z = xp.concat([X, T], axis=1)
        yj = twin.y[j, :]
        if analysis == "etkf":
            Z = etkf_analysis(Z, yj, h, R, inflation=inflation)
        else:
            Z = enkf_analysis(Z, yj, h, R, rng)
            if inflation != 1.0:
                Z = inflate_anomalies(Z, inflation, xp)
        m_theta, s_theta, m_x = record(Z)
        if not bool(xp.all(xp.isfinite(m_x))):
            raise FilterDivergenceError(
                f"the augmented EnKF diverged at cycle {j + 1} of {twin.J}: the analysis mean "
                "is not finite; try more inflation, a larger ensemble or less parameter noise"
            )
        thetas.append(m_theta)
        spreads.append(s_theta)
        means.append(m_x)
    analysis_mean = xp.stack(means)
    err = analysis_mean - twin.x
    rmse = xp.sqrt(xp.mean(err * err, axis=1))
    return AugmentedResult(xp.stack(thetas), xp.stack(spreads), analysis_mean, rmse, Z)
