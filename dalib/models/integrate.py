r"""Fourth-order Runge-Kutta integration, its tangent-linear model and its adjoint.

An ODE model is any object with a right-hand side ``rhs(x)`` acting on states of shape
``(..., d)`` (so a whole ensemble is advanced in one call), and optionally ``rhs_jvp(x, dx)``
and ``rhs_vjp(x, w)``, the products with the Jacobian :math:`Df(x)` and its transpose.

One RK4 step of length :math:`\Delta t` is

.. math::
    k_1 = f(x),\quad k_2 = f(x + \tfrac{\Delta t}{2} k_1),\quad
    k_3 = f(x + \tfrac{\Delta t}{2} k_2),\quad k_4 = f(x + \Delta t\, k_3),

    x' = x + \tfrac{\Delta t}{6}(k_1 + 2k_2 + 2k_3 + k_4).

Differentiating each line gives the tangent-linear step (:func:`rk4_step_jvp`), and running
those lines backwards with transposed Jacobians gives the adjoint step (:func:`rk4_step_vjp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._validate import check_int, check_positive
from ..backend import is_traced, namespace

__all__ = ["rk4_step", "rk4_step_jvp", "rk4_step_vjp", "RK4Map", "trajectory"]


def _stages(f, x, dt):
    """The four RK4 stage points and slopes."""
    k1 = f(x)
    x2 = x + (dt / 2) * k1
    k2 = f(x2)
    x3 = x + (dt / 2) * k2
    k3 = f(x3)
    x4 = x + dt * k3
    k4 = f(x4)
    return (x, x2, x3, x4), (k1, k2, k3, k4)


def rk4_step(f, x, dt):
    """Advance ``x`` (shape ``(..., d)``) by one RK4 step of the ODE ``dx/dt = f(x)``."""
    _, (k1, k2, k3, k4) = _stages(f, x, dt)
    return x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4_step_jvp(f, f_jvp, x, dx, dt):
    r"""Tangent-linear RK4 step: the derivative of :func:`rk4_step` at ``x`` applied to ``dx``.

    Parameters
    ----------
    f : callable
        Right-hand side ``f(x)``.
    f_jvp : callable
        ``f_jvp(x, dx)`` returns :math:`Df(x)\,dx`.
    x, dx : array, shape (..., d)
        Linearisation point and perturbation.
    dt : float
        Step length.

    Returns
    -------
    x_next, dx_next : array
        The nonlinear step and its linearisation, :math:`D\mathcal{M}(x)\,dx`.
    """
    (x1, x2, x3, x4), (k1, k2, k3, k4) = _stages(f, x, dt)
    dk1 = f_jvp(x1, dx)
    dk2 = f_jvp(x2, dx + (dt / 2) * dk1)
    dk3 = f_jvp(x3, dx + (dt / 2) * dk2)
    dk4 = f_jvp(x4, dx + dt * dk3)
    x_next = x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    dx_next = dx + (dt / 6) * (dk1 + 2 * dk2 + 2 * dk3 + dk4)
    return x_next, dx_next


def rk4_step_vjp(f, f_vjp, x, w, dt):
    r"""Adjoint RK4 step: :math:`D\mathcal{M}(x)^\top w` for one step of :func:`rk4_step`.

    ``f_vjp(x, w)`` must return :math:`Df(x)^\top w`.  The stages are recomputed from ``x``
    and then traversed in reverse order.
    """
    (x1, x2, x3, x4), _ = _stages(f, x, dt)
    # Reverse sweep of the tangent-linear lines of rk4_step_jvp.
    a4 = f_vjp(x4, (dt / 6) * w)
    a3 = f_vjp(x3, (dt / 6) * 2 * w + dt * a4)
    a2 = f_vjp(x2, (dt / 6) * 2 * w + (dt / 2) * a3)
    a1 = f_vjp(x1, (dt / 6) * w + (dt / 2) * a2)
    return w + a1 + a2 + a3 + a4


@dataclass(frozen=True)
class RK4Map:
    r"""The forecast map :math:`\mathcal{M}` of an ODE: ``steps`` RK4 steps of length ``dt``.

    This is the :math:`\mathcal{M}` of eq. (1a): it advances a state over the time between two
    observations, ``steps * dt``.  It acts on any batch of states ``(..., d)``.

    Parameters
    ----------
    ode : object
        Model with ``rhs(x)`` and attribute ``d``; ``rhs_jvp`` / ``rhs_vjp`` enable
        :meth:`jvp` / :meth:`vjp`.
    dt : float
        Integration step.
    steps : int
        Number of RK4 steps per application.

    Examples
    --------
    >>> from dalib.models import Lorenz63, RK4Map
    >>> M = RK4Map(Lorenz63(), dt=0.01, steps=25)   # observe every 0.25 time units
    """

    ode: Any
    dt: float
    steps: int = 1

    def __post_init__(self):
        check_positive(self.dt, "dt")
        object.__setattr__(self, "steps", check_int(self.steps, "steps"))

    @property
    def d(self) -> int:
        """State dimension."""
        return self.ode.d

    def __repr__(self) -> str:
        return f"RK4Map({self.ode!r}, dt={self.dt:g}, steps={self.steps})"

    @property
    def time(self) -> float:
        """Model time covered by one application, ``steps * dt``."""
        return self.steps * self.dt

    def __call__(self, x):
        """Advance ``x`` of shape ``(..., d)`` by ``steps`` RK4 steps.

        A model may offer a fused implementation of the same steps for some backends
        (``ode.rk4_fused(x, dt, steps)``, e.g. Lorenz-96 on a GPU); it returns ``None``
        where it does not apply, and the generic code below runs.

        Inside ``jax.jit`` or ``jax.grad`` (traced JAX values) the steps run in a
        ``jax.lax.fori_loop``: unrolled, XLA's compile time grows much faster than the
        number of steps.
        """
        fused = getattr(self.ode, "rk4_fused", None)
        if fused is not None:
            out = fused(x, self.dt, self.steps)
            if out is not None:
                return out
        if self.steps > 1 and is_traced(x):
            import jax

            return jax.lax.fori_loop(
                0, self.steps, lambda _, z: rk4_step(self.ode.rhs, z, self.dt), x
            )
        for _ in range(self.steps):
            x = rk4_step(self.ode.rhs, x, self.dt)
        return x

    def _needs(self, method: str, what: str):
        if not callable(getattr(self.ode, method, None)):
            raise TypeError(f"RK4Map.{what} needs the model's {method}(x, v); "
                            f"{type(self.ode).__name__} has none")

    def jvp(self, x, dx):
        r"""Tangent-linear model: return ``(M(x), DM(x) dx)``."""
        self._needs("rhs_jvp", "jvp")
        for _ in range(self.steps):
            x, dx = rk4_step_jvp(self.ode.rhs, self.ode.rhs_jvp, x, dx, self.dt)
        return x, dx

    def vjp(self, x, w):
        r"""Adjoint model: return :math:`D\mathcal{M}(x)^\top w`.

        The trajectory inside the window is stored on the forward sweep and read backwards.
        """
        self._needs("rhs_vjp", "vjp")
        states = [x]
        for _ in range(self.steps - 1):
            states.append(rk4_step(self.ode.rhs, states[-1], self.dt))
        for xs in reversed(states):
            w = rk4_step_vjp(self.ode.rhs, self.ode.rhs_vjp, xs, w, self.dt)
        return w


def trajectory(M, x0, n: int):
    """Apply ``M`` ``n`` times and return all states, shape ``(n + 1, *x0.shape)``."""
    n = check_int(n, "n", minimum=0)
    xp = namespace(x0)
    states = [x0]
    for _ in range(n):
        states.append(M(states[-1]))
    return xp.stack(states, axis=0)
