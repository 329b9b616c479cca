"""Forecast models: facts that hold independently of the implementation."""

import math

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.models import (
    LinearModel,
    Lorenz63,
    Lorenz96,
    Lorenz96TwoScale,
    RK4Map,
    rk4_step,
    trajectory,
)

MODELS = {
    "lorenz63": lambda: Lorenz63(),
    "lorenz96": lambda: Lorenz96(d=12, F=8.0),
    "two_scale": lambda: Lorenz96TwoScale(K=6, J=4),
}


class Rotation:
    """dx/dt = A x with A a rotation generator: exact solution known in closed form."""

    d = 2

    def rhs(self, x):
        return dalib.namespace(x).stack([-x[..., 1], x[..., 0]], axis=-1)


def test_rk4_is_fourth_order(xp):
    x0 = xp.asarray([1.0, 0.0])
    T = 2.0
    exact = np.array([math.cos(T), math.sin(T)])
    errors = []
    for n in (10, 20, 40, 80):
        x = RK4Map(Rotation(), dt=T / n, steps=n)(x0)
        errors.append(np.linalg.norm(npy(x) - exact))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 4) < 0.1), orders


def test_rk4_order_on_lorenz63():
    # Richardson-style: halving dt divides the error against a fine solution by ~16.
    ode = Lorenz63()
    x0 = np.array([1.0, 2.0, 20.0])
    ref = RK4Map(ode, dt=1e-4, steps=5000)(x0)
    errs = [np.linalg.norm(RK4Map(ode, dt=0.5 / n, steps=n)(x0) - ref) for n in (50, 100, 200)]
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 13) & (ratios < 19)), ratios


def test_lorenz63_fixed_points(xp):
    ode = Lorenz63()
    for p in ode.fixed_points():
        f = ode.rhs(xp.asarray(p))
        assert np.max(np.abs(npy(f))) < 1e-12
    c = math.sqrt(8 / 3 * 27)
    assert ode.fixed_points()[1] == pytest.approx((c, c, 27.0))


def test_lorenz96_advection_conserves_energy(xp, rng):
    ode = Lorenz96(d=37)
    x = xp.asarray(rng.standard_normal((5, 37)) * 3)
    power = xp.sum(x * ode.advection(x), axis=-1)
    assert np.max(np.abs(npy(power))) < 1e-11


def test_lorenz96_rest_state_is_equilibrium(xp):
    ode = Lorenz96(d=40, F=8.0)
    assert np.max(np.abs(npy(ode.rhs(xp.full((40,), 8.0, dtype=xp.float64))))) < 1e-14


def test_lorenz96_formula_by_hand(rng):
    ode = Lorenz96(d=6, F=3.0)
    x = rng.standard_normal(6)
    expected = [(x[(i + 1) % 6] - x[i - 2]) * x[i - 1] - x[i] + 3.0 for i in range(6)]
    np.testing.assert_allclose(ode.rhs(x), expected, rtol=1e-14)


