r"""Verification metrics and scoring rules for state estimates and ensembles.

Conventions: an estimate or truth is ``(..., d)``; an ensemble is ``(..., N, d)`` with members
on the second-to-last axis, so a time series of ensembles ``(J, N, d)`` is scored in one call
and returns one number per time.

Lower is better for every score here.  The continuous ranked probability score (CRPS) and the
energy score are *strictly proper*: their expectation is minimised only by forecasting the
true distribution.
"""

from __future__ import annotations

import math

from ._validate import check_array, check_int
from .backend import device, erf, is_traced, namespace

__all__ = [
    "rmse",
    "spread",
    "spread_error_ratio",
    "crps_ensemble",
    "crps_gaussian",
    "energy_score",
    "rank_histogram",
    "time_average",
]


def _leading_shapes_match(a, b) -> bool:
    """Whether shapes ``a`` and ``b`` have one length and each axis equal or 1."""
    return len(a) == len(b) and all(m == n or 1 in (m, n) for m, n in zip(a, b))


def _check_pair(E, x, ensemble=True):
    """Check an ensemble ``(..., N, d)`` (or an estimate ``(..., d)``) against a truth.

    The leading axes must match axis for axis (an axis of length 1 broadcasts): NumPy's
    broadcasting of shapes of different lengths, e.g. (J, 1, d) against (J, d), would
    silently compare every time with every other time.
    """
    what = "ensemble" if ensemble else "estimate"
    check_array(x, "truth", min_ndim=1)
    check_array(E, what, min_ndim=2 if ensemble else 1)
    d = x.shape[-1]
    if E.shape[-1] != d:
        raise ValueError(
            f"{what} must have shape (..., {d}) like the truth, got {tuple(E.shape)}"
        )
    lead_E = tuple(E.shape[:-2] if ensemble else E.shape[:-1])
    lead_x = tuple(x.shape[:-1])
    if not _leading_shapes_match(lead_E, lead_x):
        if ensemble:
            want = ("have shape (..., N, d), one axis (the members) more than the truth "
                    "(..., d), with the same leading axes")
        else:
            want = "have as many axes as the truth, each of the same length"
        raise ValueError(
            f"{what} of shape {tuple(E.shape)} does not match truth of shape "
            f"{tuple(x.shape)}: the {what} must {want} (or of length 1)"
        )


def rmse(estimate, truth):
    r"""Root-mean-square error over the state components.

    .. math:: \mathrm{RMSE} = \Big(\frac1d \sum_{i=1}^d (\hat x_i - x^t_i)^2\Big)^{1/2}

    Parameters
    ----------
    estimate, truth : array, shape (..., d)
        Arrays with the same number of axes; an axis of length 1 broadcasts, so a
        time series of ensembles ``(J, N, d)`` is scored against a truth ``(J, 1, d)``.

    Returns
    -------
    array, shape (...)

    Raises
    ------
    ValueError
        If the shapes differ in their number of axes or in an axis longer than 1.
    """
    _check_pair(estimate, truth, ensemble=False)
    xp = namespace(estimate, truth)
    return xp.sqrt(xp.mean((estimate - truth) ** 2, axis=-1))


def spread(E):
    r"""Ensemble spread: the root of the mean (over components) ensemble variance.

    .. math:: \mathrm{spread} = \Big(\frac1d\sum_i \frac{1}{N-1}\sum_n (E_{n,i} - \bar E_i)^2\Big)^{1/2}

    For a reliable ensemble the spread matches the RMSE of the ensemble mean (up to a factor
    :math:`\sqrt{(N+1)/N}`).

    Parameters
    ----------
    E : array, shape (..., N, d)

    Returns
    -------
    array, shape (...)
    """
    check_array(E, "ensemble", min_ndim=2)
    if E.shape[-2] < 2:
        raise ValueError(f"ensemble must have at least 2 members, got shape {tuple(E.shape)}")
    xp = namespace(E)
    var = xp.var(E, axis=-2, correction=1)
    return xp.sqrt(xp.mean(var, axis=-1))


def spread_error_ratio(E, truth, burn_in: int = 0):
    r"""Time-averaged spread over time-averaged RMSE of the ensemble mean.

    A ratio near 1 means the ensemble's uncertainty matches its error; below 1, the
    ensemble is over-confident (the usual symptom that asks for inflation).

    Parameters
    ----------
    E : array, shape (J, N, d)
        Ensembles over time.
    truth : array, shape (J, d)
    burn_in : int
        Number of initial times left out.
    """
    _check_pair(E, truth)
    xp = namespace(E, truth)
    err = time_average(rmse(xp.mean(E, axis=-2), truth) ** 2, burn_in)
    spr = time_average(spread(E) ** 2, burn_in)
    return xp.sqrt(spr / err)


