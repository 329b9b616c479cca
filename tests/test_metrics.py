"""Metrics and scoring rules against closed forms and brute force."""

import numpy as np
import pytest
from conftest import npy
from scipy import integrate, stats

import dalib
from dalib import metrics


def test_rmse_and_spread_by_hand(xp):
    est = xp.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    tru = xp.asarray([[1.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(npy(metrics.rmse(est, tru)), [np.sqrt(4 / 3), 1.0])
    E = xp.asarray([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])  # variance 4 in each component
    assert float(metrics.spread(E)) == pytest.approx(2.0)


def test_crps_sorting_formula_equals_definition(xp, rng):
    E = rng.standard_normal((3, 7, 4))
    x = rng.standard_normal((3, 4))
    got = npy(metrics.crps_ensemble(xp.asarray(E), xp.asarray(x)))
    skill = np.abs(E - x[:, None, :]).mean(1)
    pair = np.abs(E[:, :, None, :] - E[:, None, :, :]).sum((1, 2))
    np.testing.assert_allclose(got, skill - pair / (2 * 49), rtol=1e-12)
    fair = npy(metrics.crps_ensemble(xp.asarray(E), xp.asarray(x), fair=True))
    np.testing.assert_allclose(fair, skill - pair / (2 * 42), rtol=1e-12)


def test_crps_gaussian_closed_form_against_integral():
    # CRPS = integral of (F(z) - 1{z >= x})^2 dz, computed numerically.
    mu, sigma, x = 0.3, 1.7, 1.1
    F = stats.norm(mu, sigma).cdf
    below, _ = integrate.quad(lambda z: F(z) ** 2, -np.inf, x)
    above, _ = integrate.quad(lambda z: (1 - F(z)) ** 2, x, np.inf)
    assert float(metrics.crps_gaussian(mu, sigma, np.asarray(x))) == pytest.approx(below + above, rel=1e-8)


def test_ensemble_crps_converges_to_gaussian_closed_form(xp):
    g = dalib.default_rng(4, xp)
    N = 20_000
    E = 0.5 + 2.0 * g.standard_normal((N, 3))
    x = xp.asarray([-1.0, 0.5, 3.0])
    ens = npy(metrics.crps_ensemble(E, x, fair=True))
    exact = npy(metrics.crps_gaussian(xp.asarray(0.5), xp.asarray(2.0), x))
    np.testing.assert_allclose(ens, exact, rtol=0.03)


def test_energy_score_in_one_dimension_is_crps(xp, rng):
    E = rng.standard_normal((5, 9, 1))
    x = rng.standard_normal((5, 1))
    es = npy(metrics.energy_score(xp.asarray(E), xp.asarray(x)))
    crps = npy(metrics.crps_ensemble(xp.asarray(E), xp.asarray(x)))[:, 0]
    np.testing.assert_allclose(es, crps, rtol=1e-12)


def test_energy_score_prefers_the_true_distribution(rng):
    truth = rng.standard_normal((400, 3))
    good = rng.standard_normal((400, 30, 3))
    narrow = 0.3 * rng.standard_normal((400, 30, 3))
    assert metrics.energy_score(good, truth).mean() < metrics.energy_score(narrow, truth).mean()


def test_rank_histogram_is_flat_for_a_reliable_ensemble(xp):
    g = dalib.default_rng(9, xp)
    J, N, d = 3000, 9, 2
    E = g.standard_normal((J, N, d))
    x = g.standard_normal((J, d))
    counts = npy(metrics.rank_histogram(E, x))
    assert counts.shape == (N + 1,) and counts.sum() == J * d
    expected = J * d / (N + 1)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < stats.chi2(N).ppf(0.999)
    under = npy(metrics.rank_histogram(0.3 * E, x))
    assert under[0] + under[-1] > 3 * 2 * expected  # U shape: too little spread


def test_spread_error_ratio_near_one_when_reliable(xp):
    g = dalib.default_rng(2, xp)
    J, N, d = 500, 20, 10
    truth = g.standard_normal((J, d))
    E = g.standard_normal((J, N, d))
    ratio = float(metrics.spread_error_ratio(E, truth))
    # error of the mean has variance 1 + 1/N, spread variance 1
    assert ratio == pytest.approx(np.sqrt(1 / (1 + 1 / N)), abs=0.03)


def test_time_average_and_errors(xp):
    s = xp.asarray([100.0, 1.0, 2.0, 3.0])
    assert float(metrics.time_average(s, burn_in=1)) == 2.0
    with pytest.raises(ValueError, match="burn_in .4. must be smaller"):
        metrics.time_average(s, burn_in=4)
    with pytest.raises(ValueError, match=r"ensemble must have shape \(\.\.\., 3\)"):
        metrics.crps_ensemble(xp.ones((4, 2)), xp.ones((3,)))
    with pytest.raises(ValueError, match="ensemble must have at least 2 members"):
        metrics.spread(xp.ones((1, 3)))
    with pytest.raises(ValueError, match="truth contains NaN"):
        metrics.rmse(xp.ones(3), xp.asarray([1.0, float("nan"), 0.0]))
