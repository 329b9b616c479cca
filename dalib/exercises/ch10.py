"""Self-checks for the exercises of chapter 10, "Data assimilation with learned models"."""

from __future__ import annotations

import numpy as np

from ..multifidelity import mfmc_mean, mfmc_variance
from ._framework import Wrong, as_float_array, call_answer, exercise

__all__ = ["check_mfmc", "check_mfmc_variance", "check_closeness_bound"]


def _scalar(value, name):
    out = as_float_array(value, name)
    if out.size != 1:
        raise Wrong(f"{name} should return one number, got an array of shape {out.shape}.")
    return float(out.reshape(()))


@exercise("ch10 multifidelity estimator")
def check_mfmc(mfmc):
    """Check ``mfmc(y_hi, y_lo, alpha)`` against :func:`dalib.multifidelity.mfmc_mean`."""
    rng = np.random.default_rng(10)
    z = rng.standard_normal(60)
    y_hi = 1.0 + 2.0 * z[:6]
    y_lo = [0.5 + 1.8 * z[:20] + 0.3 * rng.standard_normal(20),
            -1.0 + 1.2 * z + 0.8 * rng.standard_normal(60)]
    alpha = [0.9, 0.6]
    got = _scalar(call_answer(mfmc, y_hi.copy(), [y.copy() for y in y_lo], list(alpha)),
                  "mfmc")
    want = float(mfmc_mean(y_hi, y_lo, alpha))
    flat = np.mean(y_hi) + sum(a * (np.mean(y) - np.mean(y[:6]))
                               for a, y in zip(alpha, y_lo))
    if np.isclose(got, flat) and not np.isclose(flat, want):
        raise Wrong("the second mean of model k runs over the inputs of the model before "
                    "it, the first N_{k-1} (N_0 = N_hi), not always the first N_hi.")
    minus = np.mean(y_hi) - sum(a * (np.mean(y) - np.mean(y[:n]))
                                for a, y, n in zip(alpha, y_lo, (6, 20)))
    if np.isclose(got, minus):
        raise Wrong("check the sign: add alpha_k (m_k - m'_k), the mean over all N_k "
                    "inputs minus the mean over the first N_{k-1}.")
    if np.isclose(got, np.mean(y_hi)):
        raise Wrong("the low-fidelity corrections are missing: the estimate equals the "
                    "high-fidelity sample mean.")
    if not np.isclose(got, want, rtol=1e-10):
        raise Wrong(f"expected {want:.6f}, got {got:.6f}.")
    return "your estimator matches eq. (10)."


@exercise("ch10 variance of the multifidelity estimator")
def check_mfmc_variance(mfmc_var):
    """Check ``mfmc_var(sigma_hi, rho, N_hi, N)`` against eq. (11)."""
    cases = ((2.0, [0.9], 5, [40]), (1.5, [0.95, 0.7], 4, [10, 200]),
             (0.5, [0.99, 0.9, 0.5], 2, [8, 30, 31]))
    for sigma_hi, rho, N_hi, N in cases:
        got = _scalar(call_answer(mfmc_var, sigma_hi, list(rho), N_hi, list(N)), "mfmc_var")
        want = float(mfmc_variance(sigma_hi, [1.0] * len(rho), rho, N_hi, N))
        flat = sigma_hi**2 / N_hi - sum((1 / N_hi - 1 / n) * r**2 * sigma_hi**2
                                        for r, n in zip(rho, N))
        if len(rho) > 1 and np.isclose(got, flat) and not np.isclose(flat, want):
            raise Wrong("the factor of model k is 1/N_{k-1} - 1/N_k, with the sample "
                        "size of the model before it, not 1/N_hi - 1/N_k.")
        if np.isclose(got, sigma_hi**2 / N_hi):
            raise Wrong("that is plain Monte Carlo's variance: subtract the reduction "
                        "of each low-fidelity model.")
        no_sq = sigma_hi**2 / N_hi - sum((1 / a - 1 / b) * r * sigma_hi**2 for r, a, b
                                         in zip(rho, [N_hi, *N], N))
        if np.isclose(got, no_sq):
            raise Wrong("the reduction is proportional to rho_k squared.")
        if not np.isclose(got, want, rtol=1e-10):
            raise Wrong(f"for sigma_hi = {sigma_hi}, rho = {rho}, N_hi = {N_hi}, N = {N} "
                        f"eq. (11) gives {want:.6f}, got {got:.6f}.")
    return "your variance matches eq. (11)."


@exercise("ch10 closeness bound")
def check_closeness_bound(closeness_bound):
    """Check ``closeness_bound(A, K, H, eps)`` on a contracting and an expanding case."""
    rng = np.random.default_rng(11)
    d = 4
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = 1.1 * Q @ np.diag([1.0, 0.9, 0.8, 0.5])
    H = np.eye(d)
    K = np.diag([0.6, 0.5, 0.7, 0.4])
    eps = 0.2
    got = _scalar(call_answer(closeness_bound, A.copy(), K.copy(), H.copy(), eps),
                  "closeness_bound")
    I_KH = np.eye(d) - K @ H
    lam = np.linalg.norm(I_KH @ A, 2)
    want = np.linalg.norm(I_KH, 2) * eps / (1 - lam)
    if np.isclose(got, eps / (1 - lam)):
        raise Wrong("the model error enters through the analysis: multiply by |I - KH|.")
    split = np.linalg.norm(I_KH, 2) * np.linalg.norm(A, 2)
    if split < 1 and np.isclose(got, np.linalg.norm(I_KH, 2) * eps / (1 - split)):
        raise Wrong("lambda is the norm of the product (I - KH) A, smaller than the "
                    "product of the norms.")
    if not np.isclose(got, want, rtol=1e-8):
        raise Wrong(f"expected |I - KH| eps / (1 - lambda) = {want:.5f}, got {got:.5f}.")
    big = call_answer(closeness_bound, 3.0 * A, K.copy(), H.copy(), eps)
    if not np.isinf(_scalar(big, "closeness_bound")):
        raise Wrong("when lambda >= 1 the filter map does not contract and there is no "
                    "bound: return np.inf.")
    return "your bound matches the theorem."
