"""Benchmark targets of chapter 7, "Learning the forecast model".

``targets(quick)`` runs the chapter's experiments at benchmark sizes and returns one dict
per target: ``name``, ``target`` (what is asked), ``tolerance``, ``measured`` and
``passed``.  ``quick=True`` uses smaller records, fewer seeds and iterations (a few
minutes on two cores, with looser tolerances where the small size cannot reach the full
one); the full run is the reference.

    python benchmarks/learning.py --part models --quick
    python benchmarks/learning.py --part models          # full sizes (about ten minutes)
"""

from __future__ import annotations

import numpy as np

import dalib
from dalib.autodiff import relative_error
from dalib.da import ETKF, assimilate, kalman_filter
from dalib.learning import (
    CorrectedModel,
    DictionaryModel,
    LocalDictionary,
    augmented_enkf,
    draw_noise,
    enkf_loglik,
    expectation_maximization,
    least_squares_mstep,
    maximize_likelihood,
)
from dalib.models import Lorenz63, Lorenz96, RK4Map
from dalib.observations import Identity, Subset


def _row(name, target, tolerance, measured, passed):
    """One target: what is asked, its tolerance, the measured value and the verdict."""
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": measured, "passed": bool(passed)}


def _jnp():
    return dalib.get_namespace("jax")


# -- the likelihood and its gradient ---------------------------------------------------------


def _l63_setup():
    return dalib.setups.lorenz63(dt_obs=0.1).replace(h=Subset(3, [0, 2]), R=1.0)


def _loglik_63(theta, y, noise):
    ssm = _l63_setup()
    xp = dalib.namespace(y)
    M = RK4Map(Lorenz63(theta[0], theta[1], theta[2]), dt=0.01, steps=10)
    ll = enkf_loglik(M, y, ssm.h, ssm.R, dalib.asarray(ssm.m0, xp), 1.0, noise, Q=0.1)
    return ll / y.shape[0]


def gradient_check():
    """jax.grad of the EnKF log-likelihood vs central differences (same draws)."""
    import jax

    jnp = _jnp()
    ssm = _l63_setup()
    twin = ssm.simulate(40, rng=11)
    noise = draw_noise(20, 3, 2, 40, rng=12)
    theta = np.array([9.5, 27.0, 2.5])
    grad = jax.grad(_loglik_63)(jnp.asarray(theta), jnp.asarray(twin.y), noise.to("jax"))
    h = 1e-5
    fd = np.array([(float(_loglik_63(theta + h * e, twin.y, noise))
                    - float(_loglik_63(theta - h * e, twin.y, noise))) / (2 * h)
                   for e in np.eye(3)])
    err = relative_error(grad, fd)
    return _row("AD-EnKF gradient vs central differences (Lorenz-63, J=40)",
                "relative difference", "< 1e-6", f"{err:.1e}", err < 1e-6)


def kalman_limit(quick):
    """EnKF log-likelihood of a linear-Gaussian model vs the exact Kalman value."""
    ssm = dalib.setups.linear_gaussian(d=4)
    twin = ssm.simulate(50, rng=21)
    exact = float(kalman_filter(ssm, twin.y).loglik)
    N, runs = (2000, 4) if quick else (5000, 8)
    vals = [float(enkf_loglik(ssm.M, twin.y, ssm.h, ssm.R, ssm.m0, ssm.C0,
                              draw_noise(N, 4, 2, 50, rng=100 + s), Q=ssm.Q))
            for s in range(runs)]
    gap = abs(np.mean(vals) - exact)
    return _row(f"EnKF log-likelihood -> Kalman (linear-Gaussian, N={N}, {runs} runs)",
                f"|mean - exact|, exact {exact:.2f}", "< 0.5", f"{gap:.3f}", gap < 0.5)


# -- example 1: parameters ---------------------------------------------------------------------


def _loglik_F(theta, y, noise, cut):
    ssm = dalib.setups.lorenz96(obs_every=2)
    xp = dalib.namespace(y)
    M = RK4Map(Lorenz96(40, theta[0]), 0.05)
    ll = enkf_loglik(M, y, ssm.h, ssm.R, dalib.asarray(ssm.m0, xp), 1.0, noise,
                     forecast_inflation=1.05, analysis="etkf", truncate=cut)
    return ll / y.shape[0]


