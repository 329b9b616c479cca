"""The record of one assimilation run, with scores against the truth."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from .. import metrics
from .._validate import check_int
from ..backend import device, namespace

__all__ = ["AssimilationResult", "FilterDivergenceError", "FilterDivergenceWarning",
           "resolve_burn_in"]


class FilterDivergenceError(RuntimeError):
    """A filter's state became NaN or infinite; the message names the cycle."""


class FilterDivergenceWarning(RuntimeWarning):
    """A run stayed finite but its estimate lost the truth (see
    :meth:`AssimilationResult.divergence`), or its optimiser stopped short."""


def _pick(kind, **series):
    """The entry of ``series`` named ``kind``, or an error listing the valid kinds."""
    if kind not in series:
        valid = ", ".join(f"{k!r}" for k in series)
        raise ValueError(f"kind must be one of {valid} (analysis or forecast), got {kind!r}")
    return series[kind]


def resolve_burn_in(burn_in, J: int) -> int:
    """``burn_in`` validated against ``J``, or the default ``J // 10`` (at most ``J - 1``).

    The one default number of initial times left out of time averages, for every method
    that returns an :class:`AssimilationResult`.
    """
    if burn_in is None:
        return min(J // 10, J - 1)
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in > J:
        raise ValueError(f"burn_in ({burn_in}) must not exceed J ({J})")
    return burn_in


@dataclass(frozen=True)
class AssimilationResult:
    r"""Means, spreads and (optionally) ensembles of a run over a twin experiment.

    Every time series is indexed by time ``j = 0, ..., J`` like the truth ``twin.x``; index 0
    holds the initial state (its forecast and analysis are both the prior), and the innovation
    ``innovations[j - 1]`` belongs to the observation ``twin.y[j - 1]`` of time ``j``.

    Attributes
    ----------
    method : str
        Description of the method.
    twin : TwinExperiment
        The truth and observations.
    analysis, forecast : array, shape (J + 1, d)
        Analysis (filter) and forecast means.  For a smoother, ``analysis`` is the smoothed
        mean.
    spread_a, spread_f : array, shape (J + 1,) or None
        Spread (root of the mean variance) of the analysis and forecast distributions.
    innovations : array, shape (J, p)
        :math:`y^\dagger_j - h(\hat m_j)`, the observation minus the forecast mean's image.
    ensembles_a, ensembles_f : array, shape (J + 1, N, d) or None
        Stored ensembles (``store_ensembles=True``).
    log_weights : array, shape (J + 1, N) or None
        Particle log-weights of the analysis ensembles (particle filters).
    burn_in : int
        Default number of initial times left out of time averages.
    extras : dict
        Method-specific outputs, e.g. ``"loglik"`` for Kalman filters.
    """

    method: str
    twin: Any
    analysis: Any
    forecast: Any
    spread_a: Any = None
    spread_f: Any = None
    innovations: Any = None
    ensembles_a: Any = None
    ensembles_f: Any = None
    log_weights: Any = None
    burn_in: int = 0
    extras: dict = field(default_factory=dict)

    # -- time series -----------------------------------------------------------------------

    @property
    def J(self) -> int:
        """Number of observation times."""
        return int(self.analysis.shape[0]) - 1

    @property
    def rmse_a(self):
        """RMSE of the analysis mean at every time, shape (J + 1,)."""
        return metrics.rmse(self.analysis, self.twin.x)

    @property
    def rmse_f(self):
        """RMSE of the forecast mean at every time, shape (J + 1,)."""
        return metrics.rmse(self.forecast, self.twin.x)

    # -- time averages -----------------------------------------------------------------------

    def _burn(self, burn_in):
        return self.burn_in if burn_in is None else check_int(burn_in, "burn_in", minimum=0)

    def rmse(self, burn_in: int | None = None, kind: str = "a") -> float:
        """Time-mean RMSE of the analysis (``kind="a"``) or forecast (``"f"``) mean."""
        series = _pick(kind, a=self.rmse_a, f=self.rmse_f)
        return float(metrics.time_average(series, self._burn(burn_in)))

    def spread(self, burn_in: int | None = None, kind: str = "a") -> float:
        """Time-mean spread of the analysis or forecast distribution (NaN if unknown)."""
        series = _pick(kind, a=self.spread_a, f=self.spread_f)
        if series is None:
            return float("nan")
        return float(metrics.time_average(series, self._burn(burn_in)))

    def crps(self, burn_in: int | None = None, kind: str = "a") -> float:
        """Time- and component-mean CRPS of the stored (equally weighted) ensembles."""
        E = _pick(kind, a=self.ensembles_a, f=self.ensembles_f)
        if E is None:
            raise ValueError("the CRPS needs ensembles: run with store_ensembles=True")
        if self.log_weights is not None:
            raise ValueError("the CRPS of weighted particles is not implemented")
        xp = namespace(E)
        per_time = xp.mean(metrics.crps_ensemble(E, self.twin.x), axis=-1)
        return float(metrics.time_average(per_time, self._burn(burn_in)))

    def divergence(self, burn_in: int | None = None) -> str | None:
        r"""Why the run counts as diverged, or ``None`` if it does not.

        A run that stays finite can still lose the truth.  It counts as diverged when its
        time-mean analysis RMSE exceeds both

        * twice the observation error, :math:`2\,(\operatorname{tr} R / p)^{1/2}`, and
        * climatology: the RMSE of the truth's own time mean,
          :math:`\big(\frac1d\sum_i \operatorname{var}_j x^t_{j,i}\big)^{1/2}`,

        that is, when the estimate is worse than both the raw observation noise and a
        constant guess that ignores every observation.  Runs with fewer than 10 times
        after the burn-in are not judged.
        """
        b = self._burn(burn_in)
        x = self.twin.x[b:, ...]
        if x.shape[0] < 10:
            return None
        err = self.rmse(b)
        xp = namespace(x)
        clim = float(xp.sqrt(xp.mean((x - xp.mean(x, axis=0)) ** 2)))
        obs = float(xp.sqrt(xp.mean(self.twin.ssm.R.diagonal(xp, device=device(x)))))
        if err > clim and err > 2 * obs:
            return (f"{self.method} lost the truth: its time-mean analysis RMSE {err:.3g} "
                    f"exceeds twice the observation error ({2 * obs:.3g}) and climatology "
                    f"({clim:.3g}); check the inflation, the ensemble size or the background "
                    "covariance")
        return None

    @property
    def diverged(self) -> bool:
        """Whether :meth:`divergence` flags the run (with the result's ``burn_in``)."""
        return self.divergence() is not None

    def warn_if_diverged(self, stacklevel: int = 3) -> None:
        """Issue a :class:`FilterDivergenceWarning` if :attr:`diverged`."""
        message = self.divergence()
        if message is not None:
            warnings.warn(message, FilterDivergenceWarning, stacklevel=stacklevel)

    def scores(self, burn_in: int | None = None) -> dict:
        """Time-mean analysis and forecast RMSE and spread (and CRPS if ensembles were kept)."""
        out = {
            "rmse_a": self.rmse(burn_in),
            "rmse_f": self.rmse(burn_in, "f"),
            "spread_a": self.spread(burn_in),
            "spread_f": self.spread(burn_in, "f"),
        }
        if self.ensembles_a is not None and self.log_weights is None:
            out["crps_a"] = self.crps(burn_in)
        return out

    # -- training data -----------------------------------------------------------------------

    def pairs(self):
        r"""Forecast-analysis pairs :math:`(\hat x_j, x^a_j)`, ``j = 1..J``: two (J, d) arrays."""
        return self.forecast[1:, ...], self.analysis[1:, ...]

    def increments(self):
        r"""Analysis increments :math:`x^a_j - \hat x_j`, ``j = 1..J``, shape (J, d)."""
        return self.analysis[1:, ...] - self.forecast[1:, ...]

    def transitions(self):
        r"""Consecutive analyses :math:`(x^a_j, x^a_{j+1})`, ``j = 0..J-1``: two (J, d) arrays."""
        return self.analysis[:-1, ...], self.analysis[1:, ...]

    def __repr__(self) -> str:
        s = self.scores()
        text = ", ".join(f"{k}={v:.4g}" for k, v in s.items())
        return f"AssimilationResult({self.method}, J={self.J}, burn_in={self.burn_in}: {text})"
