"""The matmul-only inverse square root of the ensemble transform against the eigendecomposition.

Tolerance: both routes are backward stable, so they agree to a few hundred units of round-off
relative to the size of the result, times the condition-number bound for the inverse
(``G^{-1}``, the mean weights).
"""

import math

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib.covariance import as_covariance
from dalib.da import LETKF, letkf_analysis, local_observations
from dalib.da import _kernels as K
from dalib.da.localization import _letkf
from dalib.observations import EveryKth

EPS = np.finfo(np.float64).eps


def _scalar_error_after(kappa, steps):
    """Largest error 1 - a z^2 over a in [1/kappa, 1] after the scalar iteration."""
    c0, c1, c2, _ = K.newton_schulz_start(kappa)
    a = np.concatenate([np.linspace(1.0 / kappa, 1.0, 4001),
                        np.geomspace(1.0 / kappa, 1.0, 4001)])
    z = c0 + (c1 + c2 * a) * a
    for _ in range(steps):
        z = z * (3.0 - a * z * z) / 2.0
    return float(np.max(np.abs(1.0 - a * z * z)))


@pytest.mark.parametrize("kappa", [1.0, 1.5, 2.0, 3.0, 40.0, 1e3, 1e6, 1e8])
def test_step_count_is_the_one_the_scalar_iteration_needs(kappa):
    """The stated count reaches float64 accuracy on every eigenvalue; one step less does not."""
    k = K.newton_schulz_steps(kappa)
    assert _scalar_error_after(kappa, k) <= 4 * EPS
    if k > 0:
        assert _scalar_error_after(kappa, k - 1) > 2.0**-53
    assert k <= math.log(kappa) / math.log(9 / 4) + 5


def test_start_error_bound_is_attained():
    """e0 of the start is the maximum of |1 - a p(a)^2| on the interval (a fine grid), and
    p interpolates a^(-1/2) at the three Chebyshev nodes."""
    for kappa in (1.2, 2.0, 3.0, 10.0, 1e4):
        c0, c1, c2, e0 = K.newton_schulz_start(kappa)
        a = np.linspace(1.0 / kappa, 1.0, 200001)
        grid = np.max(np.abs(1.0 - a * (c0 + (c1 + c2 * a) * a) ** 2))
        assert grid <= e0 * (1 + 1e-12) and grid >= e0 * (1 - 1e-6)
        m, r = (1 + 1 / kappa) / 2, (1 - 1 / kappa) / 2
        t = m + r * np.cos(np.pi * np.array([1, 3, 5]) / 6)
        np.testing.assert_allclose(c0 + (c1 + c2 * t) * t, t**-0.5, rtol=1e-12)
    assert K.newton_schulz_steps(2.2) == 3 and K.newton_schulz_steps(3.0) == 4


def _whitened(gen, N, p, scales):
    Yw = gen.standard_normal((N, p)) * scales
    return Yw - Yw.mean(axis=0), gen.standard_normal(p) * scales


@pytest.mark.parametrize("N, p, lo, hi", [(40, 40, 0, 0), (20, 60, -3, 2), (10, 5, -6, 1)])
def test_newton_matches_eigh(xp, N, p, lo, hi):
    """Badly scaled observations (variances over 10^(2 lo) .. 10^(2 hi)) included."""
    gen = np.random.default_rng(N * p)
    Yw, dw = _whitened(gen, N, p, np.logspace(lo, hi, p))
    G = Yw @ Yw.T + (N - 1) * np.eye(N)
    kappa = float(K._spectral_bound(G, N - 1, np)[0, 0]) / (N - 1)
    assert kappa <= K.KAPPA_MAX  # this case takes the Newton-Schulz route
    Yw, dw = dalib.asarray(Yw, xp), dalib.asarray(dw, xp)
    ns = dalib.namespace(Yw)
    w_n, T_n = K.etkf_weights(Yw, dw, N, ns, "newton")
    w_e, T_e = K.etkf_weights(Yw, dw, N, ns, "ensemble")
    np.testing.assert_allclose(npy(T_n), npy(T_e), rtol=0, atol=300 * EPS)
    scale = np.abs(npy(w_e)).max() + 1e-300
    np.testing.assert_allclose(npy(w_n), npy(w_e), rtol=0, atol=300 * EPS * kappa * scale)
    # T = sqrt(N-1) G^{-1/2}: T G T = (N-1) I to round-off (an identity, not the reference)
    TGT = npy(T_n) @ G @ npy(T_n)
    np.testing.assert_allclose(TGT, (N - 1) * np.eye(N), atol=300 * EPS * (N - 1) * kappa)


def test_batched_stack_matches_eigh(xp):
    gen = np.random.default_rng(5)
    c, N, n = 50, 12, 7
    Y = gen.standard_normal((c, N, n)) * np.logspace(-2, 1.5, c)[:, None, None]
    G = Y @ np.swapaxes(Y, 1, 2) + (N - 1) * np.eye(N)
    Gx = dalib.asarray(G, xp)
    ns = dalib.namespace(Gx)
    P = K.inv_sqrt_newton_schulz(Gx, N - 1, ns)
    ref = K._inv_sqrt_eigh(Gx, ns)
    np.testing.assert_allclose(npy(P), npy(ref), rtol=0, atol=300 * EPS)


