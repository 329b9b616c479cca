"""Property-based tests: linear-Gaussian identities and the metrics, for random inputs.

Hypothesis draws the sizes, a seed for the random matrices and the scales; every property
is an identity that holds exactly (up to round-off) or a limit with a known rate, checked
against an independent computation (dense Bayes formulas, Gaussian conditioning, closed
forms, numerical integration).
"""

import math

import numpy as np
import pytest
from conftest import _skip_reason, npy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import dalib
from dalib import metrics
from dalib.da import etkf_analysis, kalman_filter, kalman_smoother, kf_analysis
from dalib.models import LinearModel
from dalib.observations import Matrix
from dalib.ssm import StateSpaceModel


@pytest.fixture(params=["numpy", "array_api_strict"])
def xp(request):
    """NumPy and array-api-strict only: JAX would compile anew for every drawn shape."""
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    return dalib.get_namespace(request.param)


SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

dims = st.integers(min_value=1, max_value=4)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
scales = st.floats(min_value=0.05, max_value=5.0)


def _spd(gen, d, scale):
    G = gen.standard_normal((d, d))
    return scale * (G @ G.T / d + 0.1 * np.eye(d))


def _problem(d, p, seed, c_scale, r_scale):
    gen = np.random.default_rng(seed)
    m, y = gen.standard_normal(d), gen.standard_normal(p)
    C, R = _spd(gen, d, c_scale), _spd(gen, p, r_scale)
    H = gen.standard_normal((p, d))
    return m, C, y, H, R


def _gauss_logpdf(v, S):
    return -0.5 * (v @ np.linalg.solve(S, v) + np.linalg.slogdet(S)[1]
                   + len(v) * math.log(2 * math.pi))


# ----------------------------------------------------------------------------------------
# Kalman analysis
# ----------------------------------------------------------------------------------------


@SETTINGS
@given(d=dims, p=dims, seed=seeds, c_scale=scales, r_scale=scales)
def test_kf_analysis_is_the_bayes_posterior(xp, d, p, seed, c_scale, r_scale):
    """Information form: C_a^{-1} = C^{-1} + H^T R^{-1} H, m_a = C_a (C^{-1} m + H^T R^{-1} y)."""
    m, C, y, H, R = _problem(d, p, seed, c_scale, r_scale)
    m_a, C_a, loglik = kf_analysis(*(xp.asarray(a) for a in (m, C, y, H, R)))
    P = np.linalg.inv(np.linalg.inv(C) + H.T @ np.linalg.solve(R, H))
    mean = P @ (np.linalg.solve(C, m) + H.T @ np.linalg.solve(R, y))
    np.testing.assert_allclose(npy(C_a), P, rtol=1e-7, atol=1e-9 * np.abs(P).max())
    np.testing.assert_allclose(npy(m_a), mean, rtol=1e-7, atol=1e-8)
    # the evidence of y is N(y; H m, H C H^T + R)
    want = _gauss_logpdf(y - H @ m, H @ C @ H.T + R)
    assert float(loglik) == pytest.approx(want, rel=1e-9, abs=1e-9)


@SETTINGS
@given(d=dims, p=dims, seed=seeds, c_scale=scales, r_scale=scales)
def test_joseph_form_equals_the_short_form(d, p, seed, c_scale, r_scale):
    """(I - KH) C (I - KH)^T + K R K^T = (I - KH) C for the optimal gain."""
    m, C, y, H, R = _problem(d, p, seed, c_scale, r_scale)
    _, C_a, _ = kf_analysis(m, C, y, H, R)
    K = C @ H.T @ np.linalg.inv(H @ C @ H.T + R)
    short = (np.eye(d) - K @ H) @ C
    np.testing.assert_allclose(C_a, short, rtol=1e-7, atol=1e-9 * np.abs(C).max())
    np.testing.assert_allclose(C_a, C_a.T, rtol=0, atol=1e-12 * np.abs(C).max())
    assert np.linalg.eigvalsh(C_a).min() > -1e-10 * np.abs(C).max()


@SETTINGS
@given(d=dims, p=dims, seed=seeds, r_scale=scales)
def test_kf_analysis_shrinks_the_variance_of_every_combination(d, p, seed, r_scale):
    """C - C_a = K S K^T is positive semi-definite: observing never adds uncertainty."""
    m, C, y, H, R = _problem(d, p, seed, 1.0, r_scale)
    _, C_a, _ = kf_analysis(m, C, y, H, R)
    assert np.linalg.eigvalsh(C - C_a).min() > -1e-10


