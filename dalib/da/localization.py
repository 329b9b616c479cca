r"""Localisation: the Gaspari-Cohn taper, periodic distances and the LETKF (book section 7.6.3).

With a small ensemble, sample covariances between distant variables are mostly noise.
Localisation damps them with a taper :math:`\rho(r)` of the distance :math:`r`:

* **B-localisation** multiplies the sample covariances entrywise (Schur product),
  :math:`\rho \circ \hat C`; see the ``localization`` argument of
  :func:`~dalib.da.enkf.enkf_analysis` and :func:`localization_matrices`.
* **R-localisation** (the LETKF of Hunt, Kostelich and Szunyogh 2007) computes a separate
  ETKF analysis for every grid point :math:`i`, in which observation :math:`k` has its inverse
  error variance multiplied by :math:`\rho(r_{ik})`.  Distant observations get weight zero and
  drop out.

All grid points are analysed at once: the ``d`` local ``N``-by-``N`` matrices

.. math::
    G_i = \tilde Y\, \mathrm{diag}(\rho_i)\, \tilde Y^\top + (N-1) I_N,\qquad i = 1, \dots, d,

are stacked into one ``(d, N, N)`` array whose inverse square roots come from one batched
coupled Newton-Schulz iteration (matmuls only) or, as the reference, one batched ``eigh``.
Each grid point only gathers the ``n`` observations of its local region, found without
forming the ``d``-by-``p`` distance matrix, so the cost grows linearly in ``d``.

The taper is the compactly supported fifth-order function of Gaspari and Cohn (1999, eq. 4.10)
with half-width :math:`c`: it equals 1 at :math:`r = 0` and vanishes for :math:`r \ge 2c`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_positive
from ..backend import backend_name, device, eigh, get_namespace, is_traced, namespace
from ..observations import EveryKth, Identity, Subset
from ._kernels import (
    NEWTON_BACKENDS,
    as_R,
    check_ensemble,
    inv_sqrt_newton_schulz,
    random_rotation,
    whitened_obs,
)
from .ensemble import EnsembleMethod

__all__ = [
    "LETKF",
    "LocalObservations",
    "chunk_size",
    "default_max_bytes",
    "gaspari_cohn",
    "letkf_analysis",
    "local_observations",
    "localization_matrices",
    "observation_locations",
    "periodic_distance",
]


def gaspari_cohn(r, c):
    r"""The Gaspari-Cohn taper :math:`\rho(r)` with half-width ``c`` (support :math:`2c`).

    With :math:`z = |r|/c`,

    .. math::
        \rho = \begin{cases}
        -\tfrac14 z^5 + \tfrac12 z^4 + \tfrac58 z^3 - \tfrac53 z^2 + 1, & 0 \le z \le 1,\\
        \tfrac1{12} z^5 - \tfrac12 z^4 + \tfrac58 z^3 + \tfrac53 z^2 - 5z + 4 - \tfrac{2}{3z},
        & 1 < z < 2,\\
        0, & z \ge 2,
        \end{cases}

    a positive definite correlation function in up to three dimensions that looks like a
    Gaussian of standard deviation about :math:`c\sqrt{3/10}`.

    Parameters
    ----------
    r : array
        Distances.
    c : float or scalar array
        Half-width (``math.inf`` gives weight 1 everywhere).  A JAX scalar may be traced:
        :math:`\rho` is twice continuously differentiable in :math:`c`, so a half-width can
        be learned by gradient descent (:mod:`dalib.learning.ensemble_tuning`).
    """
    if not is_traced(c) and not c > 0:
        raise ValueError(f"c must be positive, got {c!r}")
    xp = namespace(r)
    z = xp.abs(r) / c
    one = xp.ones_like(z)
    inner = ((((-0.25 * z + 0.5) * z + 0.625) * z - 5.0 / 3.0) * z) * z + 1.0
    zs = xp.where(z > 0, z, one)
    outer = ((((z / 12.0 - 0.5) * z + 0.625) * z + 5.0 / 3.0) * z - 5.0) * z + 4.0
    outer = outer - 2.0 / (3.0 * zs)
    return xp.where(z <= 1, inner, xp.where(z < 2, outer, xp.zeros_like(z)))


def periodic_distance(a, b, L):
    r"""Distance between positions ``a`` and ``b`` on a circle of length ``L`` (broadcasts).

    :math:`\min(|a - b| \bmod L,\; L - |a - b| \bmod L)`, e.g. between Lorenz-96 grid points
    ``i`` and ``k`` with ``L = d``.
    """
    xp = namespace(a, b)
    delta = xp.remainder(xp.abs(a - b), L)
    return xp.minimum(delta, L - delta)


def observation_locations(h):
    """Grid positions of the observed components of a selection operator, as a tuple of ints.

    Supports :class:`~dalib.observations.Identity`, :class:`~dalib.observations.EveryKth`
    and :class:`~dalib.observations.Subset`; other operators need explicit locations.
    """
    if isinstance(h, Identity):
        return tuple(range(h.d))
    if isinstance(h, EveryKth):
        return tuple(range(h.offset, h.d, h.k))
    if isinstance(h, Subset):
        return h.indices
    base = getattr(h, "base", None)  # Elementwise(g, base): the locations of its base
    if base is not None:
        return observation_locations(base)
    raise TypeError(
        f"cannot infer observation locations from {type(h).__name__}; pass them explicitly"
    )


def check_radius(radius, name: str = "radius"):
    """Return a localisation half-width: ``None``, ``math.inf`` or a positive number.

    Raises an error naming ``radius`` for zero, negative, NaN or non-numbers, when the
    method is built rather than at its first analysis.
    """
    if radius is None:
        return None
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real):
        raise TypeError(f"{name} must be a positive number or None, got "
                        f"{type(radius).__name__}")
    if not radius > 0:  # also refuses NaN
        raise ValueError(f"{name} (the Gaspari-Cohn half-width) must be positive, or None "
                         f"for no localisation; got {radius!r}")
    return radius


def check_locations(locations, p: int, d: int, name: str = "locations"):
    """Return observation locations as a tuple of floats, one per observation in ``[0, d)``."""
    try:
        locs = tuple(float(v) for v in locations)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers (grid positions), got "
                        f"{type(locations).__name__}") from None
    if len(locs) != p:
        raise ValueError(f"{name} must give one grid position per observation: h observes "
                         f"p = {p} components, got {len(locs)} locations")
    if not all(math.isfinite(v) and 0 <= v < d for v in locs):
        raise ValueError(f"{name} must lie in [0, {d}) (grid positions), got {list(locs)}")
    return locs


def _distances(d, locations, xp, device=None):
    grid = xp.arange(d, dtype=xp.float64, device=device)
    locs = xp.asarray([float(v) for v in locations], dtype=xp.float64, device=device)
    return periodic_distance(grid[:, None], locs[None, :], float(d)), locs


def _taper(dist, radius):
    if radius is None or radius == math.inf:
        return namespace(dist).ones_like(dist)
    return gaspari_cohn(dist, float(radius))


@dataclass(frozen=True)
class LocalObservations:
    """The observations each grid point sees, for the LETKF.

    Attributes
    ----------
    index : int array, shape (d, n)
        Indices of the ``n`` nearest observations of every grid point (``n`` is the largest
        number of observations inside any local region).
    weight : array, shape (d, n)
        Their taper weights :math:`\\rho(r_{ik})` (zero for padding entries).
    radius : float or None
        Half-width of the taper (``None``: no localisation).
    """

    index: Any
    weight: Any
    radius: Any = None

    @property
    def d(self) -> int:
        return int(self.index.shape[0])


def local_observations(d: int, locations, radius, xp="numpy", device=None) -> LocalObservations:
    """Local observation sets of a periodic 1-D grid of ``d`` points (Lorenz-96).

    Parameters
    ----------
    d : int
        Number of grid points.
    locations : sequence of float
        Grid positions of the ``p`` observations (:func:`observation_locations`).
    radius : float or None
        Gaspari-Cohn half-width :math:`c`; observations at distance :math:`\\ge 2c` are left
        out.  ``None`` or ``math.inf`` keeps all observations with weight 1 (then the LETKF is
        the ETKF).  For comparison, DAPPER's ``loc_rad`` :math:`r` is :math:`c = 1.82\\,r`.
    xp : str or module
        Backend.
    device : optional
        Device of the result (default: the backend's default device).

    Notes
    -----
    With a finite radius and distinct locations, each grid point's candidates are the
    ``m`` nearest observations on either side along the circle (``m`` bounds the number
    inside any region), so the work and memory are :math:`O(d\\,m)` rather than the
    :math:`O(dp)` of all distances.  The result is the same: the ``n`` nearest of all
    observations, ties broken by index.
    """
    xp = get_namespace(xp)
    locations = [float(v) for v in locations]
    banded = _banded_distances(d, locations, radius, xp, device)
    if banded is None:  # all pairs: no radius, repeated locations, or a wide region
        dist, _ = _distances(d, locations, xp, device)
        candidates = None
    else:
        candidates, dist = banded
    w = _taper(dist, radius)
    n = int(xp.max(xp.sum(xp.astype(w > 0, xp.int64), axis=1)))
    if n == 0:
        raise ValueError(f"radius {radius} leaves every grid point without observations")
    order = xp.argsort(dist, axis=1, stable=True)[:, :n]
    index = order if candidates is None else xp.take_along_axis(candidates, order, axis=1)
    return LocalObservations(index, xp.take_along_axis(w, order, axis=1), radius)


def _banded_distances(d, locations, radius, xp, device):
    """Candidate observations of every grid point and their distances, or ``None``.

    Returns ``(candidates, dist)``, both of shape ``(d, 2m)``: for grid point ``i`` the
    ``m`` observations before it and the ``m`` from it onwards along the circle, sorted by
    index, where ``m`` bounds the number of observations within ``2c + 1`` of any point.
    Any observation among the ``m`` nearest of point ``i`` is among these (with distinct
    locations), so ranking the candidates gives the same local sets as ranking all.
    ``None`` when that shortcut does not apply.
    """
    p = len(locations)
    if radius is None or radius == math.inf or len({v % d for v in locations}) < p:
        return None
    reach = 2.0 * float(radius) + 1.0  # beyond the taper's support 2c, with a margin
    if 2.0 * reach >= d:
        return None
    on_circle = xp.asarray([v % d for v in locations], dtype=xp.float64, device=device)
    order = xp.argsort(on_circle, stable=True)
    ring = xp.take(on_circle, order)
    # Three turns of the circle, so that windows near 0 and d need no wrapping.
    unrolled = xp.concat([ring - d, ring, ring + d])
    grid = xp.arange(d, dtype=xp.float64, device=device)
    count = (xp.searchsorted(unrolled, grid + reach, side="right")
             - xp.searchsorted(unrolled, grid - reach, side="left"))
    m = int(xp.max(count))
    if 2 * m > p:
        return None
    start = xp.searchsorted(unrolled, grid, side="left")  # first observation at or after i
    offsets = xp.arange(-m, m, dtype=start.dtype, device=device)
    slots = xp.remainder(start[:, None] + offsets[None, :], p)
    candidates = xp.reshape(xp.take(order, xp.reshape(slots, (-1,))), (d, 2 * m))
    candidates = xp.sort(candidates, axis=1)  # by index, so that ties rank as for all pairs
    locs = xp.asarray(locations, dtype=xp.float64, device=device)
    cand_locs = xp.reshape(xp.take(locs, xp.reshape(candidates, (-1,))), (d, 2 * m))
    return candidates, periodic_distance(grid[:, None], cand_locs, float(d))


def localization_matrices(d: int, locations, radius, xp="numpy", device=None):
    """Gaspari-Cohn tapers for B-localisation on a periodic 1-D grid.

    They are dense (``d`` by ``p`` and ``p`` by ``p``), created on ``device``.

    Returns
    -------
    rho_xy : array, shape (d, p)
        Taper between grid points and observations.
    rho_yy : array, shape (p, p)
        Taper between observations.
    """
    xp = get_namespace(xp)
    dist_xy, locs = _distances(d, locations, xp, device)
    dist_yy = periodic_distance(locs[:, None], locs[None, :], float(d))
    return _taper(dist_xy, radius), _taper(dist_yy, radius)


# The LETKF's default transform, "auto": with NumPy and JAX the matmul-only Newton-Schulz
# inverse square root (:func:`~dalib.da._kernels.inv_sqrt_newton_schulz`); at d = 1000,
# N = 20 on a CPU a cycle takes 13 ms against 30 ms with the batched eigh (NumPy) and 8 ms
# against 28 ms (JAX's compiled driver).  With CuPy the eigendecomposition: on a GPU the
# step count needs the batch's condition number on the host, a read that would stall the
# loop once per cycle (see NEWTON_BACKENDS of ``dalib.da._kernels``).  "eigh" is the
# reference.
TRANSFORM = "auto"
TRANSFORMS = ("auto", "newton", "eigh")


def _check_transform(transform):
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    return transform


# Default bound on the LETKF's per-chunk buffers (the stacked local anomalies and the
# (c, N, N) matrices of a chunk of c grid points), in bytes, per backend.  With NumPy a
# chunk whose (c, N, N) arrays fit in a core's cache is faster: at d = 1000, N = 20 a
# cycle takes 13 ms with 1 MiB chunks against 30 ms with one 64 MiB chunk, whose
# multi-megabyte temporaries the allocator maps afresh (page faults) every cycle.
# Elsewhere (JAX's compiler, a GPU) one large chunk keeps the kernels few and wide.
CHUNK_BYTES = 64 * 2**20
CHUNK_BYTES_NUMPY = 2**20


def default_max_bytes(xp) -> int:
    """The default chunk bound of the backend ``xp``: 1 MiB with NumPy, else 64 MiB."""
    return CHUNK_BYTES_NUMPY if backend_name(xp) == "numpy" else CHUNK_BYTES


def chunk_size(N: int, n: int, max_bytes: int = CHUNK_BYTES, itemsize: int = 8) -> int:
    """Grid points per LETKF chunk so that its buffers stay below ``max_bytes``.

    A grid point needs about ``4 N^2 + 3 N n`` numbers at once (its ``N``-by-``N`` matrix,
    eigenvectors and their products, and its ``n`` local observation anomalies).
    """
    per_point = (4 * N * N + 3 * N * n + 4 * N) * itemsize
    return max(1, int(max_bytes) // per_point)


def _grid_points_per_chunk(E, n: int, max_bytes, xp) -> int:
    """:func:`chunk_size` for ensemble ``E`` with ``n`` local observations; ``max_bytes``
    ``None`` takes :func:`default_max_bytes` of the backend."""
    max_bytes = default_max_bytes(xp) if max_bytes is None else max_bytes
    check_positive(max_bytes, "max_bytes")
    return chunk_size(E.shape[0], n, max_bytes, xp.finfo(E.dtype).bits // 8)


def _letkf_chunk(X, YwT, dw, index, weight, xp, transform=TRANSFORM):
    """Analysis increments of the grid points of one chunk: (N, c) columns."""
    c, n = index.shape
    N = X.shape[0]
    flat = xp.reshape(index, (-1,))
    Yl = xp.reshape(xp.take(YwT, flat, axis=0), (c, n, N))  # local Y~^T, (c, n, N)
    dl = xp.reshape(xp.take(dw, flat, axis=0), (c, n, 1))  # local d~
    YrT = xp.matrix_transpose(Yl * weight[:, :, None])  # Y~ diag(rho_i), (c, N, n)
    if transform == "auto":
        transform = "newton" if backend_name(xp) in NEWTON_BACKENDS else "eigh"
    if transform == "newton":
        eye = xp.eye(N, dtype=X.dtype, device=device(X))
        P = inv_sqrt_newton_schulz(YrT @ Yl + (N - 1) * eye, N - 1, xp, eye=eye)  # G_i^-1/2
        if P is not None:
            x = X.T[:, :, None]  # x_i, (c, N, 1)
            w = P @ (P @ (YrT @ dl))  # w_i = G_i^{-1} Y~ rho_i d~
            mean_increment = xp.sum(w * x, axis=(1, 2))
            Tx = math.sqrt(N - 1) * (P @ x)[:, :, 0]
            return mean_increment, Tx.T
    s, V = eigh(YrT @ Yl)  # G_i = V_i diag(s_i + N - 1) V_i^T, batched over i
    lam = s + (N - 1)
    Vt = xp.matrix_transpose(V)
    # Column i of the analysis needs only T_i and w_i applied to x_i = X[:, i], so work in
    # the eigenvector coordinates of G_i and never form the (c, N, N) transforms.
    coef = (Vt @ (YrT @ dl))[:, :, 0] / lam  # w_i = V_i coef_i
    u = (Vt @ X.T[:, :, None])[:, :, 0]  # V_i^T x_i, (c, N)
    mean_increment = xp.sum(coef * u, axis=1)  # w_i^T x_i
    Tx = (V @ (xp.sqrt((N - 1) / lam) * u)[:, :, None])[:, :, 0]  # T_i x_i, (c, N)
    return mean_increment, Tx.T


def _letkf(E, y, h, R, index, weight, xp, inflation=1.0, rotation=None, chunk=None,
           transform=TRANSFORM):
    _N, d = E.shape
    xbar, X, Yw, dw = whitened_obs(E, y, h, R, xp)
    # Y~^T with contiguous rows, so that every chunk gathers whole rows: NumPy's gather
    # from a strided view copies the whole array first, once per chunk.  Flattening
    # copies only when the layout needs it (the LETKF's own analysis ensembles come out
    # column-major, a fresh ensemble row-major).
    YwT = xp.reshape(xp.reshape(Yw.T, (-1,)), (Yw.shape[1], Yw.shape[0]))
    del Yw
    chunk = d if chunk is None else chunk
    columns = []  # the analysis of each chunk, finished there to keep one ensemble alive
    for start in range(0, d, chunk):
        stop = min(start + chunk, d)
        mean_increment, Xa = _letkf_chunk(X[:, start:stop], YwT, dw, index[start:stop, :],
                                          weight[start:stop, :], xp, transform)
        if rotation is not None:
            Xa = rotation @ Xa  # one mean-preserving rotation for the whole grid
        if inflation != 1.0:
            Xa = inflation * Xa
        columns.append((xbar[start:stop] + mean_increment) + Xa)
    return columns[0] if len(columns) == 1 else xp.concat(columns, axis=1)


def letkf_analysis(E, y, h, R, local: LocalObservations, *, inflation: float = 1.0,
                   max_bytes: int | None = None, transform: str = TRANSFORM):
    r"""Local ensemble transform Kalman filter analysis (Hunt et al. 2007), all grid points at once.

    For every grid point :math:`i` this is the ETKF of :func:`~dalib.da.enkf.etkf_analysis`
    with the inverse observation error variances multiplied by the taper weights
    :math:`\rho_{ik}`:

    .. math::
        G_i = \tilde Y \rho_i \tilde Y^\top + (N-1) I,\quad
        \bar w_i = G_i^{-1} \tilde Y \rho_i \tilde d,\quad
        T_i = \sqrt{N-1}\,G_i^{-1/2},

        E^a_{:, i} = \bar x_i + (\mathbf 1 \bar w_i^\top + \alpha T_i)\, X_{:, i}.

    Only the observations inside each local region are gathered (``local.index``), so the
    cost is :math:`O(d N^2 n + d N^3)` for ``n`` local observations; the dominant part is a
    batched ``eigh`` of ``(c, N, N)`` stacks, for chunks of ``c`` grid points sized so that
    their buffers stay below ``max_bytes`` (:func:`chunk_size`).  Chunking changes the
    memory, not the result.

    Parameters
    ----------
    E : array, shape (N, d)
        Forecast ensemble.
    y : array, shape (p,)
        Observation.
    h : callable
        Observation operator.
    R : covariance-like
        Observation error covariance; must be diagonal (scalar or a vector of variances).
    local : LocalObservations
        From :func:`local_observations`.
    inflation : float
        Multiplicative inflation of the analysis anomalies (:math:`T_i \to \alpha T_i`).
    max_bytes : int, optional
        Bound on the buffers of one chunk of grid points (default
        :func:`default_max_bytes`: 1 MiB with NumPy, 64 MiB with other backends).
    transform : {"auto", "newton", "eigh"}
        How the :math:`G_i^{-1/2}` are computed: the batched coupled Newton-Schulz
        iteration (matmuls only; falls back to ``eigh`` when the condition-number bound
        exceeds ``KAPPA_MAX`` of ``dalib.da._kernels``) or the batched eigendecomposition,
        as written above; both agree to round-off.  ``"auto"`` (the default) takes
        Newton-Schulz with NumPy and JAX (faster on a CPU) and the eigendecomposition with
        CuPy (on a GPU reading the condition number would stall the loop every cycle).

    Returns
    -------
    array, shape (N, d)
        Analysis ensemble.
    """
    check_ensemble(E)
    check_array(y, "y", ndim=1)
    R = as_R(R, y.shape[0])
    if not R.is_diagonal:
        raise ValueError("R must be diagonal for the LETKF (a number or a vector of variances)")
    if local.d != E.shape[1]:
        raise ValueError(f"local was built for d={local.d}, but E has d={E.shape[1]}")
    top = namespace(local.index).max(local.index)  # traced inside jax.jit: not checked
    if not is_traced(top) and int(top) >= y.shape[0]:
        raise ValueError(f"local refers to observation {int(top)}, but y has only {y.shape[0]}: "
                         "build it with one location per component of y")
    check_positive(inflation, "inflation")
    xp = namespace(E, y)
    chunk = _grid_points_per_chunk(E, local.index.shape[1], max_bytes, xp)
    return _letkf(E, y, h, R, local.index, local.weight, xp, inflation, chunk=chunk,
                  transform=_check_transform(transform))


class LETKF(EnsembleMethod):
    """Local ETKF for a periodic 1-D grid (:func:`~dalib.da.localization.letkf_analysis`).

    Parameters
    ----------
    N, inflation, additive
        As :class:`EnsembleMethod`.
    radius : float or None
        Gaspari-Cohn half-width of R-localisation (``None``: global, equal to the ETKF).
    locations : sequence of float, optional
        Grid positions of the observations; inferred from selection operators by default.
    rotate : bool
        Apply one random mean-preserving rotation
        (:func:`~dalib.da.enkf.random_rotation`) to the analysis anomalies of the whole
        grid every cycle, as the ETKF's ``rotate``.
    max_bytes : int, optional
        Bound on the buffers of one chunk of grid points (:func:`letkf_analysis`; default
        :func:`default_max_bytes` of the backend).
    transform : {"auto", "newton", "eigh"}
        How the local transforms are computed (:func:`letkf_analysis`).
    """

    def __init__(self, N: int, radius=None, inflation: float = 1.0, additive=None,
                 locations=None, rotate: bool = False, max_bytes: int | None = None,
                 transform: str = TRANSFORM):
        super().__init__(N, inflation, additive)
        self.transform = _check_transform(transform)
        self.radius = check_radius(radius)
        self.locations = locations
        self.rotate = bool(rotate)
        self.max_bytes = (None if max_bytes is None
                          else int(check_positive(max_bytes, "max_bytes")))

    def _params(self):
        out = {"N": self.N, "radius": self.radius, **{k: v for k, v in super()._params().items()
                                                      if k != "N"}}
        if self.rotate:
            out["rotate"] = True
        if self.max_bytes is not None:
            out["max_bytes"] = self.max_bytes
        if self.transform != TRANSFORM:
            out["transform"] = self.transform
        return out

    def check(self, ssm):
        if not ssm.R.is_diagonal:
            raise ValueError("LETKF needs a diagonal R (a number or a vector of variances)")
        if self.locations is not None:
            check_locations(self.locations, ssm.p, ssm.d)

    def prepare(self, ssm):
        locs = self.locations if self.locations is not None else observation_locations(ssm.h)
        locs = check_locations(locs, ssm.p, ssm.d)
        return local_observations(ssm.d, locs, self.radius, namespace(ssm.m0),
                                  device(ssm.m0))

    def analysis(self, E, y, ssm, rng):
        loc = self.constants(ssm)
        xp = namespace(E)
        rotation = random_rotation(self.N, rng, xp, device(E)) if self.rotate else None
        chunk = _grid_points_per_chunk(E, loc.index.shape[1], self.max_bytes, xp)
        return _letkf(E, y, ssm.h, ssm.R, loc.index, loc.weight, xp, self.inflation,
                      rotation, chunk, self.transform)
