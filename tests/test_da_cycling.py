"""The cycling driver, its result object, smoothers and reanalyses."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import (
    ETKF,
    LETKF,
    EnKF,
    ExtendedKF,
    FilterDivergenceError,
    KalmanFilter,
    ThreeDVar,
    assimilate,
    enks,
    kalman_smoother,
    progress_enabled,
    reanalysis,
)
from dalib.models import LinearModel
from dalib.observations import Subset
from dalib.ssm import TwinExperiment


def test_driver_runs_every_ensemble_method_on_every_backend(xp):
    ssm = dalib.setups.lorenz96(d=10, obs_every=2, xp=xp)
    tw = ssm.simulate(6, rng=dalib.default_rng(1, xp))
    for method in (ETKF(N=6, inflation=1.05), EnKF(N=6), LETKF(N=6, radius=3.0)):
        res = assimilate(method, tw, rng=dalib.default_rng(2, xp), store_ensembles=True)
        assert res.analysis.shape == (7, 10) and res.forecast.shape == (7, 10)
        assert res.spread_a.shape == (7,) and res.innovations.shape == (6, 5)
        assert res.ensembles_a.shape == (7, 6, 10) and res.ensembles_f.shape == (7, 6, 10)
        np.testing.assert_allclose(npy(res.analysis), npy(res.ensembles_a).mean(1), atol=1e-12)
        np.testing.assert_allclose(npy(res.innovations),
                                   npy(tw.y) - npy(res.forecast)[1:, ::2], atol=1e-12)
        assert dalib.namespace(res.analysis) is xp
        assert np.isfinite(res.rmse()) and np.isfinite(res.crps())


def test_result_scores_match_metrics():
    tw = dalib.setups.lorenz96(d=10).simulate(30, rng=3)
    res = assimilate(ETKF(N=8, inflation=1.05), tw, rng=4, store_ensembles=True, burn_in=5)
    rmse = np.sqrt(np.mean((res.analysis - tw.x) ** 2, axis=1))
    assert res.rmse() == pytest.approx(rmse[5:].mean())
    assert res.rmse(burn_in=0) == pytest.approx(rmse.mean())
    spread = np.sqrt(np.mean(np.var(res.ensembles_a, axis=1, ddof=1), axis=1))
    np.testing.assert_allclose(res.spread_a, spread, rtol=1e-12)
    assert res.crps() == pytest.approx(
        float(np.mean(dalib.metrics.crps_ensemble(res.ensembles_a, tw.x)[5:])))
    scores = res.scores()
    assert set(scores) == {"rmse_a", "rmse_f", "spread_a", "spread_f", "crps_a"}
    assert scores["rmse_f"] > scores["rmse_a"]
    xf, xa = res.pairs()
    np.testing.assert_array_equal(res.increments(), xa - xf)
    a0, a1 = res.transitions()
    assert a0.shape == a1.shape == (30, 10)
    assert "ETKF(N=8" in repr(res)
    with pytest.raises(ValueError, match="needs ensembles"):
        assimilate(ETKF(N=8), tw, rng=1).crps()


def test_same_seed_same_result():
    tw = dalib.setups.lorenz63().simulate(20, rng=1)
    a = assimilate(EnKF(N=10), tw, rng=5)
    b = assimilate(EnKF(N=10), tw, rng=5)
    np.testing.assert_array_equal(a.analysis, b.analysis)


def test_model_noise_is_added_to_members():
    ssm = dalib.setups.linear_gaussian(d=2, Q=1.0, R=100.0, C0=1e-8)
    tw = ssm.simulate(1, rng=1)
    res = assimilate(EnKF(N=4000), tw, rng=2, store_ensembles=True)
    # forecast covariance = A C0 A^T + Q, about Q = I
    np.testing.assert_allclose(np.cov(res.ensembles_f[1].T), np.eye(2), atol=0.08)


def test_divergence_raises_and_names_the_cycle():
    # Only the first component is observed, so the second one of the exploding model
    # overflows whatever the analysis does (an observed one the analysis pulls back).
    good = dalib.setups.linear_gaussian(d=2, Q=0.1).replace(h=Subset(2, [0]))
    tw = good.simulate(10, rng=1)
    bad = good.replace(M=LinearModel(1e200 * np.eye(2)))  # explodes
    twin = TwinExperiment(ssm=bad, t=tw.t, x=tw.x, y=tw.y)
    with np.errstate(all="ignore"):
        with pytest.raises(FilterDivergenceError, match=r"diverged at cycle \d+ of 10"):
            assimilate(ETKF(N=5), twin, rng=0)
        with pytest.raises(FilterDivergenceError, match=r"KalmanFilter\(\) diverged at cycle"):
            assimilate(KalmanFilter(), twin, rng=0)
    assert issubclass(FilterDivergenceError, RuntimeError)


def test_bad_observations_are_named():
    tw = dalib.setups.lorenz63().simulate(5, rng=1)
    y = np.array(tw.y)
    y[2, 1] = np.nan
    with pytest.raises(ValueError, match="twin.y contains NaN"):
        assimilate(ETKF(N=5), TwinExperiment(tw.ssm, tw.t, tw.x, y), rng=0)
    with pytest.raises(ValueError, match=r"twin.y must have shape \(\.\.\., 3\)"):
        assimilate(ETKF(N=5), TwinExperiment(tw.ssm, tw.t, tw.x, tw.y[:, :2]), rng=0)
    with pytest.raises(ValueError, match="twin.x must have J \\+ 1 = 6 rows"):
        assimilate(ETKF(N=5), TwinExperiment(tw.ssm, tw.t, tw.x[:4], tw.y), rng=0)
    with pytest.raises(TypeError, match="method must be a dalib.da Method"):
        assimilate("ETKF", tw, rng=0)
    with pytest.raises(ValueError, match="LETKF needs a diagonal R"):
        assimilate(LETKF(N=5, radius=2.0), dalib.setups.lorenz63(R=2 * np.eye(3)).simulate(
            2, rng=1), rng=0)
    with pytest.raises(ValueError, match="has no ensemble to store"):
        assimilate(ExtendedKF(), tw, rng=0, store_ensembles=True)


def test_progress_bar_is_off_in_ci_and_when_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(None) is False
    monkeypatch.delenv("CI")
    assert progress_enabled(None) is False  # pytest captures stderr: not a terminal
    assert progress_enabled(True) is True and progress_enabled(False) is False
    tw = dalib.setups.lorenz63().simulate(5, rng=1)
    assimilate(ETKF(N=5), tw, rng=0)
    assert capsys.readouterr().err == ""


def test_3dvar_spread_is_unknown():
    tw = dalib.setups.lorenz63().simulate(5, rng=1)
    res = assimilate(ThreeDVar(B=np.eye(3)), tw, rng=0)
    assert res.spread_a is None and np.isnan(res.spread())


def test_enks_whole_window_approaches_rts_smoother():
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.3)
    tw = ssm.simulate(12, rng=2)
    sm = kalman_smoother(ssm, tw.y)
    res = enks(ETKF(N=200), tw, rng=3)
    sd = np.sqrt(np.diagonal(sm.C, axis1=1, axis2=2))
    z = (res.analysis - sm.m) / sd
    assert np.mean(z**2) < 10 / 200
    np.testing.assert_allclose(res.spread_a, np.sqrt(np.mean(sd**2, axis=1)), rtol=0.1)
    # The final time is the filter; earlier times differ from the filter.
    np.testing.assert_allclose(res.analysis[-1], res.extras["filter_analysis"][-1])
    assert not np.allclose(res.analysis[:-1], res.extras["filter_analysis"][:-1])


def test_enks_lag_zero_is_the_filter_and_lag_improves_it():
    tw = dalib.setups.lorenz96(d=40).simulate(300, rng=4)
    filt = assimilate(ETKF(N=20, inflation=1.02), tw, rng=5, burn_in=50)
    lag0 = enks(ETKF(N=20, inflation=1.02), tw, rng=5, lag=0, burn_in=50)
    np.testing.assert_allclose(lag0.analysis, filt.analysis, atol=1e-10)
    lag3 = reanalysis(ETKF(N=20, inflation=1.02), tw, rng=5, smoother=True, lag=3, burn_in=50)
    assert lag3.rmse() < 0.85 * filt.rmse()
    np.testing.assert_allclose(lag3.forecast, filt.forecast, atol=1e-10)


def test_reanalysis_from_a_filter_keeps_ensembles():
    tw = dalib.setups.lorenz63().simulate(20, rng=6)
    rea = reanalysis(EnKF(N=10, inflation=1.04), tw, rng=1, store_ensembles=True)
    assert rea.ensembles_a.shape == (21, 10, 3)
    xf, xa = rea.pairs()
    assert xf.shape == xa.shape == (20, 3)
    with pytest.raises(ValueError, match="lag is a smoother option"):
        reanalysis(ETKF(N=10), tw, rng=1, lag=2)
    with pytest.raises(TypeError, match="enks needs an ETKF"):
        reanalysis(KalmanFilter(), tw, rng=1, smoother=True)


def test_custom_analysis_step_runs_in_the_driver():
    from dalib.da import EnsembleFilter, etkf_analysis

    tw = dalib.setups.lorenz96(d=10).simulate(20, rng=3)
    custom = EnsembleFilter(8, lambda E, y, ssm, rng: etkf_analysis(E, y, ssm.h, ssm.R),
                            inflation=1.05)
    a = assimilate(custom, tw, rng=4)
    b = assimilate(ETKF(N=8, inflation=1.05), tw, rng=4)
    np.testing.assert_allclose(a.analysis, b.analysis, atol=1e-10)
    with pytest.raises(TypeError, match="update must be callable"):
        EnsembleFilter(8, update=None)


@pytest.mark.parametrize("make", [
    lambda: dalib.da.EnKF(10, inflation=1.05, radius=4.0, additive=0.01),
    lambda: dalib.da.LETKF(10, radius=4.0),
    lambda: dalib.da.ThreeDVar(B=0.5),
    lambda: dalib.da.OptimalPF(20),
], ids=["EnKF-radius", "LETKF", "3DVar", "OptimalPF"])
def test_one_filter_object_serves_interleaved_runs_on_different_models(make):
    # Run constants (local sets, gains, proposals) follow the model they are asked for.
    twins = [dalib.setups.lorenz96(d=d, obs_every=k).replace(Q=0.01).simulate(5, rng=k)
             for d, k in ((40, 1), (20, 2))]
    alone = [assimilate(make(), tw, rng=3).analysis for tw in twins]
    method, rngs = make(), [dalib.default_rng(3) for _ in twins]
    states = [method.init(tw.ssm, r) for tw, r in zip(twins, rngs)]
    analyses = [[method.moments(s)[0]] for s in states]
    for j in range(5):
        for k, tw in enumerate(twins):
            states[k] = method.analysis(method.forecast(states[k], tw.ssm, rngs[k]),
                                        tw.y[j], tw.ssm, rngs[k])
            analyses[k].append(method.moments(states[k])[0])
    for got, want in zip(analyses, alone):
        np.testing.assert_allclose(np.stack(got), want, rtol=1e-10, atol=1e-12)
