"""Ensembles sharded over four CPU host devices give the single-device analysis.

JAX fixes its device count when it is first imported, and the test process has imported it
already, so the check runs in a fresh interpreter with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` set before the import.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    import numpy as np
    import dalib
    from dalib.da import ETKF, EnKF, LETKF, letkf_analysis, local_observations
    from dalib.da.compiled import assimilate_compiled
    from dalib.da.sharding import device_mesh, ensemble_sharding, shard_ensemble
    from dalib.setups import lorenz96

    assert len(jax.devices()) == 4, jax.devices()
    out = {}
    ssm = lorenz96(d=40, xp="jax")
    twin = ssm.simulate(6, dalib.default_rng(1, "jax"))
    mesh = device_mesh()
    # the global filters split by members, the LETKF by grid points
    for method, over in ((ETKF(N=8, inflation=1.02), "members"),
                         (EnKF(N=8, inflation=1.02), "members"),
                         (LETKF(N=8, radius=4.0, inflation=1.02), "grid")):
        one = assimilate_compiled(method, twin, dalib.default_rng(3, "jax"),
                                  store_ensembles=True)
        sh = ensemble_sharding(mesh, over)
        many = assimilate_compiled(method, twin, dalib.default_rng(3, "jax"),
                                   store_ensembles=True, sharding=sh)
        out[f"{method!r} {over}"] = float(np.max(np.abs(
            np.asarray(many.ensembles_a) - np.asarray(one.ensembles_a))))
    # one LETKF analysis, jitted, on a grid-sharded ensemble: placement and values
    E = dalib.asarray(np.random.default_rng(0).standard_normal((8, 40)), "jax")
    y = twin.y[0]
    loc = local_observations(40, range(40), 4.0, "jax")
    f = jax.jit(lambda E: letkf_analysis(E, y, ssm.h, 1.0, loc))
    Es = shard_ensemble(E, ensemble_sharding(mesh, "grid"))
    Ea = f(Es)
    out["letkf one step"] = float(np.max(np.abs(np.asarray(Ea) - np.asarray(f(E)))))
    out["devices of the input"] = len(Es.sharding.device_set)
    print("RESULT" + json.dumps(out))
    """
)


def test_sharded_analysis_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], check=False, env=env,
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT"))
    out = json.loads(line[len("RESULT"):])
    assert out.pop("devices of the input") == 4
    assert len(out) == 4
    for name, diff in out.items():
        # the same program split four ways: only the order of sums over split axes differs
        assert diff <= 1e-12, (name, diff)