def crps_ensemble(E, truth, fair: bool = False):
    r"""Continuous ranked probability score of an ensemble, per component.

    .. math::
        \mathrm{CRPS}(E, x) = \frac1N\sum_n |E_n - x| - \frac{1}{2N^2}\sum_{n,m} |E_n - E_m|

    computed in :math:`O(N \log N)` by sorting:
    :math:`\sum_{n,m}|E_n - E_m| = 2\sum_k (2k - N - 1) E_{(k)}` for the sorted members
    :math:`E_{(1)}\le\dots\le E_{(N)}`.  With ``fair=True`` the second term is divided by
    :math:`N(N-1)` instead of :math:`N^2` (the unbiased "fair" CRPS of Ferro 2014).

    Parameters
    ----------
    E : array, shape (..., N, d)
        Ensemble (members on axis -2).
    truth : array, shape (..., d)
        One axis fewer than ``E`` (no member axis), with the same leading axes.

    Returns
    -------
    array, shape (..., d)
        The CRPS of each component; average it for one number.

    Raises
    ------
    ValueError
        If ``E`` lacks the member axis or its leading axes differ from the truth's.
    """
    _check_pair(E, truth)
    xp = namespace(E, truth)
    N = E.shape[-2]
    if fair and N < 2:
        raise ValueError("the fair CRPS needs an ensemble of at least 2 members")
    skill = xp.mean(xp.abs(E - truth[..., None, :]), axis=-2)
    Es = xp.sort(E, axis=-2)
    k = xp.arange(1, N + 1, dtype=E.dtype, device=device(E))
    weights = (2 * k - N - 1)[:, None]
    pair_sum = 2 * xp.sum(weights * Es, axis=-2)  # sum over n, m of |E_n - E_m|
    denom = N * (N - 1) if fair else N * N
    return skill - pair_sum / (2 * denom)


def crps_gaussian(mean, std, truth):
    r"""Closed-form CRPS of a Gaussian forecast :math:`\mathcal N(\mu, \sigma^2)`.

    .. math::
        \mathrm{CRPS} = \sigma\Big(z\,(2\Phi(z) - 1) + 2\varphi(z) - \frac{1}{\sqrt\pi}\Big),
        \qquad z = \frac{x - \mu}{\sigma}

    (Gneiting et al. 2005).  Arguments broadcast.  A standard deviation of zero is a point
    forecast, whose CRPS is the limit :math:`|x - \mu|` of the formula as
    :math:`\sigma \to 0`.

    Raises
    ------
    ValueError
        If ``std`` is negative, or an argument holds NaN or infinite values.
    """
    xp = namespace(mean, std, truth)
    for value, name in ((mean, "mean"), (std, "std"), (truth, "truth")):
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ValueError(f"{name} contains NaN or infinite values")
        else:
            check_array(value, name)
    if isinstance(std, (int, float)):
        if std < 0:
            raise ValueError(f"std must be non-negative (a standard deviation), got {std!r}")
        if std == 0:
            return xp.abs(truth - mean)
        positive = None
    else:
        if not is_traced(std):
            low = xp.min(std) if std.ndim else std
            if not is_traced(low) and float(low) < 0:
                raise ValueError(
                    f"std must be non-negative (a standard deviation), got a minimum of "
                    f"{float(low)!r}"
                )
        positive = std > 0
        std = xp.where(positive, std, xp.ones_like(std))
    z = (truth - mean) / std
    Phi = 0.5 * (1 + erf(z / math.sqrt(2)))
    phi = xp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    crps = std * (z * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi))
    if positive is None:
        return crps
    return xp.where(positive, crps, xp.abs(truth - mean))


def energy_score(E, truth):
    r"""Energy score of an ensemble: the multivariate CRPS.

    .. math::
        \mathrm{ES}(E, x) = \frac1N\sum_n \|E_n - x\| - \frac{1}{2N^2}\sum_{n,m}\|E_n - E_m\|

    Parameters
    ----------
    E : array, shape (..., N, d)
    truth : array, shape (..., d)

    Returns
    -------
    array, shape (...)
    """
    _check_pair(E, truth)
    xp = namespace(E, truth)
    N = E.shape[-2]
    skill = xp.mean(xp.linalg.vector_norm(E - truth[..., None, :], axis=-1), axis=-1)
    diffs = E[..., :, None, :] - E[..., None, :, :]
    pair = xp.sum(xp.linalg.vector_norm(diffs, axis=-1), axis=(-2, -1))
    return skill - pair / (2 * N * N)


def rank_histogram(E, truth, burn_in: int = 0):
    """Counts of the rank of the truth among the ensemble members.

    For each time and component the rank is the number of members below the truth, in
    ``0 .. N``.  A reliable ensemble gives a flat histogram; a U shape means too little
    spread, a dome too much, a slope a bias.

    Parameters
    ----------
    E : array, shape (J, N, d)
    truth : array, shape (J, d)
    burn_in : int
        Number of initial times left out; smaller than ``J``.

    Returns
    -------
    array, shape (N + 1,)
        Integer counts over all kept times and components.
    """
    check_array(E, "ensemble", ndim=3)
    check_array(truth, "truth", ndim=2)
    _check_pair(E, truth)
    xp = namespace(E, truth)
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    J = max(E.shape[0], truth.shape[0])
    if burn_in >= J:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than the number of times ({J})")
    ranks = xp.sum(xp.astype(E < truth[..., None, :], xp.int64), axis=-2)[burn_in:, ...]
    N = E.shape[-2]
    bins = xp.arange(N + 1, dtype=xp.int64, device=device(E))
    flat = xp.reshape(ranks, (-1,))
    return xp.sum(xp.astype(flat[:, None] == bins[None, :], xp.int64), axis=0)


def time_average(series, burn_in: int = 0):
    """Mean over the time axis (axis 0) after leaving out the first ``burn_in`` entries."""
    check_array(series, "series", min_ndim=1, finite=False)
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= series.shape[0]:
        raise ValueError(
            f"burn_in ({burn_in}) must be smaller than the series length ({series.shape[0]})"
        )
    xp = namespace(series)
    return xp.mean(series[burn_in:, ...], axis=0)
