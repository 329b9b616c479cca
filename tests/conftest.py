"""Shared fixtures: the array backends every core test runs on."""

import importlib.util

import numpy as np
import pytest

import dalib


def _gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken CUDA install counts as no GPU
        return False


def _skip_reason(name: str):
    if name == "jax" and importlib.util.find_spec("jax") is None:
        return "JAX is not installed (pip install 'dalib[jax]')"
    if name == "cupy" and not _gpu_available():
        return "CuPy backend needs a CUDA GPU, none is available here"
    if name == "array_api_strict" and importlib.util.find_spec("array_api_strict") is None:
        return "array-api-strict is not installed"
    return None


@pytest.fixture(params=dalib.backend.BACKENDS)
def xp(request):
    """The array namespace of each backend; unavailable ones are skipped with the reason."""
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    return dalib.get_namespace(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(20250613)


def npy(x):
    """Any backend's array as NumPy, for assertions."""
    return dalib.to_numpy(x)
