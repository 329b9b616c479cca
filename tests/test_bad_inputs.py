"""Bad inputs to the public API: each gets a clear error naming the argument, or a right answer.

A case is ``(name, run, error, match)``: ``run(xp)`` either raises ``error`` with a message
matching ``match`` (which names the offending argument), or, when ``error`` is ``None``,
returns normally after asserting that its result is right.  Array cases run on every
backend of the ``xp`` fixture; cases without array code run once.
"""

import math
import warnings

import numpy as np
import pytest
from conftest import npy

import dalib
from dalib import metrics
from dalib.covariance import (
    Covariance,
    DenseCovariance,
    DiagonalCovariance,
    ScalarCovariance,
    as_covariance,
)
from dalib.da import (
    ETKF,
    LETKF,
    BootstrapPF,
    EnKF,
    FilterDivergenceError,
    FilterDivergenceWarning,
    KalmanFilter,
    OptimalPF,
    ThreeDVar,
    assimilate,
    bootstrap_log_weights,
    cycled_fourdvar,
    effective_sample_size,
    enkf_analysis,
    etkf_analysis,
    fourdvar_analysis,
    fourdvar_cost,
    kalman_filter,
    kf_analysis,
    kf_forecast,
    letkf_analysis,
    local_observations,
    normalize_log_weights,
    optimal_proposal,
    systematic_resample,
)
from dalib.exercises import ch01, ch02, ch04, ch07
from dalib.learning import AdaptiveETKF, ConvergenceWarning, em_linear_gaussian
from dalib.models import LinearModel, Lorenz63, Lorenz96, Lorenz96TwoScale, RK4Map
from dalib.observations import Elementwise, EveryKth, Identity, Matrix, ObservationOperator, Subset
from dalib.ssm import StateSpaceModel, TwinExperiment

NAN, INF = float("nan"), float("inf")


def arr(xp, values):
    return xp.asarray(np.asarray(values, dtype=float))


def spd(d, seed=0):
    G = np.random.default_rng(seed).standard_normal((d, d))
    return G @ G.T / d + np.eye(d)


def mutable(xp) -> bool:
    """Whether the backend's arrays can be edited in place (JAX's cannot)."""
    return dalib.backend.backend_name(xp) != "jax"


# ----------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------


def _linear_model_keeps_a_copy(xp):
    A = arr(xp, np.eye(2))
    M = LinearModel(A)
    if mutable(xp):
        A[0, 0] = 100.0
    np.testing.assert_allclose(npy(M(arr(xp, [1.0, 2.0]))), [1.0, 2.0])


class _NoAdjointODE:
    d = 3

    def rhs(self, x):
        return -x


MODEL_CASES = [
    ("lorenz96 d < 4", lambda xp: Lorenz96(d=3), ValueError, r"d must be an integer >= 4"),
    ("lorenz96 F nan", lambda xp: Lorenz96(F=NAN), ValueError, r"F must be a finite"),
    ("lorenz96 F array nan", lambda xp: Lorenz96(d=4, F=arr(xp, [8, 8, NAN, 8])),
     ValueError, r"F contains NaN"),
    ("lorenz96 F string", lambda xp: Lorenz96(F="8"), TypeError, r"F must be a number"),
    ("setups.lorenz96 F nan", lambda xp: dalib.setups.lorenz96(F=NAN), ValueError,
     r"F must be a finite"),
    ("lorenz63 rho inf", lambda xp: Lorenz63(rho=INF), ValueError, r"rho must be a finite"),
    ("two-scale b 0", lambda xp: Lorenz96TwoScale(b=0.0), ValueError, r"b must not be zero"),
    ("two-scale c nan", lambda xp: Lorenz96TwoScale(c=NAN), ValueError, r"c must be a finite"),
    ("linear A not square", lambda xp: LinearModel(arr(xp, np.ones((2, 3)))), ValueError,
     r"A must be square"),
    ("linear A nan", lambda xp: LinearModel(arr(xp, [[1, NAN], [0, 1]])), ValueError,
     r"A contains NaN"),
    ("linear A copied", _linear_model_keeps_a_copy, None, None),
    ("rk4 dt 0", lambda xp: RK4Map(Lorenz63(), dt=0.0), ValueError, r"dt must be positive"),
    ("rk4 dt inf", lambda xp: RK4Map(Lorenz63(), dt=INF), ValueError,
     r"dt must be positive and finite"),
    ("rk4 steps 0", lambda xp: RK4Map(Lorenz63(), dt=0.1, steps=0), ValueError,
     r"steps must be an integer >= 1"),
    ("rk4 vjp without rhs_vjp",
     lambda xp: RK4Map(_NoAdjointODE(), 0.1).vjp(arr(xp, [1, 2, 3]), arr(xp, [1, 0, 0])),
     TypeError, r"RK4Map.vjp needs the model's rhs_vjp"),
    ("rk4 jvp without rhs_jvp",
     lambda xp: RK4Map(_NoAdjointODE(), 0.1).jvp(arr(xp, [1, 2, 3]), arr(xp, [1, 0, 0])),
     TypeError, r"RK4Map.jvp needs the model's rhs_jvp"),
    ("lorenz96 rhs wrong size", lambda xp: Lorenz96(d=10).rhs(arr(xp, np.ones(9))),
     ValueError, r"x must have shape \(\.\.\., 10\)"),
]


