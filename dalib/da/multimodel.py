r"""A multi-model ensemble Kalman filter (after Bach and Ghil 2023).

Several imperfect models :math:`\mathcal M_1, \dots, \mathcal M_K` advance one shared
analysis ensemble.  Each model's forecast mean :math:`m_k` is treated as an observation of
the truth whose error is the error :math:`e_0` of the shared initial condition, propagated
(ensemble variance :math:`P_k`), plus the model's own error with variance :math:`Q_k`.
The shared part cannot be averaged away, so only the model errors set the weights: with
diagonal variances, component by component,

.. math::

    m^f = \sum_k w_k m_k, \qquad w_k = \frac{Q_k^{-1}}{\sum_j Q_j^{-1}}, \qquad
    P^f = \sum_k w_k P_k + \sum_k w_k^2 Q_k,

the weighted mean's error variance when the model errors are independent of each other
and of :math:`e_0`.  The forecast ensemble is :math:`m^f` plus the weighted anomalies
:math:`\sum_k w_k (E_k - m_k)` rescaled to the variance :math:`P^f`, after which an
ETKF analysis assimilates :math:`y`.  The model-error variances are estimated adaptively
from the innovations of each model: with full observation
(:math:`h = I`), :math:`\mathbb E (y - m_k)^2 = P_k + Q_k + R`, so
:math:`\hat Q_k \leftarrow (1 - \lambda) \hat Q_k + \lambda ((y - m_k)^2 - P_k - R)`
(exponential smoothing with factor :math:`\lambda`), and :math:`Q_k = \max(\hat Q_k,
q_{\min})`; the floor is applied to the smoothed value, not to each sample, so that a small
model error is not swamped by the clipped noise of single innovations.  This diagonal,
innovation-based estimate is a simplification of the paper's matrix-valued weights.
"""

from __future__ import annotations

from .._validate import check_positive
from ..backend import namespace
from ..observations import Identity
from .enkf import etkf_analysis
from .ensemble import EnsembleMethod

__all__ = ["MultiModelEnKF"]


class MultiModelEnKF(EnsembleMethod):
    r"""Multi-model ETKF with adaptive diagonal model-error variances.

    Parameters
    ----------
    models : list of callables
        The imperfect forecast models :math:`\mathcal M_k` acting on ``(..., d)``.
    N : int
        Ensemble size.
    inflation : float
        Multiplicative inflation of the analysis anomalies.
    weights : list of K numbers, optional
        Fixed combination weights (the forecast variance still adds their
        :math:`\sum_k w_k^2 Q_k`) (e.g. ``[1/K] * K`` for the unweighted multi-model
        mean); ``None`` uses the adaptive weights above.
    smoothing : float
        The factor :math:`\lambda` of the model-error estimate.
    q0 : float
        Initial model-error variance of every model and component.
    q_min : float
        Floor of the model-error variances used in the weights.

    The state is ``(E, Q, weight_sum, count)``: the ensemble, the ``(K, d)`` model-error
    variances and the running sum of the weights over ``count`` analyses, so one instance
    can serve several runs.  The mean weights over the run are kept in ``extras`` as
    ``"weights"`` (K, d).
    """

    def __init__(self, models, N: int, inflation: float = 1.0, weights=None,
                 smoothing: float = 0.02, q0: float = 0.1, q_min: float = 1e-3):
        super().__init__(N, inflation)
        self.models = list(models)
        if not self.models or not all(callable(M) for M in self.models):
            raise TypeError("models must be a non-empty list of callables")
        if weights is not None and len(weights) != len(self.models):
            raise ValueError(f"weights must have one entry per model ({len(self.models)}), "
                             f"got {len(weights)}")
        self.weights = None if weights is None else [float(w) for w in weights]
        self.smoothing = float(check_positive(smoothing, "smoothing"))
        self.q0 = float(check_positive(q0, "q0"))
        self.q_min = float(check_positive(q_min, "q_min"))

    def _params(self):
        return {"K": len(self.models), **super()._params()}

    def check(self, ssm):
        if not isinstance(ssm.h, Identity):
            raise ValueError("MultiModelEnKF needs full observation (h = I)")  # noqa: TRY004

    def init(self, ssm, rng):
        E = super().init(ssm, rng)
        xp = namespace(E)
        Q = self.q0 * xp.ones((len(self.models), ssm.d), dtype=E.dtype)
        return E, Q, xp.zeros_like(Q), 0

    def forecast(self, state, ssm, rng):
        E, Q, weight_sum, count = state
        xi = None if ssm.Q is None else ssm.Q.sample(rng, (E.shape[0],))
        forecasts = [M(E) if xi is None else M(E) + xi for M in self.models]
        return forecasts, Q, weight_sum, count

    def analysis(self, state, y, ssm, rng):
        forecasts, Q, weight_sum, count = state
        xp = namespace(Q)
        N = forecasts[0].shape[0]
        means = xp.stack([xp.mean(Ek, axis=0) for Ek in forecasts])
        P = xp.stack([xp.sum((Ek - xp.mean(Ek, axis=0)) ** 2, axis=0) / (N - 1)
                      for Ek in forecasts])
        r = ssm.R.diagonal(xp=xp)
        Q_pos = xp.maximum(Q, self.q_min * xp.ones_like(Q))
        if self.weights is None:
            precision = 1 / Q_pos
            w = precision / xp.sum(precision, axis=0)
        else:
            w = xp.asarray(self.weights, dtype=Q.dtype)[:, None] * xp.ones_like(Q)
        m_f = xp.sum(w * means, axis=0)
        v_f = xp.sum(w * P, axis=0) + xp.sum(w**2 * Q_pos, axis=0)
        X = sum(w[k, ...] * (forecasts[k] - means[k, ...]) for k in range(len(forecasts)))
        var_X = xp.sum(X**2, axis=0) / (N - 1)
        E_f = m_f + X * xp.sqrt(v_f / var_X)
        d2 = (y - means) ** 2
        lam = self.smoothing
        Q = (1 - lam) * Q + lam * (d2 - P - r)
        E_a = etkf_analysis(E_f, y, ssm.h, ssm.R, inflation=self.inflation)
        return E_a, Q, weight_sum + w, count + 1

    def _members(self, state):
        E = state[0]
        # a forecast holds one ensemble per model, combined only at the analysis; until
        # then it is reported as their member-wise mean
        return sum(E) / len(E) if isinstance(E, list) else E

    def moments(self, state):
        return super().moments(self._members(state))

    def members(self, state):
        return self._members(state)

    def extras(self, state):
        _, _, weight_sum, count = state
        return {"weights": weight_sum / count} if count else {}
