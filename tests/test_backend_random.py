"""Backends, conversion and explicit random numbers."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.backend import backend_name, erf, solve_triangular


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'torch'"):
        dalib.get_namespace("torch")


def test_round_trip_conversion(xp):
    a = dalib.asarray([[1.0, 2.0], [3.0, 4.0]], xp)
    assert backend_name(dalib.namespace(a)) == backend_name(xp)
    np.testing.assert_array_equal(dalib.to_numpy(a), [[1.0, 2.0], [3.0, 4.0]])


def test_mixed_backends_raise():
    import array_api_strict as xs

    with pytest.raises(TypeError, match="arrays of one backend"):
        dalib.namespace(np.ones(2), xs.ones(2))


def test_same_seed_same_numbers_and_independent_draws(xp):
    a = dalib.default_rng(3, xp).standard_normal((4, 5))
    b = dalib.default_rng(3, xp).standard_normal((4, 5))
    np.testing.assert_array_equal(npy(a), npy(b))
    g = dalib.default_rng(3, xp)
    assert not np.array_equal(npy(g.standard_normal(5)), npy(g.standard_normal(5)))
    assert backend_name(dalib.namespace(a)) == backend_name(xp)


def test_normal_and_uniform_moments(xp):
    g = dalib.default_rng(0, xp)
    z = npy(g.standard_normal((200_000,)))
    u = npy(g.uniform((200_000,)))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005


def test_spawn_gives_distinct_generators(xp):
    children = dalib.default_rng(1, xp).spawn(3)
    draws = [npy(c.standard_normal(4)) for c in children]
    assert not np.array_equal(draws[0], draws[1])


def test_rng_argument_checks():
    g = dalib.default_rng(1)
    assert dalib.default_rng(g) is g
    with pytest.raises(TypeError, match="rng must be an int seed"):
        dalib.default_rng(1.5)
    with pytest.raises(ValueError, match="rng draws on backend 'numpy'"):
        dalib.default_rng(g, "array_api_strict")


def test_solve_triangular_and_erf(xp, rng):
    L = np.tril(rng.standard_normal((4, 4))) + 4 * np.eye(4)
    b = rng.standard_normal((4, 3))
    z = npy(solve_triangular(xp.asarray(L), xp.asarray(b), lower=True))
    np.testing.assert_allclose(L @ z, b, rtol=1e-12)
    from math import erf as math_erf

    v = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(npy(erf(xp.asarray(v))), [math_erf(t) for t in v], rtol=1e-12)


def test_shapes_accept_numpy_integers_and_reject_nonsense():
    g = dalib.default_rng(0)
    assert g.standard_normal(np.int64(3)).shape == (3,)
    assert g.uniform((np.int64(2), 2)).shape == (2, 2)
    with pytest.raises(TypeError, match="shape must be an integer or a tuple"):
        g.standard_normal("big")
