#!/usr/bin/env bash
# Configures and builds Sluice into build/ (Release with debug info, Ninja, ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${SLUICE_JOBS:-$(nproc)}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${SLUICE_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
ninja -C build -j "$jobs"
