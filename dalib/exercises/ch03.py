"""Self-checks for the exercises of chapter 3, "Ensemble Kalman filters"."""

from __future__ import annotations

import math

import numpy as np

from .. import metrics, setups
from ..backend import to_numpy
from ..da import LETKF, FilterDivergenceError, assimilate, enkf_analysis
from ..observations import Matrix
from ..random import default_rng
from ._framework import Unfinished, Wrong, as_float_array, call_answer, exercise, quietly

__all__ = [
    "check_ensemble_moments",
    "check_perturbed_obs_analysis",
    "check_inflation",
    "inflation_twin",
    "INFLATION_SETUP",
]


# ----------------------------------------------------------------------------------------
# Exercise 1: mean, anomalies and covariance of an ensemble
# ----------------------------------------------------------------------------------------


@exercise("ch03 ensemble moments")
def check_ensemble_moments(ensemble_moments):
    """Check ``ensemble_moments(E)`` returning the mean (d,), anomalies (N, d), covariance (d, d)."""
    rng = np.random.default_rng(30)
    N, d = 4, 6
    E = rng.standard_normal((N, d)) * [1.0, 2.0, 0.5, 3.0, 1.5, 1.0] + np.arange(d)
    out = call_answer(ensemble_moments, E.copy())
    if not isinstance(out, tuple) or len(out) != 3:
        raise Wrong("ensemble_moments should return three arrays: (xbar, X, C).")
    xbar, X, C = (as_float_array(v, n) for v, n in zip(out, ("xbar", "X", "C")))
    mean = E.mean(axis=0)
    anom = E - mean
    cov = anom.T @ anom / (N - 1)
    if xbar.shape == (N,):
        raise Wrong(f"xbar has shape ({N},): you averaged over the components of each member. "
                    "Members are the rows of E, so average over axis 0.")
    if xbar.shape != (d,) or not np.allclose(xbar, mean, rtol=1e-12, atol=1e-12):
        raise Wrong(f"xbar should be the mean of the {N} members, shape ({d},).")
    if X.shape != (N, d):
        raise Wrong(f"X should have the shape of E, ({N}, {d}), got {X.shape}.")
    if np.allclose(X, E):
        raise Wrong("X equals E: subtract the mean xbar from every member.")
    if not np.allclose(X, anom, rtol=1e-12, atol=1e-12):
        raise Wrong("X should be E - xbar (each member minus the mean); its columns sum to 0.")
    if C.shape == (N, N):
        raise Wrong(f"C has shape ({N}, {N}): that is X X^T, the Gram matrix of the members. "
                    f"The covariance of the state is X^T X / (N - 1), shape ({d}, {d}).")
    if C.shape != (d, d):
        raise Wrong(f"C should have shape ({d}, {d}), got {C.shape}.")
    if np.allclose(C, anom.T @ anom / N, rtol=1e-12):
        raise Wrong("C divides by N; the unbiased sample covariance divides by N - 1.")
    if not np.allclose(C, cov, rtol=1e-12, atol=1e-12):
        raise Wrong("C should be X^T X / (N - 1), the sample covariance.")
    return (f"mean, anomalies and covariance are right. Note that C is {d} x {d} but has "
            f"rank {np.linalg.matrix_rank(C)} = N - 1: {N} members only span "
            f"{N - 1} directions.")


# ----------------------------------------------------------------------------------------
# Exercise 2: the perturbed-observation analysis
# ----------------------------------------------------------------------------------------


def _enkf_problem():
    rng = np.random.default_rng(31)
    N, d, p = 8, 5, 3
    E = rng.standard_normal((N, d)) + np.linspace(-1.0, 1.0, d)
    H = rng.standard_normal((p, d))
    y = rng.standard_normal(p)
    return E, y, H, 0.5


