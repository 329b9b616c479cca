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

from .._validate import check_int
from ..backend import device, namespace
from ..random import default_rng
from ._kernels import etkf_weights, whitened_obs
from .cycling import assimilate, check_twin, progress_range
from .enkf import ETKF
from .methods import Method
from .result import AssimilationResult, FilterDivergenceError

__all__ = ["enks", "reanalysis"]


def enks(method: ETKF, twin, rng, *, lag: int | None = None, store_ensembles: bool = False,
         burn_in: int | None = None, progress: bool | None = None) -> AssimilationResult:
    r"""Ensemble Kalman smoother built on the ETKF transforms.

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
        filter's forecast means; ``extras["filter_analysis"]`` the filter's analysis means.
    """
    if not isinstance(method, ETKF):
        raise TypeError(f"enks needs an ETKF method, got {method!r}")
    if lag is not None:
        lag = check_int(lag, "lag", minimum=0)
    check_twin(twin)
    ssm = twin.ssm
    J, N = twin.J, method.N
    xp = namespace(ssm.m0)
    rng = default_rng(rng, xp, device(ssm.m0))
    burn_in = min(J // 10, J - 1) if burn_in is None else check_int(burn_in, "burn_in", minimum=0)

    E = method.init(ssm, rng)
    m0, s0 = method.moments(E)
    means_f, spreads_f, means_filter, innov = [m0], [s0], [m0], []
    done = {}  # time -> final smoothed ensemble
    window = [(0, E)]  # (time, ensemble) pairs still being smoothed

    for j in progress_range(J, progress, "EnKS"):
        Ef = method.forecast(E, ssm, rng)
        mf, sf = method.moments(Ef)
        yj = twin.y[j, :]
        innov.append(yj - ssm.h(mf))
        xbar, X, Yw, dw = whitened_obs(Ef, yj, ssm.h, ssm.R, xp)
        w, T = etkf_weights(Yw, dw, N, xp)
        W = w + T  # 1 w^T + T
        while lag is not None and window and window[0][0] < j + 1 - lag:
            k, Ek = window.pop(0)  # outside the lag: final
            done[k] = Ek
        # Condition the ensembles of times j + 1 - lag, ..., j on this observation as well.
        window = [(k, xp.mean(Ek, axis=0) + W @ (Ek - xp.mean(Ek, axis=0))) for k, Ek in window]
        E = xbar + (w + method.inflation * T) @ X  # the filter's (inflated) analysis
        ma, _ = method.moments(E)
        if not bool(xp.all(xp.isfinite(ma))):
            raise FilterDivergenceError(f"{method!r} (EnKS) diverged at cycle {j + 1} of {J}")
        means_f.append(mf)
        spreads_f.append(sf)
        means_filter.append(ma)
        window.append((j + 1, E))
    for k, Ek in window:
        done[k] = Ek

    smoothed = [done[k] for k in range(J + 1)]
    moments = [method.moments(Ek) for Ek in smoothed]
    return AssimilationResult(
        method=f"EnKS({method!r}, lag={lag})",
        twin=twin,
        analysis=xp.stack([m for m, _ in moments]),
        forecast=xp.stack(means_f),
        spread_a=xp.stack([s for _, s in moments]),
        spread_f=xp.stack(spreads_f),
        innovations=xp.stack(innov),
        ensembles_a=xp.stack(smoothed) if store_ensembles else None,
        burn_in=burn_in,
        extras={"filter_analysis": xp.stack(means_filter)},
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
