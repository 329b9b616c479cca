r"""Models that are linear combinations of a dictionary of local terms (lecture, example 2).

On a periodic 1-D grid, a *local dictionary* is a list of monomials of the neighbours of
site :math:`i`, the same at every site, e.g.

.. math::
    1,\ x_i,\ x_{i-1},\ x_{i+1},\ x_i^2,\ x_{i-2}x_{i-1},\ x_{i-1}x_{i+1},\ \dots

and a model is the ODE with shared coefficients :math:`\vartheta \in \R^K`,

.. math::
    \dot x_i = f_\vartheta(x)_i = \sum_{k=1}^K \vartheta_k\, \phi_k(x)_i .

Lorenz-96 is such a model, :math:`\dot x_i = x_{i-1}x_{i+1} - x_{i-2}x_{i-1} - x_i + F`,
with four non-zero coefficients.  The forecast map :math:`\mathcal M_\vartheta` integrates
this ODE with RK4 over one observation interval; :meth:`DictionaryModel.map_and_sensitivity`
also returns its derivative with respect to :math:`\vartheta`, propagated through the RK4
stages in forward mode (one direction per coefficient, the cheap mode when there are few
inputs, chapter 6).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from .._validate import check_array, check_int, check_positive
from ..backend import asarray, namespace
from ..models.integrate import RK4Map
from ..models.lorenz96 import shift

__all__ = ["LocalDictionary", "DictionaryODE", "DictionaryModel"]


def _term_name(term) -> str:
    if not term:
        return "1"
    parts = []
    for o in sorted(set(term)):
        power = term.count(o)
        base = "x_i" if o == 0 else f"x_{{i{o:+d}}}"
        parts.append(base + (f"^{power}" if power > 1 else ""))
    return " ".join(parts)


class LocalDictionary:
    r"""A list of local monomials :math:`\phi_k(x)_i = \prod_{o \in T_k} x_{i+o}`.

    Parameters
    ----------
    terms : sequence of tuples of int
        Each term is a tuple of offsets :math:`T_k` (``()`` is the constant, ``(0,)`` is
        :math:`x_i`, ``(-2, -1)`` is :math:`x_{i-2}x_{i-1}`, ``(0, 0)`` is :math:`x_i^2`).
        Indices are cyclic.

    Examples
    --------
    >>> lib = LocalDictionary.polynomial(degree=2, stencil=2)
    >>> lib.K, lib.names[:3]
    (21, ['1', 'x_{i-2}', 'x_{i-1}'])
    """

    def __init__(self, terms):
        terms = [tuple(sorted(int(o) for o in t)) for t in terms]
        if not terms:
            raise ValueError("terms must not be empty")
        if len(set(terms)) != len(terms):
            raise ValueError(f"terms must be distinct, got {terms}")
        self.terms = tuple(terms)
        self.offsets = tuple(sorted({o for t in terms for o in t}))

    @classmethod
    def polynomial(cls, degree: int = 2, stencil: int = 2) -> LocalDictionary:
        r"""All monomials of degree at most ``degree`` in :math:`x_{i-s}, \dots, x_{i+s}`.

        With ``degree=2, stencil=2`` this is the constant, the five neighbours and their
        fifteen products: 21 terms, which contain the Lorenz-96 right-hand side.
        """
        degree = check_int(degree, "degree", minimum=0)
        stencil = check_int(stencil, "stencil", minimum=0)
        offsets = range(-stencil, stencil + 1)
        terms = [()]
        for n in range(1, degree + 1):
            terms += list(itertools.combinations_with_replacement(offsets, n))
        return cls(terms)

    @property
    def K(self) -> int:
        """Number of terms."""
        return len(self.terms)

    @property
    def names(self) -> list[str]:
        """LaTeX-like names of the terms, e.g. ``'x_{i-2}x_{i-1}'``."""
        return [_term_name(t) for t in self.terms]

    def index(self, term) -> int:
        """Position of ``term`` (a tuple of offsets) in the dictionary."""
        key = tuple(sorted(int(o) for o in term))
        try:
            return self.terms.index(key)
        except ValueError:
            raise ValueError(f"term {key} is not in the dictionary") from None

    def coefficients(self, values: dict, xp="numpy"):
        r"""The coefficient vector :math:`\vartheta` with the given non-zero entries.

        Parameters
        ----------
        values : dict
            Maps terms (tuples of offsets) to coefficients; the others are zero.
        xp : str or module
            Backend of the result.
        """
        theta = [0.0] * self.K
        for term, value in values.items():
            theta[self.index(term)] = float(value)
        return asarray(theta, xp)

    def lorenz96(self, F: float = 8.0, xp="numpy"):
        r"""The coefficients of Lorenz-96.

        :math:`F\cdot 1 - x_i - x_{i-2}x_{i-1} + x_{i-1}x_{i+1}`.
        """
        return self.coefficients({(): F, (0,): -1.0, (-2, -1): -1.0, (-1, 1): 1.0}, xp)

    def _shifted(self, x):
        return {o: shift(x, -o) for o in self.offsets}  # o -> x_{i+o}

    def _monomial(self, term, xs, x):
        if not term:
            return namespace(x).ones_like(x)
        out = xs[term[0]]
        for o in term[1:]:
            out = out * xs[o]
        return out

    def features(self, x):
        r"""All terms at all sites, :math:`\Phi(x)`, shape ``(..., K, d)`` for ``x (..., d)``."""
        xp = namespace(x)
        xs = self._shifted(x)
        return xp.stack([self._monomial(t, xs, x) for t in self.terms], axis=-2)

    def rhs(self, theta, x):
        r""":math:`f_\vartheta(x)_i = \sum_k \vartheta_k \phi_k(x)_i`, shape ``(..., d)``.

        Parameters
        ----------
        theta : array, shape (K,)
            Coefficients (may be traced by JAX).
        x : array, shape (..., d)
            States.
        """
        xs = self._shifted(x)
        out = 0.0
        for k, t in enumerate(self.terms):
            out = out + theta[k] * self._monomial(t, xs, x)
        return out

    def jacobian_bands(self, theta, x):
        r"""The Jacobian of :math:`f_\vartheta` as bands.

        :math:`Df_\vartheta(x)\,v = \sum_o c_o(x) \odot v_{\cdot+o}`.

        By the product rule, the derivative of a monomial :math:`\prod_{a} x_{i+o_a}`
        along :math:`v` is :math:`\sum_a v_{i+o_a}\prod_{b\ne a} x_{i+o_b}`; collecting the
        terms by the offset :math:`o = o_a` gives the band coefficients

        .. math:: c_o(x)_i = \sum_k \vartheta_k \sum_{a:\,o_a = o}\ \prod_{b\ne a} x_{i+o_b}.

        Returns
        -------
        dict
            Offset :math:`o` to the array :math:`c_o(x)`, shape ``(..., d)``.
        """
        xs = self._shifted(x)
        bands = {}
        for k, t in enumerate(self.terms):
            for a in range(len(t)):
                prod = None
                for b, o in enumerate(t):
                    if b != a:
                        prod = xs[o] if prod is None else prod * xs[o]
                term = theta[k] * (namespace(x).ones_like(x) if prod is None else prod)
                bands[t[a]] = term if t[a] not in bands else bands[t[a]] + term
        return bands

    def rhs_jvp(self, theta, x, dx):
        r""":math:`Df_\vartheta(x)\,dx` (shape: the broadcast of ``x`` and ``dx``).

        Uses :meth:`jacobian_bands`, so the cost on a batch of directions ``dx`` is one
        product per offset, whatever the number of terms.
        """
        out = 0.0 * dx
        for o, c in self.jacobian_bands(theta, x).items():
            out = out + c * shift(dx, -o)
        return out

    def __repr__(self) -> str:
        return f"LocalDictionary(K={self.K}: {', '.join(self.names)})"


@dataclass(frozen=True)
class DictionaryODE:
    r"""The ODE :math:`\dot x = f_\vartheta(x)` of a dictionary and coefficients, for RK4Map.

    Parameters
    ----------
    dictionary : LocalDictionary
    theta : array, shape (K,)
        Coefficients.
    d : int
        Number of grid sites.
    """

    dictionary: LocalDictionary
    theta: Any
    d: int

    def rhs(self, x):
        """Time derivative at states ``x`` of shape ``(..., d)``."""
        return self.dictionary.rhs(self.theta, x)

    def rhs_jvp(self, x, dx):
        """Jacobian-vector product ``Df(x) dx``."""
        return self.dictionary.rhs_jvp(self.theta, x, dx)


@dataclass(frozen=True)
class DictionaryModel:
    r"""The family of forecast maps :math:`\mathcal M_\vartheta` of a local dictionary.

    Calling the family with coefficients returns the forecast map (an
    :class:`~dalib.models.RK4Map`), which advances states over one observation interval,
    ``steps`` RK4 steps of length ``dt``.

    Parameters
    ----------
    dictionary : LocalDictionary
    d : int
        Number of grid sites.
    dt : float
        RK4 step.
    steps : int
        RK4 steps per observation interval.

    Examples
    --------
    >>> family = DictionaryModel(LocalDictionary.polynomial(), d=40, dt=0.05)
    >>> M = family(family.dictionary.lorenz96(8.0))   # exactly dalib's Lorenz-96 RK4 map
    """

    dictionary: LocalDictionary
    d: int
    dt: float
    steps: int = 1

    def __post_init__(self):
        if not isinstance(self.dictionary, LocalDictionary):
            raise TypeError(
                f"dictionary must be a LocalDictionary, got {type(self.dictionary).__name__}"
            )
        object.__setattr__(self, "d", check_int(self.d, "d", minimum=1))
        check_positive(self.dt, "dt")
        object.__setattr__(self, "steps", check_int(self.steps, "steps"))

    @property
    def K(self) -> int:
        """Number of coefficients."""
        return self.dictionary.K

    def _check_theta(self, theta):
        check_array(theta, "theta", ndim=1, last=self.K)
        return theta

    def __call__(self, theta) -> RK4Map:
        r"""The forecast map :math:`\mathcal M_\vartheta`."""
        self._check_theta(theta)
        return RK4Map(DictionaryODE(self.dictionary, theta, self.d), self.dt, self.steps)

    def map_and_sensitivity(self, theta, x):
        r"""The forecast and its derivative in the parameters.

        :math:`\mathcal M_\vartheta(x)` and
        :math:`\partial \mathcal M_\vartheta(x)/\partial\vartheta`.

        The sensitivity :math:`S = \partial x / \partial\vartheta` (shape ``(..., K, d)``,
        row ``k`` is the derivative along :math:`\vartheta_k`) starts at zero and follows
        each RK4 stage: for a stage :math:`k_s = f_\vartheta(x_s)`,

        .. math::
            \frac{\partial k_s}{\partial \vartheta} = \Phi(x_s) + Df_\vartheta(x_s)\,S_s ,

        since :math:`f_\vartheta(x) = \Phi(x)^\top\vartheta` is linear in
        :math:`\vartheta`; the stage sensitivities combine with the RK4 weights.

        Parameters
        ----------
        theta : array, shape (K,)
        x : array, shape (..., d)

        Returns
        -------
        x_next : array, shape (..., d)
        S : array, shape (..., K, d)
        """
        self._check_theta(theta)
        check_array(x, "x", last=self.d, finite=False)
        xp = namespace(theta, x)
        lib, dt = self.dictionary, self.dt
        S = xp.zeros((*x.shape[:-1], self.K, self.d), dtype=x.dtype)

        def stage(xs, Ss):
            k = lib.rhs(theta, xs)
            dk = lib.features(xs)
            for o, c in lib.jacobian_bands(theta, xs).items():
                dk = dk + c[..., None, :] * shift(Ss, -o)
            return k, dk

        for _ in range(self.steps):
            k1, d1 = stage(x, S)
            k2, d2 = stage(x + (dt / 2) * k1, S + (dt / 2) * d1)
            k3, d3 = stage(x + (dt / 2) * k2, S + (dt / 2) * d2)
            k4, d4 = stage(x + dt * k3, S + dt * d3)
            x = x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
            S = S + (dt / 6) * (d1 + 2 * d2 + 2 * d3 + d4)
        return x, S
