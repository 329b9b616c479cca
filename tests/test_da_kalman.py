"""Kalman filter, RTS smoother, 3DVar and the extended KF (book sections 7.3-7.5)."""

import numpy as np
import pytest
from conftest import npy
from scipy.stats import multivariate_normal

import dalib
from dalib.da import (
    ExtendedKF,
    KalmanFilter,
    ThreeDVar,
    assimilate,
    ekf_analysis,
    ekf_forecast,
    kalman_filter,
    kalman_smoother,
    kf_analysis,
    kf_forecast,
    model_jacobian,
    steady_state_covariance,
    var3d_analysis,
    var3d_gain,
)


def _joint_gaussian(ssm, J):
    """Dense mean and covariance of (x_0, ..., x_J, y_1, ..., y_J) for a linear ssm."""
    A, H = npy(ssm.M.A), npy(ssm.h.matrix())
    d, p = A.shape[0], H.shape[0]
    Q = npy(ssm.Q.to_dense()) if ssm.Q is not None else np.zeros((d, d))
    R, C0, m0 = npy(ssm.R.to_dense()), npy(ssm.C0.to_dense()), npy(ssm.m0)
    # x_j = A^j x_0 + sum_{k<j} A^{j-1-k} xi_k: a linear map of (x_0, xi_0..xi_{J-1}).
    n = (J + 1) * d
    Lx = np.zeros((n, n))
    for j in range(J + 1):
        Lx[j * d:(j + 1) * d, :d] = np.linalg.matrix_power(A, j)
        for k in range(j):
            Lx[j * d:(j + 1) * d, (k + 1) * d:(k + 2) * d] = np.linalg.matrix_power(A, j - 1 - k)
    Cz = np.zeros((n, n))
    Cz[:d, :d] = C0
    for k in range(J):
        Cz[(k + 1) * d:(k + 2) * d, (k + 1) * d:(k + 2) * d] = Q
    Cx = Lx @ Cz @ Lx.T
    mx = np.concatenate([np.linalg.matrix_power(A, j) @ m0 for j in range(J + 1)])
    Hs = np.zeros((J * p, n))
    for j in range(1, J + 1):
        Hs[(j - 1) * p:j * p, j * d:(j + 1) * d] = H
    Cy = Hs @ Cx @ Hs.T + np.kron(np.eye(J), R)
    return mx, Cx, Hs @ mx, Cy, Cx @ Hs.T


def test_kalman_loglik_equals_dense_gaussian_density(xp):
    Q = dalib.asarray([[0.2, 0.05], [0.05, 0.1]], xp)
    ssm = dalib.setups.linear_gaussian(d=2, Q=Q, R=0.4, C0=dalib.asarray([0.5, 1.5], xp), xp=xp)
    ssm = ssm.replace(m0=dalib.asarray([0.3, -0.7], xp))
    tw = ssm.simulate(5, rng=dalib.default_rng(4, xp))
    kf = kalman_filter(ssm, tw.y)
    _, _, my, Cy, _ = _joint_gaussian(ssm, 5)
    direct = multivariate_normal(my, Cy).logpdf(npy(tw.y).ravel())
    assert float(kf.loglik) == pytest.approx(direct, rel=1e-10)
    assert kf.m_a.shape == (6, 2) and kf.C_f.shape == (6, 2, 2)
    # The driver's KalmanFilter reproduces kalman_filter, log-likelihood included.
    res = assimilate(KalmanFilter(), tw, rng=dalib.default_rng(0, xp))
    np.testing.assert_allclose(npy(res.analysis), npy(kf.m_a), rtol=1e-12, atol=1e-12)
    assert float(res.extras["loglik"]) == pytest.approx(direct, rel=1e-10)


def test_rts_smoother_equals_dense_conditional(xp):
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.3, R=0.5, xp=xp)
    J = 4
    tw = ssm.simulate(J, rng=dalib.default_rng(9, xp))
    mx, Cx, my, Cy, Cxy = _joint_gaussian(ssm, J)
    gain = np.linalg.solve(Cy, Cxy.T).T
    mean = mx + gain @ (npy(tw.y).ravel() - my)
    cov = Cx - gain @ Cxy.T
    sm = kalman_smoother(ssm, tw.y)
    np.testing.assert_allclose(npy(sm.m).ravel(), mean, atol=1e-10)
    for j in range(J + 1):
        np.testing.assert_allclose(npy(sm.C[j, ...]), cov[2 * j:2 * j + 2, 2 * j:2 * j + 2],
                                   atol=1e-10)
    # The smoother at the final time is the filter.
    kf = kalman_filter(ssm, tw.y)
    np.testing.assert_allclose(npy(sm.m[-1, :]), npy(kf.m_a[-1, :]), atol=1e-12)


