r"""Strong-constraint 4DVar with the adjoint gradient (book section 7.9).

Over a window of ``L`` observations, 4DVar finds the initial state :math:`x_0` whose model
trajectory :math:`x_j = \mathcal M^j(x_0)` best fits the background and the observations,

.. math::
    \mathsf J(x_0) = \tfrac12 |x_0 - x^b|^2_{B^{-1}}
      + \tfrac12 \sum_{j=1}^{L} |y^\dagger_j - h(\mathcal M^j(x_0))|^2_{R^{-1}}.

Its gradient comes from one backward (adjoint) sweep with the transposed Jacobians
:math:`D\mathcal M^\top` (``M.vjp``) and :math:`Dh^\top` (``h.vjp``):

.. math::
    \lambda_{L+1} = 0,\qquad
    \lambda_j = D\mathcal M(x_j)^\top \lambda_{j+1} + Dh(x_j)^\top R^{-1}(y^\dagger_j - h(x_j)),
    \quad j = L, \dots, 1,

    \nabla \mathsf J(x_0) = B^{-1}(x_0 - x^b) - D\mathcal M(x_0)^\top \lambda_1.

The cost costs one forward run, the gradient one backward run, whatever the dimension of
:math:`x_0`: this is reverse-mode differentiation done by hand.  The minimiser is found by
L-BFGS (SciPy) in the variable :math:`v` with :math:`x_0 = x^b + S v`, :math:`B = S S^\top`,
which turns the background term into :math:`\tfrac12|v|^2` and conditions the problem well.
For a linear model and linear ``h`` the minimiser is the mean of
:math:`\mathbb P(x_0 \mid y_1, \dots, y_L)`, the Kalman (RTS) smoother at time 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int
from ..backend import asarray, namespace, to_numpy
from ..covariance import as_covariance
from ..models.integrate import trajectory
from .cycling import check_twin, progress_range
from .result import AssimilationResult, FilterDivergenceWarning, resolve_burn_in

__all__ = ["fourdvar_cost", "fourdvar_analysis", "FourDVarResult", "cycled_fourdvar"]


def _obs_cost_grad(x0, ys, M, h, R, xp):
    """Observation term of the cost and its gradient with respect to ``x0`` (adjoint sweep)."""
    xs = [x0]
    for _ in range(ys.shape[0]):
        xs.append(M(xs[-1]))
    cost = 0.0
    lam = xp.zeros_like(x0)
    for j in range(ys.shape[0], 0, -1):  # backwards: j = L, ..., 1
        misfit = ys[j - 1, :] - h(xs[j])
        z = R.inv_sqrt_matmul(misfit)
        cost = cost + 0.5 * xp.sum(z * z)
        lam = lam + h.vjp(xs[j], R.solve(misfit))
        lam = M.vjp(xs[j - 1], lam)
    return cost, -lam


def fourdvar_cost(x0, xb, ys, M, h, B, R):
    r"""The 4DVar cost :math:`\mathsf J(x_0)` and its adjoint gradient.

    Parameters
    ----------
    x0 : array, shape (d,)
        Initial state of the window.
    xb : array, shape (d,)
        Background :math:`x^b`.
    ys : array, shape (L, p)
        Observations; ``ys[j - 1]`` observes :math:`\mathcal M^j(x_0)`.
    M : callable with ``vjp``
        Forecast model over one observation interval.
    h : ObservationOperator
        Observation operator (with ``vjp``).
    B, R : covariance-like
        Background and observation error covariances.

    Returns
    -------
    cost : array, shape ()
    grad : array, shape (d,)
    """
    check_adjoints(M, h)
    check_array(x0, "x0", ndim=1)
    d = x0.shape[0]
    check_array(xb, "xb", ndim=1, last=d)
    check_array(ys, "ys", ndim=2, last=h.p)
    xp = namespace(x0, xb, ys)
    B = as_covariance(B, "B", d=d)
    R = as_covariance(R, "R", d=h.p)
    dx = x0 - xb
    cost_o, grad_o = _obs_cost_grad(x0, ys, M, h, R, xp)
    Bdx = B.solve(dx)
    return 0.5 * xp.sum(dx * Bdx) + cost_o, Bdx + grad_o


def check_adjoints(M, h):
    """Raise ``TypeError`` naming what is missing unless ``M`` and ``h`` have ``vjp``."""
    for obj, name, example in ((M, "M", "an RK4Map of a model with rhs_vjp, or a "
                                "LinearModel"), (h, "h", "an ObservationOperator")):
        if not callable(getattr(obj, "vjp", None)):
            raise TypeError(f"4DVar needs the adjoint of {name}: {name} must have a method "
                            f"vjp(x, w) ({example}); {type(obj).__name__} has none")


@dataclass(frozen=True)
class FourDVarResult:
    """Output of :func:`fourdvar_analysis`.

    Attributes
    ----------
    x0 : array (d,)
        The minimiser (analysis at the start of the window).
    trajectory : array (L + 1, d)
        Its model trajectory over the window.
    cost : float
        :math:`\\mathsf J` at the minimiser.
    iterations : int
        L-BFGS iterations.
    success : bool
        Whether SciPy reports convergence.
    message : str
        SciPy's message.
    """

    x0: Any
    trajectory: Any
    cost: float
    iterations: int
    success: bool
    message: str


def fourdvar_analysis(xb, ys, M, h, B, R, *, x0=None, gtol: float = 1e-8,
                      maxiter: int = 500) -> FourDVarResult:
    r"""Minimise the strong-constraint 4DVar cost with L-BFGS and the adjoint gradient.

    Parameters
    ----------
    xb : array, shape (d,)
        Background at the start of the window.
    ys : array, shape (L, p)
        Observations of the window.
    M, h : model and observation operator
        With ``vjp`` (adjoint) methods.
    B, R : covariance-like
        Background and observation error covariances.
    x0 : array, shape (d,), optional
        First guess (default ``xb``).
    gtol : float
        Stopping tolerance on the largest gradient component (in the whitened variable).
    maxiter : int
        Most L-BFGS iterations.

    Returns
    -------
    FourDVarResult
    """
    from scipy.optimize import minimize

    check_adjoints(M, h)
    check_array(xb, "xb", ndim=1)
    d = xb.shape[0]
    check_array(ys, "ys", ndim=2, last=h.p)
    xp = namespace(xb, ys)
    B = as_covariance(B, "B", d=d)
    R = as_covariance(R, "R", d=h.p)
    maxiter = check_int(maxiter, "maxiter")

    def fun(v_np):
        v = asarray(v_np, xp)
        x0_ = xb + B.sqrt_matmul(v)
        cost_o, grad_o = _obs_cost_grad(x0_, ys, M, h, R, xp)
        cost = 0.5 * xp.sum(v * v) + cost_o
        grad = v + B.sqrt_T_matmul(grad_o)
        return float(cost), to_numpy(grad).astype("float64")

    if x0 is None:
        v0 = xp.zeros((d,), dtype=xb.dtype)
    else:
        check_array(x0, "x0", ndim=1, last=d)
        v0 = B.inv_sqrt_matmul(x0 - xb)  # S v0 = x0 - xb
    out = minimize(fun, to_numpy(v0), jac=True, method="L-BFGS-B",
                   options={"maxiter": maxiter, "gtol": gtol, "ftol": 1e-15})
    x_opt = xb + B.sqrt_matmul(asarray(out.x, xp))
    return FourDVarResult(
        x0=x_opt,
        trajectory=trajectory(M, x_opt, ys.shape[0]),
        cost=float(out.fun),
        iterations=int(out.nit),
        success=bool(out.success),
        message=str(out.message),
    )


def cycled_fourdvar(twin, B, window: int, *, burn_in: int | None = None, gtol: float = 1e-6,
                    maxiter: int = 200, progress: bool | None = None) -> AssimilationResult:
    r"""4DVar over consecutive windows of ``window`` observations.

    Window ``k`` starts at time :math:`t_k = kL`, uses the observations of times
    :math:`t_k + 1, \dots, t_k + L` and the background :math:`x^b_k`; the next background is
    the analysed trajectory at the window's end, :math:`x^b_{k+1} = \mathcal M^L(x_0^{a})`
    (the first background is ``m0``).

    The result's ``analysis[j]`` is the analysed trajectory at time ``j`` within its window
    (at the window's end this is a filter estimate, earlier it also uses later observations
    of the window); ``forecast[j]`` is the background trajectory.  There is no spread.

    Parameters
    ----------
    twin : TwinExperiment
        Truth and observations; ``twin.ssm`` needs ``M.vjp`` and ``h.vjp``.
    B : covariance-like
        Static background covariance.
    window : int
        Observations per window :math:`L`.
    burn_in, progress
        As in :func:`~dalib.da.cycling.assimilate`.
    gtol, maxiter
        Passed to :func:`fourdvar_analysis`.

    Returns
    -------
    AssimilationResult
        With ``extras["converged"]``, one bool per window (whether L-BFGS reported
        convergence), and ``extras["iterations"]``, its iterations per window.

    Warns
    -----
    FilterDivergenceWarning
        If the optimiser stopped short in some window (e.g. at ``maxiter``): the analysis
        of that window is not the minimiser.  Also if the run lost the truth
        (``result.diverged``).
    """
    check_twin(twin)
    ssm = twin.ssm
    check_adjoints(ssm.M, ssm.h)
    window = check_int(window, "window")
    J = twin.J
    xp = namespace(ssm.m0)
    B = as_covariance(B, "B", d=ssm.d)
    xb = ssm.m0
    analysis, forecast = [None] * (J + 1), [None] * (J + 1)
    converged, iterations = [], []
    n_windows = -(-J // window)
    for k in progress_range(n_windows, progress, "4DVar"):
        t0 = k * window
        L = min(window, J - t0)
        res = fourdvar_analysis(xb, twin.y[t0:t0 + L, :], ssm.M, ssm.h, B, ssm.R,
                                gtol=gtol, maxiter=maxiter)
        converged.append(res.success)
        iterations.append(res.iterations)
        background = trajectory(ssm.M, xb, L)
        if k == 0:
            analysis[0], forecast[0] = res.trajectory[0, :], xb
        for i in range(1, L + 1):
            analysis[t0 + i] = res.trajectory[i, :]
            forecast[t0 + i] = background[i, :]
        xb = res.trajectory[L, :]
    forecast = xp.stack(forecast)
    burn_in = resolve_burn_in(burn_in, J)
    result = AssimilationResult(
        method=f"cycled 4DVar(window={window})",
        twin=twin,
        analysis=xp.stack(analysis),
        forecast=forecast,
        innovations=twin.y - ssm.h(forecast[1:, :]),
        burn_in=burn_in,
        extras={"converged": tuple(converged), "iterations": tuple(iterations)},
    )
    failed = [k for k, ok in enumerate(converged) if not ok]
    if failed:
        warnings.warn(f"4DVar did not converge in {len(failed)} of {n_windows} windows "
                      f"(first: window {failed[0]}, after {iterations[failed[0]]} "
                      f"iterations; maxiter={maxiter}): raise maxiter or loosen gtol",
                      FilterDivergenceWarning, stacklevel=2)
    result.warn_if_diverged()
    return result
