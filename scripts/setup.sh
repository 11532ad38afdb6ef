#!/usr/bin/env bash
# Installs Sluice's build and test dependencies from Debian 12 packages (as root, or
# through sudo), then the npm test clients (npm ci). Idempotent: skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config ccache git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libopenblas-dev libicu-dev
  curl procps
)
# Node.js and npm for the real clients, unless some installation already provides them
# (Debian's nodejs and npm packages conflict with NodeSource's nodejs).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
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

# Real clients for the tests (OpenAI SDK, HF tokenizers, a real Qwen tokenizer).
if [ -f tests/package-lock.json ] && [ "${SLUICE_SKIP_NPM:-0}" != 1 ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