def test_kf_steps_match_textbook_formulas(xp):
    rng = np.random.default_rng(0)
    d, p = 4, 3
    A = rng.standard_normal((d, d)) / 2
    G = rng.standard_normal((d, d))
    C = G @ G.T + np.eye(d)
    H = rng.standard_normal((p, d))
    R = np.diag([0.5, 1.0, 2.0])
    m, y = rng.standard_normal(d), rng.standard_normal(p)
    mf, Cf = kf_forecast(*(dalib.asarray(v, xp) for v in (m, C, A)), Q=dalib.asarray(np.eye(d), xp))
    np.testing.assert_allclose(npy(Cf), A @ C @ A.T + np.eye(d), atol=1e-12)
    ma, Ca, ll = kf_analysis(*(dalib.asarray(v, xp) for v in (m, C, y, H)),
                             dalib.asarray(np.diag(R), xp))
    S = H @ C @ H.T + R
    K = C @ H.T @ np.linalg.inv(S)
    np.testing.assert_allclose(npy(ma), m + K @ (y - H @ m), atol=1e-12)
    np.testing.assert_allclose(npy(Ca), (np.eye(d) - K @ H) @ C, atol=1e-12)
    assert float(ll) == pytest.approx(multivariate_normal(H @ m, S).logpdf(y), rel=1e-12)
    *same, K_lib = kf_analysis(*(dalib.asarray(v, xp) for v in (m, C, y, H)),
                               dalib.asarray(np.diag(R), xp), return_gain=True)
    np.testing.assert_allclose(npy(K_lib), K, atol=1e-12)
    for got, want in zip(same, (ma, Ca, ll)):
        np.testing.assert_array_equal(npy(got), npy(want))


def test_3dvar_with_steady_state_covariance_is_steady_state_kalman(xp):
    ssm = dalib.setups.linear_gaussian(d=4, Q=0.2, R=0.5, xp=xp)
    H = ssm.h.matrix(xp)
    C_f, C_a = steady_state_covariance(ssm.M.A, H, ssm.Q, ssm.R)
    # Riccati fixed point: C_f = A C_a A^T + Q.
    A = npy(ssm.M.A)
    np.testing.assert_allclose(npy(C_f), A @ npy(C_a) @ A.T + 0.2 * np.eye(4), atol=1e-10)
    # Started at the steady state, the Kalman filter has the constant gain of 3DVar(B = C_f).
    ssm_ss = ssm.replace(C0=C_a)
    tw = ssm_ss.simulate(30, rng=dalib.default_rng(2, xp))
    kf = assimilate(KalmanFilter(), tw, rng=0)
    var = assimilate(ThreeDVar(B=C_f), tw, rng=0)
    np.testing.assert_allclose(npy(var.analysis), npy(kf.analysis), atol=1e-9)
    # ... and so does 3DVar with the gain given directly.
    K = var3d_gain(C_f, H, ssm.R.to_dense(xp))
    var_k = assimilate(ThreeDVar(K=K), tw, rng=0)
    np.testing.assert_allclose(npy(var_k.analysis), npy(kf.analysis), atol=1e-9)
    m = var3d_analysis(tw.x[1, :], tw.y[0, :], ssm.h, K)
    assert m.shape == (4,)


def test_extended_kf_equals_kf_for_a_linear_model(xp):
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.1, R=0.3, xp=xp)
    tw = ssm.simulate(10, rng=dalib.default_rng(3, xp))
    kf = assimilate(KalmanFilter(), tw, rng=0)
    ekf = assimilate(ExtendedKF(), tw, rng=0)
    np.testing.assert_allclose(npy(ekf.analysis), npy(kf.analysis), atol=1e-12)
    np.testing.assert_allclose(npy(ekf.spread_a), npy(kf.spread_a), atol=1e-12)


def test_model_jacobian_matches_finite_differences():
    ssm = dalib.setups.lorenz96(d=8)
    x = ssm.m0
    Mx, DM = model_jacobian(ssm.M, x)
    np.testing.assert_allclose(Mx, ssm.M(x), rtol=1e-14)
    eps = 1e-6
    fd = np.stack([(ssm.M(x + eps * e) - ssm.M(x - eps * e)) / (2 * eps) for e in np.eye(8)], 1)
    np.testing.assert_allclose(DM, fd, atol=1e-7)
    m, C = ekf_forecast(x, np.eye(8) * 0.1, ssm.M, Q=0.01)
    np.testing.assert_allclose(C, 0.1 * DM @ DM.T + 0.01 * np.eye(8), atol=1e-12)
    ma, Ca, _ = ekf_analysis(m, C, ssm.h(x), ssm.h, ssm.R)
    assert np.all(np.diag(Ca) < np.diag(C))


def test_extended_kf_tracks_lorenz63():
    ssm = dalib.setups.lorenz63(dt_obs=0.05)
    tw = ssm.simulate(200, rng=5)
    res = assimilate(ExtendedKF(inflation=1.05), tw, rng=0, burn_in=50)
    assert res.rmse() < 0.6  # observation error std is sqrt(2) = 1.41


def test_kalman_filter_rejects_nonlinear_models():
    tw = dalib.setups.lorenz63().simulate(3, rng=1)
    with pytest.raises(TypeError, match="KalmanFilter needs a LinearModel"):
        assimilate(KalmanFilter(), tw, rng=0)
    with pytest.raises(TypeError, match="needs a linear model"):
        kalman_filter(tw.ssm, tw.y)
    with pytest.raises(ValueError, match="give exactly one of B"):
        ThreeDVar()
