"""Explicit random number generation on every backend.

Every stochastic function in dalib takes an ``rng`` argument; there is no global seed.
:func:`default_rng` turns a seed into a :class:`Generator` that draws numbers directly on
the chosen backend: NumPy's PCG64 for NumPy (and, copied over, for array-api-strict),
CuPy's device generator for CuPy, and a key that is split at every draw for JAX.
The same seed on the same backend gives the same numbers.

A generator draws on one device: by default the backend's default device (the current GPU
for CuPy); ``device=`` chooses another.  CuPy numbers are generated on the GPU itself, so a
filter running there never copies random numbers from the host.
"""

from __future__ import annotations

from types import ModuleType

from .backend import backend_name, default_device, get_namespace

__all__ = ["Generator", "default_rng"]


class Generator:
    """Random numbers drawn on one array backend.

    Parameters
    ----------
    seed : int or None
        Seed of the underlying generator (``None`` draws fresh entropy).
    xp : str or module
        Backend: ``"numpy"`` (default), ``"cupy"``, ``"jax"`` or ``"array_api_strict"``.
    device : optional
        Device of the numbers (e.g. ``cupy.cuda.Device(1)``); default: the backend's
        default device.

    Examples
    --------
    >>> rng = default_rng(1)
    >>> z = rng.standard_normal((3, 2))     # a (3, 2) NumPy array
    """

    def __init__(self, seed: int | None = None, xp: str | ModuleType = "numpy", device=None):
        self.xp = get_namespace(xp)
        self.backend = backend_name(self.xp)
        self.device = device
        if self.backend == "jax":
            import jax
            import numpy as np

            if seed is None:
                seed = int(np.random.default_rng().integers(2**31))
            self._key = jax.random.key(seed)
        elif self.backend == "cupy":  # pragma: no cover - needs a GPU
            import cupy

            self._gen = cupy.random.default_rng(seed)
        else:
            import numpy as np

            self._gen = np.random.default_rng(seed)

    def __repr__(self) -> str:
        where = "" if self.device is None else f", device={self.device!r}"
        return f"dalib.random.Generator(backend={self.backend!r}{where})"

    @property
    def resolved_device(self):
        """The device the numbers land on (``device``, or the backend's default)."""
        return default_device(self.xp) if self.device is None else self.device

    def _jax_key(self):
        import jax

        self._key, sub = jax.random.split(self._key)
        return sub

    def _host(self, values):
        """Move host (NumPy) values to the backend, for backends drawn on the host.

        Only array-api-strict (the tests' stand-in for a device backend) comes here.
        """
        if self.backend == "numpy":
            return values
        if self.device is None:
            return self.xp.asarray(values)
        return self.xp.asarray(values, device=self.device)

    def _on_device(self, values):
        """Place JAX draws on the requested device (a no-op without one)."""
        if self.device is None:
            return values
        import jax

        return jax.device_put(values, self.device)

    def _cupy_draw(self, draw, shape, dtype):  # pragma: no cover - needs a GPU
        if self.device is None:
            return draw(shape, dtype=dtype)
        with self.device:
            return draw(shape, dtype=dtype)

    def standard_normal(self, shape=(), dtype=None):
        """Array of independent N(0, 1) draws with the given shape (float64 by default)."""
        shape = _as_shape(shape)
        dtype = dtype or self.xp.float64
        if self.backend == "jax":
            import jax

            return self._on_device(jax.random.normal(self._jax_key(), shape, dtype=dtype))
        if self.backend == "cupy":  # pragma: no cover - needs a GPU
            return self._cupy_draw(self._gen.standard_normal, shape, dtype)
        return self.xp.astype(self._host(self._gen.standard_normal(shape)), dtype)

    def uniform(self, shape=(), dtype=None):
        """Array of independent U[0, 1) draws with the given shape."""
        shape = _as_shape(shape)
        dtype = dtype or self.xp.float64
        if self.backend == "jax":
            import jax

            return self._on_device(jax.random.uniform(self._jax_key(), shape, dtype=dtype))
        if self.backend == "cupy":  # pragma: no cover - needs a GPU
            return self._cupy_draw(self._gen.random, shape, dtype)
        return self.xp.astype(self._host(self._gen.random(shape)), dtype)

    def spawn(self, n: int) -> list[Generator]:
        """``n`` independent child generators on the same backend and device."""
        import numpy as np

        from .backend import to_numpy

        seeds = np.floor(to_numpy(self.uniform((n,))) * 2**31).astype(np.int64)
        return [Generator(int(s), self.xp, self.device) for s in seeds]


def _as_shape(shape) -> tuple[int, ...]:
    if hasattr(shape, "__index__"):  # an int, a NumPy integer, ...
        return (int(shape),)
    try:
        return tuple(int(s.__index__()) for s in shape)
    except (TypeError, AttributeError):
        raise TypeError(f"shape must be an integer or a tuple of integers, got {shape!r}") from None


def default_rng(seed=None, xp: str | ModuleType | None = None, device=None) -> Generator:
    """Return a :class:`Generator`.

    Parameters
    ----------
    seed : int, None or Generator
        A seed, or an existing :class:`Generator`, which is returned unchanged (so every
        function can accept either).
    xp : str or module, optional
        Backend of the numbers (default NumPy).  Ignored when ``seed`` is a Generator;
        an error is raised if the two disagree.
    device : optional
        Device of the numbers (default: the backend's default device).  For a Generator,
        an error is raised if it draws on another device.

    Examples
    --------
    >>> rng = default_rng(1, "cupy")            # doctest: +SKIP
    >>> z = rng.standard_normal((100, 10**6))   # doctest: +SKIP
    """
    if isinstance(seed, Generator):
        if xp is not None and backend_name(get_namespace(xp)) != seed.backend:
            raise ValueError(
                f"rng draws on backend {seed.backend!r} but backend {xp!r} was requested"
            )
        if device is not None and seed.backend != "jax" and seed.resolved_device != device:
            raise ValueError(
                f"rng draws on device {seed.resolved_device!r} but the arrays live on device "
                f"{device!r}: create it with dalib.default_rng(seed, xp, device=...)"
            )
        return seed
    if seed is not None and not isinstance(seed, int):
        raise TypeError(
            f"rng must be an int seed, None or a dalib.random.Generator, got {type(seed).__name__}"
        )
    return Generator(seed, xp or "numpy", device)
