#!/usr/bin/env bash
# Sets up, builds and runs every test (unit, integration, real clients).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure -j "${SLUICE_TEST_JOBS:-2}" --timeout 600 "$@"
