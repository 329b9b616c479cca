"""Particle filters (book sections 7.7-7.8)."""

import math

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import (
    BootstrapPF,
    KalmanFilter,
    OptimalPF,
    assimilate,
    bootstrap_log_weights,
    effective_sample_size,
    normalize_log_weights,
    optimal_pf_analysis,
    systematic_resample,
    weighted_mean,
    weighted_spread,
)


def test_systematic_resampling_counts_are_floor_or_ceil(xp):
    rng = np.random.default_rng(0)
    for seed in range(5):
        N = 50
        logw = rng.standard_normal(N) * 2
        w = np.exp(logw - logw.max())
        w /= w.sum()
        idx = npy(systematic_resample(dalib.asarray(logw, xp), dalib.default_rng(seed, xp)))
        assert idx.shape == (N,) and idx.min() >= 0 and idx.max() < N
        counts = np.bincount(idx, minlength=N)
        assert counts.sum() == N
        assert np.all(counts >= np.floor(N * w) - 1e-9)
        assert np.all(counts <= np.ceil(N * w) + 1e-9)


def test_effective_sample_size(xp):
    N = 8
    equal = dalib.asarray(np.zeros(N), xp)
    assert float(effective_sample_size(equal)) == pytest.approx(N)
    onehot = dalib.asarray(np.r_[0.0, np.full(N - 1, -1e4)], xp)
    assert float(effective_sample_size(onehot)) == pytest.approx(1.0)
    logw = np.random.default_rng(1).standard_normal(N)
    w = np.exp(logw) / np.exp(logw).sum()
    assert float(effective_sample_size(dalib.asarray(logw + 700.0, xp))) == pytest.approx(
        1 / np.sum(w**2), rel=1e-12)  # shift invariant, no overflow
    nw = npy(normalize_log_weights(dalib.asarray(logw, xp)))
    assert np.exp(nw).sum() == pytest.approx(1.0)


def test_bootstrap_weights_are_the_gaussian_likelihood(xp):
    rng = np.random.default_rng(2)
    E = rng.standard_normal((5, 3))
    y = rng.standard_normal(3)
    h = dalib.observations.Identity(3)
    logw = npy(bootstrap_log_weights(dalib.asarray(np.zeros(5), xp), dalib.asarray(E, xp),
                                     dalib.asarray(y, xp), h, 0.5))
    ll = -np.sum((y - E) ** 2, axis=1) / (2 * 0.5)
    np.testing.assert_allclose(logw, ll - np.log(np.sum(np.exp(ll))), atol=1e-12)
    m = npy(weighted_mean(dalib.asarray(E, xp), dalib.asarray(logw, xp)))
    np.testing.assert_allclose(m, np.exp(logw) @ E, atol=1e-12)
    s = float(weighted_spread(dalib.asarray(E, xp), dalib.asarray(logw, xp)))
    assert s == pytest.approx(math.sqrt(np.mean(np.exp(logw) @ (E - m) ** 2)))


def test_optimal_proposal_moments():
    # One step from a single point: proposal N(Mx + K(y - H Mx), (Q^-1 + H^T R^-1 H)^-1).
    H = np.array([[1.0, 0.0]])
    Q = np.array([[0.5, 0.1], [0.1, 0.3]])
    ME = np.tile([1.0, -1.0], (40000, 1))
    E, logw = optimal_pf_analysis(np.zeros(40000), ME, np.array([2.0]), H, Q, 0.2, rng=3)
    Sigma = np.linalg.inv(np.linalg.inv(Q) + H.T @ H / 0.2)
    mean = Sigma @ (np.linalg.inv(Q) @ [1.0, -1.0] + H.T @ [2.0] / 0.2)
    np.testing.assert_allclose(E.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(E.T), Sigma, atol=0.01)
    np.testing.assert_allclose(logw, -np.log(40000))  # equal predictions: equal weights


@pytest.mark.parametrize("method", [BootstrapPF, OptimalPF])
def test_particle_filters_converge_to_kalman_filter(method):
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.3, R=0.2)
    tw = ssm.simulate(10, rng=6)
    kf = assimilate(KalmanFilter(), tw, rng=0)
    sd = npy(kf.spread_a)[1:]
    err = {}
    for N in (30, 20000):
        res = assimilate(method(N=N), tw, rng=7)
        z = (npy(res.analysis) - npy(kf.analysis))[1:] / sd[:, None]
        err[N] = np.mean(z**2)
    # Monte-Carlo error: a weighted, resampled sample loses a few times N in efficiency.
    assert err[20000] < 20 / 20000
    assert err[30] > err[20000]


def test_particle_filter_runs_on_every_backend(xp):
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.3, R=0.2, xp=xp)
    tw = ssm.simulate(4, rng=dalib.default_rng(1, xp))
    for method in (BootstrapPF(N=50), OptimalPF(N=50)):
        res = assimilate(method, tw, rng=dalib.default_rng(2, xp), store_ensembles=True)
        assert res.ensembles_a.shape == (5, 50, 2) and res.log_weights.shape == (5, 50)
        assert np.all(np.isfinite(npy(res.analysis)))


def test_particle_filter_arguments():
    with pytest.raises(ValueError, match="threshold must lie in"):
        BootstrapPF(N=10, threshold=2.0)
    tw = dalib.setups.lorenz63().simulate(2, rng=1)
    with pytest.raises(ValueError, match="OptimalPF needs model noise"):
        assimilate(OptimalPF(N=10), tw, rng=1)


