"""Benchmark targets of chapter 8, "Learning a forecast model from a reanalysis".

``targets(quick)`` trains the chapter's local network (an RK4 tendency, Brajard et al.
2020) on Lorenz-96 (d = 40, F = 8) data, from a reanalysis of every other site observed
every 0.05 time units with sigma_o = 1, and returns one dict per target.  Valid times are
the first lead where the normalised RMSE exceeds 0.5, in Lyapunov times (lambda_1 = 1.68),
averaged over forecasts from true initial conditions one time unit apart.

    python benchmarks/learning.py --part reanalysis --quick   # about two minutes
    python benchmarks/learning.py --part reanalysis           # full sizes
"""

from __future__ import annotations

import numpy as np

import dalib
from dalib.learning import skill, surrogates

DT, BURN, LEADS = 0.05, 100, 100


def _row(name, target, tolerance, measured, passed):
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": measured, "passed": bool(passed)}


def targets(quick: bool) -> list[dict]:
    """Train on truth, reanalysis and interpolated observations; measure skill and climate."""
    J = 10_000 if quick else 40_000
    n_iter = 3_000 if quick else 10_000
    n_ic = 60 if quick else 200
    n_free = 2_000 if quick else 10_000
    seeds = dalib.default_rng(2025).spawn(3)

    rea = dalib.da.lorenz96_reanalysis(J=J)
    x_true = np.asarray(rea.twin.x)[BURN:]
    x_rea = np.asarray(rea.analysis)[BURN:]
    y = np.asarray(rea.twin.y)
    x_obs = np.asarray(surrogates.periodic_interpolation(y, 40, 2))[BURN - 1:]
    rea_rmse = float(np.sqrt(np.mean((x_rea - x_true) ** 2)))

    test = np.asarray(dalib.setups.lorenz96().simulate(20 * n_ic + LEADS + 200,
                                                        rng=seeds[0]).x)[200:]
    truth_fc = np.stack([test[20 * k:20 * k + LEADS + 1] for k in range(n_ic)], axis=1)
    std = float(np.std(x_true))

    vt, nets = {}, {}
    for name, data in (("truth", x_true), ("reanalysis", x_rea), ("obs", x_obs)):
        nets[name] = surrogates.fit_network_surrogate(data, dt=DT, rng=seeds[2],
                                                      n_iter=n_iter)
        forecast = np.asarray(surrogates.rollout(nets[name], truth_fc[0], LEADS))
        with np.errstate(all="ignore"):
            vt[name] = float(np.mean(skill.valid_time(forecast, truth_fc, DT, std=std)))

    truth_step = dalib.models.RK4Map(dalib.models.Lorenz96(40, 8.0), DT)
    clim = {}
    for name, step in (("truth", truth_step), ("reanalysis", nets["reanalysis"])):
        free = np.asarray(surrogates.rollout(step, truth_fc[0, :10], n_free))
        clim[name] = skill.climatology(free, burn_in=n_free // 10)
    mean_ratio = clim["reanalysis"].mean / clim["truth"].mean
    std_ratio = clim["reanalysis"].std / clim["truth"].std

    size = f"J={J}, {n_iter} Adam steps, {n_ic} forecasts"
    return [
        _row(f"L96 reanalysis (ETKF N=20 + lag-10 smoother, half observed, J={J})",
             "RMSE against truth", "< 0.3", f"{rea_rmse:.3f}", rea_rmse < 0.3),
        _row(f"Local network trained on the truth ({size})",
             "valid time (Lyapunov times)", ">= 4", f"{vt['truth']:.2f}", vt["truth"] >= 4),
        _row(f"Local network trained on the reanalysis ({size})",
             "valid time (Lyapunov times)", ">= 2", f"{vt['reanalysis']:.2f}",
             vt["reanalysis"] >= 2),
        _row("Local network trained on interpolated observations vs on the reanalysis",
             "valid-time ratio", "< 0.5", f"{vt['obs'] / vt['reanalysis']:.3f} "
             f"({vt['obs']:.2f})", vt["obs"] < 0.5 * vt["reanalysis"]),
        _row(f"Free runs of the reanalysis-trained network (10 x {n_free} steps)",
             "climatological mean / truth's", "within 10%", f"{mean_ratio:.3f}",
             abs(mean_ratio - 1) < 0.1),
        _row(f"Free runs of the reanalysis-trained network (10 x {n_free} steps)",
             "climatological std / truth's", "within 10%", f"{std_ratio:.3f}",
             abs(std_ratio - 1) < 0.1),
    ]


if __name__ == "__main__":
    import sys

    import learning

    sys.exit(learning.main(["--part", "reanalysis", *sys.argv[1:]]))
