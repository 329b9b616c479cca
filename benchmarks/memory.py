"""Peak memory of one LETKF analysis against the state size d (NumPy).

The LETKF analyses every grid point with its own N-by-N matrix.  Stacking all of them at
once costs about 4 N^2 + 3 N n numbers per grid point, some 100 times the ensemble itself;
dalib processes the grid in chunks whose buffers stay below ``max_bytes`` (1 MiB by
default with NumPy), so the peak is a few ensembles plus one chunk buffer, whatever d.

Setup: Lorenz-96-like periodic grid, every point observed, R = I, N = 20, Gaspari-Cohn
half-width 4 (17 observations per local region).  The peak is measured with ``tracemalloc``
(NumPy reports its array allocations to it) over one call of
``dalib.da.letkf_analysis``, the inputs (ensemble, observation, local sets) allocated
before.  Target row: peak below 5 ensembles plus the chunk buffer at d = 40 000 and
d = 10^6.

Usage::

    python benchmarks/memory.py           # d up to 10^6 (a few minutes)
    python benchmarks/memory.py --quick   # d up to 40 000
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from dalib.da import letkf_analysis, local_observations
from dalib.da.localization import default_max_bytes
from dalib.observations import Identity

RESULTS = Path(__file__).resolve().parent / "results"
N, RADIUS = 20, 4.0
TARGET_DS = (40_000, 1_000_000)
CHUNK_BYTES = default_max_bytes(np)


def peak_bytes(d: int, max_bytes: int) -> tuple[int, float]:
    """Peak traced bytes and seconds of one LETKF analysis of size d."""
    gen = np.random.default_rng(d)
    E = gen.standard_normal((N, d))
    y = gen.standard_normal(d)
    local = local_observations(d, np.arange(d), RADIUS)
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    Ea = letkf_analysis(E, y, Identity(d), 1.0, local, max_bytes=max_bytes)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert Ea.shape == E.shape and np.all(np.isfinite(Ea))
    return peak, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d up to 40 000")
    args = parser.parse_args()
    ds = [1_000, 4_000, 40_000] + ([] if args.quick else [200_000, 1_000_000])
    lines = [(f"LETKF analysis, N = {N}, every point observed, radius {RADIUS}: peak memory "
             "(tracemalloc) in units of the ensemble (N d 8 bytes)"),
             (f"{'d':>9} {'ensemble MB':>11} {'chunked':>8} {'seconds':>8} "
             f"{'all at once':>11}  target (< 5 + buffer)")]
    failures = 0
    for d in ds:
        ens = N * d * 8
        peak, seconds = peak_bytes(d, CHUNK_BYTES)
        whole = f"{peak_bytes(d, 2**62)[0] / ens:11.1f}" if d <= 40_000 else f"{'-':>11}"
        bound = 5 + CHUNK_BYTES / ens
        verdict = ""
        if d in TARGET_DS:
            ok = peak / ens < bound
            failures += not ok
            verdict = f"{'PASS' if ok else 'FAIL'} (< {bound:.1f})"
        lines.append(f"{d:9d} {ens / 2**20:11.1f} {peak / ens:8.1f} {seconds:8.2f} "
                     f"{whole}  {verdict}")
    print("\n".join(lines))
    kind = "quick" if args.quick else "full"
    out = RESULTS / f"memory_{kind}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/memory.py", *sys.argv[1:]])
    out.write_text(f"# {command}\n# {datetime.date.today()}, {platform.machine()}, "
                   f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
                   f"NumPy {np.__version__}\n" + "\n".join(lines) + "\n")
    print(f"written to {out.relative_to(RESULTS.parents[1])}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
