"""Self-checks for the exercises of chapter 8, "Learning a forecast model from a reanalysis"."""

from __future__ import annotations

import numpy as np

from ..learning import skill, surrogates
from ._framework import Wrong, as_float_array, call_answer, exercise

__all__ = ["check_random_feature_ridge", "check_spectrum", "check_valid_time"]


@exercise("ch08 valid time")
def check_valid_time(valid_time):
    """Check ``valid_time(forecast, truth, dt, std)`` -> valid times in Lyapunov times."""
    rng = np.random.default_rng(3)
    dt, std, n_lead = 0.05, 3.6, 40
    truth = rng.standard_normal((n_lead + 1, 5, 8))
    rates = np.array([0.04, 0.08, 0.11, 0.2, 0.0])
    noise = rng.standard_normal((n_lead + 1, 5, 8))
    noise /= np.sqrt(np.mean(noise**2, axis=-1, keepdims=True))
    forecast = truth + std * rates[None, :, None] * np.arange(n_lead + 1)[:, None, None] * noise
    want = np.asarray(skill.valid_time(forecast, truth, dt, std=std))
    got = as_float_array(call_answer(valid_time, forecast.copy(), truth.copy(), dt, std),
                         "valid_time")
    if got.shape != want.shape:
        raise Wrong(f"return one valid time per forecast, shape {want.shape}; got shape "
                    f"{got.shape}.")
    if np.allclose(got, want / skill.LYAPUNOV_EXPONENT_L96):
        raise Wrong("those are time units: multiply by the Lyapunov exponent 1.68 to count "
                    "Lyapunov times.")
    if np.allclose(got, want / (dt * skill.LYAPUNOV_EXPONENT_L96)):
        raise Wrong("those are numbers of steps: multiply by dt and by the Lyapunov "
                    "exponent 1.68.")
    if np.isclose(got, want - dt * skill.LYAPUNOV_EXPONENT_L96, atol=1e-9)[:4].all():
        raise Wrong("off by one step: the valid time is the first lead whose normalised "
                    "RMSE exceeds 0.5, not the last one below it.")
    if not np.allclose(got, want, atol=1e-9):
        raise Wrong(f"expected {np.round(want, 3).tolist()}, got "
                    f"{np.round(got, 3).tolist()}. Normalise the RMSE over the sites by "
                    "std, find the first lead above 0.5 (the last lead if none).")
    return "your valid times agree with dalib.learning.skill.valid_time."


@exercise("ch08 random-feature ridge regression")
def check_random_feature_ridge(fit):
    """Check ``fit(Z, Y, W, b, lam)`` -> ridge coefficients of random Fourier features."""
    rng = np.random.default_rng(5)
    n, m, D, lam = 200, 3, 40, 0.1
    Z, Y = rng.standard_normal((n, m)), rng.standard_normal(n)
    W, b = rng.standard_normal((m, D)), rng.uniform(0, 2 * np.pi, D)
    Phi = np.asarray(surrogates.random_fourier_features(Z, W, b))
    want = np.asarray(surrogates.ridge(Phi, Y, lam))
    got = as_float_array(call_answer(fit, Z.copy(), Y.copy(), W.copy(), b.copy(), lam),
                         "fit")
    if got.shape != (D,):
        raise Wrong(f"return one coefficient per feature, shape ({D},); got {got.shape}.")
    if np.allclose(got, np.asarray(surrogates.ridge(Phi / np.sqrt(2 / D), Y, lam)),
                   rtol=1e-6):
        raise Wrong("the features need the factor sqrt(2 / D) in front of the cosine.")
    if np.allclose(got, np.linalg.lstsq(Phi, Y, rcond=None)[0], rtol=1e-6):
        raise Wrong("that is least squares: add lam times the identity to Phi^T Phi.")
    if not np.allclose(got, want, rtol=1e-6, atol=1e-9):
        raise Wrong("theta should solve (Phi^T Phi + lam I) theta = Phi^T Y with "
                    "Phi = sqrt(2/D) cos(Z W + b).")
    return "your coefficients equal the closed-form ridge solution."


@exercise("ch08 power spectrum")
def check_spectrum(spectrum):
    """Check ``spectrum(x)`` -> time-averaged spatial power spectrum of ``x`` (n, d)."""
    rng = np.random.default_rng(9)
    x = 2.0 + rng.standard_normal((30, 16)) * np.linspace(0.5, 2, 16)
    want = np.asarray(skill.climatology(x).spectrum)
    got = as_float_array(call_answer(spectrum, x.copy()), "spectrum")
    if got.shape != want.shape:
        raise Wrong(f"use rfft over the sites: {want.shape[0]} wavenumbers 0..d/2; got "
                    f"shape {got.shape}.")
    if np.allclose(got[1:], want[1:], rtol=1e-8) and not np.isclose(got[0], want[0]):
        raise Wrong("subtract the climatological mean first: P_0 should be the variance "
                    "of the site average, not the squared mean.")
    for factor, hint in ((16, "divide |x_hat|^2 by d^2, not d."),
                         (256, "divide |x_hat|^2 by d^2.")):
        if np.allclose(got, want * factor, rtol=1e-8):
            raise Wrong(hint)
    if not np.allclose(got, want, rtol=1e-8, atol=1e-12):
        raise Wrong("P_k is the time average of |DFT(x - mean)_k|^2 / d^2, with the mean "
                    "over all times and sites.")
    return "your spectrum agrees with dalib.learning.skill.climatology."
