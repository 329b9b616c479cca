"""Self-checks for the exercises of chapter 11, "Learning the analysis step"."""

from __future__ import annotations

import numpy as np

from ..learning.analysis_losses import corrected_observation_loss, observation_loss
from ..observations import Matrix
from ._framework import Wrong, as_float_array, call_answer, exercise

__all__ = ["check_right_inverse", "check_corrected_loss", "check_stationary_error"]


@exercise("ch11 right inverse")
def check_right_inverse(right_inverse):
    """Check ``right_inverse(H, y)`` -> ``(J, d)`` analyses with ``H x_j = y_j``."""
    rng = np.random.default_rng(11)
    H = rng.standard_normal((3, 5))
    y = rng.standard_normal((7, 3))
    x = as_float_array(call_answer(right_inverse, H.copy(), y.copy()), "right_inverse")
    if x.shape == (7, 3):
        raise Wrong("the analyses live in state space: expected shape (7, 5), one row of "
                    "size d = 5 per observation.")
    if x.shape != (7, 5):
        raise Wrong(f"expected shape (7, 5), got {x.shape}.")
    J13 = float(observation_loss(x, y, Matrix(H)))
    if J13 > 1e-18:
        if np.allclose(x, y @ H, atol=1e-10):
            raise Wrong("H^T y is a right inverse only when H H^T = I: solve with "
                        "(H H^T)^{-1} first.")
        raise Wrong(f"h(x_j) should equal y_j exactly, but loss (13) is {J13:.3g}.")
    want = np.linalg.solve(H @ H.T, y.T).T @ H
    if not np.allclose(x, want, atol=1e-10):
        raise Wrong("h(x) = y holds, but this is not H^T (H H^T)^{-1} y, the right "
                    "inverse of least norm (it adds a part from the null space of H).")
    return "your analyses fit the observations exactly: loss (13) is zero."


@exercise("ch11 corrected observation loss")
def check_corrected_loss(corrected_loss):
    """Check ``corrected_loss(x, y, H, K, R)`` against the library."""
    rng = np.random.default_rng(12)
    d, p, J = 4, 3, 50
    H = rng.standard_normal((p, d))
    K = 0.2 * rng.standard_normal((d, p))
    A = rng.standard_normal((p, p))
    R = A @ A.T + np.eye(p)
    x, y = rng.standard_normal((J, d)), rng.standard_normal((J, p))
    got = float(as_float_array(call_answer(corrected_loss, x.copy(), y.copy(), H.copy(),
                                           K.copy(), R.copy()), "corrected_loss"))
    want = float(corrected_observation_loss(x, y, Matrix(H), R, H @ K))
    J13 = float(observation_loss(x, y, Matrix(H)))
    cross = np.trace(H @ K @ R)
    if np.isclose(got, J13):
        raise Wrong("that is the plain loss (13): add 2 tr(HKR) - tr(R).")
    if np.isclose(got, J13 - 2 * cross + np.trace(R)):
        raise Wrong("check the signs: the cross term is added (loss (13) underestimates "
                    "the error) and tr(R) subtracted.")
    if np.isclose(got, J13 + cross - np.trace(R)):
        raise Wrong("the cross term enters twice: 2 tr(HKR).")
    if np.isclose(got, J13 / p + 2 * cross - np.trace(R)):
        raise Wrong("loss (13) sums the squares over the p components and averages over "
                    "the J times only.")
    if not np.isclose(got, want, rtol=1e-10):
        raise Wrong(f"expected {want:.6f}, got {got:.6f}.")
    return "your corrected loss matches dalib.learning.corrected_observation_loss."


@exercise("ch11 stationary error of a constant gain")
def check_stationary_error(stationary_error):
    """Check ``stationary_error(a, q, r, K)`` by simulation and against the Kalman gain."""
    a, q, r = 0.9, 0.5, 1.0
    got = float(as_float_array(call_answer(stationary_error, a, q, r, 0.4),
                               "stationary_error"))
    rng = np.random.default_rng(13)
    n, e, acc = 200_000, 0.0, 0.0
    xi = np.sqrt(q) * rng.standard_normal(n)
    eta = np.sqrt(r) * rng.standard_normal(n)
    for j in range(n):
        e = 0.6 * (a * e + xi[j]) - 0.4 * eta[j]
        acc += e * e
    mc = acc / n
    if abs(got - 0.16 * q - 0.36 * r) < 1e-9 or abs(got - 0.36 * q - 0.16 * r) < 1e-9:
        raise Wrong("the error is carried from cycle to cycle: P = (1-K)^2 (a^2 P + q) "
                    "+ K^2 r; solve this for P.")
    if not abs(got - mc) < 0.02 * mc:
        raise Wrong(f"a simulation of the error recursion gives about {mc:.3f} for "
                    f"a = {a}, q = {q}, r = {r}, K = 0.4; you have {got:.3f}.")
    # the minimiser over K is the steady-state Kalman gain
    Ks = np.linspace(0.05, 0.95, 1801)
    values = np.array([float(call_answer(stationary_error, a, q, r, k)) for k in Ks])
    Pf = q  # Riccati iteration for the forecast variance
    for _ in range(1000):
        Pf = a * a * Pf * r / (Pf + r) + q
    K_inf = Pf / (Pf + r)
    if abs(Ks[np.argmin(values)] - K_inf) > 1e-3:
        raise Wrong(f"the minimiser of your curve is {Ks[np.argmin(values)]:.3f}, but "
                    f"the steady-state Kalman gain is {K_inf:.3f}.")
    return (f"your stationary error matches the simulation, and its minimiser is the "
            f"Kalman gain {K_inf:.3f}.")
