"""Structured covariances: algebra, sampling and checks."""

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.covariance import (
    DenseCovariance,
    DiagonalCovariance,
    ScalarCovariance,
    as_covariance,
)

D = 5


def spd(rng, d=D):
    A = rng.standard_normal((d, d))
    return A @ A.T + d * np.eye(d)


def covariances(xp, rng):
    return {
        "scalar": (ScalarCovariance(2.5, D), 2.5 * np.eye(D)),
        "diagonal": (DiagonalCovariance(xp.asarray(np.arange(1.0, D + 1))), np.diag(np.arange(1.0, D + 1))),
        "dense": (DenseCovariance(xp.asarray(C := spd(rng))), C),
    }


def test_algebra_matches_dense_matrices(xp, rng):
    b = rng.standard_normal((3, 2, D))
    for name, (cov, C) in covariances(xp, rng).items():
        bx = xp.asarray(b)
        np.testing.assert_allclose(npy(cov.matmul(bx)), b @ C, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(npy(cov.solve(bx)), b @ np.linalg.inv(C), rtol=1e-10, err_msg=name)
        S = npy(cov.sqrt_matmul(xp.asarray(np.eye(D)))).T  # columns S e_i
        np.testing.assert_allclose(S @ S.T, C, rtol=1e-12, err_msg=name)
        w = npy(cov.inv_sqrt_matmul(bx))
        np.testing.assert_allclose(
            (w**2).sum(-1), np.einsum("...i,ij,...j", b, np.linalg.inv(C), b), rtol=1e-10, err_msg=name
        )
        assert float(cov.logdet()) == pytest.approx(np.linalg.slogdet(C)[1], rel=1e-12), name
        np.testing.assert_allclose(npy(cov.diagonal(xp)), np.diag(C), err_msg=name)
        np.testing.assert_allclose(npy(cov.to_dense(xp)), C, err_msg=name)
        np.testing.assert_allclose(npy((3 * cov).to_dense(xp)), 3 * C, err_msg=name)


def test_samples_have_the_right_covariance(xp, rng):
    n = 40_000
    for name, (cov, C) in covariances(xp, rng).items():
        gen = dalib.default_rng(7, xp)
        X = npy(cov.sample(gen, (n,)))
        assert X.shape == (n, D)
        emp = np.cov(X.T)
        # Standard error of a sample covariance entry is about sqrt((C_ii C_jj + C_ij^2)/n).
        se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n)
        assert np.all(np.abs(emp - C) < 5 * se), name
        assert np.all(np.abs(X.mean(0)) < 5 * np.sqrt(np.diag(C) / n)), name


def test_scalar_never_forms_a_matrix():
    cov = ScalarCovariance(0.5, 10**7)
    z = np.ones((2, 10**7))
    assert cov.solve(z).shape == (2, 10**7)
    assert cov.logdet() == pytest.approx(10**7 * np.log(0.5))


def test_as_covariance_picks_the_structure(xp):
    assert isinstance(as_covariance(1.0, d=3), ScalarCovariance)
    assert isinstance(as_covariance(xp.asarray([1.0, 2.0])), DiagonalCovariance)
    assert isinstance(as_covariance(xp.eye(2, dtype=xp.float64)), DenseCovariance)
    c = ScalarCovariance(1.0, 4)
    assert as_covariance(c, d=4) is c


@pytest.mark.parametrize(
    "value, d, message",
    [
        (np.array([[1.0, 2.0], [2.0, 1.0]]), None, "R must be positive definite"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), None, "R must be symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), None, "R contains NaN"),
        (np.array([1.0, -1.0]), None, r"R must have positive variances"),
        (-2.0, 3, "R must be positive"),
        (1.0, None, "R is a scalar, so its dimension d must be given"),
        (np.eye(3), 2, "R must be 2-dimensional, got dimension 3"),
        ("big", 2, "R must be a Covariance"),
        (np.ones((2, 3)), None, "R must be a square matrix"),
    ],
)
def test_bad_covariances_are_named(value, d, message):
    with pytest.raises((ValueError, TypeError), match=message):
        as_covariance(value, "R", d=d)


def test_dense_rejects_non_pd_on_every_backend(xp):
    with pytest.raises(ValueError, match="C0 must be positive definite"):
        DenseCovariance(xp.asarray([[1.0, 0.0], [0.0, -1.0]]), name="C0")


def test_logpdf_is_the_gaussian_density(xp, rng):
    from scipy.stats import multivariate_normal

    v = rng.standard_normal((4, D))
    for name, (cov, C) in covariances(xp, rng).items():
        want = multivariate_normal(np.zeros(D), C).logpdf(v)
        np.testing.assert_allclose(npy(cov.logpdf(xp.asarray(v))), want, rtol=1e-12,
                                   err_msg=name)
