"""Self-checks for the exercises of chapter 5, "4DVar, smoothing and reanalysis"."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ._framework import Unfinished, Wrong, call_answer, exercise

__all__ = ["check_linear_4dvar_cost", "check_gradient_check", "check_longest_window"]


def _number(value, what: str) -> float:
    """A student's scalar answer as a float, or a hint."""
    if callable(value):
        raise Unfinished(f"{what} should be a number: call your function and pass the result.")
    try:
        out = float(np.asarray(to_numpy(value), dtype=float).reshape(()))
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be one number, got {type(value).__name__} "
                    f"of shape {np.shape(value)}.") from None
    if not np.isfinite(out):
        raise Wrong(f"{what} is not a finite number.")
    return out


def _linear_problem(seed: int = 7):
    rng = np.random.default_rng(seed)
    d, p, L = 3, 2, 4
    A = 0.6 * rng.standard_normal((d, d)) + 0.4 * np.eye(d)
    H = rng.standard_normal((p, d))
    G = rng.standard_normal((d, d))
    B = G @ G.T / d + 0.5 * np.eye(d)
    S = rng.standard_normal((p, p))
    R = S @ S.T / p + 0.3 * np.eye(p)
    x0, xb = rng.standard_normal(d), rng.standard_normal(d)
    ys = rng.standard_normal((L, p))
    return x0, xb, ys, A, H, B, R


def _linear_cost(x0, xb, ys, A, H, B, R, *, first_power: int = 1, half: float = 0.5,
                 invert: bool = True):
    """Eq. (eq-ch05-4dvar) for M(x) = A x and h(x) = H x, with switches for common slips."""
    dx = x0 - xb
    cost_b = half * dx @ (np.linalg.solve(B, dx) if invert else B @ dx)
    x = np.linalg.matrix_power(A, first_power) @ x0
    cost_o = 0.0
    for y in ys:
        r = y - H @ x
        cost_o += half * r @ (np.linalg.solve(R, r) if invert else R @ r)
        x = A @ x
    return cost_b + cost_o, cost_b, cost_o


@exercise("ch05 linear 4DVar cost")
def check_linear_4dvar_cost(linear_4dvar_cost):
    """Check ``linear_4dvar_cost(x0, xb, ys, A, H, B, R)`` on a random linear problem."""
    args = _linear_problem()
    value = _number(call_answer(linear_4dvar_cost, *args), "linear_4dvar_cost(...)")
    expected, cost_b, cost_o = _linear_cost(*args)
    if np.isclose(value, expected, rtol=1e-9):
        other = _linear_problem(seed=11)
        value2 = _number(call_answer(linear_4dvar_cost, *other), "linear_4dvar_cost(...)")
        if not np.isclose(value2, _linear_cost(*other)[0], rtol=1e-9):
            raise Wrong("right on the first problem but not on a second one: do not hard-code "
                        "sizes or values.")
        return (f"J(x0) = {expected:.4f}: background term {cost_b:.4f} plus observation "
                f"term {cost_o:.4f}.")
    if np.isclose(value, 2 * expected, rtol=1e-9):
        raise Wrong("your value is twice the cost: both terms carry a factor 1/2.")
    if np.isclose(value, _linear_cost(*args, first_power=0)[0], rtol=1e-9):
        raise Wrong("the first observation ys[0] observes x_1 = A x0, not x0: advance the "
                    "state before comparing it with an observation.")
    if np.isclose(value, _linear_cost(*args, invert=False)[0], rtol=1e-9):
        raise Wrong("the norms are weighted by the inverse covariances, B^{-1} and R^{-1} "
                    "(use np.linalg.solve), not by B and R.")
    if np.isclose(value, cost_b, rtol=1e-9):
        raise Wrong("you returned only the background term: add the observation misfits.")
    if np.isclose(value, cost_o, rtol=1e-9):
        raise Wrong("you returned only the observation term: add the background term.")
    raise Wrong(f"got {value:.6g}, expected {expected:.6g}. Check each term of the cost "
                "against the equation.")


