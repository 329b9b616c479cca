"""Multifidelity Monte Carlo (lecture eqs. 10-11; Peherstorfer, Willcox and Gunzburger 2016)."""

import itertools
import math

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.multifidelity import (
    mfmc_allocation,
    mfmc_mean,
    mfmc_select,
    mfmc_variance,
    mfmc_weights,
    pilot_statistics,
)

# A hierarchy of correlated Gaussians with known moments: model k maps the shared input
# z ~ N(0, I_3) to mu_k + B_k z in R^2, so the covariances are B_j B_k^T exactly.
MU = [np.array([1.0, -2.0]), np.array([0.3, 0.5]), np.array([-1.0, 4.0])]
B = [
    np.array([[1.0, 0.5, 0.2], [0.0, 2.0, 1.0]]),   # high fidelity
    np.array([[0.9, 0.6, 0.0], [0.1, 1.5, 1.2]]),   # close to it
    np.array([[0.5, 0.0, 0.9], [0.0, 0.7, -0.4]]),  # weakly correlated
]


def exact_statistics():
    def cov(j, k):
        return np.diag(B[j] @ B[k].T)

    sigma = [np.sqrt(cov(k, k)) for k in range(3)]
    rho = [cov(0, k) / (sigma[0] * sigma[k]) for k in (1, 2)]
    return sigma[0], sigma[1:], rho


def outputs(xp, z, k):
    return dalib.asarray(MU[k], xp) + z @ dalib.asarray(B[k].T, xp)


def repeated_estimates(xp, sizes, alpha, repetitions, seed):
    """``repetitions`` independent estimates at once: the repetitions ride on axis 1."""
    N_hi, N = sizes
    z = dalib.default_rng(seed, xp=xp).standard_normal((N[-1], repetitions, 3))
    y_hi = outputs(xp, z[:N_hi, ...], 0)
    y_lo = [outputs(xp, z[:n, ...], k + 1) for k, n in enumerate(N)]
    return npy(mfmc_mean(y_hi, y_lo, alpha))


@pytest.mark.parametrize("optimal", [True, False])
def test_mfmc_is_unbiased_and_its_variance_is_eq_11(xp, optimal):
    sigma_hi, sigma, rho = exact_statistics()
    alpha = mfmc_weights(rho, sigma_hi, sigma) if optimal else [0.5, -0.3]
    sizes = (4, (16, 64))
    R = 4000
    est = repeated_estimates(xp, sizes, [dalib.asarray(a, xp) for a in alpha], R, seed=3)
    assert est.shape == (R, 2)
    se = est.std(axis=0, ddof=1) / math.sqrt(R)
    assert np.all(np.abs(est.mean(axis=0) - MU[0]) < 3 * se)
    predicted = mfmc_variance(sigma_hi, sigma, rho, sizes[0], sizes[1], alpha=alpha)
    np.testing.assert_allclose(est.var(axis=0, ddof=1), predicted, rtol=0.1)


def test_eq_11_for_the_optimal_weights_is_the_lecture_form():
    sigma_hi, sigma, rho = exact_statistics()
    N_hi, N = 3, (10, 50)
    lecture = sigma_hi**2 / N_hi - sum(
        (1 / a - 1 / b) * r**2 * sigma_hi**2 for a, b, r in zip((N_hi,) + N[:-1], N, rho))
    np.testing.assert_allclose(mfmc_variance(sigma_hi, sigma, rho, N_hi, N), lecture)
    assert np.all(lecture < sigma_hi**2 / N_hi)  # rho^2 > 0 lowers the variance


def test_mfmc_beats_plain_monte_carlo_at_equal_cost(xp):
    sigma_hi, sigma, rho = exact_statistics()
    w_hi, w = 1.0, (0.05, 0.01)
    sizes = (4, (40, 200))
    cost = w_hi * sizes[0] + sum(c * n for c, n in zip(w, sizes[1]))
    N_mc = math.floor(cost)  # 8 high-fidelity runs for the same cost
    R = 2000
    alpha = [dalib.asarray(a, xp) for a in mfmc_weights(rho, sigma_hi, sigma)]
    est = repeated_estimates(xp, sizes, alpha, R, seed=4)
    z = dalib.default_rng(5, xp=xp).standard_normal((N_mc, R, 3))
    mc = npy(mfmc_mean(outputs(xp, z, 0), [], []))
    assert np.all(est.var(axis=0) < 0.8 * mc.var(axis=0))
    predicted = mfmc_variance(sigma_hi, sigma, rho, sizes[0], sizes[1])
    assert np.all(predicted < sigma_hi**2 / N_mc)


def test_pilot_statistics_match_numpy_and_the_exact_values(xp):
    z = dalib.default_rng(6, xp=xp).standard_normal((20000, 3))
    ys = [outputs(xp, z, k) for k in range(3)]
    sigma_hi, sigma, rho = pilot_statistics(ys[0], ys[1:])
    yn = [npy(y) for y in ys]
    np.testing.assert_allclose(npy(sigma_hi), yn[0].std(axis=0, ddof=1), rtol=1e-10)
    for k in range(2):
        np.testing.assert_allclose(npy(sigma[k]), yn[k + 1].std(axis=0, ddof=1), rtol=1e-10)
        for i in range(2):
            c = np.corrcoef(yn[0][:, i], yn[k + 1][:, i])[0, 1]
            np.testing.assert_allclose(npy(rho[k])[i], c, rtol=1e-10)
    s_hi, _, r = exact_statistics()
    np.testing.assert_allclose(npy(sigma_hi), s_hi, rtol=0.03)
    np.testing.assert_allclose(np.array([npy(x) for x in rho]), np.array(r), atol=0.03)


