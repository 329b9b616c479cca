"""The compiled JAX driver against the Python-loop driver of dalib.da.assimilate."""

import numpy as np
import pytest

import dalib
from dalib.da import ETKF, LETKF, EnKF, KalmanFilter, assimilate
from dalib.setups import lorenz96
from dalib.ssm import TwinExperiment

jax = pytest.importorskip("jax")
from dalib.da.compiled import assimilate_compiled  # noqa: E402

METHODS = [
    ETKF(N=20, inflation=1.02),
    EnKF(N=20, inflation=1.02),  # perturbed observations: the same keys in both drivers
    LETKF(N=20, radius=4.0, inflation=1.02),
]


@pytest.fixture(scope="module")
def twin():
    ssm = lorenz96(xp="jax", Q=1e-4)  # model noise: the forecast draws are compared too
    return ssm.simulate(8, dalib.default_rng(1, "jax"))


@pytest.mark.parametrize("method", METHODS, ids=repr)
def test_same_cycles_as_the_loop_to_round_off(twin, method):
    loop = assimilate(method, twin, dalib.default_rng(3, "jax"), store_ensembles=True)
    rng = dalib.default_rng(3, "jax")
    comp = assimilate_compiled(method, twin, rng, store_ensembles=True)
    for name in ("analysis", "forecast", "spread_a", "spread_f", "innovations",
                 "ensembles_a", "ensembles_f"):
        a, b = np.asarray(getattr(loop, name)), np.asarray(getattr(comp, name))
        assert a.shape == b.shape, name
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-11, err_msg=name)
    assert comp.method == loop.method and comp.burn_in == loop.burn_in
    # the caller's generator continues where the loop's would
    loop_rng = dalib.default_rng(3, "jax")
    assimilate(method, twin, loop_rng)
    np.testing.assert_array_equal(np.asarray(rng.standard_normal(3)),
                                  np.asarray(loop_rng.standard_normal(3)))


def test_long_run_rmse_matches_the_numpy_driver():
    """ETKF, J = 1000 cycles: the time-mean RMSE of the compiled JAX run lies within the
    spread of the NumPy runs over seeds (different random numbers, same statistics)."""
    J = 1000
    method = ETKF(N=20, inflation=1.02)
    truth = lorenz96().simulate(J, dalib.default_rng(7))
    numpy_rmse = [assimilate(method, truth, seed).rmse() for seed in range(4)]
    ssm = lorenz96(xp="jax")
    twin = TwinExperiment(ssm, dalib.asarray(truth.t, "jax"), dalib.asarray(truth.x, "jax"),
                          dalib.asarray(truth.y, "jax"))
    comp = [assimilate_compiled(method, twin, dalib.default_rng(s, "jax")).rmse()
            for s in (0, 1)]
    lo, hi = min(numpy_rmse), max(numpy_rmse)
    width = max(hi - lo, 0.05 * np.mean(numpy_rmse))
    for r in comp:
        assert lo - width <= r <= hi + width, (comp, numpy_rmse)


def test_needs_jax_arrays():
    twin = lorenz96().simulate(3, dalib.default_rng(0))
    with pytest.raises(TypeError, match="on JAX"):
        assimilate_compiled(ETKF(N=5), twin, 0)
    with pytest.raises(TypeError, match="ensemble filter"):
        assimilate_compiled(KalmanFilter(), twin, 0)