def _quartic(x):
    return float(np.sum(x**4) / 4 + x[0] * x[1] ** 2)


def _quartic_grad(x):
    g = x**3
    g[0] += x[1] ** 2
    g[1] += 2 * x[0] * x[1]
    return g


@exercise("ch05 gradient check")
def check_gradient_check(gradient_check):
    """Check ``gradient_check(cost, gradient, x, v, eps)`` on a function of known gradient."""
    x = np.array([1.5, -0.7, 0.4])
    v = np.array([0.3, 1.0, -0.5])
    eps = 1e-3

    def run(grad):
        out = call_answer(gradient_check, _quartic, grad, x.copy(), v.copy(), eps)
        return _number(out, "gradient_check(...)")

    good = run(_quartic_grad)
    exact = float(_quartic_grad(x.copy()) @ v)
    central = (_quartic(x + eps * v) - _quartic(x - eps * v)) / (2 * eps)
    forward = (_quartic(x + eps * v) - _quartic(x)) / eps
    expected = abs(central - exact) / abs(exact)
    if np.isclose(good, abs(forward - exact) / abs(exact), rtol=1e-3):
        raise Wrong("you used a forward difference; the central difference "
                    "(J(x + eps v) - J(x - eps v)) / (2 eps) is far more accurate.")
    if good < 0:
        raise Wrong("return the absolute (non-negative) relative difference.")
    if not np.isclose(good, expected, rtol=1e-2, atol=1e-12):
        raise Wrong(f"with the exact gradient you returned {good:.3g}; expected about "
                    f"{expected:.3g}, the relative difference between the central difference "
                    "along v and gradient(x) @ v.")
    bad = run(lambda z: 1.01 * _quartic_grad(z))
    if not np.isclose(bad, 0.01 / 1.01, rtol=1e-2):
        raise Wrong(f"a gradient 1% too large gave {bad:.3g}, expected about 0.0099: "
                    "divide |fd - gradient(x) @ v| by |gradient(x) @ v|.")
    return (f"the exact gradient passes ({good:.1e}) and a 1% error is caught ({bad:.1e}).")


def _curves():
    s = np.linspace(-3, 3, 601)
    windows = [1, 2, 4, 8, 16]
    costs = np.stack([
        s**2,
        s**2 + 0.1 * np.sin(3 * s),        # still one minimum
        (s - 0.5) ** 2 + 0.05 * s**4,      # one minimum
        s**2 + 2.0 * np.sin(6 * s),        # several
        s**2 + 3.0 * np.sin(12 * s),       # many
    ])
    return windows, costs


def _count_minima(c):
    return int(np.sum((c[1:-1] < c[:-2]) & (c[1:-1] < c[2:])))


@exercise("ch05 window length")
def check_longest_window(longest_window):
    """Check ``longest_window(windows, costs)`` on synthetic cost curves."""
    windows, costs = _curves()
    out = call_answer(longest_window, list(windows), costs.copy())
    answer = _number(out, "longest_window(...)")
    counts = [_count_minima(c) for c in costs]
    expected = max(w for w, n in zip(windows, counts) if n == 1)
    if answer == expected:
        # A second case, where the longest window is not the last convex one by accident.
        windows2 = [3, 6, 9]
        costs2 = costs[[0, 3, 4]]
        answer2 = _number(call_answer(longest_window, windows2, costs2), "longest_window(...)")
        if answer2 != 3:
            raise Wrong(f"on a second set of curves you returned {answer2:g} instead of 3.")
        return (f"windows up to {expected} have one minimum here; longer ones have "
                f"{counts[3]} and {counts[4]}.")
    if answer not in windows:
        if answer in counts:
            raise Wrong("return the window length, not a number of minima.")
        raise Wrong(f"{answer:g} is not one of the windows {windows}.")
    n = counts[windows.index(int(answer))]
    if n != 1:
        raise Wrong(f"the cost of window {answer:g} has {n} local minima: a point is a "
                    "local minimum when it is smaller than both neighbours.")
    raise Wrong(f"window {answer:g} has one minimum, but a longer one does too.")
