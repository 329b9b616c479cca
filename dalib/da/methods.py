r"""The protocol of the sequential methods run by the cycling driver.

A *method* (a filter object) is a small adapter between the pure functions of
:mod:`dalib.da` and the driver :func:`~dalib.da.cycling.assimilate`.  The protocol is

=====================================  =================================================
``init(ssm, rng)``                     the initial state (an ensemble, a Gaussian...)
``forecast(state, ssm, rng)``          the forecast state
``analysis(state, y, ssm, rng)``       the analysis state given one observation ``y``
``moments(state)``                     ``(mean, spread)``; ``spread`` is ``None`` if unknown
``members(state)``                     the ensemble ``(N, d)`` or ``None``
``log_weights(state)``                 particle log-weights ``(N,)`` or ``None``
=====================================  =================================================

``check(ssm)`` validates once, before cycling, that the method suits the model, so the cycle
itself calls the unvalidated internal functions.  ``prepare(ssm)`` returns what stays fixed
over a run (a 3DVar gain, LETKF local observation sets, optimal-proposal matrices);
``constants(ssm)`` computes it once per model, in ``init``, and hands it to the steps.

Everything that *changes* during a run (the ensemble, adaptive estimates, their history)
lives in the state that ``init`` returns and the driver carries, never on the method
object (see :class:`~dalib.learning.innovations.AdaptiveState`), so one filter object can
serve several runs, even interleaved ones on different models.

Each filter object lives beside its algorithm:

- :class:`~dalib.da.ensemble.EnsembleMethod` (the shared ensemble forecast and moments) and
  :class:`~dalib.da.ensemble.EnsembleFilter` (your own analysis) in :mod:`dalib.da.ensemble`;
- ``ETKF`` and ``EnKF`` in :mod:`dalib.da.enkf`, ``LETKF`` in :mod:`dalib.da.localization`;
- ``KalmanFilter`` in :mod:`dalib.da.kalman`, ``ExtendedKF`` in :mod:`dalib.da.ekf`,
  ``ThreeDVar`` in :mod:`dalib.da.var3d`;
- ``BootstrapPF`` and ``OptimalPF`` in :mod:`dalib.da.particle`;
- ``MultifidelityEnKF`` in :mod:`dalib.da.multifidelity_enkf`, ``MultiModelEnKF`` in
  :mod:`dalib.da.multimodel`.

A new method subclasses :class:`Method` (or :class:`~dalib.da.ensemble.EnsembleMethod`) in
the module of its algorithm and is exported from :mod:`dalib.da`.

Every array a method makes lives on the device of ``ssm.m0`` and of the ensemble, and the
cycle itself never asks the device for a value, so on a GPU the whole loop stays there.
"""

from __future__ import annotations

__all__ = ["Method"]


class Method:
    """Base class of the sequential methods run by :func:`~dalib.da.cycling.assimilate`."""

    def check(self, ssm) -> None:
        """Raise a clear error if the method cannot run on ``ssm``."""

    def prepare(self, ssm):
        """The run constants of ``ssm`` (a gain, local observation sets, ...), or ``None``."""
        return None

    def constants(self, ssm):
        """``prepare(ssm)``, computed once per model: kept until a step asks with another."""
        cached = getattr(self, "_constants", None)
        if cached is None or cached[0] is not ssm:
            self._constants = (ssm, self.prepare(ssm))
        return self._constants[1]

    def init(self, ssm, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def forecast(self, state, ssm, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def analysis(self, state, y, ssm, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def moments(self, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def members(self, state):
        return None

    def log_weights(self, state):
        return None

    def extras(self, state) -> dict:
        """Run-level outputs kept in the result (e.g. the Kalman log-likelihood)."""
        return {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({fields})"

    def _params(self) -> dict:
        return {}
