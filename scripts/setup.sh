#!/usr/bin/env bash
# Installs Sluice's build and test dependencies: Debian 12 packages (as root, or through
# sudo), then the real clients the tests run, from PyPI into the project virtual environment
# .venv/ (exact pins in tests/requirements.txt; SLUICE_SKIP_PYTHON=1 skips them, as serve.sh
# does). Idempotent, and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libopenblas-dev libicu-dev zlib1g-dev
  curl procps python3 python3-venv
  prometheus
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ "${SLUICE_SKIP_PYTHON:-0}" = 1 ] || scripts/setup_python.sh
