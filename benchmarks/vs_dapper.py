"""Speed and accuracy of dalib against DAPPER, side by side, per assimilation cycle.

DAPPER (Raanes et al., https://github.com/nansencenter/DAPPER) runs in its own virtual
environment (``benchmarks/.venv-dapper``, made by ``make vs-dapper``) through
``benchmarks/dapper_side.py``, in its fastest mode (statistics limited to errors).  dalib runs
here, in the book's environment, on the same experiments and the same number of cycles, and
records the analysis mean and spread every cycle (its RMSE against the truth is computed for
all cycles in one vectorised pass, inside the timed region).  Both sides use one BLAS thread.

Experiments (Lorenz-96, F = 8, all components observed every 0.05 with R = I):

* d = 40, ETKF, N = 40, inflation 1.02 (target: dalib at least 3x faster);
* d = 40, perturbed-observation EnKF, N = 40, inflation 1.05 (at least 3x faster);
* d = 1000, LETKF, N = 20, inflation 1.02, Gaspari-Cohn localisation of DAPPER radius 4
  (half-width 1.82 x 4 = 7.28 grid points) (at least 20x faster).

A row passes when the speed-up meets its target and the two time-mean analysis RMSEs agree
within 0.02.  Results are written to ``benchmarks/results/vs_dapper.json`` and a figure to
``book/figures/vs_dapper.png``.

Usage::

    python benchmarks/vs_dapper.py            # 5000 cycles at d=40, 300 at d=1000
    python benchmarks/vs_dapper.py --quick    # 600 and 150 cycles (under 3 minutes)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads BLAS; DAPPER also uses one thread

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import ETKF, LETKF, EnKF, assimilate  # noqa: E402

DAPPER_PY = ROOT / "benchmarks" / ".venv-dapper" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results" / "vs_dapper.json"
FIGURE = ROOT / "book" / "figures" / "vs_dapper.png"
GC_PER_DAPPER_RADIUS = 1.82  # DAPPER's Gaspari-Cohn half-width per unit of loc_rad

EXPERIMENTS = [
    # name as in dapper_side.py, d, dalib method, speed-up target
    ("l96-40 ETKF", 40, lambda: ETKF(N=40, inflation=1.02), 3.0),
    ("l96-40 EnKF-PertObs", 40, lambda: EnKF(N=40, inflation=1.05), 3.0),
    ("l96-1000 LETKF", 1000,
     lambda: LETKF(N=20, radius=GC_PER_DAPPER_RADIUS * 4.0, inflation=1.02), 20.0),
]


def run_dapper(args) -> dict:
    """Run DAPPER's side in its own environment; return its records by experiment name."""
    if not DAPPER_PY.exists():
        sys.exit(f"DAPPER's environment is missing ({DAPPER_PY}); run `make vs-dapper`.")
    cmd = [str(DAPPER_PY), str(ROOT / "benchmarks" / "dapper_side.py"),
           "--cycles", str(args.cycles), "--burn-in", str(args.burn_in),
           "--letkf-cycles", str(args.letkf_cycles), "--letkf-burn-in", str(args.letkf_burn_in)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"DAPPER's side failed:\n{out.stderr[-3000:]}")
    return {rec["name"]: rec for rec in json.loads(out.stdout)}


