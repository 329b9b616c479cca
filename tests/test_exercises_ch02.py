"""The self-checks of chapter 2 pass correct answers and explain unfinished, wrong and
crashing ones, without raising."""

import numpy as np
import pytest

from dalib.exercises import Feedback, ch02

# -- Kalman analysis step -------------------------------------------------------------------


def kf_update(m, C, y, H, R):
    S = H @ C @ H.T + R
    K = np.linalg.solve(S, H @ C).T
    return m + K @ (y - H @ m), (np.eye(len(m)) - K @ H) @ C


def kf_update_joseph(m, C, y, H, R):
    S = H @ C @ H.T + R
    K = C @ H.T @ np.linalg.inv(S)
    I_KH = np.eye(len(m)) - K @ H
    return m + K @ (y - H @ m), I_KH @ C @ I_KH.T + K @ R @ K.T


def kf_update_sign(m, C, y, H, R):
    m_a, C_a = kf_update(m, C, y, H, R)
    S = H @ C @ H.T + R
    K = C @ H.T @ np.linalg.inv(S)
    return m + K @ (H @ m - y), C_a


def kf_update_no_inverse(m, C, y, H, R):
    m_a, C_a = kf_update(m, C, y, H, R)
    return m + C @ H.T @ (y - H @ m), C_a


def kf_update_plus(m, C, y, H, R):
    m_a, _ = kf_update(m, C, y, H, R)
    K = C @ H.T @ np.linalg.inv(H @ C @ H.T + R)
    return m_a, C + K @ H @ C


def kf_update_crash(m, C, y, H, R):
    return m + C @ y, C  # shapes do not match


def test_kf_analysis_correct():
    for answer in (kf_update, kf_update_joseph):
        fb = ch02.check_kf_analysis(answer)
        assert isinstance(fb, Feedback) and fb.passed, fb.message


@pytest.mark.parametrize("answer, words", [
    (..., "replace the `...`"),
    (lambda m, C, y, H, R: ..., "`return` the result"),
    (kf_update_sign, "y - H m"),
    (kf_update_no_inverse, "inverse of S"),
    (kf_update_plus, "minus sign"),
    (lambda m, C, y, H, R: (m, C), "m + K (y - H m)"),
    (lambda m, C, y, H, R: kf_update(m, C, y, H, R)[0], "pair"),
    (lambda m, C, y, H, R: (kf_update(m, C, y, H, R)[0], C), "shrink"),
    (kf_update_crash, "raised ValueError"),
])
def test_kf_analysis_feedback(answer, words):
    fb = ch02.check_kf_analysis(answer)
    assert isinstance(fb, Feedback) and not fb.passed
    assert words in fb.message, fb.message


# -- steady-state gain ---------------------------------------------------------------------


def gain(C, H, R):
    return C @ H.T @ np.linalg.inv(H @ C @ H.T + R)


def steady_gain(A, H, Q, R, tol=1e-13):
    C = Q
    for _ in range(10_000):
        K = gain(C, H, R)
        new = A @ (np.eye(len(A)) - K @ H) @ C @ A.T + Q
        done = np.max(np.abs(new - C)) < tol
        C = new
        if done:
            break
    return gain(C, H, R)


def test_steady_state_gain_correct():
    fb = ch02.check_steady_state_gain(steady_gain)
    assert fb.passed, fb.message


def one_step_gain(A, H, Q, R):
    return gain(Q, H, R)


def analysis_cov_gain(A, H, Q, R):
    C = np.linalg.matrix_power(np.eye(len(A)), 1) @ Q
    for _ in range(5000):
        K = gain(C, H, R)
        C = A @ (np.eye(len(A)) - K @ H) @ C @ A.T + Q
    C_a = (np.eye(len(A)) - gain(C, H, R) @ H) @ C
    return gain(C_a, H, R)


def few_steps_gain(A, H, Q, R):
    C = Q
    for _ in range(4):
        C = A @ (np.eye(len(A)) - gain(C, H, R) @ H) @ C @ A.T + Q
    return gain(C, H, R)


@pytest.mark.parametrize("answer, words", [
    (..., "replace the `...`"),
    (lambda A, H, Q, R: None, "`return` the result"),
    (one_step_gain, "after 0 step(s)"),
    (analysis_cov_gain, "analysis"),
    (few_steps_gain, "after 4 step(s)"),
    (lambda A, H, Q, R: steady_gain(A, H, Q, R).T, "transpose"),
    (lambda A, H, Q, R: np.zeros((len(A), len(H))), "differs from the steady-state gain"),
    (lambda A, H, Q, R: np.linalg.inv(H), "raised LinAlgError"),
    (lambda A, H, Q, R: "K", "array of numbers"),
])
def test_steady_state_gain_feedback(answer, words):
    fb = ch02.check_steady_state_gain(answer)
    assert isinstance(fb, Feedback) and not fb.passed
    assert words in fb.message, fb.message


# -- 3DVar scale -------------------------------------------------------------------------


def test_3dvar_scale_correct():
    for b in (0.06, np.float64(0.07)):
        fb = ch02.check_3dvar_scale(b)
        assert fb.passed, fb.message


@pytest.mark.parametrize("answer, words", [
    (..., "replace the `...`"),
    (lambda: 0.06, "not a function"),
    ("0.06x", "one number"),
    (-1.0, "positive"),
    (0.01, "loses track"),
    (0.25, "ratio b / R"),
    (0.035, "larger b"),
])
def test_3dvar_scale_feedback(answer, words):
    fb = ch02.check_3dvar_scale(answer)
    assert isinstance(fb, Feedback) and not fb.passed
    assert words in fb.message, fb.message
