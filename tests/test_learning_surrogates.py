"""dalib.learning.surrogates and dalib.learning.skill, on every backend."""

import math

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.learning import skill, surrogates


def _arr(xp, a):
    return dalib.asarray(np.asarray(a, dtype=float), xp)


def test_local_stencil_lists_the_periodic_neighbours(xp):
    x = _arr(xp, np.arange(2 * 6).reshape(2, 6))
    z = npy(surrogates.local_stencil(x, 2))
    assert z.shape == (2, 6, 5)
    np.testing.assert_array_equal(z[0, 0], [4, 5, 0, 1, 2])
    np.testing.assert_array_equal(z[1, 5], [9, 10, 11, 6, 7])


def test_ridge_is_least_squares_without_penalty_and_shrinks_with_it(xp, rng):
    Phi, theta = rng.normal(size=(50, 4)), rng.normal(size=4)
    Y = Phi @ theta
    np.testing.assert_allclose(npy(surrogates.ridge(_arr(xp, Phi), _arr(xp, Y), 0.0)), theta,
                               rtol=1e-10)
    lam = 3.0
    expected = np.linalg.solve(Phi.T @ Phi + lam * np.eye(4), Phi.T @ Y)
    got = npy(surrogates.ridge(_arr(xp, Phi), _arr(xp, Y), lam))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert np.linalg.norm(got) < np.linalg.norm(theta)
    with pytest.raises(ValueError, match="lam"):
        surrogates.ridge(_arr(xp, Phi), _arr(xp, Y), -1.0)


def test_random_features_approximate_the_gaussian_kernel(xp, rng):
    # phi(z).phi(z') -> exp(-|z - z'|^2 / 2 l^2), Monte Carlo error ~ 1/sqrt(D).
    D, ell = 20000, 1.5
    W = rng.normal(size=(3, D)) / ell
    b = rng.uniform(0, 2 * np.pi, size=D)
    z = rng.normal(size=(4, 3))
    phi = npy(surrogates.random_fourier_features(_arr(xp, z), _arr(xp, W), _arr(xp, b)))
    K = np.exp(-np.sum((z[:, None] - z[None]) ** 2, axis=-1) / (2 * ell**2))
    assert np.max(np.abs(phi @ phi.T - K)) < 4 / math.sqrt(D)


