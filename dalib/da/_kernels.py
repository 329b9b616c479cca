"""Kernels shared by the modules of :mod:`dalib.da`: internal API.

The names here are public *within* ``dalib`` (other modules of the library may import them)
but not part of the user-facing API: they take already validated arguments, may change
without notice, and are not re-exported by :mod:`dalib.da`.  A kernel lives here when two or
more modules of ``dalib.da`` need it; a kernel used by one module stays private there.
"""

from __future__ import annotations

import math

from .._validate import check_array
from ..backend import backend_name, eigh, get_namespace, is_traced, namespace, solve_triangular
from ..backend import device as array_device
from ..covariance import Covariance, as_covariance, gaussian_log_density
from ..observations import ObservationOperator
from ..random import default_rng


def observation_matrix(H, xp, d: int | None = None, name: str = "H", device=None):
    """The matrix ``H`` (p, d) of a linear observation operator or of a matrix argument.

    An operator's matrix is made on ``device`` (default: the backend's default device).
    """
    if isinstance(H, ObservationOperator):
        if not H.linear:
            raise TypeError(
                f"{name} must be linear; {type(H).__name__} is nonlinear (use the extended KF, "
                "which linearises h with its Jacobian)"
            )
        return H.matrix(xp, device=device)
    check_array(H, name, ndim=2)
    if d is not None and H.shape[1] != d:
        raise ValueError(f"{name} must have shape (p, {d}), got shape {tuple(H.shape)}")
    return H


def dense(C, xp, d: int, name: str, device=None):
    """A covariance-like argument as a dense (d, d) matrix; ``None`` gives zeros.

    Matrices made here (zeros, scaled identities) are created on ``device``.
    """
    if C is None:
        return xp.zeros((d, d), dtype=xp.float64, device=device)
    return as_covariance(C, name, d=d).to_dense(xp, device=device)


def symmetrize(C):
    """The symmetric part of ``C`` (removes round-off asymmetry)."""
    xp = namespace(C)
    return (C + xp.matrix_transpose(C)) / 2


def chol_solve(L, B):
    """Solve ``(L L^T) Z = B`` for ``Z`` given the lower Cholesky factor ``L``."""
    return solve_triangular(L.T, solve_triangular(L, B, lower=True), lower=False)


def gaussian_update(m, C, v, H, R, xp, return_gain: bool = False):
    r"""The Kalman update of :math:`\mathcal N(m, C)` by an innovation ``v`` (p,) through ``H``.

    .. math::
        S = H C H^\top + R = L L^\top,\qquad K = C H^\top S^{-1},\qquad
        m^a = m + K v,\qquad C^a = (I - KH) C (I - KH)^\top + K R K^\top,

    with one Cholesky factorisation of :math:`S`, which also gives
    :math:`\log \mathcal N(v; 0, S) = -\tfrac12(|L^{-1}v|^2 + \log\det S + p \log 2\pi)`.

    Returns the analysis mean, the Joseph-form analysis covariance and the log-likelihood,
    and the gain ``K`` (d, p) as a fourth value if ``return_gain``.
    """
    d, p = C.shape[0], v.shape[0]
    CHt = C @ H.T  # (d, p)
    S = symmetrize(H @ CHt + R)
    L = xp.linalg.cholesky(S)  # the one factorisation of S
    K = chol_solve(L, CHt.T).T  # K = C H^T S^{-1}
    m_a = m + K @ v
    IKH = xp.eye(d, dtype=C.dtype, device=array_device(C)) - K @ H
    C_a = symmetrize(IKH @ C @ IKH.T + K @ R @ K.T)  # Joseph form
    z = solve_triangular(L, v[:, None], lower=True)[:, 0]  # |z|^2 = v^T S^{-1} v
    logdet = 2 * xp.sum(xp.log(xp.linalg.diagonal(L)))
    loglik = gaussian_log_density(xp.sum(z * z), logdet, p)
    return (m_a, C_a, loglik, K) if return_gain else (m_a, C_a, loglik)


def as_R(R, p: int) -> Covariance:
    """The observation error covariance as a :class:`~dalib.covariance.Covariance`."""
    return as_covariance(R, "R", d=p)


