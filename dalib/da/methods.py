r"""Filter objects: the configuration of a sequential method plus its forecast and analysis.

Each object is a small adapter between the pure functions of :mod:`dalib.da` and the cycling
driver :func:`~dalib.da.cycling.assimilate`.  The protocol is

=====================================  =================================================
``init(ssm, rng)``                     the initial state (an ensemble, a Gaussian...)
``forecast(state, ssm, rng)``          the forecast state
``analysis(state, y, ssm, rng)``       the analysis state given one observation ``y``
``moments(state)``                     ``(mean, spread)``; ``spread`` is ``None`` if unknown
``members(state)``                     the ensemble ``(N, d)`` or ``None``
``log_weights(state)``                 particle log-weights ``(N,)`` or ``None``
=====================================  =================================================

``check(ssm)`` validates once, before cycling, that the method suits the model, so the cycle
itself calls the unvalidated internal functions.  ``init`` also precomputes what stays fixed
over a run (a 3DVar gain, LETKF local observation sets, optimal-proposal matrices).

Multiplicative inflation follows the common convention of DAPPER: the analysis anomalies
are multiplied by ``inflation`` (so the covariance by ``inflation**2``) after each analysis.

Every array a method makes lives on the device of ``ssm.m0`` and of the ensemble, and the
cycle itself never asks the device for a value, so on a GPU the whole loop stays there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._validate import check_int, check_positive
from ..backend import backend_name, device, namespace
from ..covariance import DenseCovariance, as_covariance
from ._common import dense, gaussian_update, observation_matrix, symmetrize
from .ekf import model_jacobian
from .enkf import _enkf, _enkf_schur, _etkf, random_rotation
from .localization import _letkf, local_observations, localization_matrices, observation_locations
from .particle import OptimalProposal, _bootstrap, _logsumexp, _optimal, _systematic
from .var3d import var3d_gain

__all__ = [
    "Method",
    "EnsembleMethod",
    "EnsembleFilter",
    "ETKF",
    "EnKF",
    "LETKF",
    "KalmanFilter",
    "ExtendedKF",
    "ThreeDVar",
    "BootstrapPF",
    "OptimalPF",
    "GaussianState",
    "ParticleState",
]


class Method:
    """Base class of the sequential methods run by :func:`~dalib.da.cycling.assimilate`."""

    def check(self, ssm) -> None:
        """Raise a clear error if the method cannot run on ``ssm``."""

    def init(self, ssm, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def forecast(self, state, ssm, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def analysis(self, state, y, ssm, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def moments(self, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def members(self, state):
        return None

    def log_weights(self, state):
        return None

    def extras(self, state) -> dict:
        """Run-level outputs kept in the result (e.g. the Kalman log-likelihood)."""
        return {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({fields})"

    def _params(self) -> dict:
        return {}


# ----------------------------------------------------------------------------------------
# Ensemble Kalman filters
# ----------------------------------------------------------------------------------------


class EnsembleMethod(Method):
    r"""Shared parts of the ensemble Kalman filters: the ensemble forecast and inflation.

    Parameters
    ----------
    N : int
        Ensemble size.
    inflation : float
        Multiplicative inflation factor of the analysis anomalies (1: none).
    additive : covariance-like, optional
        Covariance of additive inflation noise added to every forecast member.
    """

    def __init__(self, N: int, inflation: float = 1.0, additive=None):
        self.N = check_int(N, "N", minimum=2)
        self.inflation = float(check_positive(inflation, "inflation"))
        self.additive = additive
        self._add = None

    def _params(self):
        out = {"N": self.N, "inflation": self.inflation}
        if self.additive is not None:
            out["additive"] = self.additive
        return out

    def init(self, ssm, rng):
        self._add = None if self.additive is None else as_covariance(
            self.additive, "additive", d=ssm.d
        )
        self.prepare(ssm)
        return ssm.m0 + ssm.C0.sample(rng, (self.N,))

    def prepare(self, ssm) -> None:
        """Precompute run constants (nothing by default)."""

    def forecast(self, E, ssm, rng):
        E = ssm.M(E)
        if ssm.Q is not None:
            E = E + ssm.Q.sample(rng, (self.N,))
        if self._add is not None:
            E = E + self._add.sample(rng, (self.N,))
        return E

    def _inflate(self, E, xp):
        if self.inflation == 1.0:
            return E
        m = xp.mean(E, axis=0)
        return m + self.inflation * (E - m)

    def moments(self, E):
        xp = namespace(E)
        N, d = E.shape
        m = xp.sum(E, axis=0) / N  # xp.mean costs twice as much for small ensembles
        X = E - m
        return m, xp.sqrt(xp.sum(X * X) / ((N - 1) * d))

    def members(self, E):
        return E


class ETKF(EnsembleMethod):
    """Ensemble transform Kalman filter (:func:`~dalib.da.enkf.etkf_analysis`).

    Parameters
    ----------
    N, inflation, additive
        As :class:`EnsembleMethod`.
    rotate : bool
        Apply a random mean-preserving rotation (:func:`~dalib.da.enkf.random_rotation`)
        to the analysis anomalies every cycle.

    Examples
    --------
    >>> method = ETKF(N=20, inflation=1.02)
    """

    def __init__(self, N: int, inflation: float = 1.0, additive=None, rotate: bool = False):
        super().__init__(N, inflation, additive)
        self.rotate = bool(rotate)

    def _params(self):
        out = super()._params()
        if self.rotate:
            out["rotate"] = True
        return out

    def analysis(self, E, y, ssm, rng):
        xp = namespace(E)
        rotation = random_rotation(self.N, rng, xp, device(E)) if self.rotate else None
        return _etkf(E, y, ssm.h, ssm.R, xp, self.inflation, rotation)


class EnsembleFilter(EnsembleMethod):
    """An ensemble filter with your own analysis step, e.g. a learned one.

    Parameters
    ----------
    N : int
        Ensemble size.
    update : callable
        ``update(E, y, ssm, rng)`` returns the analysis ensemble ``(N, d)`` from the forecast
        ensemble ``E`` and the observation ``y``.
    inflation, additive
        As :class:`EnsembleMethod` (inflation is applied after ``update``).

    Examples
    --------
    >>> from dalib.da import etkf_analysis
    >>> method = EnsembleFilter(20, lambda E, y, ssm, rng: etkf_analysis(E, y, ssm.h, ssm.R))
    """

    def __init__(self, N: int, update, inflation: float = 1.0, additive=None):
        if not callable(update):
            raise TypeError(f"update must be callable as update(E, y, ssm, rng), got {update!r}")
        super().__init__(N, inflation, additive)
        self.update = update

    def _params(self):
        return {"update": getattr(self.update, "__name__", "..."), **super()._params()}

    def analysis(self, E, y, ssm, rng):
        return self._inflate(self.update(E, y, ssm, rng), namespace(E))


class EnKF(EnsembleMethod):
    """Perturbed-observation EnKF (:func:`~dalib.da.enkf.enkf_analysis`).

    Parameters
    ----------
    N, inflation, additive
        As :class:`EnsembleMethod`.
    radius : float, optional
        Gaspari-Cohn half-width of Schur-product (B-) localisation on a periodic 1-D grid;
        ``None`` for none.
    center : bool
        Centre the observation perturbations.
    """

    def __init__(self, N: int, inflation: float = 1.0, additive=None, radius=None,
                 center: bool = True):
        super().__init__(N, inflation, additive)
        self.radius = radius
        self.center = bool(center)
        self._rho = None

    def _params(self):
        out = super()._params()
        if self.radius is not None:
            out["radius"] = self.radius
        return out

    def prepare(self, ssm):
        self._rho = None
        if self.radius is not None:
            self._rho = localization_matrices(
                ssm.d, observation_locations(ssm.h), self.radius, namespace(ssm.m0),
                device(ssm.m0),
            )

    def analysis(self, E, y, ssm, rng):
        xp = namespace(E)
        if self._rho is None:
            E = _enkf(E, y, ssm.h, ssm.R, rng, xp, self.center)
        else:
            E = _enkf_schur(E, y, ssm.h, ssm.R, rng, *self._rho, xp, self.center)
        return self._inflate(E, xp)


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
    """

    def __init__(self, N: int, radius=None, inflation: float = 1.0, additive=None,
                 locations=None):
        super().__init__(N, inflation, additive)
        if radius is not None:
            check_positive(radius, "radius")
        self.radius = radius
        self.locations = locations
        self._local = None

    def _params(self):
        return {"N": self.N, "radius": self.radius, **{k: v for k, v in super()._params().items()
                                                       if k != "N"}}

    def check(self, ssm):
        if isinstance(ssm.R, DenseCovariance):
            raise ValueError("LETKF needs a diagonal R (a number or a vector of variances)")

    def prepare(self, ssm):
        locs = self.locations if self.locations is not None else observation_locations(ssm.h)
        self._local = local_observations(ssm.d, locs, self.radius, namespace(ssm.m0),
                                         device(ssm.m0))

    def analysis(self, E, y, ssm, rng):
        loc = self._local
        return _letkf(E, y, ssm.h, ssm.R, loc.index, loc.weight, namespace(E), self.inflation)


