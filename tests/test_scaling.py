"""Costs that grow linearly in d: no d-by-d or d-by-p arrays in the ETKF and the LETKF.

Also the GPU dispatch points of ``dalib.backend`` on backends without a GPU, and the
benchmark scripts' entry points.
"""

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import dalib
from dalib.backend import eigh
from dalib.covariance import DiagonalCovariance
from dalib.da import etkf_analysis, letkf_analysis, local_observations
from dalib.models import Lorenz96, RK4Map
from dalib.models.fused import lorenz96_rk4, use_fused_kernels
from dalib.observations import EveryKth, Identity

ROOT = Path(__file__).resolve().parents[1]


def brute_force_local(d, locations, c):
    """Every grid point's observations ranked by distance (ties by index), all pairs."""
    locs = np.asarray(locations, float)
    delta = np.abs(np.arange(d)[:, None] - locs[None, :]) % d
    dist = np.minimum(delta, d - delta)
    z = dist / c
    gc = np.where(z <= 1, -z**5 / 4 + z**4 / 2 + 5 * z**3 / 8 - 5 * z**2 / 3 + 1,
                  np.where(z < 2, z**5 / 12 - z**4 / 2 + 5 * z**3 / 8 + 5 * z**2 / 3
                           - 5 * z + 4 - 2 / (3 * np.where(z > 0, z, 1)), 0.0))
    n = int((gc > 0).sum(axis=1).max())
    order = np.argsort(dist, axis=1, kind="stable")[:, :n]
    return order, np.take_along_axis(gc, order, axis=1)


@pytest.mark.parametrize("seed", range(6))
def test_local_observation_sets_equal_ranking_all_pairs(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(30, 300))
    layouts = [
        list(range(int(rng.integers(0, 3)), d, int(rng.integers(1, 5)))),
        rng.choice(d, int(rng.integers(5, d)), replace=False).tolist(),  # unsorted
        rng.uniform(-d, 2 * d, int(rng.integers(5, d))).tolist(),  # off-grid, wrapped
    ]
    for locations in layouts:
        for c in (0.7, 2.0, 4.5, 9.0):
            if len(locations) < 2:
                continue
            index, weight = brute_force_local(d, locations, c)
            if index.shape[1] == 0:
                continue
            local = local_observations(d, locations, c)
            np.testing.assert_array_equal(local.index, index)
            np.testing.assert_allclose(local.weight, weight, rtol=1e-10, atol=1e-12)


def peak_bytes(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_local_observations_never_form_all_distances():
    peaks = []
    for d in (25_000, 50_000):
        locations = range(0, d, 2)  # d / 2 observations: all pairs take 4 d^2 bytes
        peaks.append(peak_bytes(lambda: local_observations(d, locations, 5.0)))
    assert peaks[1] < 1000 * 8 * 50_000  # under 1000 numbers per grid point, not d / 2
    assert 1.6 < peaks[1] / peaks[0] < 2.4


def ensemble(d, N, seed=0):
    rng = np.random.default_rng(seed)
    return 8.0 + rng.standard_normal((N, d)), rng.standard_normal(d)


def test_etkf_memory_is_linear_in_d_with_diagonal_R():
    N = 10
    peaks = []
    for d in (20_000, 40_000):
        E, y = ensemble(d, N)
        h = EveryKth(d, 2)
        R = DiagonalCovariance(np.full(h.p, 0.5))
        peaks.append(peak_bytes(lambda: etkf_analysis(E, y[::2], h, R)))
    assert peaks[1] < 12 * N * 40_000 * 8  # a few ensembles, never d by d (12.8 GB)
    assert 1.6 < peaks[1] / peaks[0] < 2.4


def test_batched_letkf_memory_is_linear_in_d():
    N = 8
    peaks = []
    for d in (10_000, 20_000):
        E, y = ensemble(d, N)
        local = local_observations(d, range(d), 3.0)
        # A small chunk buffer, so that the part that grows with d dominates the peak.
        peaks.append(peak_bytes(lambda: letkf_analysis(E, y, Identity(d), 1.0, local,
                                                       max_bytes=2**20)))
    assert 1.6 < peaks[1] / peaks[0] < 2.4


def test_eigh_dispatch_is_numpy_eigh():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((50, 6, 6))
    A = B @ np.swapaxes(B, -1, -2)
    w, V = eigh(A)
    w_ref, V_ref = np.linalg.eigh(A)
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(V, V_ref)


def test_fused_kernel_only_for_cupy(xp):
    x = dalib.asarray(8.0 + np.random.default_rng(1).standard_normal((3, 12)), xp)
    M = RK4Map(Lorenz96(12), 0.05, 2)
    if dalib.backend.backend_name(xp) != "cupy":
        assert lorenz96_rk4(x, 8.0, 0.05, 2) is None  # the generic code runs
    previous = use_fused_kernels(False)
    try:
        generic = dalib.to_numpy(M(x))
        assert use_fused_kernels(True) is False
        default = dalib.to_numpy(M(x))
    finally:
        use_fused_kernels(previous)
    np.testing.assert_allclose(default, generic, rtol=1e-13, atol=1e-13)


def test_device_helpers():
    import array_api_strict as xs

    dev = xs.Device("device1")
    a = dalib.asarray([1.0, 2.0], xs, device=dev)
    assert dalib.backend.device(a) == dev and dalib.backend.device(2.0) is None
    assert dalib.backend.default_device(xs) == xs.Device()
    assert dalib.backend.default_device("numpy") == "cpu"
    g = dalib.default_rng(0, xs, dev)
    assert g.resolved_device == dev and "device1" in repr(g)
    assert g.uniform((2,)).device == dev
    assert all(c.device == dev for c in g.spawn(2))
    with pytest.raises(ValueError, match="rng draws on device"):
        dalib.default_rng(g, xs, xs.Device())


def test_gpu_check_without_gpu_says_so():
    from conftest import _gpu_available

    if _gpu_available():  # pragma: no cover - on a GPU the script runs for minutes
        pytest.skip("a GPU is present")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no GPU to check" in out.stderr and "--cpu" in out.stderr


def test_scaling_benchmark_pieces():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import scaling
    finally:
        sys.path.pop(0)
    x = np.array([10.0, 100.0, 1000.0])
    assert scaling.fit_slope(x, 3 * x**2) == pytest.approx(2.0)
    xp = dalib.get_namespace("numpy")
    twin = scaling.lorenz96_twin(60, 2, 4, xp)
    assert twin.ssm.p == 30 and isinstance(twin.ssm.R, DiagonalCovariance)
    for name in ("ETKF", "LETKF", "EnKF"):
        row = scaling.measure(name, 6, twin, cycles=2, budget=0.0, xp=xp)
        assert row["finite"] and row["cycles"] >= 1 and row["peak_bytes"] > 0
        assert row["cycle_s"] == pytest.approx(row["forecast_s"] + row["analysis_s"])
