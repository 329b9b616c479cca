"""Ensemble Kalman filters, inflation and localisation (book section 7.6)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import (
    ETKF,
    LETKF,
    EnKF,
    KalmanFilter,
    ThreeDVar,
    additive_inflation,
    anomalies,
    assimilate,
    enkf_analysis,
    ensemble_mean,
    etkf_analysis,
    etkf_transform,
    gaspari_cohn,
    inflate,
    kf_analysis,
    letkf_analysis,
    local_observations,
    localization_matrices,
    observation_locations,
    periodic_distance,
)
from dalib.observations import EveryKth, Identity, Matrix


def exact_ensemble(m, C, N, seed=0):
    """An ensemble whose sample mean and covariance are exactly m and C."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, len(m)))
    Z -= Z.mean(0)
    L = np.linalg.cholesky(Z.T @ Z / (N - 1))
    Z = np.linalg.solve(L, Z.T).T  # sample covariance I
    return m + Z @ np.linalg.cholesky(C).T


def _problem(d=4, p=3, seed=1):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((d, d))
    C = G @ G.T + 0.5 * np.eye(d)
    m = rng.standard_normal(d)
    H = rng.standard_normal((p, d))
    y = rng.standard_normal(p)
    return m, C, H, y


@pytest.mark.parametrize("R", [0.7, np.array([0.5, 1.0, 2.0]),
                               np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.2], [0.0, 0.2, 0.5]])])
def test_etkf_equals_kalman_for_exact_ensemble(xp, R):
    m, C, H, y = _problem()
    E = dalib.asarray(exact_ensemble(m, C, N=10), xp)
    Rx = R if isinstance(R, float) else dalib.asarray(R, xp)
    h = Matrix(dalib.asarray(H, xp))
    Ea = etkf_analysis(E, dalib.asarray(y, xp), h, Rx)
    ma, Ca, _ = kf_analysis(*(dalib.asarray(v, xp) for v in (m, C, y, H)), Rx)
    Ea = npy(Ea)
    np.testing.assert_allclose(Ea.mean(0), npy(ma), atol=1e-12)
    np.testing.assert_allclose(np.cov(Ea.T), npy(Ca), atol=1e-12)


def test_etkf_transform_is_symmetric_and_mean_preserving(xp):
    _, _, H, y = _problem(d=6, p=3)
    E = dalib.asarray(np.random.default_rng(3).standard_normal((5, 6)), xp)  # N < d
    w, T = etkf_transform(E, dalib.asarray(y, xp), Matrix(dalib.asarray(H, xp)), 1.0)
    T = npy(T)
    np.testing.assert_allclose(T, T.T, atol=1e-13)
    np.testing.assert_allclose(T @ np.ones(5), np.ones(5), atol=1e-13)  # T 1 = 1
    assert np.all(np.linalg.eigvalsh(T) > 0)


def test_enkf_mean_is_the_ensemble_kalman_update(xp):
    m, C, H, y = _problem()
    E = exact_ensemble(m, C, N=12)
    Ea = npy(enkf_analysis(dalib.asarray(E, xp), dalib.asarray(y, xp), Matrix(dalib.asarray(H, xp)),
                           0.5, rng=dalib.default_rng(1, xp)))
    ma, _, _ = kf_analysis(m, C, y, H, 0.5)
    # Centred perturbations: the mean is exactly the Kalman update of the forecast mean.
    np.testing.assert_allclose(Ea.mean(0), ma, atol=1e-12)
    assert Ea.shape == (12, 4)


def test_enkf_ensemble_and_observation_space_forms_agree():
    # N <= p uses the N-by-N system, N > p the p-by-p one; same draws give the same update.
    _, _, H, y = _problem(d=6, p=5)
    for N in (4, 12):
        E = np.random.default_rng(N).standard_normal((N, 6))
        Ea = enkf_analysis(E, y, Matrix(H), 0.3, rng=7)
        rng = dalib.default_rng(7)
        Z = rng.standard_normal((N, 5))
        D = y + np.sqrt(0.3) * (Z - Z.mean(0)) - E @ H.T
        X, Y = E - E.mean(0), (E - E.mean(0)) @ H.T
        K = X.T @ Y @ np.linalg.inv(Y.T @ Y + (N - 1) * 0.3 * np.eye(5))
        np.testing.assert_allclose(Ea, E + D @ K.T, atol=1e-11)


