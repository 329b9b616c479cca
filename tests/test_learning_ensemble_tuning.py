"""Inflation and localisation radius of the LETKF as differentiable parameters."""

import numpy as np
import pytest

import dalib
from dalib.da import LETKF, assimilate, observation_locations
from dalib.learning.analysis_losses import truth_loss
from dalib.learning.ensemble_tuning import letkf_window_loss, taper_support, tapered


def _lorenz96_window(xp, J=8):
    ssm = dalib.setups.lorenz96(d=10, xp=xp)
    twin = ssm.simulate(J, rng=4)
    local, dist = taper_support(10, observation_locations(ssm.h), 4.0, xp=xp)
    return ssm, twin, local, dist


def test_tapered_letkf_with_a_smaller_radius_equals_the_driver_letkf(xp):
    # The sets of half-width 4 with the weights of half-width 2.5 give the LETKF of radius
    # 2.5, whose driver builds its own (smaller) sets.
    ssm, twin, local, dist = _lorenz96_window(xp)
    run = assimilate(LETKF(N=8, radius=2.5, inflation=1.05), twin, rng=5,
                     store_ensembles=True, progress=False)
    theta = {"inflation": 1.05, "radius": 2.5}
    J = letkf_window_loss(theta, run.ensembles_a[0, :, :], twin.y, twin.x[1:, :], ssm.M, ssm.h,
                          ssm.R, local, dist)
    expected = truth_loss(run.analysis[1:, :], twin.x[1:, :])
    np.testing.assert_allclose(float(J), float(expected), rtol=1e-10)
    assert float(J) > 1e-3  # not a trivial match


def test_window_loss_gradient_matches_central_differences():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    ssm, twin, local, dist = _lorenz96_window("jax", J=6)
    E0 = ssm.m0 + ssm.C0.scaled(0.5).sample(dalib.default_rng(1, jnp), (8,))

    @jax.jit
    def loss(alpha, c):
        theta = {"inflation": alpha, "radius": c}
        return letkf_window_loss(theta, E0, twin.y, twin.x[1:, :], ssm.M, ssm.h, ssm.R,
                                 local, dist, burn_in=1)

    a0, c0 = jnp.asarray(1.08), jnp.asarray(2.3)
    grad = jax.grad(loss, argnums=(0, 1))(a0, c0)
    eps = 1e-5
    fd_a = (float(loss(a0 + eps, c0)) - float(loss(a0 - eps, c0))) / (2 * eps)
    fd_c = (float(loss(a0, c0 + eps)) - float(loss(a0, c0 - eps))) / (2 * eps)
    assert abs(fd_a) > 1e-4 and abs(fd_c) > 1e-4  # both parameters matter here
    np.testing.assert_allclose(float(grad[0]), fd_a, rtol=1e-5)
    np.testing.assert_allclose(float(grad[1]), fd_c, rtol=1e-5)


def test_tapered_refuses_a_radius_beyond_the_support():
    local, dist = taper_support(10, range(10), 2.0)
    with pytest.raises(ValueError, match="c_max"):
        tapered(local, dist, 2.5)
    w = tapered(local, dist, 1.0).weight
    assert np.all(w[dist >= 2.0] == 0) and np.any(w > 0)
