r"""Model-error correction learned from analysis increments (lecture, section 8.4).

A cycled filter writes its analysis as :math:`x^a_j = x^f_j + K_j(y_j - h(x^f_j))`.
With unbiased observations the *analysis increment* :math:`x^a_j - x^f_j` pulls the
forecast towards the truth on average, so a record of pairs

.. math::
    \{(x^f_j,\ \delta_j)\}_{j=1}^{J}, \qquad \delta_j = x^a_j - x^f_j ,

(:func:`increment_data`, from the forecast and analysis means that
:func:`~dalib.da.assimilate` records) is a training set for a predictor
:math:`\widetilde{\delta}(x^f)` of the increment.  Three predictors of increasing capacity:

* a constant bias :math:`\widetilde\delta = \bar\delta`, the mean increment
  (:func:`fit_bias`);
* a linear state-dependent correction (Leith 1978; Danforth, Kalnay and Miyoshi 2007),
  :math:`\widetilde\delta(x) = \bar\delta + L(x - \bar x^f)` with
  :math:`L = C_{\delta x} C_{xx}^{-1}` the regression of the increments on the forecast
  anomalies (:func:`fit_linear`);
* a nonlinear local regression, a translation-equivariant network of
  :mod:`dalib.learning.networks` trained by least squares (:func:`fit_network`).

The corrected model :class:`IncrementCorrectedModel` adds the predicted increment to each
forecast, :math:`\mathcal M^{c}(x) = \mathcal M(x) + \widetilde\delta(\mathcal M(x))`.
Any dalib filter run with it assimilates with the corrected background

.. math::
    x^a_j = (x^f_j + \widetilde\delta_j) + K_j\big(y_j - h(x^f_j + \widetilde\delta_j)\big),

and iterating :math:`\mathcal M^{c}` gives corrected free forecasts.  Wrapping a corrected
model once more, with a correction fitted to the increments of a filter that used it,
is one iteration of the procedure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_same_shape
from ..backend import asarray, backend_name, device, namespace

__all__ = [
    "IncrementData",
    "increment_data",
    "BiasCorrection",
    "LinearCorrection",
    "NetworkCorrection",
    "fit_bias",
    "fit_linear",
    "fit_network",
    "IncrementCorrectedModel",
]


@dataclass(frozen=True)
class IncrementData:
    r"""Pairs :math:`(x^f_j, \delta_j = x^a_j - x^f_j)` of one cycled filter run.

    Attributes
    ----------
    xf : array, shape (n, d)
        Forecast (background) means.
    increments : array, shape (n, d)
        Analysis increments :math:`x^a_j - x^f_j`.
    dt : float
        The assimilation window (time between analyses).
    """

    xf: Any
    increments: Any
    dt: float

    def __post_init__(self):
        check_array(self.xf, "xf", ndim=2)
        check_array(self.increments, "increments", ndim=2)
        check_same_shape(self.xf, "xf", self.increments, "increments")
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")

    @property
    def n(self) -> int:
        """Number of pairs."""
        return int(self.xf.shape[0])

    @property
    def tendency(self):
        r"""Increments per unit time, :math:`\delta_j / \Delta t`, an estimate of the
        tendency the model misses (under the gain's shrinkage)."""
        return self.increments / self.dt


def increment_data(result, *, burn_in: int | None = None) -> IncrementData:
    r"""The increment dataset of a cycled filter run.

    Parameters
    ----------
    result : AssimilationResult
        From :func:`~dalib.da.assimilate` with a sequential filter: ``result.forecast[j]``
        and ``result.analysis[j]`` are the means before and after assimilating ``y_j``.
    burn_in : int, optional
        Cycles left out at the start (default ``result.burn_in``).

    Returns
    -------
    IncrementData
        Pairs for the cycles ``j = burn_in + 1, ..., J``.
    """
    burn_in = result.burn_in if burn_in is None else check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= result.J:
        raise ValueError(f"burn_in must be below the number of cycles {result.J}, "
                         f"got {burn_in}")
    xf = result.forecast[burn_in + 1:, ...]
    xa = result.analysis[burn_in + 1:, ...]
    return IncrementData(xf, xa - xf, float(result.twin.ssm.dt))


@dataclass(frozen=True)
class BiasCorrection:
    r"""The constant correction :math:`\widetilde\delta(x) = b`."""

    b: Any

    def __call__(self, x):
        """The predicted increment at states ``(..., d)``."""
        xp = namespace(x)
        return xp.broadcast_to(self.b, x.shape)


def fit_bias(data: IncrementData) -> BiasCorrection:
    r"""The mean increment :math:`b = \frac1n\sum_j \delta_j`, the least-squares constant."""
    xp = namespace(data.increments)
    return BiasCorrection(xp.mean(data.increments, axis=0))


@dataclass(frozen=True)
class LinearCorrection:
    r"""The affine correction :math:`\widetilde\delta(x) = b + L(x - \bar x)`.

    Attributes
    ----------
    L : array, shape (d, d)
        The regression matrix.
    b : array, shape (d,)
        The mean increment.
    xbar : array, shape (d,)
        The mean forecast.
    """

    L: Any
    b: Any
    xbar: Any

    def __call__(self, x):
        """The predicted increment at states ``(..., d)``."""
        return self.b + (x - self.xbar) @ self.L.T


def fit_linear(data: IncrementData, *, ridge: float = 0.0) -> LinearCorrection:
    r"""Leith's linear correction from increments (Danforth, Kalnay and Miyoshi 2007).

    With forecast anomalies :math:`x'_j = x^f_j - \bar x^f` and increment anomalies
    :math:`\delta'_j = \delta_j - \bar\delta`,

    .. math::
        L = C_{\delta x}\,(C_{xx} + \lambda I)^{-1},\qquad
        C_{\delta x} = \tfrac1n\textstyle\sum_j \delta'_j x_j'^{\top},\quad
        C_{xx} = \tfrac1n\textstyle\sum_j x'_j x_j'^{\top},

    the least-squares (for :math:`\lambda > 0`, ridge) fit of :math:`\delta_j \approx
    \bar\delta + L x'_j`.

    Parameters
    ----------
    data : IncrementData
    ridge : float
        :math:`\lambda \ge 0`, added to the diagonal of :math:`C_{xx}`.
    """
    if not ridge >= 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    xp = namespace(data.xf, data.increments)
    n, d = data.xf.shape
    if n <= d and ridge == 0:
        raise ValueError(f"data must hold more pairs than state components ({d}) for an "
                         f"unregularised fit, got {n}; use ridge > 0")
    xbar = xp.mean(data.xf, axis=0)
    b = xp.mean(data.increments, axis=0)
    Xa = data.xf - xbar
    Da = data.increments - b
    Cxx = Xa.T @ Xa / n + ridge * xp.eye(d, dtype=Xa.dtype)
    Cdx = Da.T @ Xa / n
    L = xp.linalg.solve(Cxx, Cdx.T).T  # Cxx is symmetric: L^T = Cxx^{-1} Cdx^T
    return LinearCorrection(L, b, xbar)


@dataclass(frozen=True)
class NetworkCorrection:
    r"""A network :math:`\widetilde\delta(x) = \mathrm{net}(\vartheta, x)` as a correction.

    The network is a JAX function; states of another backend are converted to JAX and the
    result back to their backend and device.
    """

    net: Callable
    params: Any

    def __call__(self, x):
        """The predicted increment at states ``(..., d)``."""
        name = backend_name(namespace(x))
        if name == "jax":
            return self.net(self.params, x)
        out = self.net(self.params, asarray(x, "jax"))
        return asarray(out, name, device=device(x))


def fit_network(data: IncrementData, *, rng, net: Callable | None = None, params=None,
                n_iter: int = 2000, batch_size: int = 64, lr: float = 3e-3,
                **init) -> tuple[NetworkCorrection, Any]:
    r"""A network fitted to the increments by least squares,
    :math:`\min_\vartheta \frac1n\sum_j \|\mathrm{net}(\vartheta, x^f_j) - \delta_j\|^2/d`.

    Parameters
    ----------
    data : IncrementData
    rng : int or dalib.random.Generator
        Initial weights and minibatches.
    net, params : callable and pytree, optional
        The network and its initial parameters; default the local convolutional network
        :func:`~dalib.learning.networks.local_cnn`, initialised with the data's mean and
        standard deviation and an output scale of the increments' standard deviation.
    n_iter, batch_size, lr : int, int, float
        Adam steps (with a cosine-decayed step size starting at ``lr``) and minibatch size.
    **init
        Further arguments of :func:`~dalib.learning.networks.init_local_cnn` (``width``,
        ``channels``, ``hidden``).

    Returns
    -------
    correction : NetworkCorrection
    history : numpy array
        The minibatch loss before each step.
    """
    import optax

    from ..backend import to_numpy
    from ..random import default_rng
    from .networks import fit, init_local_cnn, local_cnn

    rng = default_rng(rng)
    xf = asarray(to_numpy(data.xf), "jax")
    inc = asarray(to_numpy(data.increments), "jax")
    if net is None:
        net = local_cnn
        if params is None:
            params = init_local_cnn(rng, mean=float(xf.mean()), std=float(xf.std()),
                                    scale=float(inc.std()), **init)
    elif params is None:
        raise ValueError("params must be given with a custom net")

    def loss(p, batch):
        x, target = batch
        return ((net(p, x) - target) ** 2).mean()

    n_iter = check_int(n_iter, "n_iter")
    schedule = optax.cosine_decay_schedule(lr, n_iter)
    params, history = fit(loss, params, (xf, inc), optimizer=optax.adam(schedule),
                          n_iter=n_iter, batch_size=batch_size, rng=rng)
    return NetworkCorrection(net, params), history


@dataclass(frozen=True)
class IncrementCorrectedModel:
    r"""The model plus its predicted increment,
    :math:`\mathcal M^{c}(x) = x^f + \widetilde\delta(x^f)`, :math:`x^f = \mathcal M(x)`.

    Parameters
    ----------
    M : callable
        The forecast model over one assimilation window, acting on ``(..., d)``.
    correction : callable
        A predicted increment :math:`\widetilde\delta`, e.g. from :func:`fit_bias`,
        :func:`fit_linear` or :func:`fit_network`.

    Examples
    --------
    >>> from dalib.models import Lorenz96, RK4Map
    >>> M = RK4Map(Lorenz96(36, F=10.0), 0.01, 5)
    >>> # ssm.replace(M=IncrementCorrectedModel(M, fit_bias(data))) assimilates with the
    >>> # corrected background.
    """

    M: Callable
    correction: Callable

    def __post_init__(self):
        for name in ("M", "correction"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable, got "
                                f"{type(getattr(self, name)).__name__}")

    @property
    def d(self) -> int:
        """The state dimension of ``M`` (an AttributeError if ``M`` states none)."""
        return self.M.d

    def __call__(self, x):
        """Advance states ``(..., d)`` over one window and add the predicted increment."""
        xf = self.M(x)
        return xf + self.correction(xf)