def test_enkf_converges_to_kalman_filter():
    ssm = dalib.setups.linear_gaussian(d=4, Q=0.1, R=0.5)
    tw = ssm.simulate(15, rng=3)
    kf = assimilate(KalmanFilter(), tw, rng=0)
    sd = npy(kf.spread_a)[1:]
    errors = {}
    for N in (50, 5000):
        res = assimilate(EnKF(N=N), tw, rng=4)
        z = (npy(res.analysis) - npy(kf.analysis))[1:] / sd[:, None]
        errors[N] = np.mean(z**2)
        # Spread too: the ensemble variance estimates the Kalman variance.
        if N == 5000:
            np.testing.assert_allclose(npy(res.spread_a)[1:], sd, rtol=0.05)
    assert errors[5000] < 10 / 5000  # Monte-Carlo error of a mean of N draws, with margin
    assert errors[50] > errors[5000]


def test_inflation_scales_anomalies_only(xp):
    E = dalib.asarray(np.random.default_rng(0).standard_normal((6, 3)), xp)
    Ei = inflate(E, 1.5)
    np.testing.assert_allclose(npy(ensemble_mean(Ei)), npy(ensemble_mean(E)), atol=1e-14)
    np.testing.assert_allclose(npy(anomalies(Ei)), 1.5 * npy(anomalies(E)), atol=1e-14)
    with pytest.raises(ValueError, match="factor must be positive"):
        inflate(E, -1.0)


def test_additive_inflation_adds_the_given_covariance():
    E = np.zeros((20000, 2))
    Ea = additive_inflation(E, np.array([[1.0, 0.5], [0.5, 2.0]]), rng=1)
    np.testing.assert_allclose(np.cov(Ea.T), [[1.0, 0.5], [0.5, 2.0]], atol=0.05)