def test_fallback_beyond_the_condition_bound(xp):
    """Observation variances of 1e-10 push the bound past KAPPA_MAX: the eigh result, exactly."""
    gen = np.random.default_rng(1)
    N, p = 8, 6
    Yw, dw = _whitened(gen, N, p, np.array([1e5, 1, 1, 1, 1, 1e-3]))
    Yw, dw = dalib.asarray(Yw, xp), dalib.asarray(dw, xp)
    ns = dalib.namespace(Yw)
    G = Yw @ Yw.T + (N - 1) * ns.eye(N, dtype=Yw.dtype)
    assert K.inv_sqrt_newton_schulz(G, N - 1, ns) is None
    for a, b in zip(K.etkf_weights(Yw, dw, N, ns, "newton"),
                    K.etkf_weights(Yw, dw, N, ns, "ensemble"), strict=True):
        np.testing.assert_array_equal(npy(a), npy(b))


def test_jit_newton_matches_eigh_and_falls_back():
    """Under jax.jit the count is computed on traced values and lax.cond takes the fallback."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    gen = np.random.default_rng(2)
    N = 10
    f = jax.jit(lambda G: K.inv_sqrt_newton_schulz(G, N - 1, jnp))
    for big in (3.0, 1e6):  # within the bound, then past it (fallback branch)
        Y = gen.standard_normal((4, N, 6)) * big
        G = dalib.asarray(Y @ np.swapaxes(Y, 1, 2) + (N - 1) * np.eye(N), "jax")
        assert G.dtype == jnp.float64
        ref = K._inv_sqrt_eigh(G, jnp)
        np.testing.assert_allclose(np.asarray(f(G)), np.asarray(ref), rtol=1e-11,
                                   atol=300 * EPS)


def test_unknown_space_is_rejected():
    with pytest.raises(ValueError, match="space must be"):
        K.etkf_weights(np.zeros((3, 2)), np.zeros(2), 3, np, "cholesky")


def test_letkf_newton_matches_eigh(xp):
    gen = np.random.default_rng(3)
    N, d = 12, 60
    E = dalib.asarray(gen.standard_normal((N, d)) * 2 + 1, xp)
    h = EveryKth(d, 2)
    y = dalib.asarray(gen.standard_normal(d // 2), xp)
    R = dalib.asarray(np.logspace(-2, 1, d // 2), xp)
    loc = local_observations(d, range(0, d, 2), 4.0, dalib.namespace(E))
    Ea_n = letkf_analysis(E, y, h, R, loc, transform="newton", max_bytes=2**16)
    Ea_e = letkf_analysis(E, y, h, R, loc, transform="eigh")
    np.testing.assert_allclose(npy(Ea_n), npy(Ea_e), rtol=0, atol=1e-12)


def test_letkf_transform_is_checked():
    with pytest.raises(ValueError, match="transform must be"):
        LETKF(N=10, radius=2.0, transform="svd")
    assert "transform='eigh'" in repr(LETKF(N=10, radius=2.0, transform="eigh"))


def test_letkf_newton_fallback_chunk():
    """A chunk past the bound (tiny R) gives the eigh analysis."""
    gen = np.random.default_rng(4)
    N, d = 8, 20
    E = gen.standard_normal((N, d)) * 1e3
    h = EveryKth(d, 1)
    y = gen.standard_normal(d)
    R = as_covariance(np.full(d, 1e-8), "R", d=d)
    loc = local_observations(d, range(d), 3.0, np)
    a = _letkf(E, y, h, R, loc.index, loc.weight, np, transform="newton")
    b = _letkf(E, y, h, R, loc.index, loc.weight, np, transform="eigh")
    np.testing.assert_array_equal(a, b)


def test_spectral_bound_bounds_the_largest_eigenvalue():
    """lower + ||G - lower I||_F and Gershgorin's bound are upper bounds, for any lower bound."""
    gen = np.random.default_rng(6)
    for N, p, scale in ((20, 29, 0.3), (40, 40, 1.0), (8, 3, 100.0)):
        Y = gen.standard_normal((5, N, p)) * scale
        G = Y @ np.swapaxes(Y, 1, 2) + (N - 1) * np.eye(N)
        top = np.linalg.eigvalsh(G)[:, -1]
        for lower in (N - 1, 0.5 * (N - 1), 0.0):
            bound = K._spectral_bound(G, lower, np)[:, 0, 0]
            assert np.all(bound >= top * (1 - 1e-14))
    # A few large eigenvalues above N - 1: the bound is within 25% of the largest.
    Y = gen.standard_normal((N := 20, 2)) * 3.0
    G = Y @ Y.T + (N - 1) * np.eye(N)
    assert K._spectral_bound(G, N - 1, np)[0, 0] <= 1.25 * np.linalg.eigvalsh(G)[-1]