def whitened_obs(E, y, h, R, xp):
    r"""Mean, anomalies, and whitened observation anomalies and innovation of an ensemble.

    Returns :math:`\bar x` (d,), :math:`X = E - \mathbf 1 \bar x^\top` (N, d),
    :math:`\tilde Y` (N, p) with rows :math:`S^{-1} Y_n` and
    :math:`\tilde d = S^{-1}(y - \bar y)` (p,), where :math:`R = S S^\top` is a
    :class:`~dalib.covariance.Covariance`.
    """
    N = E.shape[0]
    xbar = xp.sum(E, axis=0) / N  # xp.mean costs more for small ensembles
    X = E - xbar
    hE = h(E)
    ybar = xp.sum(hE, axis=0) / N
    Yw = R.inv_sqrt_matmul(hE - ybar)
    dw = R.inv_sqrt_matmul(y - ybar)
    return xbar, X, Yw, dw


def etkf_weights_svd(U, sig, delta, N, xp):
    r"""ETKF weights from the thin SVD :math:`\tilde Y = U \Sigma V^\top` (N, p).

    ``delta`` is :math:`V^\top \tilde d`.  :math:`G = \tilde Y\tilde Y^\top + (N-1) I_N`
    has the eigenvalues :math:`\sigma_i^2 + N - 1` on the columns of :math:`U` and
    :math:`N - 1` elsewhere, so :math:`\bar w = U \operatorname{diag}(\sigma_i /
    (\sigma_i^2 + N - 1))\,\delta` and :math:`T = I + U \operatorname{diag}(c_i) U^\top`,
    :math:`c_i = \sqrt{(N-1)/(\sigma_i^2 + N - 1)} - 1`.  The observation-space route of
    :func:`etkf_weights`, and the EnKF-N's update with the singular values scaled by its
    inflation.
    """
    lam = sig * sig + (N - 1)
    w = U @ ((sig / lam) * delta)
    c = xp.sqrt((N - 1) / lam) - 1
    eye = xp.eye(N, dtype=U.dtype, device=array_device(U))
    return w, eye + (U * c) @ U.T


def etkf_weights(Yw, dw, N, xp, space: str = "auto"):
    r"""ETKF weights: :math:`\bar w = G^{-1}\tilde Y \tilde d` and :math:`T = \sqrt{N-1}G^{-1/2}`.

    ``Yw`` holds the whitened observation anomalies :math:`\tilde Y` (N, p) and ``dw`` the
    whitened innovation :math:`\tilde d` (p,); :math:`G = \tilde Y \tilde Y^\top + (N-1) I_N`.
    The one ETKF transform of dalib, evaluated in one of three equal ways:

    ``space="ensemble"``
        the eigendecomposition :math:`G = V \Lambda V^\top`, :math:`O(N^3)`;
    ``space="auto"`` (the default)
        the observation-space route when there are fewer observations than members
        (:math:`p < N`); else Newton-Schulz with NumPy and JAX (on a CPU faster than the
        eigendecomposition: at 40 by 40 its ten to thirteen products take about a third
        of the time of LAPACK's ``eigh``) and the ensemble-space route with CuPy;
    ``space="observation"``
        the thin SVD :math:`\tilde Y = U \Sigma V^\top` (cheaper when :math:`p \ll N`):
        :math:`G` has the eigenvalues :math:`\sigma_i^2 + N - 1` on the columns of
        :math:`U` and :math:`N - 1` elsewhere, so
        :math:`\bar w = U \operatorname{diag}(\sigma_i / (\sigma_i^2 + N - 1)) V^\top
        \tilde d` and :math:`T = I + U \operatorname{diag}(c_i) U^\top`,
        :math:`c_i = \sqrt{(N-1)/(\sigma_i^2 + N - 1)} - 1`.
    ``space="newton"``
        :math:`P = G^{-1/2}` from matmuls only (:func:`inv_sqrt_newton_schulz`, the
        spectrum of :math:`G` bounded below by :math:`N-1`):
        :math:`\bar w = P (P \tilde Y \tilde d)`, :math:`T = \sqrt{N-1}\,P`; it falls
        back to the eigendecomposition when the condition-number bound exceeds
        :data:`KAPPA_MAX`.
    """
    if space not in ("auto", "ensemble", "observation", "newton"):
        raise ValueError(
            "space must be 'auto', 'ensemble', 'observation' or 'newton', got " f"{space!r}"
        )
    if space == "auto":
        if Yw.shape[1] < N:
            space = "observation"
        else:
            space = "newton" if backend_name(xp) in NEWTON_BACKENDS else "ensemble"
    if space == "newton":
        eye = xp.eye(N, dtype=Yw.dtype, device=array_device(Yw))
        P = inv_sqrt_newton_schulz(Yw @ Yw.T + (N - 1) * eye, N - 1, xp, eye=eye)
        if P is not None:
            return P @ (P @ (Yw @ dw)), math.sqrt(N - 1) * P
    if space == "observation":
        U, sig, Vt = xp.linalg.svd(Yw, full_matrices=False)
        return etkf_weights_svd(U, sig, Vt @ dw, N, xp)
    s, V = xp.linalg.eigh(Yw @ Yw.T)  # G = V diag(s + N - 1) V^T
    lam = s + (N - 1)
    w = V @ ((V.T @ (Yw @ dw)) / lam)
    T = (V * xp.sqrt((N - 1) / lam)) @ V.T
    return w, T