def test_kernel_bandwidth_is_silvermans_rule():
    from dalib.da import kernel_bandwidth
    assert kernel_bandwidth(100, 3) == pytest.approx((4 / 500) ** (1 / 7))
    assert kernel_bandwidth(1, 1) == pytest.approx((4 / 3) ** 0.2)
    with pytest.raises(ValueError, match="N"):
        kernel_bandwidth(0, 3)


@pytest.mark.parametrize("N", [20_000, 4])
def test_regularized_resampling_keeps_weighted_mean_and_covariance(xp, N):
    """Mean: the weighted mean; covariance: about (1 + h^2) times the weighted covariance.

    N = 20 000 > d uses the d-by-d factor of the weighted anomalies; N = 4 < d the N-by-N
    draws, checked over repeated resamplings.
    """
    from dalib.da import kernel_bandwidth, regularized_resample
    d, b = 5, 1.5
    gen = np.random.default_rng(3)
    E0 = gen.standard_normal((N, d)) @ np.diag([1.0, 2.0, 0.5, 1.5, 3.0]) + 1.0
    logw0 = -0.5 * np.sum((E0 - 2.0) ** 2, axis=1) / 4.0
    w = np.exp(logw0 - logw0.max())
    w /= w.sum()
    mean_w = w @ E0
    A = (E0 - mean_w) * np.sqrt(w / (1 - w @ w))[:, None]
    cov_w = A.T @ A
    h = b * kernel_bandwidth(N, d)
    E, logw = dalib.asarray(E0, xp), dalib.asarray(logw0, xp)
    reps = 1 if N > 1000 else 4000
    rng = dalib.default_rng(7, xp)
    draws = np.concatenate([npy(regularized_resample(E, logw, rng, bandwidth=b))
                            for _ in range(reps)])
    n = draws.shape[0]
    # The resampled points have the weighted covariance without the small-sample factor
    # 1 / (1 - sum w^2), the kernels add h^2 times the unbiased one: (1 + h^2) C for
    # large N.
    cov_new = (E0 - mean_w).T @ ((E0 - mean_w) * w[:, None]) + h**2 * cov_w
    se = np.sqrt(np.diag(cov_new) / n)
    assert np.all(np.abs(draws.mean(axis=0) - mean_w) < 5 * se + 1e-12)
    # Systematic resampling adds almost no variance: a 6 % tolerance on the covariance is
    # several standard errors for n >= 16 000 draws.
    np.testing.assert_allclose(np.cov(draws.T), cov_new, atol=0.06 * np.trace(cov_new) / d)


def test_regularized_resampling_without_bandwidth_is_systematic(xp):
    from dalib.da import regularized_resample
    gen = np.random.default_rng(4)
    E = dalib.asarray(gen.standard_normal((30, 2)), xp)
    logw = dalib.asarray(gen.standard_normal(30), xp)
    idx = npy(systematic_resample(logw, dalib.default_rng(5, xp)))
    out = npy(regularized_resample(E, logw, dalib.default_rng(5, xp), bandwidth=0.0))
    np.testing.assert_array_equal(out, npy(E)[idx])


def test_regularized_resampling_with_degenerate_weights_uses_equal_weights(xp):
    from dalib.da import regularized_resample
    gen = np.random.default_rng(6)
    E0 = gen.standard_normal((400, 2))
    logw = np.r_[0.0, np.full(399, -1e4)]  # one particle carries all the weight
    out = npy(regularized_resample(dalib.asarray(E0, xp), dalib.asarray(logw, xp),
                                   dalib.default_rng(1, xp), bandwidth=1.0))
    assert np.all(np.isfinite(out)) and np.std(out[:, 0]) > 0.1
    np.testing.assert_allclose(out.mean(axis=0), E0[0], atol=0.3)


def test_regularized_resampling_refuses_bad_bandwidth():
    from dalib.da import regularized_resample
    E, logw = np.zeros((4, 2)), np.zeros(4)
    for bad in (-1.0, math.inf, math.nan, "1"):
        with pytest.raises(ValueError, match="bandwidth"):
            regularized_resample(E, logw, 0, bandwidth=bad)
    with pytest.raises(ValueError, match="bandwidth"):
        BootstrapPF(N=10, bandwidth=-0.5)
    with pytest.raises(ValueError, match="logw"):
        regularized_resample(E, np.zeros(3), 0)


def test_regularized_bootstrap_pf_tracks_a_perfect_lorenz63():
    """Without regularisation the bootstrap filter collapses on a perfect model; with
    kernel jitter and an ESS threshold it tracks (RMSE well below the observation error)."""
    twin = dalib.setups.lorenz63().simulate(J=300, rng=11)
    plain = assimilate(BootstrapPF(N=100), twin, rng=12, burn_in=100)
    reg = assimilate(BootstrapPF(N=100, threshold=0.3, bandwidth=2.4), twin, rng=12,
                     burn_in=100)
    assert plain.rmse() > 2.0
    assert reg.rmse() < 0.8


def test_optimal_pf_with_stated_proposal_noise_on_a_perfect_model():
    twin = dalib.setups.lorenz63().simulate(J=300, rng=13)
    with pytest.raises(ValueError, match="proposal_noise"):
        assimilate(OptimalPF(N=50), twin, rng=1)
    res = assimilate(OptimalPF(N=50, proposal_noise=0.05, threshold=0.3, bandwidth=1.0),
                     twin, rng=14, burn_in=100)
    assert res.rmse() < 1.0
    noisy = dataclasses_replace_Q(twin, 0.05)
    with pytest.raises(ValueError, match="one or the other"):
        assimilate(OptimalPF(N=50, proposal_noise=0.05), noisy, rng=1)


def dataclasses_replace_Q(twin, q):
    import dataclasses
    return dataclasses.replace(twin, ssm=twin.ssm.replace(Q=q))
