"""Self-checks for the exercises of chapter 6, "Automatic differentiation"."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..models import Lorenz63
from ._framework import Wrong, call_answer, exercise

__all__ = ["check_jvp", "check_lorenz63_vjp", "check_best_step"]


def _composition():
    A = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    fs = [lambda x: A @ x, np.sin, lambda g: np.array([g[0] * g[1], g[1] ** 2])]
    Dfs = [
        lambda x: A,
        lambda g: np.diag(np.cos(g)),
        lambda g: np.array([[g[1], g[0]], [0.0, 2 * g[1]]]),
    ]
    return fs, Dfs


@exercise("ch06 forward mode")
def check_jvp(jvp):
    """Check ``jvp(fs, Dfs, x, v)`` on a three-map composition."""
    fs, Dfs = _composition()
    x, v = np.array([0.3, -0.2, 0.5]), np.array([1.0, 0.5, -2.0])
    out = call_answer(jvp, fs, Dfs, x, v)
    if not isinstance(out, tuple) or len(out) != 2:
        raise Wrong("jvp should return a pair (f(x), Df(x) v).")
    y, dy = (np.asarray(to_numpy(o), dtype=float) for o in out)
    g = x
    J = np.eye(3)
    for f, Df in zip(fs, Dfs):
        g, J = f(g), Df(g) @ J
    if not np.allclose(y, g, rtol=1e-12):
        raise Wrong("the first output should be f(x), the composition of all maps.")
    if dy.shape != (2,):
        raise Wrong(f"Df(x) v should be a vector of shape (2,), got {dy.shape}.")
    if np.allclose(dy, 0.0):
        raise Wrong("Df(x) v is zero: did you propagate v through every map?")
    if not np.allclose(dy, J @ v, rtol=1e-10):
        raise Wrong("Df(x) v is wrong: evaluate Df_i at g_{i-1}, before updating g.")
    return "you propagated one direction through the composition: forward mode."


@exercise("ch06 adjoint")
def check_lorenz63_vjp(rhs_vjp):
    """Dot-product test of a student's Lorenz-63 transposed Jacobian product."""
    rng = np.random.default_rng(3)
    ode = Lorenz63()
    for _ in range(3):
        x, v, w = rng.standard_normal((3, 3)) * [5.0, 5.0, 10.0]
        got = np.asarray(to_numpy(call_answer(rhs_vjp, x, w)), dtype=float)
        if got.shape != (3,):
            raise Wrong(f"rhs_vjp should return a vector of shape (3,), got {got.shape}.")
        lhs = float(ode.rhs_jvp(x, v) @ w)
        rhs = float(v @ got)
        if not np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10):
            raise Wrong(f"dot-product test failed: <Df v, w> = {lhs:.6g} but <v, Df^T w> = "
                        f"{rhs:.6g}. Transpose means row i of Df^T is column i of Df.")
    return "your adjoint passes the dot-product test."


@exercise("ch06 best step")
def check_best_step(h):
    """Check the optimal central-difference step for eps = 2.2e-16, c0 = c3 = 1."""
    try:
        h = float(h)
    except (TypeError, ValueError):
        raise Wrong(f"expected a number, got {type(h).__name__}.") from None
    expected = (2.2e-16 / 2) ** (1 / 3)
    if np.isclose(h, 2.2e-16 ** 0.5, rtol=0.05):
        raise Wrong("sqrt(eps) is the best step of the forward difference; the central "
                    "difference has a truncation error of order h^2.")
    if not np.isclose(h, expected, rtol=0.05):
        raise Wrong(f"h = {h:.2g}; minimise c3 h^2 + eps c0 / h by setting its derivative "
                    "to zero.")
    return f"h* = (eps / 2)^(1/3) = {expected:.1e}."
