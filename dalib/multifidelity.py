r"""Multifidelity Monte Carlo: a mean from a few expensive and many cheap model runs.

A high-fidelity model :math:`\mathcal M_{\rm hi}` and :math:`K` low-fidelity models
:math:`\mathcal M_1, \dots, \mathcal M_K` are evaluated on the first :math:`N_{\rm hi}`,
:math:`N_1, \dots, N_K` of one sequence of random inputs :math:`v^{(1)}, v^{(2)}, \dots`,
nested as :math:`0 < N_{\rm hi} \le N_1 \le \dots \le N_K`.  With the sample means

.. math::

    \hat m_{\rm hi} = \frac1{N_{\rm hi}} \sum_{n=1}^{N_{\rm hi}} \mathcal M_{\rm hi}(v^{(n)}),
    \quad \hat m_k = \frac1{N_k} \sum_{n=1}^{N_k} \mathcal M_k(v^{(n)}),
    \quad \hat m'_k = \frac1{N_{k-1}} \sum_{n=1}^{N_{k-1}} \mathcal M_k(v^{(n)})

(:math:`N_0 = N_{\rm hi}`), the multifidelity estimator of the lecture's eq. (10)
(Peherstorfer, Willcox and Gunzburger 2016) is

.. math::

    \hat m = \hat m_{\rm hi} + \sum_{k=1}^K \alpha_k (\hat m_k - \hat m'_k), \qquad
    \alpha_k = \frac{\rho_k \sigma_{\rm hi}}{\sigma_k},

where :math:`\rho_k` is the correlation of :math:`\mathcal M_k(v)` with
:math:`\mathcal M_{\rm hi}(v)` and :math:`\sigma_k^2`, :math:`\sigma_{\rm hi}^2` their
variances (the lecture writes :math:`Q_k`, :math:`Q_{\rm hi}` for :math:`\sigma_k`,
:math:`\sigma_{\rm hi}`; here ``Q`` stays the model-error covariance).  Every correction
term has mean zero, so :math:`\hat m` is unbiased for :math:`\mathbb E\,\mathcal M_{\rm hi}(v)`,
and for any weights

.. math::

    \operatorname{Var}\hat m = \frac{\sigma_{\rm hi}^2}{N_{\rm hi}}
    + \sum_{k=1}^K \Big(\frac1{N_{k-1}} - \frac1{N_k}\Big)
      \big(\alpha_k^2 \sigma_k^2 - 2 \alpha_k \rho_k \sigma_{\rm hi} \sigma_k\big),

which for the weights above is eq. (11),
:math:`\sigma_{\rm hi}^2/N_{\rm hi} - \sum_k (N_{k-1}^{-1} - N_k^{-1}) \rho_k^2
\sigma_{\rm hi}^2`.  Vector outputs are estimated componentwise: ``rho``, ``sigma`` and
``alpha`` are then arrays of the output's shape.

Model selection and sample allocation (Peherstorfer et al. 2016, Theorem 3.4 and
Algorithm 1).  A model costs :math:`w_k` per evaluation and the estimator costs
:math:`w_{\rm hi} N_{\rm hi} + \sum_k w_k N_k`.  If the models are ordered so that
:math:`1 = \rho_0^2 > \rho_1^2 > \dots > \rho_K^2 > \rho_{K+1}^2 = 0` and

.. math::

    \frac{w_{k-1}}{w_k} > \frac{\rho_{k-1}^2 - \rho_k^2}{\rho_k^2 - \rho_{k+1}^2},
    \qquad k = 1, \dots, K \quad (w_0 = w_{\rm hi}),

the variance at a budget :math:`p` is smallest for :math:`N_k = r_k N_{\rm hi}` with

.. math::

    r_k = \sqrt{\frac{w_{\rm hi} (\rho_k^2 - \rho_{k+1}^2)}{w_k (1 - \rho_1^2)}}, \qquad
    N_{\rm hi} = \frac{p}{w_{\rm hi} + \sum_k w_k r_k}.

:func:`mfmc_select` searches all subsets of the low-fidelity models for which these
conditions hold and keeps the one with the smallest variance (the empty subset is plain
Monte Carlo).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from ._validate import check_array, check_positive
from .backend import namespace

__all__ = [
    "MFMCAllocation",
    "mfmc_allocation",
    "mfmc_mean",
    "mfmc_select",
    "mfmc_variance",
    "mfmc_weights",
    "pilot_statistics",
]


def _check_outputs(y_hi, y_lo):
    """The sizes ``(N_hi, [N_1, ..., N_K])`` of nested model outputs."""
    check_array(y_hi, "y_hi", min_ndim=1)
    if isinstance(y_lo, (str, bytes)) or not hasattr(y_lo, "__len__"):
        raise TypeError("y_lo must be a list of K arrays (N_k, ...) of low-fidelity outputs")
    sizes = [int(y_hi.shape[0])]
    for k, y in enumerate(y_lo):
        check_array(y, f"y_lo[{k}]", min_ndim=1)
        if tuple(y.shape[1:]) != tuple(y_hi.shape[1:]):
            raise ValueError(f"y_lo[{k}] must have shape (N_{k + 1}, "
                             f"{', '.join(str(s) for s in y_hi.shape[1:])}) like y_hi's "
                             f"outputs, got shape {tuple(y.shape)}")
        sizes.append(int(y.shape[0]))
    if sizes[0] < 1:
        raise ValueError("y_hi must hold at least one sample")
    if any(a > b for a, b in itertools.pairwise(sizes)):
        raise ValueError("the sample sets must be nested, N_hi <= N_1 <= ... <= N_K; "
                         f"got sizes {sizes} for y_hi, y_lo[0], ...")
    return sizes[0], sizes[1:]


def mfmc_mean(y_hi, y_lo, alpha):
    r"""The multifidelity Monte Carlo estimate of the mean, eq. (10).

    Parameters
    ----------
    y_hi : array (N_hi, ...)
        High-fidelity outputs :math:`\mathcal M_{\rm hi}(v^{(n)})`, :math:`n \le N_{\rm hi}`.
    y_lo : list of K arrays (N_k, ...)
        Outputs :math:`\mathcal M_k(v^{(n)})`, :math:`n \le N_k`, of the low-fidelity
        models on the *same* inputs, with :math:`N_{\rm hi} \le N_1 \le \dots \le N_K`.
    alpha : list of K numbers or arrays of the output shape
        The weights :math:`\alpha_k` (see :func:`mfmc_weights`).

    Returns
    -------
    array (...)
        :math:`\hat m = \hat m_{\rm hi} + \sum_k \alpha_k (\hat m_k - \hat m'_k)`.
    """
    N_hi, N = _check_outputs(y_hi, y_lo)
    if len(alpha) != len(N):
        raise ValueError(f"alpha must hold one weight per low-fidelity model ({len(N)}), "
                         f"got {len(alpha)}")
    xp = namespace(y_hi)
    m = xp.mean(y_hi, axis=0)
    N_prev = N_hi
    for y, a, N_k in zip(y_lo, alpha, N):
        m_k = xp.mean(y, axis=0)
        m_k_prime = xp.mean(y[:N_prev, ...], axis=0)
        m = m + a * (m_k - m_k_prime)
        N_prev = N_k
    return m


def mfmc_weights(rho, sigma_hi, sigma):
    r"""The weights :math:`\alpha_k = \rho_k \sigma_{\rm hi} / \sigma_k` of eq. (10).

    ``rho`` and ``sigma`` are lists of K numbers or arrays (one per low-fidelity model).
    """
    if len(rho) != len(sigma):
        raise ValueError(f"rho and sigma must have one entry per model, got {len(rho)} "
                         f"and {len(sigma)}")
    return [r * sigma_hi / s for r, s in zip(rho, sigma)]


def mfmc_variance(sigma_hi, sigma, rho, N_hi, N, alpha=None):
    r"""The variance of the multifidelity estimator, eq. (11).

    .. math::

        \operatorname{Var}\hat m = \frac{\sigma_{\rm hi}^2}{N_{\rm hi}} + \sum_{k=1}^K
        \Big(\frac1{N_{k-1}} - \frac1{N_k}\Big)
        (\alpha_k^2\sigma_k^2 - 2\alpha_k\rho_k\sigma_{\rm hi}\sigma_k)

    Parameters
    ----------
    sigma_hi : number or array
        Standard deviation of the high-fidelity output.
    sigma, rho : lists of K numbers or arrays
        Standard deviations of the low-fidelity outputs and their correlations with the
        high-fidelity output.
    N_hi : number
        High-fidelity sample size.
    N : list of K numbers
        Nested low-fidelity sample sizes :math:`N_{\rm hi} \le N_1 \le \dots \le N_K`
        (real numbers are allowed, as in an allocation).
    alpha : list of K numbers or arrays, optional
        The weights; by default the optimal ones of :func:`mfmc_weights`, for which the
        sum reduces to :math:`-\sum_k (N_{k-1}^{-1} - N_k^{-1})\rho_k^2\sigma_{\rm hi}^2`.
    """
    if not (len(sigma) == len(rho) == len(N)):
        raise ValueError(f"sigma, rho and N must have one entry per model, got "
                         f"{len(sigma)}, {len(rho)} and {len(N)}")
    if alpha is None:
        alpha = mfmc_weights(rho, sigma_hi, sigma)
    var = sigma_hi**2 / N_hi
    N_prev = N_hi
    for s, r, a, N_k in zip(sigma, rho, alpha, N):
        var = var + (1 / N_prev - 1 / N_k) * (a**2 * s**2 - 2 * a * r * sigma_hi * s)
        N_prev = N_k
    return var


def pilot_statistics(y_hi, y_lo):
    r"""Estimate :math:`\sigma_{\rm hi}`, :math:`\sigma_k` and :math:`\rho_k` from pilot runs.

    Parameters
    ----------
    y_hi : array (P, ...)
        High-fidelity outputs on P pilot inputs.
    y_lo : list of K arrays (P, ...)
        Low-fidelity outputs on the *same* P inputs.

    Returns
    -------
    sigma_hi : array (...)
        Sample standard deviation (divisor P - 1) of the high-fidelity output.
    sigma : list of K arrays (...)
        The same for each low-fidelity model.
    rho : list of K arrays (...)
        Sample correlation coefficients with the high-fidelity output, componentwise.
    """
    P, sizes = _check_outputs(y_hi, y_lo)
    if any(n != P for n in sizes):
        raise ValueError(f"the pilot outputs must all hold the same P = {P} samples, "
                         f"got sizes {sizes} in y_lo")
    if P < 2:
        raise ValueError(f"y_hi must hold at least 2 pilot samples, got {P}")
    xp = namespace(y_hi)
    d_hi = y_hi - xp.mean(y_hi, axis=0)
    sigma_hi = xp.sqrt(xp.sum(d_hi**2, axis=0) / (P - 1))
    sigma, rho = [], []
    for y in y_lo:
        d = y - xp.mean(y, axis=0)
        s = xp.sqrt(xp.sum(d**2, axis=0) / (P - 1))
        sigma.append(s)
        rho.append(xp.sum(d_hi * d, axis=0) / ((P - 1) * sigma_hi * s))
    return sigma_hi, sigma, rho


@dataclass(frozen=True)
class MFMCAllocation:
    """Chosen models and sample sizes of a multifidelity estimator for a budget.

    Attributes
    ----------
    models : tuple of int
        Indices (into the lists given) of the low-fidelity models used, in the order of
        decreasing correlation, which is the order of the nested sample sets.
    N_hi : float
        High-fidelity sample size.
    N : tuple of float
        Sample sizes of the chosen models, :math:`N_{\\rm hi} \\le N_1 \\le \\dots`.
    variance : float
        Eq. (11) at these sizes, for the ``sigma_hi`` given.
    mc_variance : float
        Variance of plain Monte Carlo with the high-fidelity model at the same budget.
    """

    models: tuple
    N_hi: float
    N: tuple
    variance: float
    mc_variance: float

    def integer(self) -> tuple[int, tuple[int, ...]]:
        """The sizes rounded down, ``(N_hi, (N_1, ...))``; rounding down keeps them nested
        and within the budget."""
        return max(1, math.floor(self.N_hi)), tuple(math.floor(n) for n in self.N)


def _scalars(values, name):
    out = []
    for k, v in enumerate(values):
        try:
            out.append(float(v))
        except TypeError as err:
            raise TypeError(f"{name}[{k}] must be a number, got {type(v).__name__}") from err
    return out


def mfmc_allocation(rho, w_hi, w, budget, sigma_hi=1.0):
    r"""The optimal sample sizes for given models (Peherstorfer et al. 2016, Theorem 3.4).

    Parameters
    ----------
    rho : list of K numbers
        Correlations of the low-fidelity models with the high-fidelity one, ordered so that
        :math:`|\rho_1| > |\rho_2| > \dots > |\rho_K| > 0`.
    w_hi : float
        Cost of one high-fidelity evaluation.
    w : list of K floats
        Costs of one evaluation of each low-fidelity model.
    budget : float
        The computational budget :math:`p`, in the units of the costs.
    sigma_hi : float
        Standard deviation of the high-fidelity output (scales the variances reported).

    Returns
    -------
    MFMCAllocation
        With ``models = (0, ..., K-1)``,
        :math:`r_k = \sqrt{w_{\rm hi}(\rho_k^2 - \rho_{k+1}^2) / (w_k(1 - \rho_1^2))}`,
        :math:`N_{\rm hi} = p / (w_{\rm hi} + \sum_k w_k r_k)`, :math:`N_k = r_k N_{\rm hi}`.

    Raises
    ------
    ValueError
        If the correlations are not strictly decreasing in magnitude or the costs violate
        :math:`w_{k-1}/w_k > (\rho_{k-1}^2 - \rho_k^2)/(\rho_k^2 - \rho_{k+1}^2)`: then a
        subset of the models does better (use :func:`mfmc_select`).
    """
    rho = _scalars(rho, "rho")
    w = _scalars(w, "w")
    if len(rho) != len(w):
        raise ValueError(f"rho and w must have one entry per model, got {len(rho)} "
                         f"and {len(w)}")
    check_positive(float(w_hi), "w_hi")
    check_positive(float(budget), "budget")
    for k, wk in enumerate(w):
        check_positive(wk, f"w[{k}]")
    ok, why = _admissible(rho, float(w_hi), w)
    if not ok:
        raise ValueError(why)
    return _allocate(tuple(range(len(rho))), rho, float(w_hi), w, float(budget),
                     float(sigma_hi))


def _admissible(rho, w_hi, w):
    """Whether the ordering conditions of Theorem 3.4 hold, and why not."""
    r2 = [1.0] + [r * r for r in rho] + [0.0]
    if any(abs(r) >= 1 for r in rho):
        return False, f"the correlations rho must lie in (-1, 1), got {rho}"
    if any(a <= b for a, b in itertools.pairwise(r2[1:])):
        return False, ("the models must be ordered by strictly decreasing |rho| > 0, "
                       f"got rho = {rho}")
    costs = [w_hi] + list(w)
    for k in range(1, len(r2) - 1):
        if costs[k - 1] / costs[k] <= (r2[k - 1] - r2[k]) / (r2[k] - r2[k + 1]):
            return False, (f"model {k - 1} (0-based) is too expensive for its correlation: "
                           "w_{k-1}/w_k > (rho_{k-1}^2 - rho_k^2)/(rho_k^2 - rho_{k+1}^2) "
                           "fails, so leaving it out does better")
    return True, ""


def _allocate(models, rho, w_hi, w, budget, sigma_hi):
    r2 = [1.0] + [r * r for r in rho] + [0.0]
    ratios = [math.sqrt(w_hi * (r2[k] - r2[k + 1]) / (w[k - 1] * (1 - r2[1])))
              for k in range(1, len(r2) - 1)]
    N_hi = budget / (w_hi + sum(wk * r for wk, r in zip(w, ratios)))
    N = tuple(r * N_hi for r in ratios)
    sigma = [1.0] * len(rho)  # the optimal-weight variance does not depend on sigma_k
    variance = mfmc_variance(sigma_hi, sigma, rho, N_hi, N)
    return MFMCAllocation(models=models, N_hi=N_hi, N=N, variance=variance,
                          mc_variance=sigma_hi**2 * w_hi / budget)


def mfmc_select(rho, w_hi, w, budget, sigma_hi=1.0):
    r"""Choose the low-fidelity models and their sample sizes for a budget.

    The exhaustive search of Peherstorfer et al. (2016, Algorithm 1): every subset of the
    models, sorted by decreasing :math:`|\rho_k|`, that meets the conditions of Theorem 3.4
    is allocated optimally (:func:`mfmc_allocation`), and the subset with the smallest
    variance (eq. 11) wins.  The empty subset, plain Monte Carlo with
    :math:`N_{\rm hi} = p / w_{\rm hi}`, is always admissible.

    Parameters
    ----------
    rho : list of K numbers
        Correlations of the low-fidelity models with the high-fidelity one (any order).
    w_hi, w, budget, sigma_hi
        As in :func:`mfmc_allocation`.

    Returns
    -------
    MFMCAllocation
        ``models`` indexes the lists given.
    """
    rho = _scalars(rho, "rho")
    w = _scalars(w, "w")
    if len(rho) != len(w):
        raise ValueError(f"rho and w must have one entry per model, got {len(rho)} "
                         f"and {len(w)}")
    w_hi = float(check_positive(float(w_hi), "w_hi"))
    budget = float(check_positive(float(budget), "budget"))
    for k, wk in enumerate(w):
        check_positive(wk, f"w[{k}]")
    sigma_hi = float(sigma_hi)
    best = MFMCAllocation(models=(), N_hi=budget / w_hi, N=(),
                          variance=sigma_hi**2 * w_hi / budget,
                          mc_variance=sigma_hi**2 * w_hi / budget)
    for size in range(1, len(rho) + 1):
        for subset in itertools.combinations(range(len(rho)), size):
            order = tuple(sorted(subset, key=lambda k: -abs(rho[k])))
            r = [rho[k] for k in order]
            c = [w[k] for k in order]
            if not _admissible(r, w_hi, c)[0]:
                continue
            candidate = _allocate(order, r, w_hi, c, budget, sigma_hi)
            if candidate.variance < best.variance:
                best = candidate
    return best
