r"""Learnable analysis steps, trained through the unrolled filter (the lecture's examples 2-3).

An *analysis step* is a pure JAX function ``step(theta, v, y)`` of explicit parameters
:math:`\theta` (a pytree of arrays), a stack of forecasts :math:`v` (..., d) and the
matching observations :math:`y^\dagger` (..., p), returning the analyses :math:`x` (..., d).
Cycled with a model :math:`\mathcal M`,

.. math::
    x_l = \mathrm{step}_\theta\big(\mathcal M(x_{l-1}),\ y^\dagger_l\big), \qquad l = 1, \dots, L,

(:func:`unroll_analysis`, one ``jax.lax.scan``) the analyses of a window are a
differentiable function of :math:`\theta`, and :func:`learn_analysis` minimises one of
the losses of :mod:`~dalib.learning.analysis_losses` over windows of a twin experiment:

- ``"truth"``: eq. (12), :math:`\frac1L\sum_l \|x_l - x^t_l\|^2`;
- ``"observation"``: eq. (13), :math:`\frac1L\sum_l \|h(x_l) - y^\dagger_l\|^2`;
- ``"corrected"``: eq. (13) plus :math:`2\operatorname{tr}(S_l R) - \operatorname{tr}R`
  with the sensitivity :math:`S_l = \partial h(x_l)/\partial y^\dagger_l` of the step at
  the given forecast (``jax.jacfwd``), the Mallia-Parfitt and Bröcker correction.

The first ``burn_in`` analyses of each window are left out of the loss, so that the
window forgets the reference analysis it starts from.  :class:`LearnedAnalysis` runs a
trained step in the cycling driver :func:`~dalib.da.assimilate`.

The neural analysis step
------------------------
:func:`local_analysis` is a local, translation-equivariant network for states on a
periodic 1-D grid with a linear :math:`h = H`.  The innovation is placed on the grid,
:math:`\delta = H^\top(y^\dagger - Hv)`, beside a mask :math:`H^\top 1` of the observed
sites, and

.. math::
    x_i = v_i + \sum_{o=-r}^{r} k_o\,\delta_{i+o}
    + s\, \mathrm{net}\big((v - \mu)/\sigma,\ \delta/\sigma_o,\ H^\top 1\big)_i,

a translation-invariant *local gain* :math:`k` (a periodic convolution of the
innovation) plus the bilinear convolutional network of
:mod:`~dalib.learning.networks` (two convolutions of width :math:`2r + 1`, a product of
channels, a :math:`\tanh` layer and a one-by-one output convolution) that makes the
update depend on the forecast.  Its last layer starts at zero, so the initial step is the
local linear gain (e.g. the diagonals of a 3DVar gain, averaged along the grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._validate import check_int, check_positive
from ..backend import asarray, backend_name, device, get_namespace, namespace, to_numpy
from ..da.kalman import GaussianState
from ..da.methods import Method
from .analysis_losses import corrected_observation_loss, observation_loss, truth_loss
from .networks import periodic_conv

__all__ = [
    "LOSSES",
    "LearnedAnalysis",
    "analysis_windows",
    "init_local_analysis",
    "learn_analysis",
    "local_analysis",
    "unroll_analysis",
    "window_loss",
]

LOSSES = ("truth", "observation", "corrected")


def _jnp():
    return get_namespace("jax")


def unroll_analysis(step, theta, x0, y, M):
    r"""Cycle ``x_l = step(theta, M(x_{l-1}), y_l)`` over ``L`` times (``lax.scan``).

    Parameters
    ----------
    step : callable
        ``step(theta, v, y)`` on stacks of JAX arrays.
    theta : pytree
        Parameters.
    x0 : JAX array, shape (B, d)
        Analyses at the start of ``B`` windows.
    y : JAX array, shape (L, B, p)
        Observations, time first.
    M : callable
        Model acting on stacks.

    Returns
    -------
    v, x : JAX arrays, shape (L, B, d)
        Forecasts and analyses.
    """
    import jax

    def cycle(x, yl):
        v = M(x)
        x = step(theta, v, yl)
        return x, (v, x)

    return jax.lax.scan(cycle, x0, y)[1]


def analysis_windows(x_start, twin, window: int, stride: int | None = None):
    r"""Windows of ``window`` cycles: start analyses, observations and truths.

    Window ``i`` starts from the analysis ``x_start[j]`` at ``j = i * stride`` (default
    ``window // 2``) and holds the observations and truths of times ``j + 1 .. j + window``.

    Returns
    -------
    x0 : numpy array (n, d), y : numpy array (n, window, p), x_true : numpy array
    (n, window, d)
    """
    import numpy as np

    window = check_int(window, "window")
    stride = max(window // 2, 1) if stride is None else check_int(stride, "stride")
    xs, x, y = (to_numpy(a) for a in (x_start, twin.x, twin.y))
    J = y.shape[0]
    if x.shape[0] != J + 1 or xs.shape[0] != J + 1 or xs.shape[-1] != x.shape[-1]:
        raise ValueError(f"x_start must have J + 1 = {J + 1} rows of size {x.shape[-1]}, "
                         f"got shape {xs.shape}")
    if window > J:
        raise ValueError(f"window ({window}) must not exceed the number of cycles J ({J})")
    starts = list(range(0, J - window + 1, stride))
    return (xs[starts], np.stack([y[j:j + window] for j in starts]),
            np.stack([x[j + 1:j + 1 + window] for j in starts]))


def window_loss(step, theta, batch, M, h, R=None, *, loss: str = "truth",
                burn_in: int = 0):
    r"""Loss (12), (13) or corrected (13) of the analyses of a batch of windows.

    Parameters
    ----------
    step, theta, M
        As :func:`unroll_analysis`.
    batch : tuple
        ``(x0, y, x_true)`` of shapes (B, d), (B, L, p), (B, L, d), as
        :func:`analysis_windows` makes them (windows first).
    h : callable
        Observation operator on stacks (JAX).
    R : covariance-like
        Observation error covariance (needed by ``"corrected"``).
    loss : {"truth", "observation", "corrected"}
    burn_in : int
        First analyses of each window left out.
    """
    import jax

    jnp = _jnp()
    x0, y, xt = batch
    yt = jnp.moveaxis(y, 1, 0)
    v, x = unroll_analysis(step, theta, x0, yt, M)
    v, x, yt = v[burn_in:], x[burn_in:], yt[burn_in:]
    if loss == "truth":
        return truth_loss(x, jnp.moveaxis(xt, 1, 0)[burn_in:])
    if loss == "observation":
        return observation_loss(x, yt, h)
    if loss != "corrected":
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if R is None:
        raise ValueError("the corrected loss needs R")

    def hx(vi, yi):  # h(x) of one forecast as a function of its observation
        return h(step(theta, vi[None, :], yi[None, :]))[0]

    d, p = v.shape[-1], yt.shape[-1]
    S = jax.vmap(jax.jacfwd(hx, argnums=1))(jnp.reshape(v, (-1, d)),
                                          jnp.reshape(yt, (-1, p)))
    return corrected_observation_loss(x, yt, h, R, S)


def learn_analysis(step, theta0, ssm, twin, x_start, *, loss: str = "truth",
                   window: int = 10, burn_in: int = 3, n_iter: int = 1000,
                   batch_size: int = 32, learning_rate: float = 1e-2, optimizer=None,
                   rng=None):
    r"""Train an analysis step by minimising a loss through the unrolled filter.

    Parameters
    ----------
    step : callable
        ``step(theta, v, y)`` (see the module docstring).
    theta0 : pytree of JAX arrays
        Initial parameters.
    ssm : StateSpaceModel
        The model on the JAX backend (``M`` and ``h`` act on stacks of JAX arrays).
    twin : TwinExperiment
        Training truth and observations (any backend).
    x_start : array, shape (J + 1, d)
        Analyses of a reference run that start the windows.
    loss : {"truth", "observation", "corrected"}
        Eq. (12), eq. (13), or eq. (13) with the correction.
    window, burn_in : int
        Cycles per window, and how many of them are left out of the loss.
    n_iter, batch_size : int
        Optimiser steps and windows per step.
    learning_rate : float
        Initial step size of Adam with a cosine decay to zero (the default optimiser).
    optimizer : optax.GradientTransformation, optional
        Replaces the default.
    rng : int or dalib.random.Generator
        Randomness of the minibatches.

    Returns
    -------
    theta : pytree
        The trained parameters.
    history : numpy array, shape (n_iter,)
        The minibatch loss before each step.
    """
    import optax

    from ..random import default_rng
    from .networks import fit

    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    window = check_int(window, "window")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= window:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than window ({window})")
    check_positive(learning_rate, "learning_rate")
    if rng is None:
        raise ValueError("rng must be given (a seed or a dalib.random.Generator)")
    rng = default_rng(rng)
    data = analysis_windows(x_start, twin, window)
    M, h, R = ssm.M, ssm.h, ssm.R

    def objective(theta, batch):
        return window_loss(step, theta, batch, M, h, R, loss=loss, burn_in=burn_in)

    if optimizer is None:
        optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, n_iter))
    return fit(objective, theta0, data, optimizer=optimizer, n_iter=n_iter,
               batch_size=batch_size, rng=rng)


# --- the neural analysis step -------------------------------------------------------


def _diagonal_kernel(K0, r: int):
    """Mean of the periodic diagonals ``K0[i, i + o]`` for ``o = -r..r``."""
    import numpy as np

    K = np.asarray(to_numpy(K0), dtype=float)
    d = K.shape[0]
    i = np.arange(d)
    return np.array([K[i, (i + o) % d].mean() for o in range(-r, r + 1)])


def init_local_analysis(rng, H, *, width: int = 5, channels: int = 8, hidden: int = 32,
                        K0=None, mean: float = 0.0, std: float = 1.0,
                        obs_std: float = 1.0, scale: float = 1.0) -> dict:
    r"""Initial parameters of :func:`local_analysis`.

    Parameters
    ----------
    rng : int or dalib.random.Generator
        Seed or generator of the initial weights (Glorot-uniform).
    H : array, shape (p, d)
        The linear observation operator (kept in the parameters as a constant; it is not
        trained, see :func:`local_analysis`).
    width, channels, hidden : int
        Kernel width :math:`2r + 1` (odd), bilinear channels :math:`m` and hidden
        channels :math:`n` of the network.
    K0 : array, shape (d, p), optional
        A gain whose averaged diagonals start the local gain :math:`k` (on an observed
        grid, :math:`d = p`); default zero.
    mean, std : float
        Normalisation of the forecast (e.g. its climatological mean and spread).
    obs_std : float
        Normalisation of the innovation (e.g. the observation error standard deviation).
    scale : float
        Output scale :math:`s` of the network.

    Returns
    -------
    dict
        ``{"k", "mu", "sigma", "sigma_o", "W1", "b1", "W2", "b2", "W3", "b3", "s", "Ht"}``.
    """
    import numpy as np

    from ..random import default_rng

    width = check_int(width, "width")
    if width % 2 != 1:
        raise ValueError(f"width must be odd, got {width}")
    m, n = check_int(channels, "channels"), check_int(hidden, "hidden")
    H = np.asarray(to_numpy(H), dtype=float)
    if H.ndim != 2:
        raise ValueError(f"H must be a (p, d) matrix, got shape {H.shape}")
    r = width // 2
    if K0 is None:
        k = np.zeros(width)
    else:
        K0 = np.asarray(to_numpy(K0), dtype=float)
        if K0.shape != H.T.shape:
            raise ValueError(f"K0 must have shape {H.T.shape}, got {K0.shape}")
        k = _diagonal_kernel(K0 @ H, r)  # the gain acting on the innovation on the grid
    rng = default_rng(rng)
    jnp = _jnp()

    def glorot(shape, fan_in, fan_out):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        u = np.asarray(to_numpy(rng.uniform(shape)), dtype=float)
        return jnp.asarray(limit * (2.0 * u - 1.0))

    return {
        "k": jnp.asarray(k),
        "mu": jnp.asarray(float(mean)),
        "sigma": jnp.asarray(float(std)),
        "sigma_o": jnp.asarray(float(obs_std)),
        "W1": glorot((width, 3, 3 * m), 3 * width, 3 * m),
        "b1": jnp.zeros(3 * m),
        "W2": glorot((width, 2 * m, n), width * 2 * m, n),
        "b2": jnp.zeros(n),
        "W3": jnp.zeros((n, 1)),
        "b3": jnp.zeros(1),
        "s": jnp.asarray(float(scale)),
        "Ht": jnp.asarray(H.T),
    }


def local_analysis(theta: dict, v, y):
    r"""The neural analysis step of the module docstring.

    Parameters
    ----------
    theta : dict
        From :func:`init_local_analysis`.  ``theta["Ht"]`` (:math:`H^\top`) is a constant:
        its gradient is stopped, so training leaves it unchanged.
    v : JAX array, shape (..., d)
        Forecasts.
    y : JAX array, shape (..., p)
        Observations.

    Returns
    -------
    JAX array, shape (..., d)
    """
    jnp = _jnp()
    import jax

    Ht = jax.lax.stop_gradient(theta["Ht"])
    delta = (y - v @ Ht) @ Ht.T  # H^T (y - H v): the innovation on the grid
    mask = jnp.ones(y.shape[-1], dtype=v.dtype) @ Ht.T
    k = theta["k"]
    gain = periodic_conv(delta[..., None], k[:, None, None], jnp.zeros(1))[..., 0]
    z = jnp.stack([(v - theta["mu"]) / theta["sigma"], delta / theta["sigma_o"],
                   jnp.broadcast_to(mask, v.shape)], axis=-1)
    abc = periodic_conv(z, theta["W1"], theta["b1"])
    a, b, c = jnp.split(abc, 3, axis=-1)
    u = jnp.tanh(periodic_conv(jnp.concatenate([a, b * c], axis=-1), theta["W2"],
                               theta["b2"]))
    return v + gain + theta["s"] * (u @ theta["W3"] + theta["b3"])[..., 0]


# --- running a learned step in the cycling driver -----------------------------------


@dataclass
class LearnedAnalysis(Method):
    r"""A deterministic filter with a learned analysis step, for the cycling driver.

    Forecast :math:`v_j = \mathcal M(x_{j-1})`, analysis :math:`x_j =
    \mathrm{step}_\theta(v_j, y^\dagger_j)`.  The step is a JAX function; on another
    backend the forecast and observation are converted to JAX and the analysis back.

    Parameters
    ----------
    step : callable
        ``step(theta, v, y)`` on stacks.
    theta : pytree
        Its parameters.
    """

    step: Any
    theta: Any

    def __post_init__(self):
        if not callable(self.step):
            raise TypeError(f"step must be callable as step(theta, v, y), got {self.step!r}")
        import jax

        self._jitted = jax.jit(self.step)

    def __repr__(self):
        return f"LearnedAnalysis(step={getattr(self.step, '__name__', '...')})"

    def init(self, ssm, rng):
        return GaussianState(ssm.m0)

    def forecast(self, s, ssm, rng):
        return GaussianState(ssm.M(s.m))

    def analysis(self, s, y, ssm, rng):
        name = backend_name(namespace(s.m))
        if name == "jax":
            return GaussianState(self._jitted(self.theta, s.m[None, :], y[None, :])[0])
        x = self._jitted(self.theta, asarray(s.m, "jax")[None, :], asarray(y, "jax")[None, :])
        return GaussianState(asarray(to_numpy(x[0]), name, device=device(s.m)))

    def moments(self, s):
        return s.m, None

