"""Targets of chapter 11, learning the analysis step, and losses (12) and (13).

Each target is a dict with ``name``, ``target``, ``tolerance``, ``measured`` and
``passed``; :func:`targets` runs them all.  Run them alone with::

    python benchmarks/learning.py --part analysis --quick   # about a minute on 2 cores
    python benchmarks/learning.py --part analysis           # the full sizes

Setups:

* a constant gain learned by minimising loss (12) through the unrolled filter on a 2-d
  linear-Gaussian model (Q = 0.2, R = 0.5, first component observed), from the 3DVar gain
  of B = I, compared with the steady-state Kalman gain;
* the same on Lorenz-96 (Sakov and Oke 2008: d = 40, all observed every 0.05, R = I), from
  the gain of 3DVar with B = 0.02 C_clim (RMSE about 0.41), compared on an independent
  twin with that 3DVar and the ETKF with N = 20, inflation 1.02;
* losses (12), (13) and the corrected (13) of constant-gain filters K = kappa K_inf over a
  grid of kappa on the 2-d linear-Gaussian model with both components observed, pooled
  over four twins.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import (  # noqa: E402
    ETKF,
    ThreeDVar,
    assimilate,
    steady_state_covariance,
    var3d_gain,
)
from dalib.learning import (  # noqa: E402
    corrected_observation_loss,
    learn_gain,
    observation_loss,
    truth_loss,
)


def _target(name, target, tolerance, measured, passed):
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": float(measured), "passed": bool(passed)}


def _kalman_gain(ssm):
    C_f, _ = steady_state_covariance(ssm.M.A, ssm.h, ssm.Q, ssm.R)
    return var3d_gain(C_f, ssm.h, ssm.R)


def linear_gain(quick: bool) -> list[dict]:
    kw = {"d": 2, "Q": 0.2, "R": 0.5}
    ssm = dalib.setups.linear_gaussian(**kw)
    K_inf = _kalman_gain(ssm)
    twin = ssm.simulate(8000 if quick else 20000, rng=1)
    K, _ = learn_gain(dalib.setups.linear_gaussian(xp="jax", **kw), twin,
                      var3d_gain(np.eye(2), ssm.h, ssm.R), window=30, burn_in=10,
                      n_iter=600 if quick else 1500, batch_size=128, rng=2)
    rel = np.linalg.norm(K - K_inf) / np.linalg.norm(K_inf)
    return [_target("learned constant gain, linear-Gaussian (d = 2): relative distance "
                    "to the steady-state Kalman gain", 0.0, 0.05, rel, rel < 0.05)]


def lorenz96_gain(quick: bool) -> list[dict]:
    l96 = dalib.setups.lorenz96()
    C_clim = np.cov(l96.simulate(5000, rng=9).x[500:].T)
    K0 = var3d_gain(0.02 * C_clim, l96.h, l96.R)
    train = l96.simulate(3000 if quick else 10000, rng=1)
    test = l96.simulate(2000 if quick else 5000, rng=2)
    K, _ = learn_gain(dalib.setups.lorenz96(xp="jax"), train, K0, window=10, burn_in=3,
                      n_iter=1500 if quick else 4000, batch_size=32, learning_rate=3e-2,
                      rng=4)
    burn = 200
    r3 = assimilate(ThreeDVar(K=K0), test, rng=3, burn_in=burn).rmse()
    rl = assimilate(ThreeDVar(K=K), test, rng=3, burn_in=burn).rmse()
    re = assimilate(ETKF(N=20, inflation=1.02), test, rng=3, burn_in=burn).rmse()
    return [_target(f"learned constant gain, Lorenz-96 (sakov2008): RMSE between the ETKF "
                    f"N=20 ({re:.3f}) and 3DVar B = 0.02 C_clim ({r3:.3f})",
                    f"({re:.3f}, {r3:.3f})", "-", rl, re < rl < r3)]


def loss_grid(quick: bool) -> list[dict]:
    ssm = dalib.setups.linear_gaussian(d=2, Q=0.2, R=0.5, observe=np.eye(2))
    K_inf = _kalman_gain(ssm)
    kappas = np.arange(0.25, 1.76, 0.125)
    twins = [ssm.simulate(5000 if quick else 20000, rng=seed) for seed in (5, 6, 7, 8)]
    xt = np.concatenate([tw.x[1:] for tw in twins])
    y = np.concatenate([tw.y for tw in twins])
    J12, J13, Jc, z = [], [], [], []
    for kappa in kappas:
        K = kappa * K_inf
        x = np.concatenate([assimilate(ThreeDVar(K=K), tw, rng=6).analysis[1:]
                            for tw in twins])
        J12.append(float(truth_loss(x, xt)))
        J13.append(float(observation_loss(x, y, ssm.h)))
        Jc.append(float(corrected_observation_loss(x, y, ssm.h, ssm.R, K)))
        # Jc - J12 is a mean of martingale differences: its standard error from their spread
        d = np.sum((x - y) ** 2, axis=1) - np.sum((x - xt) ** 2, axis=1)
        z.append(abs(Jc[-1] - J12[-1]) / (d.std() / np.sqrt(d.size)))
    i12, ic, i13 = int(np.argmin(J12)), int(np.argmin(Jc)), int(np.argmin(J13))
    return [
        _target("corrected loss (13) vs loss (12) over kappa in [0.25, 1.75]: largest "
                "|difference| in Monte Carlo standard errors", 0.0, 4.0, max(z), max(z) < 4),
        _target(f"corrected loss (13): argmin kappa = {kappas[ic]:.3f}, loss (12) argmin "
                f"{kappas[i12]:.3f} (grid steps apart)", 0, 1, abs(ic - i12),
                abs(ic - i12) <= 1),
        _target("plain loss (13): argmin at the observation-fitting end of the grid "
                "(kappa = 1.75)", 1.75, 0, kappas[i13], i13 == len(kappas) - 1),
    ]


def targets(quick: bool) -> list[dict]:
    """All targets of the chapter; ``quick`` uses shorter runs and fewer steps."""
    return linear_gain(quick) + lorenz96_gain(quick) + loss_grid(quick)


if __name__ == "__main__":
    import learning

    sys.exit(learning.main(["--part", "analysis", *sys.argv[1:]]))
