"""EM for the error covariances (lecture eqs. (7)-(9); book section 8.2.1)."""

import math

import numpy as np
import pytest
from conftest import npy
from scipy.optimize import minimize

import dalib
from dalib.da import ETKF, enks, kalman_filter
from dalib.learning import (
    em_enks,
    em_linear_gaussian,
    enks_pass,
    expected_loglik,
    m_step,
    smoother_statistics,
)
from dalib.models import LinearModel


def _dense_posterior(ssm, y):
    """Dense mean and covariance of x_0..x_J given y_1..y_J (independent of the smoother)."""
    A, H = npy(ssm.M.A), npy(ssm.h.matrix())
    d, p = A.shape[0], H.shape[0]
    J = y.shape[0]
    Q, R = npy(ssm.Q.to_dense()), npy(ssm.R.to_dense())
    C0, m0 = npy(ssm.C0.to_dense()), npy(ssm.m0)
    # x = L z with z = (x_0, xi_0, ..., xi_{J-1}).
    n = (J + 1) * d
    L = np.zeros((n, n))
    for j in range(J + 1):
        L[j * d:(j + 1) * d, :d] = np.linalg.matrix_power(A, j)
        for k in range(j):
            L[j * d:(j + 1) * d, (k + 1) * d:(k + 2) * d] = np.linalg.matrix_power(A, j - 1 - k)
    Cz = np.zeros((n, n))
    Cz[:d, :d] = C0
    for k in range(J):
        Cz[(k + 1) * d:(k + 2) * d, (k + 1) * d:(k + 2) * d] = Q
    Cx = L @ Cz @ L.T
    mx = np.concatenate([np.linalg.matrix_power(A, j) @ m0 for j in range(J + 1)])
    Hs = np.zeros((J * p, n))
    for j in range(1, J + 1):
        Hs[(j - 1) * p:j * p, j * d:(j + 1) * d] = H
    Cy = Hs @ Cx @ Hs.T + np.kron(np.eye(J), R)
    gain = np.linalg.solve(Cy, Hs @ Cx).T
    mean = mx + gain @ (npy(y).ravel() - Hs @ mx)
    cov = Cx - gain @ Hs @ Cx
    return mean.reshape(J + 1, d), cov


def _model(xp="numpy", **kw):
    Q = dalib.asarray([[0.3, 0.05], [0.05, 0.2]], xp)
    kw = {"Q": Q, "R": 0.4, "C0": 0.8, **kw}
    return dalib.setups.linear_gaussian(d=2, observe=dalib.asarray([[1.0, 0.5]], xp), xp=xp,
                                        **kw)


def test_smoother_statistics_match_dense_posterior(xp):
    ssm = _model(xp)
    ssm = ssm.replace(m0=dalib.asarray([0.4, -0.2], xp))
    J = 6
    tw = ssm.simulate(J, rng=dalib.default_rng(2, xp))
    st = smoother_statistics(ssm, tw.y)
    mean, cov = _dense_posterior(ssm, tw.y)
    np.testing.assert_allclose(npy(st.m_s), mean, atol=1e-10)
    for j in range(J):  # lag-one covariances Cov(x_{j+1}, x_j | Y)
        np.testing.assert_allclose(npy(st.C_lag[j, ...]), cov[2 * j + 2:2 * j + 4, 2 * j:2 * j + 2],
                                   atol=1e-10)
    second = [cov[2 * j:2 * j + 2, 2 * j:2 * j + 2] + np.outer(mean[j], mean[j])
              for j in range(J + 1)]
    np.testing.assert_allclose(npy(st.S00), sum(second[:-1]), atol=1e-9)
    np.testing.assert_allclose(npy(st.S11), sum(second[1:]), atol=1e-9)


def test_estep_identity_loglik_equals_objective_plus_entropy():
    # log P(Y | theta) = J_l(theta_l) + entropy of P(X | Y, theta_l): checks the E-step sums
    # and the objective against the exact likelihood of the Kalman filter.
    ssm = _model()
    J = 8
    tw = ssm.simulate(J, rng=5)
    st = smoother_statistics(ssm, tw.y)
    _, cov = _dense_posterior(ssm, tw.y)
    _, logdet = np.linalg.slogdet(2 * math.pi * math.e * cov)
    value = float(expected_loglik(st, ssm.M.A, ssm.Q.to_dense(), ssm.R.to_dense()))
    assert value + 0.5 * logdet == pytest.approx(float(st.loglik), rel=1e-10)


