r"""Losses for learning an analysis step: against the truth, eq. (12), and against
observations, eq. (13), with the correction that stops (13) rewarding a fit to the noise.

An analysis step with parameters :math:`\theta` turns the forecast :math:`v_j` and the
observation :math:`y_j^\dagger = h(x_j^t) + \eta_j^\dagger`, :math:`\eta_j^\dagger \sim
\mathcal N(0, R)`, into an analysis :math:`x_j(\theta)`.  With the truth of a twin
experiment one minimises eq. (12a),

.. math::
    J_{12}(\theta) = \frac1J \sum_{j=1}^J \|x_j(\theta) - x_j^t\|^2,

and without it eq. (13a),

.. math::
    J_{13}(\theta) = \frac1J \sum_{j=1}^J \|h(x_j(\theta)) - y_j^\dagger\|^2 .

Writing :math:`h(x_j) - y_j^\dagger = (h(x_j) - h(x_j^t)) - \eta_j^\dagger`, expanding the
square and using that :math:`\eta_j^\dagger` has mean zero and is independent of the
truth gives (Mallia-Parfitt and Bröcker 2016)

.. math::
    \mathbb E\|h(x_j) - y_j^\dagger\|^2 = \mathbb E\|h(x_j) - h(x_j^t)\|^2 + \operatorname{tr}R
    - 2\,\mathbb E[h(x_j)^\top \eta_j^\dagger].

The cross term is positive when :math:`x_j` is drawn towards :math:`y_j^\dagger`: (13)
rewards fitting the noise, and a right inverse :math:`x_j = h^{-1}(y_j^\dagger)` of a
surjective :math:`h` scores :math:`J_{13} = 0`.  The forecast :math:`v_j` depends only on
earlier observations, so given the past :math:`x_j` depends on :math:`\eta_j^\dagger` only
through :math:`y_j^\dagger`, and Stein's lemma for the Gaussian :math:`\eta_j^\dagger`
turns the cross term into the *sensitivity* :math:`S_j = \partial h(x_j) / \partial
y_j^\dagger` (a p-by-p matrix):

.. math::
    \mathbb E[h(x_j)^\top \eta_j^\dagger] = \mathbb E\operatorname{tr}(S_j R).

For a linear :math:`h = H` and a feedback gain, :math:`x_j = v_j + K(y_j^\dagger - Hv_j)`,
the sensitivity is the constant :math:`S = HK`, so the cross term is :math:`2\operatorname{tr}
(HKR)` exactly (no expectation needed).  The corrected observation loss

.. math::
    J_{13}^{c}(\theta) = J_{13}(\theta) + \frac2J\sum_{j=1}^J \operatorname{tr}(S_j R)
    - \operatorname{tr}R

(:func:`corrected_observation_loss`) is an unbiased estimate of the error in observation
space :math:`\frac1J\sum_j \|h(x_j) - h(x_j^t)\|^2`, which is :math:`J_{12}` when every
component is observed (:math:`h` the identity).  For a learned, nonlinear analysis step
:math:`S_j` is a Jacobian, e.g. ``jax.jacfwd`` of the step with respect to ``y``.

All functions are array-agnostic and differentiable under JAX.  The analyses and
observations are stacks over time on axis 0 (any leading axes are averaged over).
"""

from __future__ import annotations

from .._validate import check_array
from ..backend import device, namespace
from ..covariance import as_covariance

__all__ = ["corrected_observation_loss", "observation_loss", "truth_loss"]


def _mean_sq_norm(e, xp):
    return xp.mean(xp.sum(e * e, axis=-1))


def truth_loss(x, x_true):
    r"""Eq. (12a): :math:`\frac1J\sum_j \|x_j - x_j^t\|^2`.

    Parameters
    ----------
    x, x_true : array, shape (J, d)
        Analyses and true states (any leading axes are averaged over).

    Returns
    -------
    scalar array
    """
    check_array(x, "x", min_ndim=1, finite=False)
    check_array(x_true, "x_true", min_ndim=1)
    if tuple(x.shape) != tuple(x_true.shape):
        raise ValueError(f"x and x_true must have the same shape, got {tuple(x.shape)} "
                         f"and {tuple(x_true.shape)}")
    xp = namespace(x, x_true)
    return _mean_sq_norm(x - x_true, xp)


def observation_loss(x, y, h):
    r"""Eq. (13a): :math:`\frac1J\sum_j \|h(x_j) - y_j^\dagger\|^2`.

    Parameters
    ----------
    x : array, shape (J, d)
        Analyses.
    y : array, shape (J, p)
        Observations :math:`y_j^\dagger`.
    h : callable
        Observation operator acting on a stack of states, ``h(x)`` of shape (J, p), as
        dalib's observation operators act on ensembles.

    Returns
    -------
    scalar array
    """
    check_array(x, "x", min_ndim=1, finite=False)
    check_array(y, "y", min_ndim=1)
    if not callable(h):
        raise TypeError(f"h must be a callable observation operator, got {h!r}")
    hx = h(x)
    if tuple(hx.shape) != tuple(y.shape):
        raise ValueError(f"h(x) has shape {tuple(hx.shape)} but y has shape "
                         f"{tuple(y.shape)}: h must map each row of x to a row of y")
    return _mean_sq_norm(hx - y, namespace(hx, y))


def corrected_observation_loss(x, y, h, R, sensitivity):
    r"""Eq. (13a) corrected for the fit to the noise (Mallia-Parfitt and Bröcker 2016).

    .. math::
        J_{13}^{c} = \frac1J\sum_j \|h(x_j) - y_j^\dagger\|^2
        + \frac2J\sum_j \operatorname{tr}(S_j R) - \operatorname{tr} R,

    an unbiased estimate of :math:`\frac1J\sum_j \|h(x_j) - h(x_j^t)\|^2` (eq. (12) in
    observation space; eq. (12) itself when :math:`h` is the identity).  See the module
    docstring for the derivation.

    Parameters
    ----------
    x : array, shape (J, d)
        Analyses.
    y : array, shape (J, p)
        Observations.
    h : callable
        Observation operator acting on stacks (see :func:`observation_loss`).
    R : covariance-like
        Observation error covariance (number, variances (p,), matrix (p, p) or Covariance).
    sensitivity : array, shape (p, p) or (J, p, p)
        :math:`S_j = \partial h(x_j)/\partial y_j^\dagger`; for a linear :math:`h = H` and
        a gain :math:`K`, the constant :math:`HK`.

    Returns
    -------
    scalar array
    """
    J13 = observation_loss(x, y, h)
    p = y.shape[-1]
    S = sensitivity
    check_array(S, "sensitivity", min_ndim=2, finite=False)
    if tuple(S.shape[-2:]) != (p, p):
        raise ValueError(f"sensitivity must have shape ({p}, {p}) or (J, {p}, {p}), got "
                         f"{tuple(S.shape)}")
    xp = namespace(S, y)
    Rd = as_covariance(R, "R", d=p).to_dense(xp, device=device(y))
    # tr(S R) = sum_ik S_ik R_ki
    cross = xp.mean(xp.sum(S * Rd.T, axis=(-2, -1)))
    return J13 + 2 * cross - xp.linalg.trace(Rd)