# Matmul-only inverse square root ------------------------------------------------------

# Backends on which the transforms take Newton-Schulz by default ("auto"): faster than the
# eigendecomposition with NumPy and under JAX's compiler (benchmarks/vs_dapper.py).  On a
# GPU the step count needs the batch's condition number on the host, a read that would
# stall the loop every cycle, so CuPy keeps the eigendecomposition.
NEWTON_BACKENDS = ("numpy", "jax")

# Largest condition-number bound for which the Newton-Schulz route is used; beyond it the
# transforms fall back to the eigendecomposition.  At 1e8 the iteration needs 25 steps.
KAPPA_MAX = 1e8
# Target of the squared-error recursion: below float64's unit round-off.
NS_TOL = 2.0**-53
# Step counts compiled under a JAX trace; a batch runs the smallest that covers its need
# (more steps than needed leave a converged iterate as it is).
TRACED_STEPS = (3, 4, 5, 6, 8, 11, 16)


class _Floats:
    """The four functions :func:`newton_schulz_start` needs, on Python floats."""

    sqrt, abs = staticmethod(math.sqrt), staticmethod(abs)
    maximum, minimum = staticmethod(max), staticmethod(min)


def newton_schulz_start(kappa, xp=_Floats):
    r"""The quadratic start :math:`Z_0 = c_0 I + c_1 A + c_2 A^2` of :func:`inv_sqrt_newton_schulz`.

    For a spectrum of :math:`A` in :math:`[a_0, 1]`, :math:`a_0 = 1/\kappa`, the parabola
    :math:`p(a) = c_0 + c_1 a + c_2 a^2` interpolates :math:`a^{-1/2}` at the three
    Chebyshev nodes :math:`t_k = m + r\cos(\pi(2k+1)/6)` of the interval (midpoint
    :math:`m`, half-length :math:`r`), so that the initial error

    .. math::
        e_0 = \max_{a \in [a_0, 1]} |1 - a\,p(a)^2|

    is 0.007 for :math:`\kappa = 2` and 0.03 for :math:`\kappa = 3`, against
    :math:`1 - 1/\kappa` for the plain start :math:`Z_0 = I`: three or four steps fewer,
    for the price of one product (:math:`A^2`).  The divided differences of
    :math:`a^{-1/2}` are written without cancellation (with :math:`u, v, w` the roots of
    the nodes, :math:`f[t_0,t_1] = -1/(uv(u+v))` and
    :math:`f[t_0,t_1,t_2] = (u+v+w)/(uvw(u+v)(v+w)(u+w))`), so :math:`\kappa \to 1` is
    safe.  :math:`e_0` is the largest of :math:`|1 - a p(a)^2|` at the ends and at the
    real roots of :math:`p` and of :math:`p + 2ap'` (the stationary points), clipped to
    the interval.

    Parameters
    ----------
    kappa : float or scalar array
        Condition-number bound (at least 1); a traced JAX scalar with ``xp`` its namespace.
    xp : namespace, optional
        Functions ``sqrt``, ``abs``, ``maximum``, ``minimum`` (default: on Python floats).

    Returns
    -------
    c0, c1, c2, e0
    """
    a0 = 1.0 / kappa
    mid, half = (1.0 + a0) / 2, (1.0 - a0) / 2 * (math.sqrt(3.0) / 2)
    t0, t1, t2 = mid - half, mid, mid + half
    u, v, w = xp.sqrt(t0), xp.sqrt(t1), xp.sqrt(t2)
    d1 = -1.0 / (u * v * (u + v))
    d2 = (u + v + w) / (u * v * w * (u + v) * (v + w) * (u + w))
    # Newton's form f(t0) + d1 (a - t0) + d2 (a - t0)(a - t1), in powers of a:
    c0, c1, c2 = 1.0 / u - d1 * t0 + d2 * t0 * t1, d1 - d2 * (t0 + t1), d2

    def error(a):
        a = xp.minimum(xp.maximum(a, a0), 1.0)
        p = c0 + (c1 + c2 * a) * a
        return xp.abs(1.0 - a * p * p)

    e0 = xp.maximum(error(a0), error(1.0))
    for qa, qb, qc in ((c2, c1, c0), (5.0 * c2, 3.0 * c1, c0)):  # p and p + 2 a p'
        root = xp.sqrt(xp.maximum(qb * qb - 4.0 * qa * qc, 0.0))
        e0 = xp.maximum(e0, xp.maximum(error((-qb - root) / (2.0 * qa)),
                                       error((-qb + root) / (2.0 * qa))))
    return c0, c1, c2, e0