# ----------------------------------------------------------------------------------------
# Observation operators
# ----------------------------------------------------------------------------------------


def _matrix_keeps_a_copy(xp):
    H = arr(xp, [[1.0, 0.0]])
    h = Matrix(H)
    if mutable(xp):
        H[0, 0] = 7.0
    np.testing.assert_allclose(npy(h(arr(xp, [2.0, 3.0]))), [2.0])


OBSERVATION_CASES = [
    ("identity d 0", lambda xp: Identity(0), ValueError, r"d must be an integer >= 1"),
    ("everykth k 0", lambda xp: EveryKth(10, 0), ValueError, r"k must be an integer >= 1"),
    ("everykth offset", lambda xp: EveryKth(10, 2, offset=10), ValueError,
     r"offset must be smaller"),
    ("subset empty", lambda xp: Subset(5, []), ValueError, r"indices must not be empty"),
    ("subset repeated", lambda xp: Subset(5, [1, 1]), ValueError, r"indices must be distinct"),
    ("subset outside", lambda xp: Subset(5, [5]), ValueError, r"indices must lie in 0\.\.4"),
    ("matrix 1-d", lambda xp: Matrix(arr(xp, [1.0, 2.0])), ValueError,
     r"H must have 2 dimension"),
    ("matrix nan", lambda xp: Matrix(arr(xp, [[1.0, NAN]])), ValueError, r"H contains NaN"),
    ("matrix H copied", _matrix_keeps_a_copy, None, None),
    ("elementwise g", lambda xp: Elementwise(Identity(3), g="exp"), ValueError,
     r"g must be one of"),
    ("elementwise base", lambda xp: Elementwise(Elementwise(Identity(3))), TypeError,
     r"base must be a linear"),
    ("identity wrong x", lambda xp: Identity(4)(arr(xp, np.ones(3))), ValueError,
     r"x must have shape \(\.\.\., 4\)"),
]


# ----------------------------------------------------------------------------------------
# Covariances
# ----------------------------------------------------------------------------------------


def _diagonal_keeps_a_copy(xp):
    v = arr(xp, [1.0, 2.0])
    C = DiagonalCovariance(v)
    if mutable(xp):
        v[0] = -5.0
    np.testing.assert_allclose(npy(C.diagonal(xp)), [1.0, 2.0])


def _dense_keeps_a_copy(xp):
    M = arr(xp, [[2.0, 0.5], [0.5, 1.0]])
    C = DenseCovariance(M, "C0")
    if mutable(xp):
        M[0, 1] = 9.0
    np.testing.assert_allclose(npy(C.to_dense(xp)), [[2.0, 0.5], [0.5, 1.0]])
    assert float(C.logdet()) == pytest.approx(math.log(1.75))


COVARIANCE_CASES = [
    ("scalar negative", lambda xp: as_covariance(-1.0, "R", d=2), ValueError,
     r"R must be positive"),
    ("scalar inf", lambda xp: as_covariance(INF, "R", d=2), ValueError,
     r"R must be a positive finite"),
    ("scalar nan", lambda xp: as_covariance(NAN, "R", d=2), ValueError,
     r"R must be a positive finite"),
    ("scalar without d", lambda xp: as_covariance(2.0, "R"), ValueError,
     r"R is a scalar, so its dimension d must be given"),
    ("variances not positive", lambda xp: as_covariance(arr(xp, [1.0, -1.0]), "R"),
     ValueError, r"R must have positive variances"),
    ("variances nan", lambda xp: as_covariance(arr(xp, [1.0, NAN]), "R"), ValueError,
     r"R contains NaN"),
    ("matrix not symmetric", lambda xp: as_covariance(arr(xp, [[1, 0.5], [0, 1]]), "C0"),
     ValueError, r"C0 must be symmetric"),
    ("matrix indefinite", lambda xp: as_covariance(arr(xp, [[1, 2], [2, 1]]), "C0"),
     ValueError, r"C0 must be positive definite"),
    ("matrix wrong d", lambda xp: as_covariance(arr(xp, np.eye(3)), "R", d=2), ValueError,
     r"R must be 2-dimensional"),
    ("3-d array", lambda xp: as_covariance(arr(xp, np.ones((2, 2, 2))), "Q"), TypeError,
     r"Q must be a Covariance"),
    ("string", lambda xp: as_covariance("1", "R", d=2), TypeError, r"R must be a Covariance"),
    ("scalar class inf", lambda xp: ScalarCovariance(INF, 3), ValueError,
     r"variance must be positive and finite"),
    ("abstract base", lambda xp: Covariance(), TypeError, r"abstract"),
    ("matmul wrong size", lambda xp: ScalarCovariance(1.0, 3).matmul(arr(xp, np.ones(2))),
     ValueError, r"b must have shape \(\.\.\., 3\)"),
    ("diagonal copied", _diagonal_keeps_a_copy, None, None),
    ("dense copied", _dense_keeps_a_copy, None, None),
]


