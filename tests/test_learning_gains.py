"""Learning a constant gain through the unrolled filter (example 2 of the lecture)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import (
    ThreeDVar,
    assimilate,
    steady_state_covariance,
    var3d_analysis,
    var3d_gain,
)
from dalib.learning.gains import gain_analysis, gain_windows, learn_gain, unroll_gain


def test_gain_analysis_of_a_stack_equals_the_3dvar_analysis_of_each_row(xp):
    ssm = dalib.setups.linear_gaussian(d=4, xp=xp)
    K = dalib.asarray(np.arange(8.0).reshape(4, 2) / 10, xp)
    v = dalib.asarray(np.linspace(-1, 1, 12).reshape(3, 4), xp)
    y = dalib.asarray(np.linspace(0, 2, 6).reshape(3, 2), xp)
    xa = gain_analysis(K, v, y, ssm.h)
    for i in range(3):
        np.testing.assert_allclose(npy(xa[i, :]), npy(var3d_analysis(v[i, :], y[i, :],
                                                                      ssm.h, K)), rtol=1e-14)


def test_unrolled_gain_filter_equals_the_cycling_driver():
    pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    ssm = dalib.setups.lorenz96(d=10, xp="jax")
    twin = dalib.setups.lorenz96(d=10).simulate(20, rng=3)
    K = 0.6 * np.eye(10)
    driver = assimilate(ThreeDVar(K=K), twin, rng=0, progress=False).analysis[1:, :]
    y = jnp.asarray(twin.y)[:, None, :]
    x0 = jnp.asarray(twin.ssm.m0)[None, :]
    xa = unroll_gain(jnp.asarray(K), x0, y, ssm.M, ssm.h)[:, 0, :]
    np.testing.assert_allclose(np.asarray(xa), driver, rtol=1e-10, atol=1e-10)


def test_windows_hold_the_right_times():
    twin = dalib.setups.linear_gaussian(d=2).simulate(10, rng=1)
    xs = twin.x + 1.0
    x0, y, xt = gain_windows(xs, twin, window=4, stride=3)
    assert x0.shape == (3, 2) and y.shape == (3, 4, 1) and xt.shape == (3, 4, 2)
    np.testing.assert_array_equal(x0[1], xs[3])
    np.testing.assert_array_equal(y[1], twin.y[3:7])
    np.testing.assert_array_equal(xt[1], twin.x[4:8])
    with pytest.raises(ValueError, match="window"):
        gain_windows(xs, twin, window=11)


def test_learned_gain_approaches_the_steady_state_kalman_gain():
    pytest.importorskip("optax")
    kw = {"d": 2, "Q": 0.2, "R": 0.5}
    ssm = dalib.setups.linear_gaussian(**kw)
    C_f, _ = steady_state_covariance(ssm.M.A, ssm.h, ssm.Q, ssm.R)
    K_inf = var3d_gain(C_f, ssm.h, ssm.R)
    K0 = var3d_gain(np.eye(2), ssm.h, ssm.R)  # 3DVar with B = I: 25% off
    assert np.linalg.norm(K0 - K_inf) / np.linalg.norm(K_inf) > 0.2
    twin = ssm.simulate(8000, rng=1)
    K, history = learn_gain(dalib.setups.linear_gaussian(xp="jax", **kw), twin, K0,
                            window=30, burn_in=10, n_iter=600, batch_size=128, rng=2)
    assert np.linalg.norm(K - K_inf) / np.linalg.norm(K_inf) < 0.05
    assert history[-50:].mean() < history[:50].mean()


def test_learn_gain_names_bad_inputs():
    ssm = dalib.setups.linear_gaussian(d=2)
    twin = ssm.simulate(20, rng=1)
    with pytest.raises(ValueError, match="K0"):
        learn_gain(ssm, twin, np.zeros((2, 2)), rng=0)
    with pytest.raises(ValueError, match="burn_in"):
        learn_gain(ssm, twin, np.zeros((2, 1)), window=5, burn_in=5, rng=0)
