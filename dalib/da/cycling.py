r"""One driver for every sequential method: forecast, analysis, repeat.

.. code-block:: text

    state = init(m0, C0)
    for j = 1..J:
        state = forecast(state)            # x_j^f: the model, plus noise N(0, Q) per member
        record forecast mean and spread, and the innovation y_j - h(forecast mean)
        state = analysis(state, y_j)       # x_j^a
        record analysis mean and spread

The driver validates the twin experiment and the method once, then runs the loop without
further checks; it stops with :class:`FilterDivergenceError` when a forecast or analysis
mean stops being finite.

On a GPU the loop only queues work on the device; the one place where it waits for the
device is the divergence check, which copies a single boolean to the host once per cycle
(``check_every=1``, the default).  ``check_every=k`` checks every ``k`` cycles and
``check_every=0`` only once, after the last cycle; the error still names the first cycle
whose mean was not finite.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int
from ..backend import device, namespace
from ..random import default_rng
from .methods import Method
from .result import AssimilationResult, FilterDivergenceError, resolve_burn_in

__all__ = [
    "assimilate",
    "cycle",
    "Cycled",
    "FilterDivergenceError",
    "progress_enabled",
    "progress_range",
    "check_twin",
]


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


def progress_range(J: int, progress, desc: str):
    """``range(J)``, wrapped in a tqdm progress bar when :func:`progress_enabled` says so."""
    if not progress_enabled(progress):
        return range(J)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None
        return range(J)
    return tqdm(range(J), desc=desc, leave=False, mininterval=0.5)


def _diverged(method, j, J, which):
    raise FilterDivergenceError(
        f"{method!r} diverged at cycle {j + 1} of {J}: the {which} mean is not finite; "
        "check the inflation (too little lets the ensemble collapse, too much can make it "
        "explode when observations are sparse), the ensemble size and the time between "
        "observations"
    )


class _FiniteGuard:
    """Whether every forecast and analysis mean so far is finite, with few host syncs.

    ``add`` folds a mean into a device boolean (no synchronisation); ``check`` copies that
    boolean to the host once and, only if it is false, looks through the unchecked means
    in order and raises for the first one that is not finite.
    """

    def __init__(self, method, J, means_f, means_a, xp):
        self.method, self.J, self.xp = method, J, xp
        self.means_f, self.means_a = means_f, means_a
        self.ok = None  # device boolean over the means not checked yet
        self.start = 0  # first cycle whose means have not been checked

    def add(self, mean):
        flag = self.xp.isfinite(self.xp.sum(mean))
        self.ok = flag if self.ok is None else self.ok & flag

    def check(self):
        if self.ok is None:
            return
        ok, self.ok = bool(self.ok), None
        if ok:
            self.start = len(self.means_a) - 1
            return
        for j in range(self.start, len(self.means_f) - 1):
            for which, means in (("forecast", self.means_f), ("analysis", self.means_a)):
                if j + 1 < len(means) and not math.isfinite(float(self.xp.sum(means[j + 1]))):
                    _diverged(self.method, j, self.J, which)
        raise FilterDivergenceError(f"{self.method!r} diverged after cycle {self.start + 1}")


def check_twin(twin):
    """Validate a twin experiment's observations once (shape and finiteness)."""
    ssm = twin.ssm
    check_array(twin.y, "twin.y", ndim=2, last=ssm.p)
    if twin.y.shape[0] == 0:
        raise ValueError("twin.y holds no observations (J = 0): simulate at least one "
                         "observation time, e.g. ssm.simulate(J=100, rng=0)")
    check_array(twin.x, "twin.x", ndim=2, last=ssm.d, finite=False)
    if twin.x.shape[0] != twin.y.shape[0] + 1:
        raise ValueError(
            f"twin.x must have J + 1 = {twin.y.shape[0] + 1} rows, got {twin.x.shape[0]}"
        )


