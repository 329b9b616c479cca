"""Learning the ingredients of data assimilation from data (lecture Part II).

Modules
-------
covariances   EM for the error covariances Q and R: exact (Kalman smoother) for
              linear-Gaussian models, with an ensemble Kalman smoother for nonlinear ones
innovations   innovation-based estimation: Desroziers diagnostics, adaptive R and
              inflation inside an ensemble filter
"""

from . import covariances, innovations
from .covariances import (
    EMResult,
    EnsembleSmootherPass,
    SmootherStatistics,
    em_enks,
    em_linear_gaussian,
    enks_pass,
    expected_loglik,
    m_step,
    smoother_statistics,
)
from .innovations import (
    AdaptiveETKF,
    DesroziersIteration,
    DesroziersStatistics,
    adaptive_inflation_estimate,
    desroziers_statistics,
    desroziers_iteration,
)

__all__ = [
    "covariances",
    "innovations",
    # EM for covariances
    "SmootherStatistics",
    "smoother_statistics",
    "expected_loglik",
    "m_step",
    "em_linear_gaussian",
    "EMResult",
    "EnsembleSmootherPass",
    "enks_pass",
    "em_enks",
    # innovation statistics
    "DesroziersStatistics",
    "DesroziersIteration",
    "desroziers_statistics",
    "desroziers_iteration",
    "adaptive_inflation_estimate",
    "AdaptiveETKF",
]
