"""Time and peak memory of one assimilation cycle as the state and the ensemble grow.

Lorenz-96 (F = 8, one RK4 step of 0.05 per cycle), observed in all components or in every
4th one, with a diagonal R (a vector of variances, so no d-by-d matrix anywhere):

* state dimension: d = 40 ... 10^6 at N = 20 for the ETKF and the perturbed-observation
  EnKF, with all or every 4th component observed, and up to 10^5 (full run: 3 x 10^5; on
  a GPU 10^6) for the LETKF (Gaspari-Cohn half-width 5, default chunks of grid points),
  whose analysis is the most expensive;
* ensemble size: N = 10 ... 1000 at d = 1000 for the ETKF (the LETKF up to N = 100, full
  run 200).

Each cycle is timed in two parts, the forecast (``method.forecast``: the model on every
member) and the analysis (``method.analysis``), after a warm-up cycle, over timed cycles
until a time budget is spent (at least two, or one when a cycle takes longer than the
budget); the fastest cycle is reported (the machine may be shared, and other work only adds
time).  On NumPy the clock is the CPU time of this process (``time.process_time``), which
other jobs on a shared machine do not inflate; its user-mode part is recorded too, because
the rest, the operating system's time to provide fresh memory pages for NumPy's large
temporaries, varies with the machine's load.  On CuPy the clock is wall time after
synchronising the device.  Peak memory is measured on the warm-up cycle: with
``tracemalloc`` on NumPy (the largest amount allocated during the cycle on top of what was
allocated before it), and on CuPy as the bytes CuPy's memory pool holds after one cycle
started from an empty pool.  The log-log slope of time against d, fitted over the largest
decade of each sweep (where fixed overheads no longer count), shows how the cost grows:
linear cost gives a slope of 1.  All methods share the forecast code, which does not depend
on the observations, so the forecast time of a size (d, N) is the fastest over all timed
cycles at that size.

NumPy runs with one BLAS thread (unless OMP_NUM_THREADS says otherwise), like the book's
notebooks.  CuPy runs too when a GPU is present, and is skipped with a message otherwise.
Results go to ``benchmarks/results/scaling_<backend>[_quick].json`` (with the command, date
and machine) and a figure to ``book/figures/scaling_<backend>[_quick].png``.

Usage::

    python benchmarks/scaling.py --quick        # under 3 minutes on 2 cores
    python benchmarks/scaling.py                # the full sizes
    python benchmarks/scaling.py --backends cupy
    python benchmarks/scaling.py --replot       # redraw the figures from stored results
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads BLAS

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import ETKF, LETKF, EnKF  # noqa: E402
from dalib.models import Lorenz96, RK4Map  # noqa: E402
from dalib.observations import EveryKth, Identity  # noqa: E402
from dalib.ssm import StateSpaceModel  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "book" / "figures"
RADIUS = 5.0  # Gaspari-Cohn half-width of the LETKF, in grid points

METHODS = {
    "ETKF": lambda N: ETKF(N=N, inflation=1.02),
    "LETKF": lambda N: LETKF(N=N, radius=RADIUS, inflation=1.02),
    "EnKF": lambda N: EnKF(N=N, inflation=1.05),
}

SIZES = {
    # d: sizes of the d sweep; letkf_max: largest d for the LETKF; N: ensemble size of the
    # d sweep; Ns, letkf_N, d_N: the N sweep; cycles, budget: at most `cycles` timed cycles,
    # stopping when `budget` seconds are spent.
    "quick": {"d": [40, 100, 1000, 10_000, 31_623, 100_000, 316_228, 1_000_000],
              "letkf_max": 100_000, "N": 20,
              "Ns": [10, 30, 100, 300, 1000], "letkf_N": 100, "d_N": 1000,
              "cycles": 5, "budget": 0.5},
    "full": {"d": [40, 100, 316, 1000, 3162, 10_000, 31_623, 100_000, 316_228, 1_000_000],
             "letkf_max": 316_228, "N": 20,
             "Ns": [10, 20, 50, 100, 200, 500, 1000], "letkf_N": 200, "d_N": 1000,
             "cycles": 10, "budget": 3.0},
}
GPU_LETKF_MAX = 1_000_000  # on a GPU the LETKF, too, goes to a million variables


# ----------------------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------------------


def gpu_status() -> tuple[bool, str]:
    """Whether CuPy can use a GPU here, and a description or the reason it cannot."""
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install cupy-cuda12x)"
    try:
        if not cupy.cuda.is_available():
            return False, "CuPy is installed but finds no CUDA GPU"
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return True, props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    except Exception as err:  # noqa: BLE001 - a broken driver counts as no GPU
        return False, f"CuPy cannot use a GPU ({type(err).__name__}: {err})"


def timer(xp):
    """The clock of the measurements: wall time on a GPU, this process's CPU time on NumPy.

    On the CPU, the process time is what the computation costs, whatever else the machine
    runs; on a GPU the work happens outside the process, so wall time is the measure.
    """
    if dalib.backend.backend_name(xp) == "cupy":
        return time.perf_counter
    return time.process_time


def user_time() -> float:
    """CPU seconds this process has spent in user mode (not in the operating system)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def synchronize(xp):
    """Wait for the device to finish queued work (a no-op on NumPy)."""
    if dalib.backend.backend_name(xp) == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def machine(backend: str) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if backend == "cupy":
        import cupy

        info["cupy"] = cupy.__version__
        info["gpu"] = gpu_status()[1]
        info["fused_kernels"] = dalib.models.fused.use_fused_kernels(True)
        dalib.models.fused.use_fused_kernels(info["fused_kernels"])
    return info


