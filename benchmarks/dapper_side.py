"""Time DAPPER's ensemble filters per assimilation cycle, for comparison with dalib.

Run this with the python of the separate DAPPER environment (see
``benchmarks/dapper-requirements.txt``), not with the book's environment::

    benchmarks/.venv-dapper/bin/python benchmarks/dapper_side.py --quick

It works with DAPPER 1.7.x (the newest for Python 3.11) and 1.8.x (Python >= 3.12,
the pinned one).

It prints one JSON array on stdout, one object per experiment, with the keys
``name, method, params, cycles, burn_in, seconds_per_cycle, rmse_a`` (and a few
more); everything else DAPPER prints goes to stderr.  A comparison script in the
book's environment can therefore call it as a subprocess and ``json.loads`` stdout.

The experiments follow DAPPER's ``dapper.mods.Lorenz96.sakov2008`` setup:
Lorenz-96 with F = 8, every component observed every 0.05 time units with
R = I, no model noise, X0 = N(e_1, 0.001 I), RK4 with dt = 0.05.

1. ``l96-40``: d = 40, ETKF (``EnKF('Sqrt')``) and perturbed-observation EnKF
   (``EnKF('PertObs')``), both with N = 40.
2. ``l96-1000``: d = 1000, ``LETKF`` with N = 20 and a Gaspari-Cohn taper.

DAPPER runs in its leanest configuration: no live plotting, no progress bars,
statistics only at the analysis and forecast times (``store_u=False``), and only
the error statistics (``rc.comps['error_only']``, RMS field summary only, no
spectral diagnostics).  The timing is the wall time of ``xp.assimilate(HMM, xx, yy)``
divided by the number of cycles; simulating the truth and the observations is not
timed.  ``rmse_a`` is DAPPER's own time mean of the analysis RMSE after burn-in
(``xp.avrgs.err.rms.a``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time

# A non-interactive matplotlib backend: DAPPER imports pyplot, and live plotting
# is switched off below anyway.
os.environ.setdefault("MPLBACKEND", "Agg")
# DAPPER 1.8 reads these at import (1.7 ignores them): no live plotting, and its
# data folder (created at import) in the temporary directory rather than in ~.
os.environ.setdefault("DAPPER_LIVEPLOTTING", "false")
os.environ.setdefault("DAPPER_DATA_ROOT", tempfile.gettempdir())

DT_OBS = 0.05
FORCE = 8.0


def _import_dapper(full_stats=False):
    """Import DAPPER and put it in its fastest, errors-only statistics mode.

    With ``full_stats`` DAPPER keeps its default statistics (spread, CRPS, skewness,
    kurtosis, spectral diagnostics, ...); only plotting and progress bars stay off.
    """
    import dapper
    import dapper.da_methods as da
    import dapper.mods as modelling
    import dapper.tools.progressbar as progressbar
    import numpy as np
    from dapper.dpr_config import rc
    from dapper.tools.localization import nd_Id_localization
    from dapper.tools.seeding import set_seed

    progressbar.disable_progbar = True  # read by progbar() at every call
    progressbar.disable_user_interaction = True
    rc.liveplotting = False
    # DAPPER 1.7 keeps rc in a dict (from dpr_config.yaml) with ``store_u``;
    # 1.8 has a dataclass with ``store_i``.  Either way: no statistics between
    # analysis times, only the forecast/analysis ones.
    legacy = isinstance(rc.comps, dict)
    store_kw = "store_u" if legacy else "store_i"
    setattr(rc, store_kw, False)
    if not full_stats:
        comps = dict(
            error_only=True,  # mean and error only: no spread, CRPS, skewness, kurtosis
            max_spectral=0,  # no SVD diagnostics (svals, umisf, rank histogram)
        )
        for key, val in comps.items():
            if legacy:
                rc.comps[key] = val
            else:
                setattr(rc.comps, key, val)
        rc.field_summaries = ["rms"]  # only the RMS of the field statistics

    return dict(
        np=np,
        dapper=dapper,
        da=da,
        modelling=modelling,
        nd_Id_localization=nd_Id_localization,
        set_seed=set_seed,
        legacy=legacy,
        assimilate_kw={"liveplots": False, store_kw: False},
    )


def lorenz96_hmm(D, nx, cycles, burn_in, batch=2):
    """DAPPER's ``Lorenz96.sakov2008`` HMM, with state size ``nx`` and ``cycles`` cycles.

    For ``nx = 40, batch = 2`` this is exactly that module's HMM apart from the
    chronology.  The localizer (used by LETKF only) is ``nd_Id_localization``, whose
    distances are periodic on the ring of ``nx`` sites; ``batch`` is the number of
    neighbouring sites that share one local analysis (DAPPER's sakov2008 uses 2,
    ``batch = 1`` is the textbook per-site LETKF).
    """
    np, modelling = D["np"], D["modelling"]
    import dapper.mods.Lorenz96 as L96

    L96.Force = FORCE
    # Ko + 1 observation times, one per model step: K = cycles steps, all observed.
    # BurnIn is in time units; the half step keeps the cut away from a float tie.
    tseq = modelling.Chronology(
        dt=DT_OBS, dko=1, Ko=cycles - 1, BurnIn=(burn_in + 0.5) * DT_OBS, Tplot=L96.Tplot
    )
    Dyn = {"M": nx, "model": L96.step, "linear": L96.dstep_dx, "noise": 0}
    X0 = modelling.GaussRV(mu=L96.x0(nx), C=0.001)
    jj = np.arange(nx)
    Obs = dict(modelling.partial_Id_Obs(nx, jj))
    Obs["noise"] = 1
    Obs["localizer"] = D["nd_Id_localization"]((nx,), (batch,))
    if not D["legacy"]:  # 1.8 wants an Operator here, 1.7 a dict
        Obs = modelling.Operator(**Obs)
    hmm = modelling.HiddenMarkovModel(Dyn, Obs, tseq, X0, name=f"Lorenz96/sakov2008 Nx={nx}")
    assert hmm.tseq.K == cycles and hmm.tseq.Ko + 1 == cycles
    return hmm


def simulate(D, hmm, seed):
    D["set_seed"](seed)
    t0 = time.perf_counter()
    xx, yy = hmm.simulate()
    return xx, yy, time.perf_counter() - t0


def run_one(D, name, hmm, xx, yy, xp, params, seed, burn_in, sim_seconds):
    """Assimilate once; return the experiment's record."""
    np = D["np"]
    cycles = hmm.tseq.K
    D["set_seed"](seed)
    record = dict(
        name=name,
        method=params["method"],
        params={k: v for k, v in params.items() if k != "method"},
        nx=hmm.Nx,
        cycles=cycles,
        burn_in=burn_in,
        averaged_cycles=int(np.sum(hmm.tseq.masko)),
        seed=seed,
        truth_seconds=sim_seconds,
    )
    t0 = time.perf_counter()
    try:
        xp.assimilate(hmm, xx, yy, **D["assimilate_kw"])
    except Exception as err:  # a diverged filter is a result, not a crash
        record.update(error=f"{type(err).__name__}: {err}", seconds_per_cycle=None, rmse_a=None)
        return record
    seconds = time.perf_counter() - t0
    xp.stats.average_in_time()
    av = xp.avrgs
    record.update(
        seconds=seconds,
        seconds_per_cycle=seconds / cycles,
        # DAPPER's own timer: the filter loop alone, without setting up its Stats.
        dapper_duration_per_cycle=float(av.duration) / cycles,
        rmse_a=float(av.err.rms.a.val),
        rmse_a_prec=float(av.err.rms.a.prec),
        rmse_f=float(av.err.rms.f.val),
    )
    return record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run (well under a minute)")
    p.add_argument("--cycles", type=int, help="cycles of the d=40 runs (default 5000, quick 300)")
    p.add_argument("--burn-in", type=int, help="d=40 cycles left out of the RMSE (default 1000, quick 100)")
    p.add_argument("--letkf-cycles", type=int, help="cycles of the d=1000 LETKF (default 300, quick 30)")
    p.add_argument("--letkf-burn-in", type=int, help="d=1000 cycles left out of the RMSE (default 100, quick 10)")
    p.add_argument("--N", type=int, default=40, help="ensemble size of ETKF and EnKF (40)")
    p.add_argument("--infl-etkf", type=float, default=1.02)
    p.add_argument("--infl-enkf", type=float, default=1.05)
    p.add_argument("--letkf-nx", type=int, default=1000)
    p.add_argument("--letkf-N", type=int, default=20)
    p.add_argument("--infl-letkf", type=float, default=1.02)
    p.add_argument("--loc-rad", type=float, default=4.0, help="DAPPER's loc_rad (4)")
    p.add_argument("--taper", default="GC", help="DAPPER taper: GC, Gauss, Step, ... (GC)")
    p.add_argument("--letkf-batch", type=int, default=1,
                   help="sites per local analysis (1: per-site LETKF; sakov2008 uses 2)")
    p.add_argument("--only", choices=["etkf", "enkf", "letkf"], action="append",
                   help="run only these experiments (repeatable)")
    p.add_argument("--seed", type=int, default=3000, help="truth seed; the filters use seed+1")
    p.add_argument("--threads", type=int,
                   help="BLAS threads (DAPPER itself sets 1 when imported)")
    p.add_argument("--full-stats", action="store_true",
                   help="keep DAPPER's default statistics (slower), to see their cost")
    args = p.parse_args(argv)

    q = args.quick
    cycles = args.cycles or (300 if q else 5000)
    burn_in = args.burn_in if args.burn_in is not None else (100 if q else 1000)
    lcycles = args.letkf_cycles or (30 if q else 300)
    lburn = args.letkf_burn_in if args.letkf_burn_in is not None else (10 if q else 100)
    if not (0 <= burn_in < cycles and 0 <= lburn < lcycles):
        p.error("burn-in must be smaller than the number of cycles")
    if args.seed == 0 or args.seed + 1 == 0:
        p.error("DAPPER refuses the seed 0")
    only = set(args.only or ["etkf", "enkf", "letkf"])

    out = sys.stdout
    records = []
    # DAPPER prints notices with print(); keep stdout for the JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        D = _import_dapper(args.full_stats)
        # Importing DAPPER's ensemble methods (dapper.tools.multiproc) already limits
        # BLAS to one thread for the whole process; --threads overrides that here.
        limits = contextlib.nullcontext()
        if args.threads:
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(args.threads)
        with limits:
            da, np = D["da"], D["np"]
            from importlib.metadata import version

            from threadpoolctl import threadpool_info

            blas = [
                f"{i.get('internal_api')} {i.get('version')} {i.get('num_threads')} threads"
                for i in threadpool_info()
            ]
            env = dict(
                dapper_version=version("dapper"),
                numpy_version=np.__version__,
                scipy_version=version("scipy"),
                python_version=platform.python_version(),
                blas=blas,
                stats="full" if args.full_stats else "errors only",
            )

            if only & {"etkf", "enkf"}:
                hmm = lorenz96_hmm(D, 40, cycles, burn_in, batch=2)
                xx, yy, sim = simulate(D, hmm, args.seed)
                if "etkf" in only:
                    params = dict(method="EnKF('Sqrt')", N=args.N, infl=args.infl_etkf, rot=False)
                    xp = da.EnKF("Sqrt", N=args.N, infl=args.infl_etkf)
                    records.append(run_one(D, "l96-40 ETKF", hmm, xx, yy, xp, params,
                                           args.seed + 1, burn_in, sim))
                if "enkf" in only:
                    params = dict(method="EnKF('PertObs')", N=args.N, infl=args.infl_enkf, rot=False)
                    xp = da.EnKF("PertObs", N=args.N, infl=args.infl_enkf)
                    records.append(run_one(D, "l96-40 EnKF-PertObs", hmm, xx, yy, xp, params,
                                           args.seed + 1, burn_in, sim))
            if "letkf" in only:
                nx = args.letkf_nx
                hmm = lorenz96_hmm(D, nx, lcycles, lburn, batch=args.letkf_batch)
                xx, yy, sim = simulate(D, hmm, args.seed)
                params = dict(
                    method="LETKF",
                    N=args.letkf_N,
                    infl=args.infl_letkf,
                    loc_rad=args.loc_rad,
                    taper=args.taper,
                    batch=args.letkf_batch,
                    rot=False,
                )
                if args.taper == "GC":
                    # dist2coeff scales loc_rad by 1.82, so the taper vanishes beyond
                    # 2 * 1.82 * loc_rad sites: the Gaspari-Cohn half-width c = 1.82 loc_rad.
                    params["gc_half_width"] = 1.82 * args.loc_rad
                xp = da.LETKF(N=args.letkf_N, loc_rad=args.loc_rad, taper=args.taper,
                              infl=args.infl_letkf)
                records.append(run_one(D, f"l96-{nx} LETKF", hmm, xx, yy, xp, params,
                                       args.seed + 1, lburn, sim))

    for r in records:
        r.update(env)
    json.dump(records, out, indent=1)
    out.write("\n")
    return 0 if all(r.get("error") is None for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
