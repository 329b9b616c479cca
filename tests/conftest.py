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
        return "JAX is not installed (pip install jax)"
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


def pytest_terminal_summary(terminalreporter):
    """Say how many tests ran on each array backend (the ``xp`` parameter)."""
    counts = {name: {"passed": 0, "failed": 0, "skipped": 0}
              for name in dalib.backend.BACKENDS}
    for outcome in counts["numpy"]:
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            params = nodeid.rpartition("[")[2].rstrip("]").split("-") if "[" in nodeid else []
            for name in counts:
                if name in params:
                    counts[name][outcome] += 1
    if not any(sum(c.values()) for c in counts.values()):
        return
    terminalreporter.write_sep("-", "tests per array backend")
    for name, c in counts.items():
        reason = _skip_reason(name)
        terminalreporter.write_line(
            f"{name:<17} {c['passed']:4d} passed, {c['failed']:3d} failed, "
            f"{c['skipped']:3d} skipped" + (f" ({reason})" if reason else "")
        )
