"""Losses (12) and (13) for learned analysis steps, and the corrected observation loss."""

import functools

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import (
    KalmanFilter,
    ThreeDVar,
    assimilate,
    steady_state_covariance,
    var3d_gain,
)
from dalib.learning.analysis_losses import (
    corrected_observation_loss,
    observation_loss,
    truth_loss,
)


@functools.lru_cache
def _numpy_run(observed, kappa, J, seed):
    H = np.eye(2)[:observed]
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.5, observe=H)
    C_f, _ = steady_state_covariance(ssm.M.A, ssm.h, ssm.Q, ssm.R)
    K = kappa * var3d_gain(C_f, ssm.h, ssm.R)
    twin = ssm.simulate(J, rng=seed)
    x = assimilate(ThreeDVar(K=K), twin, rng=seed + 1, progress=False).analysis[1:, :]
    return H, K, twin.x[1:, :], twin.y, x


def _gain_run(xp, observed, kappa, J, seed):
    """A linear-Gaussian twin (run once, in NumPy) cycled with the gain kappa K_infinity,
    handed to the backend ``xp``: H, K, truth, observations, analyses and h."""
    arrays = [dalib.asarray(a, xp) for a in _numpy_run(observed, kappa, J, seed)]
    return (*arrays, dalib.observations.Matrix(arrays[0]))


@pytest.mark.parametrize("kappa", [0.5, 1.6])
def test_corrected_observation_loss_equals_truth_loss_in_expectation(xp, kappa):
    # All observed (h the identity), so the corrected (13) estimates (12) without bias,
    # while the plain (13) is lower by 2 tr(KR) - tr(R).
    H, K, xt, y, x, h = _gain_run(xp, 2, kappa, J=3000, seed=11)
    J12 = float(truth_loss(x, xt))
    J13 = float(observation_loss(x, y, h))
    Jc = float(corrected_observation_loss(x, y, h, 0.5, H @ K))
    # Monte Carlo error of the difference, from its own time series
    per_time = (npy(xp.sum((x - y) ** 2, axis=1)) - npy(xp.sum((x - xt) ** 2, axis=1))
                + Jc - J13)
    se = per_time.std() / np.sqrt(per_time.size)
    assert abs(Jc - J12) < 4 * se
    assert abs(J13 - J12) > 10 * se  # the uncorrected loss is biased
    np.testing.assert_allclose(Jc - J13, float(2 * xp.linalg.trace(K) * 0.5 - 1.0),
                               rtol=1e-12)


def test_corrected_loss_estimates_the_observation_space_error(xp):
    # One of two components observed: the corrected loss estimates ||H(x - x^t)||^2.
    H, K, xt, y, x, h = _gain_run(xp, 1, 1.0, J=3000, seed=5)
    Jc = float(corrected_observation_loss(x, y, h, 0.5, H @ K))
    err = npy(xp.sum((h(x) - h(xt)) ** 2, axis=1))
    assert abs(Jc - err.mean()) < 4 * 3 * err.std() / np.sqrt(err.size)  # 3: correlation


def test_right_inverse_fits_observations_perfectly_but_not_the_truth(xp):
    # h(x) = Hx with H the first component of each pair: surjective, right inverse H^T.
    ssm = dalib.setups.linear_gaussian(d=4, Q=0.2, R=0.5)
    twin = ssm.simulate(1000, rng=3)
    kf = assimilate(KalmanFilter(), twin, rng=4, progress=False).analysis[1:, :]
    H, xt, y, kf = (dalib.asarray(a, xp) for a in (ssm.h.H, twin.x[1:, :], twin.y, kf))
    h = dalib.observations.Matrix(H)
    x_inv = y @ H  # rows H^T y_j, and H H^T = I
    assert float(observation_loss(x_inv, y, h)) < 1e-24
    assert float(truth_loss(x_inv, xt)) > 3 * float(truth_loss(kf, xt))
    assert float(observation_loss(kf, y, h)) > 0.1
    # the correction (sensitivity I) reveals the error in observation space: tr(R) = 1
    Jc = float(corrected_observation_loss(x_inv, y, h, 0.5, xp.eye(2, dtype=H.dtype)))
    np.testing.assert_allclose(Jc, 1.0, rtol=1e-12)


def test_losses_are_differentiable_under_jax():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    h = dalib.observations.Identity(3)
    x = jnp.asarray([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]])
    y = jnp.asarray([[1.5, 2.0, 2.0], [0.5, -1.0, 1.0]])

    def f(K):  # analysis x + K(y - x) with the sensitivity K
        xa = x + (y - x) @ K.T
        return truth_loss(xa, y) + corrected_observation_loss(xa, y, h, 0.5, K)

    K = 0.3 * jnp.eye(3)
    g = jax.grad(f)(K)
    E = np.zeros((3, 3))
    E[1, 2] = 1e-6
    fd = (float(f(K + E)) - float(f(K - E))) / 2e-6
    np.testing.assert_allclose(float(g[1, 2]), fd, rtol=1e-6)


def test_bad_inputs_are_named():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="x_true"):
        truth_loss(x, np.zeros((5, 3)))
    with pytest.raises(TypeError, match="h must be"):
        observation_loss(x, x, None)
    h = dalib.observations.Identity(2)
    with pytest.raises(ValueError, match="sensitivity"):
        corrected_observation_loss(x, x, h, 1.0, np.eye(3))