# ----------------------------------------------------------------------------------------
# State-space models and twin experiments
# ----------------------------------------------------------------------------------------


class _ShortOperator(ObservationOperator):
    """Claims p = 3 observations but returns 2."""

    d, p = 3, 3

    def __call__(self, x):
        return x[..., :2]

    def vjp(self, x, w):
        return w


def _ssm(xp, **changes):
    kw = dict(M=LinearModel(arr(xp, 0.9 * np.eye(3))), h=Identity(3), R=1.0,
              m0=arr(xp, np.zeros(3)), C0=1.0, Q=0.1)
    kw.update(changes)
    return StateSpaceModel(**kw)


SSM_CASES = [
    ("h dimension", lambda xp: _ssm(xp, h=Identity(4)), ValueError, r"h acts on dimension 4"),
    ("h wrong size", lambda xp: _ssm(xp, h=_ShortOperator()), ValueError,
     r"h must map a state .* h\(m0\) has shape \(2,\)"),
    ("h not operator", lambda xp: _ssm(xp, h=lambda x: x), TypeError,
     r"h must be an ObservationOperator"),
    ("m0 nan", lambda xp: _ssm(xp, m0=arr(xp, [0.0, NAN, 0.0])), ValueError,
     r"m0 contains NaN"),
    ("M dimension", lambda xp: _ssm(xp, M=LinearModel(arr(xp, np.eye(2)))), ValueError,
     r"M acts on dimension 2 but m0 has dimension 3"),
    ("simulate J 0", lambda xp: _ssm(xp).simulate(0, rng=1), ValueError,
     r"J must be an integer >= 1"),
    ("R inf", lambda xp: _ssm(xp, R=INF), ValueError, r"R must be a positive finite"),
]


# ----------------------------------------------------------------------------------------
# Kalman filter
# ----------------------------------------------------------------------------------------


def _kf_args(xp):
    return arr(xp, [0.0, 1.0]), arr(xp, spd(2)), arr(xp, [0.5, 0.2]), arr(xp, np.eye(2))


def _kf_zero_covariance(xp):
    m, _, y, H = _kf_args(xp)
    m_a, C_a, _ = kf_analysis(m, arr(xp, np.zeros((2, 2))), y, H, 1.0)
    np.testing.assert_allclose(npy(m_a), npy(m), atol=1e-15)  # a certain forecast stays
    np.testing.assert_allclose(npy(C_a), 0.0, atol=1e-15)


KALMAN_CASES = [
    ("kf C not symmetric",
     lambda xp: kf_analysis(*_kf_args(xp)[:1], arr(xp, [[1, 2], [0, 1]]),
                            *_kf_args(xp)[2:], 1.0),
     ValueError, r"C must be symmetric"),
    ("kf C indefinite",
     lambda xp: kf_analysis(*_kf_args(xp)[:1], arr(xp, [[1, 2], [2, 1]]),
                            *_kf_args(xp)[2:], 1.0),
     ValueError, r"C must be positive semi-definite"),
    ("kf R inf", lambda xp: kf_analysis(*_kf_args(xp), INF), ValueError,
     r"R must be a positive finite"),
    ("kf y size", lambda xp: kf_analysis(*_kf_args(xp)[:2], arr(xp, [1.0]),
                                         _kf_args(xp)[3], 1.0),
     ValueError, r"y must have shape \(\.\.\., 2\)"),
    ("kf C shape", lambda xp: kf_analysis(arr(xp, [0.0, 0, 0]), arr(xp, np.eye(2)),
                                          arr(xp, [1.0]), arr(xp, [[1.0, 0, 0]]), 1.0),
     ValueError, r"C must have shape \(3, 3\)"),
    ("kf H width", lambda xp: kf_analysis(*_kf_args(xp)[:3], arr(xp, np.eye(3)), 1.0),
     ValueError, r"H must have shape \(p, 2\)"),
    ("kf zero covariance", _kf_zero_covariance, None, None),
    ("kf_forecast A shape",
     lambda xp: kf_forecast(*_kf_args(xp)[:2], arr(xp, np.eye(3))), ValueError,
     r"A must have shape \(2, 2\)"),
    ("kalman_filter J 0",
     lambda xp: kalman_filter(_ssm(xp), arr(xp, np.zeros((0, 3)))), ValueError,
     r"y must hold at least one observation"),
    ("kalman_filter nonlinear",
     lambda xp: kalman_filter(_ssm(xp, M=RK4Map(Lorenz63(), 0.01)), arr(xp, np.zeros((2, 3)))),
     TypeError, r"the Kalman filter needs a linear model"),
]