def _next_error(e):
    """One step of the error recursion of :func:`newton_schulz_steps`."""
    return 0.25 * (3.0 * e * e + e**3)


def _steps_from_error(e, tol=NS_TOL) -> int:
    k = 0
    while e > tol:
        e, k = _next_error(e), k + 1
    return k


def newton_schulz_steps(kappa: float, tol: float = NS_TOL) -> int:
    r"""Steps of :func:`inv_sqrt_newton_schulz` for a condition-number bound ``kappa``.

    With the spectrum scaled into :math:`[1/\kappa, 1]`, each eigenvalue :math:`a` of the
    iterate sees the error :math:`e_k = 1 - a z_k^2` of its inverse root :math:`z_k` obey

    .. math::
        e_{k+1} = \tfrac14 (3 e_k^2 + e_k^3),

    which is increasing in :math:`|e_k|` (and :math:`e_1 \ge 0`), so the count is the
    first :math:`k` with :math:`e_k \le` ``tol`` from the largest initial error,
    :math:`e_0` of :func:`newton_schulz_start`.  Far from convergence :math:`1 - e` grows
    by 9/4 per step, then the error squares: 3 steps for :math:`\kappa \le 2.2`, 4 for
    :math:`\kappa \le 5`, 8 for :math:`\kappa = 100`, 25 for :math:`10^8`.
    """
    if not kappa >= 1:
        raise ValueError(f"kappa must be a number >= 1, got {kappa!r}")
    return _steps_from_error(newton_schulz_start(float(kappa))[3], tol)


def _spectral_bound(G, lower, xp, eye=None):
    r"""Upper bound of the largest eigenvalue of symmetric ``G`` (..., n, n), shape (..., 1, 1).

    With ``lower`` a lower bound of the spectrum and :math:`M = G - \text{lower}\, I`,
    :math:`\lambda_{max}(G) = \text{lower} + \lambda_{max}(M) \le \text{lower} +
    \|M\|_F`, tight when few eigenvalues stand above ``lower`` (the ETKF's
    :math:`G = \tilde Y\tilde Y^\top + (N-1) I` for Lorenz-96: within 25% of the
    largest eigenvalue, where :math:`\|G\|_F` exceeds it by a factor of about
    :math:`\sqrt N`); the smaller of this and Gershgorin's row-sum bound.  ``eye``: the
    identity of ``G``'s size, if the caller has one.
    """
    eye = _identity(G, xp) if eye is None else eye
    M = G - lower * eye
    frobenius = lower + xp.sqrt(xp.sum(xp.sum(M * M, axis=-1), axis=-1))
    gershgorin = xp.max(xp.sum(xp.abs(G), axis=-1), axis=-1)
    return xp.minimum(frobenius, gershgorin)[..., None, None]


def _identity(G, xp):
    return xp.eye(G.shape[-1], dtype=G.dtype, device=array_device(G))


