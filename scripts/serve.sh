#!/usr/bin/env bash
# Sets up, builds and starts sluice on the bundled default model repository (examples/).
# Builds only what serving needs, the server and its stub (no tests, no tools), as a
# Release build of its own in build-serve/: the first start on a fresh 2-core machine is the
# Debian packages plus a few minutes of compiling (scripts/build.sh builds everything).
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE_SKIP_PYTHON=1 scripts/setup.sh  # the test clients (.venv/) are not needed to serve
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build-serve -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF >/dev/null
ninja -C build-serve -j "${SLUICE_JOBS:-$(nproc)}" sluice sluice-stub
exec build-serve/src/server/sluice "$@"
