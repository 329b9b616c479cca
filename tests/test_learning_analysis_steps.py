"""Learnable analysis steps trained through the unrolled filter, the time-averaged EKF gain
and the training loop of the LETKF's inflation and radius."""

import numpy as np
import pytest

import dalib
from dalib.da import (
    LETKF,
    KalmanFilter,
    ThreeDVar,
    assimilate,
    observation_locations,
    steady_state_covariance,
    var3d_gain,
)
from dalib.learning import analysis_steps as steps
from dalib.learning.analysis_losses import corrected_observation_loss
from dalib.learning.ensemble_tuning import taper_support, unroll_letkf
from dalib.learning.gains import gain_analysis, learn_gain, time_averaged_ekf_gain

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
jnp = dalib.get_namespace("jax")


def _gain_step(h):
    def step(K, v, y):
        return gain_analysis(K, v, y, h)
    return step


def test_learned_analysis_in_the_driver_equals_3dvar_with_the_same_gain():
    twin = dalib.setups.lorenz96(d=10).simulate(30, rng=3)
    K = 0.4 * np.eye(10) + 0.05 * np.roll(np.eye(10), 1, axis=1)
    step = _gain_step(dalib.setups.lorenz96(d=10, xp="jax").h)
    learned = assimilate(steps.LearnedAnalysis(step, jnp.asarray(K)), twin, rng=0,
                         progress=False).analysis
    reference = assimilate(ThreeDVar(K=K), twin, rng=0, progress=False).analysis
    np.testing.assert_allclose(np.asarray(learned), reference, rtol=1e-10, atol=1e-10)


def test_local_analysis_is_translation_equivariant_and_starts_at_the_local_gain():
    d = 12
    K0 = 0.3 * np.eye(d) + 0.1 * np.roll(np.eye(d), 1, axis=1)
    theta = steps.init_local_analysis(1, np.eye(d), width=3, channels=2, hidden=4, K0=K0)
    rng = np.random.default_rng(0)
    v, y = jnp.asarray(rng.normal(size=(2, d))), jnp.asarray(rng.normal(size=(2, d)))
    # the last layer starts at zero: the step is v + K0 (y - v) for a banded K0
    np.testing.assert_allclose(np.asarray(steps.local_analysis(theta, v, y)),
                               np.asarray(v + (y - v) @ K0.T), rtol=1e-12)
    theta = {**theta, "W3": jnp.ones((4, 1))}  # a nonlinear step
    x = steps.local_analysis(theta, v, y)
    xr = steps.local_analysis(theta, jnp.roll(v, 3, axis=-1), jnp.roll(y, 3, axis=-1))
    np.testing.assert_allclose(np.asarray(xr), np.asarray(jnp.roll(x, 3, axis=-1)),
                               rtol=1e-12, atol=1e-12)


def test_window_loss_gradient_matches_central_differences():
    ssm = dalib.setups.lorenz96(d=8, xp="jax")
    twin = dalib.setups.lorenz96(d=8).simulate(12, rng=2)
    theta = steps.init_local_analysis(3, np.eye(8), width=3, channels=2, hidden=4,
                                      K0=0.3 * np.eye(8), mean=2.0, std=3.0, scale=0.1)
    theta = {**theta, "W3": jnp.asarray(np.linspace(-1, 1, 4)[:, None])}
    x0, y, xt = steps.analysis_windows(twin.x, twin, window=6)
    batch = tuple(jnp.asarray(a) for a in (x0, y, xt))

    for loss in steps.LOSSES:
        def f(s, loss=loss):
            return steps.window_loss(steps.local_analysis, {**theta, "s": s}, batch,
                                     ssm.M, ssm.h, ssm.R, loss=loss, burn_in=1)

        g = float(jax.grad(f)(jnp.asarray(0.1)))
        eps = 1e-5
        fd = (float(f(jnp.asarray(0.1 + eps))) - float(f(jnp.asarray(0.1 - eps)))) / (2 * eps)
        assert abs(fd) > 1e-6
        np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_corrected_window_loss_uses_the_sensitivity_HK_of_a_gain():
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.5, observe=jnp.eye(2), xp="jax")
    twin = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.5, observe=np.eye(2)).simulate(
        40, rng=1)
    K = jnp.asarray([[0.4, 0.1], [0.0, 0.3]])
    x0, y, xt = (jnp.asarray(a) for a in steps.analysis_windows(twin.x, twin, window=8))
    step = _gain_step(ssm.h)
    Jc = steps.window_loss(step, K, (x0, y, xt), ssm.M, ssm.h, ssm.R, loss="corrected")
    _, x = steps.unroll_analysis(step, K, x0, jnp.moveaxis(y, 1, 0), ssm.M)
    expected = corrected_observation_loss(x, jnp.moveaxis(y, 1, 0), ssm.h, 0.5, K)
    np.testing.assert_allclose(float(Jc), float(expected), rtol=1e-12)


