r"""Data-driven forecast models (surrogates) trained on states and rolled out (chapter 8).

A surrogate is a one-step map :math:`x_{j+1} \approx f(x_j; \theta)` fitted to pairs
:math:`(x_j, x_{j+1})` of a trajectory (the truth, a reanalysis, ...) and then used
autoregressively, :math:`x_{j+2} \approx f(f(x_j))`, by :func:`rollout`.  Two ways to
build :math:`f`:

* learn the *increment*, :math:`f(x) = x + g(x; \theta)`, with :math:`g` fitted to
  :math:`x_{j+1} - x_j`;
* learn a *tendency* :math:`\dot x = g(x; \theta)` and integrate it over one interval with
  a scheme (:func:`rk4_step`), as Brajard et al. (2020) do; :math:`\theta` is then fitted
  through the scheme (e.g. with JAX).

Random-feature regression
-------------------------
:class:`LocalRandomFeatures` is the closed-form surrogate.  At every grid site :math:`i`
the stencil :math:`z_i = (x_{i-r}, \dots, x_{i+r})` (normalised) is lifted to :math:`D`
random Fourier features (Rahimi and Recht 2007),

.. math::
    \phi(z) = \sqrt{2/D}\,\cos(W^\top z + b), \qquad
    W_{kl} \sim \mathcal N(0, \ell^{-2}),\ b_l \sim \mathcal U[0, 2\pi),

and the increment at site :math:`i` is :math:`g(x)_i = \phi(z_i)^\top \theta`, with the same
:math:`\theta` at every site (translation equivariance).  :math:`\theta` solves the ridge
regression over all sites and times,

.. math::
    \theta = (\Phi^\top \Phi + \lambda I)^{-1} \Phi^\top Y .

Relation to kernels and Gaussian processes: :math:`\phi(z)^\top\phi(z')` is a Monte-Carlo
estimate of the Gaussian (squared-exponential) kernel
:math:`k(z, z') = \exp(-\|z - z'\|^2 / 2\ell^2)`, exact as :math:`D \to \infty`.  Ridge
regression on the features is therefore kernel ridge regression with the approximate
kernel :math:`\Phi\Phi^\top`, and its prediction equals the posterior mean of Gaussian-process
regression with that kernel as prior covariance and observation-noise variance
:math:`\lambda`.  With :math:`D` features the cost is :math:`O(n D^2)` for :math:`n` samples
instead of the :math:`O(n^3)` of the exact kernel method.

The network surrogate
---------------------
:func:`fit_network_surrogate` trains the local convolutional network of
:mod:`dalib.learning.networks` as a tendency inside one RK4 step (Brajard et al. 2020),

.. math::
    \min_\theta \frac{1}{n d}\sum_j \|\mathrm{RK4}_{\Delta t}[g_\theta](x_j) - x_{j+1}\|^2,

with Adam.  It needs JAX; everything else here is array-agnostic (NumPy, CuPy, JAX,
array-api-strict).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._validate import check_int
from ..backend import namespace

__all__ = [
    "LocalRandomFeatures",
    "NetworkSurrogate",
    "fit_network_surrogate",
    "local_stencil",
    "periodic_interpolation",
    "random_fourier_features",
    "ridge",
    "rk4_step",
    "rollout",
]


def local_stencil(x, radius: int):
    r"""The neighbourhoods :math:`z_i = (x_{i-r}, \dots, x_{i+r})` of every site (periodic).

    Parameters
    ----------
    x : array, shape (..., d)
    radius : int
        :math:`r`.

    Returns
    -------
    array, shape (..., d, 2r + 1)
    """
    radius = check_int(radius, "radius", minimum=0)
    xp = namespace(x)
    return xp.stack([xp.roll(x, -o, axis=-1) for o in range(-radius, radius + 1)], axis=-1)


def random_fourier_features(z, W, b):
    r"""Random Fourier features :math:`\phi(z) = \sqrt{2/D}\cos(W^\top z + b)`.

    Parameters
    ----------
    z : array, shape (..., m)
    W : array, shape (m, D)
    b : array, shape (D,)

    Returns
    -------
    array, shape (..., D)
    """
    xp = namespace(z, W, b)
    return math.sqrt(2.0 / W.shape[-1]) * xp.cos(z @ W + b)


def ridge(Phi, Y, lam: float):
    r"""Ridge regression :math:`\theta = (\Phi^\top\Phi + \lambda I)^{-1}\Phi^\top Y`.

    Parameters
    ----------
    Phi : array, shape (n, D)
        Features of ``n`` samples.
    Y : array, shape (n,) or (n, q)
        Targets.
    lam : float
        :math:`\lambda \ge 0` (``0``: least squares; needs :math:`\Phi` of full column rank).

    Returns
    -------
    array, shape (D,) or (D, q)
    """
    xp = namespace(Phi, Y)
    if Phi.ndim != 2 or Y.shape[0] != Phi.shape[0]:
        raise ValueError(f"Phi must have shape (n, D) and Y shape (n, ...), got {Phi.shape} "
                         f"and {Y.shape}")
    if not lam >= 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    D = Phi.shape[1]
    A = Phi.T @ Phi + lam * xp.eye(D, dtype=Phi.dtype)
    rhs = Phi.T @ (Y[:, None] if Y.ndim == 1 else Y)
    theta = xp.linalg.solve(A, rhs)
    return theta[:, 0] if Y.ndim == 1 else theta


@dataclass(frozen=True)
class LocalRandomFeatures:
    r"""A local random-feature model :math:`g(x)_i = \phi(z_i)^\top\theta` (module docstring).

    Build it with :meth:`fit`; call it on states of shape ``(..., d)``.

    Attributes
    ----------
    W, b : arrays, shapes (2r + 1, D) and (D,)
        The random features (``W`` already divided by the length scale).
    theta : array, shape (D,)
        The ridge coefficients.
    mean, std : float
        Normalisation of the inputs, :math:`z = (x - \mathrm{mean}) / \mathrm{std}`.
    radius : int
        Stencil radius :math:`r`.
    """

    W: Any
    b: Any
    theta: Any
    mean: float
    std: float
    radius: int

    @classmethod
    def fit(cls, x, y, *, radius: int = 2, n_features: int = 500,
            length_scale: float = 1.0, lam: float = 1e-6, rng=None,
            batch: int = 20000) -> LocalRandomFeatures:
        r"""Fit :math:`\theta` by ridge regression of ``y`` on the features of ``x``.

        Parameters
        ----------
        x, y : arrays, shape (n, d)
            Inputs and per-site targets (e.g. :math:`x_j` and :math:`x_{j+1} - x_j`).
        radius : int
            Stencil radius :math:`r`.
        n_features : int
            :math:`D`.
        length_scale : float
            :math:`\ell`, in units of the normalised inputs.
        lam : float
            Ridge parameter :math:`\lambda`, per sample: the normal equations use
            :math:`n d \lambda`, so the same value suits any amount of data.
        rng : int or dalib.random.Generator
            Seed or generator of :math:`W, b`.
        batch : int
            Rows of :math:`\Phi` formed at a time (memory).
        """
        from ..random import default_rng

        xp = namespace(x, y)
        if x.ndim != 2 or y.shape != x.shape:
            raise ValueError(f"x and y must have the same shape (n, d), got {x.shape} and "
                             f"{y.shape}")
        if rng is None:
            raise ValueError("rng must be given (a seed or a dalib.random.Generator)")
        n_features = check_int(n_features, "n_features")
        radius = check_int(radius, "radius", minimum=0)
        if not length_scale > 0:
            raise ValueError(f"length_scale must be positive, got {length_scale}")
        rng = default_rng(rng, xp=xp)
        m = 2 * radius + 1
        W = rng.standard_normal((m, n_features), dtype=x.dtype) / length_scale
        b = 2 * math.pi * rng.uniform((n_features,), dtype=x.dtype)
        mean = float(xp.mean(x))
        std = float(xp.std(x))
        n, d = x.shape
        A = xp.zeros((n_features, n_features), dtype=x.dtype)
        r = xp.zeros((n_features,), dtype=x.dtype)
        rows = max(1, batch // d)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            z = local_stencil((x[start:stop, :] - mean) / std, radius)
            Phi = xp.reshape(random_fourier_features(z, W, b), (-1, n_features))
            A = A + Phi.T @ Phi
            r = r + Phi.T @ xp.reshape(y[start:stop, :], (-1,))
        A = A + (lam * n * d) * xp.eye(n_features, dtype=x.dtype)
        theta = xp.linalg.solve(A, r[:, None])[:, 0]
        return cls(W=W, b=b, theta=theta, mean=mean, std=std, radius=radius)

    def __call__(self, x):
        z = local_stencil((x - self.mean) / self.std, self.radius)
        return random_fourier_features(z, self.W, self.b) @ self.theta


def rk4_step(tendency: Callable, dt: float) -> Callable:
    r"""The one-step map of the classical Runge-Kutta scheme for :math:`\dot x = g(x)`.

    .. math::
        k_1 = g(x),\ k_2 = g(x + \tfrac{\Delta t}{2}k_1),\ k_3 = g(x + \tfrac{\Delta t}{2}k_2),
        \ k_4 = g(x + \Delta t\,k_3),\quad
        x \mapsto x + \tfrac{\Delta t}{6}(k_1 + 2k_2 + 2k_3 + k_4).

    Parameters
    ----------
    tendency : callable
        :math:`g`, acting on states of shape ``(..., d)``.
    dt : float
        :math:`\Delta t`.

    Returns
    -------
    callable
        ``step(x)``.
    """
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")

    def step(x):
        k1 = tendency(x)
        k2 = tendency(x + 0.5 * dt * k1)
        k3 = tendency(x + 0.5 * dt * k2)
        k4 = tendency(x + dt * k3)
        return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    return step


def rollout(step: Callable, x0, n_steps: int):
    r"""Autoregressive forecast :math:`x_0, f(x_0), f(f(x_0)), \dots`.

    Parameters
    ----------
    step : callable
        One-step map :math:`f` acting on shape ``(..., d)``.
    x0 : array, shape (..., d)
        Initial states (any batch, e.g. many initial conditions at once).
    n_steps : int

    Returns
    -------
    array, shape (n_steps + 1, ..., d)
        The trajectory, starting with ``x0``.
    """
    n_steps = check_int(n_steps, "n_steps", minimum=0)
    xp = namespace(x0)
    states = [x0]
    for _ in range(n_steps):
        states.append(step(states[-1]))
    return xp.stack(states, axis=0)


def periodic_interpolation(y, d: int, every: int):
    r"""Fill a periodic grid from observations of every ``every``-th site, linearly.

    Site :math:`i = k\,e + s` with :math:`0 \le s < e` gets
    :math:`(1 - s/e)\,y_k + (s/e)\,y_{k+1}` (indices of :math:`y` modulo :math:`d/e`),
    so observed sites keep their values.

    Parameters
    ----------
    y : array, shape (..., d // every)
        Values at sites ``0, every, 2 every, ...``.
    d : int
        Grid size (a multiple of ``every``).
    every : int

    Returns
    -------
    array, shape (..., d)
    """
    d = check_int(d, "d")
    every = check_int(every, "every")
    if d % every or y.shape[-1] != d // every:
        raise ValueError(f"y must have d // every = {d // every} values on its last axis "
                         f"(d a multiple of every), got shape {y.shape} with d={d}")
    xp = namespace(y)
    nxt = xp.roll(y, -1, axis=-1)
    parts = [(1 - s / every) * y + (s / every) * nxt for s in range(every)]
    return xp.reshape(xp.stack(parts, axis=-1), (*y.shape[:-1], d))


@dataclass(frozen=True)
class NetworkSurrogate:
    """A trained network tendency and its RK4 one-step map.

    Attributes
    ----------
    params : dict
        The network's parameters (:func:`~dalib.learning.networks.local_cnn`), float64.
    dt : float
        The RK4 step, one interval between training states.
    history : numpy array
        Training loss per iteration.
    """

    params: Any
    dt: float
    history: Any

    def tendency(self, x):
        from .networks import local_cnn

        return local_cnn(self.params, x)

    @functools.cached_property
    def step(self) -> Callable:
        """The compiled one-step map :math:`x \\mapsto \\mathrm{RK4}_{\\Delta t}[g](x)`."""
        import jax

        return jax.jit(rk4_step(self.tendency, self.dt))

    def __call__(self, x):
        return self.step(x)


@functools.lru_cache(maxsize=8)
def _one_step_loss(dt: float) -> Callable:
    from .networks import local_cnn

    def loss(params, batch):
        x0, x1 = batch
        step = rk4_step(functools.partial(local_cnn, params), dt)
        return ((step(x0) - x1) ** 2).mean()

    return loss


@functools.lru_cache(maxsize=8)
def _adam(lr: float, n_iter: int, decay: float):
    import optax

    return optax.adam(optax.exponential_decay(lr, n_iter, decay))


def fit_network_surrogate(states, targets=None, *, dt: float, rng, n_iter: int = 3000,
                          batch_size: int = 32, lr: float = 1e-2, lr_decay: float = 0.02,
                          float32: bool = True, **architecture) -> NetworkSurrogate:
    r"""Train the local network as a tendency inside one RK4 step (module docstring).

    Parameters
    ----------
    states : array, shape (n + 1, d)
        A trajectory at intervals ``dt`` (truth, reanalysis, ...); consecutive states are
        the training pairs.
    targets : array, shape (n, d), optional
        Given: the pairs are ``(states[j], targets[j])`` instead (``states`` then has
        shape ``(n, d)``), e.g. forecasts of a physics model started from ``states``.
    dt : float
        Interval between states, the RK4 step.
    rng : int or dalib.random.Generator
        Seed of the initial weights and the batches.
    n_iter, batch_size : int
        Adam steps and pairs per step.
    lr, lr_decay : float
        First step size, and the factor by which it decays (exponentially) by the end.
    float32 : bool
        Train in single precision (about twice as fast on a CPU); the returned model
        computes in double precision.
    **architecture
        Passed to :func:`~dalib.learning.networks.init_local_cnn` (``width``,
        ``channels``, ``hidden``).

    Returns
    -------
    NetworkSurrogate
    """
    import jax
    import numpy as np

    from ..backend import to_numpy
    from ..random import default_rng
    from .networks import fit, init_local_cnn

    x = np.asarray(to_numpy(states), dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"states must have shape (n + 1, d) with n >= 1, got {x.shape}")
    if targets is None:
        x0, x1 = x[:-1], x[1:]
    else:
        x0, x1 = x, np.asarray(to_numpy(targets), dtype=float)
        if x1.shape != x0.shape:
            raise ValueError(f"targets must have the shape of states {x0.shape}, got "
                             f"{x1.shape}")
    seed_init, seed_batches = default_rng(rng).spawn(2)
    scale = float(np.std(x1 - x0) / dt)
    p0 = init_local_cnn(seed_init, mean=float(x.mean()), std=float(x.std()), scale=scale,
                        dtype=np.float32 if float32 else np.float64, **architecture)
    params, history = fit(_one_step_loss(float(dt)), p0, (x0, x1),
                          optimizer=_adam(float(lr), int(n_iter), float(lr_decay)),
                          n_iter=n_iter, batch_size=batch_size, rng=seed_batches)
    params = jax.tree_util.tree_map(lambda a: a.astype(np.float64), params)
    return NetworkSurrogate(params=params, dt=float(dt), history=history)
