"""Model-error correction from analysis increments (chapter 9)."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import ETKF, assimilate
from dalib.learning.increments import (
    BiasCorrection,
    IncrementCorrectedModel,
    IncrementData,
    LinearCorrection,
    NetworkCorrection,
    fit_bias,
    fit_linear,
    fit_network,
    increment_data,
)
from dalib.models import Lorenz96, RK4Map


def test_increment_data_pairs_each_forecast_with_its_analysis(xp):
    g = np.random.default_rng(0)
    J, d = 12, 3
    forecast, analysis = g.standard_normal((J + 1, d)), g.standard_normal((J + 1, d))
    result = SimpleNamespace(forecast=dalib.asarray(forecast, xp),
                             analysis=dalib.asarray(analysis, xp), J=J, burn_in=2,
                             twin=SimpleNamespace(ssm=SimpleNamespace(dt=0.05)))
    data = increment_data(result)
    assert data.n == J - 2 and data.dt == 0.05
    np.testing.assert_array_equal(npy(data.xf), forecast[3:])
    np.testing.assert_allclose(npy(data.increments), analysis[3:] - forecast[3:], rtol=1e-15)
    np.testing.assert_allclose(npy(data.tendency), (analysis[3:] - forecast[3:]) / 0.05)
    assert increment_data(result, burn_in=0).n == J
    with pytest.raises(ValueError, match="burn_in must be below"):
        increment_data(result, burn_in=J)


def test_bias_fit_recovers_a_constant_bias(xp):
    g = np.random.default_rng(1)
    n, d = 4000, 5
    b = np.array([0.3, -0.1, 0.0, 0.2, -0.4])
    data = IncrementData(dalib.asarray(g.standard_normal((n, d)) * 3, xp),
                         dalib.asarray(b + 0.5 * g.standard_normal((n, d)), xp), 0.05)
    fitted = fit_bias(data)
    assert isinstance(fitted, BiasCorrection)
    # the sample mean: standard error 0.5 / sqrt(n) = 0.008 per component
    np.testing.assert_allclose(npy(fitted.b), b, atol=4 * 0.5 / np.sqrt(n))
    x = dalib.asarray(g.standard_normal((7, d)), xp)
    np.testing.assert_array_equal(npy(fitted(x)), np.broadcast_to(npy(fitted.b), (7, d)))


def test_linear_fit_recovers_a_known_linear_map(xp):
    g = np.random.default_rng(2)
    n, d = 200, 6
    L = 0.1 * g.standard_normal((d, d))
    b = 0.1 * g.standard_normal(d)
    x = 2.0 + g.standard_normal((n, d))
    xbar = x.mean(0)
    inc = b + (x - xbar) @ L.T
    fitted = fit_linear(IncrementData(dalib.asarray(x, xp), dalib.asarray(inc, xp), 0.1))
    assert isinstance(fitted, LinearCorrection)
    np.testing.assert_allclose(npy(fitted.L), L, atol=1e-10)
    np.testing.assert_allclose(npy(fitted.b), b, atol=1e-12)
    z = g.standard_normal((4, d))
    np.testing.assert_allclose(npy(fitted(dalib.asarray(z, xp))), b + (z - xbar) @ L.T,
                               atol=1e-10)
    # ridge: the closed form (C_xx + lambda I)^{-1} applied to the cross covariance
    noisy = inc + 0.1 * g.standard_normal((n, d))
    ridged = fit_linear(IncrementData(dalib.asarray(x, xp), dalib.asarray(noisy, xp), 0.1),
                        ridge=0.5)
    Xa, Da = x - xbar, noisy - noisy.mean(0)
    want = np.linalg.solve(Xa.T @ Xa / n + 0.5 * np.eye(d), Xa.T @ Da / n).T
    np.testing.assert_allclose(npy(ridged.L), want, atol=1e-12)


def test_linear_fit_with_noise_matches_least_squares():
    g = np.random.default_rng(3)
    n, d = 500, 4
    x = g.standard_normal((n, d))
    inc = g.standard_normal((n, d))
    fitted = fit_linear(IncrementData(x, inc, 1.0))
    A = np.c_[x, np.ones(n)]
    coef = np.linalg.lstsq(A, inc, rcond=None)[0]
    np.testing.assert_allclose(fitted(x), A @ coef, atol=1e-12)


def test_corrected_model_is_model_plus_correction_of_the_forecast(xp):
    d = 12
    g = np.random.default_rng(4)
    M = RK4Map(Lorenz96(d, 10.0), 0.01, 5)
    c = LinearCorrection(dalib.asarray(0.05 * g.standard_normal((d, d)), xp),
                         dalib.asarray(0.1 * g.standard_normal(d), xp),
                         dalib.asarray(np.full(d, 2.0), xp))
    Mc = IncrementCorrectedModel(M, c)
    assert Mc.d == d
    x = dalib.asarray(3.0 * g.standard_normal((5, d)), xp)
    xf = npy(M(x))
    Lnp, bnp = npy(c.L), npy(c.b)
    want = xf + bnp + (xf - 2.0) @ Lnp.T
    np.testing.assert_allclose(npy(Mc(x)), want, rtol=1e-12, atol=1e-12)
    # nesting is one more iteration: the second correction sees the corrected forecast
    c2 = BiasCorrection(dalib.asarray(np.full(d, 0.3), xp))
    np.testing.assert_allclose(npy(IncrementCorrectedModel(Mc, c2)(x)), want + 0.3,
                               rtol=1e-12)


def test_the_corrected_background_removes_a_known_bias():
    # truth: Lorenz-96 plus 0.2 per window; the filter's model lacks the 0.2
    ssm = dalib.setups.lorenz96(d=12, F=8.0)
    Mc = IncrementCorrectedModel(ssm.M, BiasCorrection(np.full(12, 0.2)))
    truth = ssm.replace(M=Mc).simulate(400, rng=5)

    def mean_increment(M):
        twin = dalib.TwinExperiment(ssm.replace(M=M), truth.t, truth.x, truth.y)
        res = assimilate(ETKF(10, inflation=1.1), twin, rng=6)
        data = increment_data(res)
        np.testing.assert_allclose(data.xf + data.increments, np.asarray(res.analysis)[41:])
        return float(np.mean(data.increments))

    biased, corrected = mean_increment(ssm.M), mean_increment(Mc)
    assert biased > 0.05, biased          # the increments point along the missing drift
    assert abs(corrected) < 0.3 * biased  # and stop doing so with the exact correction


def test_network_fit_learns_a_local_nonlinear_increment(xp):
    g = np.random.default_rng(7)
    n, d = 800, 16
    x = 2.0 + 3.0 * g.standard_normal((n, d))
    inc = 0.05 - 0.02 * x + 0.002 * x**2 + 0.01 * (np.roll(x, -1, 1) - np.roll(x, 1, 1))
    data = IncrementData(dalib.asarray(x, xp), dalib.asarray(inc, xp), 0.05)
    corr, history = fit_network(data, rng=8, n_iter=1500, batch_size=32, lr=1e-2,
                                width=3, channels=4, hidden=16)
    assert isinstance(corr, NetworkCorrection)
    z = 2.0 + 3.0 * g.standard_normal((50, d))
    want = 0.05 - 0.02 * z + 0.002 * z**2 + 0.01 * (np.roll(z, -1, 1) - np.roll(z, 1, 1))
    got = corr(dalib.asarray(z, xp))
    assert dalib.backend.backend_name(dalib.backend.namespace(got)) == \
        dalib.backend.backend_name(xp)
    # explained variance on fresh states: a constant would give 0, a linear fit ~0.75
    r2 = 1 - np.mean((npy(got) - want) ** 2) / np.var(want)
    assert r2 > 0.95, r2
    assert history[-100:].mean() < 0.05 * history[:10].mean()


def test_bad_inputs_are_named():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="xf and increments must have the same shape"):
        IncrementData(x, np.zeros((10, 4)), 0.1)
    with pytest.raises(ValueError, match="dt must be positive"):
        IncrementData(x, x, 0.0)
    with pytest.raises(ValueError, match="ridge must be non-negative"):
        fit_linear(IncrementData(x, x, 0.1), ridge=-1.0)
    with pytest.raises(ValueError, match="more pairs than state components"):
        fit_linear(IncrementData(np.zeros((3, 3)), np.zeros((3, 3)), 0.1))
    with pytest.raises(TypeError, match="correction must be callable"):
        IncrementCorrectedModel(lambda x: x, 3.0)
    with pytest.raises(ValueError, match="params must be given"):
        fit_network(IncrementData(x, x, 0.1), rng=0, net=lambda p, x: x)
