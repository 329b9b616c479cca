"""Kernels shared by the modules of :mod:`dalib.da`: internal API.

The names here are public *within* ``dalib`` (other modules of the library may import them)
but not part of the user-facing API: they take already validated arguments, may change
without notice, and are not re-exported by :mod:`dalib.da`.  A kernel lives here when two or
more modules of ``dalib.da`` need it; a kernel used by one module stays private there.
"""

from __future__ import annotations

import math

from .._validate import check_array
from ..backend import device as array_device
from ..backend import eigh, get_namespace, is_traced, namespace, solve_triangular
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
    xbar = xp.mean(E, axis=0)
    X = E - xbar
    hE = h(E)
    ybar = xp.mean(hE, axis=0)
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
    The one ETKF transform of dalib, evaluated in one of two equal ways:

    ``space="ensemble"``
        the eigendecomposition :math:`G = V \Lambda V^\top`, :math:`O(N^3)`;
    ``space="auto"`` (the default)
        the observation-space route when there are fewer observations than members
        (:math:`p < N`), else the ensemble-space one;
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
        space = "observation" if Yw.shape[1] < N else "ensemble"
    if space == "newton":
        G = Yw @ Yw.T + (N - 1) * xp.eye(N, dtype=Yw.dtype, device=array_device(Yw))
        P = inv_sqrt_newton_schulz(G, N - 1, xp)
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

# Largest condition-number bound for which the Newton-Schulz route is used; beyond it the
# transforms fall back to the eigendecomposition.  At 1e8 the iteration needs 28 steps.
KAPPA_MAX = 1e8
# Target of the squared-error recursion: below float64's unit round-off.
NS_TOL = 2.0**-53


def newton_schulz_steps(kappa: float, tol: float = NS_TOL) -> int:
    r"""Steps of :func:`inv_sqrt_newton_schulz` for a condition-number bound ``kappa``.

    With the spectrum scaled into :math:`[1/\kappa, 1]`, each eigenvalue :math:`a` of the
    iterate sees the error :math:`e_k = 1 - a z_k^2` of its inverse root :math:`z_k` obey

    .. math::
        e_{k+1} = \tfrac14 (3 e_k^2 + e_k^3), \qquad e_0 = 1 - a \le 1 - 1/\kappa,

    which is increasing in :math:`e_k`, so the smallest eigenvalue is the slowest: the
    count is the first :math:`k` with :math:`e_k \le` ``tol`` from :math:`e_0 = 1-1/\kappa`.
    Far from convergence :math:`1 - e` grows by 9/4 per step, then the error squares:
    about :math:`\log(\kappa)/\log(9/4) + 6` steps (11 for :math:`\kappa = 100`, 28 for
    :math:`10^8`).
    """
    if not kappa >= 1:
        raise ValueError(f"kappa must be a number >= 1, got {kappa!r}")
    e, k = 1.0 - 1.0 / float(kappa), 0
    while e > tol:
        e, k = 0.25 * (3.0 * e * e + e**3), k + 1
    return k


def _spectral_bound(G, xp):
    r"""Upper bound of the largest eigenvalue of symmetric ``G`` (..., n, n), shape (..., 1, 1).

    The smaller of the Frobenius norm (:math:`\lambda_{max} \le \|G\|_F`, within a
    factor :math:`\sqrt n` of it) and Gershgorin's row-sum bound.
    """
    frobenius = xp.sqrt(xp.sum(xp.sum(G * G, axis=-1), axis=-1))
    gershgorin = xp.max(xp.sum(xp.abs(G), axis=-1), axis=-1)
    return xp.minimum(frobenius, gershgorin)[..., None, None]


def _ns_iterate(A, steps, xp):
    r"""Coupled Newton-Schulz: :math:`Z_k \to A^{-1/2}` for a spectrum of ``A`` in (0, 1]."""
    eye = xp.eye(A.shape[-1], dtype=A.dtype, device=array_device(A))
    eye15 = 1.5 * eye
    # Yh = Y_k / 2, so that T_k = 1.5 I - Z_k Yh_k takes one elementwise pass per step.
    Yh, Z = 0.5 * A, xp.zeros_like(A) + eye
    for k in range(steps):
        T = eye15 - Z @ Yh
        Z = T @ Z
        if k + 1 < steps:
            Yh = Yh @ T
    return symmetrize(Z)


def _inv_sqrt_eigh(G, xp):
    s, V = eigh(G)
    return (V / xp.sqrt(s)[..., None, :]) @ xp.matrix_transpose(V)


def inv_sqrt_newton_schulz(G, lower: float, xp, kappa_max: float = KAPPA_MAX):
    r""":math:`G^{-1/2}` of symmetric positive definite ``G`` (..., n, n) from matmuls only.

    ``lower`` is a lower bound of every eigenvalue (for the ETKF's
    :math:`G = \tilde Y \tilde Y^\top + (N-1) I`, :math:`N-1`).  With :math:`s` an upper
    bound (:func:`_spectral_bound`), :math:`A = G/s` has its spectrum in
    :math:`[1/\kappa, 1]`, :math:`\kappa = s/\text{lower}`, and the coupled iteration
    (Higham 2008, *Functions of Matrices*, eq. 6.35)

    .. math::
        Y_0 = A,\; Z_0 = I,\quad T_k = \tfrac12(3I - Z_k Y_k),\quad
        Y_{k+1} = Y_k T_k,\; Z_{k+1} = T_k Z_k

    gives :math:`Z_k \to A^{-1/2}`, so :math:`G^{-1/2} = Z_k/\sqrt s`, after
    :func:`newton_schulz_steps` (:math:`\kappa`) steps for the worst matrix of the batch.

    Returns ``None`` when :math:`\kappa` exceeds ``kappa_max`` (the caller falls back to
    the eigendecomposition).  Inside a JAX trace the bound is not known in advance: the
    loop has the static length of ``kappa_max``'s step count (so that it can be
    differentiated in reverse mode) and updates only for the steps the batch's bound needs,
    and a ``lax.cond`` takes the eigendecomposition instead when it exceeds ``kappa_max``.
    """
    s = _spectral_bound(G, xp)
    A = G / s
    kappa = s / lower
    if not is_traced(G):
        kmax = float(xp.max(kappa))
        if not kmax <= kappa_max:
            return None
        return _ns_iterate(A, newton_schulz_steps(kmax), xp) / xp.sqrt(s)
    import jax

    cap = newton_schulz_steps(kappa_max)
    e, steps = 1.0 - 1.0 / xp.max(kappa), 0
    for _ in range(cap):  # the count of newton_schulz_steps, on traced values
        steps = steps + xp.astype(e > NS_TOL, xp.int32)
        e = 0.25 * (3.0 * e * e + e**3)

    def newton(G):
        A = G / s
        eye = xp.eye(A.shape[-1], dtype=A.dtype)

        def body(k, YZ):
            Yh, Z = YZ
            T = 1.5 * eye - Z @ Yh
            active = k < steps  # a static loop length keeps it reverse-differentiable
            return xp.where(active, Yh @ T, Yh), xp.where(active, T @ Z, Z)

        _, Z = jax.lax.fori_loop(0, cap, body, (0.5 * A, xp.zeros_like(A) + eye))
        return symmetrize(Z) / xp.sqrt(s)

    return jax.lax.cond(xp.max(kappa) <= kappa_max, newton,
                        lambda G: _inv_sqrt_eigh(G, xp), G)


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