def test_gaspari_cohn_shape(xp):
    r = dalib.asarray(np.linspace(0, 5, 501), xp)
    rho = npy(gaspari_cohn(r, 1.5))
    assert rho[0] == 1.0 and np.all(rho[r.shape[0] * 3 // 5:] == 0)  # zero beyond 2c = 3
    assert np.all(np.diff(rho) <= 1e-15)  # non-increasing
    assert np.all((rho >= 0) & (rho <= 1))
    np.testing.assert_allclose(npy(gaspari_cohn(dalib.asarray([1.5], xp), 1.5)), [5 / 24])
    # continuous at z = 1 and z = 2
    z = dalib.asarray([1.5 - 1e-9, 1.5 + 1e-9, 3 - 1e-9], xp)
    v = npy(gaspari_cohn(z, 1.5))
    assert abs(v[0] - v[1]) < 1e-8 and abs(v[2]) < 1e-8


def test_periodic_distance():
    d = periodic_distance(np.arange(10.0)[:, None], np.array([0.0, 9.0]), 10.0)
    np.testing.assert_array_equal(d[:, 0], [0, 1, 2, 3, 4, 5, 4, 3, 2, 1])
    np.testing.assert_array_equal(d[:, 1], [1, 2, 3, 4, 5, 4, 3, 2, 1, 0])


@pytest.mark.parametrize("R", [1.3, "diag"])
def test_letkf_with_infinite_radius_equals_etkf(xp, R):
    rng = np.random.default_rng(5)
    d, N = 12, 8
    h = EveryKth(d, 2, offset=1)
    E = dalib.asarray(3 + rng.standard_normal((N, d)), xp)
    y = dalib.asarray(rng.standard_normal(h.p), xp)
    R = R if R != "diag" else dalib.asarray(rng.uniform(0.5, 2.0, h.p), xp)
    local = local_observations(d, observation_locations(h), None, xp)
    assert local.index.shape == (d, h.p)
    np.testing.assert_allclose(npy(letkf_analysis(E, y, h, R, local)),
                               npy(etkf_analysis(E, y, h, R)), atol=1e-12)


def test_letkf_only_uses_nearby_observations():
    rng = np.random.default_rng(2)
    d, N = 20, 6
    h = Identity(d)
    E = rng.standard_normal((N, d))
    y = rng.standard_normal(d)
    local = local_observations(d, observation_locations(h), 2.0)
    assert local.index.shape == (d, 7)  # distances 0, 1, 2, 3 on both sides: 2c = 4 excluded
    Ea = letkf_analysis(E, y, h, 1.0, local)
    y2 = y.copy()
    y2[10] += 5.0  # changes grid points 7..13 only
    Ea2 = letkf_analysis(E, y2, h, 1.0, local)
    changed = np.any(np.abs(Ea2 - Ea) > 1e-14, axis=0)
    np.testing.assert_array_equal(np.nonzero(changed)[0], np.arange(7, 14))


def test_b_localisation_with_infinite_radius_equals_plain_enkf():
    rng = np.random.default_rng(3)
    d, N = 10, 6
    h = EveryKth(d, 2)
    E = rng.standard_normal((N, d))
    y = rng.standard_normal(h.p)
    rho = localization_matrices(d, observation_locations(h), None)
    Ea = enkf_analysis(E, y, h, 0.5, rng=11, localization=rho)
    np.testing.assert_allclose(Ea, enkf_analysis(E, y, h, 0.5, rng=11), atol=1e-12)
    rho_xy, rho_yy = localization_matrices(d, observation_locations(h), 1.0)
    assert rho_xy.shape == (10, 5) and rho_yy.shape == (5, 5)
    Eb = enkf_analysis(E, y, h, 0.5, rng=11, localization=(rho_xy, rho_yy))
    assert not np.allclose(Ea, Eb)


def test_bad_arguments_are_named():
    E = np.zeros((5, 4))
    h = Identity(4)
    with pytest.raises(ValueError, match=r"y must have shape \(\.\.\., 4\)"):
        etkf_analysis(E, np.zeros(3), h, 1.0)
    with pytest.raises(ValueError, match="y contains NaN"):
        etkf_analysis(E, np.array([0.0, np.nan, 0.0, 0.0]), h, 1.0)
    with pytest.raises(ValueError, match="E must have at least 2 members"):
        etkf_analysis(np.zeros((1, 4)), np.zeros(4), h, 1.0)
    with pytest.raises(ValueError, match="R must be positive"):
        enkf_analysis(E, np.zeros(4), h, -1.0, rng=1)
    with pytest.raises(ValueError, match="R must be diagonal"):
        letkf_analysis(E, np.zeros(4), h, np.eye(4), local_observations(4, range(4), 1.0))
    with pytest.raises(ValueError, match="N must be an integer >= 2"):
        ETKF(N=1)


# ---------------------------------------------------------------------------------------
# Accuracy on the Sakov and Oke (2008) Lorenz-96 setup (full table: benchmarks/accuracy.py)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def l96_twin():
    return dalib.setups.lorenz96().simulate(1100, rng=2008)


def test_etkf_lorenz96_accuracy(l96_twin):
    res = assimilate(ETKF(N=20, inflation=1.02), l96_twin, rng=1, burn_in=100)
    assert res.rmse() < 0.22
    assert 0.7 < res.spread() / res.rmse() < 1.4


def test_letkf_lorenz96_accuracy(l96_twin):
    res = assimilate(LETKF(N=7, radius=7.3, inflation=1.04), l96_twin, rng=1, burn_in=100)
    assert res.rmse() < 0.24


@pytest.mark.slow
def test_enkf_lorenz96_accuracy(l96_twin):
    res = assimilate(EnKF(N=40, inflation=1.06), l96_twin, rng=1, burn_in=100)
    assert res.rmse() < 0.25


def test_3dvar_lorenz96_beats_climatology(l96_twin):
    x = npy(l96_twin.x)
    B = 0.04 * np.cov(x.T)  # scaled climatological covariance
    res = assimilate(ThreeDVar(B=B), l96_twin, rng=1, burn_in=100)
    climatology = np.mean(np.sqrt(np.mean((x - x.mean(0)) ** 2, axis=1)))
    assert climatology > 3.0
    assert res.rmse() < 0.6


def test_random_rotation_is_orthogonal_and_mean_preserving(xp):
    from dalib.da import random_rotation

    rot = npy(random_rotation(7, dalib.default_rng(3, xp), xp))
    np.testing.assert_allclose(rot @ rot.T, np.eye(7), atol=1e-13)
    np.testing.assert_allclose(rot @ np.ones(7), np.ones(7), atol=1e-13)
    # a rotated ETKF keeps the analysis mean and covariance
    m, C, H, y = _problem()
    E = exact_ensemble(m, C, N=10)
    tw_ssm = dalib.setups.linear_gaussian(d=4).replace(h=Matrix(H), R=0.5)
    method = ETKF(N=10, rotate=True)
    method.init(tw_ssm, 1)
    Ea = method.analysis(E, y, tw_ssm, dalib.default_rng(2))
    Eb = etkf_analysis(E, y, Matrix(H), 0.5)
    np.testing.assert_allclose(Ea.mean(0), Eb.mean(0), atol=1e-12)
    np.testing.assert_allclose(np.cov(Ea.T), np.cov(Eb.T), atol=1e-12)
    assert not np.allclose(Ea, Eb)
