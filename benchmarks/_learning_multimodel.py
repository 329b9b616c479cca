"""Targets of chapter 10: the multi-model ensemble Kalman filter (Bach and Ghil 2023).

Each target is a dict with ``name``, ``target``, ``tolerance``, ``measured`` and
``passed``; :func:`targets` runs them all.  Run them alone with::

    python benchmarks/learning.py --part multimodel --quick

Setup: Lorenz-96, d = 40, truth with forcing F = 8, 10, 12, 14 in four blocks of ten
variables, all observed every 0.1 (two RK4 steps of 0.05) with R = I; four imperfect models
with the uniform forcings 8, 10, 12, 14.  Every filter is an ETKF with N = 40 and
inflation 1.05: each model alone, the unweighted mean of the four, and the multi-model EnKF
with adaptive weights (:class:`dalib.da.MultiModelEnKF`).  Scores are time means after a
burn-in, then averaged over the seeds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import MultiModelEnKF, assimilate  # noqa: E402
from dalib.models import Lorenz96, RK4Map  # noqa: E402

D, FORCINGS, STEPS, N, INFLATION = 40, (8.0, 10.0, 12.0, 14.0), 2, 40, 1.05


def _target(name, target, tolerance, measured, passed):
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": float(measured), "passed": bool(passed)}


def _scores(method, twin, seed, burn):
    res = assimilate(method, twin, rng=seed + 10, store_ensembles=True)
    return res.rmse(burn), res.crps(burn), res


def targets(quick: bool) -> list[dict]:
    seeds = range(5)
    J, burn = (300, 100) if quick else (1500, 200)
    F = np.repeat(np.array(FORCINGS), D // 4)
    base = dalib.setups.lorenz96(d=D, dt_obs=0.05 * STEPS)
    truth = base.replace(M=RK4Map(Lorenz96(D, F), 0.05, STEPS))
    models = [RK4Map(Lorenz96(D, f), 0.05, STEPS) for f in FORCINGS]
    single, mean, mm, hits = [], [], [], 0
    for seed in seeds:
        twin = truth.simulate(J, rng=seed)
        single.append([_scores(MultiModelEnKF([M], N=N, inflation=INFLATION,
                                              weights=[1.0]), twin, seed, burn)[:2]
                       for M in models])
        mean.append(_scores(MultiModelEnKF(models, N=N, inflation=INFLATION,
                                           weights=[0.25] * 4), twin, seed, burn)[:2])
        r, c, res = _scores(MultiModelEnKF(models, N=N, inflation=INFLATION,
                                           smoothing=0.01), twin, seed, burn)
        mm.append((r, c))
        w = np.asarray(res.extras["weights"]).reshape(4, 4, D // 4).mean(axis=-1)
        hits += int(np.sum(np.argmax(w, axis=0) == np.arange(4)))
    single = np.mean(np.array(single), axis=0)  # model, (rmse, crps)
    mean, mm = np.mean(np.array(mean), axis=0), np.mean(np.array(mm), axis=0)
    best = single.min(axis=0)
    n = len(seeds)
    rows = []
    for i, score in enumerate(("RMSE", "CRPS")):
        rows.append(_target(
            f"multi-model EnKF analysis {score} / best single model's, L96 sector forcing, "
            f"{n} seeds", "< 1", "", mm[i] / best[i], mm[i] < best[i]))
        rows.append(_target(
            f"multi-model EnKF analysis {score} / unweighted multi-model mean's, {n} seeds",
            "< 1", "", mm[i] / mean[i], mm[i] < mean[i]))
    rows.append(_target(
        f"sectors (of {4 * n}) where the largest mean weight is the matching model's",
        4 * n, 0, hits, hits == 4 * n))
    return rows
