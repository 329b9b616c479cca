r"""Expectation-maximisation for the forecast model, with an ensemble smoother (eqs. (7)-(9)).

With the model of eq. (5), :math:`x_{j+1} = \mathcal M_\vartheta(x_j) + \xi_j`,
:math:`\xi_j \sim \N(0, qI)`, the complete-data log-likelihood is, up to terms free of
:math:`(\vartheta, q)`,

.. math::
    \log\P(X, \Ydag \mid \vartheta, q) = -\frac{1}{2q}\sum_{j=0}^{J-1}
    \big\|x_{j+1} - \mathcal M_\vartheta(x_j)\big\|^2 - \frac{Jd}{2}\log q + \text{const}.

**E-step** (eq. (7)): its expectation under the smoothing distribution
:math:`\P(X\mid\Ydag,\vartheta_\ell, q_\ell)` is approximated with the ensemble Kalman
smoother (:func:`dalib.da.enks`).  Its members are joint samples of the trajectory, so the
expectation becomes an average over the members :math:`x^{(n)}_{0:J}`,

.. math::
    J_\ell(\vartheta, q) \approx -\frac{1}{2q}\,\frac1N\sum_{n=1}^N\sum_{j=0}^{J-1}
    \big\|x^{(n)}_{j+1} - \mathcal M_\vartheta(x^{(n)}_j)\big\|^2 - \frac{Jd}{2}\log q .

**M-step** (eq. (8)): the maximiser in :math:`\vartheta` is a nonlinear least-squares
problem over all member pairs, solved by Gauss-Newton steps
(:func:`least_squares_mstep`); then :math:`q` is the mean squared residual.

Plugging in the smoother *mean* instead of the members (``use_ensemble=False``) drops the
smoother's uncertainty: the regression then fits :math:`\mathbb E[x_{j+1}]` against
:math:`\mathcal M_\vartheta(\mathbb E[x_j])`, which is not
:math:`\mathbb E\|x_{j+1} - \mathcal M_\vartheta(x_j)\|^2`.  This follows Bocquet et al.
(2020) and Brajard et al. (2020), who alternate an ensemble DA step and a training step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_positive, check_same_shape
from ..backend import namespace
from ..da.enkf import ETKF
from ..da.smoothers import enks
from ..ssm import TwinExperiment

__all__ = ["least_squares_mstep", "expectation_maximization", "ModelEMResult"]


def least_squares_mstep(family, theta, X0, X1, *, iterations: int = 3, ridge: float = 0.0,
                        chunk: int = 2048):
    r"""Fit :math:`\vartheta` to pairs by Gauss-Newton: :math:`\min \sum_i \|X_{1,i} - \mathcal M_\vartheta(X_{0,i})\|^2`.

    Each step linearises :math:`\mathcal M_\vartheta` in :math:`\vartheta` with the
    sensitivity :math:`S_i = \partial\mathcal M_\vartheta(X_{0,i})/\partial\vartheta`
    (``family.map_and_sensitivity``) and solves the normal equations

    .. math::
        \Big(\sum_i S_i S_i^\top + \lambda I\Big)\,\delta = \sum_i S_i\, r_i,\qquad
        r_i = X_{1,i} - \mathcal M_\vartheta(X_{0,i}),\qquad \vartheta \leftarrow
        \vartheta + \delta .

    For a model linear in :math:`\vartheta` (e.g. :class:`~dalib.learning.CorrectedModel`)
    one step gives the exact least-squares solution.

    Parameters
    ----------
    family : object
        A model family with ``K`` and ``map_and_sensitivity(theta, x)`` returning
        :math:`\mathcal M_\vartheta(x)` ``(n, d)`` and :math:`S` ``(n, K, d)``, such as
        :class:`~dalib.learning.DictionaryModel`.
    theta : array, shape (K,)
        Starting coefficients.
    X0, X1 : array, shape (n, d)
        Inputs and targets.
    iterations : int
        Gauss-Newton steps.
    ridge : float
        Tikhonov regularisation :math:`\lambda \ge 0`.
    chunk : int
        Number of pairs processed at once (bounds the memory, ``chunk * K * d`` numbers).

    Returns
    -------
    theta : array, shape (K,)
        Fitted coefficients.
    q : array, shape ()
        Mean squared residual per component at the fitted coefficients, the M-step
        estimate of :math:`q` in :math:`Q = qI`.
    """
    check_array(theta, "theta", ndim=1, last=family.K)
    check_array(X0, "X0", ndim=2)
    check_array(X1, "X1", ndim=2)
    check_same_shape(X0, "X0", X1, "X1")
    iterations = check_int(iterations, "iterations", minimum=0)
    chunk = check_int(chunk, "chunk")
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    xp = namespace(theta, X0, X1)
    n, K = int(X0.shape[0]), family.K
    eye = xp.eye(K, dtype=X0.dtype)
    for _ in range(iterations):
        A = ridge * eye
        b = xp.zeros((K,), dtype=X0.dtype)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)  # array API: slices must stay in bounds
            x0, x1 = X0[start:stop, :], X1[start:stop, :]
            fx, S = family.map_and_sensitivity(theta, x0)
            r = x1 - fx
            A = A + xp.tensordot(S, S, axes=([0, 2], [0, 2]))
            b = b + xp.tensordot(S, r, axes=([0, 2], [0, 1]))
        theta = theta + xp.linalg.solve(A, b[:, None])[:, 0]
    sq = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        r = X1[start:stop, :] - family(theta)(X0[start:stop, :])
        sq = sq + xp.sum(r * r)
    return theta, sq / (n * X0.shape[1])


@dataclass(frozen=True)
class ModelEMResult:
    r"""Output of :func:`em`.

    Attributes
    ----------
    theta : array, shape (K,)
        The last iterate :math:`\vartheta_L`.
    q : float
        The last model-error variance :math:`q_L`.
    thetas : list of arrays
        :math:`\vartheta_0, \dots, \vartheta_L`.
    qs : list of float
        :math:`q_0, \dots, q_L`.
    rmse : list of float
        RMSE of the smoother mean against ``twin.x`` in each E-step.
    """

    theta: Any
    q: float
    thetas: list
    qs: list
    rmse: list


def expectation_maximization(twin, family, theta0, q0: float, *, N: int, iterations: int,
                             rng, inflation: float = 1.0, lag: int | None = 10,
                             use_ensemble: bool = True, members: int | None = None,
                             gauss_newton: int = 1, ridge: float = 0.0,
                             learn_q: bool = True) -> ModelEMResult:
    r"""Expectation-maximisation of :math:`(\vartheta, q)` with an ensemble smoother E-step.

    Iterates (lecture, eqs. (7)-(8)):

    1. E-step: run :func:`dalib.da.enks` (ETKF-based ensemble Kalman smoother) with the
       model :math:`\mathcal M_{\vartheta_\ell}` and model noise :math:`Q = q_\ell I`;
       keep the smoothed ensembles :math:`x^{(n)}_{0:J}`.
    2. M-step: :func:`least_squares_mstep` on the member pairs
       :math:`(x^{(n)}_j, x^{(n)}_{j+1})` (or on the smoother means, with
       ``use_ensemble=False``) gives :math:`\vartheta_{\ell+1}` and :math:`q_{\ell+1}`.

    Parameters
    ----------
    twin : TwinExperiment
        Observations and ``ssm`` (``h, R, m0, C0``); ``twin.x`` is used only for the
        reported RMSE.
    family : object
        Model family with ``K``, ``__call__(theta)`` (the forecast map) and
        ``map_and_sensitivity``, e.g. :class:`~dalib.learning.DictionaryModel`.
    theta0 : array, shape (K,)
        Initial coefficients :math:`\vartheta_0`.
    q0 : float
        Initial model-error variance :math:`q_0 > 0` (it keeps the smoother's ensemble
        spread while the model is still wrong).
    N : int
        Ensemble size.
    iterations : int
        Number of EM iterations :math:`L`.
    rng : int or dalib.random.Generator
        Randomness of the smoother.
    inflation : float
        Multiplicative inflation of the ETKF.
    lag : int or None
        Smoother lag (``None``: the whole window, cost quadratic in ``J``).
    use_ensemble : bool
        Regress on the smoother's member pairs (the Monte Carlo E-step) or on its mean.
    members : int, optional
        Use only the first ``members`` members in the M-step (the members are
        exchangeable, so this is a smaller Monte Carlo sample of the same expectation,
        and a cheaper M-step).
    gauss_newton : int
        Gauss-Newton steps per M-step.  One step already increases :math:`J_\ell` for
        a nearly linear problem, which is all the monotonicity (9) needs (a *generalised*
        EM).
    ridge : float
        Tikhonov regularisation of the M-step.
    learn_q : bool
        Update :math:`q` in the M-step (otherwise it stays :math:`q_0`).

    Returns
    -------
    ModelEMResult
    """
    from ..random import default_rng

    if not isinstance(twin, TwinExperiment):
        raise TypeError(f"twin must be a TwinExperiment, got {type(twin).__name__}")
    check_positive(q0, "q0")
    iterations = check_int(iterations, "iterations", minimum=0)
    N = check_int(N, "N", minimum=2)
    if members is not None:
        members = check_int(members, "members")
        if members > N:
            raise ValueError(f"members must be at most N = {N}, got {members}")
    xp = namespace(twin.y)
    rng = default_rng(rng, xp)
    check_array(theta0, "theta0", ndim=1, last=family.K)
    theta, q = theta0, float(q0)
    thetas, qs, rmses = [theta], [q], []
    d = twin.ssm.d
    for _ in range(iterations):
        ssm = twin.ssm.replace(M=family(theta), Q=q)
        result = enks(ETKF(N, inflation=inflation), TwinExperiment(ssm, twin.t, twin.x, twin.y),
                      rng, lag=lag, store_ensembles=use_ensemble, burn_in=0)
        rmses.append(result.rmse(burn_in=0))
        if use_ensemble:
            E = result.ensembles_a  # (J + 1, N, d), joint samples of the trajectory
            if members is not None:
                E = E[:, :members, :]
            X0 = xp.reshape(E[:-1, ...], (-1, d))
            X1 = xp.reshape(E[1:, ...], (-1, d))
        else:
            X0, X1 = result.analysis[:-1, ...], result.analysis[1:, ...]
        theta, q_new = least_squares_mstep(family, theta, X0, X1, iterations=gauss_newton,
                                           ridge=ridge)
        if learn_q:
            q = max(float(q_new), 1e-8)
        thetas.append(theta)
        qs.append(q)
    return ModelEMResult(theta, q, thetas, qs, rmses)