def test_local_random_features_recover_a_map_in_their_span_exactly(xp):
    # A target built from the model's own features is recovered as lambda -> 0.
    x = _arr(xp, np.random.default_rng(1).normal(size=(60, 10)))
    ref = surrogates.LocalRandomFeatures.fit(x, x, radius=1, n_features=30, rng=5)
    theta_true = np.random.default_rng(2).normal(size=30)
    target_model = surrogates.LocalRandomFeatures(ref.W, ref.b, _arr(xp, theta_true),
                                                  ref.mean, ref.std, 1)
    y = target_model(x)
    model = surrogates.LocalRandomFeatures.fit(x, y, radius=1, n_features=30, lam=1e-14,
                                               rng=5)
    np.testing.assert_allclose(npy(model.theta), theta_true, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(npy(model(x)), npy(y), atol=1e-8)


def test_local_random_features_converge_to_a_smooth_local_map(xp):
    def g(x):
        return np.sin(np.roll(x, 1, -1)) * np.roll(x, -1, -1)

    rng = np.random.default_rng(3)
    x, x_test = rng.normal(size=(400, 20)), rng.normal(size=(50, 20))
    errors = []
    for D in (20, 400):
        model = surrogates.LocalRandomFeatures.fit(_arr(xp, x), _arr(xp, g(x)), radius=1,
                                                   n_features=D, length_scale=1.5,
                                                   lam=1e-8, rng=4)
        assert dalib.namespace(model.theta) is xp
        errors.append(np.sqrt(np.mean((npy(model(_arr(xp, x_test))) - g(x_test)) ** 2)))
    assert errors[1] < errors[0] / 5 and errors[1] < 0.05


def test_rk4_step_is_the_fourth_order_taylor_polynomial_for_linear_tendencies(xp):
    a, dt = -0.7, 0.1
    step = surrogates.rk4_step(lambda x: a * x, dt)
    x = _arr(xp, [1.0, -2.0])
    h = a * dt
    np.testing.assert_allclose(npy(step(x)), npy(x) * (1 + h + h**2 / 2 + h**3 / 6 + h**4 / 24),
                               rtol=1e-14)


def test_rk4_step_of_the_lorenz96_tendency_is_dalibs_rk4_map(xp):
    ode = dalib.models.Lorenz96(40, 8.0)
    M = dalib.models.RK4Map(ode, 0.05)
    x = _arr(xp, 8.0 + np.random.default_rng(5).normal(size=(3, 40)))
    np.testing.assert_allclose(npy(surrogates.rk4_step(ode.rhs, 0.05)(x)), npy(M(x)), rtol=1e-12)


def test_rollout_equals_repeated_stepping(xp):
    ode = dalib.models.Lorenz96(8, 8.0)
    step = surrogates.rk4_step(ode.rhs, 0.05)
    x0 = _arr(xp, 8.0 + np.random.default_rng(6).normal(size=(2, 8)))
    traj = surrogates.rollout(step, x0, 5)
    assert traj.shape == (6, 2, 8) and dalib.namespace(traj) is xp
    x = x0
    for n in range(6):
        np.testing.assert_array_equal(npy(traj[n, ...]), npy(x))
        x = step(x)


def test_periodic_interpolation_keeps_observed_sites_and_interpolates_linearly(xp):
    y = _arr(xp, [[1.0, 3.0, 5.0, 9.0]])
    x = npy(surrogates.periodic_interpolation(y, 8, 2))
    np.testing.assert_array_equal(x, [[1, 2, 3, 4, 5, 7, 9, 5]])
    x3 = npy(surrogates.periodic_interpolation(_arr(xp, [0.0, 3.0]), 6, 3))
    np.testing.assert_allclose(x3, [0, 1, 2, 3, 2, 1])
    with pytest.raises(ValueError, match="d // every"):
        surrogates.periodic_interpolation(y, 9, 2)


def test_valid_time_on_a_constructed_error_growth(xp):
    # Error 0.1 * n * std at lead n: the normalised RMSE first exceeds 0.5 at n = 6.
    std, dt, n_lead = 2.0, 0.05, 20
    truth = np.random.default_rng(7).normal(size=(n_lead + 1, 3, 4))
    growth = np.array([0.1, 0.1, 0.01])[None, :, None] * np.arange(n_lead + 1)[:, None, None]
    forecast = truth + std * growth
    vt = npy(skill.valid_time(_arr(xp, forecast), _arr(xp, truth), dt, std=std))
    lam = skill.LYAPUNOV_EXPONENT_L96
    np.testing.assert_allclose(vt, [6 * dt * lam, 6 * dt * lam, n_lead * dt * lam])
    e = npy(skill.normalised_rmse(_arr(xp, forecast), _arr(xp, truth), std))
    np.testing.assert_allclose(e[:, 0], 0.1 * np.arange(n_lead + 1), atol=1e-12)
    vt2 = npy(skill.valid_time(_arr(xp, forecast), _arr(xp, truth), dt, std=std,
                               threshold=0.25, lyapunov_exponent=1.0))
    np.testing.assert_allclose(vt2[:2], 3 * dt)


def test_climatology_of_a_travelling_wave(xp):
    # x_i(t) = a + b cos(2 pi k i / d - t): mean a, std b / sqrt 2, power b^2 / 4 at k.
    a, b, k, d = 1.5, 2.0, 3, 16
    t = np.linspace(0, 2 * np.pi, 50, endpoint=False)[:, None]
    x = a + b * np.cos(2 * np.pi * k * np.arange(d) / d - t)
    c = skill.climatology(_arr(xp, x))
    assert abs(c.mean - a) < 1e-12 and abs(c.std - b / math.sqrt(2)) < 1e-12
    P = npy(c.spectrum)
    assert P.shape == (d // 2 + 1,)
    np.testing.assert_allclose(P[k], b**2 / 4, rtol=1e-12)
    np.testing.assert_allclose(np.delete(P, k), 0, atol=1e-20)


def test_network_surrogate_learns_lorenz96_one_step_maps():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    x = npy(dalib.setups.lorenz96(d=12).simulate(400, rng=1).x)
    model = surrogates.fit_network_surrogate(x, dt=0.05, rng=2, n_iter=600, width=3,
                                             channels=4, hidden=8)
    assert model.history.shape == (600,)
    assert np.mean(model.history[-50:]) < np.mean(model.history[:10]) / 20
    # The one-step map is RK4 of the network tendency, in double precision.
    np.testing.assert_allclose(np.asarray(model(x[:3])),
                               npy(surrogates.rk4_step(model.tendency, 0.05)(x[:3])),
                               rtol=1e-12)
    assert model.params["W1"].dtype == np.float64
    persistence = np.sqrt(np.mean((x[1:] - x[:-1]) ** 2))
    assert np.sqrt(np.mean((np.asarray(model(x[:-1])) - x[1:]) ** 2)) < persistence / 5


def test_network_surrogate_takes_explicit_targets_of_the_same_shape():
    pytest.importorskip("jax")
    x = np.random.default_rng(3).normal(size=(20, 8))
    with pytest.raises(ValueError, match="targets"):
        surrogates.fit_network_surrogate(x, x[:-1], dt=0.05, rng=0, n_iter=2)
    with pytest.raises(ValueError, match="states"):
        surrogates.fit_network_surrogate(x[0], dt=0.05, rng=0, n_iter=2)
    model = surrogates.fit_network_surrogate(x, 2 * x, dt=0.05, rng=0, n_iter=2,
                                             width=3, channels=1, hidden=2)
    assert model.history.shape == (2,)
