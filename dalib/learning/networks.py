r"""Small neural networks as pure JAX functions of explicit parameters, and one training loop.

A network here is a pair of functions: ``init_*(rng, ...)`` returns a *parameter pytree*
(nested dicts of JAX arrays) and the network itself is a pure function
``net(params, x)``.  Nothing is hidden in objects, so a network can be differentiated,
compiled, or placed inside a differentiable filter like any other function, and
:func:`fit` trains any such function with an optax optimiser.

The local convolutional network
-------------------------------
For a state :math:`x \in \mathbb R^d` on a periodic 1-D grid (Lorenz-96), a *periodic
convolution* with kernel width :math:`k = 2r + 1` maps :math:`c` input channels to
:math:`c'` output channels at every site :math:`i`,

.. math::
    \operatorname{conv}(h; W, b)_{i} = b + \sum_{o=-r}^{r} h_{i+o}\, W_{o},
    \qquad h_{i+o} \in \mathbb R^{c},\ W_o \in \mathbb R^{c \times c'},\ b \in \mathbb R^{c'},

with indices modulo :math:`d`.  The same weights act at every site, so the network is
*translation equivariant*: rolling the input rolls the output, and it runs unchanged on
any grid size.  :func:`local_cnn` follows the architecture of Brajard et al. (2020)
for Lorenz-96: a normalisation, a convolution, a *bilinear* layer that multiplies
channels pairwise (the Lorenz-96 tendency is quadratic), a second convolution with a
nonlinearity and a 1-by-1 convolution to one output per site:

.. math::
    z &= (x - \mu)/\sigma, \\
    [a, b, c] &= \operatorname{conv}(z; W_1, b_1), \qquad
        a, b, c \in \mathbb R^{d \times m}, \\
    g &= [a,\ b \odot c] \in \mathbb R^{d \times 2m}, \\
    u &= \tanh(\operatorname{conv}(g; W_2, b_2)) \in \mathbb R^{d \times n}, \\
    \mathrm{net}(x)_i &= s\,(u_i W_3 + b_3) \in \mathbb R .

Its receptive field has radius :math:`2r`.  The scale :math:`s` sets the size of the
output (e.g. the size of a tendency) so that the initial weights need not.

Training
--------
:func:`fit` minimises the mean of a per-batch loss by minibatch stochastic gradient
descent with an optax optimiser (Adam by default), with the whole loop compiled by
``jax.lax.scan``:

.. math::
    \theta_{n+1} = \theta_n - \mathrm{opt}\big(\nabla_\theta L(\theta_n; B_n)\big),
    \qquad B_n \subset \{1, \dots, n_{\mathrm{data}}\},\ |B_n| = \texttt{batch\_size},

the batches drawn uniformly with replacement from ``rng``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .._validate import check_int

__all__ = ["fit", "init_local_cnn", "local_cnn", "n_params", "periodic_conv"]


def _jnp():
    from ..backend import get_namespace

    return get_namespace("jax")  # double precision, like the rest of dalib


def periodic_conv(h, W, b):
    r"""Periodic 1-D convolution :math:`b + \sum_{o=-r}^{r} h_{i+o} W_o` (indices mod ``d``).

    Parameters
    ----------
    h : array, shape (..., d, c)
        Input: ``c`` channels at each of ``d`` grid sites.
    W : array, shape (k, c, c_out)
        Weights, ``k = 2r + 1`` odd; ``W[o + r]`` multiplies the neighbour at offset ``o``.
    b : array, shape (c_out,)
        Bias.

    Returns
    -------
    array, shape (..., d, c_out)
    """
    jnp = _jnp()
    k = W.shape[0]
    if k % 2 != 1:
        raise ValueError(f"W must have an odd kernel width on axis 0, got shape {W.shape}")
    r = k // 2
    # h_{i+o} is h rolled by -o along the grid axis.
    patches = jnp.concatenate([jnp.roll(h, -o, axis=-2) for o in range(-r, r + 1)], axis=-1)
    return patches @ jnp.reshape(W, (k * W.shape[1], W.shape[2])) + b


def _glorot(rng, shape, fan_in, fan_out):
    import numpy as np

    from ..backend import to_numpy

    limit = math.sqrt(6.0 / (fan_in + fan_out))
    u = np.asarray(to_numpy(rng.uniform(shape)), dtype=float)
    return _jnp().asarray(limit * (2.0 * u - 1.0))


def init_local_cnn(rng, *, width: int = 5, channels: int = 8, hidden: int = 32,
                   mean: float = 0.0, std: float = 1.0, scale: float = 1.0) -> dict:
    """Random initial parameters of :func:`local_cnn` (Glorot-uniform weights, zero biases).

    Parameters
    ----------
    rng : int or dalib.random.Generator
        Seed or generator of the initial weights.
    width : int
        Kernel width ``k = 2r + 1`` (odd) of both convolutions.
    channels : int
        ``m``: channels of each of the three groups ``a, b, c`` of the first convolution.
    hidden : int
        ``n``: channels of the second convolution.
    mean, std : float
        Normalisation of the input, :math:`z = (x - \\mu)/\\sigma` (e.g. the data's
        climatological mean and standard deviation).  They are parameters like the others
        (trained too).
    scale : float
        Output scale :math:`s`.

    Returns
    -------
    dict
        ``{"mu", "sigma", "W1", "b1", "W2", "b2", "W3", "b3", "s"}``.
    """
    from ..random import default_rng

    width = check_int(width, "width")
    if width % 2 != 1:
        raise ValueError(f"width must be odd, got {width}")
    channels = check_int(channels, "channels")
    hidden = check_int(hidden, "hidden")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    rng = default_rng(rng)
    jnp = _jnp()
    m, n = channels, hidden
    return {
        "mu": jnp.asarray(float(mean)),
        "sigma": jnp.asarray(float(std)),
        "W1": _glorot(rng, (width, 1, 3 * m), width, 3 * m),
        "b1": jnp.zeros(3 * m),
        "W2": _glorot(rng, (width, 2 * m, n), width * 2 * m, n),
        "b2": jnp.zeros(n),
        "W3": _glorot(rng, (n, 1), n, 1),
        "b3": jnp.zeros(1),
        "s": jnp.asarray(float(scale)),
    }


def local_cnn(params: dict, x):
    r"""The local convolutional network of the module docstring, one output per grid site.

    Parameters
    ----------
    params : dict
        From :func:`init_local_cnn` (or trained by :func:`fit`).
    x : array, shape (..., d)
        States on a periodic grid; any leading batch shape.

    Returns
    -------
    array, shape (..., d)
    """
    jnp = _jnp()
    z = (x - params["mu"]) / params["sigma"]
    abc = periodic_conv(z[..., None], params["W1"], params["b1"])
    a, b, c = jnp.split(abc, 3, axis=-1)
    g = jnp.concatenate([a, b * c], axis=-1)
    u = jnp.tanh(periodic_conv(g, params["W2"], params["b2"]))
    return params["s"] * (u @ params["W3"] + params["b3"])[..., 0]


def n_params(params) -> int:
    """Number of scalar parameters in a pytree."""
    import jax

    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))


def fit(loss: Callable, params: Any, data, *, optimizer=None, n_iter: int = 1000,
        batch_size: int = 64, rng=None):
    r"""Minimise ``loss(params, batch)`` by minibatch gradient descent with optax.

    Parameters
    ----------
    loss : callable
        ``loss(params, batch) -> scalar``, a JAX function; ``batch`` has the structure of
        ``data`` with ``batch_size`` samples on axis 0 of every array.
    params : pytree
        Initial parameters.
    data : array or tuple of arrays
        Training samples on axis 0 (all arrays the same length), e.g. ``(x_j, x_{j+1})``.
    optimizer : optax.GradientTransformation, optional
        Default ``optax.adam(1e-3)``.
    n_iter : int
        Number of optimiser steps.
    batch_size : int
        Samples per step, drawn uniformly with replacement.
    rng : int or dalib.random.Generator
        Seed or generator of the batches.

    Returns
    -------
    params : pytree
        The trained parameters.
    history : numpy array, shape (n_iter,)
        The minibatch loss before each step.
    """
    import jax
    import numpy as np
    import optax

    from ..backend import to_numpy
    from ..random import default_rng

    jnp = _jnp()
    n_iter = check_int(n_iter, "n_iter")
    batch_size = check_int(batch_size, "batch_size")
    if rng is None:
        raise ValueError("rng must be given (a seed or a dalib.random.Generator)")
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    data = jax.tree_util.tree_map(jnp.asarray, data)
    lengths = {leaf.shape[0] for leaf in jax.tree_util.tree_leaves(data)}
    if len(lengths) != 1:
        raise ValueError(f"data arrays must have the same length on axis 0, got {lengths}")
    n = lengths.pop()
    u = np.asarray(to_numpy(default_rng(rng).uniform((n_iter, batch_size))))
    batches = jnp.asarray(np.minimum((u * n).astype(np.int64), n - 1))

    @jax.jit
    def run(p, data, batches):
        def step(carry, idx):
            p, state = carry
            batch = jax.tree_util.tree_map(lambda a: a[idx], data)
            value, grad = jax.value_and_grad(loss)(p, batch)
            updates, state = optimizer.update(grad, state, p)
            return (optax.apply_updates(p, updates), state), value

        (p, _), history = jax.lax.scan(step, (p, optimizer.init(p)), batches)
        return p, history

    params, history = run(params, data, batches)
    return params, np.asarray(history)