@exercise("ch03 perturbed observations")
def check_perturbed_obs_analysis(perturbed_obs_analysis, seed: int = 7):
    """Check ``perturbed_obs_analysis(E, y, H, r, rng)`` against :func:`dalib.da.enkf_analysis`.

    Both draw their perturbations from the same generator, so the analyses must agree to
    round-off.
    """
    E, y, H, r = _enkf_problem()
    N, p = E.shape[0], y.shape[0]
    out = call_answer(perturbed_obs_analysis, E.copy(), y.copy(), H.copy(), r,
                      default_rng(seed))
    Ea = as_float_array(out, "the analysis ensemble")
    if Ea.shape != E.shape:
        raise Wrong(f"the analysis ensemble should have the shape of E, {E.shape}, got "
                    f"{Ea.shape}.")
    expected = to_numpy(enkf_analysis(E, y, Matrix(H), r, rng=default_rng(seed)))
    if np.allclose(Ea, expected, rtol=1e-9, atol=1e-9):
        return ("your analysis equals dalib's enkf_analysis for the same random draws: "
                "each member got its own perturbed observation.")
    uncentred = to_numpy(enkf_analysis(E, y, Matrix(H), r, rng=default_rng(seed),
                                       center=False))
    if np.allclose(Ea, uncentred, rtol=1e-9, atol=1e-9):
        raise Wrong("right, except that the perturbations are not centred: subtract their "
                    "mean over the members, so the analysis mean is the Kalman update of the "
                    "forecast mean.")
    X = E - E.mean(0)
    Y = X @ H.T
    K = X.T @ Y @ np.linalg.inv(Y.T @ Y + (N - 1) * r * np.eye(p))
    if np.allclose(Ea, E + (y - E @ H.T) @ K.T, rtol=1e-9, atol=1e-9):
        raise Wrong("every member was updated with the same observation y: add a perturbation "
                    "sqrt(r) * z_n to y for each member n, with z drawn by "
                    "rng.standard_normal((N, p)).")
    K_N = X.T @ Y @ np.linalg.inv(Y.T @ Y + N * r * np.eye(p))
    Z = to_numpy(default_rng(seed).standard_normal((N, p)))
    Z = Z - Z.mean(0)
    D = y + math.sqrt(r) * Z - E @ H.T
    if np.allclose(Ea, E + D @ K_N.T, rtol=1e-9, atol=1e-9):
        raise Wrong("the gain mixes normalisations: with X^T Y and Y^T Y (no 1/(N - 1)), R "
                    "must be multiplied by N - 1, not N.")
    if np.allclose(Ea, E + (y + r * Z - E @ H.T) @ K.T, rtol=1e-9, atol=1e-9):
        raise Wrong("the perturbations have variance r^2: scale the standard normal draws by "
                    "sqrt(r), the standard deviation.")
    if np.allclose(Ea.mean(0), expected.mean(0), rtol=1e-9, atol=1e-9):
        raise Wrong("the analysis mean is right but the members are not: did you draw the "
                    "perturbations with one call rng.standard_normal((N, p)), before any "
                    "other random draw?")
    raise Wrong("the analysis differs from E_n + K(y + eta_n - H E_n) with "
                "K = X^T Y (Y^T Y + (N - 1) R)^{-1}; check the gain and the innovation signs.")


# ----------------------------------------------------------------------------------------
# Exercise 3: tuning the inflation
# ----------------------------------------------------------------------------------------

#: The experiment of the inflation exercise: every other Lorenz-96 variable observed, an
#: LETKF with 10 members and Gaspari-Cohn half-width 5.
INFLATION_SETUP = {"J": 300, "burn_in": 100, "N": 10, "radius": 5.0, "twin_seed": 3,
                   "filter_seed": 13}


def inflation_twin():
    """The twin experiment of the inflation exercise (Lorenz-96, every other variable seen)."""
    ssm = setups.lorenz96(obs_every=2)
    return ssm.simulate(INFLATION_SETUP["J"], rng=default_rng(INFLATION_SETUP["twin_seed"]))


def _spread_error_ratio(inflation, twin):
    s = INFLATION_SETUP
    method = LETKF(N=s["N"], radius=s["radius"], inflation=inflation)
    with quietly():
        res = assimilate(method, twin, rng=default_rng(s["filter_seed"]),
                         burn_in=s["burn_in"], store_ensembles=True)
    ratio = float(metrics.spread_error_ratio(res.ensembles_a, twin.x, burn_in=s["burn_in"]))
    return ratio, res.rmse()


@exercise("ch03 inflation")
def check_inflation(inflation):
    """Check an inflation factor whose spread-error ratio is within 15% of 1.

    The experiment is :func:`inflation_twin` and ``LETKF(N=10, radius=5.0, inflation=...)``
    run with ``rng=default_rng(13)`` and ``burn_in=100`` (see :data:`INFLATION_SETUP`).
    """
    if callable(inflation):
        raise Unfinished("pass the inflation factor you chose (a number), not a function.")
    try:
        alpha = float(inflation)
    except (TypeError, ValueError):
        raise Wrong(f"expected a number such as 1.1, got {type(inflation).__name__}.") from None
    if not math.isfinite(alpha) or alpha <= 0:
        raise Wrong(f"the inflation factor must be a positive number, got {alpha}.")
    if alpha < 1:
        raise Wrong(f"{alpha} < 1 deflates the ensemble, making an over-confident filter "
                    "worse; try factors a little above 1.")
    if alpha > 2:
        raise Wrong(f"{alpha} multiplies the spread by {alpha:g} at every analysis: far too "
                    "much; try factors between 1 and 1.2.")
    try:
        ratio, rmse = _spread_error_ratio(alpha, inflation_twin())
    except FilterDivergenceError:
        raise Wrong(f"with inflation {alpha} the filter diverged (its mean became NaN); "
                    "try another factor.") from None
    if ratio < 0.85:
        raise Wrong(f"with inflation {alpha} the spread-error ratio is {ratio:.2f}: the "
                    "ensemble is over-confident (too little spread). Inflate more.")
    if ratio > 1.15:
        raise Wrong(f"with inflation {alpha} the spread-error ratio is {ratio:.2f}: the "
                    "ensemble is under-confident (too much spread). Inflate less.")
    return (f"inflation {alpha:g} gives a spread-error ratio of {ratio:.2f} and an RMSE of "
            f"{rmse:.2f}: the spread is an honest estimate of the error.")