def device_name(backend: str) -> str:
    if backend == "cupy":
        return gpu_status()[1]
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


# ----------------------------------------------------------------------------------------
# One experiment
# ----------------------------------------------------------------------------------------


def tiled_attractor_point(d: int, xp):
    """A Lorenz-96 state of any size: a point of the d = 40 attractor, repeated.

    Large setups would otherwise spin up on the host for minutes
    (``setups.attractor_point``); the chaos decorrelates the copies within a few time units,
    and the cost of a cycle does not depend on it.
    """
    base = dalib.to_numpy(dalib.setups.attractor_point(Lorenz96(40)))
    return dalib.asarray(np.resize(base, d), xp)


def lorenz96_twin(d: int, obs_every: int, J: int, xp, seed: int = 0):
    """A Lorenz-96 twin experiment of any size (``m0`` from :func:`tiled_attractor_point`).

    The truth starts from ``m0`` plus N(0, I) noise, one RK4 step of 0.05 per cycle.
    """
    m0 = tiled_attractor_point(d, xp)
    h = Identity(d) if obs_every == 1 else EveryKth(d, obs_every)
    R = xp.ones((h.p,), dtype=xp.float64)  # a diagonal R, stored as its diagonal
    ssm = StateSpaceModel(M=RK4Map(Lorenz96(d, 8.0), 0.05), h=h, R=R, m0=m0, C0=1.0, dt=0.05,
                          name=f"Lorenz-96, d={d}")
    return ssm.simulate(J, rng=dalib.default_rng(seed, xp))


def measure(method_name: str, N: int, twin, cycles: int, budget: float, xp) -> dict:
    """Fastest forecast and analysis seconds per cycle, setup time and peak memory."""
    ssm = twin.ssm
    method = METHODS[method_name](N)
    rng = dalib.default_rng(1, xp)
    method.check(ssm)
    synchronize(xp)
    clock = timer(xp)
    start = clock()
    state = method.init(ssm, rng)  # includes the LETKF's local observation sets
    synchronize(xp)
    setup = clock() - start
    state, peak = peak_memory(method, state, ssm, twin.y[0, :], rng, xp)  # the warm-up
    forecast, analysis, f_user, a_user = [], [], [], []
    for j in range(1, cycles + 1):
        u0, t0 = user_time(), clock()
        state = method.forecast(state, ssm, rng)
        synchronize(xp)
        u1, t1 = user_time(), clock()
        state = method.analysis(state, twin.y[j, :], ssm, rng)
        synchronize(xp)
        u2, t2 = user_time(), clock()
        forecast.append(t1 - t0)
        analysis.append(t2 - t1)
        f_user.append(u1 - u0)
        a_user.append(u2 - u1)
        spent = sum(forecast) + sum(analysis)
        if spent > budget and (j >= 2 or spent > 2 * budget):
            break
    mean, _ = method.moments(state)
    finite = bool(xp.all(xp.isfinite(mean)))
    f, a = min(forecast), min(analysis)
    return {"method": method_name, "d": ssm.d, "p": ssm.p, "N": N, "setup_s": setup,
            "forecast_s": f, "analysis_s": a, "cycle_s": f + a,
            "forecast_user_s": min(f_user), "analysis_user_s": min(a_user),
            "cycle_user_s": min(f_user) + min(a_user), "peak_bytes": peak,
            "ensemble_bytes": 8 * N * ssm.d, "cycles": len(forecast), "finite": finite}


