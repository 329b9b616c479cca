r"""Covariance matrices that know their structure.

:math:`Q`, :math:`R`, :math:`C_0` and friends are scalar multiples of the identity, diagonal
or dense.  The first two never form a ``d``-by-``d`` matrix, so a state of a million
variables costs a million numbers.  All three share one interface, acting on row vectors of
shape ``(..., d)``:

=====================  ====================================================
``matmul(b)``          :math:`C b`
``solve(b)``           :math:`C^{-1} b`
``sqrt_matmul(z)``     :math:`S z`, with :math:`S S^\top = C` (Cholesky factor)
``inv_sqrt_matmul(b)`` :math:`S^{-1} b`, so :math:`|S^{-1}b|^2 = b^\top C^{-1} b`
``sqrt_T_matmul(g)``   :math:`S^\top g` (the adjoint of ``sqrt_matmul``)
``logdet()``           :math:`\log\det C`
``logpdf(v)``          :math:`\log \mathcal N(v; 0, C)`
``sample(rng, shape)`` draws of :math:`\mathcal N(0, C)`, shape ``(*shape, d)``
``diagonal(xp)``       the diagonal, ``(d,)`` (optionally ``device=``)
``to_dense(xp)``       the full matrix (small problems only; ``device=``)
``scaled(a)``          the covariance :math:`a C`
``is_diagonal``        whether :math:`C` is diagonal (scalar or diagonal)
=====================  ====================================================

:class:`Covariance` declares this interface as abstract methods, so code that uses a
covariance never needs to ask which kind it is.  Use :func:`as_covariance` to turn a
number, a vector of variances or a matrix into one; each keeps its own copy of the numbers
it was given, so editing the caller's array afterwards changes nothing.
"""

from __future__ import annotations

import abc
import math
from types import ModuleType

from ._validate import check_array, check_finite, check_int, check_positive, owned_copy
from .backend import device as array_device
from .backend import get_namespace, is_traced, namespace, solve_triangular
from .random import default_rng

__all__ = [
    "LOG_2PI",
    "gaussian_log_density",
    "Covariance",
    "ScalarCovariance",
    "DiagonalCovariance",
    "DenseCovariance",
    "as_covariance",
]


LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(quad, logdet, p):
    r"""The Gaussian log-density from its parts: :math:`-\tfrac12(q + \log\det C + p\log 2\pi)`.

    With :math:`q = v^\top C^{-1} v` this is :math:`\log \mathcal N(v; 0, C)` for ``v`` of
    length ``p``.  Every Gaussian log-density in dalib ends here; the callers differ in how
    they get :math:`q` and :math:`\log\det C` (a Cholesky factor, a structured covariance,
    the Woodbury identity of an ensemble covariance).

    Examples
    --------
    >>> import math
    >>> gaussian_log_density(0.0, 0.0, 1) == -0.5 * math.log(2 * math.pi)
    True
    """
    return -0.5 * (quad + logdet + p * LOG_2PI)


def _device_of(variance, device):
    """``device`` if given, else the device of an array-valued variance (or None)."""
    return device if device is not None else array_device(variance)


class Covariance(abc.ABC):
    r"""Base class of structured covariance matrices :math:`C = S S^\top` (see the module
    docstring).

    Vectors are rows: every method acts on arrays of shape ``(..., d)``.  A subclass
    implements the abstract methods and sets ``d`` and ``is_diagonal``.
    """

    d: int
    is_diagonal: bool

    @abc.abstractmethod
    def matmul(self, b):
        """:math:`C b` for rows ``b`` of shape ``(..., d)``."""

    @abc.abstractmethod
    def solve(self, b):
        """:math:`C^{-1} b` for rows ``b`` of shape ``(..., d)``."""

    @abc.abstractmethod
    def sqrt_matmul(self, z):
        r""":math:`S z` with :math:`S S^\top = C`; maps N(0, I) draws to N(0, C)."""

    @abc.abstractmethod
    def sqrt_T_matmul(self, g):
        r""":math:`S^\top g`, the adjoint of :meth:`sqrt_matmul` (chain rule through it)."""

    @abc.abstractmethod
    def inv_sqrt_matmul(self, b):
        r""":math:`S^{-1} b`, so that :math:`|S^{-1} b|^2 = b^\top C^{-1} b`."""

    @abc.abstractmethod
    def logdet(self):
        r""":math:`\log\det C`."""

    @abc.abstractmethod
    def diagonal(self, xp: str | ModuleType = "numpy", device=None):
        """The diagonal of :math:`C`, shape ``(d,)``."""

    @abc.abstractmethod
    def to_dense(self, xp: str | ModuleType = "numpy", device=None):
        """The full ``(d, d)`` matrix (small problems only)."""

    @abc.abstractmethod
    def scaled(self, a) -> "Covariance":
        """The covariance ``a * C`` for a positive scalar ``a``."""

    def sample(self, rng, shape=()):
        """Draw zero-mean Gaussian vectors with this covariance, shape ``(*shape, d)``.

        Parameters
        ----------
        rng : dalib.random.Generator or int
            Source of randomness; its backend is the backend of the result.
        shape : tuple of int
            Leading shape of the sample (e.g. ``(N,)`` for an ensemble).
        """
        rng = default_rng(rng)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        z = rng.standard_normal((*shape, self.d))
        return self.sqrt_matmul(z)

    def logpdf(self, v):
        r""":math:`\log \mathcal N(v; 0, C)` for ``v`` of shape ``(..., d)``, shape ``(...)``."""
        z = self.inv_sqrt_matmul(v)
        xp = namespace(z)
        return gaussian_log_density(xp.sum(z * z, axis=-1), self.logdet(), self.d)

    def _check_vec(self, b, name="b"):
        return check_array(b, name, last=self.d, finite=False)

    def __mul__(self, a):
        return self.scaled(a)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.d})"


