"""The self-checks of chapter 10: right answers pass, wrong ones get a hint, never a crash."""

import numpy as np

from dalib.exercises import ch10


def _mfmc(y_hi, y_lo, alpha, nested=True, sign=1.0):
    m, n_prev = np.mean(y_hi), len(y_hi)
    for y, a in zip(y_lo, alpha):
        m = m + sign * a * (np.mean(y) - np.mean(y[:n_prev]))
        n_prev = len(y) if nested else n_prev
    return m


def _var(sigma_hi, rho, N_hi, N, nested=True, square=True):
    var, n_prev = sigma_hi**2 / N_hi, N_hi
    for r, n in zip(rho, N):
        var = var - (1 / n_prev - 1 / n) * (r**2 if square else r) * sigma_hi**2
        n_prev = n if nested else n_prev
    return var


def _bound(A, K, H, eps, gain_factor=True, split=False):
    I_KH = np.eye(A.shape[0]) - K @ H
    lam = (np.linalg.norm(I_KH, 2) * np.linalg.norm(A, 2) if split
           else np.linalg.norm(I_KH @ A, 2))
    if lam >= 1:
        return np.inf
    return (np.linalg.norm(I_KH, 2) if gain_factor else 1.0) * eps / (1 - lam)


def test_mfmc_check():
    assert ch10.check_mfmc(_mfmc).passed
    flat = ch10.check_mfmc(lambda *a: _mfmc(*a, nested=False))
    assert not flat.passed and "N_{k-1}" in flat.message
    assert "sign" in ch10.check_mfmc(lambda *a: _mfmc(*a, sign=-1.0)).message
    assert "missing" in ch10.check_mfmc(lambda y_hi, y_lo, a: np.mean(y_hi)).message
    assert "replace the `...`" in ch10.check_mfmc(...).message


def test_mfmc_variance_check():
    assert ch10.check_mfmc_variance(_var).passed
    flat = ch10.check_mfmc_variance(lambda *a: _var(*a, nested=False))
    assert not flat.passed and "1/N_{k-1} - 1/N_k" in flat.message
    assert "squared" in ch10.check_mfmc_variance(lambda *a: _var(*a, square=False)).message
    plain = ch10.check_mfmc_variance(lambda s, r, n, N: s**2 / n)
    assert not plain.passed and "plain Monte Carlo" in plain.message
    assert "raised" in ch10.check_mfmc_variance(lambda *a: 1 / 0).message


def test_closeness_bound_check():
    assert ch10.check_closeness_bound(_bound).passed
    no_gain = ch10.check_closeness_bound(lambda *a: _bound(*a, gain_factor=False))
    assert not no_gain.passed and "|I - KH|" in no_gain.message
    split = ch10.check_closeness_bound(lambda *a: _bound(*a, split=True))
    assert not split.passed and "product" in split.message

    def never_inf(A, K, H, eps):
        I_KH = np.eye(A.shape[0]) - K @ H
        return np.linalg.norm(I_KH, 2) * eps / abs(1 - np.linalg.norm(I_KH @ A, 2))

    assert "np.inf" in ch10.check_closeness_bound(never_inf).message
