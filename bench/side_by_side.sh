#!/usr/bin/env bash
# Sluice and llama.cpp's llama-server side by side on the CPU, serving the same demo model
# (examples/sluice-demo) with the same thread count, measured by sluice-bench on the same
# prompts (issue 5).
#
# Usage: bench/side_by_side.sh LLAMA_SERVER LLAMA_CPP_SRC [SLUICE_BUILD_DIR]
#   LLAMA_SERVER      a llama-server binary you built (nothing here builds llama.cpp)
#   LLAMA_CPP_SRC     its source tree: gguf-py (for bench/demo_to_gguf.py) and, if it is a
#                     git checkout, its commit
#   SLUICE_BUILD_DIR  default build/ of this checkout (src/server/sluice, src/stub/sluice-stub,
#                     src/tools/sluice-bench)
# Environment:
#   THREADS        compute threads for both servers (default: nproc)
#   CONCURRENCY    default "1 4 16"
#   REQUESTS       measured requests per run (default: max(32, 8 * concurrency))
#   ROUNDS         rounds (default 3); the servers take turns, in alternating order
#   INPUT_LEN, OUTPUT_LEN   sluice-bench --input-len (words) / --output-len (default 128/128)
#   SEED           prompt seed (default 0); round R at concurrency C uses SEED + 100 R + C,
#                  so no run reuses another's prompts (both servers cache prompt prefixes)
#   OUTTYPE        GGUF weight type: bf16 (default: the bytes Sluice reads) or f32
#   LLAMA_COMMIT   llama.cpp's commit, when LLAMA_CPP_SRC is not a git checkout
#   KEEP=DIR       keep the GGUF, the logs and the JSON reports in DIR
#   LLAMA_EXTRA    extra llama-server arguments
#
# What runs (both servers are up, idle between runs; sluice-bench drives one at a time):
#   sluice        a temp repository with only sluice-demo (its config.pbtxt and model.json
#                 as shipped: max_num_seqs 16, max_model_len 512, prefix caching on),
#                 --cpu-threads THREADS;
#   llama-server  the GGUF from demo_to_gguf.py, --host 127.0.0.1 -t/-tb THREADS,
#                 -np 16 slots with -c 8192 (512 tokens each, Sluice's max_model_len),
#                 --cache-ram 0 (no host-memory prompt cache: Sluice has none), per-slot
#                 prompt reuse left on (Sluice's prefix cache is on), other defaults
#                 (flash attention auto, f16 KV cache, continuous batching).
# sluice-bench: OpenAI /v1/completions, streamed, temperature 0, ignore_eos (Sluice also
# gets min_tokens; llama-server ignores it), the same seeded synthetic prompts for both,
# C warm-up requests first at concurrency C (their prompts are not among the measured ones).
# The table's "mean prompt tokens" comes from each server's own usage: equal on both sides
# means both tokenized the same prompts to the same lengths. The table is printed as
# markdown on stdout.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
llama_server=$(realpath "$1")
llama_src=$(realpath "$2")
build=$(realpath "${3:-$root/build}")
threads=${THREADS:-$(nproc)}
concurrency=${CONCURRENCY:-1 4 16}
rounds=${ROUNDS:-3}
input_len=${INPUT_LEN:-128}
output_len=${OUTPUT_LEN:-128}
seed=${SEED:-0}
outtype=${OUTTYPE:-bf16}
py=${PYTHON:-$root/.venv/bin/python}  # the project environment (scripts/setup.sh)
sluice=$build/src/server/sluice
bench=$build/src/tools/sluice-bench
for f in "$llama_server" "$sluice" "$bench" "$build/src/stub/sluice-stub"; do
  [[ -x $f ]] || { echo "side_by_side: $f is missing or not executable" >&2; exit 2; }
done

llama_commit=${LLAMA_COMMIT:-$(git -C "$llama_src" rev-parse HEAD 2> /dev/null || echo unknown)}
sluice_commit=$(git -C "$root" rev-parse HEAD)
sluice_dirty=$(git -C "$root" diff --quiet HEAD -- src || echo " (src/ has uncommitted changes)")

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2> /dev/null; then
      kill -TERM "$pid"
      wait "$pid" 2> /dev/null || true
    fi
  done
  if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp -r "$work"/. "$KEEP"/; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # URL NAME LOG PID
  for _ in $(seq 600); do
    curl -sf "$1" > /dev/null && return 0
    kill -0 "$4" 2> /dev/null || break
    sleep 0.1
  done
  echo "side_by_side: $2 did not become ready; its log:" >&2
  tail -30 "$3" >&2
  exit 1
}

echo "side_by_side: converting the demo model to GGUF ($outtype)" >&2
$py "$here/demo_to_gguf.py" --llama-cpp "$llama_src" --outtype "$outtype" "$work/sluice-demo.gguf"

