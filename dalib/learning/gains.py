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

For a nonlinear model there is no steady state; a natural constant gain to compare with
is the extended Kalman filter's gain averaged over a long run (Luk, Bach, Baptista and
Stuart 2024),

.. math::
    \bar K = \frac{1}{J - b}\sum_{j = b + 1}^{J} \hat C_j H_j^\top
    (H_j \hat C_j H_j^\top + R)^{-1}, \qquad H_j = Dh(\hat m_j),

which :class:`GainAveragingEKF` accumulates while the cycling driver runs the EKF
(:func:`time_averaged_ekf_gain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_positive
from ..backend import asarray, get_namespace, namespace, to_numpy
from ..da import ExtendedKF, GaussianState
from .analysis_losses import truth_loss

__all__ = [
    "GainAveragingEKF",
    "GainSumState",
    "gain_analysis",
    "gain_windows",
    "learn_gain",
    "time_averaged_ekf_gain",
    "unroll_gain",
]


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
               batch_size: int = 32, learning_rate: float = 1e-2, optimizer=None,
               loss: str = "truth", rng=None):
    r"""Learn a constant gain by minimising loss (12) through the unrolled filter.

    With ``loss="observation"`` it minimises eq. (13) instead, and with
    ``loss="corrected"`` eq. (13) corrected by :math:`2\operatorname{tr}(HKR) -
    \operatorname{tr}R` (the sensitivity of a constant gain is :math:`S = HK`), see
    :mod:`~dalib.learning.analysis_steps`.

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
    loss : {"truth", "observation", "corrected"}
        Eq. (12), eq. (13), or eq. (13) corrected for the fit to the noise.
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
    from .analysis_steps import LOSSES
    from .networks import fit

    check_array(K0, "K0", ndim=2)
    if tuple(K0.shape) != (ssm.d, ssm.p):
        raise ValueError(f"K0 must have shape ({ssm.d}, {ssm.p}), got {tuple(K0.shape)}")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= check_int(window, "window"):
        raise ValueError(f"burn_in ({burn_in}) must be smaller than window ({window})")
    check_positive(learning_rate, "learning_rate")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if rng is None:
        raise ValueError("rng must be given (a seed or a dalib.random.Generator)")
    rng = default_rng(rng)
    reference = assimilate(ThreeDVar(K=asarray(K0, namespace(twin.x))), twin, rng,
                           progress=False)
    jnp = get_namespace("jax")
    if loss == "truth":
        data = gain_windows(reference.analysis, twin, window)
        M, h = ssm.M, ssm.h

        def objective(K, batch):
            x0, y, xt = batch
            xa = unroll_gain(K, x0, jnp.moveaxis(y, 1, 0), M, h)
            return truth_loss(xa[burn_in:], jnp.moveaxis(xt, 1, 0)[burn_in:])

        if optimizer is None:
            optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, n_iter))
        K, history = fit(objective, jnp.asarray(to_numpy(K0)), data, optimizer=optimizer,
                         n_iter=n_iter, batch_size=batch_size, rng=rng)
    else:
        from .analysis_steps import learn_analysis

        def step(K, v, y):
            return gain_analysis(K, v, y, ssm.h)

        K, history = learn_analysis(step, jnp.asarray(to_numpy(K0)), ssm, twin,
                                    reference.analysis, loss=loss, window=window,
                                    burn_in=burn_in, n_iter=n_iter, batch_size=batch_size,
                                    learning_rate=learning_rate, optimizer=optimizer,
                                    rng=rng)
    return asarray(to_numpy(K), namespace(twin.x)), history


@dataclass
class GainSumState:
    """EKF mean and covariance, with the running sum of the gains after the burn-in."""

    m: Any
    C: Any
    loglik: Any
    K_sum: Any
    count: int
    cycle: int


class GainAveragingEKF(ExtendedKF):
    r"""The extended Kalman filter that also averages its gains (see the module docstring).

    An :class:`~dalib.da.ExtendedKF` for the cycling driver whose state carries
    :math:`\sum_j K_j` over the cycles after ``burn_in``; the result's
    ``extras["K_mean"]`` is the time-averaged gain :math:`\bar K`.

    Parameters
    ----------
    inflation : float
        As :class:`~dalib.da.ExtendedKF`.
    burn_in : int
        Cycles whose gains are left out of the average.
    """

    def __init__(self, inflation: float = 1.0, burn_in: int = 0):
        super().__init__(inflation)
        self.burn_in = check_int(burn_in, "burn_in", minimum=0)

    def _params(self):
        return {"inflation": self.inflation, "burn_in": self.burn_in}

    def init(self, ssm, rng):
        s = super().init(ssm, rng)
        xp = namespace(s.m)
        return GainSumState(s.m, s.C, s.loglik,
                            xp.zeros((ssm.d, ssm.p), dtype=s.m.dtype), 0, 0)

    def forecast(self, s, ssm, rng):
        g = super().forecast(GaussianState(s.m, s.C, s.loglik), ssm, rng)
        return GainSumState(g.m, g.C, g.loglik, s.K_sum, s.count, s.cycle)

    def analysis(self, s, y, ssm, rng):
        K_sum, count = s.K_sum, s.count
        if s.cycle >= self.burn_in:
            xp = namespace(s.C)
            H = ssm.h.jacobian(s.m)
            CHt = s.C @ H.T  # K = C H^T (H C H^T + R)^{-1}; S is symmetric
            K_sum = K_sum + xp.linalg.solve(H @ CHt + self._R, CHt.T).T
            count += 1
        g = super().analysis(GaussianState(s.m, s.C, s.loglik), y, ssm, rng)
        return GainSumState(g.m, g.C, g.loglik, K_sum, count, s.cycle + 1)

    def moments(self, s):
        return super().moments(GaussianState(s.m, s.C, s.loglik))

    def extras(self, s):
        return {"loglik": s.loglik, "K_mean": s.K_sum / max(s.count, 1)}


def time_averaged_ekf_gain(twin, *, inflation: float = 1.0, burn_in: int = 100, rng=0):
    r"""The time-averaged EKF gain :math:`\bar K` over a twin experiment.

    Parameters
    ----------
    twin : TwinExperiment
        The run (its model must have a tangent-linear ``M.jvp``).
    inflation : float
        EKF covariance inflation (:class:`~dalib.da.ExtendedKF`); on Lorenz-96 the EKF
        needs a few per cent to keep tracking.
    burn_in : int
        Cycles left out of the average.
    rng : int
        Unused by the deterministic EKF; passed to the driver.

    Returns
    -------
    K_mean : array, shape (d, p)
    result : AssimilationResult
        The EKF run (its RMSE shows whether the EKF tracked the truth).
    """
    from ..da import assimilate

    result = assimilate(GainAveragingEKF(inflation, burn_in), twin, rng=rng,
                        progress=False)
    return result.extras["K_mean"], result
