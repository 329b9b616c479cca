r"""Learning the error covariances :math:`Q` and :math:`R` by expectation-maximisation.

The lecture's EM algorithm (eqs. (7)-(9); book section 8.2.1) maximises the likelihood
:math:`\mathbb P(Y^\dagger \mid \vartheta)` of eq. (6) over the parameters
:math:`\vartheta = (Q, R)` (and, for a linear model, the model matrix :math:`A`) by
alternating

.. math::
    \text{E-step:}\quad \mathcal J_\ell(\vartheta) =
    \mathbb E^{X \sim \mathbb P(X \mid Y^\dagger, \vartheta_\ell)}
    \big[\log \mathbb P(X, Y^\dagger \mid \vartheta)\big],
    \qquad
    \text{M-step:}\quad \vartheta_{\ell+1} = \arg\max_\vartheta \mathcal J_\ell(\vartheta).

For the state-space model (1)-(2) with Gaussian noise the complete-data log-likelihood is

.. math::
    \log \mathbb P(X, Y^\dagger \mid \vartheta) = \log \mathcal N(x_0; m_0, C_0)
    + \sum_{j=0}^{J-1} \log \mathcal N\big(x_{j+1}; \mathcal M(x_j), Q\big)
    + \sum_{j=1}^{J} \log \mathcal N\big(y^\dagger_j; h(x_j), R\big),

so :math:`\mathcal J_\ell` only needs the smoothed moments of the model residuals
:math:`x_{j+1} - \mathcal M(x_j)` and of the observation residuals
:math:`y^\dagger_j - h(x_j)`, and the M-step is in closed form:

.. math::
    Q_{\ell+1} = \frac1J \sum_{j=0}^{J-1}
    \mathbb E\big[(x_{j+1} - \mathcal M(x_j))(x_{j+1} - \mathcal M(x_j))^\top\big],\qquad
    R_{\ell+1} = \frac1J \sum_{j=1}^{J}
    \mathbb E\big[(y^\dagger_j - h(x_j))(y^\dagger_j - h(x_j))^\top\big].

* :func:`em_linear_gaussian` computes the expectations exactly with the Kalman (RTS)
  smoother, including the lag-one covariances
  :math:`\operatorname{Cov}(x_{j+1}, x_j \mid Y^\dagger)` (Shumway and Stoffer 1982).
  Each iteration cannot decrease the exact log-likelihood, eq. (9).
* :func:`em_enks` replaces the smoother by an ensemble Kalman smoother and the expectations
  by averages over its members (Dreano et al. 2017), for nonlinear models.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_positive
from ..backend import namespace
from ..covariance import gaussian_log_density
from ..da import ETKF, kalman_filter, rts_smoother
from ..da.cycling import cycle
from ..da.smoothers import EnKS
from ..models import LinearModel
from ..random import default_rng

__all__ = [
    "SmootherStatistics",
    "CovarianceEMResult",
    "smoother_statistics",
    "expected_loglik",
    "m_step",
    "em_linear_gaussian",
    "EnsembleSmootherPass",
    "enks_pass",
    "em_enks",
    "ConvergenceWarning",
]

STRUCTURES = ("full", "diag", "scalar")


class ConvergenceWarning(RuntimeWarning):
    """An iteration stopped at its limit before meeting its tolerance."""


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------


def _sym(C, xp):
    return (C + xp.matrix_transpose(C)) / 2


def _project(S, structure: str, xp):
    """The maximiser of ``-n/2 log|C| - 1/2 tr(C^{-1} n S)`` over the given structure."""
    d = S.shape[-1]
    eye = xp.eye(d, dtype=S.dtype)
    if structure == "full":
        return _sym(S, xp)
    if structure == "diag":
        return eye * xp.linalg.diagonal(S)[None, :]
    return eye * (xp.sum(xp.linalg.diagonal(S)) / d)


def _check_structure(structure, name):
    if structure not in STRUCTURES:
        raise ValueError(f"{name} must be one of {STRUCTURES}, got {structure!r}")
    return structure


def _check_estimate(estimate, allowed):
    estimate = (estimate,) if isinstance(estimate, str) else tuple(estimate)
    bad = [e for e in estimate if e not in allowed]
    if bad or not estimate:
        raise ValueError(f"estimate must be a non-empty subset of {allowed}, got {estimate!r}")
    return estimate


def _logdet(C, xp):
    L = xp.linalg.cholesky(C)
    return 2 * xp.sum(xp.log(xp.linalg.diagonal(L)))


def _trace_solve(C, S, xp):
    """:math:`\\operatorname{tr}(C^{-1} S)`."""
    return xp.sum(xp.linalg.diagonal(xp.linalg.solve(C, S)))


def _linear_matrices(ssm):
    A = getattr(ssm.M, "A", None)
    if A is None:
        raise TypeError(
            f"ssm.M must be a dalib.models.LinearModel for exact EM, got {type(ssm.M).__name__}"
            "; use em_enks for nonlinear models"
        )
    if not getattr(ssm.h, "linear", False):
        raise TypeError(f"ssm.h must be linear for exact EM, got {type(ssm.h).__name__}")
    xp = namespace(ssm.m0)
    return xp, A, ssm.h.matrix(xp)


# ----------------------------------------------------------------------------------------
# Exact EM for a linear-Gaussian model
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmootherStatistics:
    r"""The E-step of a linear-Gaussian model: sums of smoothed second moments.

    With the smoothing means :math:`m^s_j` and covariances :math:`C^s_j`, and the lag-one
    covariances :math:`C^s_{j+1,j} = \operatorname{Cov}(x_{j+1}, x_j \mid Y^\dagger)`,

    .. math::
        S_{00} = \sum_{j=0}^{J-1} (C^s_j + m^s_j m^{s\top}_j),\quad
        S_{11} = \sum_{j=1}^{J} (C^s_j + m^s_j m^{s\top}_j),\quad
        S_{10} = \sum_{j=0}^{J-1} (C^s_{j+1,j} + m^s_{j+1} m^{s\top}_j),

        S_R = \sum_{j=1}^{J} \big[(y^\dagger_j - H m^s_j)(y^\dagger_j - H m^s_j)^\top
        + H C^s_j H^\top\big].

    Attributes
    ----------
    S00, S11, S10 : array, shape (d, d)
        State moment sums.
    SR : array, shape (p, p)
        Observation-residual moment sum.
    prior : array, shape ()
        :math:`\mathbb E[\log \mathcal N(x_0; m_0, C_0)]` under the smoother.
    J : int
        Number of observation times.
    loglik : array, shape ()
        The exact log-likelihood :math:`\log \mathbb P(Y^\dagger \mid \vartheta_\ell)` of the
        parameters the smoother ran with (from :func:`~dalib.da.kalman_filter`).
    m_s, C_s : array, shapes (J + 1, d), (J + 1, d, d)
        Smoothing means and covariances.
    C_lag : array, shape (J, d, d)
        Lag-one covariances :math:`C^s_{j+1,j}`, ``j = 0..J-1``.
    """

    S00: Any
    S11: Any
    S10: Any
    SR: Any
    prior: Any
    J: int
    loglik: Any
    m_s: Any
    C_s: Any
    C_lag: Any


def smoother_statistics(ssm, y) -> SmootherStatistics:
    r"""E-step of EM for a linear-Gaussian model, with the Kalman filter and RTS smoother.

    The lag-one smoothed covariance follows from the RTS gain
    :math:`G_j = C_j A^\top \hat C_{j+1}^{-1}`: :math:`C^s_{j+1,j} = C^s_{j+1} G_j^\top`
    (the joint smoothing distribution of :math:`(x_j, x_{j+1})` is Gaussian with this
    cross-covariance).

    Parameters
    ----------
    ssm : StateSpaceModel
        Linear model (:class:`~dalib.models.LinearModel`), linear ``h``; its ``Q`` and ``R``
        are the current parameters :math:`\vartheta_\ell`.
    y : array, shape (J, p)
        Observations; ``y[j - 1]`` observes time ``j``.

    Returns
    -------
    SmootherStatistics
    """
    xp, A, H = _linear_matrices(ssm)
    check_array(y, "y", ndim=2, last=ssm.p)
    kf = kalman_filter(ssm, y)
    sm = rts_smoother(kf, A)
    m_s, C_s = sm.m, sm.C
    Ca, Cf = kf.C_a[:-1, ...], kf.C_f[1:, ...]
    # G_j^T = Cf_{j+1}^{-1} A C_j (Cf symmetric), batched over j = 0..J-1.
    GT = xp.linalg.solve(Cf, A[None, ...] @ Ca)
    C_lag = C_s[1:, ...] @ GT
    outer = m_s[:, :, None] * m_s[:, None, :]
    second = C_s + outer
    S00 = xp.sum(second[:-1, ...], axis=0)
    S11 = xp.sum(second[1:, ...], axis=0)
    S10 = xp.sum(C_lag + m_s[1:, :, None] * m_s[:-1, None, :], axis=0)
    resid = y - m_s[1:, :] @ H.T
    HCH = H[None, ...] @ C_s[1:, ...] @ H.T[None, ...]
    SR = xp.sum(resid[:, :, None] * resid[:, None, :] + HCH, axis=0)
    C0 = ssm.C0.to_dense(xp)
    dev = m_s[0, :] - ssm.m0
    d = ssm.d
    prior = gaussian_log_density(
        _trace_solve(C0, C_s[0, ...] + dev[:, None] * dev[None, :], xp), _logdet(C0, xp), d)
    return SmootherStatistics(S00, S11, S10, SR, prior, int(y.shape[0]), kf.loglik,
                              m_s, C_s, C_lag)


def _Q_stat(stats, A, xp):
    """:math:`\\sum_j \\mathbb E[(x_{j+1} - A x_j)(x_{j+1} - A x_j)^\\top]`."""
    S10A = stats.S10 @ A.T
    return stats.S11 - S10A - S10A.T + A @ stats.S00 @ A.T


def expected_loglik(stats: SmootherStatistics, A, Q, R):
    r"""The EM objective :math:`\mathcal J_\ell(\vartheta)` of eq. (7) for a linear model.

    .. math::
        \mathcal J_\ell(A, Q, R) = \mathbb E[\log \mathcal N(x_0; m_0, C_0)]
        - \tfrac J2 \big(d \log 2\pi + \log|Q|\big)
        - \tfrac12 \operatorname{tr}\big(Q^{-1} [S_{11} - S_{10} A^\top - A S_{10}^\top
        + A S_{00} A^\top]\big)
        - \tfrac J2 \big(p \log 2\pi + \log|R|\big)
        - \tfrac12 \operatorname{tr}(R^{-1} S_R),

    with the sums of :class:`SmootherStatistics`, computed under the parameters
    :math:`\vartheta_\ell` of the E-step.

    Parameters
    ----------
    stats : SmootherStatistics
        Output of :func:`smoother_statistics`.
    A : array, shape (d, d)
        Model matrix.
    Q, R : array
        Dense covariances, shapes (d, d) and (p, p).

    Returns
    -------
    array, shape ()
    """
    xp = namespace(stats.S00, A, Q, R)
    d, p, J = stats.S00.shape[0], stats.SR.shape[0], stats.J
    model = gaussian_log_density(_trace_solve(Q, _Q_stat(stats, A, xp), xp),
                                 J * _logdet(Q, xp), J * d)
    obs = gaussian_log_density(_trace_solve(R, stats.SR, xp), J * _logdet(R, xp), J * p)
    return stats.prior + model + obs


def m_step(stats: SmootherStatistics, A, *, estimate=("Q", "R"), Q_structure="full",
           R_structure="full", Q=None, R=None):
    r"""The M-step, eq. (8): the closed-form maximiser of :func:`expected_loglik`.

    .. math::
        A_{\ell+1} = S_{10} S_{00}^{-1},\qquad
        Q_{\ell+1} = \tfrac1J\big(S_{11} - S_{10} A^\top - A S_{10}^\top + A S_{00}A^\top\big),
        \qquad R_{\ell+1} = \tfrac1J S_R.

    ``A`` is updated first (its maximiser does not depend on :math:`Q`) and :math:`Q` uses
    the new ``A``.  A ``"diag"`` structure keeps the diagonal of the full maximiser and
    ``"scalar"`` its mean diagonal times the identity; both are the exact maximisers within
    their class.

    Parameters
    ----------
    stats : SmootherStatistics
        The E-step.
    A : array, shape (d, d)
        Current model matrix (kept unless ``"A"`` is estimated).
    estimate : sequence of {"A", "Q", "R"}
        Which parameters to update.
    Q_structure, R_structure : {"full", "diag", "scalar"}
        Structure imposed on the estimates.
    Q, R : array, optional
        Current values, returned unchanged when not estimated.

    Returns
    -------
    A, Q, R : array
    """
    estimate = _check_estimate(estimate, ("A", "Q", "R"))
    _check_structure(Q_structure, "Q_structure")
    _check_structure(R_structure, "R_structure")
    xp = namespace(stats.S00, A)
    J = stats.J
    if "A" in estimate:
        A = xp.linalg.solve(stats.S00, stats.S10.T).T  # S10 S00^{-1}, S00 symmetric
    if "Q" in estimate:
        Q = _project(_Q_stat(stats, A, xp) / J, Q_structure, xp)
    if "R" in estimate:
        R = _project(stats.SR / J, R_structure, xp)
    return A, Q, R


@dataclass(frozen=True)
class CovarianceEMResult:
    r"""The iterations of an EM run.

    Attributes
    ----------
    ssm : StateSpaceModel
        The model with the final estimates :math:`\vartheta_L` in place.
    Q, R : array
        Final estimates, dense, shapes (d, d) and (p, p).
    A : array or None
        Final model matrix (exact EM with ``"A"`` estimated) or ``None``.
    Q_history, R_history : array, shapes (L + 1, d, d), (L + 1, p, p)
        :math:`Q_\ell` and :math:`R_\ell` for ``l = 0..L`` (index 0: the initial guess).
    loglik : array, shape (L + 1,)
        Log-likelihood of :math:`\vartheta_\ell`: exact (Kalman filter) for
        :func:`em_linear_gaussian`, the ensemble approximation for :func:`em_enks`.
    smoothed : array, shape (J + 1, d)
        Smoothing means under the final estimates.
    n_iter : int
        Number of EM iterations done.
    extras : dict
        Method-specific outputs.
    converged : bool or None
        Whether the log-likelihood met the tolerance ``tol`` before the iteration limit;
        ``None`` when no tolerance was asked for (the run always does ``n_iter``
        iterations).
    """

    ssm: Any
    Q: Any
    R: Any
    A: Any
    Q_history: Any
    R_history: Any
    loglik: Any
    smoothed: Any
    n_iter: int
    extras: dict
    converged: bool | None = None


def em_linear_gaussian(ssm, y, n_iter: int = 50, *, estimate=("Q", "R"), Q_structure="full",
                       R_structure="full", tol: float | None = None) -> CovarianceEMResult:
    r"""Exact EM for :math:`Q`, :math:`R` (and optionally :math:`A`) of a linear-Gaussian model.

    The algorithm of Shumway and Stoffer (1982): E-step with the Kalman filter and RTS
    smoother (:func:`smoother_statistics`), M-step in closed form (:func:`m_step`).  The
    exact log-likelihood never decreases from one iteration to the next (lecture eq. (9)).
    The initial condition :math:`(m_0, C_0)` is kept fixed.

    Parameters
    ----------
    ssm : StateSpaceModel
        Linear-Gaussian model; its ``Q``, ``R`` (and ``M.A``) are the initial guess.
    y : array, shape (J, p)
        Observations.
    n_iter : int
        Maximum number of EM iterations.
    estimate : sequence of {"A", "Q", "R"}
        Parameters to learn; the others stay at their values in ``ssm``.
    Q_structure, R_structure : {"full", "diag", "scalar"}
        Structure of the estimates.
    tol : float, optional
        Stop when the log-likelihood increases by less than ``tol`` (absolute).

    Returns
    -------
    CovarianceEMResult
        ``converged`` says whether ``tol`` was met (``None`` without ``tol``).

    Warns
    -----
    ConvergenceWarning
        If ``tol`` is given and EM stops at ``n_iter`` iterations before meeting it.

    Examples
    --------
    >>> import dalib
    >>> from dalib.learning import em_linear_gaussian
    >>> truth = dalib.setups.linear_gaussian(d=2, Q=0.1, R=0.5)
    >>> twin = truth.simulate(500, rng=1)
    >>> fit = em_linear_gaussian(truth.replace(Q=1.0, R=1.0), twin.y, n_iter=100)
    >>> bool(all(fit.loglik[1:] >= fit.loglik[:-1] - 1e-8))
    True
    """
    xp, A, _ = _linear_matrices(ssm)
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    estimate = _check_estimate(estimate, ("A", "Q", "R"))
    _check_structure(Q_structure, "Q_structure")
    _check_structure(R_structure, "R_structure")
    if ssm.Q is None:
        raise ValueError("ssm.Q must be an initial guess (a covariance), not None")
    Q, R = ssm.Q.to_dense(xp), ssm.R.to_dense(xp)
    Qs, Rs, ll = [Q], [R], []
    current = ssm
    done = 0
    converged = None if tol is None else False
    for _ in range(n_iter):
        stats = smoother_statistics(current, y)
        ll.append(stats.loglik)
        if tol is not None and len(ll) > 1 and float(ll[-1] - ll[-2]) < tol:
            converged = True
            break
        A, Q, R = m_step(stats, A, estimate=estimate, Q_structure=Q_structure,
                         R_structure=R_structure, Q=Q, R=R)
        current = current.replace(M=LinearModel(A), Q=Q, R=R)
        Qs.append(Q)
        Rs.append(R)
        done += 1
    final = smoother_statistics(current, y)
    if len(ll) == done:
        ll.append(final.loglik)
    if converged is False and done > 0 and float(ll[-1] - ll[-2]) < tol:
        converged = True  # the last iteration met the tolerance
    if converged is False:
        warnings.warn(f"EM stopped at its iteration limit n_iter={n_iter} before the "
                      f"log-likelihood gain fell below tol={tol}: raise n_iter",
                      ConvergenceWarning, stacklevel=2)
    return CovarianceEMResult(current, Q, R, A, xp.stack(Qs), xp.stack(Rs), xp.stack(ll), final.m_s,
                    done, {"statistics": final}, converged)


# ----------------------------------------------------------------------------------------
# EM with an ensemble Kalman smoother (nonlinear models)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnsembleSmootherPass:
    r"""One run of :func:`enks_pass`.

    Attributes
    ----------
    ensembles : array, shape (J + 1, N, d)
        Smoothed ensembles at every model step ``0..J``.
    next_ensembles : array, shape (J, N, d)
        The ensemble of step ``j + 1`` conditioned on the same observations as
        ``ensembles[j]``, so that member ``n`` of the two is a joint sample of
        :math:`(x_j, x_{j+1})` (with a fixed lag, ``ensembles[j + 1]`` has seen one more
        observation than ``ensembles[j]``).
    mean : array, shape (J + 1, d)
        Their means (the smoother estimate).
    filter_mean : array, shape (J + 1, d)
        The filter's analysis means (forecast means at unobserved steps).
    loglik : array, shape ()
        Ensemble approximation of :math:`\log \mathbb P(Y^\dagger \mid \vartheta)`:
        :math:`\sum_j \log \mathcal N(y^\dagger_j; \overline{h(E^f_j)},
        \widehat{\operatorname{Cov}}(h(E^f_j)) + R)`.
    innovations : array, shape (K, p)
        :math:`y^\dagger_k - h(\bar x^f_k)` at the observation times.
    obs_times : list of int
        Model steps at which ``y`` was observed.
    """

    ensembles: Any
    next_ensembles: Any
    mean: Any
    filter_mean: Any
    loglik: Any
    innovations: Any
    obs_times: list


def enks_pass(ssm, y, N: int, rng, *, lag: int | None = None, obs_every: int = 1,
              inflation: float = 1.0) -> EnsembleSmootherPass:
    r"""An ensemble Kalman smoother pass: the E-step of EM for a nonlinear model.

    The smoother of :func:`dalib.da.enks` (the cycling driver runs
    :class:`dalib.da.smoothers.EnKS`), with observations every ``obs_every`` model steps
    (so that :math:`Q` is the noise of one model step) and the smoothed ensembles of every
    step, whose members at consecutive steps sample the pairs :math:`(x_j, x_{j+1})`.  The
    ETKF transform is computed in observation space (the SVD of the whitened observation
    anomalies), which is much cheaper than the ``N``-by-``N`` eigendecomposition when
    :math:`p \ll N`.

    Parameters
    ----------
    ssm : StateSpaceModel
        Model: ``M`` advances one model step, ``Q`` is the noise added at each step (must
        not be ``None``), ``h`` and ``R`` describe the observations.
    y : array, shape (K, p)
        Observations; ``y[k]`` observes model step ``(k + 1) * obs_every``.
    N : int
        Ensemble size.
    rng : int or dalib.random.Generator
        Randomness (initial ensemble and model noise), drawn in the order of
        :func:`dalib.da.enks`.
    lag : int or None
        Smoother lag in model steps (``None``: the whole window, cost quadratic in ``J``).
    obs_every : int
        Model steps between observations.
    inflation : float
        Multiplicative inflation of the filter's analysis anomalies.

    Returns
    -------
    EnsembleSmootherPass
    """
    N = check_int(N, "N", minimum=2)
    obs_every = check_int(obs_every, "obs_every")
    check_positive(inflation, "inflation")
    check_array(y, "y", ndim=2, last=ssm.p)
    if ssm.Q is None:
        raise ValueError("ssm.Q must be a covariance (the model noise of one step), not None")
    smoother = EnKS(ETKF(N, inflation=inflation), lag=lag, obs_every=obs_every,
                    space="observation")
    run = cycle(smoother, ssm, y, rng)
    xp = namespace(run.analysis)
    ens, nxt = smoother.smoothed(run.state)
    obs_times = [(k + 1) * obs_every for k in range(int(y.shape[0]))]
    return EnsembleSmootherPass(ens, nxt, xp.mean(ens, axis=1),
                                xp.stack(run.state.filter_means), run.state.loglik,
                                run.innovations, obs_times)


def _ensemble_second_moment(r, xp):
    r"""Mean over times of :math:`\bar r \bar r^\top + \widehat{\operatorname{Cov}}(r)`.

    ``r`` has shape (T, N, n): ``N`` members of a residual at ``T`` times.
    """
    T, N, n = r.shape
    rbar = xp.mean(r, axis=1)
    ra = xp.reshape(r - rbar[:, None, :], (T * N, n))
    return (rbar.T @ rbar + ra.T @ ra / (N - 1)) / T


def _structured(C, structure, xp):
    """A covariance argument for ``ssm.replace`` keeping the structure (cheap sampling)."""
    if structure == "diag":
        return xp.linalg.diagonal(C)
    if structure == "scalar":
        return C[0, 0]
    return C


def em_enks(ssm, y, n_iter: int = 20, *, N: int = 100, rng, estimate=("Q",),
            Q_structure="diag", R_structure="diag", lag: int | None = None,
            obs_every: int = 1, inflation: float = 1.0, accelerate: bool = False,
            common_random_numbers: bool | None = None) -> CovarianceEMResult:
    r"""EM for the error covariances of a nonlinear model with an ensemble Kalman smoother.

    The EnKS-EM of Dreano et al. (2017): the E-step is an ensemble Kalman smoother pass
    (:func:`enks_pass`) under the current :math:`(Q_\ell, R_\ell)`, and the expectations of
    the M-step are averages over its members,

    .. math::
        Q_{\ell+1} = \frac1J \sum_{j=0}^{J-1} \widehat{\mathbb E}\big[(x_{j+1} -
        \mathcal M(x_j))(x_{j+1} - \mathcal M(x_j))^\top\big],\qquad
        R_{\ell+1} = \frac1K \sum_{k} \widehat{\mathbb E}\big[(y^\dagger_k - h(x_{t_k}))
        (y^\dagger_k - h(x_{t_k}))^\top\big],

    where :math:`\widehat{\mathbb E}[r r^\top] = \bar r \bar r^\top +
    \tfrac1{N-1}\sum_n (r_n - \bar r)(r_n - \bar r)^\top` over the smoothed members
    (``next_ensembles`` and ``ensembles`` of :func:`enks_pass` for the model residuals).
    The likelihood is only approximated by the ensemble, so eq. (9) holds only
    approximately.

    **Common random numbers.**  With ``common_random_numbers=True`` every E-step draws the
    same random numbers (initial ensemble and model noise, scaled by the current
    :math:`Q`), so the EM map :math:`\vartheta \mapsto \vartheta_{\text{next}}` and the
    likelihood proxy are deterministic, smooth functions of :math:`\vartheta`.

    **Acceleration.**  When the states are poorly observed, EM converges linearly with a
    rate close to 1 (the fraction of missing information).  ``accelerate=True`` applies
    SQUAREM (Varadhan and Roland 2008) to the logarithms of the estimated variances: from
    :math:`\vartheta`, two EM steps give :math:`r = F(\vartheta) - \vartheta` and
    :math:`v = F(F(\vartheta)) - 2F(\vartheta) + \vartheta`; with
    :math:`\alpha = \min(-1, -\|r\|/\|v\|)`, the extrapolation
    :math:`\vartheta' = \vartheta - 2\alpha r + \alpha^2 v` is followed by one EM step,
    and discarded (for :math:`F(F(\vartheta))`) if its likelihood proxy is lower than
    that of :math:`F(\vartheta)`.  It needs diagonal or scalar structures and uses common
    random numbers by default.

    Parameters
    ----------
    ssm : StateSpaceModel
        Model whose ``M`` advances one model step; its ``Q`` and ``R`` are the initial
        guesses :math:`\vartheta_0`.
    y : array, shape (K, p)
        Observations, every ``obs_every`` model steps.
    n_iter : int
        Number of E-steps (smoother passes) spent on the iterations; one more pass
        evaluates the final estimates.
    N : int
        Ensemble size.
    rng : int or dalib.random.Generator
        Randomness of all E-steps.
    estimate : sequence of {"Q", "R"}
        Covariances to learn.
    Q_structure, R_structure : {"full", "diag", "scalar"}
        Structure of the estimates.
    lag, obs_every, inflation
        As in :func:`enks_pass`.
    accelerate : bool
        SQUAREM acceleration (see above).
    common_random_numbers : bool, optional
        Same random numbers in every E-step (default: ``accelerate``).

    Returns
    -------
    CovarianceEMResult
        ``Q_history``, ``R_history`` and ``loglik`` (the ensemble log-likelihood) hold the
        parameters of every E-step and of the final pass (``n_iter + 1`` entries);
        ``extras["smoothed_history"]`` (n_iter + 1, J + 1, d) the smoothing means of every
        pass, ``extras["filter_mean"]`` and ``extras["innovations"]`` those of the final
        pass, ``extras["accepted"]`` the number of accepted extrapolations.

    Examples
    --------
    >>> import dalib
    >>> from dalib.learning import em_enks
    >>> truth = dalib.setups.lorenz63(dt_obs=0.01, R=2.0, Q=0.05)  # one model step
    >>> twin = truth.simulate(300, rng=1)
    >>> fit = em_enks(truth.replace(Q=0.2), twin.y[4::5], 6, N=20, rng=2, lag=30,
    ...               obs_every=5, accelerate=True)
    >>> fit.Q.shape
    (3, 3)
    """
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    estimate = _check_estimate(estimate, ("Q", "R"))
    _check_structure(Q_structure, "Q_structure")
    _check_structure(R_structure, "R_structure")
    if ssm.Q is None:
        raise ValueError("ssm.Q must be an initial guess (a covariance), not None")
    if accelerate and ("full" in [Q_structure if "Q" in estimate else "diag",
                                  R_structure if "R" in estimate else "diag"]):
        raise ValueError("accelerate=True needs Q_structure and R_structure 'diag' or "
                         "'scalar' for the estimated covariances")
    crn = accelerate if common_random_numbers is None else bool(common_random_numbers)
    xp = namespace(ssm.m0)
    rng = default_rng(rng, xp)
    seed = int(float(rng.uniform(())) * 2**31) if crn else None
    Qs, Rs, ll, means = [], [], [], []
    last = {}

    def estep(Q, R):
        """One smoother pass at (Q, R): records it and returns the EM update."""
        current = ssm.replace(Q=Q, R=R)
        run = enks_pass(current, y, N, default_rng(seed, xp) if crn else rng, lag=lag,
                        obs_every=obs_every, inflation=inflation)
        Qs.append(current.Q.to_dense(xp))
        Rs.append(current.R.to_dense(xp))
        ll.append(run.loglik)
        means.append(run.mean)
        last["run"], last["ssm"] = run, current
        Es = run.ensembles
        Qn, Rn = Q, R
        if "Q" in estimate:
            resid = run.next_ensembles - ssm.M(Es[:-1, ...])
            Qn = _structured(_project(_ensemble_second_moment(resid, xp), Q_structure, xp),
                             Q_structure, xp)
        if "R" in estimate:
            hE = ssm.h(xp.take(Es, xp.asarray(run.obs_times), axis=0))
            Rn = _structured(_project(_ensemble_second_moment(y[:, None, :] - hE, xp),
                                      R_structure, xp), R_structure, xp)
        return run.loglik, Qn, Rn

    # estimated covariances travel as arrays of their structure, the others as given
    Q = _structured(ssm.Q.to_dense(xp), Q_structure, xp) if "Q" in estimate else ssm.Q
    R = _structured(ssm.R.to_dense(xp), R_structure, xp) if "R" in estimate else ssm.R
    accepted = 0
    if not accelerate:
        for _ in range(n_iter):
            _, Q, R = estep(Q, R)
    else:
        # parameters as one vector of log-variances: theta = (log Q, log R) (estimated ones)
        def pack(Q, R):
            parts = [xp.reshape(xp.log(xp.asarray(C)), (-1,))
                     for C, e in ((Q, "Q"), (R, "R")) if e in estimate]
            return xp.concat(parts)

        def unpack(theta):
            out, k = {"Q": Q, "R": R}, 0
            for e, C in (("Q", Q), ("R", R)):
                if e in estimate:
                    n = int(xp.reshape(xp.asarray(C), (-1,)).shape[0])
                    v = xp.exp(theta[k:k + n])
                    out[e] = v[0] if xp.asarray(C).ndim == 0 else v
                    k += n
            return out["Q"], out["R"]

        evals = 0
        while evals < n_iter:
            th0 = pack(Q, R)
            _, Q1, R1 = estep(Q, R)
            evals += 1
            if evals >= n_iter:
                Q, R = Q1, R1
                break
            ll1, Q2, R2 = estep(Q1, R1)
            evals += 1
            if evals >= n_iter:
                Q, R = Q2, R2
                break
            th1, th2 = pack(Q1, R1), pack(Q2, R2)
            r = th1 - th0
            v = th2 - 2 * th1 + th0
            nv = float(xp.sqrt(xp.sum(v * v)))
            alpha = -1.0 if nv == 0 else min(-1.0, -float(xp.sqrt(xp.sum(r * r))) / nv)
            Qx, Rx = unpack(th0 - 2 * alpha * r + alpha**2 * v)
            llx, Q3, R3 = estep(Qx, Rx)
            evals += 1
            if float(llx) >= float(ll1):
                Q, R = Q3, R3
                accepted += 1
            else:
                Q, R = Q2, R2
    estep(Q, R)
    run, final = last["run"], last["ssm"]
    return CovarianceEMResult(final, Qs[-1], Rs[-1], None, xp.stack(Qs), xp.stack(Rs), xp.stack(ll),
                    run.mean, n_iter,
                    {"smoothed_history": xp.stack(means), "filter_mean": run.filter_mean,
                     "innovations": run.innovations, "accepted": accepted})
