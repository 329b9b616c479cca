r"""Observation operators :math:`h` of eq. (2a), with their Jacobians.

Every operator acts on states of shape ``(..., d)`` and returns observations of shape
``(..., p)``; it also offers ``jvp(x, dx)`` (:math:`Dh(x)\,dx`), ``vjp(x, w)``
(:math:`Dh(x)^\top w`) and ``jacobian(x)`` (the dense :math:`p\times d` matrix, for small
problems).  Linear operators also have ``matrix(xp)``, the matrix :math:`H`.
Selection operators never form :math:`H` to apply it, so they scale to large ``d``.
"""

from __future__ import annotations

from typing import Any

from ._validate import check_array, check_int, owned_copy
from .backend import backend_name, device, get_namespace, namespace

__all__ = [
    "ObservationOperator",
    "Identity",
    "EveryKth",
    "Subset",
    "Matrix",
    "Elementwise",
]


class ObservationOperator:
    """Base class.  Subclasses set ``d`` and ``p`` and implement ``__call__``/``jvp``/``vjp``."""

    d: int
    p: int
    linear: bool = True

    def _check(self, x):
        return check_array(x, "x", last=self.d, finite=False)

    def __call__(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def jvp(self, x, dx):
        r""":math:`Dh(x)\,dx`; for a linear operator this is ``h(dx)``."""
        return self(dx)

    def vjp(self, x, w):  # pragma: no cover - abstract
        raise NotImplementedError

    def matrix(self, xp="numpy", device=None):
        """The matrix ``H`` (``p`` by ``d``) of a linear operator, on backend ``xp``.

        ``device`` places it (default: the backend's default device).
        """
        if not self.linear:
            raise TypeError(f"{type(self).__name__} is nonlinear: use jacobian(x) instead")
        xp = get_namespace(xp)
        return self(xp.eye(self.d, dtype=xp.float64, device=device)).T

    def jacobian(self, x):
        r"""Dense Jacobian :math:`Dh(x)` of shape ``(..., p, d)``."""
        xp = namespace(x)
        eye = xp.eye(self.d, dtype=x.dtype, device=device(x))
        # Columns are jvps along the unit vectors, batched over x's leading axes.
        cols = self.jvp(x[..., None, :], eye)  # (..., d, p)
        cols = xp.broadcast_to(cols, (*x.shape[:-1], self.d, self.p))
        return xp.matrix_transpose(cols)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.d}, p={self.p})"


class Identity(ObservationOperator):
    """Observe every component: :math:`h(x) = x`."""

    def __init__(self, d: int):
        self.d = self.p = check_int(d, "d")

    def __call__(self, x):
        return self._check(x)

    def vjp(self, x, w):
        return w


class EveryKth(ObservationOperator):
    """Observe components ``offset, offset + k, offset + 2k, ...``.

    Parameters
    ----------
    d : int
        State dimension.
    k : int
        Stride (``k = 1`` is the identity).
    offset : int
        First observed component.
    """

    def __init__(self, d: int, k: int, offset: int = 0):
        self.d = check_int(d, "d")
        self.k = check_int(k, "k")
        self.offset = check_int(offset, "offset", minimum=0)
        if self.offset >= self.d:
            raise ValueError(f"offset must be smaller than d={self.d}, got {self.offset}")
        self.p = len(range(self.offset, self.d, self.k))

    def __call__(self, x):
        return self._check(x)[..., self.offset :: self.k]

    def vjp(self, x, w):
        xp = namespace(w)
        out = xp.zeros((*w.shape[:-1], self.p, self.k), dtype=w.dtype, device=device(w))
        # Interleave w with zeros: element (i, 0) of the (p, k) block is component offset + i k.
        out = xp.concat([w[..., None], out[..., 1:]], axis=-1)
        flat = xp.reshape(out, (*w.shape[:-1], self.p * self.k))
        pad_front = xp.zeros((*w.shape[:-1], self.offset), dtype=w.dtype, device=device(w))
        full = xp.concat([pad_front, flat], axis=-1)
        return full[..., : self.d]

    def __repr__(self) -> str:
        return f"EveryKth(d={self.d}, k={self.k}, offset={self.offset})"


