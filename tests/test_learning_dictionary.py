"""Local dictionaries, their models and sensitivities (chapter 7, example 2)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.autodiff import relative_error
from dalib.learning import DictionaryModel, LocalDictionary
from dalib.models import Lorenz96, RK4Map


def _states(d=12, n=3, seed=0):
    return 2.0 + 3.0 * np.random.default_rng(seed).standard_normal((n, d))


def test_polynomial_dictionary_terms():
    lib = LocalDictionary.polynomial(degree=2, stencil=2)
    assert lib.K == 21
    assert lib.names[:4] == ["1", "x_{i-2}", "x_{i-1}", "x_i"]
    assert "x_{i-2} x_{i-1}" in lib.names and "x_i^2" in lib.names
    assert LocalDictionary.polynomial(degree=3, stencil=0).names == ["1", "x_i", "x_i^2",
                                                                     "x_i^3"]
    assert lib.index((-1, -2)) == lib.names.index("x_{i-2} x_{i-1}")


def test_features_match_an_explicit_loop(xp):
    lib = LocalDictionary([(), (0,), (-2, -1), (-1, 1), (1, 1, 2)])
    x = _states()
    Phi = npy(lib.features(dalib.asarray(x, xp)))
    d = x.shape[1]
    for i in range(d):
        def at(o):
            return x[:, (i + o) % d]

        expected = [np.ones(3), at(0), at(-2) * at(-1), at(-1) * at(1), at(1) ** 2 * at(2)]
        np.testing.assert_allclose(Phi[:, :, i], np.stack(expected, axis=1), rtol=1e-13)


def test_lorenz96_is_in_the_dictionary(xp):
    lib = LocalDictionary.polynomial()
    family = DictionaryModel(lib, d=12, dt=0.05, steps=2)
    x = dalib.asarray(_states(), xp)
    got = family(lib.lorenz96(8.0, xp))(x)
    want = RK4Map(Lorenz96(12, 8.0), 0.05, 2)(x)
    np.testing.assert_allclose(npy(got), npy(want), rtol=1e-13, atol=1e-13)


def test_rhs_jvp_matches_finite_differences(xp):
    lib = LocalDictionary.polynomial(degree=3, stencil=1)
    theta = np.random.default_rng(1).standard_normal(lib.K)
    x, v = _states(seed=2), np.random.default_rng(3).standard_normal((3, 12))
    t, X, V = (dalib.asarray(a, xp) for a in (theta, x, v))
    got = npy(lib.rhs_jvp(t, X, V))
    h = 1e-6
    fd = (npy(lib.rhs(t, X + h * V)) - npy(lib.rhs(t, X - h * V))) / (2 * h)
    assert relative_error(got, fd) < 1e-8


def test_sensitivity_matches_finite_differences(xp):
    lib = LocalDictionary.polynomial()
    family = DictionaryModel(lib, d=12, dt=0.05, steps=2)
    theta = npy(lib.lorenz96(8.0)) + 0.05 * np.random.default_rng(4).standard_normal(21)
    x = dalib.asarray(_states(), xp)
    fx, S = family.map_and_sensitivity(dalib.asarray(theta, xp), x)
    assert S.shape == (3, 21, 12)
    h = 1e-6
    fd = np.stack([
        (npy(family(dalib.asarray(theta + h * e, xp))(x))
         - npy(family(dalib.asarray(theta - h * e, xp))(x))) / (2 * h)
        for e in np.eye(21)
    ], axis=-2)
    assert relative_error(S, fd) < 1e-7
    np.testing.assert_allclose(npy(fx), npy(family(dalib.asarray(theta, xp))(x)), rtol=1e-13)


def test_sensitivity_matches_jax_jacfwd():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    lib = LocalDictionary.polynomial()
    family = DictionaryModel(lib, d=12, dt=0.05, steps=1)
    theta = lib.lorenz96(8.0, jnp)
    x = jnp.asarray(_states(n=1)[0])
    _, S = family.map_and_sensitivity(theta, x)
    J = jax.jacfwd(lambda t: family(t)(x))(theta)  # (d, K)
    assert relative_error(S, J.T) < 1e-12


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="distinct"):
        LocalDictionary([(0,), (0,)])
    with pytest.raises(ValueError, match="not in the dictionary"):
        LocalDictionary.polynomial().index((5,))
    family = DictionaryModel(LocalDictionary.polynomial(), d=12, dt=0.05)
    with pytest.raises(ValueError, match="theta must have shape"):
        family(np.zeros(5))
    with pytest.raises(TypeError, match="dictionary must be a LocalDictionary"):
        DictionaryModel([(0,)], d=12, dt=0.05)
