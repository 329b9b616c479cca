"""Model correction: an imperfect model plus a learned correction (chapter 7, example 3)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.learning import CorrectedModel, LocalDictionary
from dalib.models import Lorenz96, RK4Map


def test_zero_correction_is_the_approximate_model(xp):
    d = 12
    M = RK4Map(Lorenz96(d, 10.0), 0.01, 5)
    cubic = LocalDictionary([(), (0,), (0, 0), (0, 0, 0)])
    family = CorrectedModel(M, cubic, d)
    x = dalib.asarray(np.random.default_rng(0).standard_normal((3, d)) * 3, xp)
    theta = dalib.asarray(np.zeros(4), xp)
    np.testing.assert_allclose(npy(family(theta)(x)), npy(M(x)), rtol=1e-14)
    fx, S = family.map_and_sensitivity(dalib.asarray([0.1, -0.2, 0.01, 0.001], xp), x)
    np.testing.assert_allclose(npy(S), npy(cubic.features(x)), rtol=1e-14)
    corr = npy(x) * (-0.2) + 0.1 + 0.01 * npy(x) ** 2 + 0.001 * npy(x) ** 3
    np.testing.assert_allclose(npy(fx), npy(M(x)) + corr, rtol=1e-12)


def test_bad_features_are_named():
    with pytest.raises(TypeError, match="features must be a LocalDictionary"):
        CorrectedModel(RK4Map(Lorenz96(12), 0.05), [(0,)], 12)
    family = CorrectedModel(RK4Map(Lorenz96(12), 0.05), LocalDictionary([(0,)]), 12)
    with pytest.raises(ValueError, match="theta must have shape"):
        family(np.zeros(3))