def _ns_iterate(A, steps: int, coefs, eye):
    r"""Coupled Newton-Schulz from :math:`Z_0 = c_0 I + c_1 A + c_2 A^2`, to :math:`A^{-1/2}`."""
    c0, c1, c2 = coefs
    eye15 = 1.5 * eye
    Z = c0 * eye + c1 * A + c2 * (A @ A)
    if steps == 0:
        return symmetrize(Z)
    # Yh = Y_k / 2 with Y_k = A Z_k, so that T_k = 1.5 I - Z_k Yh_k is one elementwise pass.
    Yh = (0.5 * A) @ Z
    for k in range(steps):
        T = eye15 - Z @ Yh
        Z = T @ Z
        if k + 1 < steps:
            Yh = Yh @ T
    return symmetrize(Z)


def _inv_sqrt_eigh(G, xp):
    s, V = eigh(G)
    return (V / xp.sqrt(s)[..., None, :]) @ xp.matrix_transpose(V)


def inv_sqrt_newton_schulz(G, lower: float, xp, kappa_max: float = KAPPA_MAX, eye=None):
    r""":math:`G^{-1/2}` of symmetric positive definite ``G`` (..., n, n) from matmuls only.

    ``lower`` is a lower bound of every eigenvalue (for the ETKF's
    :math:`G = \tilde Y \tilde Y^\top + (N-1) I`, :math:`N-1`).  With :math:`s` an upper
    bound (:func:`_spectral_bound`), :math:`A = G/s` has its spectrum in
    :math:`[1/\kappa, 1]`, :math:`\kappa = s/\text{lower}`, and the coupled iteration
    (Higham 2008, *Functions of Matrices*, eq. 6.35, here from the quadratic start of
    :func:`newton_schulz_start`, which commutes with :math:`A`)

    .. math::
        Z_0 = c_0 I + c_1 A + c_2 A^2,\; Y_0 = A Z_0,\quad T_k = \tfrac12(3I - Z_k Y_k),\quad
        Y_{k+1} = Y_k T_k,\; Z_{k+1} = T_k Z_k

    gives :math:`Z_k \to A^{-1/2}` (and :math:`Y_k = A Z_k`), so
    :math:`G^{-1/2} = Z_k/\sqrt s`, after :func:`newton_schulz_steps` (:math:`\kappa`)
    steps for the worst matrix of the batch: :math:`3k + 1` matrix products.

    ``eye``: the identity of ``G``'s size, if the caller has one.

    Returns ``None`` when :math:`\kappa` exceeds ``kappa_max`` (the caller falls back to
    the eigendecomposition).  Inside a JAX trace the bound is not known in advance: the
    count is computed on traced values and a ``lax.switch`` runs the smallest of the step
    counts :data:`TRACED_STEPS` (or that of ``kappa_max``) that covers it, or the
    eigendecomposition when :math:`\kappa` exceeds ``kappa_max``; every branch has a
    static length, so the result can be differentiated in reverse mode.
    """
    eye = _identity(G, xp) if eye is None else eye
    s = _spectral_bound(G, lower, xp, eye)
    kappa = s / lower
    if not is_traced(G):
        kmax = float(xp.max(kappa))
        if not kmax <= kappa_max:
            return None
        *coefs, e0 = newton_schulz_start(kmax)
        return _ns_iterate(G / s, _steps_from_error(e0), coefs, eye) / xp.sqrt(s)
    import jax

    cap = newton_schulz_steps(kappa_max)
    kmax = xp.max(kappa)
    *coefs, e = newton_schulz_start(xp.maximum(kmax, 1.0), xp)
    steps = 0
    for _ in range(cap):  # the count of newton_schulz_steps, on traced values
        steps = steps + xp.astype(e > NS_TOL, xp.int32)
        e = _next_error(e)
    counts = (*(n for n in TRACED_STEPS if n < cap), cap)

    def newton(n):
        return lambda G: _ns_iterate(G / s, n, coefs, eye) / xp.sqrt(s)

    branches = [newton(n) for n in counts] + [lambda G: _inv_sqrt_eigh(G, xp)]
    index = sum(xp.astype(steps > n, xp.int32) for n in counts[:-1])
    index = xp.where(kmax <= kappa_max, index, len(counts))
    return jax.lax.switch(index, branches, G)