@pytest.mark.parametrize("structure", ["full", "diag", "scalar"])
def test_m_step_maximises_the_expected_loglik(structure):
    ssm = _model()
    tw = ssm.simulate(30, rng=7)
    st = smoother_statistics(ssm.replace(Q=1.0, R=1.0), tw.y)
    A0 = ssm.M.A
    A, Q, R = m_step(st, A0, estimate=("A", "Q", "R"), Q_structure=structure,
                     R_structure=structure)
    best = float(expected_loglik(st, A, Q, R))
    gen = np.random.default_rng(0)
    for _ in range(20):
        dA = 0.02 * gen.standard_normal((2, 2))
        dQ = 0.02 * gen.standard_normal((2, 2))
        dQ = dQ + dQ.T
        if structure != "full":
            dQ = np.diag(np.diag(dQ)) if structure == "diag" else dQ[0, 0] * np.eye(2)
        dR = 0.02 * gen.standard_normal((1, 1))
        for cand in [(A + dA, Q, R), (A, Q + dQ, R), (A, Q, R + dR)]:
            assert float(expected_loglik(st, *cand)) < best


def test_em_loglik_never_decreases(xp):
    truth = _model(xp)
    tw = truth.simulate(40, rng=dalib.default_rng(11, xp))
    start = truth.replace(Q=2.0, R=0.05, M=LinearModel(0.5 * truth.M.A))
    fit = em_linear_gaussian(start, tw.y, n_iter=8, estimate=("A", "Q", "R"))
    ll = npy(fit.loglik)
    assert ll.shape == (9,) and fit.n_iter == 8
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[1:])), np.diff(ll)
    assert ll[-1] > ll[0] + 1.0
    # The returned loglik is that of the Kalman filter with the returned parameters.
    assert float(kalman_filter(fit.ssm, tw.y).loglik) == pytest.approx(float(ll[-1]), rel=1e-10)
    assert fit.Q_history.shape == (9, 2, 2) and fit.R_history.shape == (9, 1, 1)


def test_em_reaches_the_maximum_likelihood_estimate():
    # Scalar q and r on a model observed in its first component: compare with a direct
    # numerical maximisation of the exact log-likelihood.
    truth = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.3, C0=0.5, observe=np.eye(2))
    tw = truth.simulate(100, rng=21)

    def negloglik(logs):
        q, r = np.exp(logs)
        return -float(kalman_filter(truth.replace(Q=q, R=r), tw.y).loglik)

    opt = minimize(negloglik, np.log([0.5, 0.5]), method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-6})
    fit = em_linear_gaussian(truth.replace(Q=0.5, R=0.5), tw.y, n_iter=150,
                             Q_structure="scalar", R_structure="scalar", tol=1e-6)
    q, r = float(fit.Q[0, 0]), float(fit.R[0, 0])
    np.testing.assert_allclose([q, r], np.exp(opt.x), rtol=0.02)
    assert float(fit.loglik[-1]) >= -opt.fun - 1e-3


def test_em_converges_to_the_truth_for_long_data():
    Q = np.array([[0.3, 0.1], [0.1, 0.4]])
    truth = dalib.setups.linear_gaussian(d=2, Q=Q, R=np.array([0.2, 0.1]), observe=np.eye(2))
    J = 1000
    tw = truth.simulate(J, rng=3)
    fit = em_linear_gaussian(truth.replace(Q=1.0, R=1.0), tw.y, n_iter=40, tol=1e-2)
    tol = 6 * math.sqrt(2 / J)  # a few standard errors of a variance estimate
    np.testing.assert_allclose(np.diag(fit.Q), np.diag(Q), rtol=tol)
    np.testing.assert_allclose(fit.Q[0, 1], Q[0, 1], atol=tol * 0.4)
    np.testing.assert_allclose(np.diag(fit.R), [0.2, 0.1], rtol=2 * tol)


def test_exact_em_rejects_bad_input():
    ssm = dalib.setups.lorenz63(Q=0.1)
    y = np.zeros((3, 3))
    with pytest.raises(TypeError, match="ssm.M"):
        em_linear_gaussian(ssm, y)
    lin = _model()
    with pytest.raises(ValueError, match="Q_structure"):
        em_linear_gaussian(lin, np.zeros((3, 1)), Q_structure="banded")
    with pytest.raises(ValueError, match="estimate"):
        em_linear_gaussian(lin, np.zeros((3, 1)), estimate=("B",))
    with pytest.raises(ValueError, match="y"):
        em_linear_gaussian(lin, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="ssm.Q"):
        em_linear_gaussian(lin.replace(Q=None), np.zeros((3, 1)))


