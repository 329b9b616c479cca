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
networks      small neural networks as pure JAX functions, and an optax training loop
increments    model-error corrections learned from analysis increments (chapter 9)
"""

from . import (
    augmentation,
    correction,
    covariances,
    dictionary,
    em,
    increments,
    innovations,
    likelihood,
    networks,
)
from .augmentation import AugmentedObservation, AugmentedResult, augmented_enkf
from .correction import CorrectedMap, CorrectedModel
from .covariances import (
    CovarianceEMResult,
    EnsembleSmootherPass,
    SmootherStatistics,
    em_enks,
    em_linear_gaussian,
    enks_pass,
    expected_loglik,
    m_step,
    smoother_statistics,
)
from .dictionary import DictionaryModel, DictionaryODE, LocalDictionary
from .em import ModelEMResult, expectation_maximization, least_squares_mstep
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
    "augmentation",
    "correction",
    "covariances",
    "dictionary",
    "em",
    "innovations",
    "likelihood",
    "networks",
    "increments",
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
    "EnsembleSmootherPass",
    "enks_pass",
    "em_enks",
    # the error covariances: innovation statistics
    "DesroziersStatistics",
    "DesroziersIteration",
    "desroziers_statistics",
    "desroziers_iteration",
    "adaptive_inflation_estimate",
    "AdaptiveETKF",
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
