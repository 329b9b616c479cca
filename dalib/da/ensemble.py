r"""The shared base of the ensemble filter objects, and a filter with your own analysis.

:class:`EnsembleMethod` draws the initial ensemble, makes the ensemble forecast
:math:`E \leftarrow \mathcal M(E) + \xi`, :math:`\xi_n \sim \mathcal N(0, Q)` (plus
optional additive inflation) and computes the moments; the ensemble Kalman filters
(:class:`~dalib.da.enkf.ETKF`, :class:`~dalib.da.enkf.EnKF`,
:class:`~dalib.da.localization.LETKF`) add their analysis.

Multiplicative inflation follows the common convention of DAPPER, and ``inflation`` means
this everywhere in dalib: the analysis anomalies are multiplied by ``inflation`` (so the
covariance by ``inflation**2``) after each analysis.  A factor on the forecast anomalies is
called ``forecast_inflation`` and a factor on the forecast covariance ``cov_inflation``.
"""

from __future__ import annotations

from .._validate import check_int, check_positive
from ..backend import namespace
from ..covariance import as_covariance
from ._kernels import inflate_anomalies
from .methods import Method

__all__ = ["EnsembleMethod", "EnsembleFilter"]


class EnsembleMethod(Method):
    r"""Shared parts of the ensemble Kalman filters: the ensemble forecast and inflation.

    Parameters
    ----------
    N : int
        Ensemble size.
    inflation : float
        Multiplicative inflation factor of the analysis anomalies (1: none).
    additive : covariance-like, optional
        Covariance of additive inflation noise added to every forecast member.
    """

    def __init__(self, N: int, inflation: float = 1.0, additive=None):
        self.N = check_int(N, "N", minimum=2)
        self.inflation = float(check_positive(inflation, "inflation"))
        self.additive = additive

    def _params(self):
        out = {"N": self.N, "inflation": self.inflation}
        if self.additive is not None:
            out["additive"] = self.additive
        return out

    def init(self, ssm, rng):
        self._additive(ssm)
        self.constants(ssm)
        return ssm.m0 + ssm.C0.sample(rng, (self.N,))

    def _additive(self, ssm):
        """The additive-inflation covariance for dimension ``ssm.d`` (validated once)."""
        if self.additive is None:
            return None
        cached = getattr(self, "_additive_cov", None)
        if cached is None or cached[0] != ssm.d:
            self._additive_cov = (ssm.d, as_covariance(self.additive, "additive", d=ssm.d))
        return self._additive_cov[1]

    def forecast(self, E, ssm, rng):
        E = ssm.step(E, rng)
        add = self._additive(ssm)
        if add is not None:
            E = E + add.sample(rng, (self.N,))
        return E

    def _inflate(self, E, xp):
        return E if self.inflation == 1.0 else inflate_anomalies(E, self.inflation, xp)

    def moments(self, E):
        xp = namespace(E)
        N, d = E.shape
        m = xp.sum(E, axis=0) / N  # xp.mean costs twice as much for small ensembles
        X = E - m
        return m, xp.sqrt(xp.sum(X * X) / ((N - 1) * d))

    def members(self, E):
        return E


class EnsembleFilter(EnsembleMethod):
    """An ensemble filter with your own analysis step, e.g. a learned one.

    Parameters
    ----------
    N : int
        Ensemble size.
    update : callable
        ``update(E, y, ssm, rng)`` returns the analysis ensemble ``(N, d)`` from the forecast
        ensemble ``E`` and the observation ``y``.
    inflation, additive
        As :class:`EnsembleMethod` (inflation is applied after ``update``).

    Examples
    --------
    >>> from dalib.da import etkf_analysis
    >>> method = EnsembleFilter(20, lambda E, y, ssm, rng: etkf_analysis(E, y, ssm.h, ssm.R))
    """

    def __init__(self, N: int, update, inflation: float = 1.0, additive=None):
        if not callable(update):
            raise TypeError(f"update must be callable as update(E, y, ssm, rng), got {update!r}")
        super().__init__(N, inflation, additive)
        self.update = update

    def _params(self):
        return {"update": getattr(self.update, "__name__", "..."), **super()._params()}

    def analysis(self, E, y, ssm, rng):
        return self._inflate(self.update(E, y, ssm, rng), namespace(E))
