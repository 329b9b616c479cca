r"""Particle filters: the bootstrap filter and the optimal proposal (book sections 7.7-7.8).

A particle filter represents the filtering distribution by weighted particles
:math:`\{(x_n, w_n)\}_{n=1}^N`, :math:`\sum_n w_n = 1`.  Weights are kept as logarithms,
:math:`\ell_n = \log w_n`, because likelihoods of many observations underflow.

*Bootstrap* (Gordon, Salmond and Smith 1993): move each particle with the model,
:math:`x_n \leftarrow \mathcal M(x_n) + \xi_n`, then reweight by the likelihood,

.. math::
    \ell_n \leftarrow \ell_n - \tfrac12 |y^\dagger - h(x_n)|^2_{R^{-1}} + \text{const}.

*Optimal proposal* (Doucet, Godsill and Andrieu 2000), for linear :math:`h(x) = Hx` and
additive noise :math:`\mathcal N(0, Q)`: draw from :math:`\mathbb P(x_{j+1}\mid x_j, y_{j+1})`,

.. math::
    x_n \sim \mathcal N\big(\mathcal M(x_n) + K(y^\dagger - H\mathcal M(x_n)),\ \Sigma\big),\quad
    K = Q H^\top (H Q H^\top + R)^{-1},\quad \Sigma = (Q^{-1} + H^\top R^{-1} H)^{-1} = (I - KH) Q,

and reweight by the predictive likelihood
:math:`\mathcal N(y^\dagger; H\mathcal M(x_n), HQH^\top + R)`, which does not depend on the
new draw.

When the effective sample size :math:`N_\text{eff} = 1/\sum_n w_n^2` drops below a threshold,
particles are resampled systematically and the weights reset to :math:`1/N`.

*Regularised resampling* (Musso, Oudjane and Le Gland 2001) replaces the point masses of the
weighted particles by Gaussian kernels before resampling, so that the copies of a particle
separate even when the model has no noise:

.. math::
    x_n \leftarrow x_{i_n} + h\, \hat C^{1/2} z_n,\quad z_n \sim \mathcal N(0, I),\quad
    h = b\, h_\text{opt},\quad h_\text{opt} = \Big(\frac{4}{N(d + 2)}\Big)^{1/(d+4)},

where :math:`i_n` are the resampled indices, :math:`\hat C = \sum_n w_n (x_n - \bar x)
(x_n - \bar x)^\top / (1 - \sum_n w_n^2)` is the weighted covariance of the particles
before resampling, :math:`h_\text{opt}` the bandwidth that is optimal for a Gaussian target
(Silverman 1986) and :math:`b` a tuning factor.  The resampled cloud keeps the weighted mean
and has covariance :math:`(1 + h^2)\hat C`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_same_backend
from ..backend import backend_name, device, is_traced, namespace, solve_triangular
from ..random import default_rng
from ._kernels import as_R, chol_solve, dense, observation_matrix, symmetrize
from .methods import Method

__all__ = [
    "BootstrapPF",
    "OptimalPF",
    "OptimalProposal",
    "ParticleState",
    "bootstrap_log_weights",
    "effective_sample_size",
    "kernel_bandwidth",
    "normalize_log_weights",
    "optimal_pf_analysis",
    "optimal_proposal",
    "regularized_resample",
    "systematic_resample",
    "weighted_mean",
    "weighted_spread",
]


def _logsumexp(logw, xp):
    top = xp.max(logw)
    return top + xp.log(xp.sum(xp.exp(logw - top)))


def _check_log_weights(logw, name: str = "logw"):
    """Validate log-weights (N,): no NaN, no +inf, and at least one particle of weight > 0.

    ``-inf`` marks a particle of weight zero; if every entry is ``-inf`` (or NaN) there is no
    distribution to normalise, and any answer (NaN, copies of particle 0) would be wrong.
    """
    check_array(logw, name, ndim=1, finite=False)
    if logw.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one log-weight, got shape (0,)")
    if is_traced(logw):
        return logw
    xp = namespace(logw)
    if is_traced(xp.sum(logw)):
        return logw
    if bool(xp.any(xp.isnan(logw))):
        raise ValueError(f"{name} contains NaN log-weights")
    if bool(xp.any(logw == math.inf)):
        raise ValueError(f"{name} contains +inf log-weights (an infinite weight)")
    if not bool(xp.any(xp.isfinite(logw))):
        raise ValueError(f"{name} is -inf for every particle: all weights are zero, so "
                         "they cannot be normalised")
    return logw


def normalize_log_weights(logw):
    r"""Log-weights shifted so that :math:`\sum_n e^{\ell_n} = 1` (computed stably).

    Raises ``ValueError`` if ``logw`` holds NaN or +inf, or is -inf everywhere (no particle
    has a positive weight).
    """
    _check_log_weights(logw)
    xp = namespace(logw)
    return logw - _logsumexp(logw, xp)


def effective_sample_size(logw):
    r"""Effective sample size :math:`N_\text{eff} = 1 / \sum_n w_n^2` of (unnormalised) log-weights.

    It is :math:`N` for equal weights and 1 when one particle carries all the weight.
    Log-weights are checked as in :func:`normalize_log_weights`.
    """
    xp = namespace(logw)
    w = xp.exp(normalize_log_weights(logw))
    return 1.0 / xp.sum(w * w)


def _systematic(logw, u, xp):
    N = logw.shape[0]
    w = xp.exp(logw - _logsumexp(logw, xp))
    cdf = xp.cumulative_sum(w)
    points = (xp.arange(N, dtype=w.dtype, device=device(w)) + u) / N
    idx = xp.searchsorted(cdf, points, side="right")
    return xp.clip(idx, 0, N - 1)  # round-off can leave cdf[-1] slightly below 1


def systematic_resample(logw, rng):
    r"""Systematic resampling: indices of the particles to keep, shape (N,).

    One uniform :math:`u \sim U[0, 1)` places the points :math:`(n + u)/N`,
    :math:`n = 0, \dots, N-1`; particle ``k`` is chosen once per point in its slice of the
    cumulative weights.  Particle ``k`` is then copied either :math:`\lfloor N w_k\rfloor` or
    :math:`\lceil N w_k \rceil` times, the smallest variance of the standard schemes.

    Parameters
    ----------
    logw : array, shape (N,)
        Log-weights (need not be normalised).
    rng : int or dalib.random.Generator
        Source of the uniform draw.

    Raises
    ------
    ValueError
        If ``logw`` holds NaN or +inf, or is -inf everywhere.
    """
    _check_log_weights(logw)
    xp = namespace(logw)
    rng = default_rng(rng, xp, device(logw))
    return _systematic(logw, rng.uniform((), dtype=logw.dtype), xp)


def bootstrap_log_weights(logw, E, y, h, R):
    r"""Bootstrap reweighting :math:`\ell_n - \tfrac12|S^{-1}(y^\dagger - h(x_n))|^2`, normalised.

    Parameters
    ----------
    logw : array, shape (N,)
        Current log-weights.
    E : array, shape (N, d)
        Forecast particles.
    y : array, shape (p,)
        Observation.
    h : callable
        Observation operator.
    R : covariance-like
        Observation error covariance.

    Raises
    ------
    ValueError
        If ``logw`` is invalid (see :func:`normalize_log_weights`), does not have one entry
        per particle, or ``h(E)`` does not have shape ``(N, p)``.
    """
    _check_log_weights(logw)
    check_array(E, "E", ndim=2)
    check_array(y, "y", ndim=1)
    N, p = E.shape[0], y.shape[0]
    if logw.shape[0] != N:
        raise ValueError(f"logw must have one entry per particle (E has {N} rows), got "
                         f"shape {tuple(logw.shape)}")
    xp = check_same_backend(logw=logw, E=E, y=y)
    hE = h(E)
    if tuple(hE.shape) != (N, p):
        raise ValueError(f"h(E) must have shape ({N}, {p}) (one observation of y's size per "
                         f"particle), got {tuple(hE.shape)}: does h match y?")
    return _bootstrap(logw, E, y, lambda _: hE, as_R(R, p), xp)


def _bootstrap(logw, E, y, h, R, xp):
    z = R.inv_sqrt_matmul(y - h(E))
    logw = logw - 0.5 * xp.sum(z * z, axis=-1)
    return logw - _logsumexp(logw, xp)


def kernel_bandwidth(N: int, d: int) -> float:
    r"""Optimal Gaussian-kernel bandwidth :math:`h_\text{opt} = (4 / (N (d + 2)))^{1/(d + 4)}`.

    The bandwidth, in units of the particles' standard deviation, that minimises the mean
    integrated squared error of a kernel density estimate of a Gaussian (Silverman 1986),
    as used by the regularised particle filter (Musso, Oudjane and Le Gland 2001).

    Examples
    --------
    >>> round(kernel_bandwidth(100, 3), 3)
    0.502
    """
    N, d = check_int(N, "N", minimum=1), check_int(d, "d", minimum=1)
    return (4.0 / (N * (d + 2))) ** (1.0 / (d + 4))


def _kernel_jitter(E, logw, h, rng, xp):
    """Draws of N(0, h^2 C), C the weighted covariance of the particles ``E``."""
    N, d = E.shape
    w = xp.exp(logw - _logsumexp(logw, xp))
    # All weight on one particle: its covariance is zero, fall back to equal weights.
    degenerate = 1.0 - xp.sum(w * w) < 1e-10
    w = xp.where(degenerate, xp.full_like(w, 1.0 / N), w)
    A = xp.sqrt(w / (1.0 - xp.sum(w * w)))[:, None] * (E - w @ E)  # A^T A = C
    if N > d:  # a d-by-d factor with R^T R = A^T A, cheaper than N-by-N draws
        _, A = xp.linalg.qr(A)
    return h * (rng.standard_normal((E.shape[0], A.shape[0]), dtype=E.dtype) @ A)


def regularized_resample(E, logw, rng, bandwidth: float = 1.0):
    r"""Regularised resampling: systematic resampling plus Gaussian kernel jitter.

    Returns :math:`x_{i_n} + h \hat C^{1/2} z_n` with :math:`h = b\,h_\text{opt}` (see
    :func:`kernel_bandwidth` and the module docstring); the new particles carry equal weights.

    Parameters
    ----------
    E : array, shape (N, d)
        Particles.
    logw : array, shape (N,)
        Their log-weights (need not be normalised).
    rng : int or dalib.random.Generator
        Source of the uniform and Gaussian draws.
    bandwidth : float
        The factor :math:`b \ge 0`; 0 gives plain systematic resampling.

    Returns
    -------
    array, shape (N, d)
        Resampled, jittered particles: in expectation their mean is the weighted mean of
        ``E`` and their covariance :math:`(1 + h^2)\hat C`.
    """
    check_array(E, "E", ndim=2)
    check_array(logw, "logw", ndim=1, finite=False)
    if logw.shape[0] != E.shape[0]:
        raise ValueError(f"logw must have one entry per particle ({E.shape[0]}), "
                         f"got shape {tuple(logw.shape)}")
    bandwidth = _check_bandwidth(bandwidth)
    xp = namespace(E, logw)
    rng = default_rng(rng, xp, device(E))
    return _regularized(E, logw, bandwidth, rng, xp)


def _check_bandwidth(bandwidth) -> float:
    if not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth)
            and bandwidth >= 0):
        raise ValueError(f"bandwidth must be a finite number >= 0, got {bandwidth!r}")
    return float(bandwidth)


def _regularized(E, logw, bandwidth, rng, xp):
    idx = _systematic(logw, rng.uniform((), dtype=logw.dtype), xp)
    resampled = xp.take(E, idx, axis=0)
    if bandwidth == 0:
        return resampled
    h = bandwidth * kernel_bandwidth(*E.shape)
    return resampled + _kernel_jitter(E, logw, h, rng, xp)


class OptimalProposal:
    r"""The constant matrices of the optimal proposal for linear ``h`` and additive noise ``Q``.

    Attributes
    ----------
    H : array (p, d)
        Observation matrix.
    K : array (d, p)
        :math:`Q H^\top (HQH^\top + R)^{-1}`.
    L_sigma : array (d, d)
        Cholesky factor of :math:`\Sigma = (Q^{-1} + H^\top R^{-1} H)^{-1} = (I - KH)Q`.
    L_S_inv : array (p, p)
        Inverse of the Cholesky factor of the predictive covariance :math:`S = HQH^\top + R`.
    """

    def __init__(self, H, Q, R):
        self.H = H
        xp = namespace(H)
        p, d = H.shape
        dev = device(H)
        Qd, Rd = dense(Q, xp, d, "Q", dev), dense(R, xp, p, "R", dev)
        HQ = H @ Qd
        S = symmetrize(HQ @ H.T + Rd)
        L_S = xp.linalg.cholesky(S)
        eye = xp.eye(p, dtype=H.dtype, device=dev)
        self.L_S_inv = solve_triangular(L_S, eye, lower=True)
        self.K = chol_solve(L_S, HQ).T
        Sigma = symmetrize(Qd - self.K @ HQ)
        self.L_sigma = xp.linalg.cholesky(Sigma)


def optimal_proposal(H, Q, R) -> OptimalProposal:
    """Precompute the optimal-proposal matrices (see :class:`OptimalProposal`)."""
    if Q is None:
        raise ValueError("the optimal proposal needs model noise: Q must not be None")
    check_array(H, "H", ndim=2)
    return OptimalProposal(H, Q, R)


def _optimal(logw, ME, y, prop, rng, xp):
    HME = ME @ prop.H.T
    v = y - HME  # (N, p) innovations of the predictions
    z = v @ prop.L_S_inv.T  # whitened by the square root of S
    logw = logw - 0.5 * xp.sum(z * z, axis=-1)
    logw = logw - _logsumexp(logw, xp)
    noise = rng.standard_normal(ME.shape) @ prop.L_sigma.T
    return ME + v @ prop.K.T + noise, logw


def optimal_pf_analysis(logw, ME, y, h, Q, R, rng, proposal: OptimalProposal | None = None):
    r"""Optimal-proposal particle update from the predictions :math:`\mathcal M(x_n)`.

    Parameters
    ----------
    logw : array, shape (N,)
        Log-weights of the particles at the previous time.
    ME : array, shape (N, d)
        Their noise-free forecasts :math:`\mathcal M(x_n)`.
    y : array, shape (p,)
        Observation.
    h : linear ObservationOperator or array (p, d)
        Observation operator.
    Q, R : covariance-like
        Model and observation error covariances.
    rng : int or dalib.random.Generator
        Source of the proposal draws.
    proposal : OptimalProposal, optional
        Precomputed matrices (from :func:`optimal_proposal`), reused across cycles.

    Returns
    -------
    E : array, shape (N, d)
        New particles, drawn from the optimal proposal.
    logw : array, shape (N,)
        Their normalised log-weights.
    """
    check_array(ME, "ME", ndim=2)
    check_array(y, "y", ndim=1)
    check_array(logw, "logw", ndim=1, finite=False)
    xp = namespace(ME, y)
    if proposal is None:
        H = observation_matrix(h, xp, ME.shape[1], device=device(ME))
        proposal = optimal_proposal(H, Q, R)
    return _optimal(logw, ME, y, proposal, default_rng(rng, xp, device(ME)), xp)


def weighted_mean(E, logw):
    r"""Weighted particle mean :math:`\sum_n w_n x_n`."""
    xp = namespace(E, logw)
    w = xp.exp(logw - _logsumexp(logw, xp))
    return w @ E


def weighted_spread(E, logw):
    r"""Root of the mean (over components) weighted variance :math:`\sum_n w_n (x_n - \bar x)^2`."""
    xp = namespace(E, logw)
    w = xp.exp(logw - _logsumexp(logw, xp))
    m = w @ E
    return xp.sqrt(xp.mean(w @ ((E - m) ** 2)))


# ----------------------------------------------------------------------------------------
# Filter objects for the cycling driver
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticleState:
    """Particles ``E`` (N, d) and their normalised log-weights ``logw`` (N,)."""

    E: Any
    logw: Any


class _ParticleFilter(Method):
    def __init__(self, N: int, threshold: float = 0.5, bandwidth: float = 0.0):
        self.N = check_int(N, "N", minimum=2)
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.bandwidth = _check_bandwidth(bandwidth)

    def _params(self):
        params = {"N": self.N, "threshold": self.threshold}
        if self.bandwidth:
            params["bandwidth"] = self.bandwidth
        return params

    def init(self, ssm, rng):
        xp = namespace(ssm.m0)
        self.constants(ssm)
        E = ssm.m0 + ssm.C0.sample(rng, (self.N,))
        equal = xp.full((self.N,), -math.log(self.N), dtype=E.dtype, device=device(E))
        return ParticleState(E, equal)

    def _resample(self, E, logw, rng, xp):
        w = xp.exp(logw)
        ess = 1.0 / xp.sum(w * w)
        equal = xp.full((self.N,), -math.log(self.N), dtype=E.dtype, device=device(E))
        if backend_name(xp) == "numpy":
            # On the host the test is free, and drawing u only when resampling keeps the
            # random stream of earlier NumPy results.
            if float(ess) < self.threshold * self.N:
                E, logw = _regularized(E, logw, self.bandwidth, rng, xp), equal
            return ParticleState(E, logw)
        # On a device, asking for the ESS would stall the loop: compute the resampled
        # particles every cycle and keep them only where the ESS is low.
        resample = ess < self.threshold * self.N
        E_new = _regularized(E, logw, self.bandwidth, rng, xp)
        return ParticleState(xp.where(resample, E_new, E), xp.where(resample, equal, logw))

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
    bandwidth : float
        Regularisation: after resampling, jitter the particles with Gaussian kernels of
        bandwidth ``bandwidth`` times :func:`kernel_bandwidth` relative to their weighted
        covariance (:func:`regularized_resample`).  0 (the default) is the plain bootstrap
        filter.

    Notes
    -----
    With a perfect model (``Q`` is ``None``) and no regularisation the resampled copies
    never separate again and the filter collapses; give it a ``bandwidth`` (about 1 to 3)
    and a lower ``threshold`` (0.2 to 0.3).

    On NumPy the resampling test is an ordinary ``if``.  On other backends (CuPy, JAX) the
    particles are resampled every cycle and the copy is kept only when the effective sample
    size is low, so the loop never waits for the device; this draws one more uniform number
    per cycle, so the random stream differs from NumPy's.
    """

    def forecast(self, s, ssm, rng):
        return ParticleState(ssm.step(s.E, rng), s.logw)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.E)
        logw = _bootstrap(s.logw, s.E, y, ssm.h, ssm.R, xp)
        return self._resample(s.E, logw, rng, xp)


