"""Filters stay on their device: the full cycle of every method with the data on a GPU.

Without a GPU, array-api-strict plays the GPU.  Its arrays can live on a non-default
device (``Device("device1")``); it refuses to combine arrays of two devices and to turn
such an array into a NumPy array.  So a run whose inputs are all on ``device1`` fails if
dalib creates an array without ``device=`` (it would land on the CPU device and meet a
``device1`` array), and the counters below catch every value the code asks the device
for (``float``, ``bool``, ``int``, indexing with an array, DLPack export to NumPy) and
every host array copied to the device.  Runs of two lengths give the cost per cycle.

With a GPU, the same runs go through CuPy, and the fused Lorenz-96 kernel is compared with
the generic array code.
"""

import numpy as np
import pytest
from conftest import _gpu_available, npy

import dalib
from dalib.da import (
    ETKF,
    LETKF,
    BootstrapPF,
    EnKF,
    EnsembleFilter,
    ExtendedKF,
    KalmanFilter,
    OptimalPF,
    ThreeDVar,
    assimilate,
    enks,
)
from dalib.ssm import TwinExperiment

xs = pytest.importorskip("array_api_strict")
DEV = xs.Device("device1")
CPU = xs.Device()
ARRAY = type(xs.asarray(0.0))


@pytest.fixture
def counts(monkeypatch):
    """Count device-to-host reads and host-to-device copies of array-api-strict arrays."""
    seen = {"sync": 0, "to_host": 0, "upload": 0}

    def counting(name):
        original = getattr(ARRAY, name)

        def method(self, *args, **kwargs):
            if self.device != CPU:
                seen["to_host" if name == "__dlpack__" else "sync"] += 1
            return original(self, *args, **kwargs)

        return method

    for name in ("__bool__", "__float__", "__int__", "__index__", "__complex__",
                 "__dlpack__"):
        monkeypatch.setattr(ARRAY, name, counting(name))
    asarray = xs.asarray

    def counting_asarray(obj, /, *args, device=None, **kwargs):
        if not isinstance(obj, ARRAY) and device is not None and device != CPU:
            seen["upload"] += 1
        return asarray(obj, *args, device=device, **kwargs)

    monkeypatch.setattr(xs, "asarray", counting_asarray)

    def host(self, values):  # the stand-in generator draws on the host: not counted
        return asarray(values, device=self.device)

    monkeypatch.setattr(dalib.random.Generator, "_host", host)
    return seen


def _on_device(tree):
    """All arrays in a result (or nested tuples, dicts) live on DEV."""
    if isinstance(tree, ARRAY):
        return tree.device == DEV
    if isinstance(tree, dict):
        return all(_on_device(v) for v in tree.values())
    if isinstance(tree, (tuple, list)):
        return all(_on_device(v) for v in tree)
    return True


def _shorter(twin, J):
    return TwinExperiment(ssm=twin.ssm, t=twin.t[: J + 1], x=twin.x[: J + 1, :],
                          y=twin.y[:J, :])


def _setups():
    l96 = dalib.setups.lorenz96(d=12, xp=xs, device=DEV)
    noisy = dalib.setups.lorenz96(d=12, Q=0.05, R=0.5, xp=xs, device=DEV)
    sparse = dalib.setups.lorenz96(d=12, obs_every=3, xp=xs, device=DEV)
    linear = dalib.setups.linear_gaussian(d=4, xp=xs, device=DEV)
    l63 = dalib.setups.lorenz63(xp=xs, device=DEV)
    two = dalib.setups.lorenz96_two_scale(K=4, J=2, dt=0.01, xp=xs, device=DEV)
    return {"l96": l96, "noisy": noisy, "sparse": sparse, "linear": linear, "l63": l63,
            "two-scale": two}


def _nudge(E, y, ssm, rng):
    """A user-supplied analysis that pulls every member halfway to the observation."""
    return E + 0.5 * (y - ssm.h(E))


