"""Self-checks for the exercises of chapter 9, "Correcting model error with analysis
increments"."""

from __future__ import annotations

import numpy as np

from ..learning.increments import IncrementData, fit_linear
from ..models import Lorenz96, RK4Map
from ._framework import Wrong, as_float_array, call_answer, exercise

__all__ = ["check_leith", "check_corrected_forecast", "check_mean_increment"]


@exercise("ch09 Leith's linear correction")
def check_leith(leith):
    """Check ``leith(xf, inc)`` -> ``(L, b, xbar)`` against :func:`fit_linear`."""
    rng = np.random.default_rng(9)
    n, d = 300, 5
    xf = 2.0 + 3.0 * rng.standard_normal((n, d))
    inc = 0.1 - 0.05 * xf + 0.3 * rng.standard_normal((n, d))
    out = call_answer(leith, xf.copy(), inc.copy())
    if not isinstance(out, tuple) or len(out) != 3:
        raise Wrong("leith should return a triple (L, b, xbar).")
    L, b, xbar = (as_float_array(v, "L, b and xbar") for v in out)
    want = fit_linear(IncrementData(xf, inc, 0.05))
    if L.shape != (d, d) or b.shape != (d,) or xbar.shape != (d,):
        raise Wrong(f"expected shapes ({d}, {d}), ({d},) and ({d},), got {L.shape}, "
                    f"{b.shape} and {xbar.shape}.")
    if not np.allclose(xbar, want.xbar, atol=1e-10):
        raise Wrong("xbar is the mean forecast, the mean of xf over the rows.")
    if not np.allclose(b, want.b, atol=1e-10):
        raise Wrong("b is the mean increment, the mean of inc over the rows.")
    if np.allclose(L, want.L.T, atol=1e-8):
        raise Wrong("L is transposed: the increment is b + L (x - xbar), so L maps "
                    "forecast anomalies (columns) to increment anomalies (rows).")
    if np.allclose(L, (inc.T @ xf / n) @ np.linalg.inv(xf.T @ xf / n), atol=1e-6):
        raise Wrong("subtract the means first: use the anomalies xf - xbar and inc - b.")
    if not np.allclose(L, want.L, atol=1e-8):
        raise Wrong("L should be C_dx C_xx^{-1} with C_dx = D'^T X' / n and "
                    "C_xx = X'^T X' / n from the anomalies X' and D'.")
    return "your regression matrix, mean increment and mean forecast match fit_linear."


@exercise("ch09 corrected forecast")
def check_corrected_forecast(corrected_forecast):
    """Check ``corrected_forecast(M, correction, x)`` on Lorenz-96 with a linear correction."""
    rng = np.random.default_rng(10)
    d = 8
    M = RK4Map(Lorenz96(d, 8.0), 0.01, 5)
    A = 0.05 * rng.standard_normal((d, d))

    def correction(x):
        return 0.1 + x @ A.T

    x = 3.0 * rng.standard_normal((4, d))
    got = as_float_array(call_answer(corrected_forecast, M, correction, x.copy()),
                         "corrected_forecast")
    xf = M(x)
    want = xf + correction(xf)
    if got.shape != want.shape:
        raise Wrong(f"expected shape {want.shape}, got {got.shape}.")
    if np.allclose(got, xf + correction(x)):
        raise Wrong("the correction is a function of the forecast x^f = M(x), "
                    "not of the initial state x.")
    if np.allclose(got, M(x + correction(x))):
        raise Wrong("the correction is added after the forecast, not before it.")
    if not np.allclose(got, want, rtol=1e-12):
        raise Wrong("the corrected forecast is x^f + correction(x^f) with x^f = M(x).")
    return "your corrected forecast adds the predicted increment to the model's forecast."


@exercise("ch09 mean increment of a biased linear model")
def check_mean_increment(mean_increment):
    """Check ``mean_increment(A, K, b)`` against the stationary bias recursion."""
    for A, K, b in ((1.0, 0.4, 0.2), (0.9, 0.5, -0.3), (1.1, 0.6, 0.1), (0.5, 0.2, 1.0)):
        got = float(as_float_array(call_answer(mean_increment, A, K, b), "mean_increment"))
        beta_f = 0.0
        for _ in range(2000):  # the forecast bias settles to its fixed point
            beta_f = A * (1 - K) * beta_f - b
        want = -K * beta_f
        if np.isclose(got, b) and not np.isclose(want, b):
            raise Wrong(f"for A = {A} the mean increment is not the bias b per window: "
                        "the analysis bias is propagated by A before the next forecast.")
        if np.isclose(got, -want):
            raise Wrong("check the sign: the increment points from the forecast towards "
                        "the truth.")
        if not np.isclose(got, want, rtol=1e-8):
            raise Wrong(f"for A = {A}, K = {K}, b = {b} the stationary mean increment is "
                        f"{want:.4f}, got {got:.4f}.")
    return "your stationary mean increment matches the bias recursion."
