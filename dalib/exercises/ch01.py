"""Self-checks for the exercises of chapter 1, "The data assimilation problem"."""

from __future__ import annotations

import numpy as np

from .. import setups
from ..backend import to_numpy
from ..models import Lorenz63
from ._framework import Unfinished, Wrong, call_answer, exercise

__all__ = ["check_lorenz63_rhs", "check_observation_rmse", "check_growth_rate"]


@exercise("ch01 Lorenz-63")
def check_lorenz63_rhs(rhs):
    """Check a student's Lorenz-63 right-hand side ``rhs(x)`` for x of shape (..., 3)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3)) * [8.0, 9.0, 10.0] + [0.0, 0.0, 25.0]
    out = call_answer(rhs, x[0])
    out = np.asarray(to_numpy(out), dtype=float)
    if out.shape != (3,):
        raise Wrong(f"rhs(x) for one state x of shape (3,) should have shape (3,), "
                    f"got {out.shape}.")
    expected = Lorenz63().rhs(x[0])
    if not np.allclose(out, expected, rtol=1e-10, atol=1e-10):
        names = ["dx/dt", "dy/dt", "dz/dt"]
        bad = [names[i] for i in range(3) if not np.isclose(out[i], expected[i], rtol=1e-10)]
        raise Wrong(f"{', '.join(bad)} differ(s) from Lorenz-63 with sigma=10, rho=28, "
                    "beta=8/3. Check the signs and which variables multiply.")
    batch = np.asarray(to_numpy(call_answer(rhs, x)), dtype=float)
    if batch.shape != (5, 3) or not np.allclose(batch, Lorenz63().rhs(x), rtol=1e-10):
        raise Wrong("rhs works for one state but not for a batch of shape (5, 3): index the "
                    "last axis, x[..., 0], instead of x[0].")
    return "your right-hand side matches Lorenz-63, also for a batch of states."


@exercise("ch01 observation error")
def check_observation_rmse(observation_rmse):
    """Check a function ``observation_rmse(twin)`` returning the time-mean RMSE of y vs h(x)."""
    ssm = setups.lorenz96(d=10, R=0.25)
    twin = ssm.simulate(400, rng=5)
    value = call_answer(observation_rmse, twin)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise Wrong(f"observation_rmse should return one number, "
                    f"got {type(value).__name__}.") from None
    y, x = to_numpy(twin.y), to_numpy(twin.x)
    expected = float(np.mean(np.sqrt(np.mean((y - x[1:]) ** 2, axis=-1))))
    if np.isclose(value, float(np.mean(np.sqrt(np.mean((y - x[:-1]) ** 2, axis=-1)))), rtol=1e-6):
        raise Wrong("you compared y[j] with x[j]; but y[j - 1] observes x[j] (there is no "
                    "observation at time 0).")
    if not np.isclose(value, expected, rtol=1e-6):
        raise Wrong(f"got {value:.4f}, expected {expected:.4f} for this twin experiment "
                    "(RMSE at each time over the components, then the mean over time).")
    return (f"{value:.3f}, close to the observation error standard deviation 0.5: "
            "observations alone are an estimate with error about sqrt(R).")


@exercise("ch01 error growth")
def check_growth_rate(rate):
    """Check an estimate of the leading Lyapunov exponent of Lorenz-96 (d=40, F=8)."""
    if callable(rate):
        raise Unfinished("pass the number you estimated, not the function.")
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise Wrong(f"expected a number, got {type(rate).__name__}.") from None
    if not np.isfinite(rate):
        raise Wrong("the estimate is not a finite number.")
    if rate < 0:
        raise Wrong("a negative rate means errors shrink: fit the growth phase, before the "
                    "error saturates, on a log scale.")
    if not 1.3 <= rate <= 2.0:
        raise Wrong(f"{rate:.2f} per time unit is outside the expected range 1.3-2.0. Fit "
                    "log(error) against time only where it grows linearly, and average over "
                    "several perturbations.")
    doubling = np.log(2) / rate
    return (f"rate {rate:.2f} per time unit, an error doubling time of {doubling:.2f} time "
            "units (about 2 days in Lorenz's reading of one time unit as 5 days).")
