r"""A compiled driver for JAX: a whole twin experiment as one ``lax.scan`` under ``jit``.

:func:`assimilate_compiled` runs the loop of :func:`~dalib.da.cycling.assimilate`

.. code-block:: text

    E = init(m0, C0)                      # eagerly, with the dalib rng
    (E, key), series = scan(cycle, (E, key), y)
    cycle: E <- forecast(E); record mean, spread, innovation; E <- analysis(E, y_j); record

with the *same* pure forecast and analysis steps of the method object (ETKF, EnKF with
perturbed observations, LETKF, or any :class:`~dalib.da.ensemble.EnsembleMethod` whose
analysis JAX can trace).  One cycle is traced once and compiled once; the scan repeats it
``J`` times without returning to Python.

Randomness: the dalib :class:`~dalib.random.Generator` on JAX keeps a key that is split at
every draw.  The scan carries that key, and inside a cycle a generator holding the carried
key makes the same draws in the same order as the eager loop, so the two drivers see the
same random numbers and agree to round-off; afterwards ``rng`` continues from the final key.
"""

from __future__ import annotations

import copy
import time

from ..backend import backend_name, device, namespace
from ..random import default_rng
from .cycling import check_twin
from .ensemble import EnsembleMethod
from .result import AssimilationResult, FilterDivergenceError, resolve_burn_in
from .sharding import shard_ensemble

__all__ = ["assimilate_compiled"]


def _with_key(rng, key):
    """A copy of the JAX generator ``rng`` that draws from ``key`` (traced inside a scan)."""
    g = copy.copy(rng)
    g._key = key
    return g


def _first_not_finite(means_f, means_a):
    import numpy as np

    bad_f = ~np.isfinite(np.asarray(means_f)).all(axis=1)
    bad_a = ~np.isfinite(np.asarray(means_a)).all(axis=1)
    for j in range(1, bad_f.shape[0]):
        for which, bad in (("forecast", bad_f), ("analysis", bad_a)):
            if bad[j]:
                return j, which
    return None


def assimilate_compiled(method: EnsembleMethod, twin, rng, *,
                        store_ensembles: bool = False, burn_in: int | None = None,
                        sharding=None) -> AssimilationResult:
    r"""Run an ensemble filter over a twin experiment as one compiled JAX program.

    The same cycle as :func:`~dalib.da.cycling.assimilate` (forecast
    :math:`E \leftarrow \mathcal M(E) + \xi`, then the method's analysis), cycled by
    ``jax.lax.scan`` under ``jax.jit``; the arguments and the
    :class:`~dalib.da.result.AssimilationResult` are those of ``assimilate``.  The twin
    experiment must live on JAX (``dalib.asarray(..., "jax")``, e.g.
    ``lorenz96_setup(..., xp="jax")``).

    Parameters
    ----------
    method : EnsembleMethod
        E.g. ``ETKF(N=40, inflation=1.02)``, ``EnKF(N=40)``, ``LETKF(N=20, radius=4.0)``.
    twin : TwinExperiment
        Truth ``twin.x`` (J + 1, d) and observations ``twin.y`` (J, p) on JAX.
    rng : int or dalib.random.Generator
        Randomness, as for ``assimilate`` (a JAX generator: keys split at every draw).
    store_ensembles : bool
        Keep the forecast and analysis ensembles, shape (J + 1, N, d) each.
    burn_in : int, optional
        Default number of initial times left out of time averages (default ``J // 10``).
    sharding : jax.sharding.NamedSharding, optional
        Layout of the ensemble over several devices
        (:func:`~dalib.da.sharding.ensemble_sharding`: by members or by grid points); the
        ensemble keeps it through every cycle and the program is partitioned accordingly.

    Returns
    -------
    AssimilationResult
        With ``extras["compile_seconds"]`` (tracing and compiling the scan, once) and
        ``extras["run_seconds"]`` (the ``J`` compiled cycles) besides the method's extras.

    Raises
    ------
    FilterDivergenceError
        If a forecast or analysis mean is not finite (checked once, after the run).
    """
    if not isinstance(method, EnsembleMethod):
        raise TypeError(
            f"method must be an ensemble filter (e.g. ETKF(N=20)), got {method!r}"
        )
    check_twin(twin)
    ssm = twin.ssm
    xp = namespace(ssm.m0)
    if backend_name(xp) != "jax":
        raise TypeError(
            "assimilate_compiled needs a twin experiment on JAX (xp='jax'), got arrays of "
            f"{backend_name(xp)!r}; use dalib.da.assimilate for other backends"
        )
    import jax

    burn_in = resolve_burn_in(burn_in, twin.J)
    method.check(ssm)
    rng = default_rng(rng, xp, device(ssm.m0))
    h = ssm.h

    E0 = method.init(ssm, rng)
    if sharding is not None:
        E0 = shard_ensemble(E0, sharding)
    m0, s0 = method.moments(E0)

    def layout(E):
        return E if sharding is None else jax.lax.with_sharding_constraint(E, sharding)

    def one_cycle(carry, yj):
        E, key = carry
        g = _with_key(rng, key)
        E = layout(method.forecast(E, ssm, g))
        mf, sf = method.moments(E)
        innovation = yj - h(mf)
        Ef = E
        E = layout(method.analysis(E, yj, ssm, g))
        ma, sa = method.moments(E)
        out = (mf, sf, ma, sa, innovation)
        if store_ensembles:
            out = out + (Ef, E)
        return (E, g._key), out

    @jax.jit
    def run(E, key, y):
        return jax.lax.scan(one_cycle, (E, key), y)

    start = time.perf_counter()
    compiled = run.lower(E0, rng._key, twin.y).compile()
    compiled_at = time.perf_counter()
    (E, key), series = jax.block_until_ready(compiled(E0, rng._key, twin.y))
    seconds = {"compile_seconds": compiled_at - start,
               "run_seconds": time.perf_counter() - compiled_at}
    rng._key = key
    mf, sf, ma, sa, innovations = series[:5]

    def with_initial(first, values):
        return xp.concat([first[None, ...], values], axis=0)

    means_f, means_a = with_initial(m0, mf), with_initial(m0, ma)
    if not bool(xp.all(xp.isfinite(means_f)) & xp.all(xp.isfinite(means_a))):
        j, which = _first_not_finite(means_f, means_a)
        raise FilterDivergenceError(
            f"{method!r} diverged at cycle {j} of {twin.J}: the {which} mean is not finite; "
            "check the inflation, the ensemble size and the time between observations"
        )
    ens_f = ens_a = None
    if store_ensembles:
        ens_f, ens_a = with_initial(E0, series[5]), with_initial(E0, series[6])
    return AssimilationResult(
        method=repr(method),
        twin=twin,
        analysis=means_a,
        forecast=means_f,
        spread_a=with_initial(s0, sa),
        spread_f=with_initial(s0, sf),
        innovations=innovations,
        ensembles_a=ens_a,
        ensembles_f=ens_f,
        log_weights=None,
        burn_in=burn_in,
        extras={**method.extras(E), **seconds},
    )


