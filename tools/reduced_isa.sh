#!/usr/bin/env bash
# Run a command as on an x86-64 processor of SSE4.2 level: no AVX, FMA or AVX-512 in NumPy's
# loops, OpenBLAS's kernels or JAX's compiled code.  `make test` re-checks the stored
# notebook outputs this way, so that they are known to hold on other processors, not only
# on the one that wrote them.  Usage: tools/reduced_isa.sh COMMAND [ARGS...]
set -euo pipefail
if [ "$(uname -m)" != "x86_64" ]; then
    echo "reduced_isa.sh: emulates an older x86-64 processor; this is $(uname -m)" >&2
    exit 2
fi
export OPENBLAS_CORETYPE=Nehalem
# NumPy 2.4 names its dispatch targets X86_V3 (AVX2, FMA3), X86_V4 and AVX512_* (AVX-512);
# older NumPy used the names of the single extensions. Unknown names are ignored.
export NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR AVX F16C FMA3 AVX2 \
AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"
export XLA_FLAGS="--xla_cpu_max_isa=SSE4_2${XLA_FLAGS:+ $XLA_FLAGS}"
PY=${PYTHON:-python3}
"$PY" - <<'PYEOF'
import numpy._core._multiarray_umath as umath
features = umath.__cpu_features__
targets = ("X86_V3", "X86_V4") if "X86_V3" in features else ("AVX2", "FMA3", "AVX512F")
on = [name for name in targets if features[name]]
if on:
    raise SystemExit(f"reduced_isa.sh: NumPy still dispatches to {on}; "
                     "NPY_DISABLE_CPU_FEATURES did not take effect")
print("reduced instruction set: SSE4.2 level (OpenBLAS Nehalem kernels, NumPy without "
      "AVX/FMA/AVX-512 loops, XLA max ISA SSE4_2)")
PYEOF
exec "$@"