# --- both servers --------------------------------------------------------------------------
mkdir -p "$work/repo"
cp -r "$root/examples/sluice-demo" "$work/repo/sluice-demo"
http_port=$(free_port) grpc_port=$(free_port) metrics_port=$(free_port) llama_port=$(free_port)
"$sluice" --model-repository "$work/repo" --cpu-threads "$threads" --http-port "$http_port" \
  --grpc-port "$grpc_port" --metrics-port "$metrics_port" > "$work/sluice.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$http_port/v2/models/sluice-demo/ready" sluice "$work/sluice.log" "$!"
# shellcheck disable=SC2086  # LLAMA_EXTRA is a list of arguments
"$llama_server" -m "$work/sluice-demo.gguf" --host 127.0.0.1 --port "$llama_port" \
  -t "$threads" -tb "$threads" -np 16 -c 8192 --cache-ram 0 --alias sluice-demo \
  ${LLAMA_EXTRA:-} > "$work/llama-server.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$llama_port/health" llama-server "$work/llama-server.log" "$!"

# One sluice-bench run: NAME URL C ROUND -> $work/NAME-cC-rROUND.json
run_bench() {
  local name=$1 url=$2 c=$3 r=$4 n out
  n=${REQUESTS:-$((8 * c > 32 ? 8 * c : 32))}
  out=$work/$name-c$c-r$r
  echo "side_by_side: round $r, $name, concurrency $c, $n requests" \
    "(load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  "$bench" --url "$url" -m sluice-demo --api completions -n "$n" -c "$c" --warmup "$c" \
    --seed "$((seed + 100 * r + c))" --input-len "$input_len" --output-len "$output_len" \
    --temperature 0 --no-progress --json "$out.json" > "$out.txt" 2>&1 ||
    { echo "side_by_side: sluice-bench against $name failed:" >&2; cat "$out.txt" >&2; exit 1; }
  $py -c 'import json, sys
j = json.load(open(sys.argv[1]))
j["load_average"] = float(open("/proc/loadavg").read().split()[0])
json.dump(j, open(sys.argv[1], "w"))' "$out.json"
}

# The servers take turns in alternating order, so that a change in the machine's background
# load falls on both; every (round, concurrency) has its own prompts, the same for both.
for r in $(seq "$rounds"); do
  for c in $concurrency; do
    if ((r % 2)); then order="sluice llama"; else order="llama sluice"; fi
    for name in $order; do
      if [[ $name == sluice ]]; then
        run_bench sluice "http://127.0.0.1:$http_port" "$c" "$r"
      else
        run_bench llama "http://127.0.0.1:$llama_port" "$c" "$r"
      fi
    done
  done
done

# --- table --------------------------------------------------------------------------------
cat << EOF
Sluice \`$sluice_commit\`$sluice_dirty; llama.cpp \`$llama_commit\` ($(basename "$llama_server"), GGUF $outtype).
Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $threads threads for each server.
sluice-bench --api completions --input-len $input_len --output-len $output_len --temperature 0 (ignore_eos),
C warm-up requests at concurrency C; $rounds rounds; each cell is the median over the rounds.

EOF
$py - "$work" "$concurrency" "$rounds" << 'PY'
import json, statistics, sys
work, conc, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
print("| server | conc. | requests ok/failed | mean prompt tokens | output tok/s (min-max) "
      "| TTFT mean / median (ms) | ITL mean / p99 (ms) | TPOT mean (ms) | load avg |")
print("|---|---|---|---|---|---|---|---|---|")
for c in conc:
    for name, label in (("sluice", "Sluice"), ("llama", "llama-server")):
        js = [json.load(open(f"{work}/{name}-c{c}-r{r}.json")) for r in range(1, rounds + 1)]
        med = lambda k: statistics.median(j[k] for j in js)
        ok = sum(j["completed"] for j in js)
        failed = sum(j["failed"] for j in js)
        tps = sorted(j["output_throughput"] for j in js)
        prompt = sum(j["total_input_tokens"] for j in js) / max(ok, 1)
        loads = [j["load_average"] for j in js]
        print(f"| {label} | {c} | {ok}/{failed} | {prompt:.1f} | "
              f"{med('output_throughput'):.0f} ({tps[0]:.0f}-{tps[-1]:.0f}) | "
              f"{med('mean_ttft_ms'):.1f} / {med('median_ttft_ms'):.1f} | "
              f"{med('mean_itl_ms'):.2f} / {med('p99_itl_ms'):.2f} | {med('mean_tpot_ms'):.2f} | "
              f"{min(loads):.2f}-{max(loads):.2f} |")
PY
