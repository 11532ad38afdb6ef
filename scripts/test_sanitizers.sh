#!/usr/bin/env bash
# The CI sanitizer stage (scripts/test.sh runs it after the main tests; SLUICE_SKIP_SANITIZERS=1
# skips it there). Two clang builds, CPU only (cmake/Sanitizers.cmake):
#   build-clang/  ASan + UBSan (+ the fuzz targets of fuzz/, one build for both, and clang's
#                 -Wthread-safety): every unit, integration and fuzz-smoke test, not the Python
#                 real-client tests (they test the clients' view, not memory safety), not gpu.
#   build-tsan/   TSan: only the test binaries of the modules that run threads.
# The integration tests start sluice and sluice-stub from the same build, so those processes
# run sanitized too. Every sanitizer writes its report to build-*/sanitizer-logs/ (a report from
# a server or stub a test started would otherwise be lost in the test's output), and the stage
# fails if any report is there, even when every test passed.
# (set -e does not apply inside a function called with ||: each step checks its own status.)
# Environment: SLUICE_JOBS (build jobs, default nproc), SLUICE_TEST_JOBS (ctest -j, default 2),
# SLUICE_BUILD_LOCK (a file the builds take an flock on, for a tree shared by several builders),
# SLUICE_SANITIZER_FLAGS (optimisation and debug flags, default below), SLUICE_SANITIZER_STAGES
# ("asan tsan" by default; one of them for a quick local loop).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs="${SLUICE_JOBS:-$(nproc)}"
test_jobs="${SLUICE_TEST_JOBS:-2}"
# -O1 with line tables only: stack traces keep file:line, and it compiles ~9 % faster than
# RelWithDebInfo's -O2 -g (bench/RESULTS.md, "CI sanitizer stage").
opt_flags="${SLUICE_SANITIZER_FLAGS:--O1 -gline-tables-only -DNDEBUG}"
# ccache hits across checkouts, as scripts/build.sh.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

# The test binaries of the concurrent modules: IPC channel and connection, the HTTP server,
# core lifecycle / model versions / instance supervisor and repository, the stub process and
# its runtime and backends (repeat streams from its own thread), the engine. Not the gRPC
# server's: Debian's grpc and abseil are not instrumented, so TSan cannot see their locks and
# reports every handoff through gRPC as a race (over 2,000 reports, every one with libgpr in
# its stacks); build-clang runs those tests under ASan + UBSan.
tsan_tests=(ipc_message_test http_test core_lifecycle_test repository_test
            stub_process_test stub_backends_test llm_engine_test prompt_pool_test
            stub_prompt_burst_test engine_structured_output_test
            grammar_compile_off_engine_test)

build() {  # build DIR TARGETS...
  local dir=$1
  shift
  if [ -n "${SLUICE_BUILD_LOCK:-}" ]; then
    flock "$SLUICE_BUILD_LOCK" ninja -C "$dir" -j "$jobs" "$@"
  else
    ninja -C "$dir" -j "$jobs" "$@"
  fi
}

configure() {  # configure DIR SANITIZERS EXTRA_CMAKE_ARGS...
  local dir=$1 sanitize=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt_flags" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt_flags" -DSLUICE_WERROR=ON -DSLUICE_CUDA=OFF \
    -DSLUICE_SANITIZE="$sanitize" "$@" >/dev/null
}

# Fails the stage when a sanitizer wrote any report under DIR.
check_logs() {  # check_logs DIR
  local logs
  logs=$(find "$1" -type f 2>/dev/null | sort)
  [ -z "$logs" ] && return 0
  echo "test_sanitizers: sanitizer reports in $1:" >&2
  local f
  for f in $logs; do
    echo "===== $f" >&2
    cat "$f" >&2
  done
  return 1
}

supp="$root/tests/sanitizers"
# Timing tests left out of both stages (the main suite runs them): four 40-60 MB tensors through
# a sanitized stub take longer than its heartbeat timeout on a loaded 2-core machine (a clean
# clone's ASan run lost the stub to "stopped answering heartbeats" with other builds running).
timing_tests='Issue19ConcurrentLargeTensorsDoNotDeadlockTheLink|Issue19FourConcurrentLarge'


# ASan + UBSan: the whole tree, every unit, integration and fuzz-smoke test.
run_asan() {
  local fuzz_args=() logs="$root/build-clang/sanitizer-logs" rc=0
  [ -f fuzz/CMakeLists.txt ] && fuzz_args=(-DSLUICE_FUZZ=ON)
  configure build-clang address,undefined "${fuzz_args[@]}" || return 1
  build build-clang || return 1
  rm -rf "$logs"
  mkdir -p "$logs"
  # halt_on_error: the first finding ends the process with an error, so the test fails there.
  # log_exe_name: one report file per process, named after it (sluice, sluice-stub, a test).
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_init_order=1:log_path=$logs/asan:log_exe_name=1" \
  LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp:log_path=$logs/ubsan:log_exe_name=1" \
    ctest --test-dir build-clang --output-on-failure -j "$test_jobs" --timeout 600 \
      -L 'unit|integration|fuzz' -LE 'python|gpu' -E "$timing_tests" || rc=1
  check_logs "$logs" || rc=1
  return $rc
}

# TSan: the concurrent modules' test binaries only.
run_tsan() {
  local logs="$root/build-tsan/sanitizer-logs" rc=0
  configure build-tsan thread || return 1
  build build-tsan "${tsan_tests[@]}" || return 1
  rm -rf "$logs"
  mkdir -p "$logs"
  # Only the binaries built above carry labels: the test of a binary that is not built is the
  # unlabelled <binary>_NOT_BUILT, which -L leaves out.
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:log_path=$logs/tsan:log_exe_name=1" \
    ctest --test-dir build-tsan --output-on-failure -j "$test_jobs" --timeout 600 -L unit \
      -E "$timing_tests" || rc=1
  check_logs "$logs" || rc=1
  return $rc
}

status=0
for stage in ${SLUICE_SANITIZER_STAGES:-asan tsan}; do
  case $stage in
    asan) run_asan || status=1 ;;
    tsan) run_tsan || status=1 ;;
    *) echo "test_sanitizers: unknown stage '$stage' (asan, tsan)" >&2; exit 2 ;;
  esac
done
exit $status