def forcing_adenkf(quick):
    jnp = _jnp()
    ssm = dalib.setups.lorenz96(obs_every=2)
    J, runs = (100, 3) if quick else (200, 8)
    cut = np.arange(J) % 10 == 0
    cut[0] = False
    est = []
    for k in range(runs):
        twin = ssm.simulate(J, rng=300 + k)
        noise = draw_noise(20, 40, ssm.p, J, rng=400 + k).to("jax")
        res = maximize_likelihood(_loglik_F, [6.0], (jnp.asarray(twin.y), noise,
                                                     jnp.asarray(cut)), n_iter=40, lr=0.3)
        est.append(res.theta[0])
    err = abs(np.mean(est) - 8.0)
    return _row(f"L96 forcing by AD-EnKF (every 2nd observed, J={J}, {runs} seeds)",
                "|mean F - 8|", "< 0.3",
                f"{err:.3f} (F = {np.mean(est):.3f} +- {np.std(est, ddof=1):.3f})",
                err < 0.3)


def _loglik_63_trunc(theta, y, noise):
    ssm = _l63_setup()
    M = RK4Map(Lorenz63(theta[0], theta[1], theta[2]), dt=0.01, steps=10)
    ll = enkf_loglik(M, y, ssm.h, ssm.R, _jnp().asarray(ssm.m0), 1.0, noise, Q=0.1,
                     truncate=10)
    return ll / y.shape[0]


def lorenz63_adenkf(quick):
    jnp = _jnp()
    ssm = _l63_setup()
    J, runs = (150, 3) if quick else (300, 8)
    est = []
    for k in range(runs):
        twin = ssm.simulate(J, rng=500 + k)
        noise = draw_noise(20, 3, 2, J, rng=600 + k).to("jax")
        res = maximize_likelihood(_loglik_63_trunc, [8.0, 24.0, 2.0],
                                  (jnp.asarray(twin.y), noise), n_iter=60, lr=0.3)
        est.append(res.theta)
    mean = np.mean(est, axis=0)
    rel = np.abs(mean / np.array([10.0, 28.0, 8 / 3]) - 1).max()
    return _row(f"L63 (sigma, rho, beta) by AD-EnKF (x, z observed, J={J}, {runs} seeds)",
                "max relative error of the mean", "< 0.05",
                f"{rel:.3f} ({', '.join(f'{m:.3f}' for m in mean)})", rel < 0.05)


def forcing_augmented(quick):
    ssm = dalib.setups.lorenz96(obs_every=2)
    J, runs = (200, 3) if quick else (400, 8)
    est = [float(augmented_enkf(ssm.simulate(J, rng=700 + k),
                                lambda th: RK4Map(Lorenz96(40, th[:, 0:1]), 0.05),
                                [6.0], [1.0], N=20, rng=800 + k, param_noise=0.01,
                                inflation=1.05).theta[-1, 0])
           for k in range(runs)]
    err = abs(np.mean(est) - 8.0)
    return _row(f"L96 forcing by the augmented EnKF (J={J}, {runs} seeds)",
                "|mean F - 8|", "< 0.2",
                f"{err:.3f} (F = {np.mean(est):.3f} +- {np.std(est, ddof=1):.3f})",
                err < 0.2)


# -- example 2: unknown dynamics ---------------------------------------------------------------


def _dictionary_problem(J, seed=31):
    ssm = dalib.setups.lorenz96()   # d = 40, all observed, dt_obs = 0.05, R = I
    twin = ssm.simulate(J, rng=seed)
    lib = LocalDictionary.polynomial(degree=2, stencil=2)
    family = DictionaryModel(lib, d=40, dt=0.05)
    naive, q0 = least_squares_mstep(family, np.zeros(lib.K), twin.y[:-1], twin.y[1:],
                                    n_iter=3)
    return ssm, twin, lib, family, naive, float(q0)


def dictionary_em(quick):
    J, N, iters, members = (200, 20, 8, 10) if quick else (1000, 40, 25, None)
    ssm, twin, lib, family, naive, q0 = _dictionary_problem(J)
    # A fixed-lag smoother pairs x_j and x_{j+1} that saw different observations; a lag of
    # 30 cycles makes that bias negligible (with the default 10 EM stalls near 0.1).
    res = expectation_maximization(twin, family, naive, q0, N=N, n_iter=iters, rng=32,
                                   inflation=1.05 if N < 40 else 1.02, members=members,
                                   lag=30)
    last = 5 if not quick else 1
    theta = np.mean(res.thetas[-last:], axis=0)
    err = np.abs(theta - np.asarray(lib.lorenz96(8.0))).max()
    tol = 1.5 if quick else 0.05
    what = f"mean of the last {last} iterates" if last > 1 else "last iterate"
    return _row(f"L96 dictionary (21 terms) by EM (d=40, J={J}, N={N}, {iters} iterations)",
                f"max |coefficient error|, {what}", f"< {tol}", f"{err:.3f}", err < tol)


