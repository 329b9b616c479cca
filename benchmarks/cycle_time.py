"""Per-cycle wall time of dalib's cycling driver (forecast + analysis + RMSE and spread).

Sizes of the planned comparison with DAPPER:

* ETKF and perturbed-observation EnKF, Lorenz-96 with d = 40, N = 40, all observed;
* LETKF, Lorenz-96 with d = 1000, N = 20, all observed, Gaspari-Cohn half-width 5.

Each run goes through :func:`dalib.da.assimilate`, which stores the forecast and analysis
means and spreads of every cycle; the RMSE series come from the stored means.  The best of
``--repeat`` runs is reported.

Usage::

    python benchmarks/cycle_time.py            # all three
    python benchmarks/cycle_time.py --cycles 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import dalib  # noqa: E402
from dalib.da import ETKF, LETKF, EnKF, assimilate  # noqa: E402


def per_cycle(method, twin, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        res = assimilate(method, twin, rng=1, progress=False)
        _ = res.rmse_a  # the RMSE of every cycle
        best = min(best, time.perf_counter() - start)
    return best / twin.J, res


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000, help="cycles for d = 40")
    parser.add_argument("--letkf-cycles", type=int, default=40, help="cycles for d = 1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = []
    twin40 = dalib.setups.lorenz96(d=40).simulate(args.cycles, rng=2)
    for method in (ETKF(N=40, inflation=1.02), EnKF(N=40, inflation=1.06)):
        t, res = per_cycle(method, twin40, args.repeat)
        rows.append(("L96 d=40", repr(method), t, res.rmse()))
    twin1000 = dalib.setups.lorenz96(d=1000).simulate(args.letkf_cycles, rng=2)
    method = LETKF(N=20, radius=5.0, inflation=1.03)
    t, res = per_cycle(method, twin1000, args.repeat)
    rows.append(("L96 d=1000", repr(method), t, res.rmse()))

    print(f"{'setup':<11} {'method':<50} {'ms/cycle':>9} {'rmse_a':>7}")
    for setup, name, t, rmse in rows:
        print(f"{setup:<11} {name:<50} {1e3 * t:9.3f} {rmse:7.3f}")


if __name__ == "__main__":
    main()