CASES = {
    "ETKF": ("l96", lambda: ETKF(N=8, inflation=1.05)),
    "ETKF rotated": ("l96", lambda: ETKF(N=8, inflation=1.05, rotate=True)),
    "EnKF": ("l96", lambda: EnKF(N=8, inflation=1.05)),
    "EnKF few obs": ("sparse", lambda: EnKF(N=8, inflation=1.05)),  # N > p: p-space
    "EnKF localised": ("sparse", lambda: EnKF(N=6, inflation=1.05, radius=3.0)),
    "LETKF": ("l96", lambda: LETKF(N=6, radius=2.0, inflation=1.05)),
    "LETKF sparse": ("sparse", lambda: LETKF(N=6, radius=4.0, inflation=1.05)),
    "additive": ("l96", lambda: ETKF(N=8, additive=0.01)),
    "EnsembleFilter": ("l96", lambda: EnsembleFilter(8, _nudge, inflation=1.05)),
    "BootstrapPF": ("noisy", lambda: BootstrapPF(N=50)),
    "OptimalPF": ("noisy", lambda: OptimalPF(N=50)),
    "KalmanFilter": ("linear", lambda: KalmanFilter()),
    "ExtendedKF": ("l63", lambda: ExtendedKF()),
    "ThreeDVar": ("l96", lambda: ThreeDVar(B=0.3)),
    "Subset h": ("two-scale", lambda: ETKF(N=6, inflation=1.05)),
}


@pytest.fixture(scope="module")
def twins():
    out = {}
    for name, ssm in _setups().items():
        out[name] = ssm.simulate(20, rng=dalib.default_rng(1, xs, DEV))
    return out


def _run(method, twin, counts, **kwargs):
    before = dict(counts)
    res = assimilate(method, twin, rng=dalib.default_rng(2, xs, DEV), **kwargs)
    return res, {k: counts[k] - before[k] for k in counts}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_full_cycle_stays_on_the_device(case, twins, counts):
    setup, make = CASES[case]
    twin = twins[setup]
    # Both runs are long enough (>= 10 cycles) for the end-of-run divergence judgement,
    # whose few reads are then the same in both and cancel in the per-cycle count.
    short, J1, J2 = _shorter(twin, 10), 10, twin.J
    store = case not in ("KalmanFilter", "ExtendedKF", "ThreeDVar")
    _, c1 = _run(make(), short, counts, store_ensembles=store)
    res, c2 = _run(make(), twin, counts, store_ensembles=store)
    per_cycle = {k: (c2[k] - c1[k]) / (J2 - J1) for k in c1}
    assert per_cycle["to_host"] == 0 and c2["to_host"] == 0, c2
    assert per_cycle["upload"] == 0, (c1, c2)
    assert per_cycle["sync"] <= 1, (c1, c2)  # only the divergence check
    assert _on_device((res.analysis, res.forecast, res.spread_a, res.spread_f,
                       res.innovations, res.ensembles_a, res.log_weights, res.extras))
    assert np.all(np.isfinite(npy(res.analysis)))


@pytest.mark.parametrize("case", ["ETKF", "LETKF sparse", "BootstrapPF", "KalmanFilter"])
def test_without_the_divergence_check_the_loop_never_syncs(case, twins, counts):
    setup, make = CASES[case]
    twin = twins[setup]
    _, c1 = _run(make(), _shorter(twin, 10), counts, check_every=0)
    _, c2 = _run(make(), twin, counts, check_every=0)
    assert c2["sync"] == c1["sync"] and c2["upload"] == c1["upload"], (c1, c2)
    _, c3 = _run(make(), twin, counts, check_every=4)
    assert c3["sync"] - c2["sync"] == 5  # cycles 0, 4, 8, 12 and 16 of 20


def test_smoother_stays_on_the_device(twins, counts):
    twin = twins["l96"]
    before = dict(counts)
    res = enks(ETKF(N=8, inflation=1.05), twin, rng=dalib.default_rng(3, xs, DEV), lag=3)
    assert counts["to_host"] == before["to_host"]
    # the driver's divergence check: per cycle and after the last; and y checked once
    assert counts["sync"] - before["sync"] <= twin.J + 2
    assert _on_device((res.analysis, res.spread_a))


def test_device_results_equal_numpy_results(twins):
    """The device path computes the same numbers (same seed, same host generator)."""
    for case in ("ETKF rotated", "EnKF localised", "LETKF sparse", "OptimalPF"):
        setup, make = CASES[case]
        twin = twins[setup]
        ssm_np = twin.ssm.replace(m0=np.asarray(npy(twin.ssm.m0)))
        twin_np = TwinExperiment(ssm=ssm_np, t=npy(twin.t), x=npy(twin.x), y=npy(twin.y))
        a = assimilate(make(), twin, rng=dalib.default_rng(5, xs, DEV))
        b = assimilate(make(), twin_np, rng=5)
        if case == "OptimalPF":  # device backends draw one more uniform per cycle
            assert abs(a.rmse() - b.rmse()) < 0.5
        else:
            np.testing.assert_allclose(npy(a.analysis), b.analysis, rtol=1e-10, atol=1e-12)


