"""Expectation-maximisation with an ensemble smoother, and the M-step (chapter 7)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.learning import (
    CorrectedModel,
    DictionaryModel,
    LocalDictionary,
    expectation_maximization,
    least_squares_mstep,
)
from dalib.models import Lorenz96, RK4Map


def _pairs(family, theta, n=40, d=10, seed=0):
    X0 = 2.0 + 3.0 * np.random.default_rng(seed).standard_normal((n, d))
    return X0, np.asarray(family(theta)(X0))


def test_gauss_newton_recovers_exact_coefficients(xp):
    lib = LocalDictionary.polynomial()
    family = DictionaryModel(lib, d=10, dt=0.05)
    true = npy(lib.lorenz96(8.0))
    X0, X1 = _pairs(family, true)
    theta, q = least_squares_mstep(family, dalib.asarray(np.zeros(21), xp),
                                   dalib.asarray(X0, xp), dalib.asarray(X1, xp),
                                   n_iter=4, chunk=16)
    np.testing.assert_allclose(npy(theta), true, atol=1e-9)
    assert float(q) < 1e-18


def test_linear_family_is_solved_in_one_step(xp):
    d = 10
    cubic = LocalDictionary([(), (0,), (0, 0), (0, 0, 0)])
    family = CorrectedModel(RK4Map(Lorenz96(d, 8.0), 0.05), cubic, d)
    X0, X1 = _pairs(family, np.array([0.3, -0.1, 0.02, -0.001]))
    X1 = X1 + 0.01 * np.random.default_rng(1).standard_normal(X1.shape)
    theta, q = least_squares_mstep(family, dalib.asarray(np.zeros(4), xp),
                                   dalib.asarray(X0, xp), dalib.asarray(X1, xp),
                                   n_iter=1)
    Phi = np.asarray(cubic.features(X0))  # (n, K, d)
    A = Phi.transpose(0, 2, 1).reshape(-1, 4)
    r = (X1 - np.asarray(RK4Map(Lorenz96(d, 8.0), 0.05)(X0))).ravel()
    lstsq = np.linalg.lstsq(A, r, rcond=None)[0]
    np.testing.assert_allclose(npy(theta), lstsq, rtol=1e-9, atol=1e-12)
    resid = r - A @ lstsq
    assert float(q) == pytest.approx(np.mean(resid**2), rel=1e-9)


def test_mstep_errors():
    family = DictionaryModel(LocalDictionary.polynomial(), d=10, dt=0.05)
    X = np.ones((5, 10))
    with pytest.raises(ValueError, match="same shape"):
        least_squares_mstep(family, np.zeros(21), X, X[:4])
    with pytest.raises(ValueError, match="ridge"):
        least_squares_mstep(family, np.zeros(21), X, X, ridge=-1.0)
    with pytest.raises(ValueError, match="theta must have shape"):
        least_squares_mstep(family, np.zeros(3), X, X)


def test_em_improves_on_regressing_the_observations():
    """Example 2 at a small size: Lorenz-96 (d = 10) learned from noisy observations."""
    d = 10
    ssm = dalib.setups.lorenz96(d=d)
    twin = ssm.simulate(300, rng=1)
    lib = LocalDictionary.polynomial()
    family = DictionaryModel(lib, d=d, dt=0.05)
    true = npy(lib.lorenz96(8.0))
    naive, q0 = least_squares_mstep(family, np.zeros(21), twin.y[:-1], twin.y[1:],
                                    n_iter=3)
    res = expectation_maximization(twin, family, naive, float(q0), N=20, n_iter=6,
                                   rng=2, inflation=1.05)
    err_naive = np.abs(naive - true).max()
    errors = [np.abs(t - true).max() for t in res.thetas]
    assert err_naive > 3.0  # errors in variables: noisy inputs bias the regression
    assert errors[-1] < 0.2 * err_naive
    assert res.qs[-1] < 0.2 * res.qs[0]  # the model error shrinks as the model improves
    assert len(res.rmse) == 6 and res.rmse[-1] < res.rmse[0]


def test_em_with_the_smoother_mean_runs():
    d = 8
    twin = dalib.setups.lorenz96(d=d).simulate(50, rng=1)
    family = DictionaryModel(LocalDictionary.polynomial(1, 1), d=d, dt=0.05)
    res = expectation_maximization(twin, family, np.zeros(4), 1.0, N=10, n_iter=1,
                                   rng=0, use_ensemble=False, learn_q=False)
    assert npy(res.qs).tolist() == [1.0, 1.0] and np.all(np.isfinite(res.theta))
    assert res.thetas.shape == (2, 4) and res.rmse.shape == (1,)
    with pytest.raises(TypeError, match="twin must be a TwinExperiment"):
        expectation_maximization(twin.y, family, np.zeros(4), 1.0, N=10, n_iter=1,
                                 rng=0)
