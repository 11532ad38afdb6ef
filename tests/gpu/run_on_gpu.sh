#!/usr/bin/env bash
# Runs the CUDA tests (label "gpu": kernels against CPU references, the model against the
# transformers fixtures) on a machine with an NVIDIA GPU, from binaries built elsewhere.
# Usage: tests/gpu/run_on_gpu.sh TEST_BINARY [gtest args...]
# The fixtures are read from the source tree the binary was configured in (SLUICE_SOURCE_DIR);
# when the tree sits elsewhere on the GPU machine, link it there first.
set -uo pipefail
bin=$1; shift
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv
"$bin" --gtest_color=no "$@" 2>&1 | grep -vE "^\[ +(RUN|OK) +\]" | grep -vE "^$"
exit "${PIPESTATUS[0]}"
