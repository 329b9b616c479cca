r"""Learning a constant gain :math:`K` of the analysis step (the lecture's example 2).

The analysis step is the feedback filter

.. math::
    x_j = v_j + K\,(y_j^\dagger - h(v_j)), \qquad v_j = \mathcal M(x_{j-1}),

with the gain :math:`K \in \mathbb R^{d \times p}` as its only parameter (3DVar with a
fixed gain; in the cycling driver it runs as ``ThreeDVar(K=K)``).  :func:`learn_gain`
chooses :math:`K` by minimising loss (12) of :mod:`~dalib.learning.analysis_losses`
through the filter itself: windows of ``window`` cycles are unrolled from analyses of a
reference run, the squared errors of the last ``window - burn_in`` analyses of each window
are averaged (the first ``burn_in`` let the window forget its start), and the gradient with
respect to :math:`K` flows back through every cycle (``jax.lax.scan``), trained with optax
by :func:`~dalib.learning.networks.fit`.

For a linear-Gaussian model the minimiser of the stationary loss (12) over constant gains
is the steady-state Kalman gain :math:`K_\infty = \hat C_\infty H^\top (H \hat C_\infty
H^\top + R)^{-1}` (the Kalman filter minimises the error covariance at every cycle, and in
its steady state its gain is constant), which the tests check.
"""

from __future__ import annotations

from .._validate import check_array, check_int, check_positive
from ..backend import asarray, get_namespace, namespace, to_numpy
from .analysis_losses import truth_loss

__all__ = ["gain_analysis", "gain_windows", "learn_gain", "unroll_gain"]


def gain_analysis(K, v, y, h):
    r"""The analysis :math:`x = v + K(y^\dagger - h(v))` of a stack of forecasts.

    Parameters
    ----------
    K : array, shape (d, p)
        Gain.
    v : array, shape (..., d)
        Forecasts (one or a stack).
    y : array, shape (..., p)
        Observations, one per forecast.
    h : callable
        Observation operator acting on stacks.
    """
    xp = namespace(K, v, y)
    return v + (y - h(v)) @ xp.matrix_transpose(K)


def unroll_gain(K, x0, y, M, h):
    r"""Cycle the constant-gain filter over ``L`` observation times (JAX, ``lax.scan``).

    Parameters
    ----------
    K : JAX array, shape (d, p)
        Gain.
    x0 : JAX array, shape (B, d)
        Analyses at the start of ``B`` windows.
    y : JAX array, shape (L, B, p)
        Observations of the windows, time first.
    M, h : callable
        Model and observation operator, acting on stacks of JAX arrays.

    Returns
    -------
    JAX array, shape (L, B, d)
        The analyses :math:`x_l = \mathcal M(x_{l-1}) + K(y_l - h(\mathcal M(x_{l-1})))`.
    """
    import jax

    def step(x, yl):
        x = gain_analysis(K, M(x), yl, h)
        return x, x

    return jax.lax.scan(step, x0, y)[1]


def gain_windows(x_start, twin, window: int, stride: int | None = None):
    r"""Training windows: start analyses, observations and truths of ``window`` cycles.

    Parameters
    ----------
    x_start : array, shape (J + 1, d)
        Analyses of a reference run at times 0..J (its ``result.analysis``).
    twin : TwinExperiment
        Truth ``twin.x`` (J + 1, d) and observations ``twin.y`` (J, p).
    window : int
        Cycles per window.
    stride : int, optional
        Cycles between window starts (default ``window // 2``).

    Returns
    -------
    x0 : numpy array (n, d), y : numpy array (n, window, p), x_true : numpy array
    (n, window, d)
        Window ``i`` starts from the analysis at time ``j = i * stride`` and holds the
        observations and truths of times ``j + 1 .. j + window``.
    """
    window = check_int(window, "window")
    stride = max(window // 2, 1) if stride is None else check_int(stride, "stride")
    xs, x, y = (to_numpy(a) for a in (x_start, twin.x, twin.y))
    J = y.shape[0]
    if x.shape[0] != J + 1 or xs.shape != x.shape:
        raise ValueError(f"x_start must have the shape of twin.x {x.shape}, got {xs.shape}")
    if window > J:
        raise ValueError(f"window ({window}) must not exceed the number of cycles J ({J})")
    starts = list(range(0, J - window + 1, stride))
    return (xs[starts], _stack([y[j:j + window] for j in starts]),
            _stack([x[j + 1:j + 1 + window] for j in starts]))


def _stack(arrays):
    import numpy

    return numpy.stack(arrays)


def learn_gain(ssm, twin, K0, *, window: int = 40, burn_in: int = 10, n_iter: int = 500,
               batch_size: int = 32, learning_rate: float = 1e-2, optimizer=None, rng=None):
    r"""Learn a constant gain by minimising loss (12) through the unrolled filter.

    Parameters
    ----------
    ssm : StateSpaceModel
        The model on the JAX backend (``M`` and ``h`` act on stacks of JAX arrays), e.g.
        ``dalib.setups.lorenz96(xp="jax")``.
    twin : TwinExperiment
        Training truth and observations, on any backend.
    K0 : array, shape (d, p)
        Initial gain; it also runs the reference filter whose analyses start the windows.
    window, burn_in : int
        Cycles unrolled per window, and how many of them are left out of the loss.
    n_iter, batch_size : int
        Optimiser steps and windows per step.
    learning_rate : float
        Initial step size of the default optimiser, Adam with a cosine decay of the step
        size to zero over ``n_iter`` steps (so the last steps average the minibatch noise).
    optimizer : optax.GradientTransformation, optional
        Replaces the default.
    rng : int or dalib.random.Generator
        Randomness of the reference run and the batches.

    Returns
    -------
    K : array, shape (d, p)
        The learned gain, on the backend of ``twin.x`` (run it with ``ThreeDVar(K=K)``).
    history : numpy array, shape (n_iter,)
        The minibatch loss (12) before each step.
    """
    import optax

    from ..da import ThreeDVar, assimilate
    from ..random import default_rng
    from .networks import fit

    check_array(K0, "K0", ndim=2)
    if tuple(K0.shape) != (ssm.d, ssm.p):
        raise ValueError(f"K0 must have shape ({ssm.d}, {ssm.p}), got {tuple(K0.shape)}")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= check_int(window, "window"):
        raise ValueError(f"burn_in ({burn_in}) must be smaller than window ({window})")
    check_positive(learning_rate, "learning_rate")
    if rng is None:
        raise ValueError("rng must be given (a seed or a dalib.random.Generator)")
    rng = default_rng(rng)
    reference = assimilate(ThreeDVar(K=asarray(K0, namespace(twin.x))), twin, rng,
                           progress=False)
    data = gain_windows(reference.analysis, twin, window)
    jnp = get_namespace("jax")
    M, h = ssm.M, ssm.h

    def loss(K, batch):
        x0, y, xt = batch
        xa = unroll_gain(K, x0, jnp.moveaxis(y, 1, 0), M, h)
        return truth_loss(xa[burn_in:], jnp.moveaxis(xt, 1, 0)[burn_in:])

    if optimizer is None:
        optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, n_iter))
    K, history = fit(loss, jnp.asarray(to_numpy(K0)), data, optimizer=optimizer,
                     n_iter=n_iter, batch_size=batch_size, rng=rng)
    return asarray(to_numpy(K), namespace(twin.x)), history
