"""The self-checks of chapter 5 accept right answers and explain wrong ones."""

import numpy as np

import dalib
from dalib.da import fourdvar_cost
from dalib.exercises import ch05
from dalib.models import LinearModel
from dalib.observations import Matrix


def _cost(x0, xb, ys, A, H, B, R):
    dx = x0 - xb
    total = 0.5 * dx @ np.linalg.solve(B, dx)
    x = x0
    for y in ys:
        x = A @ x
        r = y - H @ x
        total += 0.5 * r @ np.linalg.solve(R, r)
    return total


def test_linear_cost_check_agrees_with_dalib_fourdvar_cost():
    # The check's reference value is the cost that dalib computes with the adjoint code.
    x0, xb, ys, A, H, B, R = ch05._linear_problem()
    J, _ = fourdvar_cost(x0, xb, ys, LinearModel(A), Matrix(H), B, R)
    assert np.isclose(ch05._linear_cost(x0, xb, ys, A, H, B, R)[0], float(J), rtol=1e-12)


def test_linear_cost_check():
    assert ch05.check_linear_4dvar_cost(_cost).passed
    assert "replace the `...`" in ch05.check_linear_4dvar_cost(...).message
    assert "twice" in ch05.check_linear_4dvar_cost(lambda *a: 2 * _cost(*a)).message

    def off_by_one(x0, xb, ys, A, H, B, R):
        dx = x0 - xb
        total = 0.5 * dx @ np.linalg.solve(B, dx)
        x = x0
        for y in ys:
            r = y - H @ x
            total += 0.5 * r @ np.linalg.solve(R, r)
            x = A @ x
        return total

    assert "ys[0] observes x_1" in ch05.check_linear_4dvar_cost(off_by_one).message

    def not_inverted(x0, xb, ys, A, H, B, R):
        return _cost(x0, xb, ys, A, H, np.linalg.inv(B), np.linalg.inv(R))

    assert "inverse covariances" in ch05.check_linear_4dvar_cost(not_inverted).message

    def background_only(x0, xb, ys, A, H, B, R):
        return _cost(x0, xb, ys[:0], A, H, B, R)

    assert "only the background" in ch05.check_linear_4dvar_cost(background_only).message
    assert "raised ZeroDivisionError" in ch05.check_linear_4dvar_cost(lambda *a: 1 / 0).message
    fixed = ch05._linear_cost(*ch05._linear_problem())[0]
    assert "hard-code" in ch05.check_linear_4dvar_cost(lambda *a: fixed).message


def _central(cost, gradient, x, v, eps):
    fd = (cost(x + eps * v) - cost(x - eps * v)) / (2 * eps)
    g = gradient(x) @ v
    return abs(fd - g) / abs(g)


def test_gradient_check_check():
    fb = ch05.check_gradient_check(_central)
    assert fb.passed, fb.message

    def forward(cost, gradient, x, v, eps):
        fd = (cost(x + eps * v) - cost(x)) / eps
        g = gradient(x) @ v
        return abs(fd - g) / abs(g)

    assert "forward difference" in ch05.check_gradient_check(forward).message

    def absolute(cost, gradient, x, v, eps):
        fd = (cost(x + eps * v) - cost(x - eps * v)) / (2 * eps)
        return abs(fd - gradient(x) @ v)

    assert not ch05.check_gradient_check(absolute).passed
    assert "should be one number" in ch05.check_gradient_check(lambda *a: [1.0, 2.0]).message


def test_gradient_check_catches_a_wrong_4dvar_adjoint():
    # The reference solution passes dalib's adjoint gradient of the 4DVar cost and catches a
    # gradient with a wrong factor.
    ssm = dalib.setups.lorenz63()
    tw = ssm.simulate(3, rng=2)
    xb = tw.x[0] + np.array([0.5, -0.5, 1.0])

    def cost(x):
        return float(fourdvar_cost(x, xb, tw.y, ssm.M, ssm.h, 1.0, ssm.R)[0])

    def gradient(x):
        return fourdvar_cost(x, xb, tw.y, ssm.M, ssm.h, 1.0, ssm.R)[1]

    v = np.array([1.0, -2.0, 0.5])
    assert _central(cost, gradient, tw.x[0], v, 1e-5) < 1e-6
    assert _central(cost, lambda x: 2 * gradient(x), tw.x[0], v, 1e-5) > 0.4


def _longest(windows, costs):
    best = None
    for w, c in zip(windows, costs):
        if np.sum((c[1:-1] < c[:-2]) & (c[1:-1] < c[2:])) == 1:
            best = w
    return best


def test_longest_window_check():
    fb = ch05.check_longest_window(_longest)
    assert fb.passed, fb.message
    assert "not a number of minima" in ch05.check_longest_window(lambda w, c: 6).message
    assert "local minima" in ch05.check_longest_window(lambda w, c: w[-1]).message
    assert "a longer one" in ch05.check_longest_window(lambda w, c: w[0]).message
    assert "not one of the windows" in ch05.check_longest_window(lambda w, c: 5).message
    assert "should be one number" in ch05.check_longest_window(lambda w, c: "x").message

    def first_convex_run(windows, costs):  # stops too early on the second set of curves
        return windows[2] if len(windows) > 3 else windows[1]

    assert "second set" in ch05.check_longest_window(first_convex_run).message
