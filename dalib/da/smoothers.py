r"""The ensemble Kalman smoother and reanalyses (book section 7.10).

The ETKF analysis at time :math:`j` is a linear combination of the forecast members,
:math:`E^a_j = \Omega_j E^f_j` with the ``N``-by-``N`` matrix

.. math::
    \Omega_j = \tfrac1N \mathbf 1\mathbf 1^\top + (\mathbf 1 \bar w_j^\top + T_j)\,
    (I - \tfrac1N \mathbf 1\mathbf 1^\top).

The ensemble Kalman smoother (EnKS; Evensen and van Leeuwen 2000) applies the same
combination to the ensembles of earlier times, which conditions them on :math:`y^\dagger_j`
too: :math:`E^s_k \leftarrow \Omega_j E^s_k` for :math:`k` in the lag window
:math:`j - \ell \le k < j`.  With the whole window (``lag=None``) the final ensembles sample
:math:`\mathbb P(x_k \mid Y^\dagger)` (exactly so in the linear-Gaussian limit); a fixed lag
:math:`\ell` uses the observations up to :math:`k + \ell`.

A *reanalysis* is such a run over a long period, kept for later use: the analyses (and
forecasts) are what the chapters on learning train on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .._validate import check_int
from ..backend import device, namespace
from ._kernels import etkf_weights, log_evidence_whitened, whitened_obs
from .cycling import assimilate, check_twin, cycle
from .enkf import ETKF
from .methods import Method
from .result import AssimilationResult, resolve_burn_in

__all__ = ["EnKS", "SmootherState", "enks", "reanalysis"]


@dataclass(frozen=True)
class SmootherState:
    """What the ensemble Kalman smoother carries from one cycle to the next.

    Attributes
    ----------
    E : array, shape (N, d)
        The filter's ensemble at model step ``t``.
    window : array, shape (n, N, d)
        The ensembles of the steps ``start, ..., start + n - 1`` that later observations
        still condition (the lag window).
    start : int
        Model step of ``window[0]``.
    done : tuple of arrays (N, d)
        Final smoothed ensembles of the steps ``0, ..., start - 1``.
    partners : tuple of arrays (N, d)
        For each of ``done``, the ensemble of the next step conditioned on the same
        observations (so the members of the two are joint samples).
    filter_means : tuple of arrays (d,)
        The filter's mean at every model step ``0..t`` (analysis at observed steps).
    loglik : array, shape ()
        Ensemble log-likelihood of the observations so far.
    t : int
        The current model step.
    """

    E: Any
    window: Any
    start: int
    done: tuple
    partners: tuple
    filter_means: tuple
    loglik: Any
    t: int


class EnKS(Method):
    r"""The ensemble Kalman smoother as a method of the cycling driver.

    Each cycle runs the ETKF ``filter`` (forecast over ``obs_every`` model steps, then the
    analysis) and applies the same ETKF combination :math:`\Omega_j` to the ensembles of
    the lag window; the smoothed ensembles are in the final state (:meth:`smoothed`).

    Parameters
    ----------
    filter : ETKF
        The filter (ensemble size, inflation, additive noise).  Inflation acts on the
        filter's ensemble only; smoothed ensembles of past times are not inflated again.
    lag : int or None
        Fixed lag :math:`\ell` in model steps (0 gives the filter); ``None`` smooths over
        the whole window.
    obs_every : int
        Model steps per cycle: ``ssm.M`` advances one model step and the observation of a
        cycle is of its last step.  The ensembles of every model step are smoothed.
    space : {"ensemble", "observation"}
        How the ETKF transform is computed (see ``etkf_weights`` in ``dalib.da._kernels``):
        an ``N``-by-``N`` eigendecomposition or the SVD of the whitened observation
        anomalies, cheaper when :math:`p \ll N`.
    """

    def __init__(self, filter: ETKF, lag: int | None = None, obs_every: int = 1,
                 space: str = "ensemble"):
        if not isinstance(filter, ETKF):
            raise TypeError(f"enks needs an ETKF method, got {filter!r}")
        if lag is not None:
            lag = check_int(lag, "lag", minimum=0)
        if space not in ("ensemble", "observation"):
            raise ValueError(f"space must be 'ensemble' or 'observation', got {space!r}")
        self.filter = filter
        self.lag = lag
        self.obs_every = check_int(obs_every, "obs_every")
        self.space = space

    def __repr__(self):
        return f"EnKS({self.filter!r}, lag={self.lag})"

    def check(self, ssm):
        self.filter.check(ssm)

    def init(self, ssm, rng):
        E = self.filter.init(ssm, rng)
        xp = namespace(E)
        zero = xp.asarray(0.0, dtype=E.dtype, device=device(E))
        return SmootherState(E, E[None, ...], 0, (), (), (xp.mean(E, axis=0),), zero, 0)

    def forecast(self, s, ssm, rng):
        xp = namespace(s.E)
        E, window, means = s.E, s.window, s.filter_means
        for k in range(self.obs_every):
            E = self.filter.forecast(E, ssm, rng)
            if k < self.obs_every - 1:  # unobserved steps join the window now
                window = xp.concat([window, E[None, ...]], axis=0)
                means = means + (xp.mean(E, axis=0),)
        return replace(s, E=E, window=window, filter_means=means, t=s.t + self.obs_every)

    def analysis(self, s, y, ssm, rng):
        E, N = s.E, self.filter.N
        xp = namespace(E)
        xbar, X, Yw, dw = whitened_obs(E, y, ssm.h, ssm.R, xp)
        loglik = s.loglik + log_evidence_whitened(Yw, dw, N, ssm.R, xp)
        w, T = etkf_weights(Yw, dw, N, xp, self.space)
        window, start, done, partners = s.window, s.start, s.done, s.partners
        while self.lag is not None and start < s.t - self.lag:  # outside the lag: final
            done = done + (window[0, ...],)
            partners = partners + ((window[1, ...] if window.shape[0] > 1 else E),)
            window, start = window[1:, ...], start + 1
        if window.shape[0]:
            # Condition the ensembles of the window on this observation as well.
            mk = xp.mean(window, axis=1, keepdims=True)
            window = mk + (w + T) @ (window - mk)
        E = xbar + (w + self.filter.inflation * T) @ X  # the filter's (inflated) analysis
        window = xp.concat([window, E[None, ...]], axis=0)
        return SmootherState(E, window, start, done, partners,
                             s.filter_means + (xp.mean(E, axis=0),), loglik, s.t)

    def moments(self, s):
        return self.filter.moments(s.E)

    def members(self, s):
        return s.E

    def extras(self, s):
        return {"loglik": s.loglik}

    def smoothed(self, s):
        """The smoothed ensembles of every model step ``0..t`` (t + 1, N, d) and their partners.

        The partners (t, N, d) hold, for step ``j``, the ensemble of step ``j + 1``
        conditioned on the same observations as the smoothed ensemble of step ``j``.
        """
        xp = namespace(s.E)
        ens = xp.concat([xp.stack(s.done), s.window], axis=0) if s.done else s.window
        nxt = s.window[1:, ...]
        if s.partners:
            nxt = xp.concat([xp.stack(s.partners), nxt], axis=0)
        return ens, nxt


def enks(method: ETKF, twin, rng, *, lag: int | None = None, store_ensembles: bool = False,
         burn_in: int | None = None, progress: bool | None = None) -> AssimilationResult:
    r"""Ensemble Kalman smoother built on the ETKF transforms (the driver runs :class:`EnKS`).

    Parameters
    ----------
    method : ETKF
        The filter (ensemble size, inflation, additive noise).  Inflation acts on the
        filter's ensemble only; smoothed ensembles of past times are not inflated again.
    twin : TwinExperiment
        Truth and observations.
    rng : int or dalib.random.Generator
        Randomness.
    lag : int or None
        Fixed lag :math:`\ell` (0 gives the filter); ``None`` smooths over the whole window.
    store_ensembles : bool
        Keep the smoothed ensembles in ``ensembles_a`` (J + 1, N, d).
    burn_in, progress
        As in :func:`~dalib.da.cycling.assimilate`.

    Returns
    -------
    AssimilationResult
        ``analysis`` and ``spread_a`` are the smoothed means and spreads; ``forecast`` the
        filter's forecast means; ``extras["filter_analysis"]`` the filter's analysis means
        and ``extras["loglik"]`` the ensemble log-likelihood of the observations.
    """
    smoother = EnKS(method, lag=lag)
    check_twin(twin)
    burn_in = resolve_burn_in(burn_in, twin.J)
    run = cycle(smoother, twin.ssm, twin.y, rng, progress=progress)
    xp = namespace(run.analysis)
    ens, _ = smoother.smoothed(run.state)
    moments = [method.moments(ens[k, ...]) for k in range(ens.shape[0])]
    return AssimilationResult(
        method=repr(smoother),
        twin=twin,
        analysis=xp.stack([m for m, _ in moments]),
        forecast=run.forecast,
        spread_a=xp.stack([s for _, s in moments]),
        spread_f=run.spread_f,
        innovations=run.innovations,
        ensembles_a=ens if store_ensembles else None,
        burn_in=burn_in,
        extras={"filter_analysis": run.analysis, **smoother.extras(run.state)},
    )


def reanalysis(method: Method, twin, rng, *, smoother: bool = False, lag: int | None = None,
               store_ensembles: bool = False, burn_in: int | None = None,
               progress: bool | None = None) -> AssimilationResult:
    r"""A reanalysis: run a filter or smoother over a long period and keep its estimates.

    Parameters
    ----------
    method : Method
        Any sequential method; with ``smoother=True`` it must be an :class:`~dalib.da.ETKF`.
    twin : TwinExperiment
        Truth and observations (the truth is used for scores only).
    rng : int or dalib.random.Generator
        Randomness.
    smoother : bool
        Use the ensemble Kalman smoother (:func:`enks`) instead of the filter.
    lag : int or None
        Smoother lag (``None``: the whole period).
    store_ensembles : bool
        Keep the analysis ensembles.
    burn_in, progress
        As in :func:`~dalib.da.cycling.assimilate`.

    Returns
    -------
    AssimilationResult
        ``analysis`` holds the reanalysis :math:`x^a_{0:J}`, ``forecast`` the forecasts
        :math:`\hat x_{0:J}`; :meth:`~AssimilationResult.pairs`,
        :meth:`~AssimilationResult.increments` and :meth:`~AssimilationResult.transitions`
        give training pairs.

    Examples
    --------
    >>> import dalib
    >>> from dalib.da import ETKF, reanalysis
    >>> twin = dalib.setups.lorenz96().simulate(200, rng=1)
    >>> rea = reanalysis(ETKF(N=20, inflation=1.02), twin, rng=2, smoother=True, lag=5)
    >>> xf, xa = rea.pairs()            # (x^f_j, x^a_j), j = 1..200
    """
    if smoother:
        return enks(method, twin, rng, lag=lag, store_ensembles=store_ensembles,
                    burn_in=burn_in, progress=progress)
    if lag is not None:
        raise ValueError("lag is a smoother option: pass smoother=True")
    return assimilate(method, twin, rng, store_ensembles=store_ensembles, burn_in=burn_in,
                      progress=progress)