@SETTINGS
@given(d=st.integers(1, 3), p=dims, seed=seeds, N=st.integers(3, 8), r_scale=scales)
def test_etkf_mean_is_the_kalman_update_of_the_ensemble_moments(xp, d, p, seed, N,
                                                                 r_scale):
    """The ETKF analysis mean and covariance are the Kalman update of the sample moments."""
    gen = np.random.default_rng(seed)
    E = gen.standard_normal((N, d)) * np.linspace(0.5, 2.0, d) + 1.0
    H = gen.standard_normal((p, d))
    y = gen.standard_normal(p)
    R = _spd(gen, p, r_scale)
    Ea = npy(etkf_analysis(xp.asarray(E), xp.asarray(y), Matrix(xp.asarray(H)),
                           xp.asarray(R)))
    xbar = E.mean(0)
    C = np.cov(E.T, ddof=1).reshape(d, d)
    K = C @ H.T @ np.linalg.pinv(H @ C @ H.T + R)
    np.testing.assert_allclose(Ea.mean(0), xbar + K @ (y - H @ xbar), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.cov(Ea.T, ddof=1).reshape(d, d), (np.eye(d) - K @ H) @ C,
                               rtol=1e-7, atol=1e-8)


# ----------------------------------------------------------------------------------------
# Kalman filter and RTS smoother against dense Gaussian conditioning
# ----------------------------------------------------------------------------------------


def _joint(A, H, Q, R, m0, C0, J):
    """Mean and covariance of (x_0..x_J, y_1..y_J) of the linear-Gaussian model."""
    d, p = A.shape[0], H.shape[0]
    n = (J + 1) * d
    # x_j = A^j x_0 + sum_{i<j} A^{j-1-i} xi_i: a linear map of (x_0, xi_0..xi_{J-1})
    L = np.zeros((n, n))
    powers = [np.linalg.matrix_power(A, k) for k in range(J + 1)]
    for j in range(J + 1):
        L[j * d:(j + 1) * d, :d] = powers[j]
        for i in range(j):
            L[j * d:(j + 1) * d, (i + 1) * d:(i + 2) * d] = powers[j - 1 - i]
    noise = np.zeros((n, n))
    noise[:d, :d] = C0
    for i in range(J):
        noise[(i + 1) * d:(i + 2) * d, (i + 1) * d:(i + 2) * d] = Q
    Cx = L @ noise @ L.T
    mx = np.concatenate([powers[j] @ m0 for j in range(J + 1)])
    G = np.zeros((J * p, n))
    for j in range(1, J + 1):
        G[(j - 1) * p:j * p, j * d:(j + 1) * d] = H
    Cy = G @ Cx @ G.T + np.kron(np.eye(J), R)
    return mx, Cx, G, Cy


@SETTINGS
@given(d=st.integers(1, 3), p=st.integers(1, 3), J=st.integers(1, 4), seed=seeds,
       q=scales, r=scales)
def test_rts_smoother_equals_dense_gaussian_conditioning(xp, d, p, J, seed, q, r):
    gen = np.random.default_rng(seed)
    A = 0.9 * np.linalg.qr(gen.standard_normal((d, d)))[0]
    H = gen.standard_normal((p, d))
    Q, R, C0 = _spd(gen, d, q), _spd(gen, p, r), _spd(gen, d, 1.0)
    m0 = gen.standard_normal(d)
    y = gen.standard_normal((J, p))
    ssm = StateSpaceModel(M=LinearModel(xp.asarray(A)), h=Matrix(xp.asarray(H)),
                          R=xp.asarray(R), m0=xp.asarray(m0), C0=xp.asarray(C0),
                          Q=xp.asarray(Q))
    mx, Cx, G, Cy = _joint(A, H, Q, R, m0, C0, J)
    gain = Cx @ G.T @ np.linalg.inv(Cy)
    post_m = mx + gain @ (y.reshape(-1) - G @ mx)
    post_C = Cx - gain @ G @ Cx
    smooth = kalman_smoother(ssm, xp.asarray(y))
    np.testing.assert_allclose(npy(smooth.m).reshape(-1), post_m, rtol=1e-7, atol=1e-8)
    for j in range(J + 1):
        block = post_C[j * d:(j + 1) * d, j * d:(j + 1) * d]
        np.testing.assert_allclose(npy(smooth.C)[j], block, rtol=1e-6, atol=1e-8)
    # the filter's log-likelihood is the evidence log N(y; G mx, Cy)
    ll = float(kalman_filter(ssm, xp.asarray(y)).loglik)
    assert ll == pytest.approx(_gauss_logpdf(y.reshape(-1) - G @ mx, Cy), rel=1e-8, abs=1e-8)


