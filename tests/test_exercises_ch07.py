"""The self-checks of chapter 7: right answers pass, wrong ones get a hint, never a crash."""

import numpy as np
from scipy.stats import multivariate_normal

from dalib.exercises import ch07
from dalib.models import Lorenz96, RK4Map


def _log_evidence(E, y, H, R, ddof=1, constant=True):
    hE = E @ H.T
    Y = hE - hE.mean(0)
    S = Y.T @ Y / (E.shape[0] - ddof) + R
    out = multivariate_normal(hE.mean(0), S).logpdf(y)
    return out if constant else out + 0.5 * len(y) * np.log(2 * np.pi)


def test_log_evidence_check():
    assert ch07.check_log_evidence(_log_evidence).passed
    assert "N - 1" in ch07.check_log_evidence(
        lambda *a: _log_evidence(*a, ddof=0)).message
    assert "normalising constant" in ch07.check_log_evidence(
        lambda *a: _log_evidence(*a, constant=False)).message
    assert "replace the `...`" in ch07.check_log_evidence(...).message
    assert "raised" in ch07.check_log_evidence(lambda *a: 1 / 0).message


def _mstep(X):
    x0, x1 = X[:, :-1].ravel(), X[:, 1:].ravel()
    a = x0 @ x1 / (x0 @ x0)
    return a, np.mean((x1 - a * x0) ** 2)


def test_ar1_mstep_check():
    assert ch07.check_ar1_mstep(_mstep).passed
    mean_only = ch07.check_ar1_mstep(lambda X: _mstep(X.mean(0, keepdims=True)))
    assert not mean_only.passed and "ensemble means" in mean_only.message
    assert "pair" in ch07.check_ar1_mstep(lambda X: 0.8).message
    biased = ch07.check_ar1_mstep(lambda X: (_mstep(X)[0], 2 * _mstep(X)[1]))
    assert not biased.passed and "q =" in biased.message


def _forecast(Z):
    X, F = Z[:, :-1], Z[:, -1:]
    return np.concatenate([RK4Map(Lorenz96(10, F), 0.05)(X), F], axis=1)


def test_augmented_forecast_check():
    assert ch07.check_augmented_forecast(_forecast).passed

    def shared(Z):
        X, F = Z[:, :-1], Z[:, -1:]
        return np.concatenate([RK4Map(Lorenz96(10, float(F.mean())), 0.05)(X), F], axis=1)

    assert "same forcing" in ch07.check_augmented_forecast(shared).message
    assert "persist" in ch07.check_augmented_forecast(lambda Z: Z + 1.0).message
    assert "shape" in ch07.check_augmented_forecast(lambda Z: Z[:, :-1]).message