def peak_memory(method, state, ssm, y, rng, xp):
    """Run one cycle; return its state and the peak bytes it allocated on top of before."""
    if dalib.backend.backend_name(xp) == "cupy":
        import cupy

        pool = cupy.get_default_memory_pool()
        synchronize(xp)
        held = pool.used_bytes()
        pool.free_all_blocks()  # cached blocks go; the pool then grows to this cycle's peak
        state = method.analysis(method.forecast(state, ssm, rng), y, ssm, rng)
        synchronize(xp)
        return state, int(pool.total_bytes() - held)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        state = method.analysis(method.forecast(state, ssm, rng), y, ssm, rng)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return state, int(peak - before)


def fit_slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx = np.log(np.asarray(x, float))
    ly = np.log(np.maximum(np.asarray(y, float), 1e-12))  # a time below the clock's tick
    return float(np.polyfit(lx, ly, 1)[0])


# ----------------------------------------------------------------------------------------
# Sweeps
# ----------------------------------------------------------------------------------------


def run_backend(backend: str, mode: str, log) -> dict:
    xp = dalib.get_namespace(backend)
    cfg = SIZES[mode]
    letkf_max = GPU_LETKF_MAX if backend == "cupy" else cfg["letkf_max"]
    rows_d, rows_N = [], []
    J = cfg["cycles"] + 1
    for obs_every in (1, 4):
        for d in cfg["d"]:
            twin = lorenz96_twin(d, obs_every, J, xp)
            for name in ("ETKF", "LETKF", "EnKF"):
                if name == "LETKF" and d > letkf_max:
                    continue
                row = measure(name, cfg["N"], twin, cfg["cycles"], cfg["budget"], xp)
                row["obs_every"] = obs_every
                rows_d.append(row)
                log(row)
            del twin
    for d in cfg["d"]:  # the forecast does not depend on the observations: pool both sweeps
        pool_forecasts([r for r in rows_d if r["d"] == d])
    d = cfg["d_N"]
    twin = lorenz96_twin(d, 1, J, xp)
    for name in ("ETKF", "LETKF"):
        for N in cfg["Ns"]:
            if name == "LETKF" and N > cfg["letkf_N"]:
                continue
            row = measure(name, N, twin, cfg["cycles"], cfg["budget"], xp)
            row["obs_every"] = 1
            rows_N.append(row)
            log(row)
    for N in cfg["Ns"]:
        pool_forecasts([r for r in rows_N if r["N"] == N])
    return {"d_sweep": rows_d, "N_sweep": rows_N, "slopes": slopes(rows_d, rows_N)}


def pool_forecasts(rows):
    """Give rows of one (d, N) the fastest forecast time among them (the code is shared)."""
    best = min(r["forecast_s"] for r in rows)
    best_user = min(r["forecast_user_s"] for r in rows)
    for r in rows:
        r["forecast_own_s"] = r["forecast_s"]
        r["forecast_s"] = best
        r["cycle_s"] = best + r["analysis_s"]
        r["forecast_user_s"] = best_user
        r["cycle_user_s"] = best_user + r["analysis_user_s"]


PARTS = ("forecast_s", "analysis_s", "cycle_s", "cycle_user_s", "peak_bytes")


def _decade_fit(rows, size: str):
    """Slopes of every part against ``size`` ("d" or "N") over the largest decade of
    ``rows``, with the range used; ``None`` with fewer than two sizes there."""
    top = max((r[size] for r in rows), default=0)
    rows = [r for r in rows if r[size] >= top / 10 - 1]
    if len(rows) < 2:
        return None
    fit = {part: fit_slope([r[size] for r in rows], [r[part] for r in rows])
           for part in PARTS}
    fit["range"] = [min(r[size] for r in rows), max(r[size] for r in rows)]
    return fit


