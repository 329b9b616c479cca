"""Strong-constraint 4DVar and its adjoint (book section 7.9)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import cycled_fourdvar, fourdvar_analysis, fourdvar_cost, kalman_smoother
from dalib.observations import EveryKth


def _window(xp, L=3):
    ssm = dalib.setups.lorenz63(dt_obs=0.03, xp=xp)
    tw = ssm.simulate(L, rng=dalib.default_rng(1, xp))
    xb = tw.x[0, :] + dalib.asarray([0.5, -0.3, 0.8], xp)
    B = dalib.asarray([[1.0, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 2.0]], xp)
    return ssm, tw, xb, B


def test_adjoint_gradient_matches_central_differences(xp):
    ssm, tw, xb, B = _window(xp)
    x0 = tw.x[0, :] + dalib.asarray([-0.2, 0.4, 0.1], xp)
    J, grad = fourdvar_cost(x0, xb, tw.y, ssm.M, ssm.h, B, ssm.R)
    eps = 1e-5
    fd = []
    for i in range(3):
        e = dalib.asarray(np.eye(3)[i], xp)
        Jp, _ = fourdvar_cost(x0 + eps * e, xb, tw.y, ssm.M, ssm.h, B, ssm.R)
        Jm, _ = fourdvar_cost(x0 - eps * e, xb, tw.y, ssm.M, ssm.h, B, ssm.R)
        fd.append((float(Jp) - float(Jm)) / (2 * eps))
    np.testing.assert_allclose(npy(grad), fd, rtol=1e-6, atol=1e-6)
    # The cost is the textbook formula.
    xs, Jo = x0, 0.0
    for j in range(tw.J):
        xs = ssm.M(xs)
        Jo += 0.5 * float(dalib.to_numpy(tw.y[j, :] - xs) @ dalib.to_numpy(tw.y[j, :] - xs)) / 2.0
    dxb = npy(x0 - xb)
    assert float(J) == pytest.approx(0.5 * dxb @ np.linalg.solve(npy(B), dxb) + Jo, rel=1e-12)


def test_adjoint_dot_product(xp):
    # <D G(x) dx, w> = <dx, D G(x)^T w> for the model, the observation operator and the
    # whole window map G(x0) = (h(M(x0)), ..., h(M^L(x0))).
    rng = np.random.default_rng(3)
    ssm = dalib.setups.lorenz96(d=12, obs_every=3, xp=xp)
    M, h = ssm.M, ssm.h
    x = ssm.m0
    dx = dalib.asarray(rng.standard_normal(12), xp)
    w = dalib.asarray(rng.standard_normal(12), xp)
    _, Mdx = M.jvp(x, dx)
    assert float(Mdx @ w) == pytest.approx(float(dx @ M.vjp(x, w)), rel=1e-12)
    wo = dalib.asarray(rng.standard_normal(h.p), xp)
    assert float(h.jvp(x, dx) @ wo) == pytest.approx(float(dx @ h.vjp(x, wo)), rel=1e-12)
    L = 5
    ws = [dalib.asarray(rng.standard_normal(h.p), xp) for _ in range(L)]
    xs, tl, lhs = [x], dx, 0.0
    for j in range(L):  # tangent linear sweep
        xn, tl = M.jvp(xs[-1], tl)
        xs.append(xn)
        lhs += float(h.jvp(xn, tl) @ ws[j])
    lam = xp.zeros_like(x)
    for j in range(L, 0, -1):  # adjoint sweep, as in fourdvar_cost
        lam = M.vjp(xs[j - 1], lam + h.vjp(xs[j], ws[j - 1]))
    assert lhs == pytest.approx(float(dx @ lam), rel=1e-11)


def test_fourdvar_minimiser_is_the_kalman_smoother_at_time_zero(xp):
    ssm = dalib.setups.linear_gaussian(d=4, Q=None, R=0.3, C0=0.8, xp=xp)
    ssm = ssm.replace(m0=dalib.asarray([1.0, -0.5, 0.3, 0.2], xp))
    tw = ssm.simulate(6, rng=dalib.default_rng(5, xp))
    res = fourdvar_analysis(ssm.m0, tw.y, ssm.M, ssm.h, ssm.C0, ssm.R, gtol=1e-11)
    sm = kalman_smoother(ssm, tw.y)
    np.testing.assert_allclose(npy(res.x0), npy(sm.m[0, :]), atol=1e-7)
    # With a perfect model the smoothed trajectory is the model trajectory of x0.
    np.testing.assert_allclose(npy(res.trajectory), npy(sm.m), atol=1e-6)
    assert res.success and res.trajectory.shape == (7, 4)


def test_fourdvar_recovers_lorenz96_window():
    ssm = dalib.setups.lorenz96(d=20)
    ssm = ssm.replace(h=EveryKth(20, 2), R=0.1)
    tw = ssm.simulate(5, rng=4)
    xb = tw.x[0] + np.random.default_rng(0).standard_normal(20) * 0.5
    res = fourdvar_analysis(xb, tw.y, ssm.M, ssm.h, 0.25, ssm.R, gtol=1e-7)
    cost = [float(fourdvar_cost(x, xb, tw.y, ssm.M, ssm.h, 0.25, ssm.R)[0])
            for x in (res.x0, tw.x[0], xb)]
    assert res.cost == pytest.approx(cost[0]) and cost[0] < cost[1] < cost[2]
    _, grad = fourdvar_cost(res.x0, xb, tw.y, ssm.M, ssm.h, 0.25, ssm.R)
    assert np.max(np.abs(grad)) < 1e-5 * np.max(np.abs(
        fourdvar_cost(xb, xb, tw.y, ssm.M, ssm.h, 0.25, ssm.R)[1]))
    err_b = np.sqrt(np.mean((xb - tw.x[0]) ** 2))
    err_a = np.sqrt(np.mean((res.x0 - tw.x[0]) ** 2))
    assert err_a < 0.7 * err_b


def test_cycled_fourdvar_lorenz96():
    ssm = dalib.setups.lorenz96(d=20)
    tw = ssm.simulate(45, rng=8)
    res = cycled_fourdvar(tw, 0.3, window=3, burn_in=15)
    assert res.analysis.shape == (46, 20) and res.innovations.shape == (45, 20)
    assert res.rmse() < 0.5  # observation error std 1, climatology about 3.6


def test_fourdvar_arguments_are_checked():
    ssm = dalib.setups.lorenz63()
    with pytest.raises(ValueError, match=r"ys must have shape \(\.\.\., 3\)"):
        fourdvar_cost(ssm.m0, ssm.m0, np.zeros((2, 2)), ssm.M, ssm.h, 1.0, ssm.R)
    with pytest.raises(ValueError, match="B must be positive definite"):
        fourdvar_cost(ssm.m0, ssm.m0, np.zeros((2, 3)), ssm.M, ssm.h, -np.eye(3), ssm.R)


def test_sliding_windows_reanalyse_each_window_from_the_shifted_background():
    """Window k starts at k * shift, uses `window` observations, and reports its first
    `shift` states; rebuilt here window by window with fourdvar_analysis."""
    ssm = dalib.setups.lorenz96(d=12)
    twin = ssm.simulate(J=11, rng=4)
    window, shift = 4, 3
    res = cycled_fourdvar(twin, 0.1, window=window, shift=shift, gtol=1e-8)
    expected, xb = [npy(ssm.m0)], ssm.m0
    for t0 in range(0, twin.J, shift):
        L = min(window, twin.J - t0)
        a = fourdvar_analysis(xb, twin.y[t0:t0 + L], ssm.M, ssm.h, 0.1, ssm.R, gtol=1e-8)
        if t0 == 0:
            expected[0] = npy(a.trajectory[0])
        S = min(shift, L)
        expected += [npy(a.trajectory[i]) for i in range(1, S + 1)]
        xb = a.trajectory[S]
    np.testing.assert_allclose(npy(res.analysis), np.array(expected), atol=1e-10)
    assert len(res.extras["converged"]) == 4 and "shift=3" in res.method


def test_shift_equal_to_window_is_back_to_back():
    twin = dalib.setups.lorenz96(d=12).simulate(J=8, rng=5)
    a = cycled_fourdvar(twin, 0.1, window=4)
    b = cycled_fourdvar(twin, 0.1, window=4, shift=4)
    np.testing.assert_array_equal(npy(a.analysis), npy(b.analysis))
    with pytest.raises(ValueError, match="shift"):
        cycled_fourdvar(twin, 0.1, window=4, shift=5)
    with pytest.raises(ValueError, match="shift"):
        cycled_fourdvar(twin, 0.1, window=4, shift=0)
