"""A short check of dalib on a GPU: same statistics as NumPy, memory bandwidth, cycle time.

Run on a machine with a CUDA GPU and CuPy (``pip install cupy-cuda12x`` for CUDA 12); it
takes a few minutes.  Three parts:

(a) **Same results.**  Lorenz-96 (d = 40, all observed, R = I, Sakov and Oke 2008) with
    the ETKF (N = 20, inflation 1.02) and the LETKF (N = 10, half-width 4, inflation 1.03),
    over several seeds on NumPy and on the GPU.  The random streams differ (NumPy's PCG64
    on the host, CuPy's generator on the device), so single runs differ; the time-mean
    analysis RMSE and spread averaged over the seeds must agree within Monte Carlo error:
    ``|mean_gpu - mean_numpy| <= 3 * standard error of the difference``.
(b) **Memory bandwidth of the forecast.**  The copy bandwidth of the device is measured
    with a large device-to-device copy (bytes read plus bytes written, per second).  One
    RK4 step of Lorenz-96 for an (N, d) ensemble has to move at least 16 arrays of the
    ensemble's size (4 per stage: see ``dalib/models/_lorenz96_cupy.py``), so its achieved
    bandwidth is ``16 * 8 * N * d / (seconds per step)``; the goal is at least 50% of the
    copy bandwidth.  Both the fused kernel and the generic array code are measured.
(c) **Cycle time at scale.**  One ETKF cycle (forecast + analysis) for d = 10^6, N = 100,
    all observed, diagonal R (goal: milliseconds), and one LETKF cycle for d = 10^6,
    N = 20 (half-width 5).

``--cpu`` runs everything on the CPU at reduced sizes, as a dry run and for comparison: the
"device" of part (a) is then array-api-strict on a non-default device (NumPy underneath),
and parts (b) and (c) use NumPy.  Without ``--cpu`` and without a GPU the script stops with
a message.  The report is printed and written to ``benchmarks/results/gpu_check_<device>``
``.txt`` and ``.json``, with the date, the device and the command.

Usage::

    python benchmarks/gpu_check.py          # on a GPU
    python benchmarks/gpu_check.py --cpu    # on the CPU, reduced sizes
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads BLAS

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from scaling import gpu_status, lorenz96_twin, synchronize, tiled_attractor_point  # noqa: E402, I001

import dalib  # noqa: E402
from dalib.da import ETKF, LETKF, assimilate  # noqa: E402
from dalib.models import Lorenz96, RK4Map  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

SIZES = {
    # part (a): seeds and cycles; (b): ensemble for the bandwidth; (c): sizes of the cycles
    "gpu": {"seeds": 8, "J": 1500, "bw_shape": (100, 1_000_000), "copy_bytes": 2 * 10**9,
            "etkf": (1_000_000, 100), "letkf": (1_000_000, 20), "repeat": 5},
    "cpu": {"seeds": 4, "J": 600, "bw_shape": (20, 500_000), "copy_bytes": 10**8,
            "etkf": (100_000, 100), "letkf": (10_000, 20), "repeat": 3},
}
METHODS_A = {
    "ETKF N=20": lambda: ETKF(N=20, inflation=1.02),
    "LETKF N=10": lambda: LETKF(N=10, radius=4.0, inflation=1.03),
}


class Report:
    """Collects lines for the printed and written report and values for the JSON file."""

    def __init__(self):
        self.lines, self.data = [], {}

    def __call__(self, text=""):
        print(text, flush=True)
        self.lines.append(text)


# ----------------------------------------------------------------------------------------
# (a) the same statistics
# ----------------------------------------------------------------------------------------


def run_seeds(make, xp, seeds, J, device=None):
    """Time-mean analysis RMSE and spread of one method over several seeds."""
    out = []
    for seed in seeds:
        ssm = dalib.setups.lorenz96(xp=xp, device=device)
        twin = ssm.simulate(J, rng=dalib.default_rng(seed, xp, device))
        res = assimilate(make(), twin, rng=dalib.default_rng(seed + 10_000, xp, device))
        out.append((res.rmse(burn_in=J // 5), res.spread(burn_in=J // 5)))
    return np.array(out)


def part_a(report, cfg, backend, device):
    report("(a) the same statistics on both backends (different random streams)")
    report(f"    Lorenz-96 d=40, all observed, R=I; {cfg['seeds']} seeds x {cfg['J']} cycles "
           f"(first {cfg['J'] // 5} left out)")
    report(f"    {'method':<11} {'score':<7} {'numpy':>15} {backend + ' (device)':>24} "
           f"{'|diff|/se':>10} {'verdict':>8}")
    rows, ok_all = [], True
    for name, make in METHODS_A.items():
        t0 = time.perf_counter()
        ref = run_seeds(make, "numpy", range(cfg["seeds"]), cfg["J"])
        t1 = time.perf_counter()
        dev = run_seeds(make, backend, range(1000, 1000 + cfg["seeds"]), cfg["J"], device)
        t2 = time.perf_counter()
        for k, score in enumerate(("rmse", "spread")):
            a, b = ref[:, k], dev[:, k]
            se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            z = abs(b.mean() - a.mean()) / max(se, 1e-12)
            ok = z <= 3.0
            ok_all &= ok
            report(f"    {name:<11} {score:<7} {a.mean():8.4f} ± {a.std(ddof=1) / math.sqrt(len(a)):.4f}"
                   f" {b.mean():17.4f} ± {b.std(ddof=1) / math.sqrt(len(b)):.4f} {z:10.2f} "
                   f"{'ok' if ok else 'DIFFER':>8}")
            rows.append({"method": name, "score": score, "numpy": a.tolist(),
                         "device": b.tolist(), "z": z, "ok": bool(ok)})
        report(f"    {'':<11} seconds: numpy {t1 - t0:.1f}, {backend} {t2 - t1:.1f}")
    report(f"    verdict: {'PASS' if ok_all else 'FAIL'} (|diff| <= 3 standard errors)")
    return {"rows": rows, "pass": bool(ok_all)}


# ----------------------------------------------------------------------------------------
# (b) memory bandwidth
# ----------------------------------------------------------------------------------------


def best_time(fn, xp, repeat):
    """Fastest of ``repeat`` timed calls of ``fn`` (after one warm-up call)."""
    fn()
    synchronize(xp)
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(xp)
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(xp, nbytes, repeat):
    """Bytes per second of a device-to-device copy (each byte read once and written once)."""
    n = nbytes // 8
    src = xp.ones((n,), dtype=xp.float64)
    dst = xp.zeros((n,), dtype=xp.float64)
    if dalib.backend.backend_name(xp) == "cupy":
        import cupy

        def copy():
            cupy.copyto(dst, src)
    else:
        def copy():
            np.copyto(dst, src)
    return 2 * 8 * n / best_time(copy, xp, repeat)


def part_b(report, cfg, xp, on_gpu):
    report("(b) memory bandwidth of the forecast (one RK4 step of Lorenz-96)")
    copy_bw = copy_bandwidth(xp, cfg["copy_bytes"], cfg["repeat"])
    report(f"    copy bandwidth ({cfg['copy_bytes'] / 1e9:.1f} GB copied): "
           f"{copy_bw / 1e9:8.1f} GB/s (read + write)")
    N, d = cfg["bw_shape"]
    E = tiled_attractor_point(d, xp) + xp.zeros((N, d), dtype=xp.float64)
    M = RK4Map(Lorenz96(d, 8.0), 0.01)
    minimal = 16 * 8 * N * d  # 4 ensemble-sized arrays per stage, 4 stages
    out = {"copy_GBps": copy_bw / 1e9, "N": N, "d": d, "bytes_per_step": minimal}
    paths = [("fused kernel", True), ("generic array code", False)] if on_gpu else \
        [("generic array code", False)]
    for label, fused in paths:
        previous = dalib.models.fused.use_fused_kernels(fused)
        try:
            t = best_time(lambda: M(E), xp, cfg["repeat"])
        finally:
            dalib.models.fused.use_fused_kernels(previous)
        bw = minimal / t
        share = bw / copy_bw
        report(f"    {label:<19} N={N}, d={d}: {1e3 * t:9.3f} ms per step, "
               f"{bw / 1e9:7.1f} GB/s = {100 * share:5.1f}% of copy"
               + ("  (goal >= 50%)" if on_gpu else ""))
        out["fused" if fused else "generic"] = {"seconds_per_step": t, "GBps": bw / 1e9,
                                                "fraction_of_copy": share}
    if on_gpu:
        out["pass"] = bool(out["fused"]["fraction_of_copy"] >= 0.5)
        report(f"    verdict: {'PASS' if out['pass'] else 'FAIL'} (fused kernel at >= 50% of "
               "the copy bandwidth)")
    else:
        report("    (the fused kernel exists only for CuPy; on the CPU the generic code runs)")
    return out


# ----------------------------------------------------------------------------------------
# (c) cycle time at scale
# ----------------------------------------------------------------------------------------


def cycle_time(make, d, N, xp, repeat):
    twin = lorenz96_twin(d, 1, repeat + 2, xp)
    ssm, method = twin.ssm, make(N)
    rng = dalib.default_rng(3, xp)
    method.check(ssm)
    state = method.init(ssm, rng)
    f_times, a_times = [], []
    for j in range(repeat + 1):
        synchronize(xp)
        t0 = time.perf_counter()
        state = method.forecast(state, ssm, rng)
        synchronize(xp)
        t1 = time.perf_counter()
        state = method.analysis(state, twin.y[j, :], ssm, rng)
        synchronize(xp)
        t2 = time.perf_counter()
        if j:  # the first cycle compiles kernels and fills memory pools
            f_times.append(t1 - t0)
            a_times.append(t2 - t1)
    finite = bool(xp.all(xp.isfinite(method.moments(state)[0])))
    return min(f_times), min(a_times), finite


def part_c(report, cfg, xp, on_gpu):
    report("(c) one assimilation cycle at scale (all observed, diagonal R)")
    out = {}
    for name, make, (d, N) in (
        ("ETKF", lambda N: ETKF(N=N, inflation=1.02), cfg["etkf"]),
        ("LETKF", lambda N: LETKF(N=N, radius=5.0, inflation=1.02), cfg["letkf"]),
    ):
        f, a, finite = cycle_time(make, d, N, xp, cfg["repeat"])
        report(f"    {name:<5} d={d:>9}, N={N:>4}: forecast {1e3 * f:9.2f} ms, analysis "
               f"{1e3 * a:9.2f} ms, cycle {1e3 * (f + a):9.2f} ms"
               + ("" if finite else "  (NOT FINITE)"))
        out[name] = {"d": d, "N": N, "forecast_s": f, "analysis_s": a, "cycle_s": f + a,
                     "finite": finite}
    if on_gpu:
        out["pass"] = bool(out["ETKF"]["cycle_s"] < 1.0 and out["ETKF"]["finite"])
        report(f"    verdict: {'PASS' if out['pass'] else 'FAIL'} (ETKF cycle for d=10^6, "
               "N=100 in milliseconds, under a second)")
    return out


# ----------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU at reduced sizes (no GPU needed)")
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   ["benchmarks/gpu_check.py", *(argv or sys.argv[1:])])
    on_gpu, gpu = gpu_status()
    if not args.cpu and not on_gpu:
        sys.exit(f"gpu_check: no GPU to check ({gpu}).\n"
                 "Run it on a machine with a CUDA GPU and CuPy, or add --cpu for the CPU "
                 "version at reduced sizes.")
    on_gpu = on_gpu and not args.cpu
    cfg = SIZES["gpu" if on_gpu else "cpu"]
    if on_gpu:
        backend, device, device_label = "cupy", None, gpu
        xp = dalib.get_namespace("cupy")
    else:
        import array_api_strict

        backend, device = "array_api_strict", array_api_strict.Device("device1")
        device_label = f"CPU ({platform.processor() or platform.machine()}, " \
                       f"{os.cpu_count()} cores)"
        xp = dalib.get_namespace("numpy")
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report = Report()
    report(f"dalib GPU check: {device_label}")
    report(f"date {date}; command: {command}")
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "dalib": dalib.__version__, "blas_threads": os.environ.get("OMP_NUM_THREADS")}
    if on_gpu:
        import cupy

        versions["cupy"] = cupy.__version__
        versions["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    report("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if not on_gpu:
        report("no GPU: reduced sizes; part (a) compares NumPy with array-api-strict on a "
               "non-default device")
    report()
    start = time.perf_counter()
    results = {"a": part_a(report, cfg, backend, device)}
    report()
    results["b"] = part_b(report, cfg, xp, on_gpu)
    report()
    results["c"] = part_c(report, cfg, xp, on_gpu)
    report()
    report(f"total {time.perf_counter() - start:.0f} s")
    name = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_") if on_gpu else "cpu"
    RESULTS.mkdir(parents=True, exist_ok=True)
    text_path = RESULTS / f"gpu_check_{name}.txt"
    text_path.write_text("\n".join(report.lines) + "\n")
    data = {"command": command, "date": date, "device": device_label, "gpu": on_gpu,
            "versions": versions, "platform": platform.platform(), "sizes": cfg,
            "results": results}
    (RESULTS / f"gpu_check_{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {text_path.relative_to(ROOT)} and its .json")


if __name__ == "__main__":
    main()
