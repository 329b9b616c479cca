"""Targets of chapter 7: learning models and error covariances through data assimilation.

Prints one row per target: what is estimated, the target value, the tolerance, the
measured value and PASS/FAIL.  The experiments live beside this script:

* ``_learning_models.py``: parameters of Lorenz-96 and Lorenz-63, the dictionary model of
  Lorenz-96 learned by EM and through the auto-differentiable EnKF, model correction;
* ``_learning_covariances.py``: EM for Q and R, innovation-based estimation of R.

Usage::

    python benchmarks/learning.py            # full sizes
    python benchmarks/learning.py --quick    # under 5 minutes on two cores

Exit status 1 when a target fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _learning_covariances  # noqa: E402
import _learning_models  # noqa: E402

MODULES = (_learning_models, _learning_covariances)


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
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    for module in MODULES:
        rows += module.targets(quick=args.quick)
    width = max(len(r["name"]) for r in rows)
    print(f"{'target':<{width}}  {'value':>10}  {'tolerance':>10}  {'measured':>10}  result")
    print("-" * (width + 46))
    for r in rows:
        print(f"{r['name']:<{width}}  {format_value(r['target']):>10}  "
              f"{format_value(r['tolerance']):>10}  {format_value(r['measured']):>10}  "
              f"{'PASS' if r['passed'] else 'FAIL'}")
    print(f"\n{sum(r['passed'] for r in rows)} of {len(rows)} targets met in "
          f"{time.perf_counter() - start:.0f} s ({'quick' if args.quick else 'full'} run)")
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
