"""Accuracy benchmark: time-mean analysis RMSE of dalib's methods against published values.

Two standard twin experiments, both with a perfect model:

* **Lorenz-96** (Sakov and Oke 2008): d = 40, F = 8, every component observed every
  0.05 time units with R = I (``dalib.setups.lorenz96``).
* **Lorenz-63** (Sakov, Oliver and Bertino 2012): every component observed every 0.25 time
  units with R = 2 I (``dalib.setups.lorenz63``).

Reference values
----------------
The published numbers are those DAPPER lists as reproductions of the papers (DAPPER,
``dapper/mods/Lorenz96/sakov2008.py`` and ``dapper/mods/Lorenz63/sakov2012.py``, "Suggested
tuning" / "Expected rmse.a"):

* Sakov and Oke (2008, Tellus A 60, 361-371, Table 1) via DAPPER: perturbed-observation EnKF
  N=40 ``infl=1.06`` 0.22; ETKF ("Sqrt") N=24 ``infl=1.013`` with random rotations 0.18;
  3DVar with B = 0.02 x climatological covariance 0.41; climatology 3.6.
  LETKF N=7, ``infl=1.04``, ``loc_rad=4`` (Gaspari-Cohn) 0.22 (DAPPER; cf. Bocquet 2011).
* Sakov, Oliver and Bertino (2012, Mon. Wea. Rev. 140, 1988-2004, Table 1) via DAPPER:
  ETKF N=10 ``infl=1.02`` 0.60; perturbed-observation EnKF N=10 ``infl=1.04`` 0.65 and
  N=100 ``infl=1.01`` 0.56; 3DVar with B = 0.1 x climatological covariance 1.04;
  climatology 7.6.
* Finite-size EnKF (Bocquet 2011; dual form, Bocquet, Raanes and Hannart 2015) on the
  Sakov-Oke setup via DAPPER: ``EnKF_N(N=24, rot=True)`` 0.21 and with ``xN=2.0`` 0.18, no
  inflation tuned.
* Regularised bootstrap particle filter on the Sakov et al. (2012) setup via DAPPER:
  ``PartFilt(N=100, reg=2.4, NER=0.3)`` 0.38 and ``PartFilt(N=800, reg=0.9, NER=0.2)``
  0.28.  DAPPER's bandwidth is ``reg`` times Scott's :math:`N^{-1/(d+4)}` and jitters only
  duplicated particles; dalib's is ``b`` times Silverman's :math:`(4/(N(d+2)))^{1/(d+4)}`
  (0.50 for N = 100, 0.37 for N = 800) and jitters every resampled particle, so ``b`` was
  tuned on separate seeds (medians of 5 twin experiments of 1000 cycles: b = 2.0, 2.2 and
  2.48 for N = 100 gave 0.36, 0.37 and 0.40; b = 0.93 for N = 800 gave 0.27).  These rows
  report the median over 5 independent twin experiments and how many of them lost the
  truth (RMSE above 1.5); a row passes only if none did.

Conventions match DAPPER's: inflation multiplies the analysis anomalies; ``rotate`` applies
a random mean-preserving rotation to the ETKF's analysis anomalies (DAPPER's ``rot=True``);
a DAPPER ``loc_rad`` r is a Gaspari-Cohn half-width of 1.82 r; the 3DVar background
covariance is a multiple of the truth's climatological covariance; climatology is the RMSE
of the truth's time mean.

Tuning: inflation factors and the LETKF radius were chosen by a small grid search on a
separate twin experiment (seed 101, 3000 cycles, 300 burn-in), not on the runs scored here:

* L96 ETKF N=24 with rotation, inflation in {1.005, 1.01, 1.02}: 1.01 best (0.174) but
  1.005 lost track, so the safer 1.02 (0.177) is used; N=40 in {1.01, 1.02, 1.03}: 1.01.
* L96 EnKF N=40, inflation in {1.03, ..., 1.08}: 1.04 (0.206; 1.06 gave 0.219).
* L96 LETKF N=7, radius in {5, 6, 7.3, 8.5} x inflation in {1.02, 1.04, 1.06}: 8.5, 1.04.
* L96 3DVar, B factor in {0.01, ..., 0.05}: 0.02.  L63 3DVar in {0.05, 0.1, 0.2, 0.3}: 0.1.
* L63 ETKF N=10 with rotation, inflation in {1.0, 1.02, 1.04}: 1.02.  Without rotation the
  ETKF occasionally loses track for long stretches (RMSE 0.58 to 0.85 between seeds).
* L63 EnKF N=10, inflation in {1.02, ..., 1.08}: 1.06 to 1.08 (1.06 used); N=100 in
  {1.0, ..., 1.03}: 1.0 to 1.01 (1.01 used).

Lorenz-63 scores vary by several hundredths between twin experiments of a few thousand
cycles (DAPPER itself gives 0.57 and 0.62 for its ETKF on two seeds of 5000 cycles), so
only the full run is a fair comparison.

Tolerances: +-0.02 for ensemble methods, +-0.03 for particle filters, +-10 % for the others.  A row passes when the
measured value lies within the tolerance of the published one (in either direction).

Usage::

    python benchmarks/accuracy.py            # full run: 20 000 cycles after 1 000 burn-in
                                             # (particle filters: 5 x 4 000 cycles)
    python benchmarks/accuracy.py --quick    # L96 2 000 cycles, L63 6 000 cycles (PF 1 000)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import ETKF, LETKF, BootstrapPF, EnKF, EnKFN, ThreeDVar, assimilate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# (label, parameters shown, published RMSE, tolerance kind, factory(twin) -> method or None)
# A factory returning None marks the climatology row, computed from the truth alone.
L96_ROWS = [
    ("climatology", "truth time mean", 3.6, "rel", None),
    ("3DVar", "B = 0.02 C_clim", 0.41, "rel", lambda tw: ThreeDVar(B=0.02 * _clim_cov(tw))),
    ("ETKF", "N=24, infl=1.02, rotate", 0.18, "abs",
     lambda tw: ETKF(N=24, inflation=1.02, rotate=True)),
    ("ETKF", "N=40, infl=1.01", 0.18, "abs", lambda tw: ETKF(N=40, inflation=1.01)),
    ("EnKF (pert. obs)", "N=40, infl=1.04", 0.22, "abs", lambda tw: EnKF(N=40, inflation=1.04)),
    ("LETKF", "N=7, radius=8.5, infl=1.04", 0.22, "abs",
     lambda tw: LETKF(N=7, radius=8.5, inflation=1.04)),
    ("EnKF-N (dual)", "N=24, xN=1, rotate", 0.21, "abs",
     lambda tw: EnKFN(N=24, xN=1.0, rotate=True)),
    ("EnKF-N (dual)", "N=24, xN=2, rotate", 0.18, "abs",
     lambda tw: EnKFN(N=24, xN=2.0, rotate=True)),
]
L63_ROWS = [
    ("climatology", "truth time mean", 7.6, "rel", None),
    ("3DVar", "B = 0.1 C_clim", 1.04, "rel", lambda tw: ThreeDVar(B=0.1 * _clim_cov(tw))),
    ("ETKF", "N=10, infl=1.02, rotate", 0.60, "abs",
     lambda tw: ETKF(N=10, inflation=1.02, rotate=True)),
    ("EnKF (pert. obs)", "N=10, infl=1.06", 0.65, "abs", lambda tw: EnKF(N=10, inflation=1.06)),
    ("EnKF (pert. obs)", "N=100, infl=1.01", 0.56, "abs",
     lambda tw: EnKF(N=100, inflation=1.01)),
]

# Particle filters on a perfect model: regularised resampling (kernel jitter of bandwidth
# b h_opt, relative to the weighted particle covariance) when the effective sample size drops
# below a fraction of N. Scored as the median over SEEDS twin experiments; a run whose RMSE
# exceeds LOST (above the observation error sqrt(2)) counts as diverged.
L63_PF_ROWS = [
    ("bootstrap PF", "N=100, b=2.2, ESS<0.3N", 0.38, "pf",
     lambda tw: BootstrapPF(N=100, threshold=0.3, bandwidth=2.2)),
    ("bootstrap PF", "N=800, b=0.93, ESS<0.2N", 0.28, "pf",
     lambda tw: BootstrapPF(N=800, threshold=0.2, bandwidth=0.93)),
]
SEEDS, LOST = 5, 1.5

# name, setup, rows, (cycles, burn-in) of the quick run, (cycles, burn-in) of the full run
EXPERIMENTS = [
    ("L96 Sakov-Oke 2008", dalib.setups.lorenz96, L96_ROWS, (2000, 200), (20000, 1000)),
    ("L63 Sakov et al. 2012", dalib.setups.lorenz63, L63_ROWS, (6000, 500), (20000, 1000)),
    ("L63 Sakov et al. 2012", dalib.setups.lorenz63, L63_PF_ROWS, (1000, 200), (4000, 500)),
]
TOLERANCE = {"abs": lambda published: 0.02, "rel": lambda published: 0.1 * published,
             "pf": lambda published: 0.03}


def _clim_cov(twin):
    return np.cov(dalib.to_numpy(twin.x).T)


def _climatology_rmse(twin, burn_in):
    x = dalib.to_numpy(twin.x)
    err = np.sqrt(np.mean((x - x.mean(axis=0)) ** 2, axis=1))
    return float(err[burn_in:].mean())


def run(quick: bool, seed: int):
    rows = []
    for name, setup, methods, quick_size, full_size in EXPERIMENTS:
        cycles, burn_in = quick_size if quick else full_size
        twin = setup().simulate(cycles + burn_in, rng=seed)
        for label, params, published, kind, factory in methods:
            start = time.perf_counter()
            lost = 0
            if factory is None:
                measured = _climatology_rmse(twin, burn_in)
            elif kind == "pf":
                scores = _median_over_seeds(setup, factory, cycles, burn_in, seed)
                measured, lost = float(np.median(scores)), int(np.sum(scores > LOST))
                params = f"{params}, {lost}/{SEEDS} lost"
            else:
                result = assimilate(factory(twin), twin, rng=seed + 1, burn_in=burn_in)
                measured = result.rmse()
            tol = TOLERANCE[kind](published)
            ok = abs(measured - published) <= tol and lost == 0
            rows.append((name, cycles, label, params, published, measured, tol, ok,
                         time.perf_counter() - start))
    return rows


def _median_over_seeds(setup, factory, cycles, burn_in, seed):
    """Time-mean RMSEs of SEEDS independent twin experiments (truth, observations, filter)."""
    scores = []
    for k in range(SEEDS):
        twin = setup().simulate(cycles + burn_in, rng=seed + 100 + k)
        result = assimilate(factory(twin), twin, rng=seed + 200 + k, burn_in=burn_in)
        scores.append(result.rmse())
    return np.array(scores)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (under 3 minutes)")
    parser.add_argument("--seed", type=int, default=2008)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = run(args.quick, args.seed)
    kind = "quick" if args.quick else "full"
    lines = [f"time-mean analysis RMSE after the burn-in ({kind} run, seed {args.seed})"]
    header = (f"{'experiment':<22} {'cycles':>6} {'method':<17} {'parameters':<34} "
              f"{'published':>9} {'measured':>9} {'tolerance':>10}  result")
    lines += [header, "-" * len(header)]
    for name, cycles, label, params, published, measured, tol, ok, _ in rows:
        lines.append(f"{name:<22} {cycles:6d} {label:<17} {params:<34} {published:9.2f} "
                     f"{measured:9.3f} {'+-' + format(tol, '.3f'):>10}  "
                     f"{'PASS' if ok else 'FAIL'}")
    n_fail = sum(not r[7] for r in rows)
    lines.append(f"{len(rows) - n_fail} PASS, {n_fail} FAIL in "
                 f"{time.perf_counter() - start:.0f} s")
    print("\n".join(lines))
    out = RESULTS / f"accuracy_{kind}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/accuracy.py", *sys.argv[1:]])
    out.write_text(f"# {command}\n# {datetime.date.today()}, {platform.machine()}, "
                   f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
                   + "\n".join(lines) + "\n")
    print(f"written to {out.relative_to(RESULTS.parents[1])}")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
