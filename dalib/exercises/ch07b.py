"""Self-checks for the exercises of chapter 7b, "Learning error covariances"."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ._framework import Wrong, as_float_array, call_answer, exercise

__all__ = [
    "check_m_step_R",
    "check_desroziers_R",
    "white_noise_model",
    "check_identifiability",
]


def _m_step_data(seed=0, J=12, d=3, p=2):
    gen = np.random.default_rng(seed)
    H = gen.standard_normal((p, d))
    m_s = gen.standard_normal((J, d))
    B = gen.standard_normal((J, d, d))
    C_s = B @ np.swapaxes(B, 1, 2) / d + 0.1 * np.eye(d)
    y = m_s @ H.T + gen.standard_normal((J, p))
    return y, H, m_s, C_s


def _m_step_R(y, H, m_s, C_s):
    r = y - m_s @ H.T
    return (r.T @ r + np.einsum("ij,tjk,lk->il", H, C_s, H)) / y.shape[0]


@exercise("ch07b M-step for R")
def check_m_step_R(m_step_R):
    """Check ``m_step_R(y, H, m_s, C_s)`` against the closed-form M-step for R."""
    for seed in (0, 1):
        y, H, m_s, C_s = _m_step_data(seed)
        got = as_float_array(call_answer(m_step_R, y, H, m_s, C_s), "m_step_R(...)")
        want = _m_step_R(y, H, m_s, C_s)
        if got.shape != want.shape:
            raise Wrong(f"R should have shape {want.shape} (p by p), got {got.shape}.")
        if np.allclose(got, want, rtol=1e-8):
            continue
        r = y - m_s @ H.T
        if np.allclose(got, r.T @ r / y.shape[0], rtol=1e-8):
            raise Wrong("you averaged the squared residuals of the smoothing *means* only: "
                        "E[(y - Hx)(y - Hx)^T] also contains H C_s H^T, the smoother's "
                        "uncertainty about x_j.")
        if np.allclose(got, want * y.shape[0], rtol=1e-8):
            raise Wrong("this is the sum over times: divide by J, the number of observations.")
        raise Wrong("R_{l+1} = (1/J) sum_j [(y_j - H m_j)(y_j - H m_j)^T + H C_j H^T]; check "
                    "the transposes and that C_s[j] is used with its own time j.")
    return "this is the M-step for R, eq. (8) for the observation error covariance."


def _innovations(seed=3, K=400, p=3):
    gen = np.random.default_rng(seed)
    d_ob = gen.standard_normal((K, p)) * np.array([1.0, 2.0, 0.5])
    gain = np.array([[0.4, 0.1, 0.0], [0.0, 0.6, 0.1], [0.05, 0.0, 0.3]])
    d_oa = d_ob - d_ob @ gain.T
    return d_ob, d_oa


@exercise("ch07b Desroziers")
def check_desroziers_R(desroziers_R):
    """Check ``desroziers_R(d_ob, d_oa)`` against the symmetrised E[d^{o-a} (d^{o-b})^T]."""
    d_ob, d_oa = _innovations()
    got = as_float_array(call_answer(desroziers_R, d_ob, d_oa), "desroziers_R(...)")
    K = d_ob.shape[0]
    S = d_oa.T @ d_ob / K
    want = (S + S.T) / 2
    if got.shape != want.shape:
        raise Wrong(f"the estimate should be p by p, shape {want.shape}, got {got.shape}.")
    if np.allclose(got, want, rtol=1e-8):
        return "R is estimated by the mean of d^{o-a} (d^{o-b})^T (Desroziers et al. 2005)."
    if np.allclose(got, S, rtol=1e-8) or np.allclose(got, S.T, rtol=1e-8):
        raise Wrong("right statistic, but symmetrise it, (S + S^T) / 2: a covariance is "
                    "symmetric and the sample product is not.")
    if np.allclose(got, d_ob.T @ d_ob / K, rtol=1e-8):
        raise Wrong("E[d^{o-b} (d^{o-b})^T] estimates H B H^T + R, not R: pair the "
                    "analysis residual d^{o-a} with d^{o-b}.")
    d_ab = d_ob - d_oa
    Sab = d_ab.T @ d_ob / K
    if np.allclose(got, (Sab + Sab.T) / 2, rtol=1e-8):
        raise Wrong("E[d^{a-b} (d^{o-b})^T] estimates H B H^T; R needs d^{o-a}.")
    if np.allclose(got, want * K, rtol=1e-8):
        raise Wrong("divide the sum by the number of times K.")
    raise Wrong("average the outer products d^{o-a}_k (d^{o-b}_k)^T over the K times, then "
                "symmetrise.")


def white_noise_model(J: int = 400, seed: int = 7):
    """The exercise's model without memory (A = 0) and its observations ``y`` (J, 1).

    Returns ``(ssm, y)``: :math:`x_{j+1} = \\xi_j`, :math:`y_j = x_j + \\eta_j` with true
    :math:`q = 0.6`, :math:`r = 0.4`; ``ssm`` holds a first guess :math:`q = r = 1`.
    """
    from ..models import LinearModel
    from ..observations import Identity
    from ..ssm import StateSpaceModel

    truth = StateSpaceModel(M=LinearModel(np.zeros((1, 1))), h=Identity(1), R=0.4,
                            m0=np.zeros(1), C0=1.0, Q=0.6)
    y = truth.simulate(J, rng=seed).y
    return truth.replace(Q=1.0, R=1.0), y


@exercise("ch07b identifiability")
def check_identifiability(pairs):
    """Check two EM limits ``[(q1, r1), (q2, r2)]`` on :func:`white_noise_model`."""
    try:
        (q1, r1), (q2, r2) = [(float(q), float(r)) for q, r in pairs]
    except (TypeError, ValueError):
        raise Wrong("give a list of two pairs, [(q1, r1), (q2, r2)].") from None
    _, y = white_noise_model()
    s = float(np.mean(to_numpy(y) ** 2))
    for q, r in ((q1, r1), (q2, r2)):
        if q <= 0 or r <= 0:
            raise Wrong("variances must be positive: read q and r from fit.Q and fit.R.")
        if not np.isclose(q + r, s, rtol=0.02):
            raise Wrong(f"q + r = {q + r:.3f}, but the observations have mean square "
                        f"{s:.3f}: did EM run until it stopped moving (n_iter of 5 is enough)?")
    if np.isclose(q1, q2, rtol=0.05):
        raise Wrong("both runs end at the same point: start them from different guesses, "
                    "e.g. (q, r) = (1, 0.1) and (0.1, 1).")
    return (f"both runs fit the data equally well (q + r = {s:.2f}), yet disagree on q: "
            "without memory in the model, the data cannot tell model error from "
            "observation error.")
