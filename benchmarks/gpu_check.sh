#!/usr/bin/env bash
# One-shot validation of the GPU path on a machine with an NVIDIA GPU (issue 16, item 4).
#
#   bash benchmarks/gpu_check.sh            # from the repository root; ~10 minutes on an H200
#
# Steps (each logged to $OUT, default /tmp/gpu-check-out; a failing step does not stop the others):
#   1. install requirements-gpu.txt (from a registry, or, where there is no network, the wheels that
#      benchmarks/gpu_wheels.sh fetched into .whl/ beforehand, over the Python packages installed)
#   2. versions: GPU, driver, CuPy, numba, numba's CUDA target
#   3. the whole unit-test suite with QUADNET_BACKEND=cupy, gpu-marked tests included (the CUDA
#      kernels' tests of tests/test_sgd_cuda.py then run on the GPU, and once more in the simulator)
#   4. two chapters executed on the GPU (QUADNET_BACKEND=cupy, quick profile)
#   5. the benchmarks with GPU rows -> benchmarks/results-gpu.json (device name inside), and the
#      targets: fused chain >= 1e9 replica-steps/s (p = 4, p* = 2, curve against replicas),
#      weight-space fused >= 20x the CuPy blocked engine at N = 1e4, R = 1024
# Then: if every step passed, set quadnet.backend.GPU_VALIDATED = True (and commit results-gpu.json).
#
# On this workplace's H200 (no network; Python 3.12 with CuPy, numba, numba-cuda preinstalled):
# first, here, `echo /.whl/ >> .git/info/exclude; bash benchmarks/gpu_wheels.sh`, then one device
# call `bash benchmarks/gpu_check.sh` with carry [".whl"] and timeout_s 600 (it keeps to ~9 min:
# tests 300 s, chapters 2 x 90 s, bench 180 s at most); $OUT comes back.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "==== $1"; }
note() { echo "$1" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

step "1. install"
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" && note "install: wheels from .whl/"
elif timeout 120 $PY -m pip install -q --retries 0 --timeout 5 -r requirements-gpu.txt >"$OUT/pip.log" 2>&1; then
  note "install: requirements-gpu.txt"
else
  note "install: no registry reachable; using the installed packages (see $OUT/pip.log)"
fi

step "2. versions"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  $PY - <<'EOF'
import numpy, cupy, numba
from numba import cuda
from quadnet.sgd import _cuda
print("numpy", numpy.__version__, "| cupy", cupy.__version__, "| numba", numba.__version__,
      "| CUDA target:", _cuda.implementation(), "| kernels available:", _cuda.kernels_available())
print("device:", cuda.get_current_device().name, "cc", cuda.get_current_device().compute_capability)
EOF
} 2>&1 | tee "$OUT/versions.txt"

step "3. unit tests, QUADNET_BACKEND=cupy"
XD=""; $PY -c "import xdist" 2>/dev/null && XD="-n 8"
QUADNET_BACKEND=cupy timeout 300 $PY -m pytest -q -p no:cacheprovider -m "not site and not browser" $XD \
  --continue-on-collection-errors --junitxml="$OUT/junit.xml" tests \
  > "$OUT/tests.log" 2>&1
rc=$?; tail -25 "$OUT/tests.log"; note "tests (QUADNET_BACKEND=cupy): rc=$rc, $(tail -1 "$OUT/tests.log")"
[ $rc -eq 0 ] || status=1

step "4. two chapters on the GPU"
for ch in book/02_dynamics.ipynb book/04_escape.ipynb; do
  QUADNET_BACKEND=cupy QUADNET_PROFILE=quick timeout 90 $PY benchmarks/run_chapter.py "$ch" \
    > "$OUT/chapter-$(basename "$ch" .ipynb).log" 2>&1
  rc=$?; tail -3 "$OUT/chapter-$(basename "$ch" .ipynb).log"; note "chapter $ch: rc=$rc"
  [ $rc -eq 0 ] || status=1
done

step "5. benchmarks with GPU rows"
timeout 180 $PY benchmarks/run.py --quick --Ns 1000,10000 --out "$OUT/results-cpu.json" \
  --gpu-out benchmarks/results-gpu.json 2>&1 | tee "$OUT/bench.log"
rc=$?; note "bench: rc=$rc"
[ $rc -eq 0 ] || status=1
if [ -f benchmarks/results-gpu.json ]; then
  cp benchmarks/results-gpu.json "$OUT/"
  $PY - <<'EOF' | tee -a "$OUT/summary.txt"
import json
t = json.load(open("benchmarks/results-gpu.json"))["targets"]
print(f"target chain >= 1e9 replica-steps/s: {t['chain_replica_steps_per_s']:.3g} -> {'MET' if t['chain_met'] else 'MISSED'}")
print(f"target weights >= 20x CuPy: {t['weights_ratio']:.3g}x -> {'MET' if t['weights_met'] else 'MISSED'}")
EOF
fi

echo; echo "==== summary ($OUT/summary.txt)"; cat "$OUT/summary.txt"
exit $status
