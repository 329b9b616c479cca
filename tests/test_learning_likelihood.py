"""The EnKF log-likelihood of eq. (6), its gradient and the optimiser (chapter 7)."""

import numpy as np
import pytest
from conftest import npy
from scipy.stats import multivariate_normal

import dalib
from dalib.autodiff import relative_error
from dalib.da import kalman_filter
from dalib.learning import (
    FilterNoise,
    ReplayRNG,
    draw_noise,
    enkf_loglik,
    ensemble_log_evidence,
    maximize_likelihood,
)
from dalib.models import Lorenz63, RK4Map
from dalib.observations import Matrix, Subset


def _dense_evidence(E, y, H, R):
    hE = E @ H.T
    Y = hE - hE.mean(0)
    S = Y.T @ Y / (E.shape[0] - 1) + R
    return multivariate_normal(hE.mean(0), S).logpdf(y)


@pytest.mark.parametrize("N, p", [(6, 3), (3, 5)])  # p < N and p >= N branches
@pytest.mark.parametrize("kind", ["scalar", "diagonal", "dense"])
def test_ensemble_evidence_equals_dense_gaussian(xp, N, p, kind):
    rng = np.random.default_rng(0)
    d = 4
    E = rng.standard_normal((N, d)) * 2 + 1
    H = rng.standard_normal((p, d))
    y = rng.standard_normal(p)
    if kind == "scalar":
        R, Rd = 0.7, 0.7 * np.eye(p)
    elif kind == "diagonal":
        v = rng.uniform(0.5, 2, p)
        R, Rd = v, np.diag(v)
    else:
        G = rng.standard_normal((p, p))
        Rd = G @ G.T + np.eye(p)
        R = Rd
    Rx = R if isinstance(R, float) else dalib.asarray(R, xp)
    got = ensemble_log_evidence(dalib.asarray(E, xp), dalib.asarray(y, xp),
                                Matrix(dalib.asarray(H, xp)), Rx)
    assert float(got) == pytest.approx(_dense_evidence(E, y, H, Rd), rel=1e-10)


def _l63_problem(J=30, N=10, seed=1):
    ssm = dalib.setups.lorenz63(dt_obs=0.1).replace(h=Subset(3, [0, 2]), R=1.0)
    twin = ssm.simulate(J, rng=seed)
    noise = draw_noise(N, 3, 2, J, rng=seed + 1)
    return ssm, twin, noise


def _l63_loglik(theta, ssm, y, m0, noise, **kw):
    M = RK4Map(Lorenz63(theta[0], theta[1], theta[2]), 0.01, 10)
    return enkf_loglik(M, y, ssm.h, ssm.R, m0, 1.0, noise, Q=0.1, **kw)


@pytest.mark.parametrize("analysis", ["enkf", "etkf"])
def test_loglik_is_the_same_on_every_backend(xp, analysis):
    ssm, twin, noise = _l63_problem(J=15)
    ref = _l63_loglik([10.0, 28.0, 8 / 3], ssm, twin.y, ssm.m0, noise, analysis=analysis)
    got = _l63_loglik([10.0, 28.0, 8 / 3], ssm, dalib.asarray(twin.y, xp),
                      dalib.asarray(ssm.m0, xp), noise.to(xp), analysis=analysis)
    assert float(got) == pytest.approx(float(ref), rel=1e-10)


def test_loglik_approaches_the_kalman_loglik_as_N_grows():
    ssm = dalib.setups.linear_gaussian(d=4)
    twin = ssm.simulate(40, rng=1)
    exact = float(kalman_filter(ssm, twin.y).loglik)

    def gap(N):
        vals = [float(enkf_loglik(ssm.M, twin.y, ssm.h, ssm.R, ssm.m0, ssm.C0,
                                  draw_noise(N, 4, 2, 40, rng=s), Q=ssm.Q))
                for s in range(4)]
        return abs(np.mean(vals) - exact), np.std(vals)

    small, _ = gap(10)
    large, spread = gap(3000)
    assert large < 0.15 and large < small / 5
    assert spread < 0.5