def test_two_scale_formula_by_hand(rng):
    K, J, F, h, b, c = 4, 3, 10.0, 1.0, 10.0, 10.0
    ode = Lorenz96TwoScale(K, J, F, h, b, c)
    x = rng.standard_normal(ode.d)
    X, Y = x[:K], x[K:]
    dX = [X[k - 1] * (X[(k + 1) % K] - X[k - 2]) - X[k] + F - h * c / b * Y[k * J:(k + 1) * J].sum()
          for k in range(K)]
    n = K * J
    dY = [-c * b * Y[(i + 1) % n] * (Y[(i + 2) % n] - Y[i - 1]) - c * Y[i] + h * c / b * X[i // J]
          for i in range(n)]
    np.testing.assert_allclose(ode.rhs(x), np.concatenate([dX, dY]), rtol=1e-13)


@pytest.mark.slow
def test_lorenz96_climatology():
    # Long-run statistics of L96 (d=40, F=8): mean about 2.35 and standard deviation about
    # 3.6 (e.g. Lorenz and Emanuel 1998; the climatological RMSE of Sakov and Oke 2008).
    ssm = dalib.setups.lorenz96()
    x = trajectory(ssm.M, ssm.m0, 6000)[1000:]
    assert 2.25 < x.mean() < 2.45
    assert 3.5 < x.std() < 3.75


@pytest.mark.parametrize("name", list(MODELS))
def test_rhs_jvp_matches_finite_differences(name, rng):
    ode = MODELS[name]()
    x = rng.standard_normal(ode.d) * 2
    dx = rng.standard_normal(ode.d)
    eps = 1e-6
    fd = (ode.rhs(x + eps * dx) - ode.rhs(x - eps * dx)) / (2 * eps)
    np.testing.assert_allclose(ode.rhs_jvp(x, dx), fd, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", list(MODELS))
def test_rhs_vjp_is_transpose_of_jvp(name, xp, rng):
    ode = MODELS[name]()
    x, dx, w = (xp.asarray(rng.standard_normal((3, ode.d))) for _ in range(3))
    lhs = xp.sum(ode.rhs_jvp(x, dx) * w, axis=-1)
    rhs = xp.sum(dx * ode.rhs_vjp(x, w), axis=-1)
    np.testing.assert_allclose(npy(lhs), npy(rhs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_tangent_linear_step_matches_finite_differences(name, xp, rng):
    ode = MODELS[name]()
    M = RK4Map(ode, dt=0.002 if name == "two_scale" else 0.01, steps=5)
    x = xp.asarray(rng.standard_normal(ode.d))
    dx = xp.asarray(rng.standard_normal(ode.d))
    eps = 1e-6
    fd = (M(x + eps * dx) - M(x - eps * dx)) / (2 * eps)
    x1, tl = M.jvp(x, dx)
    np.testing.assert_allclose(npy(x1), npy(M(x)), rtol=1e-14)
    np.testing.assert_allclose(npy(tl), npy(fd), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(MODELS))
def test_adjoint_passes_dot_product_test(name, xp, rng):
    ode = MODELS[name]()
    M = RK4Map(ode, dt=0.002, steps=4)
    x, dx, w = (xp.asarray(rng.standard_normal(ode.d)) for _ in range(3))
    _, tl = M.jvp(x, dx)
    lhs = float(xp.sum(tl * w))
    rhs = float(xp.sum(dx * M.vjp(x, w)))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_batched_forecast_equals_one_by_one(xp, rng):
    M = RK4Map(Lorenz96(d=10), dt=0.05, steps=3)
    E = xp.asarray(rng.standard_normal((4, 2, 10)))
    batch = npy(M(E))
    for i in range(4):
        for j in range(2):
            np.testing.assert_allclose(batch[i, j], npy(M(E[i, j, :])), rtol=1e-14)


def test_linear_model(xp, rng):
    A = rng.standard_normal((3, 3))
    M = LinearModel(xp.asarray(A))
    x, dx, w = rng.standard_normal((3, 3))
    np.testing.assert_allclose(npy(M(xp.asarray(x))), A @ x)
    np.testing.assert_allclose(npy(M.jvp(xp.asarray(x), xp.asarray(dx))[1]), A @ dx)
    np.testing.assert_allclose(npy(M.vjp(xp.asarray(x), xp.asarray(w))), A.T @ w)


def test_trajectory_shape(xp):
    M = RK4Map(Lorenz63(), dt=0.01)
    X = trajectory(M, xp.asarray([1.0, 1.0, 1.0]), 7)
    assert X.shape == (8, 3)
    np.testing.assert_allclose(npy(X[1, :]), npy(rk4_step(Lorenz63().rhs, X[0, :], 0.01)))


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 40\)"):
        Lorenz96(d=40).rhs(np.zeros(39))
    with pytest.raises(ValueError, match="d must be an integer >= 4"):
        Lorenz96(d=3)
    with pytest.raises(ValueError, match="dt must be positive"):
        RK4Map(Lorenz63(), dt=-0.1)
    with pytest.raises(TypeError, match="steps must be an integer"):
        RK4Map(Lorenz63(), dt=0.1, steps=2.5)
    with pytest.raises(ValueError, match="A must be square"):
        LinearModel(np.zeros((2, 3)))