class ScalarCovariance(Covariance):
    r"""The covariance :math:`\sigma^2 I_d`.

    Parameters
    ----------
    variance : float
        :math:`\sigma^2 > 0`.
    d : int
        Dimension.
    """

    is_diagonal = True

    def __init__(self, variance, d: int):
        self.variance = owned_copy(check_positive(variance, "variance"))
        self.d = check_int(d, "d")

    @property
    def std(self):
        """Standard deviation :math:`\\sigma`."""
        v = self.variance
        return math.sqrt(v) if isinstance(v, (int, float)) else namespace(v).sqrt(v)

    def matmul(self, b):
        return self.variance * self._check_vec(b)

    def solve(self, b):
        return self._check_vec(b) / self.variance

    def sqrt_matmul(self, z):
        return self.std * self._check_vec(z, "z")

    def sqrt_T_matmul(self, g):
        return self.std * self._check_vec(g, "g")

    def inv_sqrt_matmul(self, b):
        return self._check_vec(b) / self.std

    def logdet(self):
        v = self.variance
        log = math.log(v) if isinstance(v, (int, float)) else namespace(v).log(v)
        return self.d * log

    def diagonal(self, xp: str | ModuleType = "numpy", device=None):
        """The diagonal, on backend ``xp`` and ``device`` (default: its default device)."""
        xp = get_namespace(xp)
        device = _device_of(self.variance, device)
        return xp.full((self.d,), self.variance, dtype=xp.float64, device=device)

    def to_dense(self, xp: str | ModuleType = "numpy", device=None):
        """The matrix :math:`\\sigma^2 I` on backend ``xp`` and ``device``."""
        xp = get_namespace(xp)
        device = _device_of(self.variance, device)
        return self.variance * xp.eye(self.d, dtype=xp.float64, device=device)

    def scaled(self, a):
        return ScalarCovariance(a * self.variance, self.d)

    def __repr__(self) -> str:
        return f"ScalarCovariance(variance={self.variance!r}, d={self.d})"


class DiagonalCovariance(Covariance):
    r"""A diagonal covariance :math:`\mathrm{diag}(v_1, \dots, v_d)`.

    Parameters
    ----------
    variances : array, shape (d,)
        Positive variances.
    """

    is_diagonal = True

    def __init__(self, variances):
        check_array(variances, "variances", ndim=1)
        check_positive(variances, "variances")
        variances = owned_copy(variances)
        self.variances = variances
        self.d = int(variances.shape[0])
        self._std = namespace(variances).sqrt(variances)

    def matmul(self, b):
        return self.variances * self._check_vec(b)

    def solve(self, b):
        return self._check_vec(b) / self.variances

    def sqrt_matmul(self, z):
        return self._std * self._check_vec(z, "z")

    def sqrt_T_matmul(self, g):
        return self._std * self._check_vec(g, "g")

    def inv_sqrt_matmul(self, b):
        return self._check_vec(b) / self._std

    def logdet(self):
        xp = namespace(self.variances)
        return xp.sum(xp.log(self.variances))

    def diagonal(self, xp=None, device=None):
        return self.variances

    def to_dense(self, xp=None, device=None):
        xp = namespace(self.variances)
        eye = xp.eye(self.d, dtype=self.variances.dtype, device=array_device(self.variances))
        return eye * self.variances[None, :]

    def scaled(self, a):
        return DiagonalCovariance(a * self.variances)