@pytest.mark.parametrize("loss, close", [("corrected", True), ("observation", False)])
def test_gain_trained_on_the_corrected_loss_approaches_the_kalman_gain(loss, close):
    # Both components observed: (13) is minimised by K = I (fit the observations), the
    # corrected (13) by the steady-state Kalman gain, like (12).
    kw = {"d": 2, "Q": 0.2, "R": 0.5}
    ssm = dalib.setups.linear_gaussian(observe=np.eye(2), **kw)
    C_f, _ = steady_state_covariance(ssm.M.A, ssm.h, ssm.Q, ssm.R)
    K_inf = var3d_gain(C_f, ssm.h, ssm.R)
    twin = ssm.simulate(8000, rng=1)
    K, _ = learn_gain(dalib.setups.linear_gaussian(observe=jnp.eye(2), xp="jax", **kw),
                      twin, 0.5 * np.eye(2), window=30, burn_in=10, n_iter=600,
                      batch_size=128, rng=2, loss=loss)
    rel = np.linalg.norm(K - K_inf) / np.linalg.norm(K_inf)
    if close:
        assert rel < 0.05
    else:
        np.testing.assert_allclose(K, np.eye(2), atol=0.02)


def test_time_averaged_ekf_gain_of_a_linear_model_is_the_steady_state_kalman_gain():
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.5)
    C_f, _ = steady_state_covariance(ssm.M.A, ssm.h, ssm.Q, ssm.R)
    K_inf = var3d_gain(C_f, ssm.h, ssm.R)
    twin = ssm.simulate(300, rng=1)
    K_bar, run = time_averaged_ekf_gain(twin, burn_in=100)
    np.testing.assert_allclose(K_bar, K_inf, rtol=1e-8)
    kf = assimilate(KalmanFilter(), twin, rng=0, progress=False)
    np.testing.assert_allclose(run.analysis, kf.analysis, rtol=1e-10, atol=1e-12)


def test_unrolled_letkf_equals_the_driver_letkf():
    ssm = dalib.setups.lorenz96(d=10, xp="jax")
    twin = dalib.setups.lorenz96(d=10).simulate(8, rng=4)
    run = assimilate(LETKF(N=8, radius=2.5, inflation=1.05), twin, rng=5,
                     store_ensembles=True, progress=False)
    local, dist = taper_support(10, observation_locations(ssm.h), 4.0, xp="jax")
    theta = {"inflation": 1.05, "radius": 2.5}
    E0 = jnp.asarray(run.ensembles_a[0])[None]
    means = unroll_letkf(theta, E0, jnp.asarray(twin.y)[:, None, :], ssm.M, ssm.h, ssm.R,
                         local, dist)
    np.testing.assert_allclose(np.asarray(means[:, 0, :]), run.analysis[1:], rtol=1e-9,
                               atol=1e-9)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="loss"):
        steps.learn_analysis(lambda t, v, y: v, {}, None, None, None, loss="other", rng=0)
    with pytest.raises(ValueError, match="K0"):
        steps.init_local_analysis(0, np.eye(4), K0=np.eye(3))
    with pytest.raises(ValueError, match="width"):
        steps.init_local_analysis(0, np.eye(4), width=4)
    with pytest.raises(TypeError, match="step"):
        steps.LearnedAnalysis(None, {})


def test_letkf_grid_runs_the_driver_for_every_pair():
    twin = dalib.setups.lorenz96(d=10).simulate(30, rng=2)
    grid = dalib.learning.letkf_grid(twin, 8, [1.0, 1.05], [2.0, 3.0], rng=5, burn_in=5)
    one = assimilate(LETKF(8, radius=3.0, inflation=1.05), twin, rng=5, burn_in=5,
                     progress=False).rmse()
    assert grid.shape == (2, 2)
    np.testing.assert_allclose(grid[1, 1], float(one), rtol=1e-12)


def test_learn_inflation_radius_names_bad_inputs():
    ssm = dalib.setups.lorenz96(d=10, xp="jax")
    twin = dalib.setups.lorenz96(d=10).simulate(30, rng=2)
    with pytest.raises(ValueError, match="c_max"):
        dalib.learning.learn_inflation_radius(ssm, twin, 8, 1.05, 5.0, c_max=4.0, rng=0)
    with pytest.raises(ValueError, match="burn_in"):
        dalib.learning.learn_inflation_radius(ssm, twin, 8, 1.05, 2.0, c_max=4.0,
                                              window=5, burn_in=5, rng=0)
