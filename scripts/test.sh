#!/usr/bin/env bash
# Sets up, builds and runs every test (unit, integration, real clients), then the sanitizer
# stage (scripts/test_sanitizers.sh: ASan + UBSan with the fuzz smokes, TSan);
# SLUICE_SKIP_SANITIZERS=1 skips that stage in a quick local loop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j "${SLUICE_TEST_JOBS:-2}" --timeout 600 "$@")
[ "${SLUICE_SKIP_SANITIZERS:-0}" = 1 ] || scripts/test_sanitizers.sh