def test_kf_analysis_refuses_mixed_backends():
    jnp = pytest.importorskip("jax.numpy")
    m, C, y, H = _kf_args(np)
    with pytest.raises(TypeError, match=r"one backend, got m \(numpy\).*y \(jax\)"):
        kf_analysis(m, C, jnp.asarray(y), H, 1.0)


# ----------------------------------------------------------------------------------------
# Particle weights
# ----------------------------------------------------------------------------------------


def _partial_minus_inf(xp):
    out = npy(normalize_log_weights(arr(xp, [0.0, -INF, math.log(3.0)])))
    np.testing.assert_allclose(np.exp(out), [0.25, 0.0, 0.75], rtol=1e-12)


def _bootstrap_args(xp, N=4):
    E = arr(xp, np.arange(N * 2).reshape(N, 2) / 4)
    return arr(xp, np.zeros(N)), E, arr(xp, [0.1, 0.2]), Identity(2), 1.0


ALL_MINUS_INF = [-INF, -INF, -INF]
PARTICLE_CASES = [
    ("normalize all -inf", lambda xp: normalize_log_weights(arr(xp, ALL_MINUS_INF)),
     ValueError, r"logw is -inf for every particle"),
    ("normalize nan", lambda xp: normalize_log_weights(arr(xp, [0.0, NAN])), ValueError,
     r"logw contains NaN"),
    ("normalize +inf", lambda xp: normalize_log_weights(arr(xp, [0.0, INF])), ValueError,
     r"logw contains \+inf"),
    ("normalize empty", lambda xp: normalize_log_weights(arr(xp, np.zeros(0))), ValueError,
     r"logw must hold at least one"),
    ("normalize some -inf", _partial_minus_inf, None, None),
    ("ess all -inf", lambda xp: effective_sample_size(arr(xp, ALL_MINUS_INF)), ValueError,
     r"logw is -inf for every particle"),
    ("ess nan", lambda xp: effective_sample_size(arr(xp, [NAN, NAN])), ValueError,
     r"logw contains NaN"),
    ("resample all -inf", lambda xp: systematic_resample(arr(xp, ALL_MINUS_INF), rng=1),
     ValueError, r"logw is -inf for every particle"),
    ("resample nan", lambda xp: systematic_resample(arr(xp, [0.0, NAN, 0.0]), rng=1),
     ValueError, r"logw contains NaN"),
    ("bootstrap all -inf",
     lambda xp: bootstrap_log_weights(arr(xp, [-INF] * 4), *_bootstrap_args(xp)[1:]),
     ValueError, r"logw is -inf for every particle"),
    ("bootstrap logw length",
     lambda xp: bootstrap_log_weights(arr(xp, np.zeros(3)), *_bootstrap_args(xp)[1:]),
     ValueError, r"logw must have one entry per particle"),
    ("bootstrap h size",
     lambda xp: bootstrap_log_weights(*_bootstrap_args(xp)[:3], lambda E: E[:, :1], 1.0),
     ValueError, r"h\(E\) must have shape \(4, 2\)"),
    ("optimal proposal Q None",
     lambda xp: optimal_proposal(arr(xp, np.eye(2)), None, 1.0), ValueError,
     r"Q must not be None"),
]


# ----------------------------------------------------------------------------------------
# Ensemble Kalman filters and localisation
# ----------------------------------------------------------------------------------------


def _ens(xp, N=5, d=4):
    return arr(xp, np.random.default_rng(3).standard_normal((N, d)))


def _l96_twin(obs_every=2, J=30):
    return dalib.setups.lorenz96(d=10, obs_every=obs_every).simulate(J, rng=1)


ENKF_CASES = [
    ("EnKF radius 0", lambda xp: EnKF(10, radius=0), ValueError,
     r"radius \(the Gaspari-Cohn half-width\) must be positive"),
    ("EnKF radius string", lambda xp: EnKF(10, radius="wide"), TypeError,
     r"radius must be a positive number or None"),
    ("EnKF N 1", lambda xp: EnKF(1), ValueError, r"N must be an integer >= 2"),
    ("ETKF N float", lambda xp: ETKF(2.5), TypeError, r"N must be an integer"),
    ("ETKF inflation inf", lambda xp: ETKF(10, inflation=INF), ValueError,
     r"inflation must be positive and finite"),
    ("ETKF inflation 0", lambda xp: ETKF(10, inflation=0.0), ValueError,
     r"inflation must be positive"),
    ("LETKF radius nan", lambda xp: LETKF(10, radius=NAN), ValueError,
     r"radius \(the Gaspari-Cohn half-width\) must be positive"),
    ("enkf one member",
     lambda xp: enkf_analysis(_ens(xp, N=1), arr(xp, np.zeros(4)), Identity(4), 1.0, rng=1),
     ValueError, r"E must have at least 2 members"),
    ("etkf y size",
     lambda xp: etkf_analysis(_ens(xp), arr(xp, np.zeros(3)), Identity(4), 1.0),
     ValueError, r"y must have shape"),
    ("etkf E nan",
     lambda xp: etkf_analysis(arr(xp, [[0.0, NAN], [1.0, 1.0]]), arr(xp, [0.0, 0.0]),
                              Identity(2), 1.0),
     ValueError, r"E contains NaN"),
    ("letkf local for more obs",
     lambda xp: letkf_analysis(_ens(xp, d=10), arr(xp, np.zeros(5)), EveryKth(10, 2), 1.0,
                               local_observations(10, range(10), 2.0, xp)),
     ValueError, r"local refers to observation 9, but y has only 5"),
    ("letkf dense R",
     lambda xp: letkf_analysis(_ens(xp, d=10), arr(xp, np.zeros(10)), Identity(10),
                               arr(xp, spd(10)), local_observations(10, range(10), 2.0, xp)),
     ValueError, r"R must be diagonal for the LETKF"),
]


