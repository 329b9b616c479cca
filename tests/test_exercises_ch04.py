"""The self-checks of chapter 4: right answers pass, wrong ones get a hint, none raises."""

import numpy as np

from dalib.exercises import Feedback, ch04


def systematic_ok(w, u):
    N = len(w)
    idx = np.searchsorted(np.cumsum(w), (np.arange(N) + u) / N, side="right")
    return np.minimum(idx, N - 1)


def test_systematic_accepts_a_correct_answer_and_library_equivalent():
    assert ch04.check_systematic(systematic_ok).passed


def test_systematic_hints():
    assert "replace the `...`" in ch04.check_systematic(...).message

    def multinomial(w, u):  # independent uniforms: counts leave floor/ceil
        rng = np.random.default_rng(0)
        return rng.choice(len(w), size=len(w), p=w)

    assert "floor(N w_k) or ceil(N w_k)" in ch04.check_systematic(multinomial).message

    def unclipped(w, u):
        N = len(w)
        return np.searchsorted(np.cumsum(w), (np.arange(N) + u) / N + 1.0 / N)

    fb = ch04.check_systematic(unclipped)
    assert not fb.passed and "indices must lie in" in fb.message

    def wrong_points(w, u):  # stays within floor/ceil but uses a different offset
        N = len(w)
        idx = np.searchsorted(np.cumsum(w), (np.arange(N) + (1 - u)) / N, side="right")
        return np.minimum(idx, N - 1)

    fb = ch04.check_systematic(wrong_points)
    assert not fb.passed and "(n + u)/N" in fb.message

    def floats(w, u):
        return systematic_ok(w, u) + 0.5

    assert "integers" in ch04.check_systematic(floats).message
    assert "shape" in ch04.check_systematic(lambda w, u: np.zeros(3, int)).message

    def crash(w, u):
        raise IndexError("boom")

    fb = ch04.check_systematic(crash)
    assert isinstance(fb, Feedback) and "IndexError" in fb.message


def test_ess_accepts_a_robust_answer():
    def ess(logw):
        w = np.exp(logw - logw.max())
        w = w / w.sum()
        return 1.0 / np.sum(w**2)

    fb = ch04.check_ess(ess)
    assert fb.passed, fb.message


def test_ess_hints():
    def naive(logw):
        w = np.exp(logw) / np.exp(logw).sum()
        return 1.0 / np.sum(w**2)

    with np.errstate(all="ignore"):
        fb = ch04.check_ess(naive)
    assert not fb.passed and "log-sum-exp" in fb.message

    def fraction(logw):
        w = np.exp(logw - logw.max())
        w = w / w.sum()
        return 1.0 / np.sum(w**2) / len(w)

    assert "fraction ESS / N" in ch04.check_ess(fraction).message

    def unnormalised(logw):
        return 1.0 / np.sum(np.exp(2 * (logw - logw.max())))

    assert "Normalise" in ch04.check_ess(unnormalised).message
    assert "one number" in ch04.check_ess(lambda logw: "many").message
    assert "`return` the result" in ch04.check_ess(lambda logw: None).message


def test_ess_fraction_check_against_the_closed_form():
    # Closed form: the typical large-N ESS fraction per dimension is sqrt(3)/2 exp(-1/3).
    c = np.sqrt(3) / 2 * np.exp(-1 / 3)
    assert ch04.check_ess_fraction(c).passed
    assert ch04.check_ess_fraction(np.sqrt(3 / 5) * np.sqrt(3) / 2).passed  # arithmetic
    assert "growth factor" in ch04.check_ess_fraction(1 / c).message
    assert "below 1" in ch04.check_ess_fraction(1.1).message
    assert "outside the expected range" in ch04.check_ess_fraction(0.4).message
    assert "not the function" in ch04.check_ess_fraction(lambda: 0.6).message
    assert "a number" in ch04.check_ess_fraction("0.6x").message
    assert "replace the `...`" in ch04.check_ess_fraction(...).message


def test_ess_fraction_closed_form_matches_monte_carlo():
    # The large-N limit of ESS / N for x ~ N(0, 1), y = x + eta, prior particles is
    # (E w)^2 / E w^2 = sqrt(3)/2 exp(-y^2/6) for each observation y.
    rng = np.random.default_rng(1)
    x = rng.standard_normal(400_000)
    for y in (-1.5, 0.0, 0.7):
        w = np.exp(-0.5 * (y - x) ** 2)
        mc = w.mean() ** 2 / np.mean(w**2)
        assert abs(mc - np.sqrt(3) / 2 * np.exp(-y * y / 6)) < 5e-3


def regularize_ok(E, w, idx, z, h):
    m = w @ E
    C = ((E - m) * w[:, None]).T @ (E - m) / (1 - w @ w)
    return E[idx] + h * z @ np.linalg.cholesky(C).T


def test_regularize_accepts_a_correct_answer_also_in_place():
    assert ch04.check_regularize(regularize_ok).passed

    def in_place(E, w, idx, z, h):  # modifies its inputs: still judged on the result
        m = w @ E
        A = E - m
        C = (A * w[:, None]).T @ A / (1 - w @ w)
        z @= np.linalg.cholesky(C).T
        z *= h
        return E[idx] + z

    assert ch04.check_regularize(in_place).passed


def test_regularize_names_the_typical_mistakes():
    assert "replace the `...`" in ch04.check_regularize(...).message
    cases = {
        "WEIGHTED covariance": lambda E, w, idx, z, h: E[idx] + h * z @ np.linalg.cholesky(
            np.cov(E.T)).T,
        "1 - sum(w^2)": lambda E, w, idx, z, h: E[idx] + h * z @ np.linalg.cholesky(
            ((E - w @ E) * w[:, None]).T @ (E - w @ E)).T,
        "z @ L does not": lambda E, w, idx, z, h: E[idx] + h * z @ np.linalg.cholesky(
            ((E - w @ E) * w[:, None]).T @ (E - w @ E) / (1 - w @ w)),
        "not h^2": lambda E, w, idx, z, h: regularize_ok(E, w, idx, z, h * h),
        "AFTER resampling": lambda E, w, idx, z, h: (
            regularize_ok(E, w, np.arange(len(w)), z, h))[idx],
        "resample first": lambda E, w, idx, z, h: regularize_ok(E, w, np.arange(len(w)), z, h),
        "shape": lambda E, w, idx, z, h: E[idx].T,
    }
    for hint, answer in cases.items():
        fb = ch04.check_regularize(answer)
        assert not fb.passed and hint in fb.message, (hint, fb.message)
    assert isinstance(ch04.check_regularize(lambda *a: 1 / 0), Feedback)
