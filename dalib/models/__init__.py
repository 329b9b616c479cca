"""Forecast models: ODE right-hand sides, the RK4 forecast map and a linear model."""

from . import fused
from .integrate import RK4Map, rk4_step, rk4_step_jvp, rk4_step_vjp, trajectory
from .linear import LinearModel
from .lorenz63 import Lorenz63
from .lorenz96 import Lorenz96
from .lorenz96_2scale import Lorenz96TwoScale

__all__ = [
    "fused",
    "Lorenz63",
    "Lorenz96",
    "Lorenz96TwoScale",
    "LinearModel",
    "RK4Map",
    "rk4_step",
    "rk4_step_jvp",
    "rk4_step_vjp",
    "trajectory",
]
