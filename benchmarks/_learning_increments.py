"""Benchmark targets of chapter 9, "Correcting model error with analysis increments".

Truth: the two-scale Lorenz-96 model (``dalib.setups.lorenz96_two_scale``, Lorenz 1996
parameters), its 36 slow variables observed every 0.05 with ``R = I``.  Forecast model:
the single-scale Lorenz-96 model of the slow variables with forcing 11 (the missing fast
variables and a forcing 10% too high are its model error).  An ETKF (N = 20, inflation the
best of a grid) cycles with it; a constant bias, Leith's linear correction and a pointwise
network are fitted to its analysis increments; each is then iterated four times: a further
correction is fitted to the increments of the filter run with the corrected model and
added to it.  Scores on an independent test
period: ETKF analysis RMSE and the RMSE of free forecasts from the true slow state at lead
1 time unit, averaged over seeds.

``targets(quick)`` returns one dict per target (``name``, ``target``, ``tolerance``,
``measured``, ``passed``).

    python benchmarks/learning.py --part increments --quick
    python benchmarks/learning.py --part increments
"""

from __future__ import annotations

import numpy as np

import dalib
from dalib.da import ETKF, assimilate
from dalib.learning import (
    CorrectedModel,
    IncrementCorrectedModel,
    LocalDictionary,
    expectation_maximization,
    fit_bias,
    fit_linear,
    fit_network,
    increment_data,
)
from dalib.models import Lorenz96, RK4Map
from dalib.observations import Identity

KINDS = ("uncorrected", "bias", "linear", "network")
F_MODEL = 11.0
INFLATIONS = (1.1, 1.2, 1.4, 1.7, 2.0, 2.5)
ITERATIONS = 4
EM_CYCLES = 600
NETWORK = dict(width=1, channels=4, hidden=16, n_iter=1000, batch_size=256, lr=1e-2)


def _row(name, target, tolerance, measured, passed):
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": measured, "passed": bool(passed)}


def _fit(kind, data, seed):
    if kind == "bias":
        return fit_bias(data)
    if kind == "linear":
        return fit_linear(data)
    return fit_network(data, rng=seed, **NETWORK)[0]


def run_seed(seed: int, J_train: int, J_test: int, iterations: int = ITERATIONS) -> dict:
    """Scores ``{kind: (analysis RMSE, forecast RMSE at lead 1)}`` of one seed."""
    truth = dalib.setups.lorenz96_two_scale().simulate(J_train + J_test, rng=seed)
    X = np.asarray(truth.x[:, :36])
    M0 = RK4Map(Lorenz96(36, F=F_MODEL), dt=0.01, steps=5)
    ssm = dalib.StateSpaceModel(M=M0, h=Identity(36), R=1.0, m0=X[0], C0=1.0, dt=0.05)

    def twin(M, a, b):
        return dalib.TwinExperiment(ssm.replace(M=M), truth.t[a:b + 1] - truth.t[a],
                                    X[a:b + 1], truth.y[a:b])

    def tuned(M):
        return min(INFLATIONS, key=lambda a: assimilate(
            ETKF(20, inflation=a), twin(M, 0, 300), rng=seed + 1).rmse())

    starts = np.arange(J_train, J_train + J_test - 20, 5)

    def forecast_rmse(M):
        x = X[starts]
        for _ in range(20):
            x = M(x)
        return float(np.sqrt(np.mean((x - X[starts + 20]) ** 2)))

    def scores(M, a):
        an = assimilate(ETKF(20, inflation=a), twin(M, J_train, J_train + J_test),
                        rng=seed + 2).rmse()
        return float(an), forecast_rmse(M)

    a0 = tuned(M0)
    data0 = increment_data(assimilate(ETKF(20, inflation=a0), twin(M0, 0, J_train),
                                      rng=seed + 3))
    out = {"uncorrected": scores(M0, a0)}
    for kind in KINDS[1:]:
        M, data = M0, data0
        for it in range(iterations + 1):
            M = IncrementCorrectedModel(M, _fit(kind, data, seed + 4 + it))
            a = tuned(M)
            if it < iterations:
                data = increment_data(assimilate(ETKF(20, inflation=a),
                                                 twin(M, 0, J_train), rng=seed + 3))
        out[kind] = scores(M, a)
    family = CorrectedModel(M0, LocalDictionary([(), (0,), (0, 0), (0, 0, 0)]), 36)
    em = expectation_maximization(twin(M0, 0, EM_CYCLES), family, np.zeros(4), 0.1, N=20,
                                  n_iter=4, rng=seed + 7, inflation=1.05)
    out["EM"] = (float("nan"), forecast_rmse(family(em.theta)))
    return out


def targets(quick: bool) -> list[dict]:
    """The ordering and the size of the improvement, over seeds."""
    seeds = (1, 2, 3) if quick else (1, 2, 3, 4, 5, 6)
    J_train, J_test = (2000, 400) if quick else (4000, 1000)
    runs = [run_seed(s, J_train, J_test) for s in seeds]
    rows = []
    for i, what in enumerate(("analysis RMSE", "forecast RMSE at lead 1")):
        values = {k: np.array([r[k][i] for r in runs]) for k in KINDS}
        for worse, better in zip(KINDS[:-1], KINDS[1:]):
            gain = values[worse] - values[better]
            # strict improvement beyond the seed-to-seed spread of the paired differences
            spread = gain.std(ddof=1)
            rows.append(_row(
                f"Increments (two-scale L96): {what}, {better} < {worse} "
                f"(means {values[better].mean():.3f} < {values[worse].mean():.3f})",
                "mean gain > spread", f"{spread:.3f}", f"{gain.mean():.3f}",
                gain.mean() > spread and (gain > 0).all()))
    fc = {k: np.array([r[k][1] for r in runs]) for k in (*KINDS, "EM")}
    ratio = float((fc["network"] / fc["uncorrected"]).mean())
    rows.append(_row("Increments (two-scale L96): forecast RMSE at lead 1, "
                     "network/uncorrected", "ratio", "<= 0.5", f"{ratio:.3f}", ratio <= 0.5))
    em = (fc["EM"] / fc["uncorrected"]).mean()
    rows.append(_row("Through the filter (EM, cubic, 600 cycles) vs increments (network, "
                     f"iterated): lead-1 forecast RMSE / uncorrected ({em:.3f} vs "
                     f"{ratio:.3f})", "EM < network, every seed", "",
                     f"{em:.3f}", (fc["EM"] < fc["network"]).all()))
    return rows


if __name__ == "__main__":
    import sys

    import learning

    sys.exit(learning.main(["--part", "increments", *sys.argv[1:]]))
