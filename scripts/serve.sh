#!/usr/bin/env bash
# Sets up, builds and starts sluice on the bundled default model repository (examples/).
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE_SKIP_PYTHON=1 scripts/setup.sh  # the test clients (.venv/) are not needed to serve
scripts/build.sh
exec build/src/server/sluice "$@"