def _run(method, twin=None, **kw):
    return assimilate(method, twin if twin is not None else _l96_twin(), rng=2, **kw)


ENKF_RUN_CASES = [
    ("LETKF too few locations", lambda: _run(LETKF(8, radius=2.0, locations=[0, 2, 4])),
     ValueError, r"locations must give one grid position per observation: h observes p = 5"),
    ("LETKF too many locations", lambda: _run(LETKF(8, radius=2.0, locations=range(10))),
     ValueError, r"locations must give one grid position per observation: .* got 10"),
    ("LETKF locations off grid", lambda: _run(LETKF(8, radius=2.0,
                                                    locations=[0, 2, 4, 6, 12])),
     ValueError, r"locations must lie in \[0, 10\)"),
    ("LETKF dense R",
     lambda: _run(LETKF(8, radius=2.0),
                  dalib.setups.lorenz96(d=10, R=spd(10)).simulate(5, rng=1)),
     ValueError, r"LETKF needs a diagonal R"),
    ("AdaptiveETKF dense R0",
     lambda: _run(AdaptiveETKF(8, R0=spd(5))), ValueError,
     r"AdaptiveETKF needs a scalar or diagonal R0"),
    ("AdaptiveETKF memory 1", lambda: AdaptiveETKF(8, memory=1.0), ValueError,
     r"memory must lie in \[0, 1\)"),
]


# ----------------------------------------------------------------------------------------
# 3DVar and 4DVar
# ----------------------------------------------------------------------------------------


class _NoAdjointModel:
    d = 4

    def __call__(self, x):
        return 0.9 * x


def _linear_twin(J=20):
    return dalib.setups.linear_gaussian(d=4, Q=None).simulate(J, rng=4)


def _cycled_4dvar_reports_non_convergence():
    twin = dalib.setups.lorenz96(d=10).simulate(20, rng=1)
    with pytest.warns(FilterDivergenceWarning, match=r"4DVar did not converge in \d+ of 4"):
        res = cycled_fourdvar(twin, 1.0, window=5, maxiter=1)
    assert len(res.extras["converged"]) == 4 and not all(res.extras["converged"])
    assert all(n <= 1 for n in res.extras["iterations"])


def _cycled_4dvar_converged_flags():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FilterDivergenceWarning)
        res = cycled_fourdvar(_linear_twin(), 1.0, window=5)
    assert res.extras["converged"] == (True,) * 4


VAR_CASES = [
    ("3DVar neither B nor K", lambda: ThreeDVar(), ValueError, r"give exactly one of B"),
    ("3DVar K shape", lambda: _run(ThreeDVar(K=np.ones((3, 3)))), ValueError,
     r"K must have shape \(10, 5\)"),
    ("4DVar cost without vjp",
     lambda: fourdvar_cost(np.zeros(4), np.zeros(4), np.zeros((2, 4)), _NoAdjointModel(),
                           Identity(4), 1.0, 1.0),
     TypeError, r"4DVar needs the adjoint of M: M must have a method vjp"),
    ("4DVar analysis without vjp",
     lambda: fourdvar_analysis(np.zeros(4), np.zeros((2, 4)), _NoAdjointModel(), Identity(4),
                               1.0, 1.0),
     TypeError, r"4DVar needs the adjoint of M"),
    ("cycled 4DVar without vjp",
     lambda: cycled_fourdvar(TwinExperiment(
         _linear_twin().ssm.replace(M=_NoAdjointModel()), *(lambda t: (t.t, t.x, t.y))(
             _linear_twin())), 1.0, window=2),
     TypeError, r"4DVar needs the adjoint of M"),
    ("4DVar B indefinite",
     lambda: fourdvar_analysis(np.zeros(2), np.zeros((1, 2)), LinearModel(np.eye(2)),
                               Identity(2), np.array([[1.0, 2.0], [2.0, 1.0]]), 1.0),
     ValueError, r"B must be positive definite"),
    ("4DVar maxiter 0",
     lambda: fourdvar_analysis(np.zeros(2), np.zeros((1, 2)), LinearModel(np.eye(2)),
                               Identity(2), 1.0, 1.0, maxiter=0),
     ValueError, r"maxiter must be an integer >= 1"),
    ("cycled 4DVar window 0", lambda: cycled_fourdvar(_linear_twin(), 1.0, window=0),
     ValueError, r"window must be an integer >= 1"),
    ("cycled 4DVar reports non-convergence", _cycled_4dvar_reports_non_convergence, None,
     None),
    ("cycled 4DVar converged flags", _cycled_4dvar_converged_flags, None, None),
]


