"""State-parameter augmentation in the EnKF (chapter 7, example 1)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.learning import AugmentedObservation, augmented_enkf
from dalib.models import Lorenz96, RK4Map
from dalib.observations import EveryKth


def test_augmented_observation_ignores_the_parameters(xp):
    h = AugmentedObservation(EveryKth(6, 2), k=2)
    assert (h.d, h.p) == (8, 3)
    rng = np.random.default_rng(0)
    z, v, w = rng.standard_normal(8), rng.standard_normal(8), rng.standard_normal(3)
    Z, V, W = (dalib.asarray(a, xp) for a in (z, v, w))
    np.testing.assert_allclose(npy(h(Z)), z[0:6:2])
    # dot-product test of jvp and vjp
    assert float(h.jvp(Z, V) @ W) == pytest.approx(float(V @ h.vjp(Z, W)), rel=1e-12)
    assert np.all(npy(h.vjp(Z, W))[6:] == 0)


def _model(th):
    return RK4Map(Lorenz96(40, th[:, 0:1]), 0.05)


def test_augmented_enkf_estimates_the_lorenz96_forcing():
    twin = dalib.setups.lorenz96(obs_every=2).simulate(200, rng=0)
    res = augmented_enkf(twin, _model, [6.0], [1.0], N=20, rng=1, param_noise=0.01,
                         inflation=1.05)
    F, spread = float(res.theta[-1, 0]), float(res.theta_spread[-1, 0])
    assert abs(F - 8.0) < 0.3 and 0.01 < spread < 0.5
    assert res.theta.shape == (201, 1) and res.rmse.shape == (201,)
    assert float(np.mean(npy(res.rmse)[100:])) < 0.6


def test_a_parameter_without_spread_never_moves():
    twin = dalib.setups.lorenz96(obs_every=2).simulate(30, rng=0)
    res = augmented_enkf(twin, _model, [7.0], [0.0], N=10, rng=1, inflation=1.05)
    np.testing.assert_allclose(npy(res.theta)[:, 0], 7.0, rtol=0, atol=1e-12)


def test_augmented_enkf_argument_errors():
    twin = dalib.setups.lorenz96(obs_every=2).simulate(5, rng=0)
    with pytest.raises(ValueError, match="theta_std must be non-negative"):
        augmented_enkf(twin, _model, [7.0], [-1.0], N=10, rng=1)
    with pytest.raises(ValueError, match="analysis must be"):
        augmented_enkf(twin, _model, [7.0], [1.0], N=10, rng=1, analysis="pf")
    with pytest.raises(ValueError, match="theta_std must have shape"):
        augmented_enkf(twin, _model, [7.0], [1.0, 2.0], N=10, rng=1)
