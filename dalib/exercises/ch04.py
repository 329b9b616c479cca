"""Self-checks for the exercises of chapter 4, "Particle filters"."""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from ._framework import Unfinished, Wrong, call_answer, exercise

__all__ = ["check_systematic", "check_ess", "check_ess_fraction", "check_regularize"]


def _expected_systematic(w, u):
    """Reference systematic resampling: particle k once per point (n + u)/N in its slice."""
    N = w.shape[0]
    cdf = np.cumsum(w)
    points = (np.arange(N) + u) / N
    return np.clip(np.searchsorted(cdf, points, side="right"), 0, N - 1)


def _weights(seed, N, spread):
    rng = np.random.default_rng(seed)
    logw = spread * rng.standard_normal(N)
    w = np.exp(logw - logw.max())
    return w / w.sum()


def _as_indices(out, N):
    try:
        idx = np.asarray(to_numpy(out))
    except Exception:  # noqa: BLE001 - anything that is not an array
        raise Wrong(f"expected an array of N = {N} indices, got {type(out).__name__}.") from None
    if idx.shape != (N,):
        raise Wrong(f"expected N = {N} indices (shape ({N},)), got shape {idx.shape}.")
    if not np.issubdtype(idx.dtype, np.integer):
        if np.issubdtype(idx.dtype, np.floating) and np.all(idx == np.round(idx)):
            idx = idx.astype(int)
        else:
            raise Wrong("the indices should be integers (the particles to copy), e.g. from "
                        "np.searchsorted.")
    if idx.min() < 0 or idx.max() >= N:
        raise Wrong(f"indices must lie in 0..{N - 1}, got values from {idx.min()} to "
                    f"{idx.max()}. Did the last point fall past the end of the cumulative "
                    "weights? Clip the indices.")
    return idx


@exercise("ch04 systematic resampling")
def check_systematic(systematic):
    """Check ``systematic(w, u)``: N indices chosen by the points (n + u)/N, n = 0..N-1."""
    cases = [(0, 10, 1.0, 0.37), (1, 50, 2.0, 0.81), (2, 200, 3.0, 0.05), (3, 7, 0.0, 0.5)]
    for seed, N, spread, u in cases:
        w = _weights(seed, N, spread)
        idx = _as_indices(call_answer(systematic, w.copy(), u), N)
        counts = np.bincount(idx, minlength=N)
        expected = np.bincount(_expected_systematic(w, u), minlength=N)
        if np.array_equal(counts, expected):
            continue
        if np.any(counts < np.floor(N * w) - 1e-9) or np.any(counts > np.ceil(N * w) + 1e-9):
            k = int(np.argmax(np.abs(counts - N * w)))
            raise Wrong(f"particle {k} with N w = {N * w[k]:.2f} was copied {counts[k]} "
                        "times; systematic resampling copies particle k either "
                        "floor(N w_k) or ceil(N w_k) times. Use ONE uniform u shared by the "
                        "N points (n + u)/N, not N independent uniforms.")
        raise Wrong("the counts stay within floor/ceil of N w but differ from systematic "
                    "resampling with this u: use the points (n + u)/N, n = 0..N-1, and pick "
                    "for each point the first particle whose cumulative weight exceeds it.")
    return ("your counts match systematic resampling, and every particle is copied "
            "floor(N w) or ceil(N w) times.")


def _reference_ess(logw):
    w = np.exp(logw - logw.max())
    w /= w.sum()
    return 1.0 / np.sum(w * w)


@exercise("ch04 effective sample size")
def check_ess(ess):
    """Check ``ess(logw)``: the effective sample size of unnormalised log-weights."""
    rng = np.random.default_rng(4)
    base = 2.0 * rng.standard_normal(20)
    cases = [
        (np.zeros(8), "equal weights"),
        (base, "random log-weights"),
        (base - 1000.0, "log-weights near -1000 (exp underflows to 0)"),
        (base + 1000.0, "log-weights near +1000 (exp overflows to inf)"),
        (np.r_[0.0, np.full(9, -800.0)], "one particle with all the weight"),
    ]
    for logw, what in cases:
        out = call_answer(ess, logw.copy())
        try:
            value = float(to_numpy(out))
        except (TypeError, ValueError):
            raise Wrong(f"ess should return one number, got {type(out).__name__}.") from None
        expected = _reference_ess(logw)
        N = logw.shape[0]
        if not math.isfinite(value):
            raise Wrong(f"for {what} you returned {value}: subtract the largest log-weight "
                        "before exponentiating (the log-sum-exp trick).")
        if math.isclose(value, expected / N, rel_tol=1e-9):
            raise Wrong("you returned the fraction ESS / N; return the ESS itself, "
                        "1 / sum(w_n^2), between 1 and N.")
        if not math.isclose(value, expected, rel_tol=1e-9):
            raise Wrong(f"for {what} the ESS is {expected:.4g}, you returned {value:.4g}. "
                        "Normalise the weights to sum to one before squaring them.")
    return "your ESS is exact and robust to underflow and overflow."


