"""dalib.learning.networks: the local network's gradient, equivariance and training loop."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

from dalib.learning import networks


def _params(seed=0, **kw):
    return networks.init_local_cnn(seed, **kw)


def test_periodic_conv_matches_the_sum_over_neighbours():
    rng = np.random.default_rng(1)
    h, W, b = rng.normal(size=(3, 7, 2)), rng.normal(size=(3, 2, 4)), rng.normal(size=4)
    expected = np.empty((3, 7, 4))
    for i in range(7):
        expected[:, i] = b + sum(h[:, (i + o) % 7] @ W[o + 1] for o in (-1, 0, 1))
    np.testing.assert_allclose(networks.periodic_conv(h, W, b), expected, rtol=1e-12)


def test_local_cnn_keeps_any_batch_shape_and_grid_size():
    p = _params()
    x = np.random.default_rng(2).normal(size=(2, 3, 40))
    y = networks.local_cnn(p, x)
    assert y.shape == (2, 3, 40) and y.dtype == np.float64
    np.testing.assert_allclose(y[1, 2], networks.local_cnn(p, x[1, 2]), rtol=1e-12)
    assert networks.local_cnn(p, x[0, 0, :17]).shape == (17,)


def test_rolling_the_input_rolls_the_output():
    p = _params(3)
    x = np.random.default_rng(4).normal(size=(5, 40))
    for shift in (1, 7, -3):
        np.testing.assert_allclose(networks.local_cnn(p, np.roll(x, shift, axis=-1)),
                                   np.roll(networks.local_cnn(p, x), shift, axis=-1),
                                   rtol=1e-12, atol=1e-12)


def test_output_at_a_site_depends_only_on_its_receptive_field():
    p = _params(5, width=3)  # receptive field radius 2
    x = np.random.default_rng(6).normal(size=40)
    x2 = x.copy()
    x2[20] += 1.0
    diff = np.abs(np.asarray(networks.local_cnn(p, x2) - networks.local_cnn(p, x)))
    assert np.all(diff[[17, 23, 0]] == 0) and np.all(diff[18:23] > 0)


def test_gradient_matches_finite_differences():
    p = _params(7, channels=2, hidden=3)
    x = np.random.default_rng(8).normal(size=(4, 12))
    target = np.random.default_rng(9).normal(size=(4, 12))

    def loss(q):
        return jax.numpy.mean((networks.local_cnn(q, x) - target) ** 2)

    grad = jax.grad(loss)(p)
    direction = jax.tree_util.tree_map(
        lambda a: np.random.default_rng(a.size).normal(size=a.shape), p)
    eps = 1e-6
    plus = jax.tree_util.tree_map(lambda a, v: a + eps * v, p, direction)
    minus = jax.tree_util.tree_map(lambda a, v: a - eps * v, p, direction)
    fd = (loss(plus) - loss(minus)) / (2 * eps)
    ad = sum(float(np.sum(g * v)) for g, v in zip(jax.tree_util.tree_leaves(grad),
                                                  jax.tree_util.tree_leaves(direction)))
    assert abs(fd - ad) < 1e-7 * max(1.0, abs(ad))


def test_fit_learns_a_local_quadratic_map():
    # The Lorenz-96 tendency is a local quadratic function: the network can represent it,
    # so training must cut the loss by a large factor.
    def tendency(x):
        return (np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + 8.0

    rng = np.random.default_rng(10)
    x = 2.0 + 3.5 * rng.normal(size=(2000, 20))
    y = tendency(x)
    p0 = networks.init_local_cnn(11, width=3, channels=4, hidden=16, mean=2.0, std=3.5,
                                 scale=10.0)

    def loss(p, batch):
        xb, yb = batch
        return jax.numpy.mean((networks.local_cnn(p, xb) - yb) ** 2)

    p, history = networks.fit(loss, p0, (x, y), optimizer=optax.adam(3e-3), n_iter=1500,
                              batch_size=32, rng=12)
    assert history.shape == (1500,)
    before, after = float(loss(p0, (x, y))), float(loss(p, (x, y)))
    assert after < before / 50
    assert np.mean(history[-100:]) < np.mean(history[:100]) / 50


def test_fit_is_reproducible_and_checks_its_inputs():
    p0 = _params(0, channels=1, hidden=2)
    x = np.ones((10, 8))

    def loss(p, batch):
        return jax.numpy.mean(networks.local_cnn(p, batch) ** 2)

    _, ha = networks.fit(loss, p0, x, n_iter=5, batch_size=4, rng=1)
    _, hb = networks.fit(loss, p0, x, n_iter=5, batch_size=4, rng=1)
    np.testing.assert_array_equal(ha, hb)
    with pytest.raises(ValueError, match="same length"):
        networks.fit(loss, p0, (x, x[:5]), n_iter=5, rng=1)
    with pytest.raises(ValueError, match="rng"):
        networks.fit(loss, p0, x, n_iter=5)
    with pytest.raises(ValueError, match="width"):
        networks.init_local_cnn(0, width=4)
    assert networks.n_params(p0) == 5 * 3 + 3 + 5 * 2 * 2 + 2 + 2 + 1 + 3
