"""State-space model and twin experiments, eqs. (1)-(2)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.models import LinearModel, Lorenz96, RK4Map
from dalib.observations import EveryKth, Identity
from dalib.ssm import StateSpaceModel


def test_twin_experiment_shapes_and_backend(xp):
    ssm = dalib.setups.lorenz96(d=10, obs_every=2, xp=xp)
    tw = ssm.simulate(25, rng=dalib.default_rng(1, xp))
    assert tw.x.shape == (26, 10) and tw.y.shape == (25, 5) and tw.t.shape == (26,)
    assert dalib.namespace(tw.x) is dalib.namespace(ssm.m0)
    assert float(tw.t[-1]) == pytest.approx(25 * 0.05)


def test_perfect_model_truth_follows_M(xp):
    ssm = dalib.setups.lorenz96(d=8, xp=xp)
    tw = ssm.simulate(5, rng=dalib.default_rng(3, xp))
    for j in range(5):
        np.testing.assert_allclose(npy(tw.x[j + 1, :]), npy(ssm.M(tw.x[j, :])), rtol=1e-13)


def test_noise_statistics_match_Q_and_R():
    # Linear model: x_{j+1} - A x_j ~ N(0, Q) and y_j - H x_j ~ N(0, R).
    ssm = dalib.setups.linear_gaussian(d=2, Q=np.array([0.2, 0.05]), R=0.3)
    tw = ssm.simulate(20_000, rng=11)
    x, y = npy(tw.x), npy(tw.y)
    A = npy(ssm.M.A)
    H = npy(ssm.h.matrix())
    xi = x[1:] - x[:-1] @ A.T
    eta = y - x[1:] @ H.T
    np.testing.assert_allclose(np.cov(xi.T), np.diag([0.2, 0.05]), atol=0.01)
    assert np.var(eta) == pytest.approx(0.3, rel=0.05)
    assert abs(np.mean(eta)) < 0.02


def test_same_seed_same_experiment(xp):
    ssm = dalib.setups.lorenz63(xp=xp)
    a = ssm.simulate(10, rng=dalib.default_rng(5, xp))
    b = ssm.simulate(10, rng=dalib.default_rng(5, xp))
    np.testing.assert_array_equal(npy(a.y), npy(b.y))


def test_bad_models_are_rejected():
    M = RK4Map(Lorenz96(d=10), dt=0.05)
    with pytest.raises(ValueError, match="h acts on dimension 8 but m0 has dimension 10"):
        StateSpaceModel(M=M, h=Identity(8), R=1.0, m0=np.zeros(10), C0=1.0)
    with pytest.raises(ValueError, match="M acts on dimension 10 but m0 has dimension 9"):
        StateSpaceModel(M=M, h=Identity(9), R=1.0, m0=np.zeros(9), C0=1.0)
    with pytest.raises(ValueError, match="R must be 5-dimensional"):
        StateSpaceModel(M=M, h=EveryKth(10, 2), R=np.eye(10), m0=np.zeros(10), C0=1.0)
    with pytest.raises(ValueError, match="m0 contains NaN"):
        StateSpaceModel(M=M, h=Identity(10), R=1.0, m0=np.full(10, np.nan), C0=1.0)
    with pytest.raises(TypeError, match="h must be an ObservationOperator"):
        StateSpaceModel(M=M, h=lambda x: x, R=1.0, m0=np.zeros(10), C0=1.0)
    with pytest.raises(ValueError, match="Q must be positive definite"):
        StateSpaceModel(M=LinearModel(np.eye(2)), h=Identity(2), R=1.0, m0=np.zeros(2), C0=1.0,
                        Q=-np.eye(2))
    ssm = dalib.setups.lorenz63()
    with pytest.raises(ValueError, match="J must be an integer >= 1"):
        ssm.simulate(0, rng=1)
    with pytest.raises(ValueError, match=r"dt_obs \(0.3\) must be a whole multiple of dt"):
        dalib.setups.lorenz96(dt_obs=0.3, dt=0.07)