# ----------------------------------------------------------------------------------------
# Gaussian filters: Kalman, extended Kalman, 3DVar
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianState:
    """Mean ``m`` (d,), covariance ``C`` (d, d) or ``None``, and the running log-likelihood."""

    m: Any
    C: Any = None
    loglik: Any = 0.0


def _cov_spread(C, xp):
    return xp.sqrt(xp.mean(xp.linalg.diagonal(C)))


class KalmanFilter(Method):
    """The Kalman filter (:mod:`dalib.da.kalman`) for a linear model and linear ``h``."""

    def check(self, ssm):
        if getattr(ssm.M, "A", None) is None:
            raise TypeError(
                f"KalmanFilter needs a LinearModel; got {type(ssm.M).__name__} "
                "(use ExtendedKF or an ensemble method)"
            )
        observation_matrix(ssm.h, ssm.xp, ssm.d, name="h", device=device(ssm.m0))

    def init(self, ssm, rng):
        xp, dev = namespace(ssm.m0), device(ssm.m0)
        self._H = observation_matrix(ssm.h, xp, ssm.d, name="h", device=dev)
        self._Q = dense(ssm.Q, xp, ssm.d, "Q", dev)
        self._R = ssm.R.to_dense(xp, device=dev)
        return GaussianState(ssm.m0, ssm.C0.to_dense(xp, device=dev), 0.0)

    def forecast(self, s, ssm, rng):
        A = ssm.M.A
        return GaussianState(A @ s.m, symmetrize(A @ s.C @ A.T + self._Q), s.loglik)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.m)
        m, C, inc = gaussian_update(s.m, s.C, y - self._H @ s.m, self._H, self._R, xp)
        return GaussianState(m, C, s.loglik + inc)

    def moments(self, s):
        return s.m, _cov_spread(s.C, namespace(s.C))

    def extras(self, s):
        return {"loglik": s.loglik}


