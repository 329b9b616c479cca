"""Targets of chapter 7b, learning error covariances (EM and innovation statistics).

Each target is a dict with ``name``, ``target``, ``tolerance``, ``measured`` and
``passed``; :func:`targets` runs them all.  The combined ``benchmarks/learning.py`` imports
this module; run these targets alone with::

    python benchmarks/learning.py --part covariances --quick   # a minute or two on 2 cores
    python benchmarks/learning.py --part covariances           # the full sizes

Setups:

* exact EM (Shumway and Stoffer 1982) on a 2-d linear-Gaussian model, both components
  observed, full Q and diagonal R learned from Q0 = I, R0 = 2I;
* EnKS-EM (Dreano et al. 2017) on Lorenz-63: RK4 step 0.01, Q = 0.05 I added every step,
  R = 2 I, all components observed every step, 3000 (quick) or 5000 steps, N = 100, lag
  150 steps, diagonal Q learned from 0.2 I with SQUAREM and common random numbers
  (6 passes);
* Desroziers' iteration and the adaptive ETKF of Li, Kalnay and Miyoshi (2009) on
  Lorenz-96 (d = 40, all observed every 0.05, R = I), ETKF with N = 20.

The matrices are tiny, so BLAS threads only add overhead: the script asks for one thread
(``OPENBLAS_NUM_THREADS=1``) unless the environment says otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import assimilate  # noqa: E402
from dalib.learning import (  # noqa: E402
    AdaptiveETKF,
    desroziers_iteration,
    em_enks,
    em_linear_gaussian,
    enks_pass,
)


def _target(name, target, tolerance, measured, passed):
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": float(measured), "passed": bool(passed)}


def exact_em(quick: bool) -> list[dict]:
    Q = np.array([[0.4, 0.1], [0.1, 0.3]])
    R = np.array([0.2, 0.2])
    truth = dalib.setups.linear_gaussian(d=2, Q=Q, R=R, observe=np.eye(2))
    J = 1000 if quick else 3000
    twin = truth.simulate(J, rng=1)
    fit = em_linear_gaussian(truth.replace(Q=1.0, R=2.0), twin.y, n_iter=40,
                             R_structure="diag")
    ll = np.asarray(fit.loglik)
    decrease = max(0.0, -float(np.diff(ll).min()))
    rel = np.concatenate([np.diag(fit.Q) / np.diag(Q), np.diag(fit.R) / R]) - 1
    sampling = 3 * math.sqrt(2 / J) * 2  # 3 standard errors, missing information x2
    return [
        _target("exact EM: largest log-likelihood decrease over 40 iterations (eq. 9)",
                0.0, 1e-8, decrease, decrease <= 1e-8),
        _target(f"exact EM: max relative error of diag Q, diag R (J = {J})", 0.0,
                round(sampling, 3), np.abs(rel).max(), np.abs(rel).max() <= sampling),
    ]


def enks_em(quick: bool) -> list[dict]:
    l63 = dalib.setups.lorenz63(dt_obs=0.01, R=2.0, Q=0.05)
    seeds = [1, 2] if quick else [1, 2, 3, 4, 5]
    # Every model step observed, a long lag (a short one biases Q upwards) and a long
    # record: with every 5th step observed and 1000 steps each entry is off by +-40%.
    J, every, lag = (3000 if quick else 5000), 1, 150
    qs, ratios = [], []
    for seed in seeds:
        twin = l63.simulate(J, rng=seed)
        y = twin.y[every - 1::every]
        fit = em_enks(l63.replace(Q=0.2), y, 6, N=100, rng=100 + seed, lag=lag,
                      obs_every=every, accelerate=True)
        ref = enks_pass(l63, y, 100, rng=7, lag=lag, obs_every=every)
        qs.append(np.diag(fit.Q))
        rmse = np.sqrt(np.mean((fit.smoothed - twin.x) ** 2))
        ratios.append(rmse / np.sqrt(np.mean((ref.mean - twin.x) ** 2)))
    qs = np.array(qs)
    # The target is on the mean over seeds: single seeds scatter by about +-20 percent.
    per_entry = np.abs(qs.mean(axis=0) / 0.05 - 1).max()
    return [
        _target(f"EnKS-EM Lorenz-63 (J={J}): each diag entry of Q, mean of {len(seeds)} "
                "seeds (worst relative error)", 0.0, 0.2, per_entry, per_entry <= 0.2),
        _target("EnKS-EM Lorenz-63: smoother RMSE learned Q / true Q (worst seed)", 1.0,
                0.05, max(ratios), max(ratios) <= 1.05),
    ]


def innovations(quick: bool) -> list[dict]:
    l96 = dalib.setups.lorenz96()
    twin = l96.simulate(500, rng=1)
    it = desroziers_iteration(twin, 4.0, 2, rng=2, N=20, cov_inflation=1.05)
    r_iter = float(it.R_history[-1, 0])
    cycles = 1500 if quick else 3000
    seeds = [1] if quick else [1, 2, 3]
    errors = []
    for seed in seeds:
        tw = l96.simulate(cycles, rng=seed)
        for R0 in (4.0, 0.25):
            res = assimilate(AdaptiveETKF(N=20, R0=R0, cov_inflation0=1.1), tw, rng=10 + seed)
            errors.append(abs(float(res.extras["R"][cycles // 3:, 0].mean()) - 1.0))
    return [
        _target("Desroziers iteration in an ETKF, Lorenz-96, inflation 1.05: R "
                "(relative error)", 0.0, 0.1, abs(r_iter - 1), abs(r_iter - 1) <= 0.1),
        _target(f"adaptive ETKF (Li et al. 2009), Lorenz-96: R from 4 and 0.25, worst of "
                f"{2 * len(seeds)} runs (relative error)", 0.0, 0.1, max(errors),
                max(errors) <= 0.1),
    ]


def targets(quick: bool) -> list[dict]:
    """All targets of the chapter; ``quick`` uses fewer seeds and shorter runs."""
    return exact_em(quick) + enks_em(quick) + innovations(quick)


if __name__ == "__main__":
    import learning

    sys.exit(learning.main(["--part", "covariances", *sys.argv[1:]]))
