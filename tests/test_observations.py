"""Observation operators and their Jacobians."""

import numpy as np
import pytest
from conftest import npy

from dalib.observations import Elementwise, EveryKth, Identity, Matrix, Subset

D = 11


def operators(xp, rng):
    H = xp.asarray(rng.standard_normal((4, D)))
    return {
        "identity": Identity(D),
        "every3": EveryKth(D, 3),
        "every4_offset2": EveryKth(D, 4, offset=2),
        "subset": Subset(D, [7, 0, 3]),
        "matrix": Matrix(H),
        "arctan": Elementwise(EveryKth(D, 2), "arctan"),
        "square": Elementwise(Identity(D), "square"),
        "cube": Elementwise(Subset(D, [1, 5]), "cube"),
    }


def test_selections_pick_the_right_components(xp, rng):
    x = xp.asarray(rng.standard_normal((2, D)))
    xn = npy(x)
    np.testing.assert_array_equal(npy(EveryKth(D, 3)(x)), xn[:, [0, 3, 6, 9]])
    np.testing.assert_array_equal(npy(EveryKth(D, 4, offset=2)(x)), xn[:, [2, 6, 10]])
    np.testing.assert_array_equal(npy(Subset(D, [7, 0, 3])(x)), xn[:, [7, 0, 3]])
    assert EveryKth(D, 3).p == 4 and EveryKth(D, 4, offset=2).p == 3


def test_linear_matrix_agrees_with_application(xp, rng):
    x = rng.standard_normal((5, D))
    for name, h in operators(xp, rng).items():
        if not h.linear:
            continue
        H = npy(h.matrix(xp))
        assert H.shape == (h.p, h.d), name
        np.testing.assert_allclose(npy(h(xp.asarray(x))), x @ H.T, rtol=1e-13, err_msg=name)


def test_vjp_is_transpose_of_jvp(xp, rng):
    for name, h in operators(xp, rng).items():
        x = xp.asarray(rng.standard_normal((3, D)))
        dx = xp.asarray(rng.standard_normal((3, D)))
        w = xp.asarray(rng.standard_normal((3, h.p)))
        lhs = npy(xp.sum(h.jvp(x, dx) * w, axis=-1))
        rhs = npy(xp.sum(dx * h.vjp(x, w), axis=-1))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12, err_msg=name)


def test_jacobian_matches_finite_differences(xp, rng):
    for name, h in operators(xp, rng).items():
        x = rng.standard_normal((2, D))
        Jac = npy(h.jacobian(xp.asarray(x)))
        assert Jac.shape == (2, h.p, D), name
        eps = 1e-6
        for i in range(D):
            e = np.zeros(D)
            e[i] = eps
            fd = (npy(h(xp.asarray(x + e))) - npy(h(xp.asarray(x - e)))) / (2 * eps)
            np.testing.assert_allclose(Jac[:, :, i], fd, atol=1e-8, err_msg=name)


def test_nonlinear_formulas(rng):
    x = rng.standard_normal(D)
    np.testing.assert_allclose(Elementwise(EveryKth(D, 2), "arctan")(x), np.arctan(x[::2]))
    np.testing.assert_allclose(Elementwise(Identity(D), "square")(x), x**2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="indices must be distinct"):
        Subset(5, [1, 1])
    with pytest.raises(ValueError, match=r"indices must lie in 0..4"):
        Subset(5, [5])
    with pytest.raises(ValueError, match="offset must be smaller than d=5"):
        EveryKth(5, 2, offset=5)
    with pytest.raises(ValueError, match="g must be one of"):
        Elementwise(Identity(3), "sine")
    with pytest.raises(TypeError, match="nonlinear: use jacobian"):
        Elementwise(Identity(3)).matrix()
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 5\)"):
        Identity(5)(np.zeros(4))
    with pytest.raises(ValueError, match="H must have 2 dimension"):
        Matrix(np.zeros(3))
