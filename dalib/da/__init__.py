"""Classical data assimilation methods (book chapter 7), as pure functions and filter objects.

Modules
-------
kalman        Kalman filter, RTS smoother, log-likelihood (7.3)
var3d         3DVar gain and analysis; steady-state Kalman covariance (7.4)
ekf           extended Kalman filter (7.5)
enkf          perturbed-observation EnKF, ETKF, inflation (7.6, 7.6.2)
localization  Gaspari-Cohn taper, B-localisation, LETKF (7.6.3)
particle      bootstrap and optimal-proposal particle filters (7.7, 7.8)
fourdvar      strong-constraint 4DVar with the adjoint gradient, cycled 4DVar (7.9)
smoothers     ensemble Kalman smoother and reanalyses (7.10)
reanalyses    ready-made reanalysis datasets (:func:`lorenz96_reanalysis`)
multifidelity_enkf
              EnKF with a multifidelity Monte Carlo forecast mean (eq. 10; chapter 10)
multimodel    multi-model EnKF with adaptive model-error weights (chapter 10)
ensemble      the shared base of the ensemble filter objects; EnsembleFilter
methods       the protocol :class:`Method` of the filter objects (each lives beside its
              algorithm above)
cycling       the driver :func:`assimilate`
result        :class:`AssimilationResult` and :class:`FilterDivergenceError`

Examples
--------
>>> import dalib
>>> from dalib.da import ETKF, assimilate
>>> twin = dalib.setups.lorenz96().simulate(500, rng=1)
>>> result = assimilate(ETKF(N=20, inflation=1.02), twin, rng=2)
>>> result.rmse() < 0.3
True
"""

from . import (
    cycling,
    ekf,
    enkf,
    ensemble,
    fourdvar,
    kalman,
    localization,
    methods,
    multifidelity_enkf,
    multimodel,
    particle,
    reanalyses,
    result,
    smoothers,
    var3d,
)
from .cycling import Cycled, assimilate, cycle, progress_enabled
from .ekf import ExtendedKF, ekf_analysis, ekf_forecast, model_jacobian
from .enkf import (
    ETKF,
    EnKF,
    additive_inflation,
    anomalies,
    enkf_analysis,
    ensemble_mean,
    etkf_analysis,
    etkf_transform,
    inflate,
    random_rotation,
)
from .enkf_n import EnKFN, enkf_n_analysis, enkf_n_inflation
from .ensemble import EnsembleFilter, EnsembleMethod
from .fourdvar import FourDVarResult, cycled_fourdvar, fourdvar_analysis, fourdvar_cost
from .kalman import (
    GaussianState,
    KalmanFilter,
    KalmanResult,
    SmootherResult,
    kalman_filter,
    kalman_smoother,
    kf_analysis,
    kf_forecast,
    rts_smoother,
)
from .localization import (
    LETKF,
    LocalObservations,
    chunk_size,
    default_max_bytes,
    gaspari_cohn,
    letkf_analysis,
    local_observations,
    localization_matrices,
    observation_locations,
    periodic_distance,
)
from .methods import Method
from .multifidelity_enkf import MultifidelityEnKF, multifidelity_forecast
from .multimodel import MultiModelEnKF
from .particle import (
    BootstrapPF,
    OptimalPF,
    OptimalProposal,
    ParticleState,
    bootstrap_log_weights,
    effective_sample_size,
    kernel_bandwidth,
    normalize_log_weights,
    optimal_pf_analysis,
    optimal_proposal,
    regularized_resample,
    systematic_resample,
    weighted_mean,
    weighted_spread,
)
from .reanalyses import lorenz96_reanalysis
from .result import AssimilationResult, FilterDivergenceError, FilterDivergenceWarning
from .smoothers import EnKS, SmootherState, enks, reanalysis
from .var3d import ThreeDVar, steady_state_covariance, var3d_analysis, var3d_gain

__all__ = [
    # driver and results
    "assimilate",
    "cycle",
    "Cycled",
    "progress_enabled",
    "AssimilationResult",
    "FilterDivergenceError",
    "FilterDivergenceWarning",
    # filter objects
    "Method",
    "EnsembleMethod",
    "EnsembleFilter",
    "ETKF",
    "EnKFN",
    "enkf_n_analysis",
    "enkf_n_inflation",
    "EnKF",
    "MultifidelityEnKF",
    "MultiModelEnKF",
    "multifidelity_forecast",
    "LETKF",
    "KalmanFilter",
    "ExtendedKF",
    "ThreeDVar",
    "BootstrapPF",
    "OptimalPF",
    "GaussianState",
    "ParticleState",
    # Kalman
    "kf_forecast",
    "kf_analysis",
    "kalman_filter",
    "rts_smoother",
    "kalman_smoother",
    "KalmanResult",
    "SmootherResult",
    # 3DVar
    "var3d_gain",
    "var3d_analysis",
    "steady_state_covariance",
    # ExKF
    "model_jacobian",
    "ekf_forecast",
    "ekf_analysis",
    # ensemble Kalman
    "ensemble_mean",
    "anomalies",
    "inflate",
    "additive_inflation",
    "enkf_analysis",
    "etkf_analysis",
    "etkf_transform",
    "random_rotation",
    # localisation
    "gaspari_cohn",
    "periodic_distance",
    "observation_locations",
    "LocalObservations",
    "local_observations",
    "localization_matrices",
    "letkf_analysis",
    "chunk_size",
    "default_max_bytes",
    # particle filters
    "normalize_log_weights",
    "effective_sample_size",
    "systematic_resample",
    "regularized_resample",
    "kernel_bandwidth",
    "bootstrap_log_weights",
    "OptimalProposal",
    "optimal_proposal",
    "optimal_pf_analysis",
    "weighted_mean",
    "weighted_spread",
    # 4DVar and smoothers
    "fourdvar_cost",
    "fourdvar_analysis",
    "FourDVarResult",
    "cycled_fourdvar",
    "EnKS",
    "SmootherState",
    "enks",
    "reanalysis",
    "lorenz96_reanalysis",
    # modules
    "cycling",
    "ekf",
    "enkf",
    "ensemble",
    "fourdvar",
    "kalman",
    "localization",
    "methods",
    "multifidelity_enkf",
    "multimodel",
    "particle",
    "reanalyses",
    "result",
    "smoothers",
    "var3d",
]
