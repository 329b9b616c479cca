"""Innovation-based estimation of R and the inflation (Desroziers et al. 2005; Tandeo et al. 2020)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import KalmanFilter, assimilate, kalman_filter
from dalib.learning import (
    AdaptiveETKF,
    adaptive_inflation_estimate,
    desroziers_iteration,
    desroziers_statistics,
)


def test_kalman_analysis_residual_is_R_times_inverse_innovation_covariance():
    # For one Kalman analysis d^{o-a} = (I - HK) d^{o-b} = R S^{-1} d^{o-b} exactly, so that
    # E[d^{o-a} d^{o-b T}] = R S^{-1} E[d^{o-b} d^{o-b T}] = R: Desroziers' identity.
    ssm = dalib.setups.linear_gaussian(d=4, Q=0.2, R=np.array([0.3, 0.6]))
    tw = ssm.simulate(30, rng=1)
    kf = kalman_filter(ssm, tw.y)
    H = ssm.h.matrix()
    R = ssm.R.to_dense()
    for j in range(1, 31):
        d_ob = tw.y[j - 1] - H @ kf.m_f[j]
        d_oa = tw.y[j - 1] - H @ kf.m_a[j]
        S = H @ kf.C_f[j] @ H.T + R
        np.testing.assert_allclose(d_oa, R @ np.linalg.solve(S, d_ob), atol=1e-12)


def test_desroziers_statistics_recover_R_and_HBH_in_a_steady_kalman_filter():
    Q = 0.3
    R = np.array([0.5, 0.2])
    ssm = dalib.setups.linear_gaussian(d=4, Q=Q, R=R, rotation=0.5, damping=0.9)
    J = 4000
    tw = ssm.simulate(J, rng=2)
    res = assimilate(KalmanFilter(), tw, rng=0)
    H = ssm.h.matrix()
    d_oa = tw.y - res.analysis[1:] @ H.T
    st = desroziers_statistics(res.innovations, d_oa, burn_in=50)
    B = kalman_filter(ssm, tw.y[:60]).C_f[-1]  # the steady forecast covariance
    HBH = H @ B @ H.T
    se = 4 * np.sqrt(2 / st.n)  # a few standard errors of a variance estimate
    np.testing.assert_allclose(np.diag(st.R), R, rtol=3 * se)
    np.testing.assert_allclose(np.diag(st.HBH), np.diag(HBH), rtol=3 * se)
    np.testing.assert_allclose(st.total, st.HBH + st.R, atol=1e-12)
    np.testing.assert_allclose(st.R, st.R.T)


def test_desroziers_statistics_on_every_backend(xp):
    gen = np.random.default_rng(0)
    d_ob = dalib.asarray(gen.standard_normal((50, 3)), xp)
    d_oa = 0.4 * d_ob
    st = desroziers_statistics(d_ob, d_oa)
    S = npy(d_ob).T @ npy(d_ob) / 50
    np.testing.assert_allclose(npy(st.R), 0.4 * S, atol=1e-12)
    np.testing.assert_allclose(npy(st.HBH), 0.6 * S, atol=1e-12)
    assert st.n == 50


def test_adaptive_inflation_estimate_is_unbiased_for_a_consistent_ensemble():
    # Innovations drawn with covariance 1.7 HPH + R: the mean estimate is 1.7.
    gen = np.random.default_rng(4)
    p = 5
    HPH = np.diag(gen.uniform(0.5, 1.5, p))
    R = np.diag(gen.uniform(0.2, 0.4, p))
    L = np.linalg.cholesky(1.7 * HPH + R)
    est = [float(adaptive_inflation_estimate(L @ gen.standard_normal(p), np.trace(HPH),
                                             np.trace(R))) for _ in range(20000)]
    assert np.mean(est) == pytest.approx(1.7, rel=0.03)


def test_desroziers_iteration_fixed_point_depends_on_the_background():
    # Lorenz-96: with a reasonable inflation the iteration moves from a wrong guess to the
    # true R = 1; with no inflation the ensemble underestimates B and R comes out too big.
    ssm = dalib.setups.lorenz96(d=20)
    tw = ssm.simulate(400, rng=3)
    good = desroziers_iteration(tw, 4.0, 3, rng=1, N=20, cov_inflation=1.1)
    r = npy(good.R_history)[:, 0]
    assert r.shape == (4,) and r[0] == 4.0
    assert abs(r[-1] - 1.0) < 0.15, r
    bad = desroziers_iteration(tw, 1.0, 2, rng=1, N=6, cov_inflation=1.0)
    assert npy(bad.R_history)[-1, 0] > 1.2


def test_adaptive_etkf_learns_R_on_lorenz96():
    ssm = dalib.setups.lorenz96()
    tw = ssm.simulate(900, rng=1)
    res = assimilate(AdaptiveETKF(N=20, R0=4.0, cov_inflation0=1.1), tw, rng=11)
    r = npy(res.extras["R"])
    assert r.shape == (900, 40)
    assert abs(r[300:, 0].mean() - 1.0) < 0.1
    infl = npy(res.extras["cov_inflation"])
    assert infl.shape == (900,) and infl[0] == 1.1 and 1.0 < infl[300:].mean() < 2.0
    assert res.rmse(burn_in=300) < 0.5


def test_one_adaptive_etkf_serves_interleaved_runs():
    """The estimates live in the state the driver carries, not on the method object."""
    ssm = dalib.setups.lorenz96(d=10)
    tw1, tw2 = ssm.simulate(30, rng=1), ssm.simulate(20, rng=2)
    method = AdaptiveETKF(N=8, R0=2.0, spinup=3)
    ref1 = assimilate(AdaptiveETKF(N=8, R0=2.0, spinup=3), tw1, rng=5)
    ref2 = assimilate(AdaptiveETKF(N=8, R0=2.0, spinup=3), tw2, rng=6)
    # a second run started with the same object while the first one is half-way
    g1, g2 = dalib.default_rng(5), dalib.default_rng(6)
    s1, s2 = method.init(ssm, g1), method.init(ssm, g2)
    for j in range(20):
        s1 = method.analysis(method.forecast(s1, ssm, g1), tw1.y[j], ssm, g1)
        s2 = method.analysis(method.forecast(s2, ssm, g2), tw2.y[j], ssm, g2)
    np.testing.assert_array_equal(npy(method.moments(s2)[0]), npy(ref2.analysis[-1]))
    np.testing.assert_array_equal(npy(method.extras(s2)["R"]), npy(ref2.extras["R"]))
    for j in range(20, 30):
        s1 = method.analysis(method.forecast(s1, ssm, g1), tw1.y[j], ssm, g1)
    np.testing.assert_array_equal(npy(method.moments(s1)[0]), npy(ref1.analysis[-1]))
    np.testing.assert_array_equal(npy(method.extras(s1)["cov_inflation"]),
                                  npy(ref1.extras["cov_inflation"]))
    again = assimilate(method, tw1, rng=5)
    np.testing.assert_array_equal(npy(again.analysis), npy(ref1.analysis))


def test_adaptive_etkf_runs_on_every_backend(xp):
    ssm = dalib.setups.lorenz96(d=8, xp=xp)
    tw = ssm.simulate(15, rng=dalib.default_rng(1, xp))
    res = assimilate(AdaptiveETKF(N=6, R0=2.0, R_structure="diag", spinup=2), tw,
                     rng=dalib.default_rng(2, xp))
    assert npy(res.extras["R"]).shape == (15, 8)
    assert np.all(np.isfinite(npy(res.analysis)))


def test_innovation_tools_reject_bad_input():
    z = np.zeros((5, 2))
    with pytest.raises(ValueError, match="d_oa"):
        desroziers_statistics(z, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="burn_in"):
        desroziers_statistics(z, z, burn_in=5)
    with pytest.raises(ValueError, match="memory"):
        AdaptiveETKF(N=5, memory=1.0)
    with pytest.raises(ValueError, match="R_structure"):
        AdaptiveETKF(N=5, R_structure="full")
    with pytest.raises(ValueError, match="trace_HPH"):
        adaptive_inflation_estimate(np.ones(2), 0.0, 1.0)
    tw = dalib.setups.lorenz96(d=8).simulate(5, rng=0)
    with pytest.raises(ValueError, match="structure"):
        desroziers_iteration(tw, 1.0, 1, rng=0, structure="full")
    with pytest.raises(ValueError, match="R0"):
        assimilate(AdaptiveETKF(N=5, R0=np.eye(8) + 0.1), tw, rng=0)
