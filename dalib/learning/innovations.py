r"""Innovation-based estimation of the error covariances (Tandeo et al. 2020).

The innovations of a filter are the only place where the truth leaves a trace, through
the observations.  With :math:`\bar x^f` the forecast (background) mean and
:math:`\bar x^a` the analysis mean, define in observation space

.. math::
    d^{o-b} = y^\dagger - h(\bar x^f),\qquad d^{o-a} = y^\dagger - h(\bar x^a),\qquad
    d^{a-b} = h(\bar x^a) - h(\bar x^f) = d^{o-b} - d^{o-a}.

If the filter's background covariance :math:`B` and observation error covariance
:math:`R` are the true ones and :math:`h` is linear, the analysis is
:math:`\bar x^a = \bar x^f + K d^{o-b}` with :math:`K = BH^\top(HBH^\top + R)^{-1}` and
(Desroziers et al. 2005)

.. math::
    \mathbb E[d^{o-b} (d^{o-b})^\top] = HBH^\top + R,\qquad
    \mathbb E[d^{a-b} (d^{o-b})^\top] = HBH^\top,\qquad
    \mathbb E[d^{o-a} (d^{o-b})^\top] = R.

When the covariances used by the filter are wrong the right-hand sides are not the truth
either, but iterating "run the filter with :math:`R_k`, set :math:`R_{k+1} =
\mathbb E[d^{o-a} (d^{o-b})^\top]`" has the true :math:`R` as a fixed point when :math:`B`
is right.  Because an ensemble's :math:`B` is itself uncertain, :class:`AdaptiveETKF`
estimates a multiplicative inflation of :math:`B` from the first identity at the same time
(Li, Kalnay and Miyoshi 2009).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_positive, check_same_shape
from ..backend import namespace
from ..covariance import as_covariance
from ..da import ETKF, assimilate, etkf_analysis
from ..random import default_rng

__all__ = [
    "DesroziersStatistics",
    "desroziers_statistics",
    "DesroziersIteration",
    "desroziers_iteration",
    "adaptive_inflation_estimate",
    "AdaptiveETKF",
]

@dataclass(frozen=True)
class DesroziersStatistics:
    r"""Sample innovation statistics of Desroziers et al. (2005).

    Attributes
    ----------
    R : array, shape (p, p)
        :math:`\widehat{\mathbb E}[d^{o-a} (d^{o-b})^\top]` (symmetrised): the estimate of
        :math:`R`.
    HBH : array, shape (p, p)
        :math:`\widehat{\mathbb E}[d^{a-b} (d^{o-b})^\top]`: the estimate of :math:`HBH^\top`.
    total : array, shape (p, p)
        :math:`\widehat{\mathbb E}[d^{o-b} (d^{o-b})^\top]`, which should equal
        ``HBH + R`` when the filter is consistent.
    n : int
        Number of times averaged.
    """

    R: Any
    HBH: Any
    total: Any
    n: int


def desroziers_statistics(d_ob, d_oa, *, burn_in: int = 0) -> DesroziersStatistics:
    r"""Desroziers' diagnostics from the innovations of a filter run.

    Parameters
    ----------
    d_ob : array, shape (K, p)
        Observation-minus-background :math:`y^\dagger_k - h(\bar x^f_k)`
        (``AssimilationResult.innovations``).
    d_oa : array, shape (K, p)
        Observation-minus-analysis :math:`y^\dagger_k - h(\bar x^a_k)`.
    burn_in : int
        Number of initial times left out.

    Returns
    -------
    DesroziersStatistics
        Time averages of the outer products, symmetrised.
    """
    check_array(d_ob, "d_ob", ndim=2)
    check_array(d_oa, "d_oa", ndim=2)
    check_same_shape(d_ob, "d_ob", d_oa, "d_oa")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= d_ob.shape[0]:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than the number of times "
                         f"({d_ob.shape[0]})")
    xp = namespace(d_ob, d_oa)
    ob, oa = d_ob[burn_in:, :], d_oa[burn_in:, :]
    n = int(ob.shape[0])
    ab = ob - oa

    def mean_outer(a, b):
        S = a.T @ b / n
        return (S + S.T) / 2

    return DesroziersStatistics(mean_outer(oa, ob), mean_outer(ab, ob), mean_outer(ob, ob), n)


@dataclass(frozen=True)
class DesroziersIteration:
    """Output of :func:`desroziers_iteration`.

    Attributes
    ----------
    R_history : array, shape (n_iter + 1, p)
        Diagonals of :math:`R_0, R_1, \\dots`; index 0 is the initial guess.
    trace_HPH : array, shape (n_iter,)
        Time mean of :math:`\\operatorname{tr}(HP^fH^\\top)` (uninflated) of every run.
    statistics : list of DesroziersStatistics
        The diagnostics of every filter run.
    result : AssimilationResult
        The last filter run (with :math:`R_{n-1}`).
    """

    R_history: Any
    trace_HPH: Any
    statistics: list
    result: Any


def desroziers_iteration(twin, R0, n_iter: int, rng, *, N: int = 20, inflation: float = 1.0,
                         structure: str = "scalar",
                         burn_in: int | None = None) -> DesroziersIteration:
    r"""Desroziers' fixed-point iteration for :math:`R` inside an ETKF.

    Iteration :math:`k` runs an ETKF with the observation error covariance :math:`R_k` and
    a fixed forecast variance inflation :math:`\Delta` over the whole twin experiment
    (:class:`AdaptiveETKF` without online adaptation), then sets

    .. math::
        R_{k+1} = \widehat{\mathbb E}[d^{o-a}(d^{o-b})^\top],

    the time average over the run after ``burn_in`` (Desroziers et al. 2005).  The fixed
    point is the true :math:`R` when the inflated ensemble covariance is the true
    background covariance; with too little inflation the background looks better than it
    is and :math:`R` absorbs the missing variance, with too much :math:`R` comes out too
    small.  The history of :math:`\widehat{\mathbb E}[\operatorname{tr}(HP^fH^\top)]`
    and of the statistics lets one check the consistency
    :math:`\mathbb E[(d^{o-b})^\top d^{o-b}] = \operatorname{tr}(\Delta HP^fH^\top + R)`.

    Parameters
    ----------
    twin : TwinExperiment
        Truth and observations; ``twin.ssm.R`` is not used.
    R0 : float or array (p,)
        Initial guess of :math:`R` (scalar or diagonal).
    n_iter : int
        Number of filter runs.
    rng : int or dalib.random.Generator
        Randomness of the filter runs.
    N : int
        Ensemble size.
    inflation : float
        Forecast variance inflation :math:`\Delta` (kept fixed).
    structure : {"scalar", "diag"}
        Structure of the estimates of :math:`R`.
    burn_in : int, optional
        Initial cycles left out of the averages (default: ``J // 10``).

    Returns
    -------
    DesroziersIteration
    """
    n_iter = check_int(n_iter, "n_iter")
    if structure not in ("scalar", "diag"):
        raise ValueError(f"structure must be 'scalar' or 'diag', got {structure!r}")
    check_positive(inflation, "inflation")
    ssm = twin.ssm
    xp = namespace(ssm.m0)
    rng = default_rng(rng, xp)
    r = as_covariance(R0, "R0", d=ssm.p).diagonal(xp)
    if structure == "scalar":
        r = xp.full((ssm.p,), float(xp.mean(r)), dtype=xp.float64)
    rs, hph, stats = [r], [], []
    res = None
    for _ in range(n_iter):
        method = AdaptiveETKF(N, R0=r, estimate_R=False, adapt_inflation=False,
                              inflation0=inflation)
        res = assimilate(method, twin, rng, burn_in=burn_in)
        b = res.burn_in
        d_oa = twin.y - ssm.h(res.analysis[1:, ...])
        st = desroziers_statistics(res.innovations, d_oa, burn_in=b)
        stats.append(st)
        hph.append(float(xp.mean(res.extras["trace_HPH"][b:])))
        r = xp.linalg.diagonal(st.R)
        if structure == "scalar":
            r = xp.full((ssm.p,), float(xp.mean(r)), dtype=xp.float64)
        rs.append(r)
    return DesroziersIteration(xp.stack(rs), xp.asarray(hph, dtype=xp.float64), stats, res)


def adaptive_inflation_estimate(d_ob, trace_HPH, trace_R):
    r"""One-time estimate of the multiplicative (variance) inflation of :math:`B`.

    From :math:`\mathbb E[(d^{o-b})^\top d^{o-b}] = \operatorname{tr}(\Delta\, HP^fH^\top)
    + \operatorname{tr}(R)` (Li, Kalnay and Miyoshi 2009):

    .. math::
        \tilde\Delta = \frac{(d^{o-b})^\top d^{o-b} - \operatorname{tr}(R)}
        {\operatorname{tr}(HP^fH^\top)}.

    Parameters
    ----------
    d_ob : array, shape (p,)
        Innovation :math:`y^\dagger - h(\bar x^f)`.
    trace_HPH : float or array
        :math:`\operatorname{tr}(HP^fH^\top)` of the uninflated forecast ensemble.
    trace_R : float or array
        :math:`\operatorname{tr}(R)`.

    Returns
    -------
    array, shape ()
        :math:`\tilde\Delta` (can be negative for a single time: average over times).
    """
    check_array(d_ob, "d_ob", ndim=1)
    check_positive(trace_HPH, "trace_HPH")
    xp = namespace(d_ob)
    return (xp.sum(d_ob * d_ob) - trace_R) / trace_HPH


class AdaptiveETKF(ETKF):
    r"""ETKF that learns :math:`R` and a multiplicative inflation from its innovations.

    At every analysis time, with the current estimates :math:`R_k` and :math:`\Delta_k`:

    1. inflate the forecast anomalies by :math:`\sqrt{\Delta_k}` (so :math:`B = \Delta_k
       P^f`);
    2. ETKF analysis with :math:`R_k`;
    3. one-time estimates :math:`\tilde\Delta` (:func:`adaptive_inflation_estimate`) and
       :math:`\tilde R = d^{o-a} \circ d^{o-b}` (``"diag"``) or its mean (``"scalar"``),
       the single-time versions of Desroziers' :math:`\mathbb E[d^{o-a}(d^{o-b})^\top] = R`;
    4. relax towards them with exponential moving averages (memories :math:`\rho_\Delta`
       and :math:`\rho`): :math:`R_{k+1} = \rho R_k + (1-\rho)\tilde R`, and
       :math:`\Delta_{k+1} = \langle (d^{o-b})^\top d^{o-b} - \operatorname{tr} R_k\rangle /
       \langle \operatorname{tr}(HP^fH^\top)\rangle`, a ratio of averages (the average
       of the ratios :math:`\tilde\Delta` is biased upwards by the time variations of
       :math:`\operatorname{tr}(HP^fH^\top)`).

    This is the simultaneous estimation of inflation and observation errors of Li,
    Kalnay and Miyoshi (2009), with exponential moving averages as the time smoothers.
    A single :math:`\tilde\Delta` is very noisy when :math:`HP^fH^\top` is small next to
    :math:`R` (its standard deviation is about
    :math:`\sqrt{2/p}\,\operatorname{tr}(HP^fH^\top + R)/\operatorname{tr}(HP^fH^\top)`),
    so the inflation needs a longer memory than :math:`R`; the averages are taken
    unclipped (clipping would bias them) and only :math:`\Delta_k` is kept within
    ``inflation_bounds``.

    Parameters
    ----------
    N : int
        Ensemble size.
    R0 : covariance-like, optional
        Initial guess of :math:`R` (default: ``ssm.R``); scalar or diagonal.
    estimate_R : bool
        Learn :math:`R` (otherwise keep ``R0``).
    adapt_inflation : bool
        Learn :math:`\Delta` (otherwise keep ``inflation0``).
    inflation0 : float
        Initial variance inflation :math:`\Delta_0` (1: none).
    memory : float
        :math:`\rho \in [0, 1)` for :math:`R`; it averages over about
        :math:`1/(1-\rho)` cycles.
    inflation_memory : float
        :math:`\rho_\Delta \in [0, 1)` for the inflation.
    R_structure : {"scalar", "diag"}
        Structure of the estimate of :math:`R`.
    inflation_bounds : tuple of float
        Interval in which the averaged :math:`\Delta_k` is kept.
    spinup : int
        Number of first analyses without updates of the estimates (the ensemble spreads
        out from :math:`C_0` first).
    additive : covariance-like, optional
        Additive inflation, as :class:`~dalib.da.ETKF`.

    Notes
    -----
    ``result.extras`` holds ``"R"`` (the diagonal of :math:`R_k` at every analysis,
    shape (J, p)) and ``"inflation"`` (:math:`\Delta_k`, shape (J,)), the values *used* at
    each analysis, and ``"trace_HPH"``, :math:`\operatorname{tr}(HP^fH^\top)` of the
    uninflated forecast ensemble (J,).  With ``estimate_R=False`` and
    ``adapt_inflation=False`` it is an ETKF with fixed forecast inflation
    ``inflation0``, which :func:`desroziers_iteration` runs.  The inherited ``inflation`` argument of :class:`~dalib.da.ETKF`
    (posterior inflation of the anomalies) is left at 1.
    """

    def __init__(self, N: int, *, R0=None, estimate_R: bool = True,
                 adapt_inflation: bool = True, inflation0: float = 1.0,
                 memory: float = 0.98, inflation_memory: float = 0.98,
                 R_structure: str = "scalar", inflation_bounds=(1.0, 10.0),
                 spinup: int = 50, additive=None):
        super().__init__(N, inflation=1.0, additive=additive)
        for name, value in (("memory", memory), ("inflation_memory", inflation_memory)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        if R_structure not in ("scalar", "diag"):
            raise ValueError(f"R_structure must be 'scalar' or 'diag', got {R_structure!r}")
        check_positive(inflation0, "inflation0")
        lo, hi = inflation_bounds
        if not 0 < lo < hi:
            raise ValueError(f"inflation_bounds must satisfy 0 < low < high, got "
                             f"{inflation_bounds!r}")
        self.R0 = R0
        self.estimate_R = bool(estimate_R)
        self.adapt_inflation = bool(adapt_inflation)
        self.inflation0 = float(inflation0)
        self.memory = float(memory)
        self.inflation_memory = float(inflation_memory)
        self.R_structure = R_structure
        self.inflation_bounds = (float(lo), float(hi))
        self.spinup = check_int(spinup, "spinup", minimum=0)

    def _params(self):
        return {"N": self.N, "estimate_R": self.estimate_R,
                "adapt_inflation": self.adapt_inflation, "memory": self.memory}

    def check(self, ssm):
        R0 = ssm.R if self.R0 is None else as_covariance(self.R0, "R0", d=ssm.p)
        if not R0.is_diagonal:
            raise ValueError("AdaptiveETKF needs a scalar or diagonal R0")

    def prepare(self, ssm):
        xp = namespace(ssm.m0)
        R0 = ssm.R if self.R0 is None else as_covariance(self.R0, "R0", d=ssm.p)
        self._r = R0.diagonal(xp)
        if self.R_structure == "scalar":
            self._r = xp.full((ssm.p,), float(xp.mean(self._r)), dtype=xp.float64)
        self._delta = self.inflation0
        self._num, self._den = None, None
        self._hist_r, self._hist_delta, self._hist_hph = [], [], []
        self._cycle = 0

    def analysis(self, E, y, ssm, rng):
        xp = namespace(E)
        N = E.shape[0]
        xbar = xp.mean(E, axis=0)
        X = E - xbar
        hE = ssm.h(E)
        Y = hE - xp.mean(hE, axis=0)
        d_ob = y - xp.mean(hE, axis=0)
        r, delta = self._r, self._delta
        trace_HPH = float(xp.sum(Y * Y)) / (N - 1)
        self._hist_r.append(r)
        self._hist_delta.append(delta)
        self._hist_hph.append(trace_HPH)
        self._cycle += 1
        R = as_covariance(r, "R")
        Ea = etkf_analysis(xbar + math.sqrt(delta) * X, y, ssm.h, R)
        d_oa = y - ssm.h(xp.mean(Ea, axis=0))
        rho = self.memory
        if self._cycle <= self.spinup:
            return Ea
        if self._num is None:  # start the averages at the current inflation
            self._num, self._den = delta * trace_HPH, trace_HPH
        if self.adapt_inflation:
            # ratio of averages, not average of ratios: tr(HP^fH^T) fluctuates in time and
            # the mean of its inverse is larger than the inverse of its mean
            rho_d = self.inflation_memory
            excess = float(xp.sum(d_ob * d_ob)) - float(xp.sum(r))
            self._num = rho_d * self._num + (1 - rho_d) * excess
            self._den = rho_d * self._den + (1 - rho_d) * trace_HPH
            lo, hi = self.inflation_bounds
            self._delta = min(max(self._num / self._den, lo), hi)
        if self.estimate_R:
            r_new = d_oa * d_ob
            if self.R_structure == "scalar":
                r_new = xp.full(r.shape, float(xp.mean(r_new)), dtype=r.dtype)
            # a single product can be negative: keep the average positive
            self._r = xp.maximum(rho * r + (1 - rho) * r_new, 1e-3 * r)
        return Ea

    def extras(self, state):
        xp = namespace(state)
        return {"R": xp.stack(self._hist_r),
                "inflation": xp.asarray(self._hist_delta, dtype=xp.float64),
                "trace_HPH": xp.asarray(self._hist_hph, dtype=xp.float64)}