def slopes(rows_d, rows_N) -> dict:
    """Log-log slopes over the largest decade of each sweep (d, or N)."""
    out = {}
    for name in METHODS:
        for obs_every in sorted({r["obs_every"] for r in rows_d}):
            fit = _decade_fit([r for r in rows_d
                               if r["method"] == name and r["obs_every"] == obs_every], "d")
            if fit is not None:
                out[f"{name}, obs every {obs_every}, vs d"] = fit
        fit = _decade_fit([r for r in rows_N if r["method"] == name], "N")
        if fit is not None:
            out[f"{name} vs N"] = fit
    return out


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def fmt_row(r) -> str:
    return (f"{r['method']:<6} {r['obs_every']:>3} {r['d']:>9} {r['p']:>9} {r['N']:>5} "
            f"{1e3 * r['forecast_s']:>11.2f} {1e3 * r['analysis_s']:>11.2f} "
            f"{1e3 * r['cycle_s']:>11.2f} {1e9 * r['cycle_s'] / (r['N'] * r['d']):>8.1f} "
            f"{r['peak_bytes'] / 2**20:>9.1f} "
            f"{r['ensemble_bytes'] / 2**20:>9.1f} {1e3 * r['setup_s']:>9.1f}")


HEADER = (f"{'method':<6} {'obs':>3} {'d':>9} {'p':>9} {'N':>5} {'forecast ms':>11} "
          f"{'analysis ms':>11} {'cycle ms':>11} {'ns/(Nd)':>8} {'peak MiB':>9} {'E MiB':>9} "
          f"{'setup ms':>9}")


def print_report(backend, result):
    print(f"\n== {backend}: {result['device']} ==")
    print("cost per cycle as d grows (N = 20) and as N grows (d = 1000); 'obs' = every k-th")
    print("component observed; peak = memory allocated during one cycle; E = the ensemble;")
    print("times: the fastest of the timed cycles; ns/(Nd): cycle time per member and "
          "variable")
    print(HEADER)
    for r in result["d_sweep"] + result["N_sweep"]:
        print(fmt_row(r))
    print("\nlog-log slopes (time or memory ~ size^slope), fitted over the largest decade of "
          "each sweep:")
    for key, s in result["slopes"].items():
        print(f"  {key:<28} forecast {s['forecast_s']:5.2f}  analysis {s['analysis_s']:5.2f}"
              f"  cycle {s['cycle_s']:5.2f} (user-mode {s['cycle_user_s']:5.2f})"
              f"  memory {s['peak_bytes']:5.2f}"
              f"   ({s['range'][0]}..{s['range'][1]})")
    print("where the time goes, at each method's largest d (all observed):")
    for name in METHODS:
        rows = [r for r in result["d_sweep"] if r["method"] == name and r["obs_every"] == 1]
        r = max(rows, key=lambda r: r["d"])
        share = r["forecast_s"] / r["cycle_s"]
        print(f"  {r['method']} at d = {r['d']}: forecast {100 * share:.0f}% of the cycle, "
              f"analysis {100 * (1 - share):.0f}%")