# ----------------------------------------------------------------------------------------
# The cycling driver and its result
# ----------------------------------------------------------------------------------------


def _empty_twin():
    tw = _linear_twin(5)
    return TwinExperiment(tw.ssm, tw.t[:1], tw.x[:1], tw.y[:0])


def _nan_twin():
    tw = _linear_twin(5)
    y = tw.y.copy()
    y[2, 1] = NAN
    return TwinExperiment(tw.ssm, tw.t, tw.x, y)


def _divergence_is_flagged():
    twin = dalib.setups.lorenz96().simulate(300, rng=3)
    with pytest.warns(FilterDivergenceWarning, match=r"lost the truth: its time-mean"):
        res = assimilate(ThreeDVar(B=0.001), twin, rng=1)
    assert res.diverged and res.rmse() > 3.0


def _good_filter_not_flagged():
    twin = dalib.setups.lorenz96().simulate(300, rng=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FilterDivergenceWarning)
        res = assimilate(ETKF(20, inflation=1.02), twin, rng=1)
    assert not res.diverged and res.divergence() is None and res.rmse() < 0.5


def _linear_result():
    return assimilate(KalmanFilter(), _linear_twin(), rng=0)


DRIVER_CASES = [
    ("method not a Method", lambda: assimilate("ETKF", _linear_twin(), rng=0), TypeError,
     r"method must be a dalib.da Method"),
    ("twin J 0", lambda: assimilate(ETKF(5), _empty_twin(), rng=0), ValueError,
     r"twin.y holds no observations \(J = 0\)"),
    ("twin y nan", lambda: assimilate(ETKF(5), _nan_twin(), rng=0), ValueError,
     r"twin.y contains NaN"),
    ("burn_in > J", lambda: assimilate(ETKF(5), _linear_twin(), rng=0, burn_in=50),
     ValueError, r"burn_in \(50\) must not exceed J \(20\)"),
    ("check_every negative",
     lambda: assimilate(ETKF(5), _linear_twin(), rng=0, check_every=-1), ValueError,
     r"check_every must be an integer >= 0"),
    ("rng string", lambda: assimilate(ETKF(5), _linear_twin(), rng="seed"), TypeError,
     r"rng must be an int seed"),
    ("result rmse kind", lambda: _linear_result().rmse(kind="x"), ValueError,
     r"kind must be one of 'a', 'f'"),
    ("result spread kind", lambda: _linear_result().spread(kind="analysis"), ValueError,
     r"kind must be one of 'a', 'f'"),
    ("result crps kind", lambda: _linear_result().crps(kind="b"), ValueError,
     r"kind must be one of 'a', 'f'"),
    ("result crps without ensembles", lambda: _linear_result().crps(), ValueError,
     r"store_ensembles=True"),
    ("result burn_in negative", lambda: _linear_result().rmse(burn_in=-1), ValueError,
     r"burn_in must be an integer >= 0"),
    ("KalmanFilter nonlinear",
     lambda: assimilate(KalmanFilter(), _l96_twin(obs_every=1, J=5), rng=0), TypeError,
     r"KalmanFilter needs a LinearModel"),
    ("OptimalPF without Q", lambda: assimilate(OptimalPF(10), _linear_twin(), rng=0),
     ValueError, r"OptimalPF needs model noise"),
    ("BootstrapPF threshold", lambda: BootstrapPF(10, threshold=2.0), ValueError,
     r"threshold must lie in \[0, 1\]"),
    ("divergence without NaN is flagged", _divergence_is_flagged, None, None),
    ("a good filter is not flagged", _good_filter_not_flagged, None, None),
]


# ----------------------------------------------------------------------------------------
# Learning
# ----------------------------------------------------------------------------------------


def _em_twin():
    truth = dalib.setups.linear_gaussian(d=2, Q=0.1, R=0.5)
    return truth, truth.simulate(100, rng=1)


def _em_limit_is_reported():
    truth, twin = _em_twin()
    with pytest.warns(ConvergenceWarning, match=r"EM stopped at its iteration limit n_iter=2"):
        fit = em_linear_gaussian(truth.replace(Q=1.0, R=1.0), twin.y, n_iter=2, tol=1e-9)
    assert fit.converged is False and fit.n_iter == 2


