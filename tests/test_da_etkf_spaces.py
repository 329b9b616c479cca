"""The ETKF's two routes to one transform: ensemble space (N-by-N) and observation space."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import etkf_analysis
from dalib.da._kernels import etkf_weights
from dalib.observations import Subset


@pytest.mark.parametrize("N, p", [(30, 5), (8, 20), (12, 12)])
def test_observation_and_ensemble_space_agree(xp, N, p):
    gen = np.random.default_rng(N + p)
    Yw = dalib.asarray(gen.standard_normal((N, p)) * np.logspace(-3, 2, p), xp)
    Yw = Yw - dalib.namespace(Yw).mean(Yw, axis=0)
    dw = dalib.asarray(gen.standard_normal(p), xp)
    w_e, T_e = etkf_weights(Yw, dw, N, dalib.namespace(Yw), "ensemble")
    w_o, T_o = etkf_weights(Yw, dw, N, dalib.namespace(Yw), "observation")
    np.testing.assert_allclose(npy(w_o), npy(w_e), atol=1e-12)
    np.testing.assert_allclose(npy(T_o), npy(T_e), atol=1e-12)


def test_auto_picks_the_smaller_space():
    """p < N: observation space (bitwise the same result); p >= N: the matmul-only
    Newton-Schulz transform with NumPy (it falls back to the ensemble space beyond its
    condition-number bound)."""
    gen = np.random.default_rng(0)
    for N, p, route in ((1000, 10, "observation"), (10, 40, "newton")):
        Yw = gen.standard_normal((N, p))
        Yw -= Yw.mean(axis=0)
        dw = gen.standard_normal(p)
        auto = etkf_weights(Yw, dw, N, np, "auto")
        chosen = etkf_weights(Yw, dw, N, np, route)
        for a, b in zip(auto, chosen, strict=True):
            np.testing.assert_array_equal(a, b)


def test_etkf_with_a_large_ensemble_and_few_observations():
    """N = 1000 members, p = 10 observations: the analysis is the ensemble-space one."""
    gen = np.random.default_rng(0)
    d, N = 10, 1000
    E = gen.standard_normal((N, d))
    y, h = gen.standard_normal(d), Subset(d, np.arange(d))
    Ea = etkf_analysis(E, y, h, 1.0)
    X = E - E.mean(axis=0)
    w_e, T_e = etkf_weights(X, y - E.mean(axis=0), N, np, "ensemble")
    np.testing.assert_allclose(Ea, E.mean(axis=0) + (w_e + T_e) @ X, atol=1e-10)
