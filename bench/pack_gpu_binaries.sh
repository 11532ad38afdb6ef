#!/usr/bin/env bash
# Packs what a GPU machine needs to run bench/gpu_7b.sh and the CUDA tests, from a build on
# this (Debian 12) machine: sluice, sluice-stub, the CUDA device module that the stub opens
# for a GPU model (libsluice_cuda_device.so, beside the stub in bin/real/, where it looks
# first), sluice-bench, sluice-lifecycle, cuda_kernels_test, prefill_attention_bench and
# gptq_product_bench and matmul_algo_bench with debug info stripped, and
# the shared libraries they use that a GPU machine may lack (not the C/C++ runtime, not
# CUDA's). bin/NAME are wrappers that put the packed lib/ first on LD_LIBRARY_PATH for
# bin/real/NAME only, so that the GPU machine's own programs (python with PyTorch) keep their
# libraries; the stub is found next to sluice.
#
# Usage: bench/pack_gpu_binaries.sh [BUILD_DIR] [OUT.txz]   (defaults: build, gpu-binaries.txz)
# On the GPU machine: tar xJf OUT.txz -C DIR, then bench/gpu_7b.sh DIR/bin ...,
# tests/gpu/run_on_gpu.sh DIR/bin/cuda_kernels_test.
set -euo pipefail
build=${1:-build}
out=$(realpath -m "${2:-gpu-binaries.txz}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin/real" "$stage/lib"
for b in src/server/sluice src/stub/sluice-stub src/stub/libsluice_cuda_device.so \
         src/tools/sluice-bench src/tools/sluice-lifecycle tests/cuda_kernels_test \
         tests/prefill_attention_bench tests/gptq_product_bench tests/matmul_algo_bench; do
  [ -x "$build/$b" ] || { echo "missing $build/$b (a CUDA build?)" >&2; exit 1; }
  n=$(basename "$b")
  objcopy --strip-debug "$build/$b" "$stage/bin/real/$n"
  # The stub is started by sluice from bin/real, with sluice's environment; the module is
  # opened by the stub.
  case $n in sluice-stub | *.so) continue ;; esac
  printf '#!/bin/sh\nd=$(dirname "$(readlink -f "$0")")\nLD_LIBRARY_PATH=$d/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$d/real/%s" "$@"\n' \
    "$n" > "$stage/bin/$n"
  chmod +x "$stage/bin/$n"
done
ldd "$stage"/bin/real/* | awk '/=>/ {print $3}' | sort -u |
  grep -vE 'lib(c|m|pthread|dl|rt|gcc_s|stdc\+\+)\.so|ld-linux|libcuda\.so|libcudart|libcublas|libnvidia' |
  while read -r l; do cp -L "$l" "$stage/lib/"; done
# -9e: 30 MB rather than -6's 44 (a run carries 64 MiB with the working tree), ~2 min on 2 cores.
tar cf - -C "$stage" bin lib | xz -T2 -9e > "$out"
ls -la "$out"