class ExtendedKF(Method):
    """Extended Kalman filter (:mod:`dalib.da.ekf`).

    Parameters
    ----------
    inflation : float
        Multiplicative inflation: the forecast covariance is multiplied by ``inflation**2``.
    additive : covariance-like, optional
        Added to the forecast covariance (on top of ``Q``).
    """

    def __init__(self, inflation: float = 1.0, additive=None):
        self.inflation = float(check_positive(inflation, "inflation"))
        self.additive = additive

    def _params(self):
        return {"inflation": self.inflation}

    def check(self, ssm):
        if not hasattr(ssm.M, "jvp"):
            raise TypeError(f"ExtendedKF needs M.jvp (tangent-linear model); "
                            f"{type(ssm.M).__name__} has none")
        if not hasattr(ssm.h, "jacobian"):
            raise TypeError("ExtendedKF needs h.jacobian")

    def init(self, ssm, rng):
        xp, dev = namespace(ssm.m0), device(ssm.m0)
        self._Q = dense(ssm.Q, xp, ssm.d, "Q", dev)
        if self.additive is not None:
            self._Q = self._Q + dense(self.additive, xp, ssm.d, "additive", dev)
        self._R = ssm.R.to_dense(xp, device=dev)
        return GaussianState(ssm.m0, ssm.C0.to_dense(xp, device=dev), 0.0)

    def forecast(self, s, ssm, rng):
        m, DM = model_jacobian(ssm.M, s.m)
        C = (self.inflation ** 2) * (DM @ s.C @ DM.T) + self._Q
        return GaussianState(m, symmetrize(C), s.loglik)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.m)
        H = ssm.h.jacobian(s.m)
        m, C, inc = gaussian_update(s.m, s.C, y - ssm.h(s.m), H, self._R, xp)
        return GaussianState(m, C, s.loglik + inc)

    def moments(self, s):
        return s.m, _cov_spread(s.C, namespace(s.C))

    def extras(self, s):
        return {"loglik": s.loglik}


