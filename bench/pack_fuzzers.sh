#!/usr/bin/env bash
# Packs fuzz targets of a clang fuzz build (default build-clang) for bench/gpu_fuzz_background.sh:
#   bench/pack_fuzzers.sh [BUILD] [OUT.txz] [TARGET...]   (default: the four slowest targets)
# with lib/: the shared libraries they need beyond the C/C++ runtime that the server's pack
# (GPU_PACK, default .gpu/gpu-binaries.txz from bench/pack_gpu_binaries.sh) does not hold.
set -euo pipefail
build=${1:-build-clang}; out=${2:-.gpu/fuzzers.txz}; shift 2 || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(tokenizer_encode model_config tokenizer_json chat_template)
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
packed=$(tar tJf "${GPU_PACK:-.gpu/gpu-binaries.txz}" | sed -n 's|.*lib/||p')
for t in "${targets[@]}"; do
  cp "$build/fuzz/${t}_fuzzer" "$stage/"
  ldd "$build/fuzz/${t}_fuzzer" | awk '/=>/ {print $3}' |
    grep -vE 'lib(c|m|pthread|dl|rt|gcc_s|stdc\+\+)\.so|ld-linux' |
    while read -r l; do grep -qxF "$(basename "$l")" <<< "$packed" || cp -L "$l" "$stage/lib/"; done
done
tar cJf "$out" -C "$stage" .
ls -la "$out"; tar tJf "$out" | grep lib/. || true
