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

Training (:func:`learn_inflation_radius`) unrolls windows of ``window`` cycles from the
analysis ensembles of a reference LETKF run (:func:`unroll_letkf`, one ``lax.scan``
vectorised over windows) and minimises their loss (12) with Adam in the unconstrained
coordinates :math:`a = \log\alpha` and :math:`b = \operatorname{logit}(c / c_{\max})`.
:func:`letkf_grid` runs the cycling driver on a grid of pairs for comparison.
"""

from __future__ import annotations

from .._validate import check_int, check_positive
from ..backend import get_namespace, is_traced, namespace, to_numpy
from ..da import (
    LETKF,
    LocalObservations,
    assimilate,
    gaspari_cohn,
    inflate,
    letkf_analysis,
    local_observations,
)
from ..da.localization import periodic_distance
from .analysis_losses import truth_loss

__all__ = [
    "learn_inflation_radius",
    "letkf_grid",
    "letkf_tuned_analysis",
    "letkf_window_loss",
    "taper_support",
    "tapered",
    "unroll_letkf",
]


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


def letkf_tuned_analysis(theta, E, y, h, R, local: LocalObservations, dist, *,
                         transform: str = "auto"):
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
    Ea = letkf_analysis(E, y, h, R, tapered(local, dist, theta["radius"]),
                        transform=transform)
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


def unroll_letkf(theta, E0, y, M, h, R, local: LocalObservations, dist, *,
                 transform: str = "eigh"):
    r"""Cycle the tuned LETKF over ``L`` times for a batch of windows (JAX, ``lax.scan``).

    Parameters
    ----------
    theta : dict
        ``{"inflation": alpha, "radius": c}``.
    E0 : JAX array, shape (B, N, d)
        Analysis ensembles at the start of ``B`` windows.
    y : JAX array, shape (L, B, p)
        Observations, time first.
    M, h, R, local, dist
        As :func:`letkf_window_loss`.
    transform : {"eigh", "newton", "auto"}
        The local transforms (:func:`~dalib.da.letkf_analysis`).  The eigendecomposition
        is about eight times faster to differentiate here than the Newton-Schulz
        iteration, but its derivative needs distinct eigenvalues of
        :math:`G_i`: keep at least :math:`N - 1` observations with a positive weight in
        every local set (a radius that is not too small), or use ``"newton"``.

    Returns
    -------
    JAX array, shape (L, B, d)
        The analysis means.
    """
    import jax

    def one(E, yl):
        return letkf_tuned_analysis(theta, M(E), yl, h, R, local, dist,
                                    transform=transform)

    def cycle(E, yl):
        E = jax.vmap(one)(E, yl)
        return E, get_namespace("jax").mean(E, axis=-2)

    return jax.lax.scan(cycle, E0, y)[1]


def letkf_grid(twin, N: int, inflations, radii, *, rng, burn_in: int | None = None):
    r"""Time-mean analysis RMSE of ``LETKF(N, radius=c, inflation=alpha)`` on a grid.

    Parameters
    ----------
    twin : TwinExperiment
    N : int
        Ensemble size.
    inflations, radii : sequence of float
        The grid.
    rng : int
        Seed of every run (the same initial ensemble for each pair).
    burn_in : int, optional
        Cycles left out of the time mean (the driver's default ``J // 10``).

    Returns
    -------
    numpy array, shape (len(inflations), len(radii))
        RMSE; ``inf`` where the filter diverged (NaNs).
    """
    import warnings

    import numpy as np

    out = np.full((len(inflations), len(radii)), np.inf)
    for i, alpha in enumerate(inflations):
        for k, c in enumerate(radii):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = assimilate(LETKF(N, radius=float(c), inflation=float(alpha)), twin,
                                 rng=rng, burn_in=burn_in, progress=False)
            r = float(run.rmse())
            out[i, k] = r if np.isfinite(r) else np.inf
    return out


def learn_inflation_radius(ssm, twin, N: int, inflation0: float, radius0: float, *,
                           c_max: float, window: int = 10, burn_in: int = 4,
                           n_iter: int = 200, batch_size: int = 8,
                           learning_rate: float = 0.05, transform: str = "eigh",
                           rng=None):
    r"""Learn the LETKF's inflation and radius by gradient descent on loss (12).

    A reference run ``LETKF(N, radius0, inflation0)`` (NumPy) stores its analysis
    ensembles; windows of ``window`` cycles start from them and are unrolled with the
    tuned analysis (:func:`unroll_letkf`); the loss (12) of the analysis means after the
    first ``burn_in`` cycles of each window is minimised with Adam (cosine-decayed step
    size) in the coordinates :math:`a = \log\alpha`, :math:`b = \operatorname{logit}
    (c/c_{\max})`.

    Parameters
    ----------
    ssm : StateSpaceModel
        The model on the JAX backend (a deterministic model, ``Q = None``).
    twin : TwinExperiment
        Training truth and observations.
    N : int
        Ensemble size.
    inflation0, radius0 : float
        Starting pair (also runs the reference filter).
    c_max : float
        Largest radius (the support of the local sets, :func:`taper_support`).
    window, burn_in, n_iter, batch_size, learning_rate
        Unrolled cycles per window and those left out, Adam steps, windows per step and
        initial step size.
    transform : str
        Local transforms of the unrolled filter (:func:`unroll_letkf`).
    rng : int or dalib.random.Generator
        Randomness of the reference run and the batches.

    Returns
    -------
    theta : dict
        ``{"inflation": alpha, "radius": c}`` as floats.
    history : numpy array, shape (n_iter,)
        The minibatch loss before each step.
    """
    import jax
    import numpy as np
    import optax

    from ..da import observation_locations
    from ..random import default_rng
    from .analysis_steps import analysis_windows
    from .networks import fit

    check_positive(c_max, "c_max")
    check_positive(inflation0, "inflation0")
    check_positive(radius0, "radius0")
    if not radius0 < c_max:
        raise ValueError(f"radius0 ({radius0}) must be smaller than c_max ({c_max})")
    window = check_int(window, "window")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if burn_in >= window:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than window ({window})")
    if rng is None:
        raise ValueError("rng must be given (a seed or a dalib.random.Generator)")
    rng = default_rng(rng)
    jnp = get_namespace("jax")
    ref = assimilate(LETKF(N, radius=float(radius0), inflation=float(inflation0)), twin,
                     rng=rng, store_ensembles=True, progress=False)
    Ea = to_numpy(ref.ensembles_a)
    J1, _, d = Ea.shape
    _, y, xt = analysis_windows(np.zeros((J1, d)), twin, window)
    stride = max(window // 2, 1)
    E0 = Ea[list(range(0, J1 - 1 - window + 1, stride))]
    local, dist = taper_support(d, observation_locations(ssm.h), c_max, xp="jax")
    M, h, R = ssm.M, ssm.h, ssm.R

    def unpack(u):
        return {"inflation": jnp.exp(u["a"]), "radius": c_max * jax.nn.sigmoid(u["b"])}

    def loss(u, batch):
        E, yb, xb = batch
        means = unroll_letkf(unpack(u), E, jnp.moveaxis(yb, 1, 0), M, h, R, local, dist,
                             transform=transform)
        return truth_loss(means[burn_in:], jnp.moveaxis(xb, 1, 0)[burn_in:])

    q = radius0 / c_max
    u0 = {"a": jnp.asarray(float(np.log(inflation0))),
          "b": jnp.asarray(float(np.log(q / (1 - q))))}
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, n_iter))
    u, history = fit(loss, u0, (E0, y, xt), optimizer=optimizer, n_iter=n_iter,
                     batch_size=batch_size, rng=rng)
    return {k: float(v) for k, v in unpack(u).items()}, history
