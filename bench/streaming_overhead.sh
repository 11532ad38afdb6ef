#!/usr/bin/env bash
# The server's own streaming overhead (issue 5): the `repeat` model with zero delay, so the
# stub produces responses as fast as it can and every response crosses the stub's IPC
# socket, the core's bookkeeping and the frontend; responses per second through gRPC
# ModelStreamInfer and through SSE (generate_stream), at 1 and 64 concurrent streams.
#
# Usage: bench/streaming_overhead.sh [BUILD_DIR]      (default: build/ of this checkout)
# Environment: RUNS (default 5; the table shows the median and the range), N1 (responses
# in the single stream, default 8000), N64 (responses per stream at 64 streams, default
# 2000), CURL=1 also times the single SSE stream with curl | grep -c, as the first figures
# in RESULTS.md were.
#
# The client is sluice-bench with --raw-body (the repeat model's IN/DELAY/WAIT instead of a
# prompt; every streamed response counts as one output token): S concurrent streams, one
# request each, and the rate is sluice-bench's output throughput (responses over the run's
# duration). Client and server share the machine, so on a small machine these are lower
# bounds on the server's own rate.
#
# N1 stays under the gRPC frontend's max_pending_writes_per_stream (8192): a single
# zero-delay stream outruns one gRPC stream's writes, and a stream that queues more than
# that many unread responses is ended with RESOURCE_EXHAUSTED by design.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
runs=${RUNS:-5}
n1=${N1:-8000}
n64=${N64:-2000}
sluice=$build/src/server/sluice
bench=$build/src/tools/sluice-bench
py=${PYTHON:-$root/.venv/bin/python}  # the project environment (scripts/setup.sh)
for f in "$sluice" "$bench"; do
  [[ -x $f ]] || { echo "streaming_overhead: $f is missing; build sluice, sluice-stub, sluice-bench" >&2; exit 2; }
done
command -v jq > /dev/null || { echo "streaming_overhead: needs jq (apt-get install jq)" >&2; exit 2; }

work=$(mktemp -d)
server=
cleanup() {
  if [[ -n $server ]] && kill -0 "$server" 2> /dev/null; then
    kill -TERM "$server"
    wait "$server" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(free_port) grpc_port=$(free_port) metrics_port=$(free_port)

mkdir -p "$work/repo"
cp -r "$root/examples/repeat" "$work/repo/repeat"
"$sluice" --model-repository "$work/repo" --model-control-mode explicit --load-model repeat \
  --http-port "$http_port" --grpc-port "$grpc_port" --metrics-port "$metrics_port" \
  > "$work/sluice.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http_port/v2/models/repeat/ready" > /dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$http_port/v2/models/repeat/ready" > /dev/null ||
  { echo "streaming_overhead: server not ready; log:" >&2; cat "$work/sluice.log" >&2; exit 1; }

# Bodies: n zero IN values, n zero delays, WAIT 0 (compact: they are passed as arguments).
grpc_body() { $py -c "import json,sys; n=int(sys.argv[1]); print(json.dumps({'inputs':[
  {'name':'IN','datatype':'INT32','shape':[n],'data':[0]*n},
  {'name':'DELAY','datatype':'UINT32','shape':[n],'data':[0]*n},
  {'name':'WAIT','datatype':'UINT32','shape':[1],'data':[0]}]}, separators=(',',':')))" "$1"; }
sse_body() { $py -c "import json,sys; n=int(sys.argv[1]); print(json.dumps({'IN':[0]*n,'DELAY':[0]*n,'WAIT':[0]}, separators=(',',':')))" "$1"; }

# One measurement: prints "responses seconds" or fails loudly.
measure() {
  local transport=$1 streams=$2 n=$3 api body
  if [[ $transport == grpc ]]; then api=grpc body=$(grpc_body "$n"); else api=generate_stream body=$(sse_body "$n"); fi
  rm -f "$work/report.json"
  "$bench" --url "http://127.0.0.1:$http_port" --grpc-url "127.0.0.1:$grpc_port" -m repeat \
    --api "$api" -c "$streams" -n "$streams" --no-progress --json "$work/report.json" \
    --raw-body "$body" > /dev/null 2>&1 || true
  jq -r 'if .failed == 0 and .completed > 0 then "\(.total_output_tokens) \(.duration)"
         else error("\(.failed) failed: \(.errors // "")") end' "$work/report.json"
}

echo "# streaming overhead: repeat, zero delay; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# sluice $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo ' (src/ modified)'), binaries in $build (sluice built $(date -u -r "$sluice" '+%Y-%m-%d %H:%M UTC'))"
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| API | streams | responses per run | runs | responses/s (median) | min - max |"
echo "|---|---|---|---|---|---|"
for transport in grpc http; do
  api=$([[ $transport == grpc ]] && echo "gRPC ModelStreamInfer" || echo "SSE generate_stream")
  for streams in 1 64; do
    n=$([[ $streams == 1 ]] && echo "$n1" || echo "$n64")
    rates=() total=0
    for _ in $(seq "$runs"); do
      read -r responses secs < <(measure "$transport" "$streams" "$n")
      total=$responses
      rates+=("$($py -c "print($responses / $secs)")")
    done
    $py - "$api" "$streams" "$total" "$runs" "${rates[@]}" <<'PY'
import statistics, sys
api, streams, total, runs, *rates = sys.argv[1:]
r = sorted(float(x) for x in rates)
print(f"| {api} | {streams} | {int(total):,} | {runs} | {statistics.median(r):,.0f} | {r[0]:,.0f} - {r[-1]:,.0f} |")
PY
  done
done
if [[ ${CURL:-0} == 1 ]]; then
  sse_body "$n1" > "$work/body.json"
  start=$(date +%s.%N)
  got=$(curl -sN -X POST "http://127.0.0.1:$http_port/v2/models/repeat/generate_stream" \
    --data-binary @"$work/body.json" | grep -c '^data:')
  end=$(date +%s.%N)
  echo
  echo "curl | grep -c, 1 SSE stream: $got responses in $($py -c "print(f'{$end - $start:.3f}')") s" \
    "= $($py -c "print(f'{$got / ($end - $start):,.0f}')") responses/s"
fi
echo
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
