#!/usr/bin/env bash
# Fetch, on a machine with a registry, the wheels that the GPU check machine lacks (its image has
# Python 3.12 with CuPy, numba, numba-cuda, pytest, hypothesis, scipy, matplotlib, but no network and
# none of these), into .whl/; first ignore it (`echo /.whl/ >> .git/info/exclude`). gpu_check.sh
# installs them from there; carry .whl with the working tree (about 4 MB).
#   bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -iE "^$1==" requirements.txt; }
names="nbformat fastjsonschema jsonschema jsonschema-specifications referencing rpds-py traitlets jupyter_core
platformdirs dask distributed partd locket zict tblib tornado importlib_metadata"
specs=$(for n in $names; do pin "$n"; done)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl $specs
ls -la .whl | tail -n +2
