"""The multi-model ensemble Kalman filter (after Bach and Ghil 2023)."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import MultiModelEnKF, assimilate
from dalib.models import Lorenz96, RK4Map

D, FORCINGS, STEPS = 40, (8.0, 10.0, 12.0, 14.0), 2


def sector_twin(seed, J, xp="numpy"):
    """Truth with forcing 8, 10, 12, 14 in four blocks of the grid; full observation."""
    F = np.repeat(np.array(FORCINGS), D // 4)
    base = dalib.setups.lorenz96(d=D, dt_obs=0.05 * STEPS, xp=xp)
    truth = base.replace(M=RK4Map(Lorenz96(D, dalib.asarray(F, xp)), 0.05, STEPS))
    return truth.simulate(J, rng=dalib.default_rng(seed, xp=xp))


MODELS = [RK4Map(Lorenz96(D, F), 0.05, STEPS) for F in FORCINGS]


def test_identical_models_get_equal_weights_on_every_backend(xp):
    tw = sector_twin(0, 10, xp)
    mm = MultiModelEnKF([MODELS[1], MODELS[1]], N=10, inflation=1.05)
    res = assimilate(mm, tw, rng=dalib.default_rng(1, xp=xp))
    np.testing.assert_allclose(npy(res.extras["weights"]), 0.5, atol=1e-12)
    assert np.all(np.isfinite(npy(res.analysis)))


def test_multimodel_enkf_beats_each_model_and_their_mean_on_sector_forcing():
    J, burn, N, infl = 250, 80, 40, 1.05
    for seed in range(3):
        tw = sector_twin(seed, J)

        def rmse(method, tw=tw, seed=seed):
            res = assimilate(method, tw, rng=seed + 10)
            return float(np.sqrt(np.mean((res.analysis[burn:] - tw.x[burn:]) ** 2))), res

        single = [rmse(MultiModelEnKF([M], N=N, inflation=infl, weights=[1.0]))[0]
                  for M in MODELS]
        mean = rmse(MultiModelEnKF(MODELS, N=N, inflation=infl, weights=[0.25] * 4))[0]
        mm, res = rmse(MultiModelEnKF(MODELS, N=N, inflation=infl, smoothing=0.01))
        assert mm < 0.95 * min(single), (seed, mm, single)
        assert mm < 0.95 * mean, (seed, mm, mean)
        w = res.extras["weights"].reshape(4, 4, D // 4).mean(axis=-1)  # model, sector
        np.testing.assert_array_equal(np.argmax(w, axis=0), np.arange(4))


def test_needs_full_observation():
    ssm = dalib.setups.lorenz96(d=D, obs_every=2)
    tw = ssm.simulate(3, rng=0)
    with pytest.raises(ValueError, match="full observation"):
        assimilate(MultiModelEnKF(MODELS, N=10), tw, rng=0)


def test_one_instance_serves_interleaved_runs():
    # The running weight sums live in the state, not on the filter object.
    mm = MultiModelEnKF(MODELS[:2], N=10, inflation=1.05)
    twins = [sector_twin(s, 6) for s in (3, 4)]
    alone = [assimilate(MultiModelEnKF(MODELS[:2], N=10, inflation=1.05), tw,
                        rng=7).extras["weights"] for tw in twins]
    rngs = [dalib.default_rng(7) for _ in twins]
    states = [mm.init(tw.ssm, r) for tw, r in zip(twins, rngs)]
    for j in range(twins[0].J):
        for k, tw in enumerate(twins):
            states[k] = mm.forecast(states[k], tw.ssm, rngs[k])
            states[k] = mm.analysis(states[k], tw.y[j], tw.ssm, rngs[k])
    for state, weights in zip(states, alone):
        np.testing.assert_allclose(mm.extras(state)["weights"], weights, rtol=1e-12)
