"""The LETKF in chunks of grid points, and its random rotation."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.da import LETKF, assimilate, chunk_size, letkf_analysis, local_observations
from dalib.observations import EveryKth


def _case(d=60, N=8, seed=0):
    gen = np.random.default_rng(seed)
    E = gen.standard_normal((N, d)) + np.sin(np.arange(d) / 5)
    h = EveryKth(d, 2)
    y = gen.standard_normal(d // 2)
    return E, y, h


@pytest.mark.parametrize("max_bytes", [1, 40_000, 10**9])
def test_chunked_letkf_equals_unchunked(xp, max_bytes):
    """One grid point per chunk, a few chunks (uneven last chunk) or one chunk: the same."""
    E, y, h = _case()
    local = local_observations(60, np.arange(0, 60, 2), 4.0, xp)
    args = dalib.asarray(E, xp), dalib.asarray(y, xp), h, 0.7
    whole = npy(letkf_analysis(*args, local, max_bytes=10**12))
    chunked = npy(letkf_analysis(*args, local, max_bytes=max_bytes))
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


def test_chunk_size_bounds_the_buffers():
    assert chunk_size(20, 10, max_bytes=1) == 1
    per_point = (4 * 400 + 3 * 200 + 80) * 8
    assert chunk_size(20, 10, max_bytes=10 * per_point) == 10
    with pytest.raises(ValueError, match="max_bytes"):
        LETKF(N=5, radius=2.0, max_bytes=0)


def test_rotated_letkf_keeps_the_analysis_mean_and_covariance():
    """A mean-preserving rotation of the analysis anomalies changes the members only."""
    twin = dalib.setups.lorenz96(d=20).simulate(J=3, rng=1)
    kw = {"rng": 2, "store_ensembles": True}
    plain = assimilate(LETKF(N=8, radius=3.0, inflation=1.02), twin, **kw)
    rotated = assimilate(LETKF(N=8, radius=3.0, inflation=1.02, rotate=True), twin, **kw)
    # Same first forecast; the rotated analysis has the same mean and covariance.
    Ea, Er = npy(plain.ensembles_a[1]), npy(rotated.ensembles_a[1])
    np.testing.assert_allclose(Er.mean(axis=0), Ea.mean(axis=0), atol=1e-10)
    np.testing.assert_allclose(np.cov(Er.T), np.cov(Ea.T), atol=1e-10)
    assert np.abs(Er - Ea).max() > 1e-3
    assert "rotate=True" in repr(LETKF(N=8, radius=3.0, rotate=True))


def test_letkf_analysis_does_not_depend_on_the_memory_layout():
    """A column-major ensemble (as the LETKF's own analyses come out) gives the same analysis."""
    E, y, h = _case(seed=3)
    local = local_observations(60, np.arange(0, 60, 2), 4.0)
    a = letkf_analysis(np.ascontiguousarray(E), y, h, 0.7, local, max_bytes=40_000)
    b = letkf_analysis(np.asfortranarray(E), y, h, 0.7, local, max_bytes=40_000)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)  # BLAS may round differently


def test_default_chunk_bound_depends_on_the_backend(xp):
    """1 MiB with NumPy (cache-sized chunks), 64 MiB elsewhere; LETKF() uses it."""
    from dalib.da.localization import CHUNK_BYTES, CHUNK_BYTES_NUMPY, default_max_bytes

    numpy = dalib.backend.backend_name(xp) == "numpy"
    assert default_max_bytes(xp) == (CHUNK_BYTES_NUMPY if numpy else CHUNK_BYTES)
    assert CHUNK_BYTES_NUMPY < CHUNK_BYTES
    assert "max_bytes" not in repr(LETKF(N=5, radius=2.0))
