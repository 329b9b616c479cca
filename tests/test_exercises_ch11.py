"""The self-checks of chapter 11: right answers pass, wrong ones get a hint, never a crash."""

import numpy as np

from dalib.exercises import ch11


def test_right_inverse_check():
    assert ch11.check_right_inverse(lambda H, y: np.linalg.solve(H @ H.T, y.T).T @ H).passed
    plain = ch11.check_right_inverse(lambda H, y: y @ H)
    assert not plain.passed and "H H^T = I" in plain.message
    shape = ch11.check_right_inverse(lambda H, y: y)
    assert not shape.passed and "state space" in shape.message
    assert "replace the `...`" in ch11.check_right_inverse(...).message


def _corrected(x, y, H, K, R, sign=1, twice=2):
    J13 = np.mean(np.sum((x @ H.T - y) ** 2, axis=1))
    return J13 + sign * (twice * np.trace(H @ K @ R) - np.trace(R))


def test_corrected_loss_check():
    assert ch11.check_corrected_loss(_corrected).passed
    plain = ch11.check_corrected_loss(
        lambda x, y, H, K, R: np.mean(np.sum((x @ H.T - y) ** 2, axis=1)))
    assert not plain.passed and "plain loss" in plain.message
    sign = ch11.check_corrected_loss(lambda *a: _corrected(*a, sign=-1))
    assert not sign.passed and "signs" in sign.message
    once = ch11.check_corrected_loss(lambda *a: _corrected(*a, twice=1))
    assert not once.passed and "twice" in once.message


def test_stationary_error_check():
    def right(a, q, r, K):
        return ((1 - K) ** 2 * q + K ** 2 * r) / (1 - a ** 2 * (1 - K) ** 2)

    assert ch11.check_stationary_error(right).passed
    one_step = ch11.check_stationary_error(lambda a, q, r, K: (1 - K) ** 2 * q + K ** 2 * r)
    assert not one_step.passed and "carried" in one_step.message
    wrong = ch11.check_stationary_error(lambda a, q, r, K: right(a, q, r, K) * 1.5)
    assert not wrong.passed and "simulation" in wrong.message
    assert "raised" in ch11.check_stationary_error(lambda *a: 1 / 0).message
