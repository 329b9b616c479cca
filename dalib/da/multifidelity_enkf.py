r"""The multifidelity forecast step of an ensemble Kalman filter.

The analysis ensemble :math:`E` holds :math:`N_K` members.  The high-fidelity model
:math:`\mathcal M_{\rm hi}` (the state-space model's ``M``) advances only the first
:math:`N_{\rm hi}` of them and each cheaper model :math:`\mathcal M_k` the first
:math:`N_k`, :math:`N_{\rm hi} \le N_1 \le \dots \le N_K`; member :math:`n` gets the same
model-error draw :math:`\xi_n \sim \mathcal N(0, Q)` under every model, so that the outputs
stay correlated.  The forecast mean is the multifidelity estimate of eq. (10)
(:func:`dalib.multifidelity.mfmc_mean`),

.. math::

    m^f = \overline{\mathcal M_{\rm hi}(E) + \xi}^{\,N_{\rm hi}} + \sum_k \alpha_k
    \Big(\overline{\mathcal M_k(E) + \xi}^{\,N_k}
    - \overline{\mathcal M_k(E) + \xi}^{\,N_{k-1}}\Big),

unbiased for the mean of the high-fidelity forecast with variance eq. (11) when the
weights :math:`\alpha_k` are fixed.  The forecast covariance is that of the cheapest
model's :math:`N_K` members: the forecast ensemble is those members recentred on
:math:`m^f`, and a perturbed-observation EnKF analysis follows.
"""

from __future__ import annotations

from .._validate import check_int, check_positive
from ..backend import namespace
from ..multifidelity import mfmc_mean, mfmc_weights, pilot_statistics
from .enkf import EnKF

__all__ = ["MultifidelityEnKF", "multifidelity_forecast"]


def multifidelity_forecast(E, M_hi, M_lo, N_hi, N, alpha, xi=None):
    r"""The multifidelity forecast mean and the cheapest model's forecast members.

    Parameters
    ----------
    E : array (N_K, ..., d)
        Analysis members (extra axes after the first are carried along, e.g. repetitions).
    M_hi : callable
        High-fidelity model acting on states ``(..., d)``.
    M_lo : list of K callables
        Low-fidelity models, ordered as the nested sample sets.
    N_hi : int
        Number of members advanced by ``M_hi``.
    N : list of K int
        Numbers of members advanced by each low-fidelity model, ``N_hi <= N_1 <= ... <=
        N_K``, with ``N_K = E.shape[0]``.
    alpha : list of K numbers or arrays (d,), or None
        Weights of eq. (10); ``None`` estimates
        :math:`\alpha_k = \rho_k \sigma_{\rm hi} / \sigma_k` componentwise from the
        ``N_hi`` members every model advances (then the estimate is no longer exactly
        unbiased).
    xi : array like ``E``, optional
        Model-error draws added to every model's output of the same member.

    Returns
    -------
    m : array (..., d)
        The multifidelity forecast mean.
    Y_hi : array (N_hi, ..., d)
        High-fidelity forecasts.
    Y_lo : list of K arrays (N_k, ..., d)
        Low-fidelity forecasts.
    """
    N_hi = check_int(N_hi, "N_hi", minimum=1)
    N = [check_int(n, f"N[{k}]") for k, n in enumerate(N)]
    if len(N) != len(M_lo):
        raise ValueError(f"N must have one size per low-fidelity model ({len(M_lo)}), "
                         f"got {len(N)}")
    if N and N[-1] != E.shape[0]:
        raise ValueError(f"the largest sample size N[-1] = {N[-1]} must equal the ensemble "
                         f"size E.shape[0] = {E.shape[0]}")

    def run(M, n):
        Y = M(E[:n, ...])
        return Y if xi is None else Y + xi[:n, ...]

    Y_hi = run(M_hi, N_hi)
    Y_lo = [run(M, n) for M, n in zip(M_lo, N)]
    if alpha is None:
        if N_hi < 2:
            raise ValueError("estimating alpha needs N_hi >= 2 high-fidelity members")
        sigma_hi, sigma, rho = pilot_statistics(Y_hi, [Y[:N_hi, ...] for Y in Y_lo])
        alpha = mfmc_weights(rho, sigma_hi, sigma)
    return mfmc_mean(Y_hi, Y_lo, alpha), Y_hi, Y_lo


class MultifidelityEnKF(EnKF):
    r"""Perturbed-observation EnKF whose forecast mean is a multifidelity estimate.

    Parameters
    ----------
    models : list of (M_k, cost_k)
        The low-fidelity models and the cost of one evaluation of each, ordered by
        decreasing correlation with the high-fidelity model ``ssm.M``.
    N_hi : int
        Number of high-fidelity members.
    N : list of int
        Members advanced by each low-fidelity model; the ensemble has ``N[-1]`` members.
    alpha : list, optional
        Fixed weights of eq. (10); ``None`` re-estimates them at every forecast from the
        ``N_hi`` shared members.
    inflation, radius, center
        As :class:`~dalib.da.enkf.EnKF`.
    """

    def __init__(self, models, N_hi: int, N, alpha=None, inflation: float = 1.0,
                 radius=None, center: bool = True):
        models = list(models)
        if not models or any(not isinstance(m, tuple) or len(m) != 2 or not callable(m[0])
                            for m in models):
            raise TypeError("models must be a non-empty list of (M_k, cost_k) pairs "
                            "with callable M_k")
        self.M_lo = [m[0] for m in models]
        self.costs = [float(check_positive(float(m[1]), f"models[{k}] cost"))
                      for k, m in enumerate(models)]
        N = [check_int(n, f"N[{k}]", minimum=2) for k, n in enumerate(N)]
        self.N_hi = check_int(N_hi, "N_hi", minimum=1)
        if len(N) != len(models) or any(a > b for a, b in zip([self.N_hi, *N], N, strict=False)):
            raise ValueError(f"N must hold one nested size per model, N_hi <= N_1 <= ..., "
                             f"got N_hi = {self.N_hi}, N = {N}")
        self.N_lo = N
        self.alpha = alpha
        super().__init__(N[-1], inflation, None, radius, center)

    def _params(self):
        return {"N_hi": self.N_hi, "N": self.N_lo, "costs": self.costs,
                **super()._params()}

    def cost(self, w_hi: float) -> float:
        """Cost of one forecast, ``w_hi N_hi + sum_k cost_k N_k``."""
        return w_hi * self.N_hi + sum(c * n for c, n in zip(self.costs, self.N_lo))

    def forecast(self, E, ssm, rng):
        xp = namespace(E)
        xi = None if ssm.Q is None else ssm.Q.sample(rng, (E.shape[0],))
        m, _, Y_lo = multifidelity_forecast(E, ssm.M, self.M_lo, self.N_hi, self.N_lo,
                                            self.alpha, xi)
        Y = Y_lo[-1]
        return Y - xp.mean(Y, axis=0) + m
