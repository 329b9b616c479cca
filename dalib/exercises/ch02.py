"""Self-checks for the exercises of chapter 2, "Kalman filter, 3DVar and the extended KF"."""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import setups
from ..backend import to_numpy
from ..da import (
    FilterDivergenceError,
    ThreeDVar,
    assimilate,
    kf_analysis,
    steady_state_covariance,
    var3d_gain,
)
from ._framework import Unfinished, Wrong, as_float_array, call_answer, exercise, quietly

__all__ = ["check_kf_analysis", "check_steady_state_gain", "check_3dvar_scale"]


def _spd(rng, n, scale=1.0):
    G = rng.standard_normal((n, n))
    return scale * (G @ G.T / n + np.eye(n))


def _analysis_cases():
    rng = np.random.default_rng(20)
    cases = []
    for d, p in ((4, 2), (3, 3), (5, 1)):
        m, y = rng.standard_normal(d), rng.standard_normal(p)
        C, R = _spd(rng, d, 2.0), _spd(rng, p, 0.5)
        H = rng.standard_normal((p, d))
        cases.append((m, C, y, H, R))
    return cases


@exercise("ch02 Kalman analysis")
def check_kf_analysis(kf_update):
    """Check ``kf_update(m, C, y, H, R) -> (m_a, C_a)`` against :func:`dalib.da.kf_analysis`."""
    for m, C, y, H, R in _analysis_cases():
        d, p = H.shape[1], H.shape[0]
        out = call_answer(kf_update, m, C, y, H, R)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong("kf_update should return a pair (m_a, C_a).")
        m_a = as_float_array(out[0], "m_a")
        C_a = as_float_array(out[1], "C_a")
        if m_a.shape != (d,):
            raise Wrong(f"m_a should have shape ({d},) like m, got {m_a.shape} (d={d}, p={p}).")
        if C_a.shape != (d, d):
            raise Wrong(f"C_a should have shape ({d}, {d}) like C, got {C_a.shape}.")
        want_m, want_C, _ = kf_analysis(m, C, y, H, R)
        S = H @ C @ H.T + R
        K = C @ H.T @ np.linalg.inv(S)
        if not np.allclose(m_a, want_m, rtol=1e-8, atol=1e-10):
            if np.allclose(m_a, m + K @ (H @ m - y), rtol=1e-8, atol=1e-10):
                raise Wrong("the mean moves away from the observation: the innovation is "
                            "y - H m, not H m - y.")
            if np.allclose(m_a, m + C @ H.T @ (y - H @ m), rtol=1e-8, atol=1e-10):
                raise Wrong("the gain lacks the inverse of S = H C H^T + R: "
                            "K = C H^T S^{-1} (use np.linalg.solve).")
            raise Wrong(f"m_a differs from m + K (y - H m) with K = C H^T (H C H^T + R)^(-1) "
                        f"(case d={d}, p={p}).")
        if not np.allclose(C_a, want_C, rtol=1e-8, atol=1e-10):
            if np.allclose(C_a, C, rtol=1e-8):
                raise Wrong("C_a equals the forecast covariance: the analysis should shrink it, "
                            "C_a = (I - K H) C.")
            if np.allclose(C_a, C + K @ H @ C, rtol=1e-8, atol=1e-10):
                raise Wrong("the covariance grows: it is C_a = (I - K H) C, with a minus sign.")
            raise Wrong(f"C_a differs from (I - K H) C (case d={d}, p={p}).")
        if not np.allclose(C_a, C_a.T, rtol=0, atol=1e-10):
            raise Wrong("C_a is not symmetric; a covariance must be.")
    return "your analysis step matches dalib.da.kf_analysis, mean and covariance."


def _riccati_cases():
    ssm = setups.linear_gaussian(d=4, rotation=0.5, damping=0.95, Q=0.2, R=0.3)
    A, H = to_numpy(ssm.M.A), to_numpy(ssm.h.matrix())
    rng = np.random.default_rng(21)
    A2 = np.array([[1.0, 0.5, 0.0], [0.0, 0.9, 0.3], [0.1, 0.0, 0.7]])
    H2 = rng.standard_normal((2, 3))
    return [
        (A, H, 0.2 * np.eye(4), 0.3 * np.eye(2)),
        (A2, H2, _spd(rng, 3, 0.1), _spd(rng, 2, 0.5)),
    ]


