r"""The ensemble Kalman filter's likelihood of the model parameters, and its gradient.

The likelihood of eq. (6) of the lecture, :math:`\P(\Ydag \mid \vartheta)`, factorises over
the observation times into the predictive densities of the filter,

.. math::
    \log \P(\Ydag \mid \vartheta) = \sum_{j=1}^J \log \P(\ydag_j \mid \ydag_{1:j-1}, \vartheta).

For a linear-Gaussian model the Kalman filter computes each factor exactly
(:func:`dalib.da.kalman_filter`).  The ensemble Kalman filter gives the Gaussian
approximation (Chen, Sanz-Alonso and Willett 2021)

.. math::
    \log \P(\ydag_j \mid \ydag_{1:j-1}, \vartheta) \approx
    \log \N\big(\ydag_j;\ \bar y_j,\ \tfrac{1}{N-1} Y_j^\top Y_j + R\big),

with :math:`\bar y_j` the mean of :math:`h` applied to the forecast ensemble and
:math:`Y_j` the centred rows :math:`h(E^f_{j,n}) - \bar y_j` (so
:math:`\tfrac{1}{N-1}Y_j^\top Y_j = H\hat C_j H^\top` for linear :math:`h`).  It is evaluated
in ensemble space (:func:`ensemble_log_evidence`): no ``d``-by-``d`` matrix is formed.

All random numbers the filter uses (initial ensemble, model noise, observation
perturbations) are standard normal draws fixed in advance (:class:`FilterNoise`), and
:math:`\vartheta` enters only through :math:`\mathcal M_\vartheta` (and :math:`Q`).  The
log-likelihood is then a deterministic, differentiable function of :math:`\vartheta`: the
*reparameterisation* of Chen et al. (2021).  Written with dalib's array-agnostic analysis
steps, it runs on JAX arrays, where ``jax.grad`` differentiates it and the cycles run in a
``jax.lax.scan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .._validate import check_array, check_int, check_positive
from ..backend import (
    asarray,
    backend_name,
    device,
    namespace,
    to_numpy,
)
from ..covariance import as_covariance
from ..da._kernels import inflate_anomalies, log_evidence_whitened, whitened_obs
from ..da.enkf import enkf_analysis, etkf_analysis
from ..random import Generator, default_rng

__all__ = [
    "FilterNoise",
    "draw_noise",
    "ReplayRNG",
    "ensemble_log_evidence",
    "enkf_loglik",
    "LoglikDetails",
    "maximize_likelihood",
    "value_and_grad",
    "MLEResult",
]



@dataclass(frozen=True)
class FilterNoise:
    r"""Standard normal draws for one filter run, fixed in advance (reparameterisation).

    Attributes
    ----------
    z0 : array, shape (N, d)
        Initial ensemble: :math:`E_{0,n} = m_0 + C_0^{1/2} z_{0,n}`.
    zq : array, shape (J, N, d)
        Model noise: :math:`\xi_{j,n} = Q^{1/2} z^q_{j,n}`.
    zr : array, shape (J, N, p)
        Observation perturbations of the perturbed-observation EnKF.
    """

    z0: Any
    zq: Any
    zr: Any

    @property
    def N(self) -> int:
        """Ensemble size."""
        return int(self.z0.shape[0])

    @property
    def J(self) -> int:
        """Number of cycles."""
        return int(self.zq.shape[0])

    def to(self, xp) -> "FilterNoise":
        """The same numbers on backend ``xp`` (so NumPy and JAX runs can be compared)."""
        return FilterNoise(asarray(self.z0, xp), asarray(self.zq, xp), asarray(self.zr, xp))


def draw_noise(N: int, d: int, p: int, J: int, rng) -> FilterNoise:
    """Draw the :class:`FilterNoise` of an ensemble of ``N`` members over ``J`` cycles.

    Parameters
    ----------
    N, d, p, J : int
        Ensemble size, state and observation dimensions, number of cycles.
    rng : int or dalib.random.Generator
        Source of the draws; its backend is the backend of the arrays.
    """
    N = check_int(N, "N", minimum=2)
    d, p, J = check_int(d, "d"), check_int(p, "p"), check_int(J, "J")
    rng = default_rng(rng)
    return FilterNoise(
        rng.standard_normal((N, d)), rng.standard_normal((J, N, d)),
        rng.standard_normal((J, N, p)),
    )


class ReplayRNG(Generator):
    """A generator that hands out one given array of standard normal draws.

    It lets a dalib analysis function that takes ``rng`` (such as
    :func:`~dalib.da.enkf_analysis`) use draws fixed in advance.

    Parameters
    ----------
    draws : array
        The numbers returned by the next call of :meth:`standard_normal`.
    """

    def __init__(self, draws):  # no super().__init__: nothing is drawn
        self.xp = namespace(draws)
        self.backend = backend_name(self.xp)
        self.device = device(draws)  # the draws are where they are
        self._draws = draws

    def standard_normal(self, shape=(), dtype=None):
        shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if self._draws is None:
            raise RuntimeError("ReplayRNG holds one array of draws and it was used already")
        if tuple(self._draws.shape) != shape:
            raise ValueError(
                f"the stored draws have shape {tuple(self._draws.shape)}, but shape {shape} "
                "was requested"
            )
        out, self._draws = self._draws, None
        return out

    def uniform(self, shape=(), dtype=None):
        raise RuntimeError("ReplayRNG only replays standard normal draws")


def ensemble_log_evidence(E, y, h, R):
    r"""Gaussian log predictive density of ``y`` under a forecast ensemble, in ensemble space.

    .. math::
        \log \N(y;\ \bar y,\ S), \qquad S = \tfrac{1}{N-1}Y^\top Y + R,

    where :math:`\bar y` and :math:`Y` are the mean and centred rows of :math:`h(E)`.  With
    :math:`R = LL^\top`, the whitened anomalies :math:`\tilde Y = YL^{-\top}` and innovation
    :math:`\tilde d = L^{-1}(y - \bar y)`, and :math:`G = \tilde Y\tilde Y^\top + (N-1)I_N`,
    the Woodbury and Sylvester identities give

    .. math::
        (y-\bar y)^\top S^{-1}(y-\bar y) = \tilde d^\top\tilde d
            - (\tilde Y\tilde d)^\top G^{-1}(\tilde Y\tilde d), \qquad
        \log\det S = \log\det R + \log\det G - N\log(N-1),

    so only the ``N``-by-``N`` :math:`G` is factorised (Cholesky), or, when ``p < N``,
    the ``p``-by-``p`` :math:`L^{-1}SL^{-\top} = I_p + \tilde Y^\top\tilde Y/(N-1)`.

    Parameters
    ----------
    E : array, shape (N, d)
        Forecast ensemble.
    y : array, shape (p,)
        Observation.
    h : callable
        Observation operator acting on ``(N, d)``.
    R : covariance-like
        Observation error covariance.

    Returns
    -------
    array, shape ()
        The log density.
    """
    check_array(E, "E", ndim=2)
    check_array(y, "y", ndim=1)
    xp = namespace(E, y)
    N, p = E.shape[0], y.shape[0]
    if N < 2:
        raise ValueError(f"E must have at least 2 members (rows), got shape {tuple(E.shape)}")
    R = as_covariance(R, "R", d=p)
    _, _, Yw, dw = whitened_obs(E, y, h, R, xp)
    return log_evidence_whitened(Yw, dw, N, R, xp)


@dataclass(frozen=True)
class LoglikDetails:
    """Per-cycle output of :func:`enkf_loglik` with ``details=True``.

    Attributes
    ----------
    loglik : array, shape ()
        The total log-likelihood.
    increments : array, shape (J,)
        :math:`\\log \\P(y_j \\mid y_{1:j-1})` for ``j = 1..J``.
    forecast, analysis : array, shape (J, d)
        Forecast and analysis ensemble means at ``j = 1..J``.
    """

    loglik: Any
    increments: Any
    forecast: Any
    analysis: Any


def _scan(cycle, carry, xs, xp):
    """``lax.scan`` on JAX, a Python loop elsewhere; ``xs`` is a tuple of stacked arrays."""
    if backend_name(xp) == "jax":
        import jax

        # Recomputing each cycle in the backward pass (checkpointing) keeps the memory at
        # one ensemble per cycle, and XLA compiles the differentiated loop several times
        # faster than with every intermediate value stored.
        return jax.lax.scan(jax.checkpoint(cycle), carry, xs)
    outs = []
    for j in range(xs[0].shape[0]):
        carry, out = cycle(carry, tuple(x[j, ...] for x in xs))
        outs.append(out)
    return carry, tuple(xp.stack([o[i] for o in outs]) for i in range(len(outs[0])))


def _stop_gradient(xp):
    """``jax.lax.stop_gradient`` on JAX, the identity elsewhere (nothing to stop)."""
    if backend_name(xp) == "jax":
        import jax

        return jax.lax.stop_gradient
    return lambda x: x


def enkf_loglik(M: Callable, y, h, R, m0, C0, noise: FilterNoise, *, Q=None,
                inflation=1.0, analysis: str = "enkf", localization=None,
                truncate: int | None = None, details: bool = False):
    r"""EnKF approximation of the log-likelihood :math:`\log\P(\Ydag \mid \vartheta)`, eq. (6).

    Runs the ensemble Kalman filter with the draws of ``noise`` and sums the Gaussian log
    predictive densities of the observations (:func:`ensemble_log_evidence`):

    .. math::
        E^f_{j,n} = \mathcal M_\vartheta(E^a_{j-1,n}) + Q^{1/2} z^q_{j,n},\qquad
        \ell(\vartheta) = \sum_{j=1}^J \log\N\big(\ydag_j;\ \bar y_j,\
        \tfrac{1}{N-1}Y_j^\top Y_j + R\big),

    then the analysis :math:`E^a_j` (perturbed-observation EnKF with the perturbations
    :math:`R^{1/2}z^r_{j,n}`, or the ETKF).  Every operation is differentiable, so
    ``jax.grad`` of this function with respect to parameters inside ``M`` (or ``Q``) is
    the auto-differentiable EnKF of Chen, Sanz-Alonso and Willett (2021).

    Parameters
    ----------
    M : callable
        Forecast model :math:`\mathcal M_\vartheta` acting on ``(N, d)``.
    y : array, shape (J, p)
        Observations :math:`y^\dagger_1..y^\dagger_J`.
    h : callable
        Observation operator.
    R, C0 : covariance-like
        Observation error and initial covariances.
    m0 : array, shape (d,)
        Initial mean.
    noise : FilterNoise
        The standard normal draws (same backend as ``y``; see :meth:`FilterNoise.to`).
    Q : covariance-like or None
        Model error covariance (``None``: no model noise).  A traced scalar is allowed,
        to learn :math:`Q = qI`.
    inflation : float
        Multiplicative inflation of the forecast anomalies (applied before the likelihood
        and the analysis).
    analysis : {"enkf", "etkf"}
        Perturbed-observation EnKF (default; differentiable for any ``N``) or ETKF.  The
        ETKF's symmetric square root uses an eigendecomposition whose derivative is
        undefined for repeated eigenvalues, which happens when ``N > p + 1``.
    localization : tuple (rho_xy, rho_yy), optional
        Schur-product localisation of the perturbed-observation EnKF (see
        :func:`~dalib.da.enkf_analysis`).
    truncate : int or array of bool, shape (J,), optional
        Truncated backpropagation (Chen et al. 2021): the gradient does not flow through
        the ensemble across every ``truncate``-th cycle, so it sums the derivatives of
        windows of ``truncate`` cycles, each started from the filter's ensemble.  The
        value is unchanged.  Through a chaotic model the full gradient grows
        exponentially with the window length; truncation keeps it useful.  A boolean
        array marks the cycles where the gradient is cut (``True`` before cycle ``j``);
        being data, it can change between calls of a compiled function.
    details : bool
        Return a :class:`LoglikDetails` instead of the total.

    Returns
    -------
    array, shape () or LoglikDetails
    """
    check_array(y, "y", ndim=2)
    check_array(m0, "m0", ndim=1)
    if analysis not in ("enkf", "etkf"):
        raise ValueError(f"analysis must be 'enkf' or 'etkf', got {analysis!r}")
    if not isinstance(noise, FilterNoise):
        raise TypeError(f"noise must be a FilterNoise (see draw_noise), got {type(noise)}")
    J, p = int(y.shape[0]), int(y.shape[1])
    d, N = int(m0.shape[0]), noise.N
    if tuple(noise.z0.shape) != (N, d) or tuple(noise.zq.shape) != (J, N, d) or tuple(
        noise.zr.shape
    ) != (J, N, p):
        raise ValueError(
            f"noise must have shapes (N, d)=({N}, {d}), (J, N, d)=({J}, {N}, {d}) and "
            f"(J, N, p)=({J}, {N}, {p}); got {tuple(noise.z0.shape)}, "
            f"{tuple(noise.zq.shape)}, {tuple(noise.zr.shape)}"
        )
    check_positive(inflation, "inflation")
    xp = namespace(y, m0)
    R = as_covariance(R, "R", d=p)
    C0 = as_covariance(C0, "C0", d=d)
    Q = None if Q is None else as_covariance(Q, "Q", d=d)
    if localization is not None and analysis != "enkf":
        raise ValueError("localization needs analysis='enkf'")
    if truncate is None or isinstance(truncate, int):
        if truncate is not None:
            truncate = check_int(truncate, "truncate")
        cut = xp.asarray([truncate is not None and j > 0 and j % truncate == 0
                          for j in range(J)])
    else:
        cut = truncate
        check_array(cut, "truncate", ndim=1, last=J, finite=False)
    E0 = m0 + C0.sqrt_matmul(noise.z0)
    stop = _stop_gradient(xp)

    def cycle(E, inputs):
        yj, zq, zr, cutj = inputs
        if truncate is not None:
            E = xp.where(cutj, stop(E), E)  # same value, no gradient through the past
        E = M(E)
        if Q is not None:
            E = E + Q.sqrt_matmul(zq)
        mf = xp.mean(E, axis=0)
        if not (isinstance(inflation, (int, float)) and inflation == 1.0):
            E = inflate_anomalies(E, inflation, xp)
        inc = ensemble_log_evidence(E, yj, h, R)
        if analysis == "enkf":
            E = enkf_analysis(E, yj, h, R, ReplayRNG(zr), localization=localization)
        else:
            E = etkf_analysis(E, yj, h, R)
        return E, (inc, mf, xp.mean(E, axis=0))

    _, (incs, mfs, mas) = _scan(cycle, E0, (y, noise.zq, noise.zr, cut), xp)
    total = xp.sum(incs)
    if details:
        return LoglikDetails(total, incs, mfs, mas)
    return total


@dataclass(frozen=True)
class MLEResult:
    """Output of :func:`maximize_likelihood`.

    Attributes
    ----------
    theta : numpy.ndarray
        The maximiser found.
    loglik : float
        Objective at ``theta``.
    history : list of numpy.ndarray
        The iterates, starting with ``theta0``.
    loglik_history : list of float
        The objective at the iterates.
    evaluations : int
        Number of objective and gradient evaluations.
    message : str
        The optimiser's message.
    """

    theta: Any
    loglik: float
    history: list
    loglik_history: list
    evaluations: int
    message: str


_COMPILED: dict = {}


def _register_pytrees():
    """Let :class:`FilterNoise` pass through ``jax.jit`` as an argument (once)."""
    import jax

    if not _COMPILED.get("registered"):
        jax.tree_util.register_pytree_node(
            FilterNoise, lambda n: ((n.z0, n.zq, n.zr), None), lambda _, c: FilterNoise(*c)
        )
        _COMPILED["registered"] = True


def value_and_grad(loglik: Callable):
    """``jax.jit(jax.value_and_grad(loglik))``, compiled once per function ``loglik``.

    Data passed as arguments (observations, :class:`FilterNoise`) rather than captured in
    a closure reuse the compiled code across runs of the same shapes.
    """
    import jax

    from ..backend import get_namespace

    get_namespace("jax")  # double precision
    _register_pytrees()
    key = ("vg", loglik)
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(jax.value_and_grad(loglik))
    return _COMPILED[key]


def maximize_likelihood(loglik: Callable, theta0, args: tuple = (), *, method: str = "adam",
                        steps: int = 100, lr=0.1, lr_final=None, precondition=None,
                        bounds=None, gtol: float = 1e-6) -> MLEResult:
    r"""Maximise a JAX-differentiable objective by gradient ascent (Adam) or L-BFGS-B.

    The objective and its gradient are compiled once (:func:`value_and_grad`).

    ``method="adam"`` takes ``steps`` steps of Adam (Kingma and Ba 2015),

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
        \vartheta \leftarrow \vartheta + \alpha_t\,
        \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon},

    with :math:`\beta_1 = 0.9, \beta_2 = 0.999`.  It uses only the gradient, so it also
    works with the truncated gradients of :func:`enkf_loglik` (which are not the exact
    gradient of its value).  The step size :math:`\alpha_t` decays geometrically from
    ``lr`` to ``lr_final``.  ``method="lbfgs"`` calls :func:`scipy.optimize.minimize`
    (L-BFGS-B), which needs the exact gradient of a smooth objective.

    Parameters
    ----------
    loglik : callable
        ``loglik(theta, *args)`` for a JAX array ``theta`` of shape ``(k,)``, returning a
        scalar, e.g. a wrapper of :func:`enkf_loglik`.  It is maximised over ``theta``.
    theta0 : array, shape (k,)
        Starting point.
    args : tuple
        Further arguments of ``loglik`` (JAX arrays or :class:`FilterNoise`).
    method : {"adam", "lbfgs"}
    steps : int
        Adam steps, or most L-BFGS iterations.
    lr, lr_final : float or array of shape (k,)
        Adam's first and last step sizes (``lr_final`` defaults to ``lr / 20``); an array
        sets one per parameter.
    precondition : array, shape (k, k), optional
        Optimise over :math:`\varphi` with :math:`\vartheta = \vartheta_0 + P\varphi`,
        starting from :math:`\varphi = 0`.  With :math:`P^\top A P = I` for an
        approximate Hessian :math:`A` of the objective (e.g. a Gauss-Newton matrix), badly
        scaled or correlated parameters become equally easy to move.  The results are
        returned in :math:`\vartheta`.
    bounds : sequence of (low, high), optional
        Box constraints (L-BFGS-B only).
    gtol : float
        Tolerance on the projected gradient (L-BFGS-B only).

    Returns
    -------
    MLEResult
        For L-BFGS-B, a non-finite objective (a diverged filter) counts as minus infinity,
        so the line search steps back.
    """
    import jax
    import numpy as np

    if method not in ("adam", "lbfgs"):
        raise ValueError(f"method must be 'adam' or 'lbfgs', got {method!r}")
    steps = check_int(steps, "steps")
    theta0 = np.asarray(to_numpy(theta0), dtype=float)
    check_array(theta0, "theta0", ndim=1)
    k = theta0.shape[0]
    vg = value_and_grad(loglik)
    if precondition is not None:
        P = np.asarray(to_numpy(precondition), dtype=float)
        if P.shape != (k, k):
            raise ValueError(f"precondition must have shape ({k}, {k}), got {P.shape}")
        if bounds is not None:
            raise ValueError("bounds cannot be combined with precondition")
        base, theta0 = theta0, np.zeros(k)

        def evaluate(phi):
            v, g = vg(jax.numpy.asarray(base + P @ phi), *args)
            return float(v), P.T @ np.asarray(g, dtype=float)  # chain rule

        def to_theta(phi):
            return base + P @ phi
    else:
        def evaluate(theta):
            v, g = vg(jax.numpy.asarray(theta), *args)
            return float(v), np.asarray(g, dtype=float)

        def to_theta(theta):
            return theta

    if method == "adam":
        lr = np.broadcast_to(np.asarray(lr, dtype=float), theta0.shape)
        check_positive(lr, "lr")
        lr_final = lr / 20 if lr_final is None else np.broadcast_to(
            np.asarray(lr_final, dtype=float), theta0.shape)
        check_positive(lr_final, "lr_final")
        theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
        history, values = [theta.copy()], []
        b1, b2, eps = 0.9, 0.999, 1e-8
        for t in range(1, steps + 1):
            val, g = evaluate(theta)
            if not (math.isfinite(val) and np.all(np.isfinite(g))):
                raise FloatingPointError(
                    f"the objective or its gradient is not finite at step {t} (theta = "
                    f"{np.array2string(to_theta(theta), precision=4)}); try a smaller lr, a "
                    "larger ensemble, more inflation or a truncated gradient (truncate=)"
                )
            values.append(val)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            alpha = lr * (lr_final / lr) ** ((t - 1) / max(steps - 1, 1))
            theta = theta + alpha * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            history.append(theta.copy())
        val, _ = evaluate(theta)
        values.append(val)
        return MLEResult(to_theta(theta), val, [to_theta(t) for t in history], values,
                         steps + 1, "Adam: steps done")

    from scipy.optimize import minimize

    count = [0]

    def objective(theta):
        count[0] += 1
        val, g = evaluate(theta)
        if not (math.isfinite(val) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(theta)
        return -val, -g

    history = [theta0.copy()]
    values = [-objective(theta0)[0]]

    def callback(intermediate_result):
        history.append(np.array(intermediate_result.x))
        values.append(-float(intermediate_result.fun))

    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   callback=callback, options={"maxiter": steps, "gtol": gtol})
    return MLEResult(to_theta(np.asarray(res.x)), -float(res.fun),
                     [to_theta(t) for t in history], values, count[0], str(res.message))