def test_the_checks_catch_host_arrays_and_round_trips(counts):
    """The harness itself: a host-made array or a copy to NumPy does not go unnoticed."""
    x = xs.ones(3, device=DEV)
    with pytest.raises(ValueError, match="different devices"):
        _ = xs.zeros(3) + x
    with pytest.raises(RuntimeError, match="device"):
        np.asarray(x)
    dalib.to_numpy(x)
    float(x[0])
    xs.asarray([1.0, 2.0], device=DEV)
    assert counts == {"sync": 1, "to_host": 1, "upload": 1}


def test_rng_must_draw_on_the_arrays_device(twins):
    twin = twins["l96"]
    with pytest.raises(ValueError, match="rng draws on device"):
        assimilate(ETKF(N=4), twin, rng=dalib.default_rng(0, xs))
    assert dalib.default_rng(0, xs, DEV).standard_normal((2, 3)).device == DEV


# ----------------------------------------------------------------------------------------
# On a GPU (skipped here): CuPy itself
# ----------------------------------------------------------------------------------------

gpu = pytest.mark.skipif(not _gpu_available(),
                         reason="CuPy backend needs a CUDA GPU, none is available here")


@gpu
@pytest.mark.parametrize("case", ["ETKF", "EnKF", "LETKF", "BootstrapPF", "OptimalPF"])
def test_cupy_cycle_without_synchronisation(case):  # pragma: no cover - needs a GPU
    """forecast and analysis steps never synchronise with the host on CuPy."""
    import cupy
    import cupyx

    setup, make = CASES[case]
    kw = {"l96": {}, "noisy": {"Q": 0.05, "R": 0.5}}[setup]
    ssm = dalib.setups.lorenz96(d=40, xp="cupy", **kw)
    twin = ssm.simulate(20, rng=dalib.default_rng(1, "cupy"))
    method, rng = make(), dalib.default_rng(2, "cupy")
    method.check(ssm)
    state = method.init(ssm, rng)
    with cupyx.allow_synchronize(False):
        for j in range(twin.J):
            state = method.forecast(state, ssm, rng)
            state = method.analysis(state, twin.y[j, :], ssm, rng)
            method.moments(state)
    res = assimilate(make(), twin, rng=dalib.default_rng(2, "cupy"))
    assert isinstance(res.analysis, cupy.ndarray)
    assert np.isfinite(res.rmse())


@gpu
def test_fused_lorenz96_kernel_matches_generic_code():  # pragma: no cover - needs a GPU
    import cupy

    from dalib.models import Lorenz96, RK4Map
    from dalib.models.fused import use_fused_kernels

    rng = np.random.default_rng(0)
    for d, shape, dtype, tol in ((40, (20,), "float64", 1e-13), (1001, (3, 5), "float64",
                                 1e-13), (4, (), "float64", 1e-13), (100, (8,), "float32",
                                 1e-5)):
        x = cupy.asarray(8 + rng.standard_normal((*shape, d)), dtype=dtype)
        M = RK4Map(Lorenz96(d, 8.0), 0.05, 3)
        previous = use_fused_kernels(True)
        try:
            fused = M(x)
            use_fused_kernels(False)
            generic = M(x)
        finally:
            use_fused_kernels(previous)
        assert fused.dtype == generic.dtype and fused.shape == generic.shape
        scale = float(cupy.max(cupy.abs(generic)))
        assert float(cupy.max(cupy.abs(fused - generic))) <= tol * scale
        # a non-contiguous input gives the same result
        xt = cupy.asarray(np.swapaxes(np.asarray(x.get()), -1, 0).copy()).swapaxes(-1, 0)
        assert float(cupy.max(cupy.abs(M(xt) - fused))) <= tol * scale


@gpu
def test_batched_eigh_in_chunks_on_cupy():  # pragma: no cover - needs a GPU
    import cupy

    from dalib.backend import CUPY_EIGH_BATCH, eigh

    rng = np.random.default_rng(1)
    B = rng.standard_normal((CUPY_EIGH_BATCH + 7, 6, 6))
    A = B @ np.swapaxes(B, -1, -2)
    w, V = eigh(cupy.asarray(A))
    np.testing.assert_allclose(w.get(), np.linalg.eigvalsh(A), rtol=1e-9, atol=1e-9)
    recon = (V * w[:, None, :]) @ cupy.swapaxes(V, -1, -2)
    np.testing.assert_allclose(recon.get(), A, rtol=1e-9, atol=1e-9)

