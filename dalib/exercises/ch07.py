"""Self-checks for the exercises of chapter 7, "Learning the forecast model"."""

from __future__ import annotations

import numpy as np

from ..learning.likelihood import ensemble_log_evidence
from ..models import Lorenz96, RK4Map
from ..observations import Matrix
from ._framework import Wrong, as_float_array, call_answer, exercise

__all__ = ["check_log_evidence", "check_ar1_mstep", "check_augmented_forecast"]


@exercise("ch07 log evidence")
def check_log_evidence(log_evidence):
    """Check ``log_evidence(E, y, H, R)`` against the ensemble-space formula."""
    rng = np.random.default_rng(7)
    for N, d, p in ((8, 5, 3), (4, 6, 5)):
        E = 1.0 + 2.0 * rng.standard_normal((N, d))
        H = rng.standard_normal((p, d))
        y = rng.standard_normal(p)
        G = rng.standard_normal((p, p))
        R = G @ G.T + np.eye(p)
        got = float(as_float_array(call_answer(log_evidence, E, y, H, R), "log_evidence"))
        want = float(ensemble_log_evidence(E, y, Matrix(H), R))
        if not np.isfinite(got):
            raise Wrong("the log density is not finite.")
        if np.isclose(got, want + 0.5 * p * np.log(2 * np.pi), rtol=1e-8):
            raise Wrong("the normalising constant is missing: subtract (p/2) log(2 pi).")
        Y = E @ H.T - (E @ H.T).mean(0)
        if np.isclose(got, _gauss(y, (E @ H.T).mean(0), Y.T @ Y / N + R), rtol=1e-8):
            raise Wrong("the sample covariance divides by N - 1, not N.")
        if not np.isclose(got, want, rtol=1e-8):
            raise Wrong(f"log N(y; ybar, S) should be {want:.4f} for this case, got "
                        f"{got:.4f}. Use the mean of H E_n and S = Y^T Y / (N - 1) + R.")
    return "your Gaussian log evidence agrees with dalib's ensemble-space version."


def _gauss(y, m, S):
    r = y - m
    sign, logdet = np.linalg.slogdet(S)
    return -0.5 * (r @ np.linalg.solve(S, r) + logdet + len(y) * np.log(2 * np.pi))


@exercise("ch07 EM for an AR(1) model")
def check_ar1_mstep(mstep):
    """Check ``mstep(X)`` -> ``(a, q)`` for smoother samples ``X`` of shape (N, J + 1)."""
    rng = np.random.default_rng(11)
    N, J = 30, 200
    X = np.zeros((N, J + 1))
    X[:, 0] = rng.standard_normal(N)
    for j in range(J):
        X[:, j + 1] = 0.8 * X[:, j] + 0.5 * rng.standard_normal(N)
    out = call_answer(mstep, X)
    if not isinstance(out, tuple) or len(out) != 2:
        raise Wrong("mstep should return a pair (a, q).")
    a, q = (float(as_float_array(v, "a and q")) for v in out)
    x0, x1 = X[:, :-1].ravel(), X[:, 1:].ravel()
    a_star = float(x0 @ x1 / (x0 @ x0))
    q_star = float(np.mean((x1 - a_star * x0) ** 2))
    mean0, mean1 = X[:, :-1].mean(0), X[:, 1:].mean(0)
    a_mean = float(mean0 @ mean1 / (mean0 @ mean0))
    if np.isclose(a, a_mean, rtol=1e-6) and not np.isclose(a, a_star, rtol=1e-6):
        raise Wrong("that is the regression of the ensemble means: average the squared "
                    "residuals over the members instead (the expectation in eq. (7)).")
    if not np.isclose(a, a_star, rtol=1e-6):
        raise Wrong(f"a = {a:.4f}; maximising J(a, q) over a gives sum x_j x_(j+1) / "
                    "sum x_j^2, summed over all members and times.")
    if np.isclose(q, q_star * len(x0) / (len(x0) - 1), rtol=1e-9) or not np.isclose(
        q, q_star, rtol=1e-6
    ):
        raise Wrong(f"q = {q:.4f}; the maximiser is the mean of the squared residuals "
                    "x_(j+1) - a x_j (divide by their number).")
    return f"a = {a_star:.3f} and q = {q_star:.3f} maximise J(a, q)."


@exercise("ch07 augmented forecast")
def check_augmented_forecast(augmented_forecast):
    """Check ``augmented_forecast(Z)`` for Lorenz-96 (d = 10) with the forcing appended."""
    rng = np.random.default_rng(5)
    N, d = 6, 10
    X = 2.0 + 3.0 * rng.standard_normal((N, d))
    F = rng.uniform(6.0, 10.0, N)
    Z = np.concatenate([X, F[:, None]], axis=1)
    out = as_float_array(call_answer(augmented_forecast, Z.copy()), "augmented_forecast")
    if out.shape != (N, d + 1):
        raise Wrong(f"the result should have the shape of Z, {(N, d + 1)}, got {out.shape}.")
    if not np.allclose(out[:, -1], F, rtol=0, atol=0):
        raise Wrong("the parameter must persist: the last column should be unchanged.")
    want = np.stack([RK4Map(Lorenz96(d, float(F[n])), 0.05)(X[n]) for n in range(N)])
    same_F = RK4Map(Lorenz96(d, float(F.mean())), 0.05)(X)
    if np.allclose(out[:, :d], same_F, rtol=1e-10):
        raise Wrong("every member used the same forcing: member n must be advanced with "
                    "its own F, Z[n, -1].")
    if not np.allclose(out[:, :d], want, rtol=1e-10):
        raise Wrong("the state part is not one RK4 step (dt = 0.05) of Lorenz-96 with "
                    "each member's forcing.")
    return "each member moves with its own forcing, which persists."
