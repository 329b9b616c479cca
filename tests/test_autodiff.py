"""Hand-written forward and reverse mode against each other and finite differences."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.autodiff import (
    Elementary,
    as_elementary,
    evaluate,
    fd_gradient,
    fd_jvp,
    forward_mode,
    relative_error,
    reverse_mode,
)
from dalib.models import Lorenz96, RK4Map
from dalib.observations import Elementwise, EveryKth


def composition(xp):
    """Three RK4 steps of Lorenz-96 (d=8), then arctan of every other component."""
    step = as_elementary(RK4Map(Lorenz96(d=8), dt=0.05), "step")
    h = as_elementary(Elementwise(EveryKth(8, 2), "arctan"), "h")
    square = Elementary(lambda g: g * g, lambda g, V: 2 * g[:, None] * V,
                        lambda g, W: 2 * (g[:, None] * W if W.ndim == 2 else g * W), "square")
    return [step, step, step, h, square]


def test_forward_equals_reverse_equals_finite_differences(xp, rng):
    maps = composition(xp)
    x = xp.asarray(rng.standard_normal(8) * 2 + 2)
    y, J_fwd = forward_mode(maps, x)
    y2, J_rev_T = reverse_mode(maps, x)
    assert J_fwd.shape == (4, 8) and J_rev_T.shape == (8, 4)
    np.testing.assert_allclose(npy(y), npy(evaluate(maps, x)), rtol=1e-14)
    np.testing.assert_allclose(npy(J_fwd), npy(J_rev_T).T, rtol=1e-11, atol=1e-13)
    e = xp.eye(8, dtype=xp.float64)
    fd = xp.stack([fd_jvp(lambda z: evaluate(maps, z), x, e[i, :], h=1e-6) for i in range(8)], axis=1)
    assert relative_error(J_fwd, fd) < 1e-7


def test_reverse_mode_gradient_of_a_scalar(xp, rng):
    maps = composition(xp)
    loss = Elementary(lambda g: xp.sum(g, keepdims=True), lambda g, V: xp.sum(V, axis=0, keepdims=True),
                      lambda g, W: xp.ones_like(g) * W[0], "sum")
    x = xp.asarray(rng.standard_normal(8) + 2)
    _, grad = reverse_mode([*maps, loss], x, W=xp.asarray([1.0]))
    fd = fd_gradient(lambda z: evaluate([*maps, loss], z)[0], x)
    assert grad.shape == (8,)
    assert relative_error(grad, fd) < 1e-7


def test_finite_difference_orders():
    f = np.sin
    x = np.array([0.7])
    exact = np.cos(0.7)
    errs_fwd = [abs(fd_gradient(lambda z: f(z)[0], x, h, "forward")[0] - exact) for h in (1e-2, 1e-3)]
    errs_cen = [abs(fd_gradient(lambda z: f(z)[0], x, h, "central")[0] - exact) for h in (1e-2, 1e-3)]
    assert errs_fwd[0] / errs_fwd[1] == pytest.approx(10, rel=0.1)   # O(h)
    assert errs_cen[0] / errs_cen[1] == pytest.approx(100, rel=0.1)  # O(h^2)
    with pytest.raises(ValueError, match="scheme must be"):
        fd_gradient(np.sum, x, scheme="backward")


def test_jax_agrees_with_hand_written_modes():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    maps = composition(jnp)
    x = jnp.asarray(np.linspace(-1, 2, 8))
    _, J_fwd = forward_mode(maps, x)
    J_jax = jax.jacfwd(lambda z: evaluate(maps, z))(x)
    assert relative_error(J_fwd, J_jax) < 1e-12
