r"""How good is a forecast model: skill against lead time and climatology of free runs.

Forecast error
--------------
For forecasts :math:`x^{\mathrm f}_n` at leads :math:`n = 0, 1, \dots` and the truth
:math:`x^{\mathrm t}_n`, the *normalised RMSE* is

.. math::
    e_n = \frac{1}{\sigma_{\mathrm{clim}}}
          \sqrt{\tfrac1d \textstyle\sum_{i=1}^d (x^{\mathrm f}_{n,i} - x^{\mathrm t}_{n,i})^2},

with :math:`\sigma_{\mathrm{clim}}` the climatological standard deviation of the truth
(about 3.6 for Lorenz-96 with :math:`F = 8`).  Forecasts that have lost all skill but stay
on the attractor reach :math:`e_n \approx \sqrt 2`.

Valid time
----------
The *valid time* of one forecast is the first lead at which :math:`e_n` exceeds a threshold
(0.5 by default), in units of the Lyapunov time :math:`1/\lambda_1`:

.. math::
    t_{\mathrm{valid}} = \lambda_1\, \Delta t\ \min\{n : e_n > \text{threshold}\},

the lead itself if the error never exceeds the threshold.  For Lorenz-96 with
:math:`d = 40, F = 8` the largest Lyapunov exponent is :math:`\lambda_1 \approx 1.68`
(per time unit), so one Lyapunov time is about 0.6 time units or 12 steps of 0.05.

Climatology
-----------
:func:`climatology` gives the time- and site-averaged mean and standard deviation of a
long run and its spatial power spectrum, :math:`P_k = \overline{|\hat x_k|^2}/d^2` with
:math:`\hat x = \mathrm{DFT}(x - \bar x)` over the sites, averaged over time, so that
:math:`\sum_k P_k` (over all :math:`d` wavenumbers) is the variance.

All functions are array-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..backend import namespace

__all__ = ["LYAPUNOV_EXPONENT_L96", "Climatology", "climatology", "normalised_rmse",
           "valid_time"]

#: Largest Lyapunov exponent of Lorenz-96, d = 40, F = 8, per time unit.
LYAPUNOV_EXPONENT_L96 = 1.68


def normalised_rmse(forecast, truth, std: float):
    r"""The normalised RMSE :math:`e_n` over the last axis, for every lead and forecast.

    Parameters
    ----------
    forecast, truth : arrays, shape (n_lead, ..., d)
    std : float
        :math:`\sigma_{\mathrm{clim}}`.

    Returns
    -------
    array, shape (n_lead, ...)
    """
    xp = namespace(forecast, truth)
    if forecast.shape != truth.shape:
        raise ValueError(f"forecast and truth must have the same shape, got {forecast.shape} "
                         f"and {truth.shape}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    return xp.sqrt(xp.mean((forecast - truth) ** 2, axis=-1)) / std


def valid_time(forecast, truth, dt: float, *, std: float, threshold: float = 0.5,
               lyapunov_exponent: float = LYAPUNOV_EXPONENT_L96):
    r"""Valid time of each forecast, in Lyapunov times (module docstring).

    Parameters
    ----------
    forecast, truth : arrays, shape (n_lead, ..., d)
        Forecasts and truth at leads ``0, dt, 2 dt, ...`` (axis 0), any batch of initial
        conditions in between.
    dt : float
        Time between leads.
    std : float
        Climatological standard deviation of the truth.
    threshold : float
        Threshold of the normalised RMSE.
    lyapunov_exponent : float
        :math:`\lambda_1` (default: Lorenz-96, d = 40, F = 8).

    Returns
    -------
    array, shape (...)
        :math:`t_{\mathrm{valid}}`; forecasts that never exceed the threshold get the
        last lead.
    """
    xp = namespace(forecast, truth)
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    e = normalised_rmse(forecast, truth, std)
    n_lead = e.shape[0]
    leads = xp.reshape(xp.arange(n_lead, dtype=e.dtype), (n_lead,) + (1,) * (e.ndim - 1))
    beyond = xp.where(e > threshold, leads, xp.asarray(float(n_lead - 1), dtype=e.dtype))
    return xp.min(beyond, axis=0) * (dt * lyapunov_exponent)


@dataclass(frozen=True)
class Climatology:
    """Mean, standard deviation and spatial power spectrum of a long run.

    Attributes
    ----------
    mean, std : float
        Over times and sites.
    spectrum : array, shape (d // 2 + 1,)
        :math:`P_k` for wavenumbers :math:`k = 0, \\dots, d/2`.
    """

    mean: float
    std: float
    spectrum: Any


def climatology(x, burn_in: int = 0) -> Climatology:
    r"""Climatological statistics of a run ``x`` of shape ``(n_times, ..., d)``.

    Parameters
    ----------
    x : array, shape (n_times, ..., d)
        A long run (or several: a batch axis after time).
    burn_in : int
        Times dropped at the start.

    Returns
    -------
    Climatology
    """
    xp = namespace(x)
    if x.ndim < 2 or burn_in >= x.shape[0]:
        raise ValueError(f"x must have shape (n_times, ..., d) with more than burn_in "
                         f"({burn_in}) times, got {x.shape}")
    x = x[burn_in:, ...]
    mean = xp.mean(x)
    d = x.shape[-1]
    power = xp.abs(xp.fft.rfft(x - mean, axis=-1)) ** 2 / d**2
    spectrum = xp.mean(xp.reshape(power, (-1, power.shape[-1])), axis=0)
    return Climatology(mean=float(mean), std=float(xp.std(x)), spectrum=spectrum)
