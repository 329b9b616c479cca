r"""One driver for every sequential method: forecast, analysis, repeat.

.. code-block:: text

    state = init(m0, C0)
    for j = 1..J:
        state = forecast(state)            # x_j^f: the model, plus noise N(0, Q) per member
        record forecast mean and spread, and the innovation y_j - h(forecast mean)
        state = analysis(state, y_j)       # x_j^a
        record analysis mean and spread

The driver validates the twin experiment and the method once, then runs the loop without
further checks; it stops with :class:`FilterDivergenceError` when the analysis mean stops
being finite.
"""

from __future__ import annotations

import math
import os
import sys

from .._validate import check_array, check_int
from ..backend import namespace
from ..random import default_rng
from .methods import Method
from .result import AssimilationResult, FilterDivergenceError

__all__ = ["assimilate", "FilterDivergenceError", "progress_enabled"]


def progress_enabled(progress=None) -> bool:
    """Whether to show a progress bar: ``None`` means only in an interactive terminal.

    Auto mode shows the bar when standard error is a terminal and the environment variable
    ``CI`` is unset, so nothing is printed in continuous integration, in notebooks (whose
    standard error is not a terminal) or in stored notebook outputs.
    """
    if progress is not None:
        return bool(progress)
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and not os.environ.get("CI")


def _iterate(J, progress, desc):
    if not progress_enabled(progress):
        return range(J)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm: pip install 'dalib[progress]'") from None
        return range(J)
    return tqdm(range(J), desc=desc, leave=False, mininterval=0.5)


def _diverged(method, j, J, which):
    raise FilterDivergenceError(
        f"{method!r} diverged at cycle {j + 1} of {J}: the {which} mean is not finite; "
        "check the inflation (too little lets the ensemble collapse, too much can make it "
        "explode when observations are sparse), the ensemble size and the time between "
        "observations"
    )


def check_twin(twin):
    """Validate a twin experiment's observations once (shape and finiteness)."""
    ssm = twin.ssm
    check_array(twin.y, "twin.y", ndim=2, last=ssm.p)
    check_array(twin.x, "twin.x", ndim=2, last=ssm.d, finite=False)
    if twin.x.shape[0] != twin.y.shape[0] + 1:
        raise ValueError(
            f"twin.x must have J + 1 = {twin.y.shape[0] + 1} rows, got {twin.x.shape[0]}"
        )


def assimilate(method: Method, twin, rng, *, store_ensembles: bool = False,
               burn_in: int | None = None, progress: bool | None = None) -> AssimilationResult:
    r"""Run a sequential method over a twin experiment.

    Parameters
    ----------
    method : Method
        E.g. ``ETKF(N=20, inflation=1.02)``, ``KalmanFilter()``, ``BootstrapPF(N=500)``.
    twin : TwinExperiment
        Truth ``twin.x`` (J + 1, d) and observations ``twin.y`` (J, p); ``twin.ssm`` supplies
        ``M, h, Q, R, m0, C0``.
    rng : int or dalib.random.Generator
        Randomness of the initial ensemble, model noise, perturbations and resampling.
    store_ensembles : bool
        Keep the forecast and analysis ensembles, shape (J + 1, N, d) each.
    burn_in : int, optional
        Default number of initial times left out of time averages (default ``J // 10``).
    progress : bool or None
        Progress bar (needs tqdm); ``None`` shows it only in an interactive terminal
        outside CI (see :func:`progress_enabled`).

    Returns
    -------
    AssimilationResult

    Raises
    ------
    FilterDivergenceError
        If the analysis mean becomes NaN or infinite; the message names the cycle.
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a dalib.da Method (e.g. ETKF(N=20)), got {method!r}")
    check_twin(twin)
    ssm = twin.ssm
    J = twin.J
    burn_in = min(J // 10, J - 1) if burn_in is None else check_int(burn_in, "burn_in", minimum=0)
    if burn_in > J:
        raise ValueError(f"burn_in ({burn_in}) must not exceed J ({J})")
    method.check(ssm)
    xp = namespace(ssm.m0)
    rng = default_rng(rng, xp)
    h, y = ssm.h, twin.y

    state = method.init(ssm, rng)
    m, s = method.moments(state)
    means_a, means_f, spreads_a, spreads_f, innov = [m], [m], [s], [s], []
    ens_a = ens_f = logws = None
    if store_ensembles:
        E0 = method.members(state)
        if E0 is None:
            raise ValueError(f"{method!r} has no ensemble to store")
        ens_a, ens_f = [E0], [E0]
        if method.log_weights(state) is not None:
            logws = [method.log_weights(state)]

    for j in _iterate(J, progress, type(method).__name__):
        state = method.forecast(state, ssm, rng)
        mf, sf = method.moments(state)
        if not math.isfinite(float(xp.sum(mf))):
            _diverged(method, j, J, "forecast")
        yj = y[j, :]
        innov.append(yj - h(mf))
        if store_ensembles:
            ens_f.append(method.members(state))
        state = method.analysis(state, yj, ssm, rng)
        ma, sa = method.moments(state)
        if not math.isfinite(float(xp.sum(ma))):
            _diverged(method, j, J, "analysis")
        means_f.append(mf)
        means_a.append(ma)
        spreads_f.append(sf)
        spreads_a.append(sa)
        if store_ensembles:
            ens_a.append(method.members(state))
            if logws is not None:
                logws.append(method.log_weights(state))

    def stack(values):
        return None if values is None or values[0] is None else xp.stack(values)

    return AssimilationResult(
        method=repr(method),
        twin=twin,
        analysis=xp.stack(means_a),
        forecast=xp.stack(means_f),
        spread_a=stack(spreads_a),
        spread_f=stack(spreads_f),
        innovations=xp.stack(innov),
        ensembles_a=stack(ens_a),
        ensembles_f=stack(ens_f),
        log_weights=stack(logws),
        burn_in=burn_in,
        extras=method.extras(state),
    )
