r"""Learning the ingredients of data assimilation from observations (chapter 7).

The model :math:`\mathcal M_\vartheta` of eq. (5) and the error covariances ``Q`` and
``R`` are learned from partial, noisy observations, so the states are latent and every
method runs a filter or a smoother.

Modules
-------
likelihood    the EnKF log-likelihood of eq. (6), differentiable with JAX
              (auto-differentiable EnKF), and an optimiser
augmentation  state-parameter augmentation in the EnKF
dictionary    models that are linear combinations of local terms (example 2)
em            expectation-maximisation for model parameters with an ensemble smoother,
              eqs. (7)-(9)
correction    an imperfect model plus a learned correction (example 3)
covariances   EM for the error covariances Q and R: exact (Kalman smoother) for
              linear-Gaussian models, with an ensemble Kalman smoother for nonlinear ones
innovations   innovation-based estimation: Desroziers diagnostics, adaptive R and
              inflation inside an ensemble filter
networks      small neural networks as pure JAX functions of parameter pytrees (a local
              convolutional network for Lorenz-96) and an optax training loop (chapter 8)
surrogates    forecast models learned from states: local random-feature regression,
              tendencies integrated by RK4, autoregressive rollout (chapter 8)
skill         forecast skill against lead time, valid time in Lyapunov times,
              climatology of free runs (chapter 8)
increments    model-error corrections learned from analysis increments (chapter 9)
analysis_losses
              losses for learning an analysis step: eq. (12) against the truth,
              eq. (13) against observations, and (13) corrected for the fit to the
              noise (Mallia-Parfitt and Broecker 2016)
gains         a constant gain of the analysis step learned through the unrolled filter,
              and the time-averaged EKF gain
ensemble_tuning
              inflation and localisation radius of the LETKF as differentiable
              parameters (a smooth taper on local sets of a fixed maximal support),
              learned by gradient descent or chosen on a grid
analysis_steps
              learnable analysis steps (a local neural network) trained through the
              unrolled filter with loss (12), (13) or corrected (13), and run in the
              cycling driver
"""

from . import (
    analysis_losses,
    analysis_steps,
    augmentation,
    correction,
    covariances,
    dictionary,
    em,
    ensemble_tuning,
    gains,
    increments,
    innovations,
    likelihood,
    networks,
    skill,
    surrogates,
)
from .analysis_losses import corrected_observation_loss, observation_loss, truth_loss
from .analysis_steps import (
    LearnedAnalysis,
    analysis_windows,
    init_local_analysis,
    learn_analysis,
    local_analysis,
    unroll_analysis,
    window_loss,
)
from .augmentation import AugmentedEnKF, AugmentedObservation, AugmentedResult, augmented_enkf
from .correction import CorrectedMap, CorrectedModel
from .covariances import (
    ConvergenceWarning,
    CovarianceEMResult,
    EnsembleSmootherPass,
    SmootherStatistics,
    em_enks,
    em_linear_gaussian,
    enks_pass,
    expected_loglik,
    m_step,
    smoother_statistics,
    squarem,
)
from .dictionary import DictionaryModel, DictionaryODE, LocalDictionary
from .em import ModelEMResult, expectation_maximization, least_squares_mstep
from .ensemble_tuning import (
    learn_inflation_radius,
    letkf_grid,
    letkf_tuned_analysis,
    letkf_window_loss,
    taper_support,
    tapered,
    unroll_letkf,
)
from .gains import (
    GainAveragingEKF,
    gain_analysis,
    gain_windows,
    learn_gain,
    time_averaged_ekf_gain,
    unroll_gain,
)
from .increments import (
    BiasCorrection,
    IncrementCorrectedModel,
    IncrementData,
    LinearCorrection,
    NetworkCorrection,
    fit_bias,
    fit_linear,
    fit_network,
    increment_data,
)
from .innovations import (
    AdaptiveETKF,
    AdaptiveState,
    DesroziersIteration,
    DesroziersStatistics,
    adaptive_inflation_estimate,
    desroziers_iteration,
    desroziers_statistics,
)
from .likelihood import (
    FilterNoise,
    LoglikDetails,
    MLEResult,
    ReplayRNG,
    draw_noise,
    enkf_loglik,
    ensemble_log_evidence,
    maximize_likelihood,
    value_and_grad,
)

__all__ = [
    "analysis_losses",
    "analysis_steps",
    "augmentation",
    "correction",
    "covariances",
    "dictionary",
    "em",
    "innovations",
    "likelihood",
    "networks",
    "increments",
    "skill",
    "surrogates",
    # the model: likelihood, augmentation, EM, dictionaries, correction
    "FilterNoise",
    "LoglikDetails",
    "MLEResult",
    "ReplayRNG",
    "draw_noise",
    "enkf_loglik",
    "ensemble_log_evidence",
    "maximize_likelihood",
    "value_and_grad",
    "AugmentedEnKF",
    "AugmentedObservation",
    "AugmentedResult",
    "augmented_enkf",
    "DictionaryModel",
    "DictionaryODE",
    "LocalDictionary",
    "ModelEMResult",
    "expectation_maximization",
    "least_squares_mstep",
    "CorrectedMap",
    "CorrectedModel",
    # the error covariances: EM
    "SmootherStatistics",
    "smoother_statistics",
    "expected_loglik",
    "m_step",
    "em_linear_gaussian",
    "CovarianceEMResult",
    "ConvergenceWarning",
    "EnsembleSmootherPass",
    "enks_pass",
    "em_enks",
    "squarem",
    # the error covariances: innovation statistics
    "DesroziersStatistics",
    "DesroziersIteration",
    "desroziers_statistics",
    "desroziers_iteration",
    "adaptive_inflation_estimate",
    "AdaptiveETKF",
    "AdaptiveState",
    # learning the analysis step
    "truth_loss",
    "observation_loss",
    "corrected_observation_loss",
    "gains",
    "gain_analysis",
    "gain_windows",
    "learn_gain",
    "unroll_gain",
    "GainAveragingEKF",
    "time_averaged_ekf_gain",
    "ensemble_tuning",
    "letkf_tuned_analysis",
    "letkf_window_loss",
    "taper_support",
    "tapered",
    "unroll_letkf",
    "learn_inflation_radius",
    "letkf_grid",
    "LearnedAnalysis",
    "analysis_windows",
    "init_local_analysis",
    "learn_analysis",
    "local_analysis",
    "unroll_analysis",
    "window_loss",
    # model-error correction from analysis increments
    "IncrementData",
    "increment_data",
    "BiasCorrection",
    "LinearCorrection",
    "NetworkCorrection",
    "fit_bias",
    "fit_linear",
    "fit_network",
    "IncrementCorrectedModel",
]
