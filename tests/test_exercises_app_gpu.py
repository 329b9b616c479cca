"""The self-checks of the appendix "GPU ensembles": right answers pass, wrong ones get a hint."""

import numpy as np

from dalib.exercises import Feedback, app_gpu


def slope_ok(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


def test_loglog_slope_accepts_least_squares_in_any_log_base():
    assert app_gpu.check_loglog_slope(slope_ok).passed
    assert app_gpu.check_loglog_slope(
        lambda x, y: np.polyfit(np.log10(x), np.log10(y), 1)[0]).passed


def test_loglog_slope_hints():
    assert "replace the `...`" in app_gpu.check_loglog_slope(...).message
    fb = app_gpu.check_loglog_slope(lambda x, y: (y[-1] - y[0]) / (x[-1] - x[0]))
    assert not fb.passed and "take logarithms" in fb.message

    def ends(x, y):
        return (np.log(y[-1]) - np.log(y[0])) / (np.log(x[-1]) - np.log(x[0]))

    fb = app_gpu.check_loglog_slope(ends)
    assert not fb.passed and "least squares" in fb.message
    fb = app_gpu.check_loglog_slope(lambda x, y: tuple(np.polyfit(np.log(x), np.log(y), 1)))
    assert not fb.passed and "intercept" in fb.message
    fb = app_gpu.check_loglog_slope(lambda x, y: 1 / 0)
    assert isinstance(fb, Feedback) and "ZeroDivisionError" in fb.message


def centering_ok(E):
    import dalib

    xp, dev = dalib.namespace(E), dalib.backend.device(E)
    N = E.shape[0]
    return (xp.eye(N, dtype=E.dtype, device=dev)
            - xp.ones((N, N), dtype=E.dtype, device=dev) / N)


def test_centering_matrix_accepts_a_device_safe_answer():
    fb = app_gpu.check_centering_matrix(centering_ok)
    assert fb.passed, fb.message


def test_centering_matrix_hints():
    import dalib

    def host_made(E):  # right values, but made on the default device
        xp = dalib.namespace(E)
        N = E.shape[0]
        return xp.eye(N, dtype=E.dtype) - xp.ones((N, N), dtype=E.dtype) / N

    fb = app_gpu.check_centering_matrix(host_made)
    assert not fb.passed and "device=" in fb.message

    def numpy_only(E):
        N = E.shape[0]
        return np.eye(N) - np.ones((N, N)) / N

    fb = app_gpu.check_centering_matrix(numpy_only)
    assert not fb.passed and "namespace of E" in fb.message

    def float64_always(E):
        xp, dev = dalib.namespace(E), dalib.backend.device(E)
        N = E.shape[0]
        return xp.eye(N, dtype=xp.float64, device=dev) - 1.0 / N

    fb = app_gpu.check_centering_matrix(float64_always)
    assert not fb.passed and "dtype=E.dtype" in fb.message

    def d_by_d(E):
        d = E.shape[1]
        return np.eye(d) - np.ones((d, d)) / d

    assert "N by N" in app_gpu.check_centering_matrix(d_by_d).message

    def over_variables(E):
        N = E.shape[0]
        return np.eye(N)

    assert "anomalies" in app_gpu.check_centering_matrix(over_variables).message
    assert "replace the `...`" in app_gpu.check_centering_matrix(...).message


def test_transform_intensity_accepts_the_count_and_hints():
    def ok(d, N):
        return 2 * N**2 * d / (8 * (N**2 + 2 * N * d))

    assert app_gpu.check_transform_intensity(ok).passed
    fb = app_gpu.check_transform_intensity(lambda d, N: N**2 * d / (8 * (N**2 + 2 * N * d)))
    assert not fb.passed and "2 N^2 d" in fb.message
    fb = app_gpu.check_transform_intensity(lambda d, N: 2 * N**2 * d / (N**2 + 2 * N * d))
    assert not fb.passed and "8 bytes" in fb.message
    fb = app_gpu.check_transform_intensity(lambda d, N: 2 * N**2 * d / (8 * (N**2 + N * d)))
    assert not fb.passed and "written" in fb.message
    fb = app_gpu.check_transform_intensity(lambda d, N: N / 8)
    assert not fb.passed and "flops per byte" in fb.message
    fb = app_gpu.check_transform_intensity(lambda d, N: "fast")
    assert not fb.passed and "number" in fb.message
