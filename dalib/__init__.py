"""dalib: data assimilation and machine learning, array-agnostic.

The reference implementation behind the book *Machine Learning in Data Assimilation*.
Every function takes its array namespace from its inputs, so the same code runs on NumPy,
CuPy (GPU ensembles) and JAX (gradients).

Modules
-------
backend       array namespaces and the operations outside the array API standard
random        explicit random number generators for every backend
models        Lorenz-63, Lorenz-96, two-scale Lorenz-96, linear models; RK4, tangent linear
observations  observation operators with their Jacobians
covariance    structured covariances (scalar, diagonal, dense)
ssm           the state-space model of eqs. (1)-(2) and twin experiments
setups        published benchmark configurations
da            classical data assimilation: Kalman, 3DVar, ExKF, EnKF/ETKF/LETKF, particle
              filters, 4DVar, smoothers, the cycling driver
learning      learning the forecast model through data assimilation: EnKF likelihood
              and its gradient, augmentation, EM, dictionaries, model correction
multifidelity multifidelity Monte Carlo estimators, model selection and sample allocation
metrics       RMSE, spread, CRPS, energy score, rank histograms
report        printing scores that read the same on every machine
plotting      the book's plotting conventions
exercises     self-checks for the exercises
"""

from . import (
    backend,
    covariance,
    da,
    learning,
    metrics,
    models,
    multifidelity,
    observations,
    random,
    report,
    setups,
    ssm,
)
from .backend import asarray, get_namespace, namespace, to_numpy
from .covariance import (
    DenseCovariance,
    DiagonalCovariance,
    ScalarCovariance,
    as_covariance,
)
from .random import default_rng
from .ssm import StateSpaceModel, TwinExperiment

__version__ = "0.1.0"

__all__ = [
    "backend",
    "covariance",
    "da",
    "learning",
    "metrics",
    "models",
    "multifidelity",
    "observations",
    "random",
    "report",
    "setups",
    "ssm",
    "asarray",
    "get_namespace",
    "namespace",
    "to_numpy",
    "default_rng",
    "as_covariance",
    "ScalarCovariance",
    "DiagonalCovariance",
    "DenseCovariance",
    "StateSpaceModel",
    "TwinExperiment",
    "__version__",
]
