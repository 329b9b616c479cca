"""The self-checks of chapter 9: right answers pass, wrong ones get a hint, never a crash."""

import numpy as np

from dalib.exercises import ch09


def _leith(xf, inc, transpose=False, centre=True):
    n = xf.shape[0]
    xbar, b = xf.mean(0), inc.mean(0)
    X, D = (xf - xbar, inc - b) if centre else (xf, inc)
    L = np.linalg.solve(X.T @ X / n, X.T @ D / n).T
    return (L.T if transpose else L), b, xbar


def test_leith_check():
    assert ch09.check_leith(_leith).passed
    assert "transposed" in ch09.check_leith(lambda *a: _leith(*a, transpose=True)).message
    assert "anomalies" in ch09.check_leith(lambda *a: _leith(*a, centre=False)).message
    assert "triple" in ch09.check_leith(lambda *a: 1.0).message
    assert "replace the `...`" in ch09.check_leith(...).message


def test_corrected_forecast_check():
    assert ch09.check_corrected_forecast(lambda M, c, x: M(x) + c(M(x))).passed
    before = ch09.check_corrected_forecast(lambda M, c, x: M(x + c(x)))
    assert not before.passed and "after the forecast" in before.message
    initial = ch09.check_corrected_forecast(lambda M, c, x: M(x) + c(x))
    assert not initial.passed and "function of the forecast" in initial.message
    assert "raised" in ch09.check_corrected_forecast(lambda M, c, x: 1 / 0).message


def test_mean_increment_check():
    assert ch09.check_mean_increment(lambda A, K, b: K * b / (1 - A * (1 - K))).passed
    naive = ch09.check_mean_increment(lambda A, K, b: b)
    assert not naive.passed and "propagated by A" in naive.message
    sign = ch09.check_mean_increment(lambda A, K, b: -K * b / (1 - A * (1 - K)))
    assert not sign.passed and "sign" in sign.message
