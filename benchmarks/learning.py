"""Targets of chapters 7 to 11: learning models, error covariances, from reanalyses and
increments, with learned and multiple models, and learning the analysis step.

Prints one row per target: what is estimated, the target value, the tolerance, the
measured value and PASS/FAIL.  The experiments live beside this script:

* ``_learning_models.py``: parameters of Lorenz-96 and Lorenz-63, the dictionary model of
  Lorenz-96 learned by EM and through the auto-differentiable EnKF, model correction;
* ``_learning_covariances.py``: EM for Q and R, innovation-based estimation of R;
* ``_learning_reanalysis.py``: a local network trained on the truth, a reanalysis and
  interpolated observations of Lorenz-96 (chapter 8): valid times and free-run climate;
* ``_learning_increments.py``: bias, linear and network corrections learned from the
  analysis increments of a filter run with an imperfect model (chapter 9);
* ``_learning_multifidelity.py``: surrogates inside 3DVar, the closeness bound,
  multifidelity Monte Carlo and the multifidelity EnKF (chapter 10);
* ``_learning_multimodel.py``: the multi-model EnKF on Lorenz-96 with sector forcing
  (chapter 10);
* ``_learning_analysis.py``: learned analysis steps (chapter 11) and the losses (12),
  (13) and (13) corrected for the fit to the noise.

Usage::

    python benchmarks/learning.py            # full sizes
    python benchmarks/learning.py --quick    # under 5 minutes on two cores
    python benchmarks/learning.py --part models --quick   # one module's targets only

The table is also written to ``benchmarks/results/learning_{quick,full}.txt`` (one part:
``learning_<part>_{quick,full}.txt``) with the command and the date.  Exit status 1 when
a target fails.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _learning_analysis  # noqa: E402
import _learning_covariances  # noqa: E402
import _learning_increments  # noqa: E402
import _learning_models  # noqa: E402
import _learning_multifidelity  # noqa: E402
import _learning_multimodel  # noqa: E402
import _learning_reanalysis  # noqa: E402

PARTS = {
    "models": _learning_models,
    "covariances": _learning_covariances,
    "reanalysis": _learning_reanalysis,
    "increments": _learning_increments,
    "multifidelity": _learning_multifidelity,
    "multimodel": _learning_multimodel,
    "analysis": _learning_analysis,
}


def format_value(v) -> str:
    if isinstance(v, str):
        return v
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under 5 minutes)")
    parser.add_argument("--part", choices=PARTS,
                        help="only the targets of one module (stored as "
                             "learning_<part>_<kind>.txt)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    for name, module in PARTS.items():
        if args.part in (None, name):
            rows += module.targets(quick=args.quick)
    # Two lines per target (its name, then the numbers), so the table stays narrow.
    cells = [[format_value(r["target"]), format_value(r["tolerance"]),
              format_value(r["measured"]), "PASS" if r["passed"] else "FAIL"] for r in rows]
    header = ["value", "tolerance", "measured", "result"]
    widths = [max(len(c[i]) for c in cells + [header]) for i in range(4)]

    def line(c):
        return ("    " + "  ".join(f"{v:<{w}}" for v, w in zip(c, widths))).rstrip()

    table = [f"target\n{line(header)}", "-" * (sum(widths) + 10)]
    for r, c in zip(rows, cells):
        table += [r["name"], line(c)]
    kind = "quick" if args.quick else "full"
    lines = [*table, "",
             f"{sum(r['passed'] for r in rows)} of {len(rows)} targets met in "
             f"{time.perf_counter() - start:.0f} s ({kind} run)"]
    print("\n".join(lines))
    stem = "learning" if args.part is None else f"learning_{args.part}"
    out = HERE / "results" / f"{stem}_{kind}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/learning.py", *(argv or sys.argv[1:])])
    out.write_text(f"# {command}\n# {datetime.date.today()}, {platform.machine()}, "
                   f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
                   + "\n".join(lines) + "\n")
    print(f"written to {out.relative_to(HERE.parent)}")
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