# -- the ensemble version -----------------------------------------------------------------


@pytest.mark.parametrize("lag", [None, 3])
def test_enks_pass_reproduces_dalib_enks(lag):
    ssm = dalib.setups.lorenz63(dt_obs=0.05, Q=0.1)
    tw = ssm.simulate(30, rng=4)
    run = enks_pass(ssm, tw.y, 10, rng=8, lag=lag, inflation=1.05)
    ref = enks(ETKF(N=10, inflation=1.05), tw, rng=8, lag=lag)
    np.testing.assert_allclose(run.mean, ref.analysis, atol=1e-10)
    np.testing.assert_allclose(run.filter_mean, ref.extras["filter_analysis"], atol=1e-10)
    np.testing.assert_allclose(run.innovations, ref.innovations, atol=1e-10)
    assert run.ensembles.shape == (31, 10, 3)


def test_enks_pass_with_sparse_observations_and_large_ensemble_is_the_kalman_smoother():
    # Linear-Gaussian model observed every 2 steps: with many members the ensemble smoother
    # and log-likelihood approach the exact ones (model and observations on the same grid).
    truth = _model()
    tw = truth.simulate(40, rng=9)
    y = tw.y[1::2]
    run = enks_pass(truth, y, 1000, rng=1, obs_every=2)
    # the exact answer on the same problem: a 2-step model with the accumulated noise
    A = npy(truth.M.A)
    Q = npy(truth.Q.to_dense())
    two = truth.replace(M=LinearModel(A @ A), Q=A @ Q @ A.T + Q)
    kf = kalman_filter(two, y)
    assert float(run.loglik) == pytest.approx(float(kf.loglik), abs=0.6)
    exact = smoother_statistics(two, y).m_s
    np.testing.assert_allclose(run.mean[::2], exact, atol=0.15)  # Monte Carlo error


def test_em_enks_on_a_linear_model_follows_exact_em():
    truth = dalib.setups.linear_gaussian(d=2, Q=0.3, R=0.2, observe=np.eye(2))
    tw = truth.simulate(300, rng=2)
    start = truth.replace(Q=1.0, R=1.0)
    exact = em_linear_gaussian(start, tw.y, n_iter=4, estimate=("Q", "R"), Q_structure="diag",
                               R_structure="diag")
    ens = em_enks(start, tw.y, 4, N=200, rng=5, estimate=("Q", "R"), lag=20)
    np.testing.assert_allclose(np.diag(ens.Q), np.diag(exact.Q), rtol=0.1)
    np.testing.assert_allclose(np.diag(ens.R), np.diag(exact.R), rtol=0.1)
    assert ens.loglik.shape == (5,) and ens.extras["smoothed_history"].shape == (5, 301, 2)


def test_em_enks_learns_q_on_lorenz63():
    ssm = dalib.setups.lorenz63(dt_obs=0.01, R=2.0, Q=0.05)
    tw = ssm.simulate(400, rng=1)
    y = tw.y[4::5]
    fit = em_enks(ssm.replace(Q=0.5), y, 8, N=20, rng=2, lag=100, obs_every=5,
                  accelerate=True, Q_structure="scalar")
    q = float(fit.Q[0, 0])
    assert 0.03 < q < 0.08, q
    assert float(fit.Q_history[0, 0, 0]) == 0.5
    assert fit.extras["accepted"] >= 1
    # common random numbers: the same parameters give the same pass
    again = em_enks(ssm.replace(Q=0.5), y, 1, N=20, rng=2, lag=30, obs_every=5,
                    common_random_numbers=True)
    twice = em_enks(ssm.replace(Q=0.5), y, 1, N=20, rng=2, lag=30, obs_every=5,
                    common_random_numbers=True)
    np.testing.assert_allclose(again.Q, twice.Q)
    assert float(again.loglik[0]) == float(twice.loglik[0])


def test_em_enks_rejects_bad_input():
    ssm = dalib.setups.lorenz63(dt_obs=0.01, R=2.0, Q=0.05)
    y = np.zeros((4, 3))
    with pytest.raises(ValueError, match="estimate"):
        em_enks(ssm, y, 1, N=5, rng=0, estimate=("A",))
    with pytest.raises(ValueError, match="ssm.Q"):
        em_enks(ssm.replace(Q=None), y, 1, N=5, rng=0)
    with pytest.raises(ValueError, match="N"):
        enks_pass(ssm, y, 1, rng=0)
    with pytest.raises(ValueError, match="obs_every"):
        enks_pass(ssm, y, 5, rng=0, obs_every=0)
    with pytest.raises(ValueError, match="accelerate"):
        em_enks(ssm, y, 1, N=5, rng=0, Q_structure="full", accelerate=True)