class ThreeDVar(Method):
    r"""3DVar with a fixed background covariance ``B`` or a fixed gain ``K``.

    See :mod:`dalib.da.var3d`.

    Parameters
    ----------
    B : covariance-like, optional
        Background covariance; the gain :math:`K = BH^\top(HBH^\top + R)^{-1}` is computed once
        (for a nonlinear ``h``, at every analysis with :math:`H = Dh(\hat m)`).
    K : array (d, p), optional
        A fixed gain instead of ``B``.
    """

    def __init__(self, B=None, K=None):
        if (B is None) == (K is None):
            raise ValueError("give exactly one of B (background covariance) and K (gain)")
        self.B, self.K = B, K

    def __repr__(self):
        return "ThreeDVar(B=...)" if self.B is not None else "ThreeDVar(K=...)"

    def check(self, ssm):
        if self.K is not None and tuple(self.K.shape) != (ssm.d, ssm.p):
            raise ValueError(f"K must have shape ({ssm.d}, {ssm.p}), got {tuple(self.K.shape)}")

    def init(self, ssm, rng):
        xp, dev = namespace(ssm.m0), device(ssm.m0)
        self._gain = self.K
        self._B = None
        if self.K is None:
            self._B = dense(self.B, xp, ssm.d, "B", dev)
            if ssm.h.linear:
                self._gain = var3d_gain(self._B, ssm.h, ssm.R.to_dense(xp, device=dev))
        return GaussianState(ssm.m0)

    def forecast(self, s, ssm, rng):
        return GaussianState(ssm.M(s.m))

    def analysis(self, s, y, ssm, rng):
        K = self._gain
        if K is None:
            K = var3d_gain(self._B, ssm.h.jacobian(s.m), ssm.R)
        return GaussianState(s.m + K @ (y - ssm.h(s.m)))

    def moments(self, s):
        return s.m, None


# ----------------------------------------------------------------------------------------
# Particle filters
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticleState:
    """Particles ``E`` (N, d) and their normalised log-weights ``logw`` (N,)."""

    E: Any
    logw: Any