def dictionary_adenkf(quick):
    jnp = _jnp()
    J, steps = (100, 40) if quick else (1000, 150)
    ssm, twin, lib, family, naive, q0 = _dictionary_problem(J)
    _, S = family.map_and_sensitivity(naive, twin.y[:-1])
    A = np.tensordot(S, S, axes=([0, 2], [0, 2])) / (S.shape[0] * S.shape[2])
    P = np.zeros((lib.K + 1, lib.K + 1))
    P[:-1, :-1] = 0.1 * np.linalg.inv(np.linalg.cholesky(A)).T
    P[-1, -1] = 1.0

    def loglik(theta, y, noise):
        ll = enkf_loglik(family(theta[:-1]), y, ssm.h, ssm.R, jnp.asarray(ssm.m0), 1.0,
                         noise, Q=jnp.exp(theta[-1]), forecast_inflation=1.02, analysis="etkf",
                         truncate=10)
        return ll / y.shape[0]

    noise = draw_noise(20, 40, 40, J, rng=33).to("jax")
    res = maximize_likelihood(loglik, np.append(naive, np.log(q0)),
                              (jnp.asarray(twin.y), noise), n_iter=steps, lr=0.3,
                              precondition=P)
    last = 1 if quick else 20
    theta = np.mean([h[:-1] for h in res.history[-last:]], axis=0)
    err = np.abs(theta - np.asarray(lib.lorenz96(8.0))).max()
    tol = 1.5 if quick else 0.05  # the chapter's target: every coefficient within 0.05
    return _row(f"L96 dictionary by AD-EnKF (d=40, J={J}, {steps} Adam steps)",
                "max |coefficient error|", f"< {tol}", f"{err:.3f}", err < tol)


# -- example 3: model correction ---------------------------------------------------------------


def model_correction(quick):
    J_train, J_test = (250, 150) if quick else (600, 300)
    truth = dalib.setups.lorenz96_two_scale().simulate(J_train + J_test, rng=41)
    X = truth.x[:, :36]
    M_approx = RK4Map(Lorenz96(36, F=10.0), dt=0.01, steps=5)
    ssm = dalib.StateSpaceModel(M=M_approx, h=Identity(36), R=1.0, m0=X[0], C0=1.0,
                                dt=0.05)
    train = dalib.TwinExperiment(ssm, truth.t[:J_train + 1], X[:J_train + 1],
                                 truth.y[:J_train])
    test = dalib.TwinExperiment(ssm, truth.t[J_train:], X[J_train:], truth.y[J_train:])
    family = CorrectedModel(M_approx, LocalDictionary([(), (0,), (0, 0), (0, 0, 0)]), 36)
    res = expectation_maximization(train, family, np.zeros(4), 0.1, N=20, n_iter=4,
                                   rng=42, inflation=1.05)
    M_corr = family(res.theta)
    starts = np.arange(0, J_test - 20, 6)

    def fc(M):
        x = X[J_train + starts]
        for _ in range(20):
            x = M(x)
        return np.sqrt(np.mean((x - X[J_train + starts + 20]) ** 2))

    def da(M):
        twin = dalib.TwinExperiment(ssm.replace(M=M), test.t, test.x, test.y)
        return min(assimilate(ETKF(20, inflation=a), twin, rng=43).rmse()
                   for a in (1.02, 1.05, 1.1, 1.2, 1.4, 1.7, 2.0, 2.5, 3.0))

    fc_ratio = fc(M_corr) / fc(M_approx)
    da_ratio = da(M_corr) / da(M_approx)
    return [
        _row("Model correction (two-scale L96): forecast RMSE at lead 1, corrected/approx",
             "ratio", "< 0.5", f"{fc_ratio:.3f}", fc_ratio < 0.5),
        _row("Model correction (two-scale L96): ETKF analysis RMSE, corrected/approx",
             "ratio", "< 0.6", f"{da_ratio:.3f}", da_ratio < 0.6),
    ]


def targets(quick: bool) -> list[dict]:
    """Run every target of chapter 7: dicts with name, target, tolerance, measured, passed."""
    rows = [gradient_check(), kalman_limit(quick), forcing_adenkf(quick),
            lorenz63_adenkf(quick), forcing_augmented(quick), dictionary_em(quick),
            dictionary_adenkf(quick)]
    return rows + model_correction(quick)


if __name__ == "__main__":
    import sys

    import learning

    sys.exit(learning.main(["--part", "models", *sys.argv[1:]]))
