"""Self-checks for the exercises of the appendix "GPU ensembles"."""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from ._framework import Unfinished, Wrong, call_answer, exercise

__all__ = ["check_loglog_slope", "check_centering_matrix", "check_transform_intensity"]


def _number(value, what):
    if isinstance(value, (tuple, list)):
        raise Wrong(f"{what} should be one number; you returned {len(value)} values (only "
                    "the slope is asked for, not the intercept).")
    try:
        out = float(to_numpy(value)) if hasattr(value, "shape") else float(value)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be a number, got {type(value).__name__}.") from None
    if not math.isfinite(out):
        raise Wrong(f"{what} is {out}: are some sizes or times zero or negative?")
    return out


@exercise("app_gpu log-log slope")
def check_loglog_slope(loglog_slope):
    """Check ``loglog_slope(x, y)``: the least-squares slope of log y against log x."""
    rng = np.random.default_rng(7)
    x = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6])
    for a in (1.0, 2.0, 3.0, 0.5):
        y = 2e-8 * x**a
        got = _number(call_answer(loglog_slope, x.copy(), y.copy()), "the slope")
        if math.isclose(got, (y[-1] - y[0]) / (x[-1] - x[0]), rel_tol=1e-6):
            raise Wrong("that is the slope of y against x; take logarithms of both first.")
        if not math.isclose(got, a, rel_tol=1e-6, abs_tol=1e-9):
            raise Wrong(f"for y proportional to x^{a:g} the slope is {a:g}, you returned "
                        f"{got:.4g}. Fit a straight line to (log x, log y).")
    y = 3e-8 * x * np.exp(0.3 * rng.standard_normal(x.size))  # linear cost, noisy timings
    expected = np.polyfit(np.log(x), np.log(y), 1)[0]
    got = _number(call_answer(loglog_slope, x.copy(), y.copy()), "the slope")
    ends = (np.log(y[-1]) - np.log(y[0])) / (np.log(x[-1]) - np.log(x[0]))
    if math.isclose(got, ends, rel_tol=1e-9) and not math.isclose(ends, expected, rel_tol=1e-3):
        raise Wrong("with noisy timings the two end points are not enough: fit all points "
                    "by least squares (e.g. np.polyfit(np.log(x), np.log(y), 1)).")
    if not math.isclose(got, expected, rel_tol=1e-6):
        raise Wrong(f"on noisy data the least-squares slope is {expected:.4f}, you returned "
                    f"{got:.4f}.")
    return "your slope is the least-squares fit in log-log coordinates."


def _strict_ensemble(values, dtype_name="float64"):
    import array_api_strict as xs

    dev = xs.Device("device1")
    return xs.asarray(values, dtype=getattr(xs, dtype_name), device=dev), dev


@exercise("app_gpu centring matrix")
def check_centering_matrix(centering_matrix):
    """Check ``centering_matrix(E)``: I - 11^T/N on the device and dtype of E."""
    rng = np.random.default_rng(3)
    E = rng.standard_normal((5, 7)) + 3.0
    expected = np.eye(5) - np.ones((5, 5)) / 5
    got = call_answer(centering_matrix, E.copy())
    try:
        got_np = np.asarray(to_numpy(got), dtype=float)
    except Exception:  # noqa: BLE001 - not an array
        raise Wrong(f"expected an array, got {type(got).__name__}.") from None
    if got_np.shape == (7, 7):
        raise Wrong("the matrix multiplies the ensemble from the left, C @ E, so it is N by "
                    "N with N = E.shape[0] (the members), not d by d.")
    if got_np.shape != (5, 5):
        raise Wrong(f"expected an N by N matrix, shape (5, 5), got shape {got_np.shape}.")
    if not np.allclose(got_np, expected, atol=1e-12):
        if np.allclose(got_np @ E, E - E.mean(axis=1, keepdims=True)):
            raise Wrong("that removes the mean over the variables; C @ E should remove the "
                        "mean over the members (axis 0).")
        raise Wrong("C @ E should give the anomalies E - mean(E, axis=0): C = I - 1 1^T / N.")
    try:
        import array_api_strict  # noqa: F401
    except ImportError:  # pragma: no cover - the test extra is installed with the book
        raise Unfinished("the values are right; install array-api-strict to check the device "
                         "too.") from None
    for dtype_name in ("float64", "float32"):
        E_dev, dev = _strict_ensemble(E, dtype_name)
        try:
            C = centering_matrix(E_dev)
            anomalies = C @ E_dev
        except ValueError as err:
            if "device" in str(err):
                raise Wrong("an array was made on the default device while E lives on "
                            "another one: pass device=dalib.backend.device(E) (or "
                            "array_api_compat.device(E)) to xp.eye, xp.ones, ...") from None
            raise Wrong(f"on a device array your function raised ValueError: {err}") from None
        except (RuntimeError, TypeError) as err:
            raise Wrong("on a device array your function failed "
                        f"({type(err).__name__}: {err}). Use the namespace of E "
                        "(dalib.namespace(E)), not NumPy.") from None
        except Exception as err:  # noqa: BLE001
            raise Wrong(f"on a device array your function raised {type(err).__name__}: "
                        f"{err}") from None
        if getattr(C, "device", None) != dev:
            raise Wrong("the matrix must live on the device of E.")
        if C.dtype != E_dev.dtype:
            raise Wrong(f"E has dtype {E_dev.dtype} but your matrix has dtype {C.dtype}: "
                        "create it with dtype=E.dtype.")
        del anomalies
    return ("right values, and on the device and dtype of E: C @ E never leaves the GPU "
            "(here array-api-strict's 'device1' played the GPU).")


def _intensity(d, N):
    return 2 * N * N * d / (8 * (N * N + 2 * N * d))


@exercise("app_gpu arithmetic intensity")
def check_transform_intensity(transform_intensity):
    """Check ``transform_intensity(d, N)``: flops per byte of W @ X, W (N, N), X (N, d)."""
    for d, N in ((10**6, 100), (1000, 20), (40, 40), (10**5, 1000)):
        got = _number(call_answer(transform_intensity, d, N), "the intensity")
        want = _intensity(d, N)
        if math.isclose(got, want, rel_tol=1e-9):
            continue
        ratio = got / want if want else math.inf
        if math.isclose(ratio, 0.5, rel_tol=1e-6):
            raise Wrong("count 2 flops per term of the sum (a multiply and an add): the "
                        "product takes 2 N^2 d flops.")
        if math.isclose(ratio, 8.0, rel_tol=1e-6):
            raise Wrong("intensity is flops per byte, and a float64 takes 8 bytes.")
        flops_only_read = 2 * N * N * d / (8 * (N * N + N * d))
        if math.isclose(got, flops_only_read, rel_tol=1e-9):
            raise Wrong("the result, N by d, is written to memory too: count it with W and "
                        "X.")
        raise Wrong(f"for d = {d}, N = {N} the intensity is {want:.4g} flops per byte, you "
                    f"returned {got:.4g}. Flops: 2 N^2 d. Bytes: 8 (N^2 + 2 N d).")
    return ("for large d it approaches N / 8 flops per byte: above N of about 100 the "
            "transform outgrows the machine balance (of order 10 flops per byte) and becomes "
            "limited by arithmetic, not memory.")
