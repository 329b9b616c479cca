r"""Automatic differentiation by hand, as in the lecture, and finite differences.

A program computing :math:`y = f(x)`, :math:`f:\mathbb R^{d_0}\to\mathbb R^{d_n}`, is a
composition of elementary maps :math:`f = f_n\circ\dots\circ f_1` (eq. (3) of the lecture)
whose Jacobians :math:`Df_i` are known.  With the partial evaluations
:math:`g_i = f_i(g_{i-1})`, :math:`g_0 = x`, the chain rule (eq. (4)) gives

.. math:: Df(x) = Df_n(g_{n-1})\cdots Df_2(g_1)\,Df_1(x).

*Forward mode* (:func:`forward_mode`) multiplies from the right, alongside the evaluation:
:math:`J_i = Df_i(g_{i-1}) J_{i-1}`.  Its cost grows with the number of input directions
propagated (:math:`d_0` for the full Jacobian).  *Reverse mode* (:func:`reverse_mode`)
stores the :math:`g_i`, then multiplies from the left, backwards:
:math:`\bar g_{i-1} = Df_i(g_{i-1})^\top \bar g_i`.  Its cost grows with the number of
output directions (:math:`d_n`; one for a scalar loss, whatever :math:`d_0`).

Each elementary map is an :class:`Elementary` with its value ``f(g)`` and its Jacobian
products ``jvp(g, v)`` (:math:`Df(g)v`, any number of columns) and ``vjp(g, w)``
(:math:`Df(g)^\top w`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._validate import check_array
from .backend import device, namespace, to_numpy

__all__ = [
    "Elementary",
    "as_elementary",
    "evaluate",
    "forward_mode",
    "reverse_mode",
    "fd_gradient",
    "fd_jvp",
    "relative_error",
]


@dataclass(frozen=True)
class Elementary:
    r"""One elementary map :math:`f_i` with its Jacobian products.

    Parameters
    ----------
    f : callable
        ``f(g)``: the map, on a vector ``g`` of shape ``(d_{i-1},)``.
    jvp : callable
        ``jvp(g, V)``: :math:`Df(g)\,V` for ``V`` of shape ``(d_{i-1}, k)``.
    vjp : callable
        ``vjp(g, W)``: :math:`Df(g)^\top W` for ``W`` of shape ``(d_i, k)``.
    name : str
        Label for printing.
    """

    f: Callable
    jvp: Callable
    vjp: Callable
    name: str = ""

    def __call__(self, g):
        return self.f(g)


def as_elementary(M, name: str = "") -> Elementary:
    r"""Wrap a map with ``jvp(x, dx)`` and ``vjp(x, w)`` methods acting on rows ``(..., d)``.

    Works for :class:`~dalib.models.RK4Map`, :class:`~dalib.models.LinearModel` and
    observation operators, whose products act on states stored as rows; the returned
    :class:`Elementary` takes directions as columns, like the Jacobian matrices.
    """

    def jvp(g, V):
        out = M.jvp(g, V if V.ndim == 1 else V.T)
        out = out[1] if isinstance(out, tuple) else out  # forecast maps also return M(g)
        return out if V.ndim == 1 else out.T

    def vjp(g, W):
        return M.vjp(g, W) if W.ndim == 1 else M.vjp(g, W.T).T

    return Elementary(M, jvp, vjp, name or type(M).__name__)


def evaluate(maps: Sequence[Elementary], x):
    """Evaluate the composition ``maps[-1](... maps[0](x))``."""
    for m in maps:
        x = m(x)
    return x


def forward_mode(maps: Sequence[Elementary], x, V=None):
    r"""Forward-mode differentiation of a composition (the lecture's algorithm).

    .. math:: g_1 = f_1(x),\ J_1 = Df_1(x)V;\qquad
              g_i = f_i(g_{i-1}),\ J_i = Df_i(g_{i-1})\,J_{i-1}.

    Parameters
    ----------
    maps : sequence of Elementary
        :math:`f_1, \dots, f_n`.
    x : array, shape (d0,)
        Input.
    V : array, shape (d0, k), optional
        Input directions; the identity (the full Jacobian) by default.

    Returns
    -------
    y : array, shape (dn,)
        :math:`f(x)`.
    J : array, shape (dn, k)
        :math:`Df(x)\,V`.
    """
    check_array(x, "x", ndim=1)
    xp = namespace(x)
    J = xp.eye(x.shape[0], dtype=x.dtype, device=device(x)) if V is None else V
    g = x
    for m in maps:
        J = m.jvp(g, J)  # uses g_{i-1}, before it is overwritten
        g = m(g)
    return g, J


def reverse_mode(maps: Sequence[Elementary], x, W=None):
    r"""Reverse-mode differentiation of a composition.

    A forward sweep stores :math:`g_0 = x, g_1, \dots, g_{n-1}`; a backward sweep applies the
    transposed Jacobians, :math:`\bar g_{i-1} = Df_i(g_{i-1})^\top \bar g_i`, from
    :math:`\bar g_n = W`.

    Parameters
    ----------
    maps : sequence of Elementary
    x : array, shape (d0,)
    W : array, shape (dn, k) or (dn,), optional
        Output directions (cotangents); the identity by default (the full Jacobian,
        transposed).  For a scalar function, ``W = [1.0]`` gives the gradient.

    Returns
    -------
    y : array, shape (dn,)
        :math:`f(x)`.
    G : array, shape (d0, k) or (d0,)
        :math:`Df(x)^\top W`.
    """
    check_array(x, "x", ndim=1)
    xp = namespace(x)
    stored = [x]
    for m in maps[:-1]:
        stored.append(m(stored[-1]))
    y = maps[-1](stored[-1]) if maps else x
    G = xp.eye(y.shape[0], dtype=x.dtype, device=device(x)) if W is None else W
    for m, g in zip(reversed(maps), reversed(stored)):
        G = m.vjp(g, G)
    return y, G


def fd_gradient(J: Callable, x, h: float = 1e-6, scheme: str = "central"):
    r"""Finite-difference gradient of a scalar function ``J`` at ``x`` (shape ``(d,)``).

    ``scheme="forward"``: :math:`(J(x + h e_i) - J(x))/h`, error :math:`O(h)`;
    ``scheme="central"``: :math:`(J(x + h e_i) - J(x - h e_i))/2h`, error :math:`O(h^2)`.
    Both also suffer a round-off error :math:`O(\varepsilon/h)`; the cost is ``d`` (or
    ``2d``) evaluations of ``J``.
    """
    if scheme not in ("forward", "central"):
        raise ValueError(f"scheme must be 'forward' or 'central', got {scheme!r}")
    check_array(x, "x", ndim=1)
    xp = namespace(x)
    E = h * xp.eye(x.shape[0], dtype=x.dtype, device=device(x))
    if scheme == "forward":
        J0 = J(x)
        return xp.stack([(J(x + E[i, :]) - J0) / h for i in range(x.shape[0])])
    return xp.stack([(J(x + E[i, :]) - J(x - E[i, :])) / (2 * h) for i in range(x.shape[0])])


def fd_jvp(f: Callable, x, v, h: float = 1e-6):
    r"""Central finite-difference directional derivative :math:`(f(x+hv) - f(x-hv))/2h`."""
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


def relative_error(a, b) -> float:
    r""":math:`\|a - b\| / \|b\|` as a Python float, for arrays of any backends.

    The agreement measure of gradient checks; the arrays are copied to the host.
    """
    import numpy as np

    a = np.asarray(to_numpy(a), dtype=float).ravel()
    b = np.asarray(to_numpy(b), dtype=float).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