def figure(backend, result, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dalib import plotting

    plotting.use_book_style()
    style = {"ETKF": ("C0", "o", "-"), "LETKF": ("C1", "s", "-"), "EnKF": ("C2", "^", "--")}
    seconds = "seconds per cycle" if backend == "cupy" else "CPU seconds per cycle"
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), layout="constrained")
    ax = axes[0]
    rows = [r for r in result["d_sweep"] if r["obs_every"] == 1]
    for name in METHODS:
        color, marker, ls = style[name]
        rr = [r for r in rows if r["method"] == name]
        ds = [r["d"] for r in rr]
        ax.loglog(ds, [r["cycle_s"] for r in rr], marker=marker, ls=ls, color=color,
                  label=name)
        ax.loglog(ds, [r["analysis_s"] for r in rr], ":", color=color, lw=1.2)
    fc = [r for r in rows if r["method"] == "ETKF"]
    ax.loglog([r["d"] for r in fc], [r["forecast_s"] for r in fc], "x-", color="0.35",
              ms=5, lw=1, label="forecast (model)")
    _reference(ax, [r["d"] for r in fc], [r["cycle_s"] for r in fc], 1, "d")
    ax.set(xlabel="state dimension d", ylabel=seconds,
           title=f"N = {rows[0]['N']}: cycle (markers), analysis (dotted)")
    ax.legend(fontsize=8)
    ax = axes[1]
    for name in ("ETKF", "LETKF"):
        color, marker, _ = style[name]
        rr = [r for r in result["N_sweep"] if r["method"] == name]
        Ns = [r["N"] for r in rr]
        ax.loglog(Ns, [r["cycle_s"] for r in rr], marker=marker, color=color, label=name)
        ax.loglog(Ns, [r["forecast_s"] for r in rr], "x--", color=color, ms=5, lw=1,
                  label=f"{name}: forecast")
    rr = [r for r in result["N_sweep"] if r["method"] == "ETKF"]
    for k in (1, 2, 3):
        _reference(ax, [r["N"] for r in rr], [r["cycle_s"] for r in rr], k, "N")
    ax.set(xlabel="ensemble size N", ylabel=seconds,
           title=f"all observed, d = {result['N_sweep'][0]['d']}")
    ax.legend(fontsize=8)
    ax = axes[2]
    for name in METHODS:
        color, marker, ls = style[name]
        rr = [r for r in rows if r["method"] == name]
        ax.loglog([r["d"] for r in rr], [max(r["peak_bytes"], 1) / 2**20 for r in rr],
                  marker=marker, ls=ls, color=color, label=name)
    ax.loglog([r["d"] for r in fc], [r["ensemble_bytes"] / 2**20 for r in fc], "k:", lw=1,
              label="one ensemble (8 N d bytes)")
    ax.set(xlabel="state dimension d", ylabel="MiB", title="memory allocated during a cycle")
    ax.legend(fontsize=8)
    fig.suptitle(f"dalib on {backend}: {result['device']}, {result['date'][:10]}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reference(ax, x, y, slope, var):
    """A dashed line of the given slope over the last decade of x, through the last point."""
    x0, y0 = x[-1], y[-1]
    xs = np.array([max(x[0], x0 / 10), x0], float)
    ys = 1.6 * y0 * (xs / x0) ** slope  # a little above the data
    ax.loglog(xs, ys, color="0.5", lw=1, ls="--")
    label = var if slope == 1 else f"{var}$^{slope}$"
    ax.annotate(label, (xs[0], ys[0]), fontsize=9, color="0.3", ha="right", va="center")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweep (< 3 minutes)")
    parser.add_argument("--backends", default="numpy,cupy",
                        help="comma-separated backends (cupy is skipped without a GPU)")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the figures from the stored results")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    suffix = "" if mode == "full" else "_quick"
    if args.replot:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            stored = RESULTS / f"scaling_{backend}{suffix}.json"
            if stored.exists():
                figure(backend, json.loads(stored.read_text()),
                       FIGURES / f"scaling_{backend}{suffix}.png")
                print(f"redrew book/figures/scaling_{backend}{suffix}.png")
        return
    command = "python " + " ".join(shlex.quote(a) for a in
                                   ["benchmarks/scaling.py", *(argv or sys.argv[1:])])
    start = time.perf_counter()
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "cupy":
            ok, why = gpu_status()
            if not ok:
                print(f"\n== cupy: skipped: {why} ==")
                continue
        if backend not in ("numpy", "cupy"):
            sys.exit(f"--backends: unknown backend {backend!r} (numpy or cupy)")
        print(f"{backend}: running the {mode} sweep ...", flush=True)

        def log(row, backend=backend):
            print(f"  {backend}: " + fmt_row(row), flush=True)

        result = run_backend(backend, mode, log)
        result.update(command=command, mode=mode, backend=backend, device=device_name(backend),
                      date=datetime.datetime.now(datetime.UTC).isoformat(
                          timespec="seconds"),
                      machine=machine(backend), radius=RADIUS,
                      clock=("wall time" if backend == "cupy" else "process CPU time"),
                      notes="seconds per cycle: the fastest of the timed cycles; peak "
                            "memory: allocated on top of the state during one cycle")
        print_report(backend, result)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"scaling_{backend}{suffix}.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
        fig = FIGURES / f"scaling_{backend}{suffix}.png"
        figure(backend, result, fig)
        print(f"\nwrote {out.relative_to(ROOT)} and {fig.relative_to(ROOT)}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