RHO, W_HI, W, BUDGET = (0.95, 0.8), 1.0, (0.2, 0.01), 30.0


def variance(N_hi, N, rho=RHO):
    return mfmc_variance(1.0, [1.0] * len(rho), list(rho), N_hi, list(N))


def test_allocation_meets_the_budget_and_beats_a_fine_real_grid():
    a = mfmc_allocation(RHO, W_HI, W, BUDGET)
    assert a.models == (0, 1)
    cost = W_HI * a.N_hi + sum(c * n for c, n in zip(W, a.N))
    np.testing.assert_allclose(cost, BUDGET)
    assert a.N_hi <= a.N[0] <= a.N[1]
    np.testing.assert_allclose(a.variance, variance(a.N_hi, a.N))
    # every real allocation that spends the budget: choose N_hi, N_1, the rest goes to N_2
    best = np.inf
    for N_hi in np.linspace(0.5, 30, 300):
        for N_1 in np.linspace(N_hi, (BUDGET - N_hi) / W[0], 300):
            N_2 = (BUDGET - N_hi - W[0] * N_1) / W[1]
            if N_2 >= N_1 > 0:
                best = min(best, variance(N_hi, (N_1, N_2)))
    assert a.variance <= best * (1 + 1e-9)
    assert best <= a.variance * 1.01


def test_allocation_against_brute_force_over_integer_sizes():
    a = mfmc_allocation(RHO, W_HI, W, BUDGET)
    best, arg = np.inf, None
    for N_hi in range(1, 31):
        for N_1 in range(N_hi, int((BUDGET - N_hi) / W[0]) + 1):
            N_2 = math.floor((BUDGET - N_hi - W[0] * N_1) / W[1] + 1e-9)
            if N_2 >= N_1:  # spending the rest on the cheapest model never hurts
                v = variance(N_hi, (N_1, N_2))
                if v < best:
                    best, arg = v, (N_hi, N_1, N_2)
    N_hi, N = a.integer()
    assert a.variance <= best <= variance(N_hi, N)
    assert best <= 1.1 * a.variance
    assert abs(arg[0] - a.N_hi) <= 1.5 and abs(arg[1] - a.N[0]) / a.N[0] < 0.3


def test_selection_is_the_best_subset_by_brute_force():
    # model 1 is expensive and barely better than model 2, so it fails the cost condition
    rho, w = (0.9, 0.85, 0.5), (0.5, 0.02, 0.001)
    budget = 20.0
    chosen = mfmc_select(rho, W_HI, w, budget)
    assert 1 in chosen.models
    best, best_models = W_HI / budget, ()
    for size in (1, 2, 3):
        for subset in itertools.combinations(range(3), size):
            order = sorted(subset, key=lambda k: -rho[k])
            r, c = [rho[k] for k in order], [w[k] for k in order]
            # all but the cheapest model on a grid; the rest of the budget goes to the
            # cheapest, since a larger N_K only lowers eq. (11)
            levels = [range(1, 21)] + [range(1, int(budget / ck) + 1, max(1, int(0.2 / ck)))
                                       for ck in c[:-1]]
            for sizes in itertools.product(*levels):
                spent = W_HI * sizes[0] + sum(ck * n for ck, n in zip(c, sizes[1:]))
                N_K = math.floor((budget - spent) / c[-1] + 1e-9)
                sizes = sizes + (N_K,)
                if list(sizes) != sorted(sizes):
                    continue
                v = variance(sizes[0], sizes[1:], rho=r)
                if v < best:
                    best, best_models = v, tuple(order)
    assert chosen.models == best_models
    assert chosen.variance <= best <= 1.15 * chosen.variance
    assert chosen.variance < chosen.mc_variance


def test_bad_input_is_named():
    y = np.zeros((5, 2))
    with pytest.raises(ValueError, match="nested"):
        mfmc_mean(y, [np.zeros((3, 2))], [1.0])
    with pytest.raises(ValueError, match="y_lo\\[0\\]"):
        mfmc_mean(y, [np.zeros((6, 3))], [1.0])
    with pytest.raises(ValueError, match="alpha"):
        mfmc_mean(y, [np.zeros((6, 2))], [])
    with pytest.raises(ValueError, match="decreasing"):
        mfmc_allocation((0.5, 0.9), 1.0, (0.1, 0.01), 10.0)
    with pytest.raises(ValueError, match="too expensive"):
        mfmc_allocation((0.9, 0.85), 1.0, (0.5, 0.02), 10.0)
    with pytest.raises(ValueError, match="budget"):
        mfmc_select((0.9,), 1.0, (0.1,), -1.0)