# ----------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------

shapes = st.tuples(st.integers(1, 5), st.integers(1, 6))


@SETTINGS
@given(shape=shapes, seed=seeds, equal=st.booleans())
def test_rmse_is_non_negative_and_zero_only_for_equal_arrays(xp, shape, seed, equal):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal(shape)
    e = x.copy() if equal else x + gen.standard_normal(shape)
    got = npy(metrics.rmse(xp.asarray(e), xp.asarray(x)))
    assert got.shape == shape[:-1]
    assert np.all(got >= 0)
    assert np.all(got == 0) if equal else np.all(got > 0)
    np.testing.assert_allclose(got, np.sqrt(np.mean((e - x) ** 2, axis=-1)), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(mu=st.floats(-3, 3), sigma=st.floats(0.1, 3.0), x=st.floats(-5, 5))
def test_crps_gaussian_equals_the_integral_definition(mu, sigma, x):
    """CRPS = int (F(z) - 1{z >= x})^2 dz for the Gaussian CDF F."""
    F = stats.norm(mu, sigma).cdf
    below, _ = integrate.quad(lambda z: F(z) ** 2, -np.inf, x)
    above, _ = integrate.quad(lambda z: (1 - F(z)) ** 2, x, np.inf)
    got = float(metrics.crps_gaussian(mu, sigma, np.asarray(x)))
    assert got == pytest.approx(below + above, rel=1e-6, abs=1e-9)
    assert got >= 0


@settings(max_examples=30, deadline=None)
@given(mu=st.floats(-3, 3), x=st.floats(-5, 5))
def test_crps_gaussian_tends_to_the_absolute_error(mu, x):
    """As sigma -> 0 the CRPS tends to |x - mu|, its value at sigma = 0."""
    exact = float(metrics.crps_gaussian(mu, 0.0, np.asarray(x)))
    assert exact == abs(x - mu)
    near = float(metrics.crps_gaussian(mu, 1e-6, np.asarray(x)))
    assert near == pytest.approx(abs(x - mu), abs=1e-6)


@SETTINGS
@given(mu=st.floats(-2, 2), sigma=st.floats(0.2, 3.0), x=st.floats(-4, 4))
def test_crps_of_a_large_ensemble_approaches_the_gaussian_crps(xp, mu, sigma, x):
    """Members at the Gaussian quantiles: the ensemble CRPS converges like O(1/N)."""
    N = 4000
    q = stats.norm.ppf((np.arange(N) + 0.5) / N)
    E = xp.asarray((mu + sigma * q)[:, None])
    ens = float(npy(metrics.crps_ensemble(E, xp.asarray([x])))[0])
    exact = float(metrics.crps_gaussian(mu, sigma, np.asarray(x)))
    assert ens == pytest.approx(exact, abs=5 * sigma / N ** 0.9)


@SETTINGS
@given(J=st.integers(1, 12), N=st.integers(1, 6), d=st.integers(1, 4), seed=seeds,
       burn=st.integers(0, 11))
def test_rank_histogram_counts_every_kept_time_and_component(xp, J, N, d, seed, burn):
    burn = burn % J
    gen = np.random.default_rng(seed)
    E = gen.standard_normal((J, N, d))
    x = gen.standard_normal((J, d))
    counts = npy(metrics.rank_histogram(xp.asarray(E), xp.asarray(x), burn_in=burn))
    assert counts.shape == (N + 1,)
    assert counts.sum() == (J - burn) * d
    ranks = (E[burn:] < x[burn:, None, :]).sum(1).ravel()
    np.testing.assert_array_equal(counts, np.bincount(ranks, minlength=N + 1))