class OptimalPF(_ParticleFilter):
    """Particle filter with the optimal proposal, for linear ``h`` and additive noise ``Q``.

    The forecast step only applies the model, :math:`\\mathcal M(x_n)`; the model noise is
    drawn in the analysis from the optimal proposal, which also sees the observation.

    Parameters
    ----------
    N, threshold, bandwidth
        As for :class:`BootstrapPF`.
    proposal_noise : covariance-like, optional
        For a perfect model (``ssm.Q`` is ``None``): the model noise the filter assumes, a
        stated regularisation like the jitter of :class:`BootstrapPF`.  The filter then
        targets the model with this noise, not the perfect one.
    """

    def __init__(self, N: int, threshold: float = 0.5, bandwidth: float = 0.0,
                 proposal_noise=None):
        super().__init__(N, threshold, bandwidth)
        self.proposal_noise = proposal_noise

    def _params(self):
        params = super()._params()
        if self.proposal_noise is not None:
            params["proposal_noise"] = self.proposal_noise
        return params

    def _noise(self, ssm):
        if ssm.Q is not None and self.proposal_noise is not None:
            raise ValueError("proposal_noise is for a model without noise, but ssm.Q is "
                             "set: give one or the other")
        Q = ssm.Q if ssm.Q is not None else self.proposal_noise
        if Q is None:
            raise ValueError("OptimalPF needs model noise: ssm.Q must not be None, or give "
                             "proposal_noise for a perfect model")
        return Q

    def check(self, ssm):
        self._noise(ssm)
        observation_matrix(ssm.h, ssm.xp, ssm.d, name="h", device=device(ssm.m0))

    def prepare(self, ssm):
        xp = namespace(ssm.m0)
        H = observation_matrix(ssm.h, xp, ssm.d, name="h", device=device(ssm.m0))
        return OptimalProposal(H, self._noise(ssm), ssm.R)

    def forecast(self, s, ssm, rng):
        return ParticleState(ssm.M(s.E), s.logw)

    def analysis(self, s, y, ssm, rng):
        xp = namespace(s.E)
        E, logw = _optimal(s.logw, s.E, y, self.constants(ssm), rng, xp)
        return self._resample(E, logw, rng, xp)
