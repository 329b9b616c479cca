"""Speed and accuracy of dalib against DAPPER, side by side, per assimilation cycle.

DAPPER (Raanes et al., https://github.com/nansencenter/DAPPER) runs in its own virtual
environment (``benchmarks/.venv-dapper``, made by ``make vs-dapper``) through
``benchmarks/dapper_side.py``, in its fastest mode (statistics limited to errors).  dalib runs
here, in the book's environment, on the same experiments and the same number of cycles, and
records the analysis mean and spread every cycle (its RMSE against the truth is computed for
all cycles in one vectorised pass, inside the timed region).  Both sides use one BLAS thread.

Experiments (Lorenz-96, F = 8, all components observed every 0.05 with R = I), each with
dalib's NumPy driver (``assimilate``) and its compiled JAX driver
(``dalib.da.compiled.assimilate_compiled``, time per cycle without the one compilation,
which is printed separately):

* d = 40, ETKF, N = 40, inflation 1.02 (targets: 3x DAPPER with NumPy, 8x with JAX);
* d = 40, perturbed-observation EnKF, N = 40, inflation 1.05 (3x and 8x);
* d = 1000, LETKF, N = 20, inflation 1.02, Gaspari-Cohn localisation of DAPPER radius 4
  (half-width 1.82 x 4 = 7.28 grid points) (10x and 20x against DAPPER's like-for-like
  per-site LETKF; the ratio against DAPPER's two-sites-per-batch setting of its sakov2008
  file is printed too).

A shared machine's timings move from run to run, so the three sides run interleaved,
``--repeats`` times (DAPPER, dalib NumPy, dalib JAX, DAPPER, ...); the table gives the
median time per cycle with its range over the repeats, and the load average of the machine
during the runs.  A row passes when the ratio of the medians meets its target and the two
time-mean analysis RMSEs agree within 0.02.  Results are written to
``benchmarks/results/vs_dapper.json`` (``.txt``) and a figure to
``book/figures/vs_dapper.png``; a ``--quick`` run writes ``vs_dapper_quick.*`` instead.

Usage::

    python benchmarks/vs_dapper.py            # 3000 cycles at d=40, 150 at d=1000, 3 repeats
    python benchmarks/vs_dapper.py --quick    # 600 and 80 cycles, 2 repeats
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
from dalib.ssm import TwinExperiment  # noqa: E402

DAPPER_PY = ROOT / "benchmarks" / ".venv-dapper" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results" / "vs_dapper.json"
FIGURE = ROOT / "book" / "figures" / "vs_dapper.png"
GC_PER_DAPPER_RADIUS = 1.82  # DAPPER's Gaspari-Cohn half-width per unit of loc_rad

EXPERIMENTS = [
    # name as in dapper_side.py, d, dalib method, targets with NumPy and with compiled JAX
    ("l96-40 ETKF", 40, lambda: ETKF(N=40, inflation=1.02), 3.0, 8.0),
    ("l96-40 EnKF-PertObs", 40, lambda: EnKF(N=40, inflation=1.05), 3.0, 8.0),
    ("l96-1000 LETKF", 1000,
     lambda: LETKF(N=20, radius=GC_PER_DAPPER_RADIUS * 4.0, inflation=1.02), 10.0, 20.0),
]
BATCH2 = "l96-1000 LETKF batch 2"


def load() -> float:
    return os.getloadavg()[0]


def run_dapper(args, batch: int = 1, only=None) -> dict:
    """Run DAPPER's side in its own environment; return its records by experiment name."""
    if not DAPPER_PY.exists():
        sys.exit(f"DAPPER's environment is missing ({DAPPER_PY}); run `make vs-dapper`.")
    cmd = [str(DAPPER_PY), str(ROOT / "benchmarks" / "dapper_side.py"),
           "--cycles", str(args.cycles), "--burn-in", str(args.burn_in),
           "--letkf-cycles", str(args.letkf_cycles), "--letkf-burn-in", str(args.letkf_burn_in),
           "--letkf-batch", str(batch)]
    for name in only or ():
        cmd += ["--only", name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"DAPPER's side failed:\n{out.stderr[-3000:]}")
    return {rec["name"]: rec for rec in json.loads(out.stdout)}


def twin_of(d: int, cycles: int, seed: int):
    twin = dalib.setups.lorenz96(d=d).simulate(cycles, rng=seed)
    ssm_jax = dalib.setups.lorenz96(d=d, xp="jax")
    jx = [dalib.asarray(a, "jax") for a in (twin.t, twin.x, twin.y)]
    return twin, TwinExperiment(ssm_jax, *jx)


