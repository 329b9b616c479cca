"""dalib code inside jax.jit: argument checks on concrete arrays, RK4 loops."""

import numpy as np
import pytest

import dalib
from dalib._validate import check_array, check_positive
from dalib.models import Lorenz63, RK4Map


def test_checks_skip_values_staged_by_jit():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    y = jnp.ones(3)  # concrete, captured by the jitted function

    @jax.jit
    def f(x):
        check_array(y, "y", ndim=1)
        check_positive(y, "y")
        return x + y

    np.testing.assert_allclose(np.asarray(f(jnp.zeros(3))), 1.0)
    with pytest.raises(ValueError, match="y contains NaN"):
        check_array(jnp.asarray([1.0, np.nan]), "y")


def test_rk4map_under_jit_and_grad_equals_the_eager_map():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    x0 = jnp.asarray([1.0, 2.0, 20.0])
    M = RK4Map(Lorenz63(), 0.01, 7)
    eager = np.asarray(M(x0))
    jitted = np.asarray(jax.jit(M)(x0))
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    J = jax.jacfwd(M)(x0)
    _, dx = M.jvp(np.asarray(x0), np.eye(3))
    np.testing.assert_allclose(np.asarray(J), np.asarray(dx).T, rtol=1e-10)
