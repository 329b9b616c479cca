r"""Inflation and localisation radius of the LETKF as differentiable parameters (example 1).

The LETKF analysis (:func:`~dalib.da.letkf_analysis`) followed by multiplicative inflation
:math:`\alpha` of the analysis anomalies is a function of two numbers, :math:`\theta =
(\alpha, c)`, with :math:`c` the Gaspari-Cohn half-width.  To learn them by gradient
descent on loss (12) the filter must be differentiable in both:

- :math:`\alpha` enters as :math:`\bar x + \alpha(E - \bar x)`, smooth;
- :math:`c` enters twice in :func:`~dalib.da.local_observations`: through the taper
  weights :math:`\rho(r_{ik}/c)`, twice continuously differentiable in :math:`c`, and
  through *which* observations each grid point gathers (those with :math:`r_{ik} < 2c`),
  a piecewise constant, discontinuous choice without a useful derivative.

So the local sets are built once for a fixed maximal half-width :math:`c_{\max}`
(:func:`taper_support`), and the learnable half-width :math:`c \le c_{\max}` only
changes the weights (:func:`tapered`): an observation with :math:`2c \le r_{ik} <
2c_{\max}` stays in the set with weight :math:`\rho = 0`, which adds nothing to the local
ETKF (its column of :math:`\tilde Y \rho_i` is zero).  For every :math:`c \le c_{\max}`
the analysis therefore equals the LETKF with radius :math:`c`, while the loss is a smooth
function of :math:`c`; ``LETKF(N, radius=c, inflation=alpha)`` runs the learned pair in
the cycling driver.

With a deterministic filter (the LETKF, no model noise) and a fixed initial ensemble, the
loss of an unrolled window (:func:`letkf_window_loss`) is a deterministic function of
:math:`\theta`, so its JAX gradient can be checked against finite differences.
"""

from __future__ import annotations

from .._validate import check_positive
from ..backend import get_namespace, is_traced, namespace
from ..da import (
    LocalObservations,
    gaspari_cohn,
    inflate,
    letkf_analysis,
    local_observations,
)
from ..da.localization import periodic_distance
from .analysis_losses import truth_loss

__all__ = ["letkf_tuned_analysis", "letkf_window_loss", "taper_support", "tapered"]


def taper_support(d: int, locations, c_max: float, xp="numpy", device=None):
    r"""Local observation sets of the maximal half-width, and the distances of their entries.

    Parameters
    ----------
    d : int
        Grid size (a periodic 1-D grid, as Lorenz-96).
    locations : sequence of float
        Grid positions of the observations (:func:`~dalib.da.observation_locations`).
    c_max : float
        The largest half-width the learned radius may take.
    xp, device
        Backend and device.

    Returns
    -------
    local : LocalObservations
        The sets of :func:`~dalib.da.local_observations` with half-width ``c_max``.
    dist : array, shape (d, n)
        Distance from each grid point to each of its ``n`` local observations.
    """
    check_positive(c_max, "c_max")
    local = local_observations(d, locations, c_max, xp, device)
    xp = get_namespace(xp)
    locs = xp.asarray([float(v) for v in locations], dtype=xp.float64, device=device)
    n = local.index.shape[1]
    near = xp.reshape(xp.take(locs, xp.reshape(local.index, (-1,))), (d, n))
    grid = xp.arange(d, dtype=xp.float64, device=device)
    return local, periodic_distance(grid[:, None], near, float(d))


def tapered(local: LocalObservations, dist, c) -> LocalObservations:
    r"""The sets of ``local`` with the Gaspari-Cohn weights of half-width :math:`c`.

    ``c`` may be a traced JAX scalar; it must not exceed the half-width ``local`` was built
    with (checked when ``c`` is concrete).
    """
    if not is_traced(c):
        check_positive(c, "c")
        if float(c) > float(local.radius):
            raise ValueError(f"c ({float(c)}) must not exceed the half-width of the local "
                             f"sets ({local.radius}); build them with a larger c_max")
    return LocalObservations(local.index, gaspari_cohn(dist, c), c)


def letkf_tuned_analysis(theta, E, y, h, R, local: LocalObservations, dist):
    r"""LETKF analysis with half-width ``theta["radius"]``, then inflation ``theta["inflation"]``.

    Parameters
    ----------
    theta : dict
        ``{"inflation": alpha, "radius": c}``, scalars (JAX scalars to differentiate).
    E : array, shape (N, d)
        Forecast ensemble.
    y : array, shape (p,)
        Observation.
    h, R
        Observation operator and (diagonal) observation error covariance.
    local, dist
        From :func:`taper_support`.

    Returns
    -------
    array, shape (N, d)
        :math:`\bar x^a + \alpha (E^a - \bar x^a)` with :math:`E^a` the LETKF analysis.
    """
    Ea = letkf_analysis(E, y, h, R, tapered(local, dist, theta["radius"]))
    return inflate(Ea, theta["inflation"])


def letkf_window_loss(theta, E0, y, x_true, M, h, R, local: LocalObservations, dist, *,
                      burn_in: int = 0):
    r"""Loss (12) of the analysis means over a window of cycles of the tuned LETKF.

    .. math::
        J(\theta) = \frac{1}{L - b} \sum_{l=b+1}^{L} \|\bar x^a_l(\theta) - x^t_l\|^2,
        \qquad E_l = \mathrm{analysis}_\theta(\mathcal M(E_{l-1}), y_l),

    from the analysis ensemble ``E0`` at the start of the window (no model noise: the
    filter is deterministic).

    Parameters
    ----------
    theta : dict
        ``{"inflation": alpha, "radius": c}``.
    E0 : array, shape (N, d)
        Ensemble at the start of the window.
    y : array, shape (L, p)
        Observations of the window.
    x_true : array, shape (L, d)
        Truths of the window.
    M, h, R
        Model (acting on ensembles), observation operator, observation error covariance.
    local, dist
        From :func:`taper_support`.
    burn_in : int
        Number of first cycles left out of the loss.
    """
    xp = namespace(E0, y)
    E, means = E0, []
    for l in range(y.shape[0]):
        E = letkf_tuned_analysis(theta, M(E), y[l, :], h, R, local, dist)
        means.append(xp.mean(E, axis=0))
    return truth_loss(xp.stack(means[burn_in:]), x_true[burn_in:, :])