def _em_convergence_is_reported():
    truth, twin = _em_twin()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = em_linear_gaussian(truth.replace(Q=1.0, R=1.0), twin.y, n_iter=500, tol=1e-2)
    assert fit.converged is True and fit.n_iter < 500
    assert em_linear_gaussian(truth, twin.y, n_iter=1).converged is None


LEARNING_CASES = [
    ("EM Q None", lambda: em_linear_gaussian(_em_twin()[0].replace(Q=None), _em_twin()[1].y),
     ValueError, r"ssm.Q must be an initial guess"),
    ("EM n_iter negative",
     lambda: em_linear_gaussian(_em_twin()[0], _em_twin()[1].y, n_iter=-1), ValueError,
     r"n_iter must be an integer >= 0"),
    ("EM structure", lambda: em_linear_gaussian(_em_twin()[0], _em_twin()[1].y,
                                                Q_structure="banded"),
     ValueError, r"Q_structure must be one of"),
    ("EM estimate", lambda: em_linear_gaussian(_em_twin()[0], _em_twin()[1].y,
                                               estimate=("B",)),
     ValueError, r"estimate"),
    ("EM stops at its limit", _em_limit_is_reported, None, None),
    ("EM converges", _em_convergence_is_reported, None, None),
]


# ----------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------


def _crps_point_forecast(xp):
    got = npy(metrics.crps_gaussian(arr(xp, [0.0, 1.0]), arr(xp, [0.0, 2.0]),
                                    arr(xp, [1.5, 1.0])))
    # std 0 gives |x - mu|; std 2 at the mean gives 2 (2 phi(0) - 1/sqrt(pi))
    want = [1.5, 2 * (2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi))]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert float(metrics.crps_gaussian(0.0, 0.0, 2.0)) == 2.0


def _rmse_broadcasts_length_one_axes(xp):
    E = arr(xp, np.ones((4, 3, 2)))
    x = arr(xp, np.zeros((4, 1, 2)))
    np.testing.assert_allclose(npy(metrics.rmse(E, x)), np.ones((4, 3)))


METRIC_CASES = [
    ("rmse (J,1,d) vs (J,d)",
     lambda xp: metrics.rmse(arr(xp, np.ones((5, 1, 3))), arr(xp, np.ones((5, 3)))),
     ValueError, r"estimate of shape \(5, 1, 3\) does not match truth of shape \(5, 3\)"),
    ("rmse (J,d) vs (K,d)",
     lambda xp: metrics.rmse(arr(xp, np.ones((5, 3))), arr(xp, np.ones((4, 3)))),
     ValueError, r"estimate of shape \(5, 3\) does not match truth"),
    ("rmse d mismatch", lambda xp: metrics.rmse(arr(xp, np.ones(3)), arr(xp, np.ones(4))),
     ValueError, r"estimate must have shape \(\.\.\., 4\)"),
    ("rmse truth nan", lambda xp: metrics.rmse(arr(xp, np.ones(2)), arr(xp, [1.0, NAN])),
     ValueError, r"truth contains NaN"),
    ("rmse length-one axes", _rmse_broadcasts_length_one_axes, None, None),
    ("crps without member axis",
     lambda xp: metrics.crps_ensemble(arr(xp, np.ones((5, 3))), arr(xp, np.ones((5, 3)))),
     ValueError, r"ensemble of shape \(5, 3\) does not match truth .* one axis \(the members\)"),
    ("crps fair one member",
     lambda xp: metrics.crps_ensemble(arr(xp, np.ones((1, 3))), arr(xp, np.ones(3)),
                                      fair=True),
     ValueError, r"fair CRPS needs an ensemble of at least 2"),
    ("energy score without member axis",
     lambda xp: metrics.energy_score(arr(xp, np.ones((5, 3))), arr(xp, np.ones((5, 3)))),
     ValueError, r"one axis \(the members\)"),
    ("rank histogram burn_in >= J",
     lambda xp: metrics.rank_histogram(arr(xp, np.ones((4, 3, 2))), arr(xp, np.ones((4, 2))),
                                       burn_in=4),
     ValueError, r"burn_in \(4\) must be smaller than the number of times \(4\)"),
    ("rank histogram 2-d ensemble",
     lambda xp: metrics.rank_histogram(arr(xp, np.ones((3, 2))), arr(xp, np.ones(2))),
     ValueError, r"ensemble must have 3 dimension"),
    ("crps_gaussian negative std", lambda xp: metrics.crps_gaussian(0.0, -1.0, 0.5),
     ValueError, r"std must be non-negative"),
    ("crps_gaussian negative std array",
     lambda xp: metrics.crps_gaussian(arr(xp, [0.0, 0.0]), arr(xp, [1.0, -1.0]),
                                      arr(xp, [0.0, 0.0])),
     ValueError, r"std must be non-negative"),
    ("crps_gaussian nan mean", lambda xp: metrics.crps_gaussian(NAN, 1.0, 0.5), ValueError,
     r"mean contains NaN"),
    ("crps_gaussian std 0 is |x - mu|", _crps_point_forecast, None, None),
    ("spread one member", lambda xp: metrics.spread(arr(xp, np.ones((1, 3)))), ValueError,
     r"ensemble must have at least 2 members"),
    ("spread_error_ratio without member axis",
     lambda xp: metrics.spread_error_ratio(arr(xp, np.ones((5, 3))), arr(xp, np.ones((5, 3)))),
     ValueError, r"one axis \(the members\)"),
    ("time_average burn_in", lambda xp: metrics.time_average(arr(xp, [1.0, 2.0]), burn_in=2),
     ValueError, r"burn_in \(2\) must be smaller"),
]


