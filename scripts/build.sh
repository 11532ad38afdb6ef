#!/usr/bin/env bash
# Configures and builds Sluice into build/ (Release with debug info, Ninja, ccache), with
# warnings as errors (SLUICE_WERROR), as CI builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${SLUICE_JOBS:-$(nproc)}"
# ccache hits across checkouts (a clean clone in another folder, as .ci/run makes): paths
# under the source tree are hashed relative to it, and the working directory not at all.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${SLUICE_BUILD_TYPE:-RelWithDebInfo}" \
  -DSLUICE_WERROR=ON "$@" >/dev/null
ninja -C build -j "$jobs"