# -- the exercise checks --------------------------------------------------------------------


def test_exercise_checks_accept_solutions_and_explain_mistakes():
    from dalib.exercises import ch07b

    def m_step_R(y, H, m_s, C_s):
        r = y - m_s @ H.T
        return (r.T @ r + np.einsum("ij,tjk,lk->il", H, C_s, H)) / y.shape[0]

    assert ch07b.check_m_step_R(m_step_R)
    means_only = ch07b.check_m_step_R(lambda y, H, m, C: (y - m @ H.T).T @ (y - m @ H.T)
                                      / y.shape[0])
    assert not means_only and "H C_s H^T" in means_only.message
    assert "ZeroDivisionError" in ch07b.check_m_step_R(lambda *a: 1 / 0).message
    assert not ch07b.check_m_step_R(...)

    def desroziers_R(d_ob, d_oa):
        S = d_oa.T @ d_ob / d_ob.shape[0]
        return (S + S.T) / 2

    assert ch07b.check_desroziers_R(desroziers_R)
    total = ch07b.check_desroziers_R(lambda a, b: a.T @ a / a.shape[0])
    assert not total and "H B H^T + R" in total.message

    model, y = ch07b.white_noise_model()
    pairs = []
    for q0, r0 in [(1.0, 0.1), (0.1, 1.0)]:
        f = em_linear_gaussian(model.replace(Q=q0, R=r0), y, n_iter=5)
        pairs.append((f.Q[0, 0], f.R[0, 0]))
    assert ch07b.check_identifiability(pairs)
    assert not ch07b.check_identifiability([pairs[0], pairs[0]])
    assert not ch07b.check_identifiability([(0.1, 0.1), (0.2, 0.2)])
    assert not ch07b.check_identifiability(3)


@pytest.mark.parametrize("N, p", [(30, 3), (5, 8)])
def test_observation_space_transform_equals_the_etkf_transform(N, p):
    from dalib.da import etkf_transform
    from dalib.da._kernels import etkf_weights
    from dalib.observations import Identity

    gen = np.random.default_rng(N)
    E = gen.standard_normal((N, p)) * np.arange(1, p + 1)
    y = gen.standard_normal(p)
    R = dalib.as_covariance(np.linspace(0.5, 2.0, p), "R")
    w_ref, T_ref = etkf_transform(E, y, Identity(p), R)
    Y = E - E.mean(axis=0)
    w, T = etkf_weights(R.inv_sqrt_matmul(Y), R.inv_sqrt_matmul(y - E.mean(axis=0)), N, np,
                        space="observation")
    np.testing.assert_allclose(w, w_ref, atol=1e-12)
    np.testing.assert_allclose(T, T_ref, atol=1e-12)
    # T is the symmetric square root: (T / sqrt(N-1))^2 G = I with G = Yw Yw^T + (N-1) I
    Yw = R.inv_sqrt_matmul(Y)
    G = Yw @ Yw.T + (N - 1) * np.eye(N)
    np.testing.assert_allclose(T @ T @ G / (N - 1), np.eye(N), atol=1e-10)


def test_em_enks_runs_on_every_backend(xp):
    ssm = dalib.setups.lorenz63(dt_obs=0.01, R=2.0, Q=0.05, xp=xp)
    tw = ssm.simulate(20, rng=dalib.default_rng(1, xp))
    y = tw.y[1::2, :]
    fit = em_enks(ssm.replace(Q=0.2), y, 3, N=8, rng=dalib.default_rng(2, xp), lag=6,
                  obs_every=2, estimate=("Q", "R"), accelerate=True)
    assert fit.Q_history.shape == (4, 3, 3) and fit.R_history.shape == (4, 3, 3)
    assert np.all(np.isfinite(npy(fit.loglik)))
    if xp.__name__.startswith("array_api_strict"):  # the same random numbers as NumPy
        ref = em_enks(dalib.setups.lorenz63(dt_obs=0.01, R=2.0, Q=0.2), npy(y), 3, N=8,
                      rng=2, lag=6, obs_every=2, estimate=("Q", "R"), accelerate=True)
        np.testing.assert_allclose(npy(fit.Q), ref.Q, rtol=1e-10)
        np.testing.assert_allclose(npy(fit.loglik), ref.loglik, rtol=1e-10)
