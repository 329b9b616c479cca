"""The multifidelity forecast step of an ensemble Kalman filter."""

import math

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import EnKF, MultifidelityEnKF, assimilate, multifidelity_forecast
from dalib.multifidelity import mfmc_variance, mfmc_weights

# Linear models on d = 3: the high-fidelity A, a close model, a damped one.
A = np.array([[0.9, 0.3, 0.0], [-0.3, 0.9, 0.1], [0.0, -0.1, 0.95]])
B1 = A + 0.15 * np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
B2 = 0.6 * A.T
MATS = [A, B1, B2]
m_a = np.array([1.0, -1.0, 2.0])
L = np.array([[1.0, 0.0, 0.0], [0.5, 0.8, 0.0], [0.2, -0.3, 0.6]])  # C = L L^T
q = 0.05


def exact_statistics():
    C = L @ L.T
    cov = [[np.diag(Mj @ C @ Mk.T) + q for Mk in MATS] for Mj in MATS]
    sigma = [np.sqrt(cov[k][k]) for k in range(3)]
    rho = [cov[0][k] / (sigma[0] * sigma[k]) for k in (1, 2)]
    return sigma[0], sigma[1:], rho


def test_multifidelity_forecast_mean_is_unbiased_with_eq_11_variance(xp):
    sigma_hi, sigma, rho = exact_statistics()
    alpha = mfmc_weights(rho, sigma_hi, sigma)
    N_hi, N, R = 3, (12, 48), 3000
    rng = dalib.default_rng(11, xp=xp)
    E = dalib.asarray(m_a, xp) + rng.standard_normal((N[-1], R, 3)) @ dalib.asarray(L.T, xp)
    xi = math.sqrt(q) * rng.standard_normal((N[-1], R, 3))
    models = [lambda x, M=M: x @ dalib.asarray(M.T, xp) for M in MATS]
    m, Y_hi, Y_lo = multifidelity_forecast(
        E, models[0], models[1:], N_hi, N, [dalib.asarray(a, xp) for a in alpha], xi)
    assert Y_hi.shape == (N_hi, R, 3) and [Y.shape[0] for Y in Y_lo] == list(N)
    m = npy(m)
    truth = A @ m_a
    se = m.std(axis=0, ddof=1) / math.sqrt(R)
    assert np.all(np.abs(m.mean(axis=0) - truth) < 3 * se)
    predicted = mfmc_variance(sigma_hi, sigma, rho, N_hi, N)
    np.testing.assert_allclose(m.var(axis=0, ddof=1), predicted, rtol=0.1)
    assert np.all(predicted < sigma_hi**2 / N_hi)


def test_one_model_with_all_members_is_the_enkf(xp):
    # N_hi = N_1 and M_1 = M: the correction vanishes and the forecast is the EnKF's
    ssm = dalib.setups.linear_gaussian(d=4, Q=0.1, R=0.5, xp=xp)
    tw = ssm.simulate(6, rng=dalib.default_rng(1, xp=xp))
    mf = MultifidelityEnKF([(ssm.M, 1.0)], N_hi=10, N=[10], alpha=[1.0])
    a = assimilate(mf, tw, rng=dalib.default_rng(2, xp=xp))
    b = assimilate(EnKF(N=10), tw, rng=dalib.default_rng(2, xp=xp))
    np.testing.assert_allclose(npy(a.analysis), npy(b.analysis), rtol=1e-10, atol=1e-12)
    assert mf.cost(1.0) == 20.0


def test_cheap_members_keep_the_filter_close_to_the_kalman_filter():
    ssm = dalib.setups.linear_gaussian(d=4, Q=0.1, R=0.5)
    tw = ssm.simulate(200, rng=3)
    cheap = 0.97 * ssm.M.A
    mf = MultifidelityEnKF([(lambda x: x @ cheap.T, 0.01)], N_hi=3, N=[40])
    kf = assimilate(dalib.da.KalmanFilter(), tw, rng=0)
    res = assimilate(mf, tw, rng=4)
    hi_only = assimilate(EnKF(N=3), tw, rng=4)

    def rmse(r):
        return float(np.sqrt(np.mean((r.analysis[50:] - tw.x[50:]) ** 2)))

    assert rmse(res) < 1.3 * rmse(kf)
    assert rmse(res) < rmse(hi_only)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="nested"):
        MultifidelityEnKF([(abs, 0.1)], N_hi=10, N=[5])
    with pytest.raises(TypeError, match="models"):
        MultifidelityEnKF([abs], N_hi=2, N=[5])


def test_estimated_weights_are_those_of_the_shared_members(xp):
    # alpha=None: rho_k and sigma from the N_hi members every model advances
    rng = dalib.default_rng(7, xp=xp)
    E = dalib.asarray(m_a, xp) + rng.standard_normal((30, 3)) @ dalib.asarray(L.T, xp)
    models = [lambda x, M=M: x @ dalib.asarray(M.T, xp) for M in MATS]
    m, Y_hi, Y_lo = multifidelity_forecast(E, models[0], models[1:], 8, (15, 30), None)
    Yn = [npy(Y_hi)] + [npy(Y)[:8] for Y in Y_lo]
    alpha = [np.array([np.corrcoef(Yn[0][:, i], Yn[k][:, i])[0, 1] * Yn[0][:, i].std()
                       / Yn[k][:, i].std() for i in range(3)]) for k in (1, 2)]
    expected = npy(Y_hi).mean(0) + sum(
        a * (npy(Y).mean(0) - npy(Y)[:n].mean(0))
        for a, Y, n in zip(alpha, Y_lo, (8, 15), strict=True))
    np.testing.assert_allclose(npy(m), expected, rtol=1e-10)
