"""Targets of chapter 10: surrogates inside 3DVar, the closeness bound, multifidelity Monte
Carlo and the multifidelity EnKF.

Each target is a dict with ``name``, ``target``, ``tolerance``, ``measured`` and
``passed``; :func:`targets` runs them all.  Run them alone with::

    python benchmarks/learning.py --part multifidelity --quick

Setups (those of the chapter):

* Surrogates: Lorenz-96 of Sakov and Oke (2008), 3DVar with B = 0.02 C_clim, forecast
  model M(x) + eps sin(x_{k-1}); the analysis RMSE at eps = 0.01 against the true model's,
  over several seeds.
* Closeness bound: a linear model A = rotations (d = 40), H = I, R = I, K = I/2;
  the largest RMS difference between the 3DVar analyses with M and with
  M + eps sin(x_{k-1}), divided by |I - KH| eps / (1 - lambda), lambda = |(I - KH) A|.
* MFMC: the first slow variable of the two-scale Lorenz-96 model at T = 1 from a state
  with perturbed slow variables; low-fidelity models: the slow model with a cubic
  increment correction, the slow model alone, a small network surrogate.  A pool of P runs
  of every model; repetitions draw inputs from it with replacement (exact i.i.d. samples
  of the pool's distribution).  Costs are measured wall-clock times per input.
* MF-EnKF: two-scale truth, slow variables observed every 0.05 with R = I; 5 two-scale
  plus 40 cheap members (corrected slow model, fast variables regressed on their slow
  variable) against the two-scale EnKF with the same measured forecast cost (rounded up)
  and with twice and four times that cost;
  best of inflations 1.05 and 1.2 for each; a filter that loses the truth scores the
  climatological spread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import dalib  # noqa: E402
from dalib.da import (  # noqa: E402
    EnKF,
    FilterDivergenceError,
    FilterDivergenceWarning,
    MultifidelityEnKF,
    ThreeDVar,
    assimilate,
)
from dalib.learning import IncrementCorrectedModel  # noqa: E402
from dalib.learning.surrogates import fit_network_surrogate  # noqa: E402
from dalib.models import Lorenz96, RK4Map  # noqa: E402
from dalib.multifidelity import (  # noqa: E402
    mfmc_mean,
    mfmc_select,
    mfmc_variance,
    mfmc_weights,
    pilot_statistics,
)

KS = 36  # slow variables of the two-scale model


def _target(name, target, tolerance, measured, passed):
    return {"name": name, "target": target, "tolerance": tolerance,
            "measured": float(measured), "passed": bool(passed)}


class Surrogate:
    """``M(x) + eps sin(x_{k-1})``: a model error of at most eps in the RMS norm."""

    def __init__(self, M, eps):
        self.M, self.eps = M, eps

    def __call__(self, x):
        return self.M(x) + self.eps * np.sin(np.roll(x, 1, axis=-1))


def _with_model(twin, model):
    return dalib.TwinExperiment(twin.ssm.replace(M=model), twin.t, twin.x, twin.y)


def _rms(v):
    return np.sqrt(np.mean(np.asarray(v) ** 2, axis=-1))


def _surrogate_rows(quick):
    seeds, J = (range(3), 1100) if quick else (range(5), 5100)
    ssm = dalib.setups.lorenz96()
    clim = np.asarray(ssm.simulate(20000, rng=100).x)[1000:]
    B = 0.02 * np.cov(clim.T)
    base, near, far = [], [], []
    for seed in seeds:
        twin = ssm.simulate(J, rng=seed)
        base.append(float(assimilate(ThreeDVar(B=B), twin, rng=seed).rmse(100)))
        for eps, out in ((0.01, near), (1.0, far)):
            run = assimilate(ThreeDVar(B=B), _with_model(twin, Surrogate(ssm.M, eps)),
                             rng=seed)
            out.append(float(run.rmse(100)))
    n = len(seeds)
    gap = float(np.max(np.abs(np.array(near) - np.array(base))))
    return [
        _target(f"3DVar with the true model, L96 Sakov-Oke, mean RMSE over {n} seeds",
                0.41, "10%", np.mean(base), abs(np.mean(base) - 0.41) <= 0.041),
        _target(f"3DVar with a surrogate of one-step error 0.01: largest |RMSE - "
                f"true-model RMSE| over {n} seeds", 0, 0.02, gap, gap <= 0.02),
        _target("3DVar with a surrogate of one-step error 1: mean RMSE / true-model's",
                "> 2", "", np.mean(far) / np.mean(base), np.mean(far) > 2 * np.mean(base)),
    ]


def _bound_rows(quick):
    lin = dalib.setups.linear_gaussian(d=40, damping=1.0, observe=np.eye(40), R=1.0)
    K = np.eye(40) / 2
    I_KH = np.eye(40) - K
    lam = float(np.linalg.norm(I_KH @ np.asarray(lin.M.A), 2))
    worst = 0.0
    for seed in range(2 if quick else 5):
        twin = lin.simulate(600 if quick else 3000, rng=seed)
        exact = np.asarray(assimilate(ThreeDVar(K=K), twin, rng=seed).analysis)
        for eps in (0.01, 0.1, 1.0):
            run = assimilate(ThreeDVar(K=K), _with_model(twin, Surrogate(lin.M, eps)),
                             rng=seed)
            gap = float(np.max(_rms(exact - np.asarray(run.analysis))))
            bound = float(np.linalg.norm(I_KH, 2)) * eps / (1 - lam)
            worst = max(worst, gap / bound)
    return [_target(f"closeness bound, linear 3DVar (lambda = {lam:.3f}): largest "
                    "difference / bound over eps and seeds", "<= 1", "", worst,
                    worst <= 1)]


class _Hierarchy:
    """The two-scale model and its cheap relatives, trained on one trajectory."""

    def __init__(self, seed):
        self.two = dalib.setups.lorenz96_two_scale()
        train = np.asarray(self.two.simulate(1000, rng=seed).x)
        self.train = train
        X = train[:, :KS]
        self.M_slow = RK4Map(Lorenz96(KS, 10.0), 0.01, 5)
        xf = np.asarray(self.M_slow(X[:-1]))
        cubic = np.polyfit(xf.ravel(), (X[1:] - xf).ravel(), 3)
        self.M_corr = IncrementCorrectedModel(self.M_slow, lambda x: np.polyval(cubic, x))
        self.net = fit_network_surrogate(X, dt=0.05, rng=seed + 1, n_iter=300, width=5,
                                         channels=4, hidden=16)
        Y = train[:, KS:].reshape(-1, KS, 10)
        self.G = np.array([np.polyfit(X.ravel(), Y[:, :, j].ravel(), 1)
                           for j in range(10)])

    def cheap(self, x):
        xs = self.M_corr(x[..., :KS])
        fast = self.G[:, 0] * xs[..., None] + self.G[:, 1]
        return np.concatenate([xs, fast.reshape(*xs.shape[:-1], KS * 10)], axis=-1)


def _mfmc_rows(quick, h):
    P, reps, windows = (2000, 2000, 20) if quick else (6000, 10000, 20)
    x_ref = h.train[-1]
    V = np.random.default_rng(7).standard_normal((P, KS))
    start = np.concatenate([x_ref[:KS] + V, np.broadcast_to(x_ref[KS:],
                                                            (P, x_ref.size - KS))], 1)
    models = {"hi": (h.two.M, start), "corrected": (h.M_corr, start[:, :KS]),
              "slow": (h.M_slow, start[:, :KS]), "network": (h.net, start[:, :KS])}
    q, cost = {}, {}
    for name, (model, x0) in models.items():
        x = x0
        for _ in range(windows):
            x = model(x)
        q[name] = np.asarray(x)[:, 0]
        times = []
        for _ in range(3):
            tic = time.perf_counter()
            x = x0[:200]
            for _ in range(windows):
                x = model(x)
            times.append(time.perf_counter() - tic)
        cost[name] = min(times) / 200
    lo = ["corrected", "slow", "network"]
    rng = np.random.default_rng(8)
    # unbiasedness and eq. (11) at fixed sizes, exact pool statistics
    N_hi, N = 5, [20, 100]
    pick = rng.integers(P, size=(N[-1], reps))
    s_hi = float(np.std(q["hi"]))
    s = [float(np.std(q[k])) for k in lo[:2]]
    r = [float(np.corrcoef(q["hi"], q[k])[0, 1]) for k in lo[:2]]
    est = np.asarray(mfmc_mean(q["hi"][pick[:N_hi]],
                               [q["corrected"][pick[:N[0]]], q["slow"][pick]],
                               mfmc_weights(r, s_hi, s)))
    z = (est.mean() - q["hi"].mean()) / (est.std() / np.sqrt(reps))
    ratio = est.var() / mfmc_variance(s_hi, s, r, N_hi, N)
    # selection and allocation for a budget of 20 high-fidelity runs, measured costs
    sigma_hi, sigma, rho = pilot_statistics(q["hi"], [q[k] for k in lo])
    rho = [float(v) for v in rho]
    budget = 20.0
    best = mfmc_select(rho, 1.0, [cost[k] / cost["hi"] for k in lo], budget,
                       sigma_hi=float(sigma_hi))
    n_hi, n_lo = best.integer()
    chosen = list(best.models)
    pick = rng.integers(P, size=(max([n_hi, *n_lo]), reps))
    mf = np.asarray(mfmc_mean(q["hi"][pick[:n_hi]],
                              [q[lo[k]][pick[:n]] for k, n in zip(chosen, n_lo)],
                              mfmc_weights([rho[k] for k in chosen], sigma_hi,
                                           [sigma[k] for k in chosen])))
    mc = q["hi"][pick[:int(budget)]].mean(axis=0)
    names = "+".join(lo[k] for k in chosen) or "none"
    return [
        _target(f"MFMC (hi + corrected + slow, N = 5, 20, 100), {reps} repetitions: "
                "|mean - pool mean| / standard error", "< 3", "", abs(z), abs(z) < 3),
        _target(f"MFMC, {reps} repetitions: variance / eq. (11)", 1, "10%", ratio,
                abs(ratio - 1) <= 0.1),
        _target(f"MFMC selection for 20 hi runs (chose {names}; rho = "
                f"{', '.join(f'{v:.2f}' for v in rho)}): eq. (11) variance reduction vs "
                "plain MC at equal cost", "> 1", "", best.mc_variance / best.variance,
                best.mc_variance / best.variance > 1),
        _target(f"MFMC at the selected sizes, {reps} repetitions: measured variance "
                "reduction vs plain MC at equal cost", "> 1", "", mc.var() / mf.var(),
                mc.var() > mf.var()),
    ]


def _member_cost(model, x, n=200):
    x = np.repeat(x[None], n, axis=0)
    model(x)
    times = []
    for _ in range(5):
        tic = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - tic)
    return min(times) / n


def _mfenkf_rows(quick, h):
    seeds, J, burn = (range(2), 300, 50) if quick else (range(5), 1000, 100)
    w_hi = _member_cost(h.two.M, h.train[-1])
    w_lo = _member_cost(h.cheap, h.train[-1])
    n_equal = int(np.ceil((5 * w_hi + 40 * w_lo) / w_hi))
    clim = float(np.sqrt(np.mean(np.var(h.train[:, :KS], axis=0))))

    def score(method, twin, seed):
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", FilterDivergenceWarning)
                run = assimilate(method, twin, rng=seed)
        except (FilterDivergenceError, FloatingPointError, ValueError):
            return clim
        err = np.asarray(run.analysis)[burn + 1:, :KS] - np.asarray(twin.x)[burn + 1:, :KS]
        return min(clim, float(np.mean(_rms(err))))

    mf, hi, hi2, hi4 = [], [], [], []
    for seed in seeds:
        twin = h.two.simulate(J, rng=1000 + seed)
        mf.append(min(score(MultifidelityEnKF([(h.cheap, w_lo / w_hi)], N_hi=5, N=[40],
                                              inflation=f), twin, seed)
                      for f in (1.05, 1.2)))
        hi.append(min(score(EnKF(n_equal, inflation=f), twin, seed) for f in (1.05, 1.2)))
        hi2.append(min(score(EnKF(2 * n_equal, inflation=f), twin, seed)
                       for f in (1.05, 1.2)))
        hi4.append(min(score(EnKF(4 * n_equal, inflation=f), twin, seed)
                       for f in (1.05, 1.2)))
    n = len(seeds)
    return [_target(f"MF-EnKF (5 two-scale + 40 cheap members) slow-variable RMSE / "
                    f"two-scale EnKF's at equal measured cost (N = {n_equal}), mean over "
                    f"{n} seeds", "< 1", "", np.mean(mf) / np.mean(hi),
                    np.mean(mf) < np.mean(hi)),
            _target(f"MF-EnKF slow-variable RMSE / two-scale EnKF's at twice the cost "
                    f"(N = {2 * n_equal}), mean over {n} seeds", "< 1", "",
                    np.mean(mf) / np.mean(hi2), np.mean(mf) < np.mean(hi2)),
            _target(f"MF-EnKF slow-variable RMSE / two-scale EnKF's at four times the "
                    f"cost (N = {4 * n_equal}; informative: where the two-scale ensemble "
                    "catches up)", "< 1", "", np.mean(mf) / np.mean(hi4),
                    np.mean(mf) < np.mean(hi4))]


def targets(quick: bool) -> list[dict]:
    h = _Hierarchy(seed=11)
    return (_surrogate_rows(quick) + _bound_rows(quick) + _mfmc_rows(quick, h)
            + _mfenkf_rows(quick, h))