def _early_iterate(K, A, H, Q, R, want, n_max=500):
    """The number of Riccati steps whose gain is ``K``, if it stopped short of convergence."""
    C = np.asarray(Q, dtype=float)
    I = np.eye(A.shape[0])
    for n in range(n_max):
        G = var3d_gain(C, H, R)
        if np.allclose(G, want, rtol=1e-6, atol=1e-8):
            return None
        if np.allclose(K, G, rtol=1e-6, atol=1e-8):
            return n
        C = A @ (I - G @ H) @ C @ A.T + Q
        C = (C + C.T) / 2
    return None


@exercise("ch02 steady-state gain")
def check_steady_state_gain(steady_gain):
    """Check ``steady_gain(A, H, Q, R) -> K`` (d, p) against the Riccati fixed point."""
    for A, H, Q, R in _riccati_cases():
        d, p = A.shape[0], H.shape[0]
        K = as_float_array(call_answer(steady_gain, A, H, Q, R), "K")
        if K.shape != (d, p):
            if K.shape == (p, d):
                raise Wrong(f"K should have shape (d, p) = ({d}, {p}), got its transpose: "
                            "K = C H^T S^{-1} maps innovations (p) to states (d).")
            raise Wrong(f"K should have shape (d, p) = ({d}, {p}), got {K.shape}.")
        if not np.all(np.isfinite(K)):
            raise Wrong("K contains NaN or infinite values.")
        C_f, C_a = steady_state_covariance(A, H, Q, R)
        want = var3d_gain(C_f, H, R)
        if np.allclose(K, want, rtol=1e-6, atol=1e-8):
            continue
        stopped = _early_iterate(K, A, H, Q, R, want)
        if stopped is not None:
            raise Wrong(f"this is the gain after {stopped} step(s) of the recursion from "
                        "C = Q, not yet the fixed point: iterate until C stops changing.")
        if np.allclose(K, var3d_gain(C_a, H, R), rtol=1e-6, atol=1e-8):
            raise Wrong("this gain uses the steady *analysis* covariance; the gain uses the "
                        "forecast covariance C_f = A C_a A^T + Q.")
        err = float(np.max(np.abs(K - want)) / np.max(np.abs(want)))
        raise Wrong(f"K differs from the steady-state gain (relative error {err:.2g}). Check "
                    "one step: K = C H^T (H C H^T + R)^(-1), then C <- A (I - K H) C A^T + Q.")
    return "your Riccati iteration converges to the steady-state Kalman gain."


_R_CHECK = 0.25
_B_BEST = 0.06  # the minimiser on a grid of 0.02..1.0 for this twin (about 0.20)


@functools.lru_cache(maxsize=1)
def _scale_twin():
    return setups.lorenz96(R=_R_CHECK).simulate(400, rng=7)


@functools.lru_cache(maxsize=16)
def _rmse_3dvar(b: float) -> float:
    try:
        with quietly():
            result = assimilate(ThreeDVar(B=b), _scale_twin(), rng=0, burn_in=50)
    except FilterDivergenceError:
        return math.inf
    return result.rmse()


@exercise("ch02 3DVar scale")
def check_3dvar_scale(b):
    """Check a background variance ``b`` (B = b I) of 3DVar on Lorenz-96 with R = 0.25 I."""
    if callable(b):
        raise Unfinished("pass the number b you found, not a function.")
    try:
        b = float(np.asarray(to_numpy(b)).item())
    except (TypeError, ValueError):
        raise Wrong(f"expected one number b, got {type(b).__name__}.") from None
    if not math.isfinite(b) or b <= 0:
        raise Wrong(f"b = {b} is not a positive number: B = b I must be a covariance.")
    rmse, best = _rmse_3dvar(b), _rmse_3dvar(_B_BEST)
    if rmse <= 1.10 * best:
        return (f"b = {b:.3g} gives a time-mean RMSE of {rmse:.3f}, within 10% of the best "
                f"({best:.3f}), well below the observation error sqrt(R) = 0.5.")
    if not math.isfinite(rmse) or rmse > 1.0:
        raise Wrong(f"with b = {b:.3g} 3DVar trusts its forecast so much that it loses track "
                    f"of the truth (RMSE {rmse:.2f}): increase b.")
    if b > _B_BEST:
        hint = ("this trusts the observations too much; try a smaller b. The optimum for R = I "
                "does not carry over: think of the ratio b / R.")
    else:
        hint = "this trusts the forecast a little too much; try a larger b."
    raise Wrong(f"b = {b:.3g} gives an RMSE of {rmse:.3f}, more than 10% above what the best "
                f"b reaches on the check's twin experiment ({best:.3f}): {hint}")
