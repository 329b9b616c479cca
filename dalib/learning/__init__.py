r"""Learning the forecast model from observations through data assimilation (chapter 7).

The model :math:`\mathcal M_\vartheta` of eq. (5) is learned from partial, noisy
observations, so the states are latent and every method runs a filter or a smoother.

Modules
-------
likelihood    the EnKF log-likelihood of eq. (6), differentiable with JAX
              (auto-differentiable EnKF), and an optimiser
augmentation  state-parameter augmentation in the EnKF
dictionary    models that are linear combinations of local terms (example 2)
em            expectation-maximisation with an ensemble smoother, eqs. (7)-(9)
correction    an imperfect model plus a learned correction (example 3)
"""

from . import augmentation, correction, dictionary, em, likelihood
from .augmentation import AugmentedObservation, AugmentedResult, augmented_enkf
from .correction import CorrectedMap, CorrectedModel
from .dictionary import DictionaryModel, DictionaryODE, LocalDictionary
from .em import EMResult, expectation_maximization, least_squares_mstep
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
    "dictionary",
    "em",
    "likelihood",
    "AugmentedObservation",
    "AugmentedResult",
    "augmented_enkf",
    "CorrectedMap",
    "CorrectedModel",
    "DictionaryModel",
    "DictionaryODE",
    "LocalDictionary",
    "EMResult",
    "expectation_maximization",
    "least_squares_mstep",
    "FilterNoise",
    "LoglikDetails",
    "MLEResult",
    "ReplayRNG",
    "draw_noise",
    "enkf_loglik",
    "ensemble_log_evidence",
    "maximize_likelihood",
    "value_and_grad",
]
