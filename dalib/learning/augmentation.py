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
from ..da._kernels import inflate_anomalies
from ..da.cycling import assimilate
from ..da.enkf import enkf_analysis, etkf_analysis
from ..da.methods import Method
from ..observations import ObservationOperator

__all__ = ["AugmentedObservation", "AugmentedEnKF", "AugmentedResult", "augmented_enkf"]


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


class AugmentedEnKF(Method):
    r"""The ensemble Kalman filter on the augmented state :math:`z = (x, \vartheta)`.

    A method of the cycling driver (:func:`~dalib.da.assimilate`); its state is the
    augmented ensemble ``(N, d + k)``, its moments those of the state part ``x``.
    :func:`augmented_enkf` runs it and returns the parameter estimates.

    Parameters
    ----------
    model, theta_mean, theta_std, N, param_noise, inflation, analysis
        As in :func:`augmented_enkf`.
    """

    def __init__(self, model: Callable, theta_mean, theta_std, *, N: int,
                 param_noise=0.0, inflation: float = 1.0, analysis: str = "etkf"):
        if not callable(model):
            raise TypeError(f"model must be callable as model(theta), got {model!r}")
        self.N = check_int(N, "N", minimum=2)
        self.inflation = float(check_positive(inflation, "inflation"))
        if analysis not in ("etkf", "enkf"):
            raise ValueError(f"analysis must be 'etkf' or 'enkf', got {analysis!r}")
        self.model, self.analysis_kind = model, analysis
        self.theta_mean, self.theta_std, self.param_noise = theta_mean, theta_std, param_noise
        self.k = len(theta_mean)

    def _params(self):
        return {"N": self.N, "inflation": self.inflation, "analysis": self.analysis_kind}

    def _parameters(self, xp):
        """The prior mean, standard deviation and noise of the parameters, validated."""
        mean = xp.asarray(self.theta_mean, dtype=xp.float64)
        std = xp.asarray(self.theta_std, dtype=xp.float64)
        check_array(mean, "theta_mean", ndim=1)
        k = int(mean.shape[0])
        check_array(std, "theta_std", ndim=1, last=k)
        if not bool(xp.all(std >= 0)):
            raise ValueError("theta_std must be non-negative")
        noise = xp.asarray(self.param_noise, dtype=xp.float64) * xp.ones((k,), dtype=xp.float64)
        if not bool(xp.all(noise >= 0)):
            raise ValueError("param_noise must be non-negative")
        return mean, std, noise

    def check(self, ssm):
        self._parameters(namespace(ssm.m0))

    def init(self, ssm, rng):
        xp = namespace(ssm.m0)
        mean, std, _ = self._parameters(xp)
        X = ssm.m0 + ssm.C0.sample(rng, (self.N,))
        T = mean + std * rng.standard_normal((self.N, int(mean.shape[0])))
        return xp.concat([X, T], axis=1)

    def forecast(self, Z, ssm, rng):
        xp = namespace(Z)
        noise = xp.asarray(self.param_noise, dtype=xp.float64)  # validated by check()
        d = ssm.d
        X, T = Z[:, :d], Z[:, d:]
        X = self.model(T)(X)
        if ssm.Q is not None:
            X = X + ssm.Q.sample(rng, (self.N,))
        T = T + noise * rng.standard_normal(tuple(T.shape))
        return xp.concat([X, T], axis=1)

    def analysis(self, Z, y, ssm, rng):
        h = AugmentedObservation(ssm.h, self.k)
        if self.analysis_kind == "etkf":
            return etkf_analysis(Z, y, h, ssm.R, inflation=self.inflation)
        Z = enkf_analysis(Z, y, h, ssm.R, rng)
        return Z if self.inflation == 1.0 else inflate_anomalies(Z, self.inflation, namespace(Z))

    def moments(self, Z):
        xp = namespace(Z)
        m = xp.mean(Z, axis=0)
        d = int(Z.shape[1]) - self.k
        return m[:d], xp.sqrt(xp.mean(xp.sum((Z[:, :d] - m[:d]) ** 2, axis=0) / (self.N - 1)))

    def members(self, Z):
        return Z


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
    ssm = twin.ssm
    xp = namespace(ssm.m0)
    method = AugmentedEnKF(model, theta_mean, theta_std, N=N, param_noise=param_noise,
                           inflation=inflation, analysis=analysis)
    res = assimilate(method, twin, rng, store_ensembles=True)
    d, Z = ssm.d, res.ensembles_a
    m = xp.mean(Z, axis=1)
    spread = [xp.sqrt(xp.sum((Z[j, ...] - m[j, :]) ** 2, axis=0) / (N - 1))[d:]
              for j in range(Z.shape[0])]
    return AugmentedResult(m[:, d:], xp.stack(spread), res.analysis, res.rmse_a, Z[-1, ...])
