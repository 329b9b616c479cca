r"""Ensembles spread over several JAX devices (GPUs, or CPU host devices in tests).

An ensemble :math:`E` (N, d) is split either by **members** (rows: each device holds
:math:`N/n` members and all of the grid; the forecast is embarrassingly parallel and the
analysis needs the ensemble-space sums over members, which XLA turns into all-reduces) or by
**grid** (columns: each device holds all members on :math:`d/n` grid points; the
LETKF's local analyses are independent per grid point, so only the gathering of local
observations crosses devices).

The arithmetic is the same code as on one device: :func:`ensemble_sharding` only says how
the arrays are laid out, ``jax.jit`` (the compiled driver,
:func:`~dalib.da.compiled.assimilate_compiled` with ``sharding=``) partitions the program
accordingly (GSPMD), and the result equals the single-device one to round-off (sums over a
split axis may be added in another order).
"""

from __future__ import annotations

__all__ = ["device_mesh", "ensemble_sharding", "shard_ensemble"]

AXES = {"members": 0, "grid": 1}


def device_mesh(devices=None, name: str = "ensemble"):
    """A one-dimensional ``jax.sharding.Mesh`` over ``devices`` (default: all of JAX's)."""
    import jax
    import numpy as np

    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one JAX device")
    return jax.sharding.Mesh(np.asarray(devices), (name,))


def ensemble_sharding(mesh=None, over: str = "members"):
    """The ``NamedSharding`` that splits an ensemble (N, d) over the mesh's one axis.

    Parameters
    ----------
    mesh : jax.sharding.Mesh, optional
        One-dimensional mesh (default :func:`device_mesh` over all devices).
    over : {"members", "grid"}
        Split the rows (members) or the columns (grid points).
    """
    from jax.sharding import NamedSharding, PartitionSpec

    if over not in AXES:
        raise ValueError(f"over must be 'members' or 'grid', got {over!r}")
    mesh = device_mesh() if mesh is None else mesh
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must have one axis, got axes {mesh.axis_names}")
    (name,) = mesh.axis_names
    spec = PartitionSpec(name, None) if over == "members" else PartitionSpec(None, name)
    return NamedSharding(mesh, spec)


def shard_ensemble(E, sharding):
    """Place an ensemble (N, d) on the devices of ``sharding``; the split axis must divide."""
    import jax

    if E.ndim != 2:
        raise ValueError(f"E must be an ensemble of shape (N, d), got shape {tuple(E.shape)}")
    n = sharding.mesh.size
    axis = 0 if sharding.spec[0] is not None else 1
    if E.shape[axis] % n:
        raise ValueError(
            f"E has {E.shape[axis]} {('members', 'grid points')[axis]}, not a multiple of "
            f"the {n} devices"
        )
    return jax.device_put(E, sharding)
