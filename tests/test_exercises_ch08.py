"""The self-checks of chapter 8: right answers pass, wrong ones get a hint, never a crash."""

import numpy as np

from dalib.exercises import ch08


def _valid_time(forecast, truth, dt, std, shift=0, unit=1.68 * 0.05):
    e = np.sqrt(np.mean((forecast - truth) ** 2, axis=-1)) / std
    n = np.where((e > 0.5).any(axis=0), np.argmax(e > 0.5, axis=0), e.shape[0] - 1)
    return (n - shift) * unit


def test_valid_time_check():
    assert ch08.check_valid_time(_valid_time).passed
    assert "time units" in ch08.check_valid_time(
        lambda *a: _valid_time(*a, unit=0.05)).message
    assert "numbers of steps" in ch08.check_valid_time(
        lambda *a: _valid_time(*a, unit=1.0)).message
    assert "off by one" in ch08.check_valid_time(lambda *a: _valid_time(*a, shift=1)).message
    assert "shape" in ch08.check_valid_time(lambda *a: 1.0 + np.zeros(3)).message
    assert "replace the `...`" in ch08.check_valid_time(...).message


def _fit(Z, Y, W, b, lam, factor=True, penalty=True):
    Phi = np.cos(Z @ W + b) * (np.sqrt(2 / W.shape[1]) if factor else 1.0)
    A = Phi.T @ Phi + (lam if penalty else 0.0) * np.eye(W.shape[1])
    return np.linalg.solve(A, Phi.T @ Y)


def test_random_feature_ridge_check():
    assert ch08.check_random_feature_ridge(_fit).passed
    assert "sqrt(2 / D)" in ch08.check_random_feature_ridge(
        lambda *a: _fit(*a, factor=False)).message
    assert "least squares" in ch08.check_random_feature_ridge(
        lambda *a: _fit(*a, penalty=False)).message
    assert "raised" in ch08.check_random_feature_ridge(lambda *a: 1 / 0).message


def _spectrum(x, center=True, norm=2):
    d = x.shape[-1]
    x = x - x.mean() if center else x
    return np.mean(np.abs(np.fft.rfft(x, axis=-1)) ** 2, axis=0) / d**norm


def test_spectrum_check():
    assert ch08.check_spectrum(_spectrum).passed
    assert "mean first" in ch08.check_spectrum(lambda x: _spectrum(x, center=False)).message
    assert "d^2, not d" in ch08.check_spectrum(lambda x: _spectrum(x, norm=1)).message
    assert "rfft" in ch08.check_spectrum(lambda x: np.zeros(3)).message