@exercise("ch04 ESS in high dimension")
def check_ess_fraction(c):
    """Check the per-dimension factor c of the large-N ESS fraction ESS / N ~ c^d."""
    if callable(c):
        raise Unfinished("pass the number you estimated, not the function.")
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise Wrong(f"expected a number, got {type(c).__name__}.") from None
    if not math.isfinite(c) or c <= 0:
        raise Wrong("the factor c should be a positive number.")
    if 1.4 <= c <= 1.8:
        raise Wrong(f"{c:.2f} > 1 looks like the growth factor 1/c of the number of "
                    "particles; the check wants c, the factor by which ESS / N shrinks "
                    "with each added dimension.")
    if c >= 1:
        raise Wrong("c should be below 1: the ESS fraction shrinks as d grows.")
    if not 0.58 <= c <= 0.70:
        raise Wrong(f"c = {c:.2f} is outside the expected range 0.58-0.70. Use many "
                    "particles (10^5) so that ESS / N has reached its limit, several "
                    "draws of the truth and observation for each d, and fit "
                    "log(ESS / N) = d log(c).")
    need = 10 / 0.62 ** 40
    return (f"c = {c:.2f}. In closed form, log(ESS/N) averages d (log(sqrt(3)/2) - 1/3): "
            f"c = 0.62 (0.67 for the arithmetic mean over observations). ESS >= N/2 already "
            f"fails for typical observations at d = 2, and ESS >= 10 at d = 40 needs about "
            f"{need:.0e} particles.")


def _weighted_cov(E, w, unbiased=True):
    mean = w @ E
    C = ((E - mean) * w[:, None]).T @ (E - mean)
    return C / (1 - w @ w) if unbiased else C


def _regularize_variants(E, w, idx, z, h):
    """The reference answer and the typical mistakes, each with its hint."""
    L = np.linalg.cholesky(_weighted_cov(E, w))
    N = E.shape[0]
    right = E[idx] + h * z @ L.T
    return right, [
        (E[idx] + h * z @ np.linalg.cholesky(np.cov(E.T)).T,
         "the kernel covariance must be the WEIGHTED covariance of the particles "
         "(weights w), not the plain sample covariance."),
        (E[idx] + h * z @ np.linalg.cholesky(_weighted_cov(E, w, unbiased=False)).T,
         "divide the weighted covariance by 1 - sum(w^2), so that it is unbiased."),
        (E[idx] + h * z @ L,
         "with C = L L^T the draws z_n L^T (rows z @ L.T) have covariance C; z @ L does not."),
        (E[idx] + h**2 * z @ L.T,
         "the bandwidth h scales the standard deviation: multiply by h, not h^2."),
        ((E + h * z @ L.T)[idx],
         "jitter AFTER resampling, so that the copies of a particle get different noise."),
        (E[np.arange(N)] + h * z @ L.T,
         "resample first: start from the particles E[idx], then add the jitter."),
    ]


@exercise("ch04 regularised resampling")
def check_regularize(regularize):
    """Check ``regularize(E, w, idx, z, h)``: eq. (eq-ch04-regularised) with given draws."""
    gen = np.random.default_rng(21)
    for N, d in ((50, 3), (200, 2)):
        E = gen.standard_normal((N, d)) @ gen.standard_normal((d, d)) + 3.0
        w = _weights(int(gen.integers(1000)), N, 1.5)
        idx = _expected_systematic(w, float(gen.uniform()))
        z = gen.standard_normal((N, d))
        h = 0.4
        out = call_answer(regularize, E.copy(), w.copy(), idx.copy(), z.copy(), h)
        try:
            out = np.asarray(to_numpy(out), dtype=float)
        except Exception:  # noqa: BLE001 - anything that is not an array
            raise Wrong(f"expected an array of shape ({N}, {d}), got "
                        f"{type(out).__name__}.") from None
        if out.shape != (N, d):
            raise Wrong(f"expected the new particles, shape ({N}, {d}), got {out.shape}.")
        right, mistakes = _regularize_variants(E, w, idx, z, h)
        if np.allclose(out, right, atol=1e-8):
            continue
        for candidate, hint in mistakes:
            if np.allclose(out, candidate, atol=1e-8):
                raise Wrong(hint)
        raise Wrong("not yet: take the particles E[idx], then add h * z @ L.T, where L is the "
                    "Cholesky factor of the weighted covariance sum_n w_n (x_n - m)(x_n - m)^T "
                    "/ (1 - sum w_n^2) with the weighted mean m = w @ E.")
    return ("your regularised resampling matches the formula: resampled particles plus kernels "
            "of bandwidth h scaled by the weighted covariance.")