class _ParticleFilter(Method):
    def __init__(self, N: int, threshold: float = 0.5):
        self.N = check_int(N, "N", minimum=2)
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)

    def _params(self):
        return {"N": self.N, "threshold": self.threshold}

    def init(self, ssm, rng):
        xp = namespace(ssm.m0)
        self.prepare(ssm)
        E = ssm.m0 + ssm.C0.sample(rng, (self.N,))
        equal = xp.full((self.N,), -math.log(self.N), dtype=E.dtype, device=device(E))
        return ParticleState(E, equal)

    def prepare(self, ssm):
        pass

    def _resample(self, E, logw, rng, xp):
        w = xp.exp(logw)
        ess = 1.0 / xp.sum(w * w)
        equal = xp.full((self.N,), -math.log(self.N), dtype=E.dtype, device=device(E))
        if backend_name(xp) == "numpy":
            # On the host the test is free, and drawing u only when resampling keeps the
            # random stream of earlier NumPy results.
            if float(ess) < self.threshold * self.N:
                idx = _systematic(logw, rng.uniform((), dtype=logw.dtype), xp)
                E, logw = xp.take(E, idx, axis=0), equal
            return ParticleState(E, logw)
        # On a device, asking for the ESS would stall the loop: compute the resampled
        # particles every cycle and keep them only where the ESS is low.
        resample = ess < self.threshold * self.N
        idx = _systematic(logw, rng.uniform((), dtype=logw.dtype), xp)
        keep = xp.arange(self.N, dtype=idx.dtype, device=device(E))
        idx = xp.where(resample, idx, keep)
        return ParticleState(xp.take(E, idx, axis=0), xp.where(resample, equal, logw))

    def moments(self, s):
        xp = namespace(s.E)
        w = xp.exp(s.logw - _logsumexp(s.logw, xp))
        m = w @ s.E
        return m, xp.sqrt(xp.mean(w @ ((s.E - m) ** 2)))

    def members(self, s):
        return s.E

    def log_weights(self, s):
        return s.logw


class BootstrapPF(_ParticleFilter):
    """Bootstrap particle filter with systematic resampling (:mod:`dalib.da.particle`).

    Parameters
    ----------
    N : int
        Number of particles.
    threshold : float
        Resample when the effective sample size is below ``threshold * N``.

    Notes
    -----
    With a perfect model (``Q`` is ``None``) the resampled copies never separate again and
    the filter collapses; it is meant for models with noise.

    On NumPy the resampling test is an ordinary ``if``.  On other backends (CuPy, JAX) the
    particles are resampled every cycle and the copy is kept only when the effective sample
    size is low, so the loop never waits for the device; this draws one more uniform number
    per cycle, so the random stream differs from NumPy's.
    """

    def forecast(self, s, ssm, rng):
        E = ssm.M(s.E)
        if ssm.Q is not None:
            E = E + ssm.Q.sample(rng, (self.N,))
        return ParticleState(E, s.logw)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.E)
        logw = _bootstrap(s.logw, s.E, y, ssm.h, ssm.R, xp)
        return self._resample(s.E, logw, rng, xp)


class OptimalPF(_ParticleFilter):
    """Particle filter with the optimal proposal, for linear ``h`` and additive noise ``Q``.

    The forecast step only applies the model, :math:`\\mathcal M(x_n)`; the model noise is
    drawn in the analysis from the optimal proposal, which also sees the observation.
    """

    def check(self, ssm):
        if ssm.Q is None:
            raise ValueError("OptimalPF needs model noise: ssm.Q must not be None")
        observation_matrix(ssm.h, ssm.xp, ssm.d, name="h", device=device(ssm.m0))

    def prepare(self, ssm):
        xp = namespace(ssm.m0)
        H = observation_matrix(ssm.h, xp, ssm.d, name="h", device=device(ssm.m0))
        self._prop = OptimalProposal(H, ssm.Q, ssm.R)

    def forecast(self, s, ssm, rng):
        return ParticleState(ssm.M(s.E), s.logw)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.E)
        E, logw = _optimal(s.logw, s.E, y, self._prop, rng, xp)
        return self._resample(E, logw, rng, xp)