class DenseCovariance(Covariance):
    r"""A full symmetric positive definite covariance :math:`C = L L^\top` (Cholesky).

    Parameters
    ----------
    C : array, shape (d, d)
        Symmetric positive definite matrix.
    name : str
        Name used in error messages (e.g. ``"C0"``).
    """

    is_diagonal = False

    def __init__(self, C, name: str = "C"):
        check_array(C, name, ndim=2)
        C = owned_copy(C)
        if C.shape[0] != C.shape[1]:
            raise ValueError(f"{name} must be a square matrix, got shape {tuple(C.shape)}")
        xp = namespace(C)
        if not is_traced(C):
            scale = float(xp.max(xp.abs(C)))
            asym = float(xp.max(xp.abs(C - C.T)))
            if asym > 1e-10 * max(scale, 1e-300):
                raise ValueError(f"{name} must be symmetric (max |C - C^T| = {asym:.3g})")
        try:
            L = xp.linalg.cholesky(C)
        except Exception as err:  # NumPy and array-api-strict raise, JAX returns NaN
            raise ValueError(f"{name} must be positive definite") from err
        if not is_traced(L) and not bool(xp.all(xp.isfinite(L))):
            raise ValueError(f"{name} must be positive definite")
        self.C, self.L, self.d = C, L, int(C.shape[0])

    def _rows(self, b):
        """Reshape ``(..., d)`` to ``(d, n)`` columns for matrix routines."""
        xp = namespace(b)
        return xp.reshape(b, (-1, self.d)).T

    def _unrows(self, cols, like):
        xp = namespace(cols)
        return xp.reshape(cols.T, like.shape)

    def matmul(self, b):
        return self._check_vec(b) @ self.C

    def solve(self, b):
        self._check_vec(b)
        y = solve_triangular(self.L, self._rows(b), lower=True)
        z = solve_triangular(self.L.T, y, lower=False)
        return self._unrows(z, b)

    def sqrt_matmul(self, z):
        return self._check_vec(z, "z") @ self.L.T

    def sqrt_T_matmul(self, g):
        return self._check_vec(g, "g") @ self.L

    def inv_sqrt_matmul(self, b):
        self._check_vec(b)
        return self._unrows(solve_triangular(self.L, self._rows(b), lower=True), b)

    def logdet(self):
        xp = namespace(self.L)
        return 2 * xp.sum(xp.log(xp.linalg.diagonal(self.L)))

    def diagonal(self, xp=None, device=None):
        return namespace(self.C).linalg.diagonal(self.C)

    def to_dense(self, xp=None, device=None):
        return self.C

    def scaled(self, a):
        return DenseCovariance(a * self.C)


def as_covariance(C, name: str = "C", d: int | None = None) -> Covariance:
    """Turn ``C`` into a :class:`Covariance`, checking it.

    Parameters
    ----------
    C : Covariance, float, array of shape (d,) or array of shape (d, d)
        A covariance object (returned as is), a variance (times the identity), a vector of
        variances (diagonal) or a full matrix (dense).
    name : str
        Argument name for error messages (``"Q"``, ``"R"``, ``"C0"``...).
    d : int, optional
        Required dimension; compulsory when ``C`` is a number.

    Raises
    ------
    ValueError
        If ``C`` has the wrong dimension, is not positive (definite), not symmetric, or
        holds NaNs.
    """
    if isinstance(C, Covariance):
        cov = C
    elif isinstance(C, (int, float)) or (hasattr(C, "ndim") and C.ndim == 0):
        if d is None:
            raise ValueError(f"{name} is a scalar, so its dimension d must be given")
        if not isinstance(C, (int, float)):
            check_finite(C, name)
        elif not math.isfinite(C):
            raise ValueError(f"{name} must be a positive finite number, got {C!r}")
        if not is_traced(C) and not float(C) > 0:
            raise ValueError(f"{name} must be positive, got {float(C)!r}")
        cov = ScalarCovariance(C, d)
    elif hasattr(C, "ndim") and C.ndim == 1:
        check_array(C, name, ndim=1)
        if not is_traced(C) and not bool(namespace(C).all(C > 0)):
            raise ValueError(f"{name} must have positive variances (all entries > 0)")
        cov = DiagonalCovariance(C)
    elif hasattr(C, "ndim") and C.ndim == 2:
        cov = DenseCovariance(C, name=name)
    else:
        raise TypeError(
            f"{name} must be a Covariance, a positive number, a vector of variances or a "
            f"matrix; got {type(C).__name__}"
        )
    if d is not None and cov.d != d:
        raise ValueError(f"{name} must be {d}-dimensional, got dimension {cov.d}")
    return cov