def log_evidence_whitened(Yw, dw, N, R, xp):
    r""":math:`\log \mathcal N(y; \bar y, \tfrac{1}{N-1} Y^\top Y + R)` from whitened anomalies.

    ``Yw`` (N, p) and ``dw`` (p,) are :math:`\tilde Y` and :math:`\tilde d` of
    :func:`whitened_obs` and ``R`` the :class:`~dalib.covariance.Covariance` that whitened
    them.  With :math:`S = \tfrac1{N-1} Y^\top Y + R` and
    :math:`G = \tilde Y\tilde Y^\top + (N-1)I_N`, the Woodbury and Sylvester identities give

    .. math::
        (y-\bar y)^\top S^{-1}(y-\bar y) = \tilde d^\top\tilde d
            - (\tilde Y\tilde d)^\top G^{-1}(\tilde Y\tilde d), \qquad
        \log\det S = \log\det R + \log\det G - N\log(N-1),

    so only the ``N``-by-``N`` :math:`G` is factorised (Cholesky), or, when ``p < N``,
    the ``p``-by-``p`` :math:`I_p + \tilde Y^\top\tilde Y/(N-1)`.
    """
    p = dw.shape[0]
    dev = array_device(Yw)
    if p < N:
        L = xp.linalg.cholesky(xp.eye(p, dtype=Yw.dtype, device=dev) + (Yw.T @ Yw) / (N - 1))
        z = solve_triangular(L, dw[:, None], lower=True)[:, 0]
        quad = xp.sum(z * z)
        logdet = 2 * xp.sum(xp.log(xp.linalg.diagonal(L)))
    else:
        L = xp.linalg.cholesky(Yw @ Yw.T + (N - 1) * xp.eye(N, dtype=Yw.dtype, device=dev))
        z = solve_triangular(L, (Yw @ dw)[:, None], lower=True)[:, 0]
        quad = xp.sum(dw * dw) - xp.sum(z * z)
        logdet = 2 * xp.sum(xp.log(xp.linalg.diagonal(L))) - N * math.log(N - 1)
    return gaussian_log_density(quad, logdet + R.logdet(), p)


def inflate_anomalies(E, factor, xp):
    r"""Multiplicative inflation :math:`\bar x + \alpha (E_n - \bar x)` of an ensemble (..., N, d).

    The one implementation of multiplicative inflation on an ensemble; callers validate
    ``factor``.
    """
    m = xp.mean(E, axis=-2, keepdims=True)
    return m + factor * (E - m)


def cov_spread(C, xp):
    r"""Root of the mean variance, :math:`\sqrt{\operatorname{tr}(C)/d}`, of a covariance."""
    return xp.sqrt(xp.mean(xp.linalg.diagonal(C)))


def check_ensemble(E, name: str = "E", d: int | None = None, min_members: int = 2):
    """Validate an ensemble ``(N, d)``."""
    check_array(E, name, ndim=2, last=d)
    if E.shape[0] < min_members:
        raise ValueError(
            f"{name} must have at least {min_members} members (rows), got shape {tuple(E.shape)}"
        )
    return E


def random_rotation(N: int, rng, xp="numpy", device=None):
    r"""A random orthogonal ``N``-by-``N`` :math:`\Omega` with :math:`\Omega\mathbf 1 = \mathbf 1`.

    Rotating the analysis anomalies, :math:`X^a \leftarrow \Omega X^a`, keeps the ensemble
    mean and covariance but mixes the members, which stops the symmetric ETKF from
    preserving outliers cycle after cycle (Sakov and Oke 2008, Mon. Wea. Rev. 136, 1042-1053).
    :math:`\Omega = \tfrac1N \mathbf 1\mathbf 1^\top + U Q U^\top` with :math:`U` an
    orthonormal basis of the complement of :math:`\mathbf 1` and :math:`Q` Haar-distributed.

    Parameters
    ----------
    N : int
        Ensemble size.
    rng : int or dalib.random.Generator
        Randomness.
    xp : str or module
        Backend.
    device : optional
        Device of the result (default: the backend's default device).
    """
    xp = get_namespace(xp)
    rng = default_rng(rng, xp, device)
    ones = xp.ones((N, 1), dtype=xp.float64, device=device)
    eye = xp.eye(N, dtype=xp.float64, device=device)
    # U: the last N - 1 columns of an orthonormal basis whose first column is 1 / sqrt(N).
    basis, _ = xp.linalg.qr(xp.concat([ones, eye[:, : N - 1]], axis=1))
    U = basis[:, 1:]
    Q, Rq = xp.linalg.qr(rng.standard_normal((N - 1, N - 1)))
    Q = Q * xp.sign(xp.linalg.diagonal(Rq))  # Haar measure (Mezzadri 2007)
    return ones @ ones.T / N + U @ Q @ U.T