def run_dalib(d: int, make_method, cycles: int, burn_in: int, seed: int, repeat: int):
    """Best-of-``repeat`` seconds per cycle and the time-mean analysis RMSE of dalib."""
    ssm = dalib.setups.lorenz96(d=d)
    twin = ssm.simulate(cycles, rng=seed)
    best, rmse = float("inf"), None
    for _ in range(repeat):
        method = make_method()
        start = time.perf_counter()
        result = assimilate(method, twin, rng=seed + 1, burn_in=burn_in, progress=False)
        rmse = float(result.rmse())  # RMSE of every cycle, then its time mean
        best = min(best, (time.perf_counter() - start) / cycles)
    return best, rmse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under 3 minutes)")
    parser.add_argument("--seed", type=int, default=3000)
    args = parser.parse_args(argv)
    args.cycles, args.burn_in = (600, 100) if args.quick else (5000, 1000)
    args.letkf_cycles, args.letkf_burn_in = (150, 50) if args.quick else (300, 100)

    print("running DAPPER's side ...", flush=True)
    dapper = run_dapper(args)
    rows = []
    for name, d, make_method, target in EXPERIMENTS:
        big = d > 100
        cycles = args.letkf_cycles if big else args.cycles
        burn_in = args.letkf_burn_in if big else args.burn_in
        print(f"running dalib: {name} ...", flush=True)
        sec, rmse = run_dalib(d, make_method, cycles, burn_in, args.seed, 1 if big else 3)
        ref = dapper[name]
        ratio = ref["seconds_per_cycle"] / sec
        ok = ratio >= target and abs(rmse - ref["rmse_a"]) <= 0.02
        rows.append(dict(experiment=name, cycles=cycles, dapper_s=ref["seconds_per_cycle"],
                         dalib_s=sec, speedup=ratio, target=target,
                         dapper_rmse=ref["rmse_a"], dalib_rmse=rmse, passed=ok))

    header = (f"{'experiment':<22}{'cycles':>7}{'DAPPER ms':>11}{'dalib ms':>10}"
              f"{'speed-up':>10}{'target':>8}{'RMSE DAPPER':>13}{'RMSE dalib':>12}  result")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['experiment']:<22}{r['cycles']:>7}{1e3 * r['dapper_s']:>11.3f}"
                     f"{1e3 * r['dalib_s']:>10.3f}{r['speedup']:>9.1f}x{r['target']:>7.0f}x"
                     f"{r['dapper_rmse']:>13.3f}{r['dalib_rmse']:>12.3f}  "
                     f"{'PASS' if r['passed'] else 'FAIL'}")
    print("\n" + "\n".join(lines))

    record = dict(
        command=" ".join(["python", "benchmarks/vs_dapper.py", *(argv or sys.argv[1:])]),
        date=datetime.date.today().isoformat(),
        machine=", ".join(filter(None, [platform.machine(), f"{os.cpu_count()} CPUs",
                                        platform.processor()])),
        python=platform.python_version(), numpy=np.__version__,
        dapper_version=next(iter(dapper.values())).get("dapper_version"),
        blas_threads=1, rows=rows,
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    RESULTS.with_suffix(".txt").write_text(
        f"# {record['command']}\n# {record['date']}, {record['machine']}, Python "
        f"{record['python']}, NumPy {record['numpy']}, DAPPER {record['dapper_version']}, "
        "one BLAS thread\n" + "\n".join(lines) + "\n")
    plot(rows, FIGURE, record)
    print(f"\nresults written to {RESULTS.relative_to(ROOT)} (.json, .txt) and "
          f"{FIGURE.relative_to(ROOT)}")
    return 0 if all(r["passed"] for r in rows) else 1


def plot(rows, path: Path, record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dalib.plotting import use_book_style

    use_book_style()
    fig, ax = plt.subplots(figsize=(7, 3))
    y = np.arange(len(rows))
    ax.barh(y + 0.2, [1e3 * r["dapper_s"] for r in rows], 0.4, label="DAPPER", color="0.6")
    ax.barh(y - 0.2, [1e3 * r["dalib_s"] for r in rows], 0.4, label="dalib",
            color="tab:blue")
    for i, r in enumerate(rows):
        ax.text(1e3 * r["dalib_s"] * 1.15, i - 0.2, f"{r['speedup']:.1f}x faster",
                va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_yticks(y, [r["experiment"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per assimilation cycle (log scale)")
    ax.set_title(f"{record['date']}, {record['machine']}, one BLAS thread", fontsize=8)
    ax.legend(loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