class Subset(ObservationOperator):
    """Observe a fixed set of components, in the given order.

    Parameters
    ----------
    d : int
        State dimension.
    indices : sequence of int
        Observed components (distinct, in ``0 .. d-1``).
    """

    def __init__(self, d: int, indices):
        self.d = check_int(d, "d")
        idx = [int(i) for i in indices]
        if not idx:
            raise ValueError("indices must not be empty")
        if len(set(idx)) != len(idx):
            raise ValueError(f"indices must be distinct, got {idx}")
        if min(idx) < 0 or max(idx) >= self.d:
            raise ValueError(f"indices must lie in 0..{self.d - 1}, got {idx}")
        self.indices = tuple(idx)
        self.p = len(idx)
        self._cache = {}

    def _idx(self, x):
        """The indices as an integer array on the backend and device of ``x``.

        Made once per backend and device and then reused, so applying ``h`` inside a
        filter's loop does not copy the indices to the device again.
        """
        xp = namespace(x)
        dev = device(x)
        key = (backend_name(xp), repr(dev))
        idx = self._cache.get(key)
        if idx is None:
            idx = xp.asarray(self.indices, dtype=xp.int64, device=dev)
            if backend_name(xp) != "jax":  # JAX values may be tracers: never cache them
                self._cache[key] = idx
        return idx

    def __call__(self, x):
        xp = namespace(self._check(x))
        return xp.take(x, self._idx(x), axis=-1)

    def vjp(self, x, w):
        xp = namespace(w)
        # Scatter via a one-hot matrix product: H^T w with H[i, indices[i]] = 1.
        cols = xp.arange(self.d, dtype=xp.int64, device=device(w))
        onehot = xp.astype(self._idx(w)[:, None] == cols[None, :], w.dtype)
        return w @ onehot

    def __repr__(self) -> str:
        return f"Subset(d={self.d}, indices={list(self.indices)})"


class Matrix(ObservationOperator):
    """A general linear operator :math:`h(x) = H x` with a dense ``(p, d)`` matrix ``H``."""

    def __init__(self, H: Any):
        check_array(H, "H", ndim=2)
        self.H = owned_copy(H)  # a later edit of the caller's array cannot bypass the check
        self.p, self.d = int(H.shape[0]), int(H.shape[1])

    def __call__(self, x):
        xp = namespace(self.H, x)
        return self._check(x) @ xp.matrix_transpose(self.H)

    def vjp(self, x, w):
        return w @ self.H

    def matrix(self, xp="numpy", device=None):
        xp = get_namespace(xp)
        return xp.asarray(self.H) if device is None else xp.asarray(self.H, device=device)


_ELEMENTWISE = {
    # name: (g, g')
    "square": (lambda z, xp: z * z, lambda z, xp: 2 * z),
    "arctan": (lambda z, xp: xp.atan(z), lambda z, xp: 1 / (1 + z * z)),
    "cube": (lambda z, xp: z * z * z, lambda z, xp: 3 * z * z),
}


class Elementwise(ObservationOperator):
    r"""A nonlinear operator :math:`h(x) = g(Lx)`: a linear selection, then ``g`` elementwise.

    Parameters
    ----------
    base : ObservationOperator
        The linear part :math:`L` (e.g. :class:`Identity` or :class:`EveryKth`).
    g : {"square", "arctan", "cube"}
        The nonlinearity.  ``"square"`` makes the sign of the state unobservable, the classic
        hard case for Gaussian filters; ``"arctan"`` saturates large values.
    """

    linear = False

    def __init__(self, base: ObservationOperator, g: str = "arctan"):
        if not isinstance(base, ObservationOperator) or not base.linear:
            raise TypeError("base must be a linear ObservationOperator")
        if g not in _ELEMENTWISE:
            raise ValueError(f"g must be one of {sorted(_ELEMENTWISE)}, got {g!r}")
        self.base, self.g = base, g
        self.d, self.p = base.d, base.p

    def __call__(self, x):
        xp = namespace(x)
        return _ELEMENTWISE[self.g][0](self.base(x), xp)

    def jvp(self, x, dx):
        xp = namespace(x, dx)
        return _ELEMENTWISE[self.g][1](self.base(x), xp) * self.base(dx)

    def vjp(self, x, w):
        xp = namespace(x, w)
        return self.base.vjp(x, _ELEMENTWISE[self.g][1](self.base(x), xp) * w)

    def __repr__(self) -> str:
        return f"Elementwise({self.base!r}, g={self.g!r})"
