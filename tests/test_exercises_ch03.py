"""The self-checks of chapter 3 accept right answers and explain wrong ones, never raising."""

import math

import numpy as np
import pytest

from dalib.exercises import Feedback, ch03

# ---------------------------------------------------------------------------------------
# Exercise 1: ensemble moments
# ---------------------------------------------------------------------------------------


def moments(E):
    xbar = E.mean(axis=0)
    X = E - xbar
    return xbar, X, X.T @ X / (E.shape[0] - 1)


def test_moments_right_answer_passes():
    fb = ch03.check_ensemble_moments(moments)
    assert isinstance(fb, Feedback) and fb.passed, fb
    # also with NumPy's own estimator, written independently of the check
    assert ch03.check_ensemble_moments(lambda E: (E.mean(0), E - E.mean(0), np.cov(E.T)))


@pytest.mark.parametrize("answer, hint", [
    (lambda E: (E.mean(1), E - E.mean(0), np.cov(E.T)), "axis 0"),
    (lambda E: (E.mean(0), E, np.cov(E.T)), "subtract the mean"),
    (lambda E: (E.mean(0), E - E.mean(0), np.cov(E.T, bias=True)), "N - 1"),
    (lambda E: (E.mean(0), E - E.mean(0), (E - E.mean(0)) @ (E - E.mean(0)).T), "Gram"),
    (lambda E: (E.mean(0), E - E.mean(0)), "three arrays"),
    (lambda E: (E.mean(0), E - E.mean(0), 2 * np.cov(E.T)), "X^T X / (N - 1)"),
])
def test_moments_wrong_answers_get_hints(answer, hint):
    fb = ch03.check_ensemble_moments(answer)
    assert not fb.passed and hint in fb.message, fb


def test_moments_placeholder_and_crash():
    assert "replace the `...`" in ch03.check_ensemble_moments(...).message

    def todo(E):
        ...

    assert "`return` the result" in ch03.check_ensemble_moments(todo).message
    fb = ch03.check_ensemble_moments(lambda E: E @ np.ones((3, 3)))
    assert not fb.passed and "ValueError" in fb.message


# ---------------------------------------------------------------------------------------
# Exercise 2: perturbed-observation analysis, written here with NumPy only
# ---------------------------------------------------------------------------------------


def make_analysis(center=True, perturb=True, norm="N-1", noise_scale="sqrt"):
    def analysis(E, y, H, r, rng):
        N, p = E.shape[0], y.shape[0]
        Z = np.asarray(rng.standard_normal((N, p)))
        if center:
            Z = Z - Z.mean(axis=0)
        scale = math.sqrt(r) if noise_scale == "sqrt" else r
        eta = scale * Z if perturb else 0.0
        X = E - E.mean(axis=0)
        Y = X @ H.T
        n = N - 1 if norm == "N-1" else N
        K = X.T @ Y @ np.linalg.inv(Y.T @ Y + n * r * np.eye(p))
        return E + (y + eta - E @ H.T) @ K.T

    return analysis


def test_perturbed_obs_right_answer_passes():
    fb = ch03.check_perturbed_obs_analysis(make_analysis())
    assert fb.passed, fb


@pytest.mark.parametrize("kwargs, hint", [
    (dict(center=False), "not centred"),
    (dict(perturb=False), "same observation"),
    (dict(norm="N"), "N - 1, not N"),
    (dict(noise_scale="r"), "sqrt(r)"),
])
def test_perturbed_obs_wrong_answers_get_hints(kwargs, hint):
    fb = ch03.check_perturbed_obs_analysis(make_analysis(**kwargs))
    assert not fb.passed and hint in fb.message, fb


def test_perturbed_obs_other_mistakes_never_raise():
    def wrong_draws(E, y, H, r, rng):
        rng.standard_normal(3)  # an extra draw shifts the random numbers
        return make_analysis()(E, y, H, r, rng)

    fb = ch03.check_perturbed_obs_analysis(wrong_draws)
    assert not fb.passed and "analysis mean is right" in fb.message
    fb = ch03.check_perturbed_obs_analysis(lambda E, y, H, r, rng: E[:2])
    assert not fb.passed and "shape" in fb.message
    fb = ch03.check_perturbed_obs_analysis(lambda E, y, H, r, rng: E - 1.0)
    assert not fb.passed and "differs" in fb.message
    fb = ch03.check_perturbed_obs_analysis(lambda E, y, H, r, rng: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    assert not ch03.check_perturbed_obs_analysis(None).passed


# ---------------------------------------------------------------------------------------
# Exercise 3: tuning the inflation
# ---------------------------------------------------------------------------------------


def test_inflation_near_one_ratio_passes():
    fb = ch03.check_inflation(1.02)
    assert fb.passed, fb
    assert "spread-error ratio of 1.0" in fb.message


@pytest.mark.parametrize("value, hint", [
    (1.0, "Inflate more"),
    (1.1, "Inflate less"),
    (0.9, "deflates"),
    (5.0, "far too much"),
    (-1.0, "positive"),
    (float("nan"), "positive"),
    ("big", "expected a number"),
])
def test_inflation_wrong_values_get_hints(value, hint):
    fb = ch03.check_inflation(value)
    assert not fb.passed and hint in fb.message, fb


def test_inflation_placeholders():
    assert "replace the `...`" in ch03.check_inflation(...).message
    assert "not a function" in ch03.check_inflation(lambda: 1.02).message


def test_inflation_twin_is_the_stated_setup():
    twin = ch03.inflation_twin()
    assert twin.J == ch03.INFLATION_SETUP["J"]
    assert twin.ssm.p == 20  # every other variable of 40