def test_details_and_input_errors():
    ssm, twin, noise = _l63_problem(J=5)
    det = _l63_loglik([10.0, 28.0, 8 / 3], ssm, twin.y, ssm.m0, noise, details=True)
    assert det.increments.shape == (5,) and det.analysis.shape == (5, 3)
    assert float(det.loglik) == pytest.approx(float(np.sum(det.increments)))
    with pytest.raises(ValueError, match="noise must have shapes"):
        _l63_loglik([10.0, 28.0, 8 / 3], ssm, twin.y[:4], ssm.m0, noise)
    with pytest.raises(ValueError, match="analysis must be"):
        _l63_loglik([10.0, 28.0, 8 / 3], ssm, twin.y, ssm.m0, noise, analysis="letkf")
    with pytest.raises(TypeError, match="noise must be a FilterNoise"):
        enkf_loglik(ssm.M, twin.y, ssm.h, ssm.R, ssm.m0, 1.0, (1, 2, 3))
    with pytest.raises(ValueError, match="truncate must be"):
        _l63_loglik([10.0, 28.0, 8 / 3], ssm, twin.y, ssm.m0, noise, truncate=0)


def test_replay_rng_hands_out_its_draws_once():
    z = np.arange(6.0).reshape(3, 2)
    rng = ReplayRNG(z)
    with pytest.raises(ValueError, match="shape"):
        rng.standard_normal((2, 3))
    assert rng.standard_normal((3, 2)) is z
    with pytest.raises(RuntimeError, match="used already"):
        rng.standard_normal((3, 2))
    noise = draw_noise(4, 3, 2, 5, rng=0)
    assert isinstance(noise, FilterNoise) and noise.N == 4 and noise.J == 5


def test_jax_gradient_matches_central_differences():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    ssm, twin, noise = _l63_problem(J=40)
    y, m0, nj = jnp.asarray(twin.y), jnp.asarray(ssm.m0), noise.to("jax")
    theta = np.array([9.5, 27.0, 2.5])
    grad = jax.grad(lambda t: _l63_loglik(t, ssm, y, m0, nj))(jnp.asarray(theta))
    h = 1e-5

    def f(t):  # NumPy, the same draws
        return float(_l63_loglik(t, ssm, twin.y, ssm.m0, noise))

    fd = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(3)])
    assert relative_error(grad, fd) < 1e-6


def test_truncation_keeps_the_value_and_cuts_the_gradient():
    jax = pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    ssm, twin, noise = _l63_problem(J=20)
    y, m0, nj = jnp.asarray(twin.y), jnp.asarray(ssm.m0), noise.to("jax")
    theta = jnp.asarray([9.5, 27.0, 2.5])

    def vg(trunc):
        return jax.value_and_grad(lambda t: _l63_loglik(t, ssm, y, m0, nj,
                                                        truncate=trunc))(theta)

    v_full, g_full = vg(None)
    v_long, g_long = vg(50)  # longer than the window: nothing is cut
    v_cut, g_cut = vg(5)
    assert float(v_cut) == pytest.approx(float(v_full), rel=1e-12)
    assert relative_error(g_long, g_full) < 1e-12
    assert relative_error(g_cut, g_full) > 1e-3


def test_maximize_likelihood_finds_a_known_maximum():
    pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    target = jnp.asarray([1.0, -2.0])

    def objective(theta, c):
        return -jnp.sum(c * (theta - target) ** 2)

    c = jnp.asarray([1.0, 10.0])
    for method in ("adam", "lbfgs"):
        res = maximize_likelihood(objective, np.zeros(2), (c,), method=method, n_iter=300,
                                  lr=0.1, lr_final=0.001)
        assert np.allclose(res.theta, [1.0, -2.0], atol=1e-3), method
        assert res.loglik_history[-1] >= res.loglik_history[0]
    with pytest.raises(ValueError, match="method must be"):
        maximize_likelihood(objective, np.zeros(2), (c,), method="sgd")


def test_maximize_likelihood_with_a_preconditioner():
    pytest.importorskip("jax")
    jnp = dalib.get_namespace("jax")
    A = np.array([[100.0, 99.0], [99.0, 100.0]])  # an ill-conditioned quadratic

    def objective(theta):
        r = theta - jnp.asarray([1.0, 1.0])
        return -0.5 * r @ jnp.asarray(A) @ r

    P = np.linalg.inv(np.linalg.cholesky(A)).T  # P^T A P = I
    res = maximize_likelihood(objective, np.zeros(2), method="adam", n_iter=300, lr=1.0,
                              lr_final=0.01, precondition=P)
    assert np.allclose(res.theta, [1.0, 1.0], atol=1e-2)
    assert npy(res.history[0]).shape == (2,)
    with pytest.raises(ValueError, match="precondition must"):
        maximize_likelihood(objective, np.zeros(2), precondition=np.eye(3))