def run_numpy(twin, make_method, burn_in: int, seed: int):
    """Seconds per cycle and time-mean analysis RMSE of dalib's NumPy driver."""
    start = time.perf_counter()
    result = assimilate(make_method(), twin, rng=seed + 1, burn_in=burn_in, progress=False)
    rmse = float(result.rmse())  # RMSE of every cycle, then its time mean
    return (time.perf_counter() - start) / twin.J, rmse


def run_jax(twin, make_method, burn_in: int, seed: int):
    """Seconds per compiled cycle, compile seconds and RMSE of the compiled JAX driver."""
    from dalib.da.compiled import assimilate_compiled

    result = assimilate_compiled(make_method(), twin, dalib.default_rng(seed + 1, "jax"),
                                 burn_in=burn_in)
    rmse = float(result.rmse())
    return result.extras["run_seconds"] / twin.J, result.extras["compile_seconds"], rmse


def _stats(values):
    v = np.asarray(values, dtype=float)
    return float(np.median(v)), float(v.min()), float(v.max())


def _ms(x):
    return f"{1e3 * x:.3g}" if x < 1 else f"{1e3 * x:.0f}"


def table(rows, loads):
    """The printed table and the notes under it."""
    header = (f"{'experiment':<20}{'driver':>8}{'cycles':>7}  {'DAPPER ms (range)':<20}"
              f"{'dalib ms (range)':<20}{'speed-up':>8}{'target':>7}{'RMSE D/d':>13}  result")
    lines = [header, "-" * len(header)]
    for r in rows:
        dr = f"{_ms(r['dapper_s'])} ({_ms(r['dapper_range'][0])}-{_ms(r['dapper_range'][1])})"
        lr = f"{_ms(r['dalib_s'])} ({_ms(r['dalib_range'][0])}-{_ms(r['dalib_range'][1])})"
        lines.append(f"{r['experiment']:<20}{r['driver']:>8}{r['cycles']:>7}  {dr:<20}{lr:<20}"
                     f"{r['speedup']:>7.1f}x{r['target']:>6.0f}x"
                     f"{r['dapper_rmse']:>7.3f}/{r['dalib_rmse']:.3f}  "
                     f"{'PASS' if r['passed'] else 'FAIL'}")
    notes = []
    for r in rows:
        if "compile_s" in r:
            notes.append(f"{r['experiment']} JAX jit: compiled once in {r['compile_s']:.1f} s "
                         "(not in the time per cycle)")
        if "speedup_batch2" in r:
            notes.append(
                f"{r['experiment']} {r['driver']}: {r['speedup_batch2']:.1f}x DAPPER's "
                f"two-sites-per-batch LETKF ({_ms(r['dapper_batch2_s'])} ms per cycle, range "
                f"{_ms(r['dapper_batch2_range'][0])}-{_ms(r['dapper_batch2_range'][1])}, "
                f"RMSE {r['dapper_batch2_rmse']:.3f})")
    notes.append(f"load average (1 min) during the runs: {np.median(loads):.1f} "
                 f"(range {min(loads):.1f}-{max(loads):.1f}) on {os.cpu_count()} CPUs")
    return lines, notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, two repeats")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3, quick 2)")
    parser.add_argument("--seed", type=int, default=3000)
    args = parser.parse_args(argv)
    args.cycles, args.burn_in = (600, 100) if args.quick else (3000, 500)
    args.letkf_cycles, args.letkf_burn_in = (80, 30) if args.quick else (150, 50)
    repeats = args.repeats or (2 if args.quick else 3)

    twins = {}
    for name, d, *_ in EXPERIMENTS:
        big = d > 100
        cycles = args.letkf_cycles if big else args.cycles
        twins[name] = twin_of(d, cycles, args.seed)
    keys = ("dapper", "numpy", "jax", "compile", "batch2")
    times = {name: {k: [] for k in keys} for name, *_ in EXPERIMENTS}
    rmse = {name: {"dapper": [], "numpy": [], "jax": [], "batch2": []}
            for name, *_ in EXPERIMENTS}
    loads = [load()]
    for rep in range(repeats):
        print(f"repeat {rep + 1} of {repeats}: DAPPER ...", flush=True)
        dapper = run_dapper(args)
        dapper[BATCH2] = next(iter(run_dapper(args, 2, ["letkf"]).values()))
        loads.append(load())
        for name, d, make_method, *_ in EXPERIMENTS:
            big = d > 100
            burn_in = args.letkf_burn_in if big else args.burn_in
            ref = dapper[name]
            times[name]["dapper"].append(ref["seconds_per_cycle"])
            rmse[name]["dapper"].append(ref["rmse_a"])
            if big:
                times[name]["batch2"].append(dapper[BATCH2]["seconds_per_cycle"])
                rmse[name]["batch2"].append(dapper[BATCH2]["rmse_a"])
            print(f"  dalib {name}: NumPy, compiled JAX ...", flush=True)
            twin_np, twin_jax = twins[name]
            sec, r = run_numpy(twin_np, make_method, burn_in, args.seed)
            times[name]["numpy"].append(sec)
            rmse[name]["numpy"].append(r)
            sec, comp, r = run_jax(twin_jax, make_method, burn_in, args.seed)
            times[name]["jax"].append(sec)
            times[name]["compile"].append(comp)
            rmse[name]["jax"].append(r)
            loads.append(load())

    rows = []
    for name, _d, _, target_np, target_jax in EXPERIMENTS:
        t = times[name]
        dapper_med = _stats(t["dapper"])[0]
        for side, target in (("numpy", target_np), ("jax", target_jax)):
            med, lo, hi = _stats(t[side])
            speedup = dapper_med / med
            r_dapper, r_dalib = float(np.median(rmse[name]["dapper"])), float(
                np.median(rmse[name][side]))
            row = {"experiment": name, "driver": "NumPy" if side == "numpy" else "JAX jit",
                       "cycles": twins[name][0].J, "repeats": repeats,
                       "dapper_s": dapper_med, "dapper_range": _stats(t["dapper"])[1:],
                       "dalib_s": med, "dalib_range": (lo, hi), "speedup": speedup, "target": target,
                       "dapper_rmse": r_dapper, "dalib_rmse": r_dalib,
                       "passed": bool(speedup >= target and abs(r_dalib - r_dapper) <= 0.02)}
            if side == "jax":
                row["compile_s"] = _stats(t["compile"])[0]
            if t["batch2"]:
                b2 = _stats(t["batch2"])
                row.update(dapper_batch2_s=b2[0], dapper_batch2_range=b2[1:],
                           speedup_batch2=b2[0] / med,
                           dapper_batch2_rmse=float(np.median(rmse[name]["batch2"])))
            rows.append(row)

    lines, notes = table(rows, loads)
    print("\n" + "\n".join(lines) + "\n" + "\n".join(notes))

    import jax

    record = {
        "command": " ".join(["python", "benchmarks/vs_dapper.py", *(argv or sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "machine": ", ".join(filter(None, [platform.machine(), f"{os.cpu_count()} CPUs",
                                        platform.processor()])),
        "python": platform.python_version(), "numpy": np.__version__, "jax": jax.__version__,
        "dapper_version": next(iter(dapper.values())).get("dapper_version"),
        "blas_threads": 1, "repeats": repeats, "load_average": loads, "rows": rows,
    }
    write(record, lines, notes, args.quick)
    return 0 if all(r["passed"] for r in rows) else 1


def write(record, lines, notes, quick: bool) -> None:
    """The results (.json, .txt) and the figure; a quick run's get the suffix _quick."""
    results = RESULTS.with_name(RESULTS.stem + ("_quick" if quick else "") + ".json")
    figure = FIGURE.with_name(FIGURE.stem + ("_quick" if quick else "") + ".png")
    repeats = record["repeats"]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(record, indent=1) + "\n")
    results.with_suffix(".txt").write_text(
        f"# {record['command']}\n# {record['date']}, {record['machine']}, Python "
        f"{record['python']}, NumPy {record['numpy']}, JAX {record['jax']}, DAPPER "
        f"{record['dapper_version']}, one BLAS thread, {repeats} interleaved repeats\n"
        + "\n".join(lines) + "\n" + "\n".join(notes) + "\n")
    plot(record["rows"], figure, record)
    print(f"\nresults written to {results.relative_to(ROOT)} (.json, .txt) and "
          f"{figure.relative_to(ROOT)}")


def plot(rows, path: Path, record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dalib.plotting import use_book_style

    use_book_style()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    y = np.arange(len(rows))
    ax.barh(y + 0.2, [1e3 * r["dapper_s"] for r in rows], 0.4, label="DAPPER", color="0.6")
    ax.barh(y - 0.2, [1e3 * r["dalib_s"] for r in rows], 0.4, label="dalib",
            color="tab:blue")
    for i, r in enumerate(rows):
        ax.text(1e3 * r["dalib_s"] * 1.15, i - 0.2, f"{r['speedup']:.1f}x faster",
                va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"{r['experiment']}, {r['driver']}" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per assimilation cycle (log scale)")
    ax.set_title(f"{record['date']}, {record['machine']}, one BLAS thread, medians of "
                 f"{record['repeats']} repeats", fontsize=8)
    ax.legend(loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