def assimilate(method: Method, twin, rng, *, store_ensembles: bool = False,
               burn_in: int | None = None, progress: bool | None = None,
               check_every: int = 1) -> AssimilationResult:
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
    check_every : int
        How often the divergence check looks at the means: every cycle (1, the default),
        every ``k`` cycles, or only after the last cycle (0).  Each check copies one boolean
        from the device to the host, the loop's only synchronisation on a GPU; between
        checks a diverged filter keeps running on NaNs.

    Returns
    -------
    AssimilationResult

    Raises
    ------
    FilterDivergenceError
        If a forecast or analysis mean becomes NaN or infinite; the message names the
        first such cycle.

    Warns
    -----
    FilterDivergenceWarning
        If the run stays finite but loses the truth (``result.diverged``, see
        :meth:`~dalib.da.AssimilationResult.divergence`).
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a dalib.da Method (e.g. ETKF(N=20)), got {method!r}")
    check_twin(twin)
    burn_in = resolve_burn_in(burn_in, twin.J)
    run = cycle(method, twin.ssm, twin.y, rng, store_ensembles=store_ensembles,
                progress=progress, check_every=check_every)
    result = AssimilationResult(
        method=repr(method),
        twin=twin,
        analysis=run.analysis,
        forecast=run.forecast,
        spread_a=run.spread_a,
        spread_f=run.spread_f,
        innovations=run.innovations,
        ensembles_a=run.ensembles_a,
        ensembles_f=run.ensembles_f,
        log_weights=run.log_weights,
        burn_in=burn_in,
        extras=method.extras(run.state),
    )
    result.warn_if_diverged()
    return result


@dataclass(frozen=True)
class Cycled:
    r"""The series of one run of :func:`cycle`, indexed by time ``j = 0..J``.

    ``analysis``, ``forecast`` (J + 1, d) are the means, ``spread_a``, ``spread_f``
    (J + 1,) the spreads (``None`` if the method has none), ``innovations`` (J, p) the
    :math:`y_j - h(\hat m_j)`, ``ensembles_a``, ``ensembles_f`` (J + 1, N, d) and
    ``log_weights`` (J + 1, N) the stored ensembles (``None`` unless asked for) and
    ``state`` the method's final state.
    """

    analysis: Any
    forecast: Any
    spread_a: Any
    spread_f: Any
    innovations: Any
    ensembles_a: Any
    ensembles_f: Any
    log_weights: Any
    state: Any


def cycle(method: Method, ssm, y, rng, *, store_ensembles: bool = False,
          progress: bool | None = None, check_every: int = 1) -> Cycled:
    r"""The loop of :func:`assimilate` over observations ``y`` (J, p), without a truth.

    For callers that have observations but no truth (learning from data); the arguments
    are those of :func:`assimilate`.  The shape of ``y`` and the method are validated here,
    the finiteness of ``y`` (one host synchronisation) is left to the caller.

    Returns
    -------
    Cycled
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a dalib.da Method (e.g. ETKF(N=20)), got {method!r}")
    check_array(y, "y", ndim=2, last=ssm.p, finite=False)  # finiteness: the caller's job
    J = int(y.shape[0])
    check_every = check_int(check_every, "check_every", minimum=0)
    method.check(ssm)
    xp = namespace(ssm.m0)
    rng = default_rng(rng, xp, device(ssm.m0))
    h = ssm.h

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

    guard = _FiniteGuard(method, J, means_f, means_a, xp)
    for j in progress_range(J, progress, type(method).__name__):
        state = method.forecast(state, ssm, rng)
        mf, sf = method.moments(state)
        means_f.append(mf)
        spreads_f.append(sf)
        guard.add(mf)
        if check_every and j % check_every == 0:
            guard.check()  # the previous analyses and this forecast, before the analysis
        yj = y[j, :]
        innov.append(yj - h(mf))
        if store_ensembles:
            ens_f.append(method.members(state))
        try:
            state = method.analysis(state, yj, ssm, rng)
        except Exception:
            guard.check()  # a NaN forecast can make the analysis fail: name the cycle
            raise
        ma, sa = method.moments(state)
        means_a.append(ma)
        spreads_a.append(sa)
        guard.add(ma)
        if store_ensembles:
            ens_a.append(method.members(state))
            if logws is not None:
                logws.append(method.log_weights(state))
    guard.check()

    def stack(values):
        return None if values is None or values[0] is None else xp.stack(values)

    return Cycled(
        analysis=xp.stack(means_a),
        forecast=xp.stack(means_f),
        spread_a=stack(spreads_a),
        spread_f=stack(spreads_f),
        innovations=xp.stack(innov),
        ensembles_a=stack(ens_a),
        ensembles_f=stack(ens_f),
        log_weights=stack(logws),
        state=state,
    )
