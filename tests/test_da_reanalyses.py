"""The reanalysis of dalib.da.lorenz96_reanalysis: reproducible, as documented, useful."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import ETKF, assimilate, enks, lorenz96_reanalysis


def test_same_call_same_data_on_every_backend(xp):
    a = lorenz96_reanalysis(J=5, xp=xp)
    b = lorenz96_reanalysis(J=5, xp=xp)
    assert a.analysis.shape == (6, 40) and a.twin.y.shape == (5, 20)
    assert dalib.namespace(a.analysis) is xp and dalib.namespace(a.twin.x) is xp
    np.testing.assert_array_equal(npy(a.analysis), npy(b.analysis))
    np.testing.assert_array_equal(npy(a.forecast), npy(b.forecast))
    assert np.all(np.isfinite(npy(a.analysis)))
    c = lorenz96_reanalysis(J=5, seed=3, xp=xp)
    assert not np.allclose(npy(c.twin.x), npy(a.twin.x))


def test_follows_the_documented_recipe():
    # Rebuild the reanalysis by hand from the steps listed in the docstring.
    J, seed = 60, 11
    truth = dalib.setups.lorenz96(obs_every=2)
    twin = truth.simulate(J, rng=seed)
    smoothed = enks(ETKF(N=20, inflation=1.07), twin, rng=seed + 1, lag=10)
    filtered = assimilate(ETKF(N=20, inflation=1.07), twin, rng=seed + 1)
    rea = lorenz96_reanalysis(J=J, seed=seed)
    np.testing.assert_array_equal(rea.twin.x, twin.x)
    np.testing.assert_array_equal(rea.twin.y, twin.y)
    np.testing.assert_allclose(rea.analysis, smoothed.analysis, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rea.forecast, smoothed.forecast, rtol=1e-12, atol=1e-12)
    rea_f = lorenz96_reanalysis(J=J, seed=seed, smoother=False)
    np.testing.assert_allclose(rea_f.analysis, filtered.analysis, rtol=1e-12, atol=1e-12)
    assert rea.extras["truth_ssm"].M.ode.F == 8.0 and rea.twin.ssm.h.p == 20


def test_reanalysis_beats_observations_and_filter():
    rea = lorenz96_reanalysis(J=400)
    x, y = rea.twin.x, rea.twin.y
    obs_error = np.sqrt(np.mean((y - x[1:, ::2]) ** 2))
    assert 0.9 < obs_error < 1.1  # R = I
    filt = float(np.mean(dalib.metrics.rmse(rea.extras["filter_analysis"], x)[100:]))
    assert rea.rmse(burn_in=100) < 0.8 * filt < 0.4  # smoothing helps
    xf, xa = rea.pairs()
    assert xf.shape == xa.shape == (400, 40)
    np.testing.assert_array_equal(rea.increments(), xa - xf)


def test_model_error_changes_the_model_not_the_truth():
    perfect = lorenz96_reanalysis(J=200)
    biased = lorenz96_reanalysis(J=200, F_model=7.0, inflation=1.2)
    np.testing.assert_array_equal(perfect.twin.x, biased.twin.x)
    assert biased.twin.ssm.M.ode.F == 7.0 and biased.extras["truth_ssm"].M.ode.F == 8.0
    assert biased.rmse() > 1.5 * perfect.rmse()
    # Too little forcing: the increments push the state up on average.
    assert float(np.mean(npy(biased.increments()))) > 0.005


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="F_model"):
        lorenz96_reanalysis(J=5, F_model=float("nan"))
    with pytest.raises(ValueError, match="J must be"):
        lorenz96_reanalysis(J=0)
    with pytest.raises(TypeError, match="seed"):
        lorenz96_reanalysis(J=5, seed=1.5)