# ----------------------------------------------------------------------------------------
# Exercise checks judge answers on pristine copies of their inputs
# ----------------------------------------------------------------------------------------


def _kf_in_place(m, C, y, H, R):
    K = np.linalg.solve(H @ C @ H.T + R, H @ C).T
    m += K @ (y - H @ m)
    C -= K @ H @ C
    return m, C


def _kf_zeroing(m, C, y, H, R):
    for a in (m, C, y, H, R):
        a[...] = 0.0
    return m, C


def _rhs_then_zero(x):
    out = Lorenz63().rhs(x)
    x[...] = 0.0
    return out


def _zeros_after_zeroing(x):
    x[...] = 0.0
    return np.zeros_like(x)


def _log_evidence_zeroing(E, y, H, R):
    E[...] = 0.0
    y[...] = 0.0
    H[...] = 0.0
    R[...] = np.eye(R.shape[0])
    return -0.5 * y.shape[0] * math.log(2 * math.pi)


def _ess_in_place(logw):
    logw -= logw.max()
    np.exp(logw, out=logw)
    logw /= logw.sum()
    return 1.0 / np.sum(logw**2)


EXERCISE_CASES = [
    ("kf in-place answer passes", lambda: ch02.check_kf_analysis(_kf_in_place), True),
    ("kf zeroing answer fails", lambda: ch02.check_kf_analysis(_kf_zeroing), False),
    ("rhs that clears x passes", lambda: ch01.check_lorenz63_rhs(_rhs_then_zero), True),
    ("rhs zeroing answer fails", lambda: ch01.check_lorenz63_rhs(_zeros_after_zeroing), False),
    ("log evidence zeroing fails", lambda: ch07.check_log_evidence(_log_evidence_zeroing),
     False),
    ("ess in place passes", lambda: ch04.check_ess(_ess_in_place), True),
]


# ----------------------------------------------------------------------------------------
# The tests
# ----------------------------------------------------------------------------------------

ARRAY_CASES = (MODEL_CASES + OBSERVATION_CASES + COVARIANCE_CASES + SSM_CASES + KALMAN_CASES
               + PARTICLE_CASES + ENKF_CASES + METRIC_CASES)
PLAIN_CASES = ENKF_RUN_CASES + VAR_CASES + DRIVER_CASES + LEARNING_CASES


def _check(run, error, match):
    if error is None:
        run()
        return
    with pytest.raises(error, match=match):
        run()


@pytest.mark.parametrize("name, run, error, match", ARRAY_CASES,
                         ids=[c[0] for c in ARRAY_CASES])
def test_bad_array_input(xp, name, run, error, match):
    _check(lambda: run(xp), error, match)


@pytest.mark.parametrize("name, run, error, match", PLAIN_CASES,
                         ids=[c[0] for c in PLAIN_CASES])
def test_bad_input(name, run, error, match):
    _check(run, error, match)


@pytest.mark.parametrize("name, run, passes", EXERCISE_CASES,
                         ids=[c[0] for c in EXERCISE_CASES])
def test_exercise_checks_use_pristine_inputs(name, run, passes):
    feedback = run()
    assert feedback.passed is passes, str(feedback)


def test_check_positive_refuses_inf_and_non_numbers():
    from dalib._validate import check_positive

    with pytest.raises(ValueError, match=r"R must be positive and finite, got inf"):
        check_positive(INF, "R")
    with pytest.raises(TypeError, match=r"R must be a positive number, got str"):
        check_positive("1", "R")
    with pytest.raises(ValueError, match=r"Q must be positive and finite"):
        check_positive(np.array([1.0, INF]), "Q")


def test_filter_divergence_error_still_names_the_cycle():
    twin = dalib.setups.lorenz96(d=10).simulate(10, rng=1)
    with np.errstate(all="ignore"), pytest.raises(FilterDivergenceError,
                                                  match=r"diverged at cycle"):
        assimilate(ETKF(5, inflation=1e150), twin, rng=0)


def test_case_count():
    n = len(ARRAY_CASES) + len(PLAIN_CASES) + len(EXERCISE_CASES) + 2
    assert n >= 80, n
